"""Catch-ups from the last events kept in memory: the same answer the log gives, without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcane.events import Event, player_audience
from arcane.recent import RecentEvents
from tests.gameplay import logged
from tests.streams import Poller
from tests.support import seat_party, serving


def chat(seq: int, game: str = "ABC123") -> Event:
    return Event(game, "chat_message", {"text": f"line {seq}"}, seq=seq)


def test_a_ring_covers_a_run_of_consecutive_seqs_and_answers_only_within_it() -> None:
    recent = RecentEvents(per_game=4)
    for seq in range(1, 7):
        recent.record(chat(seq))
    recent.record(Event("ABC123", "player_typing", {}))  # ephemeral: not kept
    assert recent.since("ABC123", 6, None) == (6, [])
    assert [e.seq for e in recent.since("ABC123", 2, None)[1]] == [3, 4, 5, 6]  # type: ignore[index]
    assert recent.since("ABC123", 1, None) is None  # 2 fell out of the ring: ask the log
    assert recent.since("ABC123", 7, None) is None  # past what it knows: ask the log
    assert recent.since("OTHER1", 0, None) is None

    recent.record(chat(5))  # a duplicate changes nothing
    recent.record(chat(9))  # a gap: the ring starts again, never holding a hole
    assert recent.since("ABC123", 6, None) is None
    assert [e.seq for e in recent.since("ABC123", 8, None)[1]] == [9]  # type: ignore[index]
    recent.forget("ABC123")
    assert recent.since("ABC123", 8, None) is None


def test_a_ring_gives_each_viewer_only_what_it_may_see() -> None:
    recent = RecentEvents()
    recent.record(chat(1))
    recent.record(Event("ABC123", "whisper", {"text": "psst"}, player_audience("p1"), seq=2))
    recent.record(chat(3))
    assert [e.seq for e in recent.since("ABC123", 0, "p1")[1]] == [1, 2, 3]  # type: ignore[index]
    assert [e.seq for e in recent.since("ABC123", 0, "p2")[1]] == [1, 3]  # type: ignore[index]
    assert recent.since("ABC123", 0, "p2")[0] == 3  # type: ignore[index]


def test_the_oldest_game_makes_way_when_too_many_are_kept() -> None:
    recent = RecentEvents(games=2)
    for game in ("AAAAAA", "BBBBBB", "CCCCCC"):
        recent.record(chat(1, game))
    assert recent.since("AAAAAA", 0, None) is None
    assert recent.since("CCCCCC", 0, None) is not None


async def test_polls_from_a_recent_cursor_are_answered_without_reading_the_log(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        for n in range(5):
            assert (await ann.post("/chat", {"text": f"line {n}"})).status_code == 201
        store = server.runtime.services.store
        reads: list[Any] = []
        original = store.log_since

        async def counted(*args: Any, **kwargs: Any) -> Any:
            reads.append(args)
            return await original(*args, **kwargs)

        store.log_since = counted  # type: ignore[method-assign]
        poller = Poller(bram, after=2, timeout=0)
        answer = await poller.poll()
        assert reads == [], "a catch-up the ring covers read the log"
        from_log = [e for e in await logged(server, bram.game_code, bram.player_id) if e.seq > 2]
        assert [(i["seq"], i["event"]) for i in answer["events"]] == [(e.seq, e.name) for e in from_log]
        assert answer["recovered"] is True and answer["last_seq"] == from_log[-1].seq

        poller.after = 0  # the ring has every event of this young game, so still no read
        await poller.poll()
        assert reads == []
        await poller.client.aclose()
        await ann.close()
        await bram.close()
