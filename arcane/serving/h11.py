"""hypercorn's HTTP/1.1 connections and h11's state: long-polls read beside h11, answers in one
write, SSE chunks written straight to the transport.

Every long-poller asks again as soon as it is answered: twice a second each at a game
night, one request per typing notice and per chat line. Under hypercorn each of those
requests goes through h11's parser and state machine, an `HTTPStream`, hypercorn's
request events and its response events again on the way out: in a profile that is more
than half of a poll's cost, more than the poll's own work.

So on a plain HTTP/1.1 keep-alive connection (hypercorn's `H11Protocol`, no TLS) that is
between requests, a read that holds exactly one whole, bodiless `GET .../poll` request,
in the plain form our clients send, is taken here (`poll_lane`): parsed in a few lines,
handed to the same ASGI app with the same scope hypercorn would build, and answered with
one write. h11 never sees it and stays between requests, so the next request on the
connection, whatever it is, goes the usual way if it is not such a poll. Anything else (a
partial read, two requests in one read, a body, an upgrade, an odd header, any other
route) is left to h11 untouched. Hypercorn's own bookkeeping is kept: the keep-alive timer
stops while a poll is answered and starts again after, the count of requests per
connection and per worker (`keep_alive_max_requests`, `max_requests`), `connection:
close` and its closing, shutdown (`context.terminated`), the access log.

The same holds for the hot actions' POSTs (`parse_action`: chat, typing, choices; the SSE and
long-poll players' way to act, arcane/fallback/actions.py) when the whole request, its body of
exactly Content-Length bytes included, is the read.

The same patch of `H11Protocol.handle` hands a websocket's small whole messages to
arcane/serving/wsproto.py (`websocket_receive`).

Fast paths here: `poll_lane`, `sse_direct` (`ChunkWriter`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache, partial
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote
from wsgiref.handlers import format_date_time

from arcane.queues import SlimQueue
from arcane.serving import hypercorn, wsproto
from arcane.serving.fastpaths import PATHS, reach
from arcane.serving.hypercorn import ASGIHTTPState, Closed, Connection, HTTPStream, RawData, Updated

h11: Any = reach("h11", paths=("poll_lane", "sse_direct"))
ChunkedWriter: Any = reach("h11._writers", "ChunkedWriter", paths=("sse_direct",))

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_sse = PATHS["sse_direct"]
_lane = PATHS["poll_lane"]
_receive = PATHS["websocket_receive"]


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
        if not _sse.on:
            return send
        connection = hypercorn.connection_of(send, HTTPStream)
        if connection is None or not isinstance(getattr(connection.protocol.connection, "_writer", None),
                                                 ChunkedWriter):
            return send
        return cls(send, connection)

    def write(self, data: bytes) -> bool:
        connection = self._connection
        if not data or connection.stream.state != ASGIHTTPState.RESPONSE or not connection.clear():
            return False
        connection.transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        _sse.used += 1
        return True

    def buffered(self) -> int:
        """Bytes written to the connection that the client has not taken yet."""
        return self._connection.transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes and all (a client that stopped reading)."""
        self._connection.transport.abort()

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        await self._send(message)


