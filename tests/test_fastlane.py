"""Long-polls read and answered beside h11 (arcane/serving/h11.py), on a live server over raw sockets.

Each test checks what a client sees on the wire, and which way the server took: the
fast lane for a plain keep-alive poll, h11 for everything else on the same connection.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from arcane.serving import h11 as fastlane
from arcane.serving import wsproto
from tests.gameplay import close_all, last_seq
from tests.rawws import RawSocketIO
from tests.support import LiveServer, Player, needs_fast_paths, seat_party, serving, sockets_gone
from tests.test_wire import read_response


def spy_on(monkeypatch: pytest.MonkeyPatch, parser: str) -> list[bytes]:
    """The targets of the requests the fast lane's `parser` took, in order."""
    seen: list[bytes] = []
    parse = getattr(fastlane, parser)

    def spy(data: bytes) -> Any:
        request = parse(data)
        if request is not None:
            seen.append(request[0])
        return request

    monkeypatch.setattr(fastlane, parser, spy)
    return seen


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The polls the fast lane took."""
    return spy_on(monkeypatch, "parse")


@asynccontextmanager
async def ann_at_table(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[LiveServer, Player]]:
    """A live server and Ann, seated at a new table."""
    async with serving(tmp_path, **settings) as server:
        (ann,) = await seat_party(server, ["Ann"])
        try:
            yield server, ann
        finally:
            await ann.close()


@asynccontextmanager
async def wire(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


def poll_request(player: Player, query: str, *, extra: str = "") -> bytes:
    return (f"GET /api/games/{player.game_code}/poll?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {player.token}\r\n{extra}\r\n").encode("latin1")


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    status, headers, body = await asyncio.wait_for(read_response(reader), 10)
    return status, headers, json.loads(body) if body else None


@needs_fast_paths('poll_lane')
async def test_a_poll_is_answered_beside_h11_and_the_connection_serves_any_request_next(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0"))
            status, headers, body = await answer(reader)
            assert status == 200 and headers["content-type"] == "application/json"
            assert headers["cache-control"] == "no-store" and "date" in headers and "server" in headers
            assert headers.get("connection") != "close"
            assert [e["event"] for e in body["events"]] == ["player_joined"] and body["last_seq"] == 1
            # Next on the same connection, through h11 and Quart: a chat posted over this wire.
            chat = json.dumps({"text": "through h11"}).encode()
            writer.write(f"POST /api/games/{ann.game_code}/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Authorization: Bearer {ann.token}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(chat)}\r\n\r\n".encode() + chat)
            status, _, _ = await answer(reader)
            assert status == 201
            # Then a poll again, which waits for news and gets it.
            writer.write(poll_request(ann, "after=2&timeout=5"))
            await asyncio.sleep(0.2)
            assert (await ann.post("/chat", {"text": "while it waited"})).status_code == 201
            status, _, body = await answer(reader)
            assert status == 200 and [e["data"]["text"] for e in body["events"]] == ["while it waited"]
            assert body["last_seq"] == 3
        assert taken == [f"/api/games/{ann.game_code}/poll?after=0&timeout=0".encode(),
                         f"/api/games/{ann.game_code}/poll?after=2&timeout=5".encode()]


@needs_fast_paths('poll_lane')
async def test_polls_the_fast_lane_leaves_to_h11_get_the_same_answer(tmp_path: Path, taken: list[bytes]) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0"))
            expected = await answer(reader)
            assert len(taken) == 1
            request = poll_request(ann, "after=0&timeout=0")
            odd = [
                [request[:20], request[20:]],  # arrives in two reads
                [request + request],  # two requests in one read (pipelined)
                [poll_request(ann, "after=0&timeout=0", extra="Content-Length: 0\r\n")],
                [poll_request(ann, "after=0&timeout=0", extra="X-Name: caf\xe9\r\n")],  # a byte above 0x7e
                [request.replace(b"/poll?", b"/p%6Fll?")],  # an escaped path
            ]
            for reads in odd:
                for data in reads:
                    writer.write(data)
                    await writer.drain()
                    await asyncio.sleep(0.05)
                for _ in range(2 if reads == [request + request] else 1):
                    status, headers, body = await answer(reader)
                    assert (status, body) == (expected[0], expected[2])
                    assert headers.get("connection") != "close"
            assert len(taken) == 1


@needs_fast_paths('poll_lane')
async def test_a_request_sent_while_a_poll_waits_is_answered_after_it_in_order(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=1&timeout=0"))  # online now: no presence news below
            assert (await answer(reader))[0] == 200
            await asyncio.sleep(0.3)
            writer.write(poll_request(ann, "after=1&timeout=5"))
            await asyncio.sleep(0.2)
            writer.write(poll_request(ann, "after=0&timeout=0"))  # pipelined behind the waiting poll
            await asyncio.sleep(0.2)
            assert (await ann.post("/chat", {"text": "first answer"})).status_code == 201
            _, _, first = await answer(reader)
            _, _, second = await answer(reader)
            assert [e["event"] for e in first["events"]] == ["chat_message"]
            assert [e["event"] for e in second["events"]] == ["player_joined", "chat_message"]
        assert len(taken) == 3


@needs_fast_paths('poll_lane')
async def test_a_poller_that_hangs_up_while_waiting_is_let_go_at_once(tmp_path: Path, taken: list[bytes]) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=1&timeout=0"))  # online now: no presence news below
            assert (await answer(reader))[0] == 200
            await asyncio.sleep(0.3)
            writer.write(poll_request(ann, "after=1&timeout=30"))
            for _ in range(100):
                if server.runtime.services.followers:
                    break
                await asyncio.sleep(0.02)
            assert len(server.runtime.services.followers) == 1 and len(taken) == 2
        for _ in range(100):
            if not server.runtime.services.followers:
                break
            await asyncio.sleep(0.02)
        assert not server.runtime.services.followers  # well before the 30 s timeout
        # And the server goes on answering.
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0"))
            assert (await answer(reader))[0] == 200


@needs_fast_paths('poll_lane')
async def test_connection_close_is_honoured_and_a_request_h11_refuses_is_refused_as_before(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0", extra="Connection: close\r\n"))
            status, headers, _ = await answer(reader)
            assert status == 200 and headers["connection"] == "close"
            assert await asyncio.wait_for(reader.read(), 2) == b""  # closed, before the 5 s keep-alive timeout
        assert len(taken) == 1
        async with wire(server.port) as (reader, writer):
            # No Host header: h11 answers 400 and closes, whichever route was asked for.
            writer.write(f"GET /api/games/{ann.game_code}/poll?after=0 HTTP/1.1\r\n\r\n".encode())
            status, _, _ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 400
        assert len(taken) == 1


@needs_fast_paths('poll_lane')
async def test_refusals_of_the_route_are_the_same_through_the_fast_lane_and_through_h11(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with serving(tmp_path) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        requests = [
            poll_request(ann, "after=-1"),  # not a cursor
            poll_request(ann, "after=0&timeout=soon"),
            poll_request(ann, "after=0&client_id=no%20spaces"),
            f"GET /api/games/NOPE/poll?after=0 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),  # no such game
            f"GET /api/games/{ann.game_code}/poll?after=0 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),  # nobody
            poll_request(bram, "after=0").replace(bram.token.encode(), bram.token[:-2].encode()),  # forged
        ]
        async with wire(server.port) as (reader, writer):
            for request in requests:
                writer.write(request)
                fast = await answer(reader)
                writer.write(request[:10])  # the same request in two reads: h11's
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(request[10:])
                slow = await answer(reader)
                assert 400 <= fast[0] < 500 and fast[2]["error"]["code"]
                assert (fast[0], fast[2]) == (slow[0], slow[2])
                assert fast[1].get("connection") != "close"
        assert len(taken) == len(requests)
        await ann.close()
        await bram.close()


@needs_fast_paths('poll_lane')
async def test_a_connection_left_idle_after_a_poll_is_closed_at_the_keep_alive_timeout(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0"))
            assert (await answer(reader))[0] == 200
            # hypercorn's keep_alive_timeout (5 s): its timer stopped for the poll and runs again.
            assert await asyncio.wait_for(reader.read(), 10) == b""
        assert len(taken) == 1


@needs_fast_paths('poll_lane')
async def test_the_last_request_hypercorn_allows_on_a_connection_is_answered_and_the_connection_closed(
    tmp_path: Path, taken: list[bytes],
) -> None:
    from hypercorn.config import Config

    allowed = Config().keep_alive_max_requests
    # A thousand short polls back to back: a flood by the read limit's measure, on purpose.
    async with ann_at_table(tmp_path, read_burst=10**6) as (server, ann):
        async with wire(server.port) as (reader, writer):
            for number in range(1, allowed + 1):
                writer.write(poll_request(ann, "after=1&timeout=0"))
                status, headers, _ = await answer(reader)
                assert status == 200
                assert (headers.get("connection") == "close") == (number == allowed), number
            assert await asyncio.wait_for(reader.read(), 2) == b""
        assert len(taken) == allowed


# -- the hot actions' POSTs -------------------------------------------------------------------


def action_request(player: Player, action: str, body: bytes, *, extra: str = "",
                   length: int | None = None) -> bytes:
    return (f"POST /api/games/{player.game_code}/{action} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {player.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n{extra}\r\n").encode("latin1") + body


def test_only_a_whole_plain_action_post_with_its_whole_body_is_read_beside_h11() -> None:
    head = (b"POST /api/games/ABC123/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
            b"Content-Type: application/json\r\n")
    body = b'{"text": "hi"}'
    whole = head + b"Content-Length: 14\r\n\r\n" + body
    target, headers, keep_alive, method, taken = fastlane.parse_action(whole)  # type: ignore[misc]
    assert (target, keep_alive, method, taken) == (b"/api/games/ABC123/chat", True, "POST", body)
    assert (b"content-length", b"14") in headers and (b"host", b"x") in headers
    for action in (b"typing", b"choices"):
        assert fastlane.parse_action(whole.replace(b"/chat", b"/" + action)) is not None
    assert fastlane.parse_action(head + b"Content-Length: 0\r\n\r\n") is not None  # an empty body
    assert fastlane.parse_action(whole.replace(b"Host: x", b"Connection: close\r\nHost: x"))[2] is False  # type: ignore[index]
    for odd in (
        whole[:-1],  # the body's last byte in the next read
        whole + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # and a pipelined request
        head + b"Content-Length: 13\r\n\r\n" + body,  # more than it says
        head + b"\r\n" + body,  # no length
        head + b"Transfer-Encoding: chunked\r\n\r\n" + b"e\r\n" + body + b"\r\n0\r\n\r\n",
        head + b"Content-Length: 14\r\nContent-Length: 14\r\n\r\n" + body,
        head + b"Content-Length: +14\r\n\r\n" + body,
        head + b"Content-Length: 14\r\nExpect: 100-continue\r\n\r\n" + body,
        whole.replace(b"Host: x\r\n", b""),  # h11 refuses it
        whole.replace(b"Host: x", b"Host: x\r\nHost: y"),
        whole.replace(b"/chat", b"/chat?x=1"),  # a query
        whole.replace(b"/chat", b"/leave"),  # not a hot action
        whole.replace(b"/chat", b"/ch%61t"),  # an escaped path
        whole.replace(b"POST", b"PUT"),
        whole.replace(b"HTTP/1.1", b"HTTP/1.0"),
        whole.replace(b"Bearer t", b"Bearer t\xe9"),  # a byte above 0x7e
        head + b"Content-Length: 70000\r\n\r\n" + b"x" * 70_000,  # past the body limit
    ):
        assert fastlane.parse_action(odd) is None, odd[:200]
    assert fastlane.parse(whole) is None  # and the polls' parser takes none of them


@pytest.fixture
def actions_taken(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The action POSTs the fast lane took."""
    return spy_on(monkeypatch, "parse_action")


