"""Long-polls read and answered beside h11 (arcane/fastlane.py), on a live server over raw sockets.

Each test checks what a client sees on the wire, and which way the server took: the
fast lane for a plain keep-alive poll, h11 for everything else on the same connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from arcane import fastlane
from tests.support import Player, seat_party, serving
from tests.test_wire import read_response


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The targets of the requests the fast lane took, in order."""
    seen: list[bytes] = []
    parse = fastlane.parse

    def spy(data: bytes) -> Any:
        request = parse(data)
        if request is not None:
            seen.append(request[0])
        return request

    monkeypatch.setattr(fastlane, "parse", spy)
    return seen


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


async def test_a_poll_is_answered_beside_h11_and_the_connection_serves_any_request_next(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
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
        await ann.close()


async def test_polls_the_fast_lane_leaves_to_h11_get_the_same_answer(tmp_path: Path, taken: list[bytes]) -> None:
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
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


async def test_a_request_sent_while_a_poll_waits_is_answered_after_it_in_order(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
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
        await ann.close()


async def test_a_poller_that_hangs_up_while_waiting_is_let_go_at_once(tmp_path: Path, taken: list[bytes]) -> None:
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=1&timeout=0"))  # online now: no presence news below
            assert (await answer(reader))[0] == 200
            await asyncio.sleep(0.3)
            writer.write(poll_request(ann, "after=1&timeout=30"))
            for _ in range(100):
                if server.runtime.followers:
                    break
                await asyncio.sleep(0.02)
            assert len(server.runtime.followers) == 1 and len(taken) == 2
        for _ in range(100):
            if not server.runtime.followers:
                break
            await asyncio.sleep(0.02)
        assert not server.runtime.followers  # well before the 30 s timeout
        # And the server goes on answering.
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0"))
            assert (await answer(reader))[0] == 200
        await ann.close()


async def test_connection_close_is_honoured_and_a_request_h11_refuses_is_refused_as_before(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
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
        await ann.close()


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


async def test_a_connection_left_idle_after_a_poll_is_closed_at_the_keep_alive_timeout(
    tmp_path: Path, taken: list[bytes],
) -> None:
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
        async with wire(server.port) as (reader, writer):
            writer.write(poll_request(ann, "after=0&timeout=0"))
            assert (await answer(reader))[0] == 200
            # hypercorn's keep_alive_timeout (5 s): its timer stopped for the poll and runs again.
            assert await asyncio.wait_for(reader.read(), 10) == b""
        assert len(taken) == 1
        await ann.close()


async def test_the_last_request_hypercorn_allows_on_a_connection_is_answered_and_the_connection_closed(
    tmp_path: Path, taken: list[bytes],
) -> None:
    from hypercorn.config import Config

    allowed = Config().keep_alive_max_requests
    async with serving(tmp_path) as server:
        (ann,) = await seat_party(server, ["Ann"])
        async with wire(server.port) as (reader, writer):
            for number in range(1, allowed + 1):
                writer.write(poll_request(ann, "after=1&timeout=0"))
                status, headers, _ = await answer(reader)
                assert status == 200
                assert (headers.get("connection") == "close") == (number == allowed), number
            assert await asyncio.wait_for(reader.read(), 2) == b""
        assert len(taken) == allowed
        await ann.close()
