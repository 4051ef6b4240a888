"""Hypercorn's connection behind an ASGI `send`, for writing to its transport directly.

Hypercorn passes every message the app sends through its stream, protocol and server
objects (h11 or wsproto, a lock, a drain): for one small frame or chunk that costs more
than the rest of a delivery. Where the bytes are simple to frame (an unmasked websocket
frame, an HTTP/1.1 body chunk) and nothing of hypercorn's waits to be written ahead of
them, they are written to the transport at once instead (realtime/direct.py, and
`ChunkWriter` below for SSE).

This reaches into hypercorn 0.18's objects (pinned in pyproject.toml); arcane/fastlane.py
takes them from here. Anywhere they are
not what is expected (another server, HTTP/2, TLS), `connection_of` answers None and
everything goes through hypercorn as usual.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

try:
    import h11
    from h11._writers import ChunkedWriter
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.events import Closed, RawData, Updated
    from hypercorn.protocol.events import StreamClosed
    from hypercorn.protocol.h11 import H11Protocol, H11WSConnection
    from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
    from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
    from hypercorn.utils import suppress_body
except ImportError:  # pragma: no cover - not served by hypercorn
    h11 = ChunkedWriter = TCPServer = StreamClosed = H11Protocol = HTTPStream = ASGIHTTPState = None  # type: ignore
    Closed = RawData = Updated = H11WSConnection = None  # type: ignore[assignment,misc]
    WSStream = ASGIWebsocketState = suppress_body = None  # type: ignore[assignment,misc]

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# Above this many unsent bytes a client is reading slowly: writes go through hypercorn
# again, which awaits the drain.
HIGH_WATER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Connection:
    stream: Any  # hypercorn's WSStream or HTTPStream: the request
    protocol: Any  # H11Protocol: the connection's HTTP/1.1 state
    server: Any  # TCPServer: the socket, its transport and its send lock

    @property
    def transport(self) -> asyncio.WriteTransport:
        return self.server.writer.transport  # type: ignore[no-any-return]

    def clear(self) -> bool:
        """Nothing of hypercorn's waits to be written, and the client keeps up."""
        transport = self.transport
        return (not self.server.send_lock.locked() and not transport.is_closing()
                and transport.get_write_buffer_size() <= HIGH_WATER)


def connection_of(send: Any, stream_type: Any) -> Connection | None:
    """ASGI send -> hypercorn's `stream_type` -> H11Protocol (not TLS) -> TCPServer."""
    if TCPServer is None or stream_type is None:
        return None
    stream = getattr(send, "__self__", None)
    if not isinstance(stream, stream_type):
        return None
    return connection_of_protocol(getattr(stream.send, "__self__", None), stream)


def connection_of_protocol(protocol: Any, stream: Any = None) -> Connection | None:
    """H11Protocol (not TLS) -> TCPServer."""
    if TCPServer is None or not isinstance(protocol, H11Protocol) or protocol.ssl:
        return None
    server = getattr(protocol.send, "__self__", None)
    if not isinstance(server, TCPServer):
        return None
    return Connection(stream, protocol, server)


class ChunkWriter:
    """A streamed HTTP/1.1 response's `send`, whose body chunks may skip hypercorn.

    Once the headers are out, `write(data)` puts a whole chunk (`<size>CRLF<data>CRLF`;
    h11 keeps no count of a chunked body) on the transport, when `Connection.clear()`;
    otherwise it answers False and the caller sends the chunk through hypercorn as
    before, which waits for a slow client. Calling the writer is hypercorn's `send`:
    the end of the body goes that way, so h11 ends the response as usual.
    """

    __slots__ = ("_send", "_connection")

    def __init__(self, send: Send, connection: Connection) -> None:
        self._send = send
        self._connection = connection

    @classmethod
    def over(cls, send: Send) -> Send:
        """A ChunkWriter for `send` when its response is chunked over plain HTTP/1.1; else `send`."""
        connection = connection_of(send, HTTPStream)
        if connection is None or not isinstance(getattr(connection.protocol.connection, "_writer", None),
                                                 ChunkedWriter):
            return send
        return cls(send, connection)

    def write(self, data: bytes) -> bool:
        connection = self._connection
        if not data or connection.stream.state != ASGIHTTPState.RESPONSE or not connection.clear():
            return False
        connection.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        return True

    def buffered(self) -> int:
        """Bytes written to the connection that the client has not taken yet."""
        return self._connection.transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all (a client that stopped reading)."""
        self._connection.transport.abort()

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        await self._send(message)


async def respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
    """A whole response (a long-poll's answer) written to the transport in one piece.

    Hypercorn's own steps for it (`HTTPStream.app_send`, `H11Protocol.stream_send`) are
    taken in one pass: h11 still frames the response and moves its state, hypercorn adds
    its headers, logs the request and recycles the connection for the next one; only its
    three separate writes, locks and drains become one write. Answers False, having sent
    nothing, where that does not apply (not plain HTTP/1.1 under hypercorn, a response
    already begun, something of hypercorn's waiting to be written): send as usual then.
    """
    connection = connection_of(send, HTTPStream)
    if connection is None or not connection.clear():
        return False
    stream, protocol = connection.stream, connection.protocol
    state = protocol.connection
    if stream.closed or stream.state != ASGIHTTPState.REQUEST or state.our_state is not h11.SEND_RESPONSE:
        return False
    config = protocol.config
    headers = [*headers, *config.response_headers("h11")]
    if protocol.keep_alive_requests >= config.keep_alive_max_requests:
        headers.append((b"connection", b"close"))
    data = state.send(h11.Response(status_code=status, headers=headers))
    if body and not suppress_body(stream.scope["method"], status):
        data += state.send(h11.Data(data=body))
    data += state.send(h11.EndOfMessage())
    connection.transport.write(data)
    stream.response = {"type": "http.response.start", "status": status, "headers": headers}
    stream.state = ASGIHTTPState.CLOSED
    await config.log.access(stream.scope, stream.response, time.time() - stream.start_time)
    await stream.send(StreamClosed(stream_id=stream.stream_id))
    return True
