"""SSE chunks written straight to hypercorn's transport keep the stream whole and in order."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from arcane.serving.h11 import ChunkWriter
from tests.support import needs_fast_paths, seat_party, serving

FLOOD = {"rate_limit_per_second": 100_000.0, "rate_limit_burst": 100_000, "stream_buffer": 100_000}


class RawSse:
    """An SSE client over a plain socket that reads only when asked, with a small buffer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._text = ""

    @classmethod
    async def open(cls, port: int, path: str, token: str) -> RawSse:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head.lower(), head
        return cls(reader, writer)

    async def event(self) -> tuple[str, dict[str, object]]:
        """The next event with data (comments and the retry hint skipped)."""
        while True:
            while "\n\n" not in self._text:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)  # a malformed chunk fails here
                assert size > 0, "the body ended"
                chunk = await self.reader.readexactly(size + 2)
                assert chunk.endswith(b"\r\n"), chunk[-20:]
                self._text += chunk[:-2].decode()
            block, self._text = self._text.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":"))
            if "data" in fields:
                return fields["event"], json.loads(fields["data"])

    def close(self) -> None:
        self.writer.close()


@needs_fast_paths('sse_direct')
async def test_a_slow_sse_reader_gets_every_event_in_order_whichever_way_each_chunk_went(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ways: list[bool] = []
    direct = ChunkWriter.write

    def write(self: ChunkWriter, data: bytes) -> bool:
        ways.append(direct(self, data))
        return ways[-1]

    monkeypatch.setattr(ChunkWriter, "write", write)
    async with serving(tmp_path, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSse.open(server.port, f"/api/games/{bram.game_code}/events?last_event_id=0", bram.token)
        assert (await raw.event())[0] == "player_joined"
        assert ways and all(ways), "the stream's chunks did not go straight to the transport"

        # Bram stops reading: big chats fill the socket buffers until a chunk has to wait
        # for hypercorn's drain.
        dragons = "\U0001F409" * 490
        sent = 0
        while all(ways) and sent < 3000:
            assert (await ann.post("/chat", {"text": f"{sent:05d}{dragons}"})).status_code == 201
            sent += 1
        assert not all(ways), "the server never had to wait for the slow reader"

        async def more(first: int) -> None:  # and more, while he catches up slowly
            for i in range(first, first + 300):
                assert (await ann.post("/chat", {"text": f"{i:05d}{dragons[:i % 50]}"})).status_code == 201

        poster = asyncio.create_task(more(sent))
        sent += 300
        texts: list[str] = []
        seqs: list[int] = []
        while len(texts) < sent:
            name, data = await asyncio.wait_for(raw.event(), 10)
            if name == "chat_message":
                texts.append(str(data["text"])[:5])
                seqs.append(int(data["seq"]))  # type: ignore[call-overload]
            if len(texts) % 3:
                await asyncio.sleep(0.001)
        await poster
        assert texts == [f"{i:05d}" for i in range(sent)]
        assert seqs == list(range(seqs[0], seqs[0] + sent))

        # Caught up: chunks go direct again.
        ways.clear()
        assert (await ann.post("/chat", {"text": "live again"})).status_code == 201
        assert (await asyncio.wait_for(raw.event(), 10))[1]["text"] == "live again"
        assert ways == [True]
        raw.close()
        await ann.close()
        await bram.close()


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:] if line)}
    body = b"" if head_only else await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def test_answers_through_hypercorn_keep_the_connection_alive_for_the_next_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Polls the fast lane does not take (tests/test_fastlane.py) are h11's and hypercorn's:
    their answers, a refusal with no body among them, leave the connection ready."""
    from arcane.serving import h11

    monkeypatch.setattr(h11, "parse", lambda data: None)
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        poll = f"/api/games/{ann.game_code}/poll?after=0&timeout=0"

        def ask(method: str, path: str) -> None:
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann.token}\r\n\r\n".encode())

        ask("GET", poll)
        status, headers, body = await read_response(reader)
        assert status == 200 and headers["content-type"] == "application/json"
        assert headers["cache-control"] == "no-store" and "date" in headers and headers.get("connection") != "close"
        assert [e["event"] for e in json.loads(body)["events"]] == ["player_joined"]
        # On the same connection: a refusal with no body (HEAD), then a poll that waits for news.
        ask("HEAD", poll)
        status, headers, _ = await read_response(reader, head_only=True)
        assert status == 405 and headers["allow"] == "GET" and int(headers["content-length"]) > 0
        ask("GET", f"/api/games/{ann.game_code}/poll?after=1&timeout=5")
        await asyncio.sleep(0.2)
        assert (await ann.post("/chat", {"text": "over the same wire"})).status_code == 201
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        assert status == 200 and json.loads(body)["events"][0]["data"]["text"] == "over the same wire"
        writer.close()
        await ann.close()
