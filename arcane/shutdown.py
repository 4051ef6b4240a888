"""Hearing that hypercorn is stopping, before it waits on our long-lived connections.

Hypercorn tells the app of shutdown (lifespan) only after open connections end,
and SSE streams, long-polls and sockets never end by themselves (on Python 3.12+ it
waits for them past its graceful timeout). So the runtime listens for the stop itself:

- single process (`-w 0`, or hypercorn.asyncio.serve with its signal handlers):
  the loop's SIGINT/SIGTERM handlers are chained, ours first (the loop remembers
  them: arcane/serving/asyncio.py);
- worker processes (hypercorn's default): the worker's shutdown event, handed to
  it by the parent, is polled as hypercorn itself does (arcane/serving/hypercorn.py).

Hypercorn has no public way to tell the app that it has begun to stop: `serve(app,
config, shutdown_trigger=...)` is for a program that runs hypercorn itself (the tests
do, and call `Runtime.begin_shutdown` with it), not for `hypercorn arcane:app`. When
neither is found, streams end at hypercorn's graceful timeout instead, which is slower.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

from arcane.serving import asyncio as serving_asyncio
from arcane.serving import hypercorn as serving_hypercorn

POLL_SECONDS = 0.1


def watch(callback: Callable[[], None]) -> asyncio.Task[None] | None:
    """Arrange for `callback` to run when hypercorn starts to stop; a task to cancel, if any."""
    if _chain_signals(callback):
        return None
    event = serving_hypercorn.worker_shutdown_event()
    if event is None:
        return None
    return asyncio.create_task(_poll(event, callback), name="arcane-shutdown-watch")


def _chain_signals(callback: Callable[[], None]) -> bool:
    loop = asyncio.get_running_loop()
    chained = False
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = serving_asyncio.signal_handler(loop, sig)
        if previous is None:
            continue

        def handler(previous: Callable[[], None] = previous) -> None:
            callback()
            previous()

        loop.add_signal_handler(sig, handler)
        chained = True
    return chained


async def _poll(event: Any, callback: Callable[[], None]) -> None:
    while not event.is_set():
        await asyncio.sleep(POLL_SECONDS)
    callback()


def hypercorn_workers() -> int:
    """How many worker processes hypercorn started beside this one (1 when not a worker)."""
    return serving_hypercorn.workers()
