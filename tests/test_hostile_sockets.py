"""Hostile clients of /socket.io/: oversized polling bodies, malformed packets, reserved and unknown events."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.rawws import RawSocketIO
from tests.support import LiveServer, Player, needs_fast_paths, serving

LIMIT = 16_384  # max_payload by default


async def polling_handshake(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """An Engine.IO polling session, opened and never joined to Socket.IO (no login)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await reader.readuntil(b"\r\n\r\n")
    body = await reader.readuntil(b"\r\n0\r\n\r\n")  # chunked
    sid = json.loads(body[body.index(b"{"):body.rindex(b"}") + 1])["sid"]
    return reader, writer, sid


def oversized_post(sid: str, size: int = LIMIT + 4000) -> bytes:
    body = b"4" + b"x" * size
    return (f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def answer_and_end(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it never answers)."""
    try:
        return await asyncio.wait_for(reader.read(-1), timeout)
    except asyncio.TimeoutError:
        return b""


async def test_an_oversized_polling_post_is_answered_413_and_the_connection_closed(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        reader, writer, sid = await polling_handshake(server.port)
        writer.write(oversized_post(sid))
        await writer.drain()
        answer = await answer_and_end(reader)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert reader.at_eof()  # closed by the server
        writer.close()

        # Streamed (chunked, no length declared): counted as it arrives.
        reader, writer, sid = await polling_handshake(server.port)
        writer.write(f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        for _ in range(5):
            writer.write(b"1000\r\n" + b"x" * 0x1000 + b"\r\n")
        await writer.drain()
        answer = await answer_and_end(reader)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        writer.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_fifty_oversized_posts_leave_no_descriptor_held(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        before = open_descriptors()
        clients = [await polling_handshake(server.port) for _ in range(50)]
        for _, writer, sid in clients:
            writer.write(oversized_post(sid))
        answers = await asyncio.gather(*(answer_and_end(reader) for reader, _, _ in clients))
        for _, writer, _ in clients:
            writer.close()
        assert all(answer.startswith(b"HTTP/1.1 413") for answer in answers)
        for _ in range(100):  # the server's side of each closes too (no CLOSE-WAIT left)
            if open_descriptors() <= before + 5:
                break
            await asyncio.sleep(0.05)
        assert open_descriptors() <= before + 5, (before, open_descriptors())


GRACEFUL_TIMEOUT = 30


async def test_sigterm_stops_the_server_with_oversized_and_stalled_polling_posts_open(tmp_path: Path) -> None:
    """Neither a refused body nor one that stops half-way holds shutdown: the server ends well
    before hypercorn's graceful timeout, where it would cut them (and, on Python 3.12 with
    asyncio's loop, would wait for them for ever)."""
    sock_port = await _free_port()
    env = os.environ | {"ARCANE_DATABASE": str(tmp_path / "arcane.db"), "ARCANE_SECRET_KEY": "s" * 40}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hypercorn", "arcane:app", "--bind", f"127.0.0.1:{sock_port}",
        "--graceful-timeout", str(GRACEFUL_TIMEOUT), env=env, cwd=str(Path(__file__).resolve().parent.parent),
        stderr=asyncio.subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock_port}") as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        held = []
        for _ in range(5):
            reader, writer, sid = await polling_handshake(sock_port)
            writer.write(oversized_post(sid))  # and the client never closes
            held.append((reader, writer))
        for _ in range(5):
            reader, writer, sid = await polling_handshake(sock_port)
            writer.write(oversized_post(sid, 1000)[:-500])  # half a body, then nothing
            held.append((reader, writer))
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), GRACEFUL_TIMEOUT - 5)
        for _, writer in held:
            writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- malformed packets before login -------------------------------------------------------------

