"""A refusal that does not wait for the request's body still leaves the client a usable
connection: hypercorn closes the connection after it, so the answer must say so."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support import serving


async def _head(reader: asyncio.StreamReader) -> bytes:
    return (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).lower()


async def _body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    return await asyncio.wait_for(reader.readexactly(length), 10)


async def test_a_refusal_sent_before_the_body_arrived_says_the_connection_will_close(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        # A cookie-authenticated POST that is not JSON: the gate refuses it from its head alone.
        writer.write(f"POST /api/games/ABCDEF/chat HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n".encode())
        await writer.drain()
        head = await _head(reader)
        assert head.startswith(b"http/1.1 415"), head
        await _body(reader, head)
        # Before, the answer did not say it, and the connection was closed under the client's next request.
        assert b"\r\nconnection: close\r\n" in head, head
        writer.write(b"{}")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, as announced
        writer.close()


async def test_a_request_whose_body_was_read_keeps_its_connection(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        body = b'{"player_name": "Ann"}'
        writer.write(f"POST /api/games HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        head = await _head(reader)
        assert head.startswith(b"http/1.1 201"), head
        assert b"connection: close" not in head, head
        await _body(reader, head)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode())
        await writer.drain()
        assert (await _head(reader)).startswith(b"http/1.1 200")
        writer.close()
