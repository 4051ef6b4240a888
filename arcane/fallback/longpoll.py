"""Long-polling: `GET /api/games/<code>/poll?after=N&timeout=S`, one answer per request.

Stateless: the cursor travels with the request and the events come from the log
and the bus, so any server process can answer any poll. Served by the bare ASGI
front of arcane/fallback/bare.py, not by Quart.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from arcane import jsoncodec
from arcane.config import Settings
from arcane.events import Event
from arcane.fallback.asgi import Caller, Receive, Request, Send, on_disconnect, respond_json
from arcane.fallback.following import Following, epoch_param, parse_cursor
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.feed import Backlog, CatchUp
from arcane.game.records import Identity, Member
from arcane.logs import bind
from arcane.transports import PAYLOAD, Encoder, Pump, Services

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
    if rt.closing.is_set():  # draining: another process, or this one restarted, takes it
        raise ArcaneError(ErrorCode.SERVICE_UNAVAILABLE, "this server is stopping; connect again")
    ident, member = await caller(rt, code, request)
    await rt.limits.read(ident)
    after = after_param(request.arg("after"))
    epoch = epoch_param(request.arg("epoch"))
    timeout = timeout_param(request.arg("timeout"), rt.settings)
    client = client_param(request.arg("client_id"))
    slot = rt.limits.connections.open(identity=ident.rate_key, address=request.address)
    try:
        await _answer(rt, ident, member, after, epoch, timeout, client, receive, send)
    finally:
        slot.release()


async def _answer(rt: Services, ident: Identity, member: Member, after: int | None, epoch: str | None,
                  timeout: float, client: str, receive: Receive, send: Send) -> None:
    bind(transport="longpoll", game_code=ident.game_code, player_id=ident.player_id)
    lease_id = f"poll:{ident.player_id}:{client}"
    if member.is_player:
        # One lease per (player, client id): a short-timeout tab cannot cut short the lease of
        # another tab that is still waiting out a long poll.
        rt.presence.touch(ident.game_code, ident.player_id, member.name,
                          conn_id=lease_id, lease=2 * max(timeout, LEASE_FLOOR))
    backlog = Backlog.of(rt.settings)
    async with Following(rt, ident, "longpoll") as feed:
        start = await feed.start(after, epoch, current=member.epoch)
        collected = Answer(ident, start)
        pump = Pump(feed, collected, backlog)
        pump.start(None)  # the catch-up is in hand: then what came meanwhile, then live events
        try:
            if not collected.items:
                # Waiting: a client that goes meanwhile ends the wait (and its feed) at once.
                unwatch = on_disconnect(receive, feed.close)
                try:
                    await collected.arrival(timeout)
                finally:
                    unwatch()
            body = answer(collected.items, backlog, cursor=feed.cursor, since=start.seq,
                          recovered=start.recovered, epoch=start.epoch)
        finally:
            await pump.stop()
    if feed.seat_closed and member.is_player:
        # The seat is gone (`seat_closed`): no poll comes after it to renew the lease.
        rt.presence.disconnect(ident.game_code, ident.player_id, lease_id)
    await respond_json(send, 200, body, [(b"cache-control", b"no-store")])


class Answer:
    """The long-poll adapter's `Transport`: the events of one answer, collected from the
    catch-up and then from the pump, until the first arrive or the wait ends; the answer
    then goes in one write (`answer`). Cut by the pump, it answers at once with what it has."""

    kind = "longpoll"
    __slots__ = ("name", "items", "_bytes", "_woken")

    def __init__(self, ident: Identity, first: CatchUp) -> None:
        self.name = f"long-poll of {ident.player_id}"
        self._bytes = 0
        self._woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if first.recovered:
            self.items = [Item(event.seq, event) for event in first.events]
        else:
            self.items = [Item(first.seq, first.sync_event(ident.game_code))]

    async def arrival(self, timeout: float) -> None:
        """Until events arrive, the feed ends, or `timeout` seconds pass."""
        await asyncio.wait((self._woken,), timeout=timeout)

    def write_now(self, event: Event) -> bool:
        self._add(event)
        return True

    async def write(self, events: Sequence[Event]) -> None:
        for event in events:
            self._add(event)

    async def write_snapshot(self, event: Event, seq: int) -> None:
        self.items.append(Item(seq, event))
        self._wake()

    def size(self, event: Event) -> int:
        return len(ENTRY(event))

    def unsent(self, event: Event | None = None) -> tuple[int, int]:
        if event is None:
            return len(self.items), self._bytes
        return len(self.items) + 1, self._bytes + self.size(event)

    def cut(self) -> None:
        self._wake()

    def ended(self) -> None:
        self._wake()

    def _add(self, event: Event) -> None:
        self.items.append(Item(event.seq, event))
        self._bytes += self.size(event)
        self._wake()

    def _wake(self) -> None:
        if not self._woken.done():
            self._woken.set_result(None)


def answer(items: Sequence[Item], backlog: Backlog, *, cursor: int, since: int, recovered: bool,
           epoch: str = "") -> str:
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
    return (f'{{"events":[{events}],"last_seq":{last_seq},"recovered":{jsoncodec.dumps(recovered)},'
            f'"epoch":{jsoncodec.dumps(epoch)}}}')


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
