"""Server-Sent Events: `GET /api/games/<code>/events`, one open response per client.

Logged events are `id: <seq>` / `event: <name>` / `data: <json>`; ephemeral ones
carry no `id`, so the browser's Last-Event-ID stays on the last logged event.
Served by the bare ASGI front of arcane/fallback/bare.py, not by Quart.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

from arcane import wire
from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event
from arcane.fallback.bare import Caller, Receive, Request, Send, on_disconnect
from arcane.fallback.following import Following, parse_cursor
from arcane.feed import Backlog, Feed
from arcane.game.records import Identity, Member
from arcane.transports import PAYLOAD, Encoder, Services
from arcane.wire import ChunkWriter

log = logging.getLogger(__name__)
HEARTBEAT = b": heartbeat\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


async def serve(rt: Services, caller: Caller, code: str, request: Request, receive: Receive, send: Send) -> None:
    ident, member = await caller(rt, code, request)
    after = resume_point(request)
    slot = rt.limits.connections.open(identity=ident.rate_key, address=request.address)
    del request  # an open stream keeps nothing of the request
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await stream(rt, ident, member, after, receive, send)
    finally:
        slot.release()


def resume_point(request: Request) -> int | None:
    """The client's cursor; the header wins, since the browser updates it on every reconnect."""
    header = request.headers.get("last-event-id")
    if header:
        return parse_cursor(header)
    return parse_cursor(request.arg("last_event_id"))


async def stream(rt: Services, ident: Identity, member: Member, after: int | None,
                 receive: Receive, send: Send) -> None:
    """The whole life of one stream; everything it opens is released in `finally`.

    It ends when the client goes (hypercorn reports the disconnect to `receive`), when
    the feed closes (shutdown, or the seat left the game: its last frame is
    `seat_closed`), when the client falls `Backlog` behind (the connection is dropped),
    or when sending fails. The client resumes from its id.
    """
    conn_id = f"sse:{secrets.token_hex(8)}"
    async with Following(rt, ident) as feed:
        unwatch = on_disconnect(receive, feed.close)
        if member.is_player:
            rt.presence.connect(ident.game_code, ident.player_id, member.name, conn_id)
        try:
            await _body(send, f"retry: {rt.settings.sse_retry_ms}\n\n".encode())
            send = ChunkWriter.over(send)  # the headers are out: the body's chunks may go direct
            behind = Behind(Backlog.of(rt.settings), send, feed, ident)
            feed.on_backlog(behind.check)
            try:
                start = await feed.start(after)
            except ArcaneError as error:
                if error.code is not ErrorCode.NOT_IN_GAME:
                    raise
                # The seat left between its check and this catch-up: the stream ends, as
                # at its `seat_closed`; the response has begun, so no JSON error can follow.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if not start.recovered:
                await _body(send, frame(start.sync_event(ident.game_code), seq=start.seq))
            else:
                # In pieces, each waiting for a slow client: a long replay never sits whole
                # in the connection's buffer.
                events, pieces = start.events, Backlog(len(start.events), wire.HIGH_WATER)
                while events:
                    piece = pieces.prefix(events, lambda e: len(frame(e)))
                    await _body(send, frames(piece))
                    events = events[len(piece):]
            del start  # the catch-up is sent: an open stream keeps none of it
            while not behind.cut:
                event = await feed.next(timeout=rt.settings.sse_heartbeat)
                if event is not None:
                    data = frames([event, *await feed.ready()])
                    behind.check(0, len(data))
                    if not behind.cut:
                        await _body(send, data)
                elif feed.closed:
                    break
                else:
                    await _body(send, HEARTBEAT)
            if not behind.cut:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            unwatch()
            if member.is_player:
                rt.presence.disconnect(ident.game_code, ident.player_id, conn_id)


class Behind:
    """Cuts a stream whose client fell `Backlog` behind: more events waiting for it on the
    bus than `stream_buffer`, or more bytes than `stream_buffer_bytes` in those events plus
    what its connection holds unsent. Checked as each event arrives, so a stream stuck
    writing to a client that stopped reading is cut too: its connection is dropped, since
    a graceful end would wait for the client to read."""

    __slots__ = ("_backlog", "_send", "_feed", "_ident", "cut")

    def __init__(self, backlog: Backlog, send: Send | ChunkWriter, feed: Feed, ident: Identity) -> None:
        self._backlog = backlog
        self._send = send
        self._feed = feed
        self._ident = ident
        self.cut = False

    def check(self, events: int, nbytes: int) -> None:
        unread = self._send.buffered() if isinstance(self._send, ChunkWriter) else 0
        if self.cut or not self._backlog.exceeded(events=events, nbytes=unread + nbytes):
            return
        self.cut = True
        log.warning("SSE stream of %s in %s fell too far behind; dropping it to resume",
                    self._ident.player_id, self._ident.game_code)
        if isinstance(self._send, ChunkWriter):
            self._send.abort()  # elsewhere the server's own flow control bounds what waits
        self._feed.close()


async def _body(send: Send | ChunkWriter, data: bytes) -> None:
    if isinstance(send, ChunkWriter) and send.write(data):
        return
    await send({"type": "http.response.body", "body": data, "more_body": True})


def frame(event: Event, *, seq: int | None = None) -> bytes:
    """The event's SSE frame; `seq` gives the id of a snapshot, which has no seq of its own."""
    return FRAME(event) if seq is None or seq == event.seq else _frame(event, seq)


def _frame(event: Event, seq: int | None) -> bytes:
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {event.name}\ndata: {PAYLOAD(event)}\n\n".encode()


FRAME: Encoder[bytes] = Encoder("sse", lambda event: _frame(event, event.seq))


def frames(events: Iterable[Event]) -> bytes:
    return b"".join(frame(event) for event in events)