@needs_fast_paths('poll_lane')
async def test_an_action_post_is_answered_beside_h11_as_h11_answers_it(
    tmp_path: Path, actions_taken: list[bytes], taken: list[bytes],
) -> None:
    async with serving(tmp_path, rate_limit_burst=10**6) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        spectator = await Player.watch(server, ann.game_code, "Wren")
        requests = [
            action_request(ann, "chat", b'{"text": "hello"}'),
            action_request(ann, "typing", b'{"is_typing": true}'),
            action_request(ann, "choices", b'{"option_id": "a"}'),  # the lobby: WRONG_PHASE
            action_request(ann, "chat", b"{not json"),
            action_request(ann, "chat", b""),
            action_request(spectator, "typing", b'{"is_typing": true}'),
            action_request(ann, "chat", b'{"text": "x"}').replace(ann.token.encode(), b"forged"),
            action_request(ann, "chat", b'{"text": "x"}').replace(ann.game_code.encode(), b"NOPE42"),
        ]
        async with wire(server.port) as (reader, writer):
            for request in requests:
                writer.write(request)
                fast = await answer(reader)
                # The head, then the body: h11's. A refusal before the body is read closes that
                # connection (as it did under Quart), so each goes on a connection of its own.
                split = request.index(b"\r\n\r\n") + 4
                async with wire(server.port) as (slow_reader, slow_writer):
                    slow_writer.write(request[:split])
                    await slow_writer.drain()
                    await asyncio.sleep(0.05)
                    slow_writer.write(request[split:])
                    slow = await answer(slow_reader)
                assert fast[1].get("connection") != "close"
                assert fast[0] == slow[0], (fast, slow)
                if b'"hello"' in request:
                    assert fast[0] == 201 and slow[2]["seq"] == fast[2]["seq"] + 1
                else:
                    assert fast[2] == slow[2]
                # A refusal sent before the split body arrived says the connection will close
                # (arcane/gate.py): that header alone may differ.
                assert {k: v for k, v in fast[1].items() if k not in {"date", "connection"}} == \
                    {k: v for k, v in slow[1].items() if k not in {"date", "connection"}}
            # Then a poll on the same connection, through the lane too.
            writer.write(poll_request(ann, "after=0&timeout=0"))
            status, _, body = await answer(reader)
            assert status == 200 and [e["data"]["text"] for e in body["events"]
                                      if e["event"] == "chat_message"] == ["hello", "hello"]
        # Each request once; the empty body's "split" read was whole too (its head is all of it).
        assert len(actions_taken) == len(requests) + 1 and len(taken) == 1
        await close_all([ann, bram, spectator])


