"""Reconnect storms: every way of starting the server that the project ships listens with a
backlog deep enough for every player to reconnect at once, and a server started with a
shallow one says so at start (arcane/serving/listen.py)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from arcane.runtime import BACKLOG_CHECK_AFTER
from tests.support import ROOT, started

WARNING = re.compile(r"listening on 127\.0\.0\.1:\d+ with a backlog of (\d+)")


async def started_log(tmp_path: Path, *args: str) -> str:
    """The server's log a moment after it started (the check runs a second after startup)."""
    async with started(tmp_path, *args) as server:
        await asyncio.sleep(BACKLOG_CHECK_AFTER + 1.5)
        return server.text()


async def test_hypercorn_with_its_default_backlog_warns_at_start(tmp_path: Path) -> None:
    text = await started_log(tmp_path, "-m", "hypercorn", "arcane:app", "--workers", "1")
    found = WARNING.search(text)
    assert found is not None, text
    assert int(found.group(1)) == 100  # hypercorn's default
    assert "--backlog 4096" in text


async def test_the_shipped_ways_of_starting_listen_deep_enough(tmp_path: Path) -> None:
    for args in (["-m", "arcane"], ["-m", "hypercorn", "arcane:app", "--workers", "1", "--backlog", "4096"]):
        text = await started_log(tmp_path, *args)
        assert "Running on" in text and not WARNING.search(text), text
    makefile = (ROOT / "Makefile").read_text()
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "--backlog 4096" in run
    assert "--backlog 4096" in (ROOT / "deploy" / "arcane.service").read_text()
