"""Publish/subscribe for committed and ephemeral events; the meeting point of all transports.

The memory bus delivers in publish order to bounded per-subscriber queues. A
subscriber that falls `maxsize` events behind is marked overflowed and closed:
its owner resumes from its cursor instead of the server buffering without end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from arcane.encoding import PAYLOAD
from arcane.events import Event
from arcane.recent import RecentEvents
from arcane.slim import SlimQueue


@dataclass(frozen=True, slots=True)
class Resync:
    """Events may have been missed (Redis was away): check the log for anything newer."""

    game_code: str | None


Item = Event | Resync


class Subscription:
    def __init__(self, bus: Bus, game_code: str | None, maxsize: int) -> None:
        self._bus = bus
        self.game_code = game_code
        self._maxsize = maxsize
        # Made on first use: a subscriber with a listener never needs one (memory per connection).
        self._items: SlimQueue | None = None
        self.overflowed = False
        self.closed = False
        # Set by an owner that takes each item as it is published instead of from the queue.
        self.listener: Callable[[Item], None] | None = None
        self.on_closed: Callable[[], None] | None = None  # and told when it closes
        # Set by an owner that bounds its backlog in bytes too (arcane/feed.py Backlog): run
        # after each item is queued, or on overflow; the queued payload bytes are counted then.
        self.on_queued: Callable[[Subscription], None] | None = None
        self.queued_bytes = 0

    @property
    def _queue(self) -> SlimQueue:
        if self._items is None:
            self._items = SlimQueue(self._maxsize)
        return self._items

    def deliver(self, event: Item) -> None:
        if self.closed:
            return
        if self.listener is not None:
            self.listener(event)
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()
        else:
            if self.on_queued is not None:
                self.queued_bytes += _weight(event)
        if self.on_queued is not None:
            self.on_queued(self)

    def backlog(self) -> tuple[int, int]:
        """(events, payload bytes) queued for the owner; past `maxsize` once it overflowed."""
        events = self._items.qsize() if self._items is not None else 0
        return (self._maxsize + 1 if self.overflowed else events), self.queued_bytes

    def close(self) -> None:
        """Stop receiving; a waiting `get()` wakes up and returns None."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        if self.on_closed is not None:
            self.on_closed()
        if self.listener is not None and self._items is None:
            return  # nobody reads a queue that was never made
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            # Nobody waits on a full queue, and get() answers None once it is drained.
            # Dropping an event to make room would hand the owner a gap behind its cursor.
            pass

    async def get(self) -> Item | None:
        if self.closed and (self._items is None or self._items.empty()):
            return None
        return self._taken(await self._queue.get())

    def get_nowait(self) -> Item | None:
        if self._items is None:
            return None
        try:
            return self._taken(self._queue.get_nowait())
        except asyncio.QueueEmpty:
            return None

    def _taken(self, item: Item | None) -> Item | None:
        if item is not None and self.on_queued is not None:
            self.queued_bytes -= _weight(item)
        return item

    def take_queued(self) -> list[Item]:
        """Everything queued so far, and the queue itself: for an owner about to set a listener."""
        items: list[Item] = []
        while (item := self.get_nowait()) is not None:
            items.append(item)
        if not self.closed:
            self._items = None
        return items


def _weight(item: Item) -> int:
    """What an item adds to an owner's byte backlog: its payload (encoded once per event)."""
    return len(PAYLOAD(item)) if isinstance(item, Event) else 0


class Bus:
    """In-process bus. `open_subscription(None)` receives every game's events."""

    def __init__(self) -> None:
        self._by_game: dict[str | None, set[Subscription]] = {}
        # Set by the runtime: the last events of each game, for catch-ups (arcane/recent.py).
        self.recent: RecentEvents | None = None

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            if self.recent is not None:
                self.recent.record(event)
            for key in (event.game_code, None):
                for sub in tuple(self._by_game.get(key, ())):
                    sub.deliver(event)

    def resync(self, game_code: str | None = None) -> None:
        """Tell subscribers (of one game, or all) to look in the log for missed events."""
        if self.recent is not None:
            self.recent.forget(game_code)
        for key, subs in tuple(self._by_game.items()):
            if game_code is None or key == game_code:
                for sub in tuple(subs):
                    sub.deliver(Resync(key))

    def open_subscription(self, game_code: str | None, *, maxsize: int = 1000) -> Subscription:
        sub = Subscription(self, game_code, maxsize)
        self._by_game.setdefault(game_code, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._by_game.get(sub.game_code)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_game[sub.game_code]

    async def start(self) -> None:
        """Backends with connections open them here; the memory bus has none."""

    async def stop(self) -> None:
        for subs in tuple(self._by_game.values()):
            for sub in tuple(subs):
                sub.close()
