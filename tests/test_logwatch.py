"""A process that dies between its COMMIT and its publish leaves an event nobody hears of:
every process reads its followed games' last seqs, and feeds behind the log are told to
read it (arcane/logwatch.py)."""

from __future__ import annotations

from pathlib import Path

from arcane.bus import Bus, Resync
from arcane.events import Event
from arcane.logwatch import LogWatch
from arcane.store import Writes
from tests.gameplay import new_game, open_store, written


async def test_an_event_committed_but_never_published_sends_the_game_s_feeds_to_the_log(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "codex.db")  # its commits reach no bus: as from a dead host
    try:
        bus = Bus()
        await new_game(store)
        await new_game(store, "XYZ789")
        followed = bus.open_subscription("ABC123")
        bus.open_subscription("XYZ789")
        watch = LogWatch(bus, store)
        # XYZ789's event is heard here (published), ABC123's is not.
        bus.publish([Event("XYZ789", "player_joined", {}, seq=1)])
        assert await watch.check() == []  # the first reading only notes where each log is
        assert await watch.check() == ["ABC123"]  # held at the last reading, still unheard
        assert [type(item) for item in followed.take_held()] == [Resync]
        assert await watch.check() == []  # told once, not at every reading

        async def one_more(tx: Writes) -> None:
            await tx.log("ABC123", "chat_message", {"text": "lost on its way"})

        await written(store, one_more)
        assert await watch.check() == []  # committed since the last reading: it may be on its way
        bus.publish([Event("ABC123", "chat_message", {"text": "lost on its way"}, seq=2)])
        assert await watch.check() == []  # it came
        assert followed.take_held()[-1].seq == 2  # type: ignore[union-attr]
        followed.close()
        assert "ABC123" not in bus.followed_games()
        await watch.check()
        assert bus.heard is not None and "ABC123" not in bus.heard  # nothing kept of games nobody follows here
    finally:
        await store.close()
