"""Where scenarios come from: the `ScenarioSource` interface and the offline library."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

from arcane.game.content import CLASSES, Scenario, scenario_library

RECENT_THEMES = 3


@dataclass(frozen=True)
class ScenarioRequest:
    game_code: str
    turn_number: int
    recent_themes: tuple[str, ...]
    used_ids: frozenset[str]
    classes: tuple[str, ...]


class ScenarioUnavailable(Exception):
    """The source failed, timed out, or produced a scenario the game cannot use."""


class ScenarioSource(Protocol):
    async def next_scenario(self, request: ScenarioRequest) -> Scenario: ...


class LibrarySource:
    """Authored scenarios shipped with the package; avoids the last three themes."""

    def __init__(self, library: tuple[Scenario, ...] | None = None) -> None:
        self._library = library if library is not None else scenario_library()

    async def next_scenario(self, request: ScenarioRequest) -> Scenario:
        recent = set(request.recent_themes[-RECENT_THEMES:])
        fresh = [s for s in self._library if s.theme not in recent]
        unused = [s for s in fresh if s.id not in request.used_ids]
        pool = unused or fresh or list(self._library)
        return random.Random(f"{request.game_code}:{request.turn_number}").choice(pool)


def check_playable(scenario: Scenario, classes: tuple[str, ...]) -> None:
    if not scenario.public_scene.strip():
        raise ScenarioUnavailable(f"scenario {scenario.id!r} has no public scene")
    if not 2 <= len(scenario.options) <= 6 or len({o.id for o in scenario.options}) != len(scenario.options):
        raise ScenarioUnavailable(f"scenario {scenario.id!r} needs 2-6 distinct options")
    missing = [c for c in classes if not scenario.whispers.get(c, "").strip()]
    if missing:
        raise ScenarioUnavailable(f"scenario {scenario.id!r} has no whisper for {', '.join(missing)}")


async def fetch_scenario(source: ScenarioSource, request: ScenarioRequest, timeout: float) -> Scenario:
    """The next scenario, checked; any failure becomes ScenarioUnavailable."""
    try:
        scenario = await asyncio.wait_for(source.next_scenario(request), timeout)
    except TimeoutError as exc:
        raise ScenarioUnavailable(f"scenario source timed out after {timeout:g}s") from exc
    except ScenarioUnavailable:
        raise
    except Exception as exc:
        raise ScenarioUnavailable(f"scenario source failed: {exc!r}") from exc
    if not isinstance(scenario, Scenario):
        raise ScenarioUnavailable(f"scenario source returned {type(scenario).__name__}, not a Scenario")
    check_playable(scenario, request.classes or CLASSES)
    return scenario
