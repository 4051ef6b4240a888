"""Nothing is lost: restarts mid-turn, actions that fail or are cancelled, migrations, retention."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

import arcane.store.sqlite
from arcane.events import Event
from arcane.store import MIGRATIONS, Store, Writes
from tests.gameplay import (
    FlakySource, Recorder, close_all, last_seq, logged, names, new_game, open_store, trust_of, written,
)
from tests.support import LiveServer, Player, http_client, play_to_first_turn, reseated, seat_party, test_settings
from tests.logs import events_after, log_bounds


async def record(server: LiveServer, code: str, viewers: list[Player]) -> dict[str, Any]:
    """Everything a restart must keep: the log's bounds, each viewer's view and visible log."""
    return {
        "bounds": await log_bounds(server.runtime.services.store, code),
        "views": [await v.view() for v in viewers],
        "logs": [await logged(server, code, v.player_id) for v in viewers] + [await logged(server, code, None)],
    }


reseat = reseated


async def test_a_restart_mid_turn_loses_nothing(tmp_path: Path) -> None:
    settings = test_settings(tmp_path)
    first = LiveServer(settings)
    await first.start()
    party = await seat_party(first, ["Aria", "Brom", "Cyra", "Dax"])
    code = party[0].game_code
    spectator = await Player.watch(first, code, "Wren")
    await play_to_first_turn(party)
    options = [o["id"] for o in (await party[0].view())["scenario"]["options"]]
    for player in party:
        assert (await player.post("/choices", {"option_id": options[0]})).status_code == 200
    assert (await party[0].post("/chat", {"text": "Turn two. Choose well."})).status_code == 201
    options = [o["id"] for o in (await party[0].view())["scenario"]["options"]]
    assert (await party[0].post("/choices", {"option_id": options[1]})).status_code == 200
    assert (await party[1].post("/choices", {"text": "I hide the map."})).status_code == 200

    before = await record(first, code, [*party, spectator])
    assert before["views"][0]["turn_number"] == 2
    assert before["views"][0]["my_choice"] == {"option_id": options[1], "text": None}
    assert before["views"][1]["my_choice"] == {"option_id": None, "text": "I hide the map."}
    await close_all([*party, spectator])
    await first.stop()
    first.close()

    second = LiveServer(settings)  # another process on the same database
    await second.start()
    try:
        party = [reseat(p, second) for p in party]
        spectator = reseat(spectator, second)
        after = await record(second, code, [*party, spectator])
        assert after == before
        assert (await party[2].view())["waiting_for"] == [party[2].player_id, party[3].player_id]

        assert (await party[2].post("/choices", {"option_id": options[0]})).status_code == 200
        assert (await party[3].post("/choices", {"option_id": options[0]})).status_code == 200
        new = (await logged(second, code, None))[len(before["logs"][-1]):]
        assert names(new) == ["player_chose", "player_chose", "turn_resolution", "new_scenario"]
        resolution = new[2].payload
        assert resolution["turn_number"] == 2
        assert [(c["player_id"], c["option_id"], c["text"]) for c in resolution["choices"]] == [
            (party[0].player_id, options[1], None), (party[1].player_id, None, "I hide the map."),
            (party[2].player_id, options[0], None), (party[3].player_id, options[0], None)]
        assert new[0].seq == before["bounds"][1] + 1
        view = await party[0].view()
        assert view["turn_number"] == 3 and view["my_choice"] is None and view["scenario"] is not None
        await close_all([*party, spectator])
    finally:
        await second.stop()
        second.close()


async def test_a_session_cookie_survives_a_restart(tmp_path: Path) -> None:
    server = LiveServer(test_settings(tmp_path))
    await server.start()
    browser = http_client(server.url)
    try:
        created = (await browser.post("/api/games", json={"player_name": "Aria"})).json()
        await server.restart()
        response = await browser.get(f"/api/games/{created['game_code']}")
        assert response.status_code == 200, response.text
        assert response.json()["you"]["player_id"] == created["player_id"]
        assert (await browser.get("/api/game_state")).json()["game_code"] == created["game_code"]
    finally:
        await browser.aclose()
        await server.stop()
        server.close()


async def test_a_game_left_without_its_scenario_gets_it_after_a_restart(tmp_path: Path) -> None:
    source = FlakySource(mode="fail")
    server = LiveServer(test_settings(tmp_path), source=source)
    await server.start()
    try:
        party = await seat_party(server, ["Aria", "Brom"])
        code = party[0].game_code
        await play_to_first_turn(party)
        assert source.calls >= 1
        view = await party[0].view()
        assert view["phase"] == "playing" and view["turn_number"] == 1 and view["scenario"] is None
        before = await last_seq(server, code)

        await server.stop()  # the background retry dies with the process
        source.mode = "ok"
        await server.start()  # resuming happens before serving, so no waiting is needed
        view = await party[0].view()
        assert view["turn_number"] == 1 and view["scenario"] is not None and view["whisper"]
        events = await store_events(server, code, before)
        assert names(events) == ["new_scenario"]
        for player in party:
            whispers = [e for e in await logged(server, code, player.player_id) if e.name == "whisper"]
            assert len(whispers) == 1 and whispers[0].payload["text"] == (await player.view())["whisper"]
        await close_all(party)
    finally:
        await server.stop()
        server.close()


async def store_events(server: LiveServer, code: str, after: int) -> list[Event]:
    return await events_after(server.runtime.services.store, code, after, None)


# -- the store itself ---------------------------------------------------------------------------


async def still_writes(store: Store, recorder: Recorder) -> None:
    """The writer is free and clean: a transaction commits, with the next seq in order."""
    seq = (await log_bounds(store, "ABC123") or (0, 0))[1]

    async def write(tx: Writes) -> None:
        await tx.execute("UPDATE games SET party_trust = 77 WHERE code = 'ABC123'")
        await tx.log("ABC123", "chat_message", {"text": "after"})

    await asyncio.wait_for(written(store, write), 5)  # a bound, so a held lock fails the test instead of hanging it
    assert await trust_of(store) == 77
    assert recorder.published[-1].seq == seq + 1 and recorder.published[-1].payload == {"text": "after"}


async def test_a_failed_action_leaves_nothing_behind(tmp_path: Path) -> None:
    store, recorder = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)
        published = list(recorder.published)

        async def ritual(tx: Writes) -> None:
            await tx.execute("UPDATE games SET party_trust = 0 WHERE code = 'ABC123'")
            await tx.log("ABC123", "chat_message", {"text": "never"})
            raise RuntimeError("the ritual fails")

        with pytest.raises(RuntimeError, match="the ritual fails"):
            await written(store, ritual)
        assert await trust_of(store) == 50
        assert await log_bounds(store, "ABC123") == (0, 1)
        assert names(await events_after(store, "ABC123", 0, None)) == ["player_joined"]
        assert recorder.published == published
        await still_writes(store, recorder)
    finally:
        await store.close()


async def test_an_action_awaiting_anything_but_the_store_is_abandoned_whole(tmp_path: Path) -> None:
    """Actions run on the writer's thread in one step: one that would suspend is a bug, and
    is refused with everything it wrote, never left half-done."""
    store, recorder = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)
        published = list(recorder.published)

        async def suspends(tx: Writes) -> None:
            await tx.log("ABC123", "chat_message", {"text": "never"})
            await asyncio.sleep(0)

        with pytest.raises(RuntimeError, match="awaited something other than the store"):
            await written(store, suspends)
        assert await log_bounds(store, "ABC123") == (0, 1) and recorder.published == published
        await still_writes(store, recorder)
    finally:
        await store.close()


async def blocked_writer(store: Store) -> tuple[asyncio.Future[Any], threading.Event]:
    """An action holding the writer's thread until the event is set (it then writes trust 60)."""
    may_go, holding = threading.Event(), threading.Event()

    async def hold(tx: Writes) -> None:
        holding.set()
        may_go.wait(10)
        await tx.execute("UPDATE games SET party_trust = 60 WHERE code = 'ABC123'")

    first = asyncio.ensure_future(written(store, hold))
    await asyncio.wait_for(asyncio.to_thread(holding.wait, 10), 15)
    return first, may_go


