"""Long-polling: `GET /api/games/<code>/poll?after=N&timeout=S`, one answer per request.

Stateless: the cursor travels with the request and the events come from the log
and the bus, so any server process can answer any poll.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from quart import Blueprint, Response, request

from arcane.config import Settings
from arcane.errors import validation
from arcane.events import Event
from arcane.fallback.following import follow, parse_cursor
from arcane.routes.common import caller, runtime

blueprint = Blueprint("longpoll", __name__)

# A poller is online while it comes back within two of its timeouts; a timeout of
# 0 (short polling) still gets 2 * LEASE_FLOOR seconds to return.
LEASE_FLOOR = 1.0
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_CLIENT = "default"


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of `events`: a logged event, an ephemeral one (seq None), or the snapshot."""

    seq: int | None
    event: Event

    def to_json(self) -> str:
        # The payload is encoded once per event (data_json), however many pollers wait on it.
        return (f'{{"seq":{json.dumps(self.seq)},"event":{json.dumps(self.event.name)},'
                f'"data":{self.event.data_json()}}}')


@blueprint.get("/api/games/<code>/poll")
async def poll(code: str) -> Response:
    ident, member = await caller(code, allow_query_token=True)
    rt = runtime()
    after = after_param()
    timeout = timeout_param(rt.settings)
    client = client_param()
    if member.is_player:
        # One lease per (player, client id): a short-timeout tab cannot cut short the lease of
        # another tab that is still waiting out a long poll.
        rt.presence.touch(ident.game_code, ident.player_id, member.name,
                          conn_id=f"poll:{ident.player_id}:{client}",
                          lease=2 * max(timeout, LEASE_FLOOR))
    async with follow(rt, ident) as feed:
        start = await feed.start(rt.store, rt.service, after)
        if start.recovered:
            items = [Item(e.seq, e) for e in start.events]
        else:
            items = [Item(start.seq, start.sync_event(ident.game_code))]
        items += [Item(e.seq, e) for e in await feed.ready()]
        if not items:
            event = await feed.next(timeout=timeout)
            if event is not None:
                items = [Item(e.seq, e) for e in (event, *await feed.ready())]
        body = answer(items, last_seq=feed.cursor, recovered=start.recovered)
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})


def answer(items: Sequence[Item], *, last_seq: int, recovered: bool) -> str:
    events = ",".join(item.to_json() for item in items)
    return f'{{"events":[{events}],"last_seq":{last_seq},"recovered":{json.dumps(recovered)}}}'


def after_param() -> int | None:
    raw = request.args.get("after")
    if raw is None or raw == "":
        return None
    after = parse_cursor(raw)
    if after is None:
        raise validation("after must be a whole number >= 0 (the last_seq of your previous answer)")
    return after


def timeout_param(settings: Settings) -> float:
    raw = request.args.get("timeout")
    if raw is None or raw == "":
        return min(settings.poll_timeout, settings.poll_timeout_max)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise validation("timeout must be a number of seconds >= 0")
    return min(value, settings.poll_timeout_max)


def client_param() -> str:
    raw = request.args.get("client_id")
    if raw is None or raw == "":
        return DEFAULT_CLIENT
    if not CLIENT_ID.match(raw):
        raise validation("client_id is 1-64 letters, digits, '-' or '_'")
    return raw
