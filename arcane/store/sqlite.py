"""The SQLite backend, the embedded default: one file (and its -wal and -shm), one writer
connection on its own thread that runs each batch of actions in one trip, one reader."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import aiosqlite

from arcane import jsoncodec
from arcane.events import Event, audiences
from arcane.serving import aiosqlite as serving_aiosqlite
from arcane.store.engine import Job, Store, _snapshot_owner, _uninterrupted, runs_of
from arcane.store.schema import MIGRATIONS
from arcane.store.writes import SqliteWrites, drive

T = TypeVar("T")
Row = aiosqlite.Row


async def _in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(sqlite3_connection, *args)` in one trip to the connection's thread.

    Each trip costs a thread handoff, and under load the busy event loop makes the
    thread wait for the GIL: an action's statements go together where they can.
    """
    return await serving_aiosqlite.in_thread(conn, fn, *args)


def _run_batches(db: sqlite3.Connection, jobs: list[Job], retention: int) -> tuple[list[Any], list[Event]]:
    """Each run of jobs for the same action as one call inside one SAVEPOINT, then one COMMIT:
    a single trip to the thread. Returns a result (or exception) per job, and the events."""
    db.execute("BEGIN IMMEDIATE")
    results: list[Any] = []
    events: list[Event] = []
    try:
        for action, start, end in runs_of(jobs):
            db.execute("SAVEPOINT action")
            writes = SqliteWrites(db, retention)
            try:
                outcome = action(writes, [job.item for job in jobs[start:end]])
                answered: list[Any] = drive(outcome) if isinstance(outcome, Coroutine) else outcome
                assert len(answered) == end - start, f"{action.__name__}: {len(answered)} answers, {end - start} items"
                drive(writes.prune())
            except Exception as exc:
                db.execute("ROLLBACK TO action")
                db.execute("RELEASE action")
                results.extend(exc for _ in range(start, end))
            else:
                db.execute("RELEASE action")
                results.extend(answered)
                events.extend(writes.events)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return results, events


def _log_since(db: sqlite3.Connection, game_code: str, after: int, seen: str,
               upto: int | None) -> tuple[int, int, list[tuple[Any, ...]] | None] | None:
    begun = not db.in_transaction  # inside a snapshot, its transaction already holds the view
    if begun:
        db.execute("BEGIN")
    try:
        row = db.execute("SELECT log_floor, last_seq FROM games WHERE code = ?", (game_code,)).fetchone()
        if row is None:
            return None
        floor, last = int(row[0]), int(row[1])
        if not floor <= after:
            return floor, last, None
        target = last if upto is None else min(upto, last)
        rows = db.execute(
            "SELECT seq, event, audience, payload, created_at FROM events WHERE game_code = ? AND seq > ?"
            " AND seq <= ? AND audience IN (SELECT value FROM json_each(?)) ORDER BY seq",
            (game_code, after, target, seen)).fetchall()
        return floor, last, [tuple(r) for r in rows]
    finally:
        if begun:
            db.execute("COMMIT")


BUSY_TIMEOUT_MS = 10_000


async def _switch_to_wal(conn: aiosqlite.Connection) -> None:
    """`PRAGMA journal_mode=WAL`, again while another process holds the lock it needs.

    Processes starting together (`hypercorn -w 2`) each switch: SQLite answers "database
    is locked" at once to all but one of them, without waiting out the busy timeout (it
    would deadlock), so the wait is here.
    """
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.01)


# The database and its companions hold whispers and chat: only the server's user reads them.
PRIVATE_MODE = 0o600
COMPANIONS = ("-wal", "-shm", ".migrate")


def _make_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its -wal and -shm the
    database's own mode), and take read access from others on files an older version made."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in COMPANIONS)):
        try:
            if stat.S_IMODE(file.stat().st_mode) & 0o077:
                file.chmod(PRIVATE_MODE)
        except FileNotFoundError:
            pass


def _lock_file(path: Path) -> IO[bytes]:
    """An exclusive lock between processes on this host, held until the file is closed."""
    handle = os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_MODE), "ab")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


class SqliteStore(Store):
    dialect = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        retention: int = 10_000,
        synchronous: str = "FULL",
        on_commit: Callable[[list[Event]], None] = lambda events: None,
    ) -> None:
        super().__init__(retention=retention, on_commit=on_commit)
        self.path = Path(path)
        self._synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._read_lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _make_private(self.path)
        writer = await self._connect()
        try:
            await self._migrate(writer)
            self._reader = await self._connect()
        except BaseException:
            # Closing rolls back a migration that failed half-way and lets go of the file.
            await writer.close()
            raise
        self._writer = writer

    async def close(self) -> None:
        """Closes the files once every action already queued is committed."""
        await self._drain()
        async with self._read_lock:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._reader = self._writer = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await _switch_to_wal(conn)
        await conn.execute(f"PRAGMA synchronous={self._synchronous}")
        return conn

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        # Server processes starting together take turns: each reads the version only once it
        # holds the lock, so none replays a migration another has just applied.
        lock = await asyncio.to_thread(_lock_file, self.path.with_name(self.path.name + ".migrate"))
        try:
            async with conn.execute("PRAGMA user_version") as cursor:
                row = await cursor.fetchone()
            version = row[0] if row else 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                await conn.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number}; COMMIT;")
        finally:
            lock.close()

    async def _commit(self, jobs: list[Job]) -> tuple[list[Any], list[Event]]:
        assert self._writer is not None, "store is not open"
        return await _in_thread(self._writer, _run_batches, jobs, self.retention)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Store]:
        """Reads inside one read transaction: a consistent view of several tables.

        The store's reads made by the task inside the block join the snapshot; reads of
        other tasks wait for it to end rather than run inside it and see its stale state.
        """
        if _snapshot_owner.get() is self:
            yield self
            return
        async with self._read_lock:
            reader = self._reader
            assert reader is not None, "store is not open"
            token = _snapshot_owner.set(self)
            try:
                await _uninterrupted(reader.execute("BEGIN"))
                yield self
            finally:
                _snapshot_owner.reset(token)
                if reader.in_transaction:
                    await _uninterrupted(reader.execute("COMMIT"))

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[aiosqlite.Connection]:
        if _snapshot_owner.get() is self:
            assert self._reader is not None, "store is not open"
            yield self._reader
            return
        async with self._read_lock:
            assert self._reader is not None, "store is not open"
            yield self._reader

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._reading() as reader:
            rows = await reader.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._reading() as reader:
            return list(await reader.execute_fetchall(sql, params))

    async def log_since(
        self, game_code: str, after: int, viewer: str | None, *, upto: int | None = None
    ) -> tuple[int, int, list[Event] | None] | None:
        """In one consistent read and one trip: (floor, last_seq, the events `viewer` may see
        with after < seq <= min(upto, last_seq)); the events are None when the log no longer
        reaches back to `after`, and the whole answer None when there is no such game."""
        seen = jsoncodec.dumps(audiences(viewer))
        async with self._reading() as reader:
            found = await _in_thread(reader, _log_since, game_code, after, seen, upto)
        if found is None:
            return None
        floor, last, rows = found
        events = None if rows is None else [
            Event(game_code, name, jsoncodec.loads(payload), audience, seq, created_at)
            for seq, name, audience, payload, created_at in rows
        ]
        return floor, last, events


