"""One connection's ordered stream of a game, the same for every transport.

Subscribe first, then catch up from the log (or take a snapshot), then deliver
live events whose seq is past the catch-up point: an event committed while the
catch-up runs is neither lost nor sent twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from arcane.bus import Bus, Item, Resync, Subscription
from arcane.config import Settings
from arcane.events import SEAT_CLOSED, Event
from arcane.game.records import Identity
from arcane.recent import RecentEvents
from arcane.store import Store

# The caller's whole view of the game (GameService.view), with its `seq`: what a client
# that cannot be caught up from the log gets instead, as `reconnect_sync`.
Snapshot = Callable[[Identity], Awaitable[dict[str, Any]]]
EPOCH_MAX = 64  # characters of an epoch a client may send back

# A seq is an SQLite INTEGER (signed 64-bit): no cursor past this can name an event, and
# one past it would overflow the log's query. Every transport refuses such a cursor.
CURSOR_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Backlog:
    """How far one consumer may fall behind, on every transport, before it is cut.

    More than `events` events waiting for it, or more than `bytes` bytes written that it has
    not read, and the server stops buffering for it: a socket or SSE stream is dropped, a
    long-poll answer stops there. The client resumes from its cursor (join_game_room's
    last_seq, Last-Event-ID, the poll's after) and gets the rest from the log, with no gap.
    """

    events: int
    bytes: int

    @classmethod
    def of(cls, settings: Settings) -> Backlog:
        return cls(settings.stream_buffer, settings.stream_buffer_bytes)

    def exceeded(self, events: int = 0, nbytes: int = 0) -> bool:
        return events > self.events or nbytes > self.bytes

    def prefix(self, events: list[Event], size: Callable[[Event], int]) -> list[Event]:
        """The longest head of `events` within the backlog (at least one, to make progress)."""
        total = 0
        for count, event in enumerate(events):
            total += size(event)
            if count and self.exceeded(events=count + 1, nbytes=total):
                return events[:count]
        return events


@dataclass(frozen=True)
class CatchUp:
    """What a (re)connecting client gets first: the missed events, or a snapshot."""

    recovered: bool
    seq: int
    events: list[Event]
    sync: dict[str, Any] | None
    epoch: str = ""  # the stream's, to go back with the cursor

    def sync_event(self, game_code: str) -> Event:
        assert self.sync is not None
        return Event(game_code, "reconnect_sync", self.sync | {"recovered": False})


async def catch_up(store: Store, snapshot: Snapshot, ident: Identity, after: int | None,
                   recent: RecentEvents | None = None) -> CatchUp:
    """Every visible event after `after`, provably complete, or the caller's view instead.

    From memory when `recent` holds everything after `after` (the usual reconnect or
    poll), else from the log."""
    if after is not None and after >= 0:
        known = recent.since(ident.game_code, after, ident.player_id) if recent is not None else None
        if known is not None:
            last, events = known
            return CatchUp(True, last, events, None)
        found = await store.log_since(ident.game_code, after, ident.player_id)
        if found is not None:
            _, last, logged = found
            if logged is not None and after <= last:
                return CatchUp(True, last, logged, None)
    view = await snapshot(ident)
    return CatchUp(False, view["seq"], [], view)


class Feed:
    """A subscription plus a cursor: hands on each visible event once, in seq order.

    The cursor is the last seq of the game (any audience) this feed has passed.
    The bus carries every event of the game, so a seq that jumps past cursor + 1
    means events were missed (another process's event overtook them on Redis, or
    Redis was away): they are read from the log before anything newer is given.

    `seat_closed` (the seat left the game, logged in the same transaction) is the last
    event a feed gives: it closes the feed, and `seat_closed` tells its owner why.
    """

    def __init__(self, bus: Bus, ident: Identity, *, store: Store, snapshot: Snapshot,
                 maxsize: int = 1000) -> None:
        self.ident = ident
        self.cursor = 0
        self._sub: Subscription = bus.open_subscription(ident.game_code, maxsize=maxsize)
        self._recent = bus.recent
        self._store = store
        self._snapshot = snapshot
        self.seat_closed = False

    @property
    def closed(self) -> bool:
        return self._sub.closed

    async def start(self, after: int | None, epoch: str | None = None, *, current: str = "") -> CatchUp:
        """Catch up from `after`, a cursor of the stream's `epoch` (None: the client does not
        know it). `current` is the stream's epoch now, read with the caller's seat
        (`Member.epoch`): a cursor of another epoch gets a snapshot, never a replay."""
        if epoch is not None and epoch != current:
            after = None
        result = await catch_up(self._store, self._snapshot, self.ident, after, self._recent)
        self.cursor = result.seq
        if result.recovered:
            return CatchUp(True, result.seq, self._until_closed(result.events), None, current)
        return CatchUp(False, result.seq, result.events, result.sync, current)

    def listen(self, listener: Callable[[Item], None], *, closed: Callable[[], None] | None = None) -> None:
        """Have each bus item handed to `listener` as it is published (see `accept`), starting
        with any published since the feed opened (during the catch-up's read, say); and
        `closed()` called once the feed closes."""
        for item in self._sub.take_held():
            listener(item)
        self._sub.listener = listener
        self._sub.on_closed = closed
        if closed is not None and self._sub.closed:
            closed()

    def accept(self, item: Item) -> tuple[bool, Event | None]:
        """The in-order case, without waiting: (taken?, the event to deliver if any).

        Not taken when the item needs the log first (a seq gap, a resync): hand it to `take`.
        """
        if isinstance(item, Resync):
            return False, None
        if self.seat_closed:
            return True, None  # the seat is gone: nothing after its `seat_closed` is theirs
        if item.seq is None:
            return True, item if item.visible_to(self.ident.player_id) else None
        if item.seq <= self.cursor:
            return True, None
        if item.seq > self.cursor + 1:
            return False, None
        self.cursor = item.seq
        return True, self._deliverable(item)

    async def take(self, item: Item) -> list[Event]:
        """Any item: what to deliver for it, reading the log for whatever it skipped."""
        if self.seat_closed:
            return []
        taken, event = self.accept(item)
        if taken:
            return [] if event is None else [event]
        if isinstance(item, Resync):
            return await self._fill(None)
        assert item.seq is not None  # only a logged event can leave a gap
        missed = await self._fill(item.seq - 1)
        if item.seq <= self.cursor or self.seat_closed:
            return missed
        self.cursor = item.seq
        event = self._deliverable(item)
        return missed if event is None else [*missed, event]

    async def _fill(self, upto: int | None) -> list[Event]:
        """What the bus did not bring, read up to `upto` (None: the end of the log)."""
        code = self.ident.game_code
        found = await self._store.log_since(code, self.cursor, self.ident.player_id, upto=upto)
        if found is None:
            return []
        _, last, missed = found
        target = last if upto is None else min(upto, last)
        if target <= self.cursor:
            return []
        if missed is None:
            # What was missed is no longer in the log: a snapshot, as on a stale reconnect.
            view = await self._snapshot(self.ident)
            self.cursor = view["seq"]
            return [Event(code, "reconnect_sync", view | {"recovered": False})]
        self.cursor = target
        return self._until_closed(missed)

    def _deliverable(self, event: Event) -> Event | None:
        """The event if this feed's viewer may see it; a `seat_closed` closes the feed."""
        if not event.visible_to(self.ident.player_id):
            return None
        if event.name == SEAT_CLOSED:
            self.seat_closed = True
            self.close()
        return event

    def _until_closed(self, events: list[Event]) -> list[Event]:
        """Visible events, up to and with the seat's `seat_closed` if it is among them."""
        for index, event in enumerate(events):
            if event.name == SEAT_CLOSED:
                self._deliverable(event)
                return events[:index + 1]
        return events

    def drain(self, event: Event) -> None:
        """Shutdown: `event` (`server_draining`) goes to this client like any other, then the
        feed ends; its pump writes what it holds first."""
        if not self._sub.closed:
            self._sub.deliver(event)
        self.close()

    def close(self) -> None:
        self._sub.close()
