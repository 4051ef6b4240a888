"""Reconnect storms: every way of starting the server that the project ships listens with a
backlog deep enough for every player to reconnect at once, and a server started with a
shallow one says so at start (arcane/serving/listen.py)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx

from arcane.runtime import BACKLOG_CHECK_AFTER
from tests.test_shutdown import free_port

ROOT = Path(__file__).resolve().parent.parent
WARNING = re.compile(r"listening on 127\.0\.0\.1:\d+ with a backlog of (\d+)")


async def started_log(tmp_path: Path, *args: str) -> str:
    """The server's log a moment after it answers, started as `python <args> --bind ...`."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    env = os.environ | {"ARCANE_DATABASE": str(tmp_path / "arcane.db")}
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, "--bind", f"127.0.0.1:{port}", env=env, cwd=str(ROOT), stderr=output)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the server did not start: {log.read_text()}")
        await asyncio.sleep(BACKLOG_CHECK_AFTER + 1.5)  # the check runs a second after startup
        return log.read_text()
    finally:
        proc.terminate()
        await proc.wait()


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