@needs_fast_paths('poll_lane')
async def test_an_action_post_honours_connection_close_and_leaves_the_gate_in_front(
    tmp_path: Path, actions_taken: list[bytes],
) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        async with wire(server.port) as (reader, writer):
            writer.write(action_request(ann, "chat", b'{"text": "bye"}', extra="Connection: close\r\n"))
            status, headers, body = await answer(reader)
            assert status == 201 and headers["connection"] == "close" and body["ok"] is True
            assert await asyncio.wait_for(reader.read(), 2) == b""
        cookie = "; ".join(f"{k}={v}" for k, v in ann.client.cookies.items())
        async with wire(server.port) as (reader, writer):
            # A cookie's request from another site: the gate refuses it, in the lane as in h11.
            request = action_request(ann, "chat", b'{"text": "x"}', extra=f"Cookie: {cookie}\r\nOrigin: http://evil\r\n")
            writer.write(request.replace(f"Authorization: Bearer {ann.token}\r\n".encode(), b""))
            status, _, body = await answer(reader)
            assert status == 403 and body["error"]["code"] == "FORBIDDEN"
        assert len(actions_taken) == 2
        assert await last_seq(server, ann.game_code) == 2  # joined, then the one chat


# -- websocket messages ---------------------------------------------------------------------


