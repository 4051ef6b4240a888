"""A Socket.IO client over a hand-made websocket, so a test decides when it reads.

Library clients read everything the moment it arrives; this one reads only when asked,
with a small receive buffer, to play a client on a slow network.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from typing import Any


class RawSocketIO:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._ack_id = 0
        self.pongs: list[bytes] = []  # answers to pings the test sent itself

    @classmethod
    async def open(cls, port: int, token: str, *, receive_buffer: int = 4096) -> RawSocketIO:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        opened = await client.message()
        assert opened.startswith("0{"), opened
        await client.send("40" + json.dumps({"token": token}))
        connected = await client.message()
        assert connected.startswith("40{"), connected
        return client

    async def call(self, event: str, data: Any) -> int:
        """Emit with an ack id; the ack arrives among the messages as `43<id>[...]`."""
        self._ack_id += 1
        await self.send(f"42{self._ack_id}" + json.dumps([event, data]))
        return self._ack_id

    async def ack(self, ack_id: int, timeout: float = 10) -> tuple[Any, list[str]]:
        """The answer to call `ack_id`, and every packet that arrived before it."""
        before = []
        while not (packet := await asyncio.wait_for(self.message(), timeout)).startswith(f"43{ack_id}["):
            before.append(packet)
        return json.loads(packet[len(f"43{ack_id}"):])[0], before

    async def message(self) -> str:
        """The next Engine.IO packet, answering the server's pings on the way."""
        while True:
            text = await self._frame()
            if text == "2":
                await self.send("3")
                continue
            return text

    async def _frame(self) -> str:
        while True:
            first, opcode, payload = await self._read_frame()
            if opcode != 0xA:
                break
            self.pongs.append(payload)
        if opcode == 0x8:
            raise ConnectionError(f"closed by the server: {payload!r}")
        assert opcode == 0x1, f"expected a text frame, got opcode {opcode}"
        return payload.decode()

    async def _read_frame(self) -> tuple[int, int, bytes]:
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(size)
        assert first & 0x80, "fragmented frames are not expected"
        assert not second & 0x80, "a server must not mask its frames"
        return first, first & 0x0F, payload

    async def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        size = len(data)
        if size < 126:
            header = bytes((0x81, 0x80 | size))
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, size)
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
