"""Hearing that hypercorn is stopping, before it waits on our long-lived connections.

Hypercorn tells the app of shutdown (lifespan) only after open connections end,
and SSE streams, long-polls and sockets never end by themselves. So the runtime
listens for the stop itself:

- single process (`-w 0`, or hypercorn.asyncio.serve with its signal handlers):
  the loop's SIGINT/SIGTERM handlers are chained, ours first;
- worker processes (hypercorn's default): the worker's shutdown event, handed to
  it by the parent, is polled as hypercorn itself does.

Neither is public API of asyncio or hypercorn; when neither is found, streams end
at hypercorn's graceful timeout instead, which is slower but safe.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Callable
from typing import Any

from arcane import loop as event_loop

POLL_SECONDS = 0.1


def watch(callback: Callable[[], None]) -> asyncio.Task[None] | None:
    """Arrange for `callback` to run when hypercorn starts to stop; a task to cancel, if any."""
    if _chain_signals(callback):
        return None
    event = _worker_shutdown_event()
    if event is None:
        return None
    return asyncio.create_task(_poll(event, callback), name="arcane-shutdown-watch")


def _chain_signals(callback: Callable[[], None]) -> bool:
    loop = asyncio.get_running_loop()
    chained = False
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = event_loop.signal_handler(loop, sig)
        if previous is None:
            continue

        def handler(previous: Callable[[], None] = previous) -> None:
            callback()
            previous()

        loop.add_signal_handler(sig, handler)
        chained = True
    return chained


def _worker_shutdown_event() -> Any:
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None)
    event = kwargs.get("shutdown_event") if isinstance(kwargs, dict) else None
    return event if callable(getattr(event, "is_set", None)) else None


async def _poll(event: Any, callback: Callable[[], None]) -> None:
    while not event.is_set():
        await asyncio.sleep(POLL_SECONDS)
    callback()


def hypercorn_workers() -> int:
    """How many worker processes hypercorn started beside this one (1 when not a worker)."""
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None)
    config = kwargs.get("config") if isinstance(kwargs, dict) else None
    workers = getattr(config, "workers", 1)
    return workers if isinstance(workers, int) and workers > 0 else 1