async def test_an_action_cancelled_before_its_trip_leaves_nothing_behind(tmp_path: Path) -> None:
    store, recorder = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)
        published = list(recorder.published)
        first, may_go = await blocked_writer(store)

        async def never(tx: Writes) -> None:
            await tx.execute("UPDATE games SET party_trust = 0 WHERE code = 'ABC123'")
            await tx.log("ABC123", "chat_message", {"text": "never"})

        queued = asyncio.ensure_future(written(store, never))
        await asyncio.sleep(0.05)  # queued behind the writer's trip
        queued.cancel()
        may_go.set()
        await asyncio.wait_for(first, 10)
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert await trust_of(store) == 60
        assert await log_bounds(store, "ABC123") == (0, 1)
        assert recorder.published == published
        await still_writes(store, recorder)
    finally:
        await store.close()


async def test_an_action_cancelled_on_its_trip_commits_whole_and_leaves_the_writer_clean(tmp_path: Path) -> None:
    """Once on the writer's thread an action cannot be stopped half-way: it commits whole,
    though its caller, gone, is never told (nothing was acknowledged, nothing is torn)."""
    store, recorder = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)
        first, may_go = await blocked_writer(store)
        first.cancel()
        may_go.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        async def nothing(tx: Writes) -> None:
            return None

        await asyncio.wait_for(written(store, nothing), 10)  # queued behind that trip
        assert await trust_of(store) == 60
        await still_writes(store, recorder)
    finally:
        await store.close()


