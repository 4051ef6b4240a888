"""In front of Engine.IO: a polling POST's body is read here, bounded, before Engine.IO sees it.

python-engineio (4.x) answers an oversized POST by closing the socket with `wait=True`,
which waits for the socket's queue to be drained by a long-poll GET that never comes: the
request never ends, hypercorn never closes the connection (CLOSE-WAIT), and on Python 3.12+
shutdown waits for it for ever (docs/upstream/engineio-oversized-post.md). So a body larger
than `limit` (declared, or counted as it streams) is answered 413 here and the connection
closed; Engine.IO is handed only bodies it will accept. A body still arriving when shutdown
begins, or after `timeout`, is refused too, so no client can hold a request open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class BoundedPollingBodies:
    """Stands in for the Socket.IO server where `socketio.ASGIApp` calls its `handle_request`."""

    def __init__(self, server: Any, *, path: str, limit: int, timeout: float,
                 closing: Callable[[], asyncio.Event]) -> None:
        self.server = server
        self.path = path
        self.limit = limit
        self.timeout = timeout
        self._closing = closing

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope["path"].startswith(self.path):
            await self.server.handle_request(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except _Refused as refusal:
            await _refuse(send, refusal.status, refusal.message)
            return
        if not _engineio_payload(body):
            await _refuse(send, 400, "not an Engine.IO payload")
            return
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.server.handle_request(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        for name, value in scope.get("headers", ()):
            if name.lower() == b"content-length" and (not value.strip().isdigit() or int(value) > self.limit):
                raise _Refused(413, f"a polling body may be at most {self.limit} bytes")
        closing = self._closing()
        if closing.is_set():
            raise _Refused(503, "the server is shutting down")
        reading = asyncio.ensure_future(self._body(receive))
        stopping = asyncio.ensure_future(closing.wait())
        try:
            await asyncio.wait({reading, stopping}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not reading.done():
                reading.cancel()
        if reading.cancelled():
            raise _Refused(503 if closing.is_set() else 408, "the request body did not arrive in time")
        return reading.result()

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Refused(400, "the client went away")
            chunk = message.get("body") or b""
            size += len(chunk)
            if size > self.limit:
                raise _Refused(413, f"a polling body may be at most {self.limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


# The first byte of each Engine.IO packet in a polling payload: a packet type (0-6), or a
# base64 binary message. Engine.IO's `receive` raises IndexError, logged with a traceback,
# on a type above 6.
_PACKET_STARTS = frozenset(b"0123456b")


def _engineio_payload(body: bytes) -> bool:
    return not body or all(packet[:1] and packet[0] in _PACKET_STARTS for packet in body.split(b"\x1e"))


async def _refuse(send: Send, status: int, message: str) -> None:
    body = message.encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(body)),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
