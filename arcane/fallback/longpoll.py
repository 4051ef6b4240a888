"""Long-polling: `GET /api/games/<code>/poll?after=N&timeout=S`, one answer per request.

Stateless: the cursor travels with the request and the events come from the log
and the bus, so any server process can answer any poll. Served by the bare ASGI
front of arcane/fallback/bare.py, not by Quart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from arcane import jsoncodec
from arcane.config import Settings
from arcane.errors import validation
from arcane.events import Event
from arcane.fallback.bare import Caller, Receive, Request, Send, on_disconnect, respond_json
from arcane.fallback.following import Following, parse_cursor
from arcane.feed import Backlog
from arcane.game.records import Identity, Member
from arcane.transports import PAYLOAD, Encoder, Services

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
        # Encoded once per event, however many pollers wait on it; a snapshot is one poller's.
        return ENTRY(self.event) if self.seq == self.event.seq else _entry(self.seq, self.event)


def _entry(seq: int | None, event: Event) -> str:
    return f'{{"seq":{jsoncodec.dumps(seq)},"event":{jsoncodec.dumps(event.name)},"data":{PAYLOAD(event)}}}'


# An event as an entry of a poll answer's `events`.
ENTRY: Encoder[str] = Encoder("long-poll", lambda event: _entry(event.seq, event))


async def serve(rt: Services, caller: Caller, code: str, request: Request, receive: Receive, send: Send) -> None:
    ident, member = await caller(rt, code, request)
    await rt.limits.read(ident)
    after = after_param(request.arg("after"))
    timeout = timeout_param(request.arg("timeout"), rt.settings)
    client = client_param(request.arg("client_id"))
    slot = rt.limits.connections.open(identity=ident.rate_key, address=request.address)
    try:
        await _answer(rt, ident, member, after, timeout, client, receive, send)
    finally:
        slot.release()


async def _answer(rt: Services, ident: Identity, member: Member, after: int | None, timeout: float,
                  client: str, receive: Receive, send: Send) -> None:
    lease_id = f"poll:{ident.player_id}:{client}"
    if member.is_player:
        # One lease per (player, client id): a short-timeout tab cannot cut short the lease of
        # another tab that is still waiting out a long poll.
        rt.presence.touch(ident.game_code, ident.player_id, member.name,
                          conn_id=lease_id, lease=2 * max(timeout, LEASE_FLOOR))
    async with Following(rt, ident) as feed:
        start = await feed.start(after)
        if start.recovered:
            items = [Item(e.seq, e) for e in start.events]
        else:
            items = [Item(start.seq, start.sync_event(ident.game_code))]
        items += [Item(e.seq, e) for e in await feed.ready()]
        if not items:
            # Waiting: a client that goes meanwhile ends the wait (and its feed) at once.
            unwatch = on_disconnect(receive, feed.close)
            try:
                event = await feed.next(timeout=timeout)
            finally:
                unwatch()
            if event is not None:
                items = [Item(e.seq, e) for e in (event, *await feed.ready())]
        body = answer(items, Backlog.of(rt.settings), cursor=feed.cursor, since=start.seq,
                      recovered=start.recovered)
    if feed.seat_closed and member.is_player:
        # The seat is gone (`seat_closed`): no poll comes after it to renew the lease.
        rt.presence.disconnect(ident.game_code, ident.player_id, lease_id)
    await respond_json(send, 200, body, [(b"cache-control", b"no-store")])


def answer(items: Sequence[Item], backlog: Backlog, *, cursor: int, since: int, recovered: bool) -> str:
    """The poll's answer: at most a backlog's worth of `items`, so a long catch-up comes in
    pieces. `last_seq` is `cursor` when all fit, else the seq of the last logged item sent,
    or `since` (where the items began) when none is: the next poll brings the rest."""
    encoded = [item.to_json() for item in items]
    last_seq, total = cursor, 0
    for count, text in enumerate(encoded):
        total += len(text)
        if count and backlog.exceeded(events=count + 1, nbytes=total):
            encoded = encoded[:count]
            last_seq = next((i.seq for i in reversed(items[:count]) if i.seq is not None), since)
            break
    events = ",".join(encoded)
    return f'{{"events":[{events}],"last_seq":{last_seq},"recovered":{jsoncodec.dumps(recovered)}}}'


def after_param(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    after = parse_cursor(raw)
    if after is None:
        raise validation("after must be a whole number from 0 to 2^63-1 (the last_seq of your previous answer)")
    return after


def timeout_param(raw: str | None, settings: Settings) -> float:
    if raw is None or raw == "":
        return min(settings.poll_timeout, settings.poll_timeout_max)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise validation("timeout must be a number of seconds >= 0")
    return min(value, settings.poll_timeout_max)


def client_param(raw: str | None) -> str:
    if raw is None or raw == "":
        return DEFAULT_CLIENT
    if not CLIENT_ID.match(raw):
        raise validation("client_id is 1-64 letters, digits, '-' or '_'")
    return raw
