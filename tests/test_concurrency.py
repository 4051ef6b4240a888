"""Everyone at once: simultaneous choices resolve a turn exactly once, and reads never go stale."""

from __future__ import annotations

import asyncio
from pathlib import Path

from arcane.events import Event
from arcane.store import Writes
from tests.gameplay import close_all, error_of, logged, new_game, open_store, trust_of, written
from tests.support import LiveServer, Player, play_to_first_turn, seat_party


def turn_events(events: list[Event], turn: int) -> list[Event]:
    """The events from turn `turn`'s scenario up to (not including) the next one."""
    start = next(i for i, e in enumerate(events)
                 if e.name == "new_scenario" and e.payload["turn_number"] == turn)
    end = next((i for i, e in enumerate(events[start + 1:], start + 1) if e.name == "new_scenario"), len(events))
    return events[start:end]


async def test_four_players_choosing_at_once_resolve_each_turn_once(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom", "Cyra", "Dax"])
    code = party[0].game_code
    await play_to_first_turn(party)

    for turn in (1, 2, 3, 4):
        view = await party[0].view()
        assert view["turn_number"] == turn
        options = [o["id"] for o in view["scenario"]["options"]]
        picks = [{"option_id": options[i % len(options)]} for i in range(3)] + [{"text": f"turn {turn}"}]
        responses = await asyncio.gather(*(p.post("/choices", pick) for p, pick in zip(party, picks)))
        assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
        progress = sorted(r.json()["choices_submitted"] for r in responses)
        assert progress == [1, 2, 3, 4]
        assert sum(r.json()["all_submitted"] for r in responses) == 1

        events = turn_events(await logged(server, code, None), turn)
        chose = [e for e in events if e.name == "player_chose"]
        resolved = [e for e in events if e.name == "turn_resolution"]
        assert len(chose) == 4 and {e.payload["player_id"] for e in chose} == {p.player_id for p in party}
        assert [e.payload["choices_submitted"] for e in chose] == [1, 2, 3, 4]
        assert len(resolved) == 1 and resolved[0].payload["turn_number"] == turn
        assert len(resolved[0].payload["choices"]) == 4
        all_resolutions = [e for e in await logged(server, code, None) if e.name == "turn_resolution"]
        assert [e.payload["turn_number"] for e in all_resolutions] == list(range(1, turn + 1))
        after = await party[0].view()
        assert after["turn_number"] == turn + 1 and after["waiting_for"] == [p.player_id for p in party]
        assert after["party_trust"] == resolved[0].payload["party_trust"]
    await close_all(party)


async def test_a_double_click_counts_once(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    await play_to_first_turn(party)
    options = [o["id"] for o in (await party[0].view())["scenario"]["options"]]

    first, second = await asyncio.gather(party[0].post("/choices", {"option_id": options[0]}),
                                         party[0].post("/choices", {"option_id": options[1]}))
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 409], (first.text, second.text)
    accepted, refused = (first, second) if first.status_code == 200 else (second, first)
    assert error_of(refused) == "ALREADY_CHOSE"
    assert accepted.json()["choices_submitted"] == 1

    chose = [e for e in await logged(server, code, None) if e.name == "player_chose"]
    assert len(chose) == 1 and chose[0].payload["player_id"] == party[0].player_id
    view = await party[0].view()
    picked = options[0] if accepted is first else options[1]
    assert view["my_choice"] == {"option_id": picked, "text": None}
    assert view["waiting_for"] == [party[1].player_id] and view["turn_number"] == 1
    await close_all(party)


async def test_many_tables_start_at_once_and_every_one_gets_its_scenario(server: LiveServer) -> None:
    tables = [await seat_party(server, [f"A{n}", f"B{n}"]) for n in range(6)]
    for party in tables:
        assert (await party[0].post("/start")).status_code == 200
    # Everyone answers at once while spectators keep reading: reads and writes interleave.
    watchers = [await Player.watch(server, party[0].game_code, "Eye") for party in tables]
    stop = asyncio.Event()

    async def keep_reading(watcher: Player) -> None:
        while not stop.is_set():
            assert (await watcher.get()).status_code == 200

    readers = [asyncio.create_task(keep_reading(w)) for w in watchers]
    try:
        await asyncio.gather(*(p.answer_all() for party in tables for p in party))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    for party in tables:
        view = await party[0].view()
        assert view["phase"] == "playing" and view["scenario"] is not None, view["game_code"]
        assert [e.name for e in await logged(server, party[0].game_code, None)].count("new_scenario") == 1
    await close_all([p for party in tables for p in party] + watchers)


async def test_a_read_waits_out_another_tasks_snapshot_rather_than_see_it(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)
        pinned, release = asyncio.Event(), asyncio.Event()

        async def long_snapshot() -> int:
            async with store.snapshot():
                trust = await trust_of(store)  # the snapshot now holds the database as it was
                pinned.set()
                await release.wait()
                return trust

        holder = asyncio.create_task(long_snapshot())
        await asyncio.wait_for(pinned.wait(), 5)
        async def lower(tx: Writes) -> None:
            await tx.execute("UPDATE games SET party_trust = 10 WHERE code = 'ABC123'")

        await written(store, lower)

        reader = asyncio.create_task(trust_of(store))
        done, _ = await asyncio.wait({reader}, timeout=0.2)
        if done:  # a read may finish while the snapshot is open, but never with its stale state
            assert reader.result() == 10
        release.set()
        assert await asyncio.wait_for(reader, 5) == 10
        assert await holder == 50
    finally:
        await store.close()


async def test_processes_starting_together_on_a_new_database_all_open_it(tmp_path: Path) -> None:
    from arcane.store import SqliteStore

    # Each switches the file to WAL; SQLite refuses all but one at once ("database is
    # locked") rather than have them wait. Before the switch was retried, this failed
    # within the first few rounds.
    for round_ in range(20):
        path = tmp_path / f"arcane{round_}.db"
        stores = [SqliteStore(path) for _ in range(3)]
        await asyncio.gather(*(store.open() for store in stores))
        assert [(await store.fetchone("PRAGMA journal_mode"))[0] for store in stores] == ["wal"] * 3
        for store in stores:
            await store.close()
