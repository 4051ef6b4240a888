"""What a crowd repeats all night, read beside h11 and wsproto: long-polls and small websocket messages.

Every long-poller asks again as soon as it is answered: twice a second each at a game
night, one request per typing notice and per chat line. Under hypercorn each of those
requests goes through h11's parser and state machine, an `HTTPStream`, hypercorn's
request events and its response events again on the way out: in a profile that is more
than half of a poll's cost, more than the poll's own work.

So on a plain HTTP/1.1 keep-alive connection (hypercorn's `H11Protocol`, no TLS) that is
between requests, a read that holds exactly one whole, bodiless `GET .../poll` request,
in the plain form our clients send, is taken here: parsed in a few lines, handed to the
same ASGI app with the same scope hypercorn would build, and answered with one write.
h11 never sees it and stays between requests, so the next request on the connection,
whatever it is, goes the usual way if it is not such a poll. Anything else (a partial
read, two requests in one read, a body, an upgrade, an odd header, any other route)
is left to h11 untouched. Hypercorn's own bookkeeping is kept: the keep-alive timer
stops while a poll is answered and starts again after, the count of requests per
connection and per worker (`keep_alive_max_requests`, `max_requests`), `connection:
close` and its closing, shutdown (`context.terminated`), the access log.

The same holds for websocket messages from clients (below `messages_of`).

This reaches into hypercorn 0.18 and wsproto 1.x (pinned in pyproject.toml), like arcane/wire.py.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import MutableMapping
from functools import cache, partial
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote
from wsgiref.handlers import format_date_time

from wsproto.connection import ConnectionState as WebsocketState

from arcane import wire
from arcane.slim import SlimQueue, run_from_thread
from arcane.wire import Closed, H11Protocol, H11WSConnection, RawData, Updated, h11

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
    lines = data[:-4].split(b"\r\n")
    line = POLL.fullmatch(lines[0])
    if line is None:
        return None
    headers = []
    hosts = 0
    keep_alive = True
    for raw in lines[1:]:
        header = HEADER.fullmatch(raw)  # an empty line (a second request) does not match
        if header is None:
            return None
        name, value = header[1].lower(), header[2]
        if name in NOT_OURS:
            return None
        if name == b"host":
            hosts += 1
        elif name == b"connection" and b"close" in (token.strip() for token in value.lower().split(b",")):
            keep_alive = False
        headers.append((name, value))
    if hosts != 1:  # h11 refuses an HTTP/1.1 request without exactly one Host
        return None
    return line[1], headers, keep_alive


class Poll:
    """One poll taken from h11: its ASGI `receive` and `send`, and its answer."""

    __slots__ = ("protocol", "target", "headers", "keep_alive", "inbox", "start", "head", "body", "answered",
                 "disconnected", "done")

    def __init__(self, protocol: Any, target: bytes, headers: list[tuple[bytes, bytes]], keep_alive: bool) -> None:
        self.protocol = protocol
        self.target = target
        self.headers = headers
        self.keep_alive = keep_alive
        self.inbox = SlimQueue()
        self.inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})
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
                "method": "GET", "scheme": "http", "path": unquote(path.decode("ascii")), "raw_path": path,
                "query_string": query, "root_path": config.root_path, "headers": self.headers,
                "client": protocol.client, "server": protocol.server,
                "state": protocol.connection_state.copy(), "extensions": {},
            }
            loop = asyncio.get_running_loop()
            try:
                await protocol.app(scope, self.inbox.get, self.send, partial(loop.run_in_executor, None),
                                   partial(run_from_thread, loop))
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
        connection = wire.connection_of_protocol(protocol)
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


def install() -> None:
    """Have hypercorn's HTTP/1.1 connections hand their long-polls to `Poll`, and their
    websockets' small whole messages to `_take_messages`."""
    if H11Protocol is None or getattr(H11Protocol, "poll", False) is None:
        return
    handle = H11Protocol.handle

    async def handle_with_polls(self: Any, event: Any) -> None:
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
        if type(event) is RawData and type(self.connection) is H11WSConnection:
            if await _take_messages(self, event.data):
                return
        elif type(event) is RawData and _between_requests(self):
            request = parse(event.data)
            if request is not None:
                self.poll = poll = Poll(self, *request)
                # What hypercorn does as a request arrives: no keep-alive timeout while it is
                # served, and the connection's and the worker's counts of requests.
                await self.send(Updated(idle=False))
                self.keep_alive_requests += 1
                await self.context.mark_request()
                self.task_group.spawn(poll.run)
                return
        await handle(self, event)

    H11Protocol.poll = None  # type: ignore[attr-defined]
    H11Protocol.handle = handle_with_polls  # type: ignore[method-assign]


