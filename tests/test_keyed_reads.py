"""Reads by key that arrive together share one trip to the reader (store.KeyedReads)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arcane.game.records import Member
from arcane.store import KeyedReads, Store, Writes
from arcane.store.games import load_members_by_key
from tests.gameplay import new_game, open_store, written


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened, _ = await open_store(tmp_path / "codex.db")
    try:
        yield opened
    finally:
        await opened.close()


async def add_player(store: Store, player_id: str, code: str = "ABC123") -> None:
    async def work(tx: Writes) -> None:
        await tx.execute(
            "INSERT INTO players (game_code, player_id, name, role, position, joined_at)"
            " VALUES (?, ?, ?, 'player', 0, 0)", (code, player_id, f"name of {player_id}"))

    await written(store, work)


async def test_keys_asked_together_are_read_together_and_each_asker_gets_its_own(store: Store) -> None:
    await new_game(store)
    for n in range(5):
        await add_player(store, f"p{n}")
    trips: list[list[tuple[str, str]]] = []

    async def read(db: Store, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Member]:
        trips.append(sorted(keys))
        return await load_members_by_key(db, keys)

    members = KeyedReads(store, read)
    asked = [("ABC123", f"p{n % 6}") for n in range(30)] + [("NOGAME", "p1")]
    found = await asyncio.gather(*(members.get(key) for key in asked))
    assert [m.name if m else None for m in found] == [
        f"name of p{n % 6}" if n % 6 < 5 else None for n in range(30)] + [None]
    assert len(trips) == 1 and len(trips[0]) == 7  # 6 distinct keys of ABC123, one elsewhere

    # A read begins after it is asked for: a seat added meanwhile is seen by the next ask.
    first = asyncio.ensure_future(members.get(("ABC123", "p5")))
    await asyncio.sleep(0)
    await add_player(store, "p5")
    assert await first is None
    assert (await members.get(("ABC123", "p5"))).name == "name of p5"  # type: ignore[union-attr]


async def test_a_failed_read_fails_every_asker_and_a_cancelled_asker_leaves_the_others(store: Store) -> None:
    gate = asyncio.Event()

    async def read(db: Store, keys: list[str]) -> dict[str, str]:
        await gate.wait()
        if "boom" in keys:
            raise RuntimeError("the scroll is torn")
        return {key: key.upper() for key in keys}

    reads = KeyedReads(store, read)
    failing = [asyncio.ensure_future(reads.get(key)) for key in ("boom", "a")]
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(reads.get(key)) for key in ("b", "c")]  # the next trip
    await asyncio.sleep(0)
    later[0].cancel()
    gate.set()
    for task in failing:
        with pytest.raises(RuntimeError, match="the scroll is torn"):
            await task
    assert await later[1] == "C"
    assert later[0].cancelled()
    assert await reads.get("d") == "D"  # reading goes on after a failure


async def test_inside_a_snapshot_the_read_joins_it_instead_of_waiting_for_its_end(store: Store) -> None:
    await new_game(store)
    await add_player(store, "p0")
    gate = asyncio.Event()

    async def read(db: Store, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Member]:
        if ("ABC123", "slow") in keys:
            await gate.wait()
        return await load_members_by_key(db, keys)

    members = KeyedReads(store, read)
    outside = asyncio.ensure_future(members.get(("ABC123", "slow")))  # a trip under way
    await asyncio.sleep(0)
    async with store.snapshot():
        # Queued behind that trip, this ask would wait for the snapshot's own end.
        member = await asyncio.wait_for(members.get(("ABC123", "p0")), 5)
    assert member is not None and member.name == "name of p0"
    gate.set()
    assert await outside is None


async def test_askers_are_not_left_waiting_when_the_reading_itself_is_cancelled(store: Store) -> None:
    gate = asyncio.Event()

    async def read(db: Store, keys: list[str]) -> dict[str, str]:
        await gate.wait()
        return {key: key for key in keys}

    reads = KeyedReads(store, read)
    asked = asyncio.ensure_future(reads.get("a"))
    await asyncio.sleep(0)
    queued = asyncio.ensure_future(reads.get("b"))  # for the next trip
    await asyncio.sleep(0)
    assert reads._reading is not None
    reads._reading.cancel()  # what stopping the server does to a trip under way
    for answer in (asked, queued):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(answer, 5)
    gate.set()
    assert await reads.get("c") == "c"  # and a new ask starts a new trip