async def test_a_snapshot_cancelled_while_it_begins_leaves_reads_fresh(tmp_path: Path) -> None:
    store, recorder = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)

        async def interrupted() -> None:
            async with store.snapshot():
                await store.fetchone("SELECT 1")

        task = asyncio.create_task(interrupted())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await still_writes(store, recorder)
        async with store.snapshot() as db:
            assert await trust_of(db) == 77
        assert await trust_of(store) == 77
    finally:
        await store.close()


async def test_migrations_run_once_and_are_counted_in_user_version(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "codex.db"
    store, _ = await open_store(path)
    await new_game(store)
    await store.close()
    assert user_version(path) == len(MIGRATIONS)

    relics = "CREATE TABLE relics (name TEXT NOT NULL); INSERT INTO relics (name) VALUES ('codex')"
    monkeypatch.setattr(arcane.store.sqlite, "MIGRATIONS", (*MIGRATIONS, relics))
    for _ in range(2):  # the first opening migrates; the second finds nothing to do
        store, _ = await open_store(path)
        try:
            assert [tuple(r) for r in await store.fetchall("SELECT name FROM relics")] == [("codex",)]
            assert await trust_of(store) == 50
        finally:
            await store.close()
        assert user_version(path) == len(MIGRATIONS) + 1


async def test_a_broken_migration_changes_nothing_and_lets_go_of_the_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "codex.db"
    store, _ = await open_store(path)
    await new_game(store)
    await store.close()

    broken = "CREATE TABLE relics (name TEXT NOT NULL); INSERT INTO nowhere VALUES (1)"
    monkeypatch.setattr(arcane.store.sqlite, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        await open_store(path)
    assert user_version(path) == len(MIGRATIONS)
    with sqlite3.connect(path, timeout=0) as conn:
        conn.execute("BEGIN IMMEDIATE")  # nobody is left holding the write lock
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'relics'").fetchall() == []
        conn.execute("ROLLBACK")
    conn.close()

    monkeypatch.setattr(arcane.store.sqlite, "MIGRATIONS", MIGRATIONS)
    store, _ = await open_store(path)
    try:
        assert await trust_of(store) == 50
    finally:
        await store.close()


async def test_a_log_kept_by_game_and_seq_moves_to_the_appended_table_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "codex.db"
    monkeypatch.setattr(arcane.store.sqlite, "MIGRATIONS", MIGRATIONS[:1])  # the schema before the log was appended
    store, _ = await open_store(path)
    try:
        for code in ("ABC123", "XYZ789"):
            await new_game(store, code)
        async def two(tx: Writes) -> None:
            await tx.log("XYZ789", "whisper", {"text": "only Aria"}, to_player="aria")
            await tx.log("ABC123", "chat_message", {"text": "hello"})

        await written(store, two)
        before = {code: await events_after(store, code, 0, "aria") for code in ("ABC123", "XYZ789")}
    finally:
        await store.close()
    assert user_version(path) == 1

    monkeypatch.setattr(arcane.store.sqlite, "MIGRATIONS", MIGRATIONS)
    store, _ = await open_store(path)
    try:
        assert user_version(path) == len(MIGRATIONS)
        after = {code: await events_after(store, code, 0, "aria") for code in ("ABC123", "XYZ789")}
        assert after == before
        assert [(e.name, e.seq) for e in after["XYZ789"]] == [("player_joined", 1), ("whisper", 2)]
        assert await events_after(store, "XYZ789", 0, "bran") == after["XYZ789"][:1]  # still private
        async def again(tx: Writes) -> None:
            await tx.log("ABC123", "chat_message", {"text": "again"})

        await written(store, again)
        assert [e.seq for e in await events_after(store, "ABC123", 0, None)] == [1, 2, 3]
        plan = await store.fetchall(
            "EXPLAIN QUERY PLAN SELECT payload FROM events WHERE game_code = ? AND seq > ?", ("ABC123", 0))
        assert "SEARCH events USING INDEX events_by_game" in plan[0]["detail"]
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        table = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    conn.close()
    assert "id INTEGER PRIMARY KEY" in table and "WITHOUT ROWID" not in table


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()
    return int(version)


async def test_old_events_are_pruned_past_the_retention(tmp_path: Path) -> None:
    server = LiveServer(test_settings(tmp_path, log_retention=5))
    await server.start()
    try:
        host, brom = await seat_party(server, ["Aria", "Brom"])
        code = host.game_code
        assert await log_bounds(server.runtime.services.store, code) == (0, 2)
        for n in range(10):
            assert (await host.post("/chat", {"text": f"line {n}"})).status_code == 201
        assert await log_bounds(server.runtime.services.store, code) == (7, 12)
        kept = await logged(server, code, None)
        assert [e.seq for e in kept] == [8, 9, 10, 11, 12]
        assert [e.payload["text"] for e in kept] == [f"line {n}" for n in range(5, 10)]
        stored = await server.runtime.services.store.fetchone("SELECT COUNT(*) FROM events WHERE game_code = ?", (code,))
        assert stored is not None and stored[0] == 5

        assert (await brom.post("/chat", {"text": "one more"})).status_code == 201
        assert await log_bounds(server.runtime.services.store, code) == (8, 13)
        view = await host.view()
        assert view["seq"] == 13 and [p["player_name"] for p in view["players"]] == ["Aria", "Brom"]
        await close_all([host, brom])
    finally:
        await server.stop()
        server.close()


async def store_counting_commits(tmp_path: Path) -> tuple[Store, Recorder, list[int]]:
    """A store whose commits are recorded, and counted (events per commit)."""
    store, recorder = await open_store(tmp_path / "codex.db")
    commits: list[int] = []
    store.on_commit = lambda events: (commits.append(len(events)), recorder(events))  # type: ignore[func-returns-value]
    return store, recorder, commits


async def test_actions_arriving_together_share_a_commit_and_a_failure_takes_none_of_the_others(
    tmp_path: Path,
) -> None:
    store, recorder, commits = await store_counting_commits(tmp_path)
    try:
        await new_game(store)
        commits.clear()

        async def chat(n: int) -> int:
            async def line(tx: Writes) -> Event:
                event = await tx.log("ABC123", "chat_message", {"text": f"line {n}"})
                if n == 17:
                    raise RuntimeError("the ritual fails")
                return event

            event = await written(store, line)
            # Returned only once committed: a fresh read on the other connection sees it.
            seen = await events_after(store, "ABC123", event.seq - 1, None, upto=event.seq)
            assert [e.payload for e in seen] == [{"text": f"line {n}"}]
            return n

        results = await asyncio.gather(*(chat(n) for n in range(40)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and str(failed[0]) == "the ritual fails"
        texts = [e.payload["text"] for e in await events_after(store, "ABC123", 1, None)]
        assert texts == [f"line {n}" for n in range(40) if n != 17]
        assert [e.seq for e in recorder.published[-39:]] == list(range(2, 41))
        assert sum(commits) == 39 and len(commits) < 39, commits  # one fsync served many actions
        await still_writes(store, recorder)
    finally:
        await store.close()


async def _lines(db: Writes, items: list[int]) -> list[Any]:
    """A batched action: refuses multiples of 7 without writing, logs the rest in one go."""
    answers: list[Any] = [ValueError(f"{n} is refused") if n % 7 == 0 else None for n in items]
    logged = iter(await db.log_many([("ABC123", "chat_message", {"text": f"line {n}"}, "room", n)
                               for n, a in zip(items, answers) if a is None]))
    return [a if a is not None else next(logged) for a in answers]


async def _broken(db: Writes, items: list[int]) -> list[Any]:
    await db.log_many([("ABC123", "chat_message", {"text": f"broken {n}"}, "room", None) for n in items])
    raise RuntimeError("the ink runs")


async def test_batched_actions_share_trips_and_commits_and_refuse_or_fail_alone(tmp_path: Path) -> None:
    store, recorder, commits = await store_counting_commits(tmp_path)
    try:
        await new_game(store)
        commits.clear()
        recorder.published.clear()

        async def one(n: int) -> Any:
            if n % 10 == 5:
                return await store.run(_broken, n)
            if n % 10 == 9:  # a one-item action among them, in the same commits
                async def line(tx: Writes) -> Event:
                    return await tx.log("ABC123", "chat_message", {"text": f"line {n}"})

                return await written(store, line)
            event = await store.run(_lines, n)
            # Returned only once committed: a fresh read on the other connection sees it.
            seen = await events_after(store, "ABC123", event.seq - 1, None, upto=event.seq)
            assert [e.payload for e in seen] == [{"text": f"line {n}"}]
            return event

        results = await asyncio.gather(*(one(n) for n in range(100)), return_exceptions=True)
        refused = [n for n, r in enumerate(results) if isinstance(r, ValueError)]
        broken = [n for n, r in enumerate(results) if isinstance(r, RuntimeError)]
        assert refused == [n for n in range(100) if n % 7 == 0 and n % 10 not in (5, 9)]
        assert broken == [n for n in range(100) if n % 10 == 5]
        kept = sorted(n for n in range(100) if n not in refused and n not in broken)
        texts = [e.payload["text"] for e in await events_after(store, "ABC123", 1, None)]
        assert sorted(texts, key=lambda t: int(t.split()[1])) == [f"line {n}" for n in kept]
        assert "broken" not in " ".join(texts)
        # Published once each, in seq order, and each caller got its own event.
        assert [e.seq for e in recorder.published] == list(range(2, 2 + len(kept)))
        assert {results[n].payload["text"] for n in kept} == set(texts)
        assert sum(commits) == len(kept) and len(commits) < len(kept) // 4, commits
        await still_writes(store, recorder)
    finally:
        await store.close()


async def test_an_event_carries_the_request_that_caused_it_to_its_subscribers_not_into_the_log(
        tmp_path: Path) -> None:
    store, recorder = await open_store(tmp_path / "codex.db")
    try:
        await new_game(store)
        recorder.published.clear()
        results = await asyncio.gather(*(store.run(_lines, n) for n in range(1, 9)), return_exceptions=True)
        events = dict(zip(range(1, 9), results))
        assert isinstance(events.pop(7), ValueError)  # refused: nothing logged, nothing published
        assert {e.cause for e in recorder.published} == set(events) == {e.cause for e in events.values()}
        assert {e.cause for e in await events_after(store, "ABC123", 1, None)} == {None}
        await still_writes(store, recorder)
    finally:
        await store.close()


async def test_the_next_batch_commits_while_the_last_one_is_published(tmp_path: Path) -> None:
    """Store.run: SQLite works on the next batch while the event loop fans out the last one."""
    store, recorder, _ = await store_counting_commits(tmp_path)
    first_may_commit = threading.Event()
    second_on_the_thread = threading.Event()
    overlapped: list[bool] = []
    try:
        await new_game(store)
        recorder.published.clear()

        async def first(db: Writes, items: list[int]) -> list[Any]:
            first_may_commit.wait(5)
            return await _lines(db, items)

        async def second(db: Writes, items: list[int]) -> list[Any]:
            second_on_the_thread.set()
            return await _lines(db, items)

        def publish(events: list[Event]) -> None:
            if not recorder.published:  # the first batch: the second is on the thread by now
                overlapped.append(second_on_the_thread.wait(5))
            recorder(events)

        store.on_commit = publish
        early = asyncio.ensure_future(store.run(first, 1))
        await asyncio.sleep(0.1)  # the first batch is on the writer's thread
        late = [asyncio.ensure_future(store.run(second, n)) for n in (2, 3)]
        await asyncio.sleep(0.1)  # and these are queued behind it
        first_may_commit.set()
        events = await asyncio.wait_for(asyncio.gather(early, *late), 15)
        assert overlapped == [True]
        assert [e.seq for e in events] == [2, 3, 4]
        assert [(e.seq, e.payload["text"]) for e in recorder.published] == [(2, "line 1"), (3, "line 2"), (4, "line 3")]
        await still_writes(store, recorder)
    finally:
        first_may_commit.set()
        await store.close()