def client_frame(payload: bytes, *, opcode: int = 0x1, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    head = bytes((first, 0x80 | size)) if size < 126 else bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_only_whole_final_masked_text_or_binary_frames_are_read_beside_wsproto() -> None:
    text = client_frame('42["typing",{"is_typing":true}]'.encode())
    long_text = client_frame(("é" * 200).encode())  # a 16-bit length
    binary = client_frame(b"\x00\xff\x10", opcode=0x2)
    assert wsproto.messages_of(text + long_text + binary, 1 << 20) == [
        {"type": "websocket.receive", "bytes": None, "text": '42["typing",{"is_typing":true}]'},
        {"type": "websocket.receive", "bytes": None, "text": "é" * 200},
        {"type": "websocket.receive", "bytes": b"\x00\xff\x10", "text": None},
    ]
    unmasked = bytes((0x81, 2)) + b"42"
    not_shortest = bytes((0x81, 0x80 | 126, 0, 2)) + client_frame(b"42")[2:]
    for left_to_wsproto in [
        text[:-1],  # a partial frame
        text + text[:3],  # a whole frame and a partial one
        client_frame(b"4", fin=False),  # a fragment
        client_frame(b"ping", opcode=0x9), client_frame(b"\x03\xe8", opcode=0x8),  # control frames
        client_frame(b"\xff\xfe"),  # text that is not UTF-8
        bytes((0xC1,)) + client_frame(b"42")[1:],  # RSV1: an extension's frame
        unmasked, not_shortest,
    ]:
        assert wsproto.messages_of(left_to_wsproto, 1 << 20) is None, left_to_wsproto
    assert wsproto.messages_of(long_text, 399) is None  # over the size limit: wsproto closes with 1009


@pytest.fixture
def read_beside(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many messages each read taken beside wsproto held."""
    seen: list[int] = []
    messages_of = wsproto.messages_of

    def spy(data: bytes, max_size: int) -> Any:
        messages = messages_of(data, max_size)
        if messages is not None:
            seen.append(len(messages))
        return messages

    monkeypatch.setattr(wsproto, "messages_of", spy)
    return seen


@needs_fast_paths('websocket_receive')
async def test_a_websocket_client_s_messages_arrive_in_order_however_they_are_framed(
    tmp_path: Path, read_beside: list[int],
) -> None:
    async with serving(tmp_path, rate_limit_per_second=1000.0, rate_limit_burst=1000) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, bram.token)
        ack = await raw.call("join_game_room", {"game_code": bram.game_code})
        assert (await raw.message()).startswith(f"43{ack}[")
        read_beside.clear()

        def chat(number: int) -> bytes:
            return f'42{100 + number}["chat_message",{{"text":"line {number}"}}]'.encode()

        sixth = client_frame(chat(6))
        writes = [
            client_frame(chat(1)),  # one message, one read: beside wsproto
            client_frame(chat(2)) + client_frame(chat(3)),  # two in one read: beside wsproto
            client_frame(chat(4)[:5], fin=False) + client_frame(chat(4)[5:], opcode=0x0),  # fragmented
            client_frame(b"are you there", opcode=0x9) + client_frame(chat(5)),  # a ping, then a message
            sixth[:4],  # half a frame ...
            sixth[4:],  # ... then the rest: wsproto holds the first half
            client_frame(chat(7)),  # and beside wsproto again
        ]
        for data in writes:
            raw.writer.write(data)
            await raw.writer.drain()
            await asyncio.sleep(0.1)
        acks = []
        while len(acks) < 7:
            packet = await asyncio.wait_for(raw.message(), 10)
            if packet.startswith("43"):
                acks.append(int(packet[2:5]))
        assert acks == [101, 102, 103, 104, 105, 106, 107]
        assert raw.pongs == [b"are you there"]  # wsproto answered the ping
        assert read_beside == [1, 2, 1]
        answer = await ann.get("/poll?after=0&timeout=0")
        chats = [e["data"]["text"] for e in answer.json()["events"] if e["event"] == "chat_message"]
        assert chats == [f"line {n}" for n in range(1, 8)]
        await raw.close()
        await ann.close()
        await bram.close()


async def test_text_that_is_not_utf8_still_ends_the_websocket_as_wsproto_ends_it(
    tmp_path: Path, read_beside: list[int],
) -> None:
    async with ann_at_table(tmp_path) as (server, ann):
        raw = await RawSocketIO.open(server.port, ann.token)
        read_beside.clear()
        raw.writer.write(client_frame(b'42["typing",\xff]'))
        with pytest.raises(asyncio.IncompleteReadError):  # hypercorn drops the connection
            while True:
                await asyncio.wait_for(raw.message(), 10)
        assert read_beside == []
        assert await sockets_gone(server)
        await raw.close()
