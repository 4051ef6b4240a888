"""aiosqlite 0.22's private connection thread: one trip for several statements.

aiosqlite runs every statement on its connection's own thread, one trip (a thread
handoff, and under load a wait for the GIL) per call. `in_thread` runs a whole function
on that thread in one trip, with the `sqlite3` connection it owns, through aiosqlite's
own `_execute` (which every public method uses) and `_conn`: aiosqlite has no public
way to do so. Not a fast path: the store's statements are written as such functions
(arcane/store.py), so it is needed; `check()` warns when aiosqlite is untested or
lacks them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

from arcane.serving.fastpaths import NEEDED, version_problem

T = TypeVar("T")


async def in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(sqlite3_connection, *args)` in one trip to the connection's thread."""
    db: sqlite3.Connection = conn._conn
    result: T = await conn._execute(fn, db, *args)  # type: ignore[no-untyped-call]  # aiosqlite leaves it untyped
    return result


def check() -> None:
    """Note (for the startup warning) an aiosqlite whose thread we have not read."""
    problem = version_problem("aiosqlite")
    missing = [name for name in ("_execute", "_conn") if not hasattr(aiosqlite.Connection, name)]
    if missing:
        problem = "; ".join(filter(None, [problem, f"aiosqlite.Connection has no {', '.join(missing)}"]))
    if problem:
        NEEDED["aiosqlite_thread"] = problem
    else:
        NEEDED.pop("aiosqlite_thread", None)