def masked(payload: bytes, opcode: int) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    header = bytes((0x80 | opcode, 0x80 | size)) if size < 126 else bytes((0x80 | opcode, 0xFE)) + size.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 10) -> bool:
    """The server ends the connection: a close frame or the end of the stream."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                data = await reader.read(65536)
                if not data or b"\x88" in data[:1]:
                    return True
                if b"\x88" in data:  # a close frame among the pings
                    return True
    except (asyncio.TimeoutError, ConnectionError):
        return False


VARIANTS = {
    "unclosed-event": (b"42[", 0x1),
    "empty-message": (b"4", 0x1),
    "garbage": (b"zz\x01garbage", 0x1),
    "unknown-engineio-type": (b"9", 0x1),
    "binary": (b"\x00\x01\x02\xff", 0x2),
}


# The close after MALFORMED_LIMIT unknown packets is the websocket loop's, and the close at once
# needs the direct driver's hold of hypercorn's transport (docs/serving.md).
@needs_fast_paths("websocket_direct", "websocket_loop")
@pytest.mark.parametrize("path", ["fast-path", "wsproto"])
async def test_two_thousand_malformed_packets_before_login_log_a_few_short_lines_and_close_the_socket(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(tmp_path) as server:
        for variant, (payload, opcode) in VARIANTS.items():
            reader, writer = await raw_websocket(server.port)
            caplog.clear()
            # A ping frame ahead of each message sends the read through wsproto (arcane/serving/wsproto.py
            # takes only reads that are whole data frames).
            prefix = masked(b"", 0x9) if path == "wsproto" else b""
            try:
                for _ in range(2000):
                    writer.write(prefix + masked(payload, opcode))
                    await writer.drain()
            except ConnectionError:
                pass  # closed by the server before all were sent
            assert await closed_by_server(reader), variant
            writer.close()
            await asyncio.sleep(0.2)
            ours = [r for r in caplog.records if r.name.startswith(("arcane.realtime", "engineio", "socketio"))]
            assert not any(r.exc_info for r in ours), (variant, [r.getMessage() for r in ours if r.exc_info])
            assert len(ours) <= 10, (variant, [r.getMessage() for r in ours])
            assert sum(len(r.getMessage()) for r in ours) < 1500, variant


async def test_malformed_polling_posts_log_no_traceback_and_end_the_session(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(tmp_path) as server:
        reader, writer, sid = await polling_handshake(server.port)
        caplog.clear()
        statuses = []
        for _ in range(50):
            body = b"42["
            try:
                writer.write((f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
                              f"Host: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            except (ConnectionError, asyncio.IncompleteReadError):
                statuses.append(b"closed")
                break
            statuses.append(head.split(b" ")[1])
            if b"chunked" in head.lower():
                await asyncio.wait_for(reader.readuntil(b"\r\n0\r\n\r\n"), 10)
            else:
                length = [line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")]
                await reader.readexactly(int(length[0]) if length else 0)
            if statuses[-1] == b"400":
                break
        writer.close()
    assert statuses[-1] in (b"400", b"closed"), statuses  # the session was ended: later posts are refused
    assert len(statuses) < 50
    ours = [r for r in caplog.records if r.name.startswith(("arcane.realtime", "engineio", "socketio"))]
    assert not any(r.exc_info for r in ours)
    assert len(ours) <= 10, [r.getMessage() for r in ours]


@pytest.mark.parametrize("body", [b"6", b"0", b"9", b"4x\x1e9"], ids=["noop", "open", "type-9", "second-packet-type-9"])
async def test_a_polling_post_of_packets_engineio_cannot_take_is_answered_without_a_traceback(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, body: bytes) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(tmp_path) as server:
        reader, writer, sid = await polling_handshake(server.port)
        caplog.clear()
        writer.write((f"POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.split(b" ")[1] == b"400", head
        writer.close()
    ours = [r for r in caplog.records if r.name.startswith(("arcane.realtime", "engineio", "socketio"))]
    assert not any(r.exc_info for r in ours), [r.getMessage() for r in ours]


# -- reserved, malformed and unknown events ---------------------------------------------------------

async def seated(server: LiveServer, name: str = "Ann") -> tuple[Player, RawSocketIO]:
    player = await Player.create(server, name)
    client = await RawSocketIO.open(server.port, player.token)
    answer, _ = await client.ack(await client.call("join_game_room", {"game_code": player.game_code}))
    assert answer["ok"] is True, answer
    return player, client


async def test_a_client_emitting_disconnect_is_refused_and_stays_online(tmp_path: Path) -> None:
    async with serving(tmp_path, presence_grace=0.1) as server:
        ann, client = await seated(server)
        answer, _ = await client.ack(await client.call("disconnect", "io client disconnect"))
        assert answer["error"]["code"] == "UNKNOWN_EVENT", answer
        await asyncio.sleep(0.5)  # beyond the presence grace
        assert (await ann.view())["players"][0]["online"] is True
        answer, _ = await client.ack(await client.call("chat_message", {"text": "still here"}))
        assert answer["ok"] is True, answer
        await client.close()
        await ann.close()


async def test_a_client_emitting_connect_with_another_token_keeps_its_identity(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, client = await seated(server, "Ann")
        bram = await Player.join(server, ann.game_code, "Bram")
        for name in ("connect", "connect_error", "disconnecting", "newListener", "removeListener"):
            answer, _ = await client.ack(await client.call(name, {"token": bram.token}))
            assert answer["error"]["code"] == "UNKNOWN_EVENT", (name, answer)
        answer, before = await client.ack(await client.call("chat_message", {"text": "who am I"}))
        assert answer["ok"] is True, answer
        chats = (await ann.get("/poll", params={"after": 0, "timeout": 0})).json()["events"]
        said = [e["data"] for e in chats if e["event"] == "chat_message"]
        assert said and said[-1]["player_id"] == ann.player_id
        await client.close()
        await ann.close()
        await bram.close()


async def test_malformed_and_unknown_events_are_answered_through_their_ack(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, client = await seated(server)
        await client.send("4291[]")
        answer, _ = await client.ack(91)
        assert answer["error"]["code"] == "VALIDATION_ERROR" and answer["error"]["message"], answer
        await client.send("4292[5,{}]")
        answer, _ = await client.ack(92)
        assert answer["error"]["code"] == "VALIDATION_ERROR", answer
        # Events that are not JSON at all, with an ack id that can still be read.
        for ack_id, packet in ((93, '4293["chat_message",{"message":"hi"},Infinity]'), (94, "4294["),
                               (95, '42/,95["ping",NaN]')):
            await client.send(packet)
            answer, _ = await client.ack(ack_id, 5)
            assert answer["error"]["code"] == "VALIDATION_ERROR", (packet, answer)
        answer, _ = await client.ack(await client.call("no_such_event", {}))
        assert answer["error"]["code"] == "UNKNOWN_EVENT" and answer["error"]["message"], answer
        # The original game's client announces its HTTP choice: a harmless ok.
        answer, _ = await client.ack(await client.call("choice_submitted", {"choice": "1"}))
        assert answer == {"ok": True}, answer
        answer, _ = await client.ack(await client.call("ping", None))
        assert answer["ok"] is True
        await client.close()
        await ann.close()


async def test_a_client_that_sends_engineio_close_has_its_websocket_closed_at_once(tmp_path: Path) -> None:
    """Engine.IO marked the session closed but kept the websocket open until the ping
    timeout (45 s), answering nothing."""
    async with serving(tmp_path) as server:
        ann, client = await seated(server)
        await client.send("1")
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await client.ack(await client.call("ping", None), 5)
        await client.close()
        await ann.close()
