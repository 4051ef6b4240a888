"""Publish/subscribe for committed and ephemeral events; the meeting point of all transports.

The memory bus delivers in publish order to each subscriber's listener, holding items
(at most `maxsize`) until the subscriber sets one. One that overflows meanwhile is
marked overflowed and closed: its owner resumes from its cursor instead of the server
buffering without end. Past that, how far an owner may fall behind is the transports'
rule (arcane/transports.py Pump, arcane/feed.py Backlog).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from arcane import stats
from arcane.events import Event
from arcane.recent import RecentEvents
from arcane.queues import SlimQueue


@dataclass(frozen=True, slots=True)
class Resync:
    """Events may have been missed (Redis was away): check the log for anything newer."""

    game_code: str | None


Item = Event | Resync


class Subscription:
    """One owner's share of a game's items: held (at most `maxsize`) until the owner sets its
    `listener`, then handed to it as they are published. One that overflows while held is
    closed: its owner resumes from its cursor, never from a gap."""

    __slots__ = ("_bus", "game_code", "_maxsize", "_held", "overflowed", "closed", "listener", "on_closed")

    def __init__(self, bus: Bus, game_code: str | None, maxsize: int) -> None:
        self._bus = bus
        self.game_code = game_code
        self._maxsize = maxsize
        self._held: list[Item] | None = None  # made when first needed
        self.overflowed = False
        self.closed = False
        # Set by the owner once it takes each item as it is published (arcane/feed.py listen).
        self.listener: Callable[[Item], None] | None = None
        self.on_closed: Callable[[], None] | None = None  # and told when it closes

    def deliver(self, item: Item) -> None:
        if self.closed:
            return
        if self.listener is not None:
            self.listener(item)
            return
        if self._held is None:
            self._held = []
        if len(self._held) >= self._maxsize:
            self.overflowed = True
            self.close()
            return
        self._held.append(item)

    def close(self) -> None:
        """Stop receiving; what is held stays for `take_held` (it has no gap)."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        # The listener is its owner's bound method, and the owner holds this subscription:
        # dropped here, the pair goes by reference counting, not by the cycle collector
        # (a long-poll makes one such pair per request, thousands a second at game night).
        on_closed, self.on_closed, self.listener = self.on_closed, None, None
        if on_closed is not None:
            on_closed()

    def take_held(self) -> list[Item]:
        """Everything held so far, in order: for an owner about to set a listener."""
        held, self._held = self._held or [], None
        return held


class Bus:
    """In-process bus. `open_subscription(None)` receives every game's events."""

    def __init__(self) -> None:
        self._by_game: dict[str | None, set[Subscription]] = {}
        # The last seq published here, by game: what this process has heard of. Kept only while
        # a LogWatch reads it (several processes); one process hears everything itself.
        self.heard: dict[str, int] | None = None
        # Set by the runtime: the last events of each game, for catch-ups (arcane/recent.py).
        self.recent: RecentEvents | None = None

    def publish(self, events: Iterable[Event]) -> None:
        heard = self.heard
        for event in events:
            stats.published += 1
            if heard is not None and event.seq is not None and event.seq > heard.get(event.game_code, 0):
                heard[event.game_code] = event.seq
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

    def followed_games(self) -> list[str]:
        """The games this process has live subscribers in."""
        return [code for code, subs in self._by_game.items() if code is not None and subs]

    def forget_heard(self, followed: set[str]) -> None:
        """Keep what was heard only of the games still followed."""
        heard = self.heard or {}
        for code in [code for code in heard if code not in followed]:
            del heard[code]

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
