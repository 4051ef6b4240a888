"""Helpers for the game-over-HTTP suites: reading the log, playing turns, scenario sources, the store.

Kept apart from tests/support.py (the shared harness) so the suites that play the
game can grow their vocabulary without touching the harness other suites use.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx

from arcane.events import Event
from arcane.game.content import CLASSES, Option, Scenario
from arcane.game.scenarios import LibrarySource, ScenarioRequest
from arcane.store import SqliteStore, Store, Writes, each
from tests.support import LiveServer, Player
from tests.logs import events_after, log_bounds


async def logged(server: LiveServer, code: str, viewer: str | None) -> list[Event]:
    """Everything `viewer` may see in the game's log, oldest first."""
    return await events_after(server.runtime.services.store, code, 0, viewer)


async def last_seq(server: LiveServer, code: str) -> int:
    bounds = await log_bounds(server.runtime.services.store, code)
    assert bounds is not None, f"no game {code} in the store"
    return bounds[1]


def names(events: Sequence[Event]) -> list[str]:
    return [e.name for e in events]


def assert_seq_increasing(events: Sequence[Event]) -> None:
    seqs = [e.seq for e in events]
    assert all(isinstance(s, int) for s in seqs), seqs
    assert seqs == sorted(set(seqs)), f"seq not strictly increasing: {seqs}"  # type: ignore[type-var]


def error_of(response: httpx.Response) -> str:
    """The contract error code of a refused request, after checking the body's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return str(body["error"]["code"])


async def wait_until(condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0,
                     interval: float = 0.05) -> None:
    """Poll `condition` until it holds; fail (not hang) once `timeout` has passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def answer_randomly(player: Player, rng: random.Random) -> str:
    """Answer every interrogation question with a random answer; the class earned."""
    response = await player.get("/interrogation")
    assert response.status_code == 200, response.text
    question = response.json()["question"]
    while True:
        answer = rng.choice(question["answers"])["id"]
        response = await player.post("/interrogation", {"answer_id": answer, "question_id": question["id"]})
        assert response.status_code == 200, response.text
        result = response.json()
        if result["question"] is None:
            assert result["player_class"] is not None, result
            return str(result["player_class"])
        question = result["question"]


async def choose_all(party: Sequence[Player], picks: Sequence[dict[str, Any]]) -> list[httpx.Response]:
    """Each player submits their pick, one after the other; every submission must be accepted."""
    responses = []
    for player, pick in zip(party, picks, strict=True):
        response = await player.post("/choices", pick)
        assert response.status_code == 200, response.text
        responses.append(response)
    return responses


async def close_all(players: Sequence[Player]) -> None:
    for player in players:
        await player.close()


def doomed_scenario(number: int = 1, *, trust: int = -100) -> Scenario:
    """A scene whose every option costs the party `trust`."""
    return Scenario(
        id=f"doomed-{number}", theme=f"ruin-{number}", title="The Poisoned Well",
        public_scene="A well whose water every traveller swears is sweet.",
        whispers={c: f"Only a {c} can taste the poison in well {number}." for c in CLASSES},
        options=(
            Option("a", "Drink and say nothing.", trust, {"Aldric": -10}, "The party drinks."),
            Option("b", "Accuse a companion of the poisoning.", trust, {"Vex": -10}, "Blame flies."),
        ),
    )


class FixedSource:
    """A scenario source that always serves scenarios built by `make`."""

    def __init__(self, make: Callable[[int], Scenario]) -> None:
        self._make = make

    async def next_scenario(self, request: ScenarioRequest) -> Scenario:
        return self._make(request.turn_number)


@dataclass
class FlakySource:
    """The shipped library behind a switch.

    Modes: "ok"; "fail" (raises); "hang" (past any scenario_timeout the tests set);
    "garbage" (returns something that is not a scenario); "unplayable" (no whispers).
    """

    mode: str = "ok"
    calls: int = 0

    def __post_init__(self) -> None:
        self._library = LibrarySource()

    async def next_scenario(self, request: ScenarioRequest) -> Scenario:
        self.calls += 1
        if self.mode == "fail":
            raise RuntimeError("the oracle is silent")
        if self.mode == "hang":
            await asyncio.sleep(30)
        if self.mode == "garbage":
            return None  # type: ignore[return-value]
        scenario = await self._library.next_scenario(request)
        if self.mode == "unplayable":
            return replace(scenario, whispers={})
        return scenario


# -- the store on its own ------------------------------------------------------------------


class Recorder:
    """An on_commit callback that keeps what the store published."""

    def __init__(self) -> None:
        self.published: list[Event] = []

    def __call__(self, events: list[Event]) -> None:
        self.published.extend(events)


async def open_store(path: Path, **kwargs: Any) -> tuple[SqliteStore, Recorder]:
    recorder = Recorder()
    store = SqliteStore(path, on_commit=recorder, **kwargs)
    await store.open()
    return store, recorder


T = TypeVar("T")


async def written(store: Store, work: Callable[[Writes], Awaitable[T]]) -> T:
    """`work(writes)` as an action of its own (`Store.run`), in its savepoint: answered once
    committed; if it raises, nothing of it is written and the error is raised here."""
    async def action(db: Writes, _: None) -> T:
        return await work(db)

    result: T = await store.run(each(action), None)
    return result


async def new_game(store: Store, code: str = "ABC123") -> None:
    async def work(tx: Writes) -> None:
        await tx.execute(
            "INSERT INTO games (code, phase, max_players, party_trust, npcs, created_at)"
            " VALUES (?, 'lobby', 4, 50, '[]', 0)", (code,))
        await tx.log(code, "player_joined", {"player_name": "Aria"})

    await written(store, work)


async def trust_of(store: Store, code: str = "ABC123") -> int:
    row = await store.fetchone("SELECT party_trust FROM games WHERE code = ?", (code,))
    assert row is not None
    return int(row[0])
