"""One connection's ordered stream of a game, the same for every transport.

Subscribe first, then catch up from the log (or take a snapshot), then deliver
live events whose seq is past the catch-up point: an event committed while the
catch-up runs is neither lost nor sent twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from arcane.bus import Bus, Subscription
from arcane.events import Event
from arcane.game.records import Identity
from arcane.game.service import GameService
from arcane.store import Store


@dataclass(frozen=True)
class CatchUp:
    """What a (re)connecting client gets first: the missed events, or a snapshot."""

    recovered: bool
    seq: int
    events: list[Event]
    sync: dict[str, Any] | None

    def sync_event(self, game_code: str) -> Event:
        assert self.sync is not None
        return Event(game_code, "reconnect_sync", self.sync | {"recovered": False})


async def catch_up(store: Store, service: GameService, ident: Identity, after: int | None) -> CatchUp:
    """Every visible event after `after`, provably complete, or the caller's view instead."""
    if after is not None and after >= 0:
        async with store.snapshot():
            bounds = await store.log_bounds(ident.game_code)
            if bounds is not None and bounds[0] <= after <= bounds[1]:
                events = await store.events_after(ident.game_code, after, ident.player_id, upto=bounds[1])
                return CatchUp(True, bounds[1], events, None)
    view = await service.view(ident)
    return CatchUp(False, view["seq"], [], view)


class Feed:
    """A subscription plus a cursor: yields each visible event once, in seq order."""

    def __init__(self, bus: Bus, ident: Identity, *, maxsize: int = 1000) -> None:
        self.ident = ident
        self.cursor = 0
        self._sub: Subscription = bus.open_subscription(ident.game_code, maxsize=maxsize)

    @property
    def overflowed(self) -> bool:
        return self._sub.overflowed

    @property
    def closed(self) -> bool:
        return self._sub.closed

    async def start(self, store: Store, service: GameService, after: int | None) -> CatchUp:
        result = await catch_up(store, service, self.ident, after)
        self.cursor = result.seq
        return result

    def _accept(self, event: Event) -> bool:
        if not event.visible_to(self.ident.player_id):
            return False
        if event.seq is None:
            return True
        if event.seq <= self.cursor:
            return False
        self.cursor = event.seq
        return True

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event for this connection; None on timeout or when the feed closed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that races a result, and a cancelled stream must end.
            try:
                async with asyncio.timeout(remaining):
                    event = await self._sub.get()
            except TimeoutError:
                return None
            if event is None:
                return None
            if self._accept(event):
                return event

    def ready(self) -> list[Event]:
        """Events already waiting, without blocking."""
        out: list[Event] = []
        while (event := self._sub.get_nowait()) is not None:
            if self._accept(event):
                out.append(event)
        return out

    def close(self) -> None:
        self._sub.close()
