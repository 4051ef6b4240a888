"""Server-Sent Events: `GET /api/games/<code>/events`, one open response per client.

Logged events are `id: <seq>` / `event: <name>` / `data: <json>`; ephemeral ones
carry no `id`, so the browser's Last-Event-ID stays on the last logged event.
Served by the bare ASGI front of arcane/fallback/bare.py, not by Quart.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from arcane.events import Event
from arcane.fallback.bare import Caller, Receive, Request, Send, on_disconnect
from arcane.fallback.following import Following, parse_cursor
from arcane.feed import Backlog
from arcane.game.records import Identity, Member
from arcane.wire import ChunkWriter

if TYPE_CHECKING:
    from arcane.runtime import Runtime

log = logging.getLogger(__name__)
HEARTBEAT = b": heartbeat\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


async def serve(rt: Runtime, caller: Caller, code: str, request: Request, receive: Receive, send: Send) -> None:
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


async def stream(rt: Runtime, ident: Identity, member: Member, after: int | None,
                 receive: Receive, send: Send) -> None:
    """The whole life of one stream; everything it opens is released in `finally`.

    It ends when the client goes (hypercorn reports the disconnect to `receive`), when
    the feed closes (shutdown), when the client falls behind (`Backlog`: more events
    waiting than the bus keeps for it, or more bytes unread on the connection than
    `stream_buffer_bytes`; the connection is dropped), or when sending fails. The client
    resumes from its id.
    """
    conn_id = f"sse:{secrets.token_hex(8)}"
    backlog = Backlog.of(rt.settings)
    async with Following(rt, ident) as feed:
        unwatch = on_disconnect(receive, feed.close)
        if member.is_player:
            rt.presence.connect(ident.game_code, ident.player_id, member.name, conn_id)
        try:
            await _body(send, f"retry: {rt.settings.sse_retry_ms}\n\n".encode())
            send = ChunkWriter.over(send)  # the headers are out: the body's chunks may go direct
            start = await feed.start(rt.store, rt.service, after)
            if not start.recovered:
                await _body(send, frame(start.sync_event(ident.game_code), seq=start.seq))
            else:
                # The catch-up waits for a slow client, in pieces the backlog allows; live
                # events meanwhile wait on the bus, which cuts the stream past `stream_buffer`.
                events = start.events
                while events:
                    piece = backlog.prefix(events, lambda e: len(frame(e)))
                    await _body(send, frames(piece))
                    events = events[len(piece):]
            del start  # the catch-up is sent: an open stream keeps none of it
            kept_up = True
            while kept_up:
                event = await feed.next(timeout=rt.settings.sse_heartbeat)
                if event is not None:
                    kept_up = await _live(send, frames([event, *await feed.ready()]), backlog)
                elif feed.closed:
                    break
                else:
                    kept_up = await _live(send, HEARTBEAT, backlog)
            if not kept_up or feed.overflowed:
                _cut(send, ident)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            unwatch()
            if member.is_player:
                rt.presence.disconnect(ident.game_code, ident.player_id, conn_id)


async def _live(send: Send | ChunkWriter, data: bytes, backlog: Backlog) -> bool:
    """A live chunk, never waiting on the client: False when it has fallen `backlog` behind."""
    if isinstance(send, ChunkWriter):
        if backlog.exceeded(nbytes=send.buffered() + len(data)):
            return False
        if send.write(data, high_water=backlog.bytes):
            return True
    # Not plain HTTP/1.1 under hypercorn: its own flow control bounds what waits.
    await send({"type": "http.response.body", "body": data, "more_body": True})
    return True


def _cut(send: Send | ChunkWriter, ident: Identity) -> None:
    """Drop a stream whose client fell behind; a graceful end would wait for it to read."""
    log.warning("SSE stream of %s in %s fell too far behind; dropping it to resume", ident.player_id,
                ident.game_code)
    if isinstance(send, ChunkWriter):
        send.abort()


async def _body(send: Send | ChunkWriter, data: bytes) -> None:
    if isinstance(send, ChunkWriter) and send.write(data):
        return
    await send({"type": "http.response.body", "body": data, "more_body": True})


def frame(event: Event, *, seq: int | None = None) -> bytes:
    seq = event.seq if seq is None else seq
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {event.name}\ndata: {event.data_json()}\n\n".encode()


def frames(events: Iterable[Event]) -> bytes:
    return b"".join(frame(event) for event in events)
