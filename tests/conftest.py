from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arcane.game import omens

from tests.support import LiveServer, serving


@pytest.fixture(autouse=True)
def traps_in_the_last_option(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each turn hides a trap drawn at random (arcane/game/omens.py) that costs the party trust.
    Tests that play several turns choose the first option, as a party heeding its whispers
    would: the trap, in the servers of this process, is the last option, so a game runs its
    turns whatever the draw. Tests of the trap itself (`@pytest.mark.real_traps`) draw for real,
    as do servers in processes of their own."""
    if request.node.get_closest_marker("real_traps") is None:
        monkeypatch.setattr(omens, "pick_trap", lambda options: options[-1])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with serving(tmp_path) as live:
        yield live
