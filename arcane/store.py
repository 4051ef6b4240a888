"""SQLite persistence: schema migrations, one serialised writer, readers, the event log.

Every write runs in `Store.transaction()`: state changes and the events they log
commit together, and the committed events are handed to `on_commit` (the bus)
while the writer lock is still held, so they are published in seq order.
"""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import logging
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, Generic, NamedTuple, TypeVar

import aiosqlite

from arcane import jsoncodec
from arcane.events import ROOM, Event, player_audience
from arcane.serving import aiosqlite as serving_aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Row = aiosqlite.Row
# The store whose snapshot the current task is inside, if any.
_snapshot_owner: ContextVar[Store | None] = ContextVar("arcane_store_snapshot", default=None)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE games (
        code TEXT PRIMARY KEY,
        phase TEXT NOT NULL,
        max_players INTEGER NOT NULL,
        turn_number INTEGER NOT NULL DEFAULT 0,
        party_trust INTEGER NOT NULL,
        npcs TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        log_floor INTEGER NOT NULL DEFAULT 0,
        finished_reason TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE players (
        game_code TEXT NOT NULL,
        player_id TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        is_host INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL,
        player_class TEXT,
        divine_favor TEXT,
        questions TEXT,
        joined_at REAL NOT NULL,
        PRIMARY KEY (game_code, player_id)
    ) WITHOUT ROWID;
    CREATE TABLE interrogation_answers (
        game_code TEXT NOT NULL,
        player_id TEXT NOT NULL,
        question_id TEXT NOT NULL,
        answer_id TEXT NOT NULL,
        answered_at REAL NOT NULL,
        PRIMARY KEY (game_code, player_id, question_id)
    ) WITHOUT ROWID;
    CREATE TABLE scenarios (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        scenario_id TEXT NOT NULL,
        theme TEXT NOT NULL,
        title TEXT NOT NULL,
        public_scene TEXT NOT NULL,
        options TEXT NOT NULL,
        whispers TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (game_code, turn_number)
    ) WITHOUT ROWID;
    CREATE TABLE choices (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        player_id TEXT NOT NULL,
        option_id TEXT,
        text TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (game_code, turn_number, player_id)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        game_code TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        audience TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (game_code, seq)
    ) WITHOUT ROWID;
    """,
    # The log in the order it is appended, found by game through an index. Keyed by
    # (game_code, seq) itself, a commit of chats from 250 games rewrote 250 of the table's
    # pages, one per game; appended, their rows share a few pages, and only the index's
    # small entries are spread out. A batch's INSERT and COMMIT cost about half the CPU.
    """
    CREATE TABLE events_appended (
        id INTEGER PRIMARY KEY,
        game_code TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        audience TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    INSERT INTO events_appended (game_code, seq, event, audience, payload, created_at)
        SELECT game_code, seq, event, audience, payload, created_at FROM events ORDER BY game_code, seq;
    DROP TABLE events;
    ALTER TABLE events_appended RENAME TO events;
    CREATE UNIQUE INDEX events_by_game ON events (game_code, seq);
    """,
    # When each seat was last used (by its token or its cookie): its credentials expire
    # ARCANE_TOKEN_TTL after that (GameService.authenticate). Seats from before start now,
    # rather than all expiring at the upgrade.
    """
    ALTER TABLE players ADD COLUMN seen_at REAL NOT NULL DEFAULT 0;
    UPDATE players SET seen_at = CAST(strftime('%s', 'now') AS REAL);
    """,
)


async def _uninterrupted(awaitable: Awaitable[T]) -> T:
    """Run to completion even if the caller is cancelled; re-raise the cancellation after."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


MAX_BATCH = 256  # actions per group commit, so one fsync never waits on too many


class _Batch:
    """Actions sharing one BEGIN ... COMMIT; `committed` resolves when it is on disk (or failed)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.members = 0
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(self, error: BaseException | None) -> None:
        if self.committed.done():
            return
        if error is None:
            self.committed.set_result(None)
        else:
            self.committed.set_exception(error)
            self.committed.exception()  # retrieved here too: a batch of one has no other reader


async def _in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(sqlite3_connection, *args)` in one trip to the connection's thread.

    Each trip costs a thread handoff, and under load the busy event loop makes the
    thread wait for the GIL: an action's statements go together where they can.
    """
    return await serving_aiosqlite.in_thread(conn, fn, *args)


def _log_since(db: sqlite3.Connection, game_code: str, after: int, own: str,
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
            " AND seq <= ? AND audience IN (?, ?) ORDER BY seq",
            (game_code, after, target, ROOM, own)).fetchall()
        return floor, last, [tuple(r) for r in rows]
    finally:
        if begun:
            db.execute("COMMIT")


def _rowcount(db: sqlite3.Connection, sql: str, params: Sequence[Any]) -> int:
    return db.execute(sql, params).rowcount


def _open_action(db: sqlite3.Connection, begin: bool) -> None:
    if begin:
        db.execute("BEGIN IMMEDIATE")
    db.execute("SAVEPOINT action")


def _undo_action(db: sqlite3.Connection) -> None:
    db.execute("ROLLBACK TO action")
    db.execute("RELEASE action")


def _release_action(db: sqlite3.Connection, commit: bool) -> None:
    db.execute("RELEASE action")
    if commit:
        try:
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def _append(db: sqlite3.Connection, game_code: str, name: str, audience: str, payload: str,
            now: float) -> tuple[int, int]:
    row = db.execute("UPDATE games SET last_seq = last_seq + 1 WHERE code = ? RETURNING last_seq, log_floor",
                     (game_code,)).fetchone()
    assert row is not None, f"log() for unknown game {game_code}"
    db.execute("INSERT INTO events (game_code, seq, event, audience, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
               (game_code, row[0], name, audience, payload, now))
    return int(row[0]), int(row[1])


def _prune(db: sqlite3.Connection, game_code: str, new_floor: int) -> None:
    """Drop a game's events up to `new_floor`, which becomes its log floor (retention)."""
    db.execute("DELETE FROM events WHERE game_code = ? AND seq <= ?", (game_code, new_floor))
    db.execute("UPDATE games SET log_floor = ? WHERE code = ?", (new_floor, game_code))


class Writes:
    """The writer connection on its own thread, inside a transaction (`Store.run`).

    Every statement lets go of the GIL while SQLite works and takes it back after, and
    under load each taking-back waits on the event loop: a batch should cost a handful
    of statements, not a handful per action. Hence `log_many`.
    """

    def __init__(self, db: sqlite3.Connection, retention: int) -> None:
        self._db = db
        self._retention = retention
        self.events: list[Event] = []

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return self._db.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def log_many(self, entries: Sequence[tuple[str, str, dict[str, Any], str, int | None]],
                 bounds: Mapping[str, tuple[int, int]] | None = None) -> list[Event]:
        """Append (game_code, name, payload, audience, cause) entries to their games' logs, in
        order, in three statements however many there are; prunes past retention as `log` does.

        `bounds` may give each game's (last_seq, log_floor) as read in this transaction, by a
        statement the caller makes anyway: one statement fewer."""
        if not entries:
            return []
        games = {entry[0] for entry in entries}
        if bounds is None:
            row = self._db.execute(
                "SELECT json_group_array(json_array(code, last_seq, log_floor)) FROM games"
                " WHERE code IN (SELECT value FROM json_each(?))", (jsoncodec.dumps(sorted(games)),)).fetchone()
            bounds = {code: (last, floor) for code, last, floor in jsoncodec.loads(row[0])}
        missing = games - bounds.keys()
        assert not missing, f"log_many() for unknown games {missing}"
        now = time.time()
        last = {code: seq for code, (seq, _) in bounds.items()}
        events, rows = [], []
        for game_code, name, payload, audience, cause in entries:
            last[game_code] += 1
            event = Event(game_code, name, payload, audience, last[game_code], now, cause=cause)
            events.append(event)
            rows.append((game_code, event.seq, name, audience, jsoncodec.dumps(payload)))
        self._db.execute(
            "INSERT INTO events (game_code, seq, event, audience, payload, created_at)"
            " SELECT value->>0, value->>1, value->>2, value->>3, value->>4, ?1 FROM json_each(?2)",
            (now, jsoncodec.dumps(rows)))
        self._db.execute(
            "UPDATE games SET last_seq = j.value->>1 FROM json_each(?) AS j WHERE games.code = j.value->>0",
            (jsoncodec.dumps(list(last.items())),))
        for code, seq in last.items():
            new_floor = seq - self._retention
            if new_floor > bounds[code][1]:
                _prune(self._db, code, new_floor)
        self.events.extend(events)
        return events


class Job(NamedTuple):
    """One item of a batched action, queued for the writer's thread (`Store.run`)."""

    action: Callable[..., list[Any]]
    item: Any
    future: asyncio.Future[Any]


def _run_batches(db: sqlite3.Connection, jobs: list[Job], begin: bool,
                 retention: int) -> tuple[list[Any], list[Event]]:
    """Each run of jobs for the same action as one call inside one SAVEPOINT, then one COMMIT:
    a single trip to the thread. Returns a result (or exception) per job, and the events."""
    if begin:
        db.execute("BEGIN IMMEDIATE")
    results: list[Any] = []
    events: list[Event] = []
    try:
        start = 0
        while start < len(jobs):
            action = jobs[start].action
            end = start
            while end < len(jobs) and jobs[end].action is action:
                end += 1
            db.execute("SAVEPOINT action")
            writes = Writes(db, retention)
            try:
                answered = action(writes, [job.item for job in jobs[start:end]])
                assert len(answered) == end - start, f"{action.__name__}: {len(answered)} answers, {end - start} items"
            except Exception as exc:
                _undo_action(db)
                results.extend(exc for _ in range(start, end))
            else:
                db.execute("RELEASE action")
                results.extend(answered)
                events.extend(writes.events)
            start = end
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return results, events


class Transaction:
    """The writer connection inside BEGIN IMMEDIATE, collecting the events it logs."""

    def __init__(self, conn: aiosqlite.Connection, retention: int) -> None:
        self._conn = conn
        self._retention = retention
        self._floors: dict[str, tuple[int, int]] = {}
        self.events: list[Event] = []

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await _in_thread(self._conn, _rowcount, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        # One trip to the thread (a cursor's execute, fetch and close would be three);
        # fetchone is for queries by key, so "all rows" is at most one.
        rows = await self._conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def log(
        self, game_code: str, name: str, payload: dict[str, Any], *, to_player: str | None = None
    ) -> Event:
        """Append an event to the game's log; its seq is assigned here, in this transaction."""
        audience = ROOM if to_player is None else player_audience(to_player)
        now = time.time()
        seq, floor = await _in_thread(self._conn, _append, game_code, name, audience, jsoncodec.dumps(payload), now)
        self._floors[game_code] = (seq, floor)
        event = Event(game_code, name, payload, audience, seq, now)
        self.events.append(event)
        return event

    async def _prune(self) -> None:
        for game_code, (last_seq, floor) in self._floors.items():
            new_floor = last_seq - self._retention
            if new_floor > floor:
                await _in_thread(self._conn, _prune, game_code, new_floor)


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


class Store:
    def __init__(
        self,
        path: Path | str,
        *,
        retention: int = 10_000,
        synchronous: str = "FULL",
        on_commit: Callable[[list[Event]], None] = lambda events: None,
    ) -> None:
        self.path = Path(path)
        self.retention = retention
        self._synchronous = synchronous
        self.on_commit = on_commit
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._waiting = 0
        self._batch: _Batch | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._queued: list[Job] = []
        self._runner: asyncio.Task[None] | None = None

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
        async with self._holding_writer():
            if self._batch is not None and self._writer is not None:
                await _uninterrupted(self._end_batch(self._writer, self._batch))
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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One action's writes and events, all or nothing; ends only once they are committed.

        Group commit: actions run one at a time, each inside its own SAVEPOINT of a shared
        BEGIN IMMEDIATE. The action that finds nobody waiting behind it commits the batch
        (one fsync for all) and publishes their events in seq order; every action of the
        batch returns only after that COMMIT. A failing action rolls back to its savepoint
        and takes nothing of the others with it.
        """
        conn = self._writer
        if conn is None:
            raise RuntimeError("store is not open")
        await self._acquire_writer()
        batch: _Batch | None = None
        joined = False
        try:
            # BEGIN (for a new batch) and the action's SAVEPOINT, in one trip to the writer's
            # thread, run to the end even if the caller is cancelled meanwhile; the batch it
            # opens is ended below, so the writer is never left in a transaction for nobody.
            try:
                await _uninterrupted(_in_thread(conn, _open_action, self._batch is None))
            finally:
                if self._batch is None and conn.in_transaction:
                    self._batch = _Batch()
            batch = self._batch
            assert batch is not None
            tx = Transaction(conn, self.retention)
            try:
                yield tx
                await tx._prune()
            except BaseException:
                await _uninterrupted(_in_thread(conn, _undo_action))
                raise
            batch.events.extend(tx.events)
            batch.members += 1
            joined = True
            await _uninterrupted(self._finish_action(conn, batch))
        finally:
            try:
                open_batch = self._batch
                if open_batch is not None and (self._waiting == 0 or open_batch.members >= MAX_BATCH):
                    await _uninterrupted(self._end_batch(conn, open_batch))
            finally:
                self._lock.release()
        if joined:
            assert batch is not None
            await _uninterrupted(batch.committed)

    async def run(self, action: Callable[[Writes, list[Any]], list[Any]], item: Any) -> Any:
        """One item of a batched action, run on the writer's thread: `action(writes, items)`.

        For the hot, simple actions (chat). Items queued while the writer is busy go to
        the thread together, and `action` handles all of its items in one call, answering
        one result per item, in order: a value, or an exception for an item it refused
        without writing anything for it. They share one transaction (joining a batch of
        `transaction()` actions if one is open) and its COMMIT: one fsync and one handoff
        for all. Each returns only after that COMMIT; events are published in seq order.
        If `action` itself raises, its whole call rolls back and every item gets the error.
        """
        if self._writer is None:
            raise RuntimeError("store is not open")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append(Job(action, item, future))
        if self._runner is None:
            self._runner = asyncio.ensure_future(self._run_queued())
        # A caller cancelled before its trip begins is dropped from it; once begun, its item
        # commits with the others, though nobody is left to acknowledge it to.
        result = await future
        if isinstance(result, Exception):
            raise result
        return result

    async def _run_queued(self) -> None:
        try:
            while self._queued:
                async with self._holding_writer():
                    await _uninterrupted(self._run_trips())
        finally:
            self._runner = None
            for job in self._queued:  # only if the runner itself was cancelled
                if not job.future.done():
                    job.future.set_exception(RuntimeError("store closed"))
            self._queued = []

    async def _run_trips(self) -> None:
        """Trips to the writer's thread for the queued jobs, while nobody else waits for it.

        The next trip goes to the thread before the last one's events are published and its
        callers answered: SQLite commits one batch while the event loop fans out the one
        before. Events are still published in seq order, each batch only after its COMMIT.
        """
        trip = self._start_trip()
        while trip is not None:
            jobs, batch, outcome = trip
            try:
                results, events = await outcome
            except BaseException as exc:
                batch.done(exc)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                if isinstance(exc, Exception):
                    return
                raise
            batch.done(None)
            trip = self._start_trip() if self._queued and self._waiting == 0 else None
            if trip is not None:
                await asyncio.sleep(0)  # the next trip's first step hands its jobs to the thread
            # The callers' results first; they run only after this step, which publishes.
            for job, result in zip(jobs, results):
                if not job.future.done():
                    job.future.set_result(result)
            if batch.events or events:
                self.on_commit(batch.events + events)

    def _start_trip(self) -> tuple[list[Job], _Batch, asyncio.Task[tuple[list[Any], list[Event]]]] | None:
        """Up to MAX_BATCH queued jobs, not cancelled, on their way to the writer's thread."""
        jobs, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
        jobs = [job for job in jobs if not job.future.done()]
        conn = self._writer
        if not jobs or conn is None:
            for job in jobs:
                job.future.set_exception(RuntimeError("store is not open"))
            return None
        batch = self._batch or _Batch()
        self._batch = None
        outcome = asyncio.ensure_future(
            _in_thread(conn, _run_batches, jobs, not conn.in_transaction, self.retention))
        return jobs, batch, outcome

    @asynccontextmanager
    async def _holding_writer(self) -> AsyncIterator[None]:
        """The writer lock, for the whole block. Whoever waits for it is counted (`_acquire_writer`):
        a batch is left open for them, and a chain of chat trips ends to let them in."""
        await self._acquire_writer()
        try:
            yield
        finally:
            self._lock.release()

    async def _acquire_writer(self) -> None:
        """The writer lock, counted in `_waiting` meanwhile: an open batch is left open for us."""
        self._waiting += 1
        try:
            await self._lock.acquire()
        except BaseException:
            self._waiting -= 1
            self._flush_if_abandoned()
            raise
        self._waiting -= 1

    async def _finish_action(self, conn: aiosqlite.Connection, batch: _Batch) -> None:
        """RELEASE the action's savepoint, and COMMIT when nobody waits to join: one trip."""
        last = self._waiting == 0 or batch.members >= MAX_BATCH
        try:
            await _in_thread(conn, _release_action, last)
        except BaseException as exc:
            if last:
                self._batch = None
                batch.done(exc)
            raise
        if last:
            self._batch = None
            batch.done(None)
            if batch.events:
                self.on_commit(batch.events)

    async def _end_batch(self, conn: aiosqlite.Connection, batch: _Batch) -> None:
        if batch.committed.done():
            return
        self._batch = None
        if batch.members == 0:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            batch.done(None)
            return
        try:
            await conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            batch.done(exc)
            raise
        batch.done(None)
        if batch.events:
            self.on_commit(batch.events)

    def _flush_if_abandoned(self) -> None:
        """A waiter gave up: if it was the one an open batch was left for, commit it now."""
        if self._batch is not None and self._waiting == 0 and not self._lock.locked():
            task = asyncio.ensure_future(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _flush(self) -> None:
        async with self._holding_writer():
            batch, conn = self._batch, self._writer
            if batch is not None and conn is not None:
                await _uninterrupted(self._end_batch(conn, batch))

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
        own = ROOM if viewer is None else player_audience(viewer)
        async with self._reading() as reader:
            found = await _in_thread(reader, _log_since, game_code, after, own, upto)
        if found is None:
            return None
        floor, last, rows = found
        events = None if rows is None else [
            Event(game_code, name, jsoncodec.loads(payload), audience, seq, created_at)
            for seq, name, audience, payload, created_at in rows
        ]
        return floor, last, events


class KeyedReads(Generic[K, V]):
    """Reads by key that arrive together share one trip to the reader.

    The store reads one statement at a time (its reader is one connection, and a
    snapshot must not see others' statements), so under a crowd of requests that each
    read one row by key (every poll and stream resolves its caller's seat) each would
    wait for all those before it. Instead the keys asked for while a read is under way
    are read together by the next one: `read(store, keys)` answers {key: value} for the
    keys it finds. A read begins after the request that asks for it, so it sees every
    write committed before the request, as a read of its own would.
    """

    def __init__(self, store: Store, read: Callable[[Store, list[K]], Awaitable[dict[K, V]]]) -> None:
        self._store = store
        self._read = read
        self._asked: dict[K, list[asyncio.Future[V | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(self, key: K) -> V | None:
        if _snapshot_owner.get() is self._store:
            # Inside this task's snapshot: read in it (another task would wait for its end).
            return (await self._read(self._store, [key])).get(key)
        answer: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._asked.setdefault(key, []).append(answer)
        if self._reading is None:
            # A context of its own: the trip serves every asker, and belongs to none of them.
            self._reading = asyncio.create_task(self._read_all(), context=contextvars.Context())
        return await answer

    async def _read_all(self) -> None:
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._asked:
                batch, self._asked = self._asked, {}
                failure: Exception | None = None
                try:
                    found = await self._read(self._store, list(batch))
                except Exception as exc:
                    found, failure = {}, exc
                for key, answers in batch.items():
                    for answer in answers:
                        if answer.done():  # its asker was cancelled
                            continue
                        if failure is None:
                            answer.set_result(found.get(key))
                        else:
                            answer.set_exception(failure)
                batch = {}
        finally:
            self._reading = None
            # Cancelled (the server is stopping): nobody is left waiting for an answer.
            for answers in (*batch.values(), *self._asked.values()):
                for answer in answers:
                    answer.cancel()
            self._asked = {}
