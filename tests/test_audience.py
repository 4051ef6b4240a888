"""Who may see an event is decided in one place (`arcane.events.audiences`): the log's reads
and the live deliveries must agree on it, for the room, each seat and a stranger."""

from __future__ import annotations

from pathlib import Path

from arcane.events import ROOM, Event, player_audience
from arcane.store import Writes
from tests.gameplay import new_game, open_store, written


async def test_the_log_hands_each_viewer_exactly_what_the_live_check_lets_them_see(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)

        async def mixed(tx: Writes) -> list[Event]:
            return [await tx.log("ABC123", "chat_message", {"text": "all"}),
                    await tx.log("ABC123", "whisper", {"text": "to a"}, to_player="a"),
                    await tx.log("ABC123", "whisper", {"text": "to b"}, to_player="b"),
                    await tx.log("ABC123", "whisper", {"text": "to a, again"}, to_player="a")]

        logged = await written(store, mixed)
        assert {e.audience for e in logged} == {ROOM, player_audience("a"), player_audience("b")}
        for viewer in (None, "a", "b", "c", "room"):
            found = await store.log_since("ABC123", 1, viewer)
            assert found is not None and found[2] is not None
            from_log = [(e.seq, e.payload) for e in found[2]]
            live = [(e.seq, e.payload) for e in logged if e.visible_to(viewer)]
            assert from_log == live, viewer
        seen = {viewer: [e.payload["text"] for e in (await store.log_since("ABC123", 1, viewer) or (0, 0, []))[2] or []]
                for viewer in (None, "a", "b", "room")}
        # A player id that looks like an audience ("room") sees no whisper either.
        assert seen == {None: ["all"], "a": ["all", "to a", "to a, again"], "b": ["all", "to b"], "room": ["all"]}
    finally:
        await store.close()