# The request line of a poll: only the route, in its plain form (hypercorn's parser takes
# any other form, percent-escapes in the path included).
POLL = re.compile(rb"GET (/api/games/[A-Za-z0-9_-]{1,64}/poll(?:\?[!$&'()*+,./0-9:;=?@A-Z_a-z~%-]*)?) HTTP/1\.1")
# A header line as h11 reads it, less what h11 also allows and our clients never send
# (bytes above 0x7e): those requests go to h11.
HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*((?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?)[ \t]*")
# A request with a body or a change of protocol is h11's.
NOT_OURS = frozenset({b"content-length", b"transfer-encoding", b"upgrade", b"expect", b"http2-settings"})
MAX_HEAD = 16 * 1024


def parse(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bool] | None:
    """(target, headers with lower-case names, keep-alive) of a read that is one whole poll
    request and nothing more; None for anything else."""
    if len(data) > MAX_HEAD or not data.endswith(b"\r\n\r\n"):
        return None
    line = POLL.fullmatch(data, 0, data.find(b"\r\n"))  # before any header line is split
    if line is None:
        return None
    head = _header_lines(data[line.end() + 2:-4].split(b"\r\n"), NOT_OURS)
    if head is None:
        return None
    headers, keep_alive, _ = head
    return line[1], headers, keep_alive


def _header_lines(lines: list[bytes], refused: frozenset[bytes]
                  ) -> tuple[list[tuple[bytes, bytes]], bool, int | None] | None:
    """(headers with lower-case names, keep-alive, Content-Length) of a request's header
    lines, if they are plain, none is `refused`, Host comes exactly once (h11 refuses an
    HTTP/1.1 request without) and Content-Length at most once, in plain digits; else None."""
    headers = []
    hosts = 0
    length = None
    keep_alive = True
    for raw in lines:
        header = HEADER.fullmatch(raw)  # an empty line (a second request) does not match
        if header is None:
            return None
        name, value = header[1].lower(), header[2]
        if name in refused:
            return None
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 6:
                return None  # one plain length only: h11 reads any other
            length = int(value)
        elif name == b"connection" and b"close" in (token.strip() for token in value.lower().split(b",")):
            keep_alive = False
        headers.append((name, value))
    if hosts != 1:
        return None
    return headers, keep_alive, length


# A hot action's POST: only the routes, no query. Its body is whole in the same read, of
# exactly its Content-Length (no chunks, no Expect), and small.
ACTION = re.compile(rb"POST (/api/games/[A-Za-z0-9_-]{1,64}/(?:chat|typing|choices)) HTTP/1\.1")
ACTION_BODY_MAX = 64 * 1024
NOT_AN_ACTIONS = NOT_OURS - {b"content-length"}


def parse_action(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bool, str, bytes] | None:
    """(target, headers, keep-alive, "POST", body) of a read that is one whole action POST,
    body included, and nothing more; None for anything else (h11 reads it then)."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 > MAX_HEAD:
        return None
    line = ACTION.fullmatch(data, 0, data.find(b"\r\n"))  # before any header line is split
    if line is None:
        return None
    head = _header_lines(data[line.end() + 2:end].split(b"\r\n"), NOT_AN_ACTIONS)
    if head is None:
        return None
    headers, keep_alive, length = head
    body = data[end + 4:]
    if length is None or length > ACTION_BODY_MAX or len(body) != length:
        return None
    return line[1], headers, keep_alive, "POST", body


class Poll:
    """One request taken from h11 (a poll, or an action's POST): its ASGI `receive` and `send`,
    and its answer."""

    __slots__ = ("protocol", "target", "headers", "keep_alive", "method", "inbox", "start", "head", "body",
                 "answered", "disconnected", "done")

    def __init__(self, protocol: Any, target: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool,
                 method: str = "GET", body: bytes = b"") -> None:
        self.protocol = protocol
        self.target = target
        self.headers = headers
        self.keep_alive = keep_alive
        self.method = method
        self.inbox = SlimQueue()
        self.inbox.put_nowait({"type": "http.request", "body": body, "more_body": False})
        self.start = time.time()
        self.head: MutableMapping[str, Any] | None = None
        self.body: list[bytes] = []
        self.answered = False
        self.disconnected = False
        self.done = asyncio.get_running_loop().create_future()

    def gone(self) -> None:
        """The client went (or hypercorn closed the connection): the app hears it now, and
        nothing more is written (hypercorn's stream does the same once closed)."""
        self.disconnected = True
        if not self.answered:
            self.inbox.put_nowait({"type": "http.disconnect"})

    async def run(self) -> None:
        protocol = self.protocol
        config = protocol.config
        try:
            path, _, query = self.target.partition(b"?")
            scope = {
                "type": "http", "http_version": "1.1", "asgi": {"spec_version": "2.1", "version": "3.0"},
                "method": self.method, "scheme": "http", "path": unquote(path.decode("ascii")), "raw_path": path,
                "query_string": query, "root_path": config.root_path, "headers": self.headers,
                "client": protocol.client, "server": protocol.server,
                "state": protocol.connection_state.copy(), "extensions": {},
            }
            loop = asyncio.get_running_loop()
            try:
                await protocol.app(scope, self.inbox.get, self.send, partial(loop.run_in_executor, None),
                                   partial(hypercorn.run_from_thread, loop))
            except Exception:
                await config.log.exception("Error in ASGI Framework")
            if not self.answered and not self.disconnected:
                # No answer, or one begun and not finished: hypercorn answers 500 then too.
                self.head = {"type": "http.response.start", "status": 500, "headers": []}
                self.keep_alive = False
                await self._write(500, [(b"content-length", b"0")], b"")
            await config.log.access(scope, self.head, time.time() - self.start)
            if self.disconnected:
                return  # hypercorn is closing the connection already
            if not self.keep_alive or protocol.context.terminated.is_set():
                await protocol.send(Closed())
            else:
                await protocol.send(Updated(idle=True))
        finally:
            protocol.poll = None
            self.done.set_result(None)

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self.answered or self.disconnected:
            return
        if message["type"] == "http.response.start":
            self.head = message  # a second start (an error page after a failed answer) replaces the first
            self.body = []
        elif message["type"] == "http.response.body" and self.head is not None:
            self.body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                await self._write(int(self.head["status"]), list(self.head.get("headers", ())), b"".join(self.body))
        else:
            raise RuntimeError(f"unexpected ASGI message {message['type']!r}")

    async def _write(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        protocol = self.protocol
        config = protocol.config
        if protocol.keep_alive_requests >= config.keep_alive_max_requests:
            self.keep_alive = False
        lines = [b"HTTP/1.1 %d %s" % (status, _reason(status))]
        length = None
        for name, value in [*headers, *_server_headers(config)]:
            name, value = bytes(name).strip().lower(), bytes(value).strip()
            if not name or b"\r" in name or b"\n" in name or b":" in name or b"\r" in value or b"\n" in value:
                raise ValueError(f"not a valid response header: {name!r}: {value!r}")
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.lower() == b"close":
                self.keep_alive = False
                continue
            lines.append(b"%s: %s" % (name, value))
        if length is None:
            lines.append(b"content-length: %d" % len(body))
        elif length != len(body):
            raise ValueError(f"content-length {length} for a body of {len(body)} bytes")
        if not self.keep_alive:
            lines.append(b"connection: close")
        data = b"\r\n".join(lines) + b"\r\n\r\n" + body
        self.answered = True
        connection = hypercorn.connection_of_protocol(protocol)
        if connection is not None and connection.clear():
            connection.transport.write(data)
        else:
            await protocol.send(RawData(data=data))


_date: tuple[int, bytes] = (0, b"")


def _server_headers(config: Any) -> list[tuple[bytes, bytes]]:
    """`config.response_headers("h11")`, with the date formatted once a second, not per answer."""
    global _date
    if config._quic_addresses or not config.include_date_header:
        return config.response_headers("h11")  # type: ignore[no-any-return]
    now = int(time.time())
    if _date[0] != now:
        _date = (now, format_date_time(now).encode("ascii"))
    headers = [(b"date", _date[1])]
    if config.include_server_header:
        headers.append((b"server", b"hypercorn-h11"))
    headers.extend((b"alt-svc", alt.encode()) for alt in config.alt_svc_headers)
    return headers


@cache
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


_handle: Any = None  # H11Protocol.handle, hypercorn's own


def use_handle(polls: bool, messages: bool) -> None:
    """Have hypercorn's HTTP/1.1 connections hand their long-polls to `Poll` (`poll_lane`),
    and their websockets' small whole messages to arcane/serving/wsproto.py
    (`websocket_receive`); with neither, hypercorn's own `handle` is back."""
    global _handle
    H11Protocol = hypercorn.H11Protocol
    if H11Protocol is None:
        return
    if _handle is None:
        _handle = H11Protocol.handle
        H11Protocol.poll = None
    H11Protocol.handle = _handle_with_polls if polls or messages else _handle


async def _handle_with_polls(self: Any, event: Any) -> None:
    poll: Poll | None = self.poll
    if poll is not None:
        if isinstance(event, Closed) or not event.data:  # closed, or the client's end of stream
            poll.gone()
            return
        # Bytes sent while a poll is open (a pipelined request) wait for its answer:
        # the reader pauses, as it does while h11 serves a request.
        await asyncio.shield(poll.done)
        if poll.disconnected or not poll.keep_alive:
            return  # the connection is closing
    if type(event) is RawData and type(self.connection) is hypercorn.H11WSConnection:
        if _receive.on and await wsproto.take_messages(self, event.data):
            return
    elif type(event) is RawData and _lane.on and _between_requests(self):
        request = parse(event.data) or parse_action(event.data)
        if request is not None:
            _lane.used += 1
            self.poll = poll = Poll(self, *request)
            # What hypercorn does as a request arrives: no keep-alive timeout while it is
            # served, and the connection's and the worker's counts of requests.
            await self.send(Updated(idle=False))
            self.keep_alive_requests += 1
            await self.context.mark_request()
            self.task_group.spawn(poll.run)
            return
    await _handle(self, event)


def _between_requests(protocol: Any) -> bool:
    connection = protocol.connection
    return (protocol.stream is None and not protocol.ssl and not protocol.config.server_names
            and type(connection) is h11.Connection and connection.our_state is h11.IDLE
            and connection.their_state is h11.IDLE and not connection.trailing_data[0])


