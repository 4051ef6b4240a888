"""Server-Sent Events: `GET /api/games/<code>/events`, one open response per client.

Logged events are `id: <seq>` / `event: <name>` / `data: <json>`; ephemeral ones
carry no `id`, so the browser's Last-Event-ID stays on the last logged event.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from quart import Blueprint, Response, request

from arcane.events import Event
from arcane.fallback.following import follow, parse_cursor
from arcane.game.records import Identity, Member
from arcane.routes.common import caller, runtime

if TYPE_CHECKING:
    from arcane.runtime import Runtime

blueprint = Blueprint("sse", __name__)

HEARTBEAT = ": heartbeat\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@blueprint.get("/api/games/<code>/events")
async def events(code: str) -> Response:
    ident, member = await caller(code, allow_query_token=True)
    response = Response(
        stream(runtime(), ident, member, resume_point()), mimetype="text/event-stream", headers=HEADERS,
    )
    response.timeout = None  # Quart would end the body silently after 60 s.
    return response


def resume_point() -> int | None:
    """The client's cursor; the header wins, since the browser updates it on every reconnect."""
    header = request.headers.get("Last-Event-ID")
    if header:
        return parse_cursor(header)
    return parse_cursor(request.args.get("last_event_id"))


async def stream(rt: Runtime, ident: Identity, member: Member, after: int | None) -> AsyncIterator[str]:
    """The whole life of one stream; everything it opens is released in `finally`.

    Nothing is acquired before the body starts, so a response that is never sent leaks nothing.
    """
    conn_id = f"sse:{secrets.token_hex(8)}"
    async with follow(rt, ident) as feed:
        if member.is_player:
            rt.presence.connect(ident.game_code, ident.player_id, member.name, conn_id)
        try:
            yield f"retry: {rt.settings.sse_retry_ms}\n\n"
            start = await feed.start(rt.store, rt.service, after)
            if start.recovered:
                if start.events:
                    yield frames(start.events)
            else:
                yield frame(start.sync_event(ident.game_code), seq=start.seq)
            while True:
                event = await feed.next(timeout=rt.settings.sse_heartbeat)
                if event is not None:
                    yield frames([event, *await feed.ready()])
                elif feed.closed:
                    # Fell `stream_buffer` events behind, or shutdown: the client resumes from its id.
                    return
                else:
                    yield HEARTBEAT
        finally:
            if member.is_player:
                rt.presence.disconnect(ident.game_code, ident.player_id, conn_id)


def frame(event: Event, *, seq: int | None = None) -> str:
    seq = event.seq if seq is None else seq
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {event.name}\ndata: {event.data_json()}\n\n"


def frames(events: Iterable[Event]) -> str:
    return "".join(frame(event) for event in events)
