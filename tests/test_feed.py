"""A connection's feed never skips an event, even when the bus did not bring it (Redis away,
or another process's event overtaking it): the log fills the gap, in order, once."""

from __future__ import annotations

from arcane.events import Event
from arcane.feed import Feed
from tests.support import LiveServer, seat_party


async def test_a_gap_in_the_bus_is_filled_from_the_log_in_order(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    rt = server.runtime
    feed = Feed(rt.bus, _ident(bram), store=rt.store, snapshot=rt.service.view)
    start = await feed.start(None)
    publish = rt.store.on_commit
    dropped: list[Event] = []
    rt.store.on_commit = dropped.extend  # the bus never hears of these two
    try:
        await ann.post("/chat", {"text": "lost one"})
        await ann.post("/chat", {"text": "lost two"})
    finally:
        rt.store.on_commit = publish
    await ann.post("/chat", {"text": "arrives"})
    got = [await feed.next(timeout=5) for _ in range(3)]
    assert [e.payload["text"] for e in got if e] == ["lost one", "lost two", "arrives"]
    assert [e.seq for e in got if e] == [start.seq + 1, start.seq + 2, start.seq + 3]
    rt.bus.publish(dropped)  # the late copies are dropped, not delivered twice
    assert await feed.next(timeout=0.2) is None
    feed.close()
    await ann.close()
    await bram.close()


async def test_a_resync_reads_what_the_bus_missed(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    rt = server.runtime
    feed = Feed(rt.bus, _ident(bram), store=rt.store, snapshot=rt.service.view)
    await feed.start(None)
    publish = rt.store.on_commit
    rt.store.on_commit = lambda events: None
    try:
        await ann.post("/chat", {"text": "during the outage"})
    finally:
        rt.store.on_commit = publish
    assert await feed.next(timeout=0.2) is None
    rt.bus.resync(ann.game_code)
    event = await feed.next(timeout=5)
    assert event is not None and event.payload["text"] == "during the outage"
    feed.close()
    await ann.close()
    await bram.close()


def _ident(player: object) -> object:
    from arcane.game.records import Identity

    return Identity(player.game_code, player.player_id)  # type: ignore[attr-defined]
