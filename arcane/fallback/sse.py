"""Server-Sent Events: `GET /api/games/<code>/events`, one open response per client.

Logged events are `id: <seq>` / `event: <name>` / `data: <json>`; ephemeral ones
carry no `id`, so the browser's Last-Event-ID stays on the last logged event.
Served by the bare ASGI front of arcane/fallback/bare.py, not by Quart.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING

from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event
from arcane.fallback.bare import Caller, Receive, Request, Send, on_disconnect
from arcane.fallback.following import Following, parse_cursor
from arcane.game.records import Identity, Member
from arcane.wire import ChunkWriter

if TYPE_CHECKING:
    from arcane.runtime import Runtime

HEARTBEAT = b": heartbeat\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


async def serve(rt: Runtime, caller: Caller, code: str, request: Request, receive: Receive, send: Send) -> None:
    ident, member = await caller(rt, code, request)
    after = resume_point(request)
    del request  # an open stream keeps nothing of the request
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await stream(rt, ident, member, after, receive, send)


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
    the feed closes (fell `stream_buffer` events behind, or shutdown: the client
    resumes from its id; or the seat left the game: its last frame is `seat_closed`),
    or when sending fails.
    """
    conn_id = f"sse:{secrets.token_hex(8)}"
    async with Following(rt, ident) as feed:
        unwatch = on_disconnect(receive, feed.close)
        if member.is_player:
            rt.presence.connect(ident.game_code, ident.player_id, member.name, conn_id)
        try:
            await _body(send, f"retry: {rt.settings.sse_retry_ms}\n\n".encode())
            send = ChunkWriter.over(send)  # the headers are out: the body's chunks may go direct
            try:
                start = await feed.start(rt.store, rt.service, after)
            except ArcaneError as error:
                if error.code is not ErrorCode.NOT_IN_GAME:
                    raise
                # The seat left between its check and this catch-up: the stream ends, as
                # at its `seat_closed`; the response has begun, so no JSON error can follow.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if not start.recovered:
                await _body(send, frame(start.sync_event(ident.game_code), seq=start.seq))
            elif start.events:
                await _body(send, frames(start.events))
            del start  # the catch-up is sent: an open stream keeps none of it
            while True:
                event = await feed.next(timeout=rt.settings.sse_heartbeat)
                if event is not None:
                    await _body(send, frames([event, *await feed.ready()]))
                elif feed.closed:
                    break
                else:
                    await _body(send, HEARTBEAT)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            unwatch()
            if member.is_player:
                rt.presence.disconnect(ident.game_code, ident.player_id, conn_id)


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
