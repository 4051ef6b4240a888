"""The only code that touches a server library's private names, one module per library.

| module | reaches into |
|---|---|
| `hypercorn.py` | hypercorn's connection objects behind an ASGI `send`, its per-request queue, worker events and keep-alive task, its websocket extensions, its worker's arguments |
| `h11.py` | hypercorn's `H11Protocol.handle` and h11's state: long-polls read beside h11, answers in one write, SSE chunks |
| `wsproto.py` | wsproto's parser state: small websocket messages read beside it |
| `engineio.py` | Engine.IO's websocket driver table, socket queue, writer and read loop, `disconnect` |
| `socketio.py` | python-socketio's private dispatch (`_handle_*`, `_send_packet`) |
| `aiosqlite.py` | aiosqlite's connection thread (`_execute`, `_conn`) |
| `runner.py` | nothing private: `python -m arcane`, hypercorn run through its public `serve()` |

What is a fast path, and how each is turned on or off: `fastpaths.py`. `configure` runs
once per app, from the settings, and logs the one line that says which are on.
"""

from __future__ import annotations

import logging

from arcane.serving import fastpaths
from arcane.serving.fastpaths import NAMES, PATHS, FastPath, counts, status_line

__all__ = ["NAMES", "PATHS", "FastPath", "configure", "counts", "status_line"]

log = logging.getLogger("arcane.serving")


def configure(spec: str, *, compression: bool) -> str:
    """Turn each fast path on or off (`ARCANE_FAST_PATHS`; no_deflate also by
    `ARCANE_WEBSOCKET_COMPRESSION`); logs and answers the startup line, with a WARNING for
    each fast path or needed use that cannot be trusted. The patches are process-wide: the
    last app made in a process decides (a server process makes one)."""
    from arcane.serving import aiosqlite, h11, hypercorn, socketio

    wanted = fastpaths.parse(spec)
    for path in fastpaths.decide(wanted, compression=compression):
        log.warning("fast path %s is off: %s", path.name, path.reason)
    hypercorn.use_slim_queues(fastpaths.on("slim_queues"))
    hypercorn.use_keepalive_timer(fastpaths.on("keepalive_timer"))
    hypercorn.use_no_deflate(fastpaths.on("no_deflate"))
    h11.use_handle(fastpaths.on("poll_lane"), fastpaths.on("websocket_receive"))
    socketio.check()
    aiosqlite.check()
    for use, distribution in (("engineio_disconnect", "python-engineio"), ("hypercorn_worker_arguments", "hypercorn")):
        problem = fastpaths.version_problem(distribution)
        if problem:
            fastpaths.NEEDED[use] = problem
        else:
            fastpaths.NEEDED.pop(use, None)
    for use, problem in fastpaths.NEEDED.items():
        log.warning("%s is still used, with no public alternative, but %s", use, problem)
    line = status_line()
    log.info("%s", line)
    return line