def _between_requests(protocol: Any) -> bool:
    connection = protocol.connection
    return (protocol.stream is None and not protocol.ssl and not protocol.config.server_names
            and type(connection) is h11.Connection and connection.our_state is h11.IDLE
            and connection.their_state is h11.IDLE and not connection.trailing_data[0])


# -- websocket messages -----------------------------------------------------------------------
#
# Every chat line and typing notice a websocket client sends is one small masked frame.
# wsproto parses each through a buffer, a generator, a frame and a message decoder, an
# event object, then hypercorn's message buffer: several times the work of the message's
# own handling. A read that is nothing but whole, final, unfragmented text or binary
# frames, on a connection where neither wsproto nor hypercorn holds anything partial, is
# read here and handed to the app as hypercorn would; anything else (a control frame, a
# fragment, a partial frame, a frame over the size limit, text that is not UTF-8) goes to
# wsproto untouched, which answers it as always (pong, close, 1009, 1007).


def messages_of(data: bytes, max_size: int) -> list[dict[str, Any]] | None:
    """The ASGI receive messages of `data` if it is only whole, final, masked, unextended
    text or binary frames of at most `max_size` bytes each; else None."""
    messages: list[dict[str, Any]] = []
    at, end = 0, len(data)
    while at < end:
        if end - at < 6:
            return None
        first, second = data[at], data[at + 1]
        if first not in (0x81, 0x82) or not second & 0x80:  # FIN, no RSV, text/binary; masked
            return None
        size = second & 0x7F
        at += 2
        if size == 126:
            size = int.from_bytes(data[at:at + 2], "big")
            at += 2
            if size < 126:  # not the shortest form: wsproto refuses it
                return None
        elif size == 127:
            return None
        if size > max_size or end - at < 4 + size:
            return None
        mask, payload = data[at:at + 4], data[at + 4:at + 4 + size]
        at += 4 + size
        unmasked = (int.from_bytes(payload, "little") ^ int.from_bytes(mask * (size // 4 + 1), "little")
                    & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        if first == 0x81:
            try:
                text = unmasked.decode("utf-8")
            except UnicodeDecodeError:
                return None
            messages.append({"type": "websocket.receive", "bytes": None, "text": text})
        else:
            messages.append({"type": "websocket.receive", "bytes": unmasked, "text": None})
    return messages


async def _take_messages(protocol: Any, data: bytes) -> bool:
    stream = protocol.stream
    if not isinstance(stream, wire.WSStream) or stream.closed or protocol.connection.buffer:
        return False
    if stream.state != wire.ASGIWebsocketState.CONNECTED or stream.buffer.value is not None:
        return False
    websocket = stream.connection
    try:
        frames = websocket._proto
        idle = (websocket.state is WebsocketState.OPEN and not websocket._events and not frames.extensions
                and len(frames._frame_decoder.buffer) == 0 and frames._frame_decoder.header is None
                and frames._message_decoder.opcode is None)
    except AttributeError:  # another wsproto
        return False
    if not idle:
        return False
    messages = messages_of(data, stream.config.websocket_max_message_size)
    if messages is None:
        return False
    app_put = stream.app_put
    if app_put is None:  # not yet handed to the app
        return False
    for message in messages:
        await app_put(message)
    return True
