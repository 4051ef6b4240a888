"""Hearing that hypercorn is stopping, before it waits on our long-lived connections.

Hypercorn tells the app of shutdown (lifespan) only after open connections end, and SSE
streams, long-polls and sockets never end by themselves: it would wait on them until its
graceful timeout. So the runtime ends them itself as soon as it hears of the stop:

- `python -m arcane` (arcane/serving/runner.py) hands hypercorn a shutdown trigger of its own, through
  hypercorn's public `serve()`: it hears SIGINT and SIGTERM first. The tests do the same.
- `hypercorn arcane:app` with worker processes (its default): the worker's shutdown event,
  set by the parent, is polled as hypercorn itself polls it. Hypercorn hands it to the
  worker only as a process argument (arcane/serving/hypercorn.py).
- `hypercorn -w 0 arcane:app`: hypercorn's own signal handlers offer the app nothing, so
  streams end at hypercorn's graceful timeout (`--graceful-timeout`, 3 s by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from arcane.serving import hypercorn as serving_hypercorn

POLL_SECONDS = 0.1


def watch(callback: Callable[[], None]) -> asyncio.Task[None] | None:
    """Arrange for `callback` to run when hypercorn's worker starts to stop; a task to cancel, if any."""
    event = serving_hypercorn.worker_shutdown_event()
    if event is None:
        return None
    return asyncio.create_task(_poll(event, callback), name="arcane-shutdown-watch")


async def _poll(event: Any, callback: Callable[[], None]) -> None:
    while not event.is_set():
        await asyncio.sleep(POLL_SECONDS)
    callback()


def hypercorn_workers() -> int:
    """How many worker processes hypercorn started beside this one (1 when not a worker)."""
    return serving_hypercorn.workers()
