"""`hypercorn arcane:app` as an operator runs it: it starts, and stops promptly on SIGTERM
even while SSE streams, long-polls and sockets are open."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.sockets import socket_for
from tests.streams import sse_for
from tests.support import Player

GRACEFUL_TIMEOUT = 30


@dataclass
class Process:
    url: str
    proc: asyncio.subprocess.Process
    log: Path | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# How an operator may run it, and the event loop that then serves: hypercorn's worker process
# (the stop heard through the worker's shutdown event), or `python -m arcane` (one process,
# hypercorn's public serve() with our own shutdown trigger).
RUNS = {
    "worker-process": (["-m", "hypercorn", "arcane:app", "--workers", "1", "--worker-class", "uvloop"], "uvloop"),
    "worker-process-asyncio-loop": (["-m", "hypercorn", "arcane:app", "--workers", "1"], "asyncio"),
    "python-m-arcane": (["-m", "arcane"], "uvloop"),
    "python-m-arcane-asyncio-loop": (["-m", "arcane", "--loop", "asyncio"], "asyncio"),
    "single-process": (["-m", "hypercorn", "arcane:app", "--workers", "0"], "asyncio"),
}


async def launch(run: str, tmp_path: Path, graceful_timeout: float) -> Process:
    port = free_port()
    args, loop = RUNS[run]
    env = os.environ | {"ARCANE_DATABASE": str(tmp_path / "arcane.db"), "ARCANE_PRESENCE_GRACE": "0.2"}
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, "--bind", f"127.0.0.1:{port}", "--graceful-timeout", str(graceful_timeout),
            env=env, cwd=str(Path(__file__).resolve().parent.parent), stderr=output,
        )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(300):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            proc.kill()
            raise AssertionError(f"{run} did not start: {log.read_text()}")
    assert f"on {loop}'s event loop" in log.read_text(), log.read_text()
    return Process(url, proc, log)


@pytest.fixture(params=["worker-process", "worker-process-asyncio-loop", "python-m-arcane",
                        "python-m-arcane-asyncio-loop"])
async def hypercorn(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Process]:
    server = await launch(request.param, tmp_path, GRACEFUL_TIMEOUT)
    try:
        yield server
    finally:
        if server.proc.returncode is None:
            server.proc.kill()
            await server.proc.wait()


async def test_sigterm_stops_the_server_promptly_with_every_kind_of_connection_open(hypercorn: Process) -> None:
    ann = await Player.create(hypercorn, "Ann")  # type: ignore[arg-type]
    stream = await sse_for(ann)
    ws = await socket_for(ann)
    polling = await socket_for(ann, transports=["polling"])
    poll = asyncio.create_task(ann.get("/poll", params={"after": 10**6 - 1, "timeout": 25}))
    await stream.wait_event("reconnect_sync")
    assert (await ann.view())["players"][0]["online"] is True

    started = time.monotonic()
    hypercorn.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(hypercorn.proc.wait(), GRACEFUL_TIMEOUT - 5)
    # Bounded by the graceful timeout above: a server that waited on its streams would not get here.
    assert time.monotonic() - started < GRACEFUL_TIMEOUT - 5
    await asyncio.wait_for(stream.ended.wait(), 5)
    answered = await asyncio.gather(poll, return_exceptions=True)
    assert not isinstance(answered[0], httpx.Response) or answered[0].status_code == 200
    for client in (ws, polling):
        if client.sio.connected:
            await client.sio.disconnect()
    await stream.close()
    await ann.close()
    assert hypercorn.log is not None
    written = hypercorn.log.read_text()
    assert "Traceback" not in written and "CancelledError" not in written, written  # a graceful stop is quiet
    assert "never awaited" not in written, written


async def test_hypercorn_single_process_ends_open_streams_at_its_graceful_timeout(tmp_path: Path) -> None:
    """`hypercorn -w 0 arcane:app` offers the app no word of the stop: the streams last until
    hypercorn's graceful timeout, then end, and the server exits."""
    server = await launch("single-process", tmp_path, 2)
    try:
        ann = await Player.create(server, "Ann")  # type: ignore[arg-type]
        stream = await sse_for(ann)
        await stream.wait_event("reconnect_sync")
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.proc.wait(), 20)
        await asyncio.wait_for(stream.ended.wait(), 5)
        await stream.close()
        await ann.close()
    finally:
        if server.proc.returncode is None:
            server.proc.kill()
            await server.proc.wait()
