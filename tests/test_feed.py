"""A connection's feed never skips an event, even when the bus did not bring it (Redis away,
or another process's event overtaking it): the log fills the gap, in order, once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from arcane.events import Event
from arcane.feed import Backlog, Feed
from arcane.game.records import Identity
from arcane.transports import Pump
from tests.support import LiveServer, Player, seat_party


class Kept:
    """A transport that keeps what the pump writes: what a client would have received."""

    kind = "test"

    name = "test client"

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._grew = asyncio.Event()

    def write_now(self, event: Event) -> bool:
        self._keep([event])
        return True

    async def write(self, events: Sequence[Event]) -> None:
        self._keep(events)

    async def write_snapshot(self, event: Event, seq: int) -> None:
        self._keep([event])

    def size(self, event: Event) -> int:
        return 0

    def unsent(self, event: Event | None = None) -> tuple[int, int]:
        return (0, 0) if event is None else (1, self.size(event))

    def cut(self) -> None:
        pass

    def ended(self) -> None:
        pass

    def _keep(self, events: Sequence[Event]) -> None:
        self.events.extend(events)
        self._grew.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._grew.clear()
                await self._grew.wait()


async def follow(server: LiveServer, player: Player) -> tuple[Feed, Pump, Kept, int]:
    rt = server.runtime.services
    feed = Feed(rt.bus, Identity(player.game_code, player.player_id), store=rt.store, snapshot=rt.service.view)
    start = await feed.start(None)
    kept = Kept()
    pump = Pump(feed, kept, Backlog(1000, 1 << 20))
    pump.start(start)
    await kept.until(lambda: [e.name for e in kept.events] == ["reconnect_sync"])
    kept.events.clear()
    return feed, pump, kept, start.seq


async def test_a_gap_in_the_bus_is_filled_from_the_log_in_order(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    rt = server.runtime.services
    feed, pump, kept, seq = await follow(server, bram)
    publish = rt.store.on_commit
    dropped: list[Event] = []
    rt.store.on_commit = dropped.extend  # the bus never hears of these two
    try:
        await ann.post("/chat", {"text": "lost one"})
        await ann.post("/chat", {"text": "lost two"})
    finally:
        rt.store.on_commit = publish
    await ann.post("/chat", {"text": "arrives"})
    await kept.until(lambda: len(kept.events) >= 3)
    assert [e.payload["text"] for e in kept.events] == ["lost one", "lost two", "arrives"]
    assert [e.seq for e in kept.events] == [seq + 1, seq + 2, seq + 3]
    rt.bus.publish(dropped)  # the late copies are dropped, not delivered twice
    await asyncio.sleep(0.2)
    assert len(kept.events) == 3
    await pump.stop()
    await ann.close()
    await bram.close()


async def test_a_resync_reads_what_the_bus_missed(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    rt = server.runtime.services
    feed, pump, kept, _ = await follow(server, bram)
    publish = rt.store.on_commit
    rt.store.on_commit = lambda events: None
    try:
        await ann.post("/chat", {"text": "during the outage"})
    finally:
        rt.store.on_commit = publish
    await asyncio.sleep(0.2)
    assert kept.events == []
    rt.bus.resync(ann.game_code)
    await kept.until(lambda: len(kept.events) == 1)
    assert kept.events[0].payload["text"] == "during the outage"
    await pump.stop()
    await ann.close()
    await bram.close()
