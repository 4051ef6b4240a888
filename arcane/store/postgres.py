"""The PostgreSQL backend (asyncpg): the games and their logs shared by several hosts.

The commit engine is the same as SQLite's (arcane/store/engine.py): each batch of actions is
one transaction on this process's writer connection, each run of one action inside its
savepoint. What differs is what another host may do meanwhile:

- A game's next seq is taken by `UPDATE games SET last_seq = last_seq + n ... RETURNING`
  inside the transaction (`Writes.log`, `PgWrites.log_many`): the game's row stays locked
  until COMMIT, so a second host writing the same game waits, and seqs are gap-free, in
  commit order, never duplicated.
- Two batches may lock games in opposite orders: PostgreSQL then aborts one with a deadlock
  (or, rarely, a serialization failure); that batch is rolled back whole and run again.
- Unreachable, or restarted: the batch fails with SERVICE_UNAVAILABLE (HTTP 503, the same code
  on sockets) and nothing of it is committed or acknowledged; the next action connects again.

Statements are written once, with `?` placeholders, and numbered here (`$1`, `$2`...).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import asyncpg

from arcane import jsoncodec, stats
from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event, audiences
from arcane.store.engine import Job, Store, _snapshot_owner, runs_of
from arcane.store.schema import POSTGRES_MIGRATIONS
from arcane.store.writes import Entry, Writes, _numbered

log = logging.getLogger(__name__)

# A batch that met another host's locks the other way round is run again, this many times.
RETRIES = 5
CONNECT_TIMEOUT = 5.0
# The migrations of several hosts starting together take turns under this advisory lock.
MIGRATION_LOCK = 0x41524341  # "ARCA"
_snapshot_conn: ContextVar[Any] = ContextVar("arcane_pg_snapshot", default=None)
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_UNREACHABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError)


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1`, `$2`... (no statement here has a `?` in a literal)."""
    count = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(count)}", sql)


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def unavailable(exc: BaseException) -> ArcaneError:
    return ArcaneError(ErrorCode.SERVICE_UNAVAILABLE, "the game database cannot be reached; try again shortly")


class PgWrites(Writes):
    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection, retention: int) -> None:
        super().__init__(retention)
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _rowcount(await self._conn.execute(numbered(sql), *params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._conn.fetchrow(numbered(sql), *params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._conn.fetch(numbered(sql), *params))

    def must_retry(self, exc: BaseException) -> bool:
        return isinstance(exc, (*_RETRYABLE, *_UNREACHABLE))

    async def log_many(self, entries: Sequence[Entry], bounds: Mapping[str, tuple[int, int]] | None = None) -> list[Event]:
        """As SQLite's, but the seqs are taken here, under each game's row lock, whatever
        `bounds` says: another host may have logged to the same game since it was read."""
        if not entries:
            return []
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry[0]] = counts.get(entry[0], 0) + 1
        codes = sorted(counts)  # every batch locks games in one order: fewer deadlocks
        rows = await self._conn.fetch(
            "UPDATE games g SET last_seq = g.last_seq + u.n FROM unnest($1::text[], $2::bigint[]) AS u(code, n)"
            " WHERE g.code = u.code RETURNING g.code, g.last_seq, g.log_floor",
            codes, [counts[code] for code in codes])
        taken = {row["code"]: (row["last_seq"] - counts[row["code"]], row["log_floor"]) for row in rows}
        events, numbered_rows, last = _numbered(entries, taken)
        await self._conn.execute(
            "INSERT INTO events (game_code, seq, event, audience, payload, created_at)"
            " SELECT u.code, u.seq, u.event, u.audience, u.payload, $6"
            " FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[])"
            " AS u(code, seq, event, audience, payload)",
            [r[0] for r in numbered_rows], [r[1] for r in numbered_rows], [r[2] for r in numbered_rows],
            [r[3] for r in numbered_rows], [r[4] for r in numbered_rows], events[0].timestamp)
        for code, seq in last.items():
            self._logged(code, seq, taken[code][1])
        self.events.extend(events)
        return events


class PostgresStore(Store):
    dialect = "postgresql"

    def __init__(self, url: str, *, retention: int = 10_000,
                 on_commit: Callable[[list[Event]], None] = lambda events: None, readers: int = 8) -> None:
        super().__init__(retention=retention, on_commit=on_commit)
        self.url = url
        self._readers = readers
        self._pool: asyncpg.Pool | None = None
        self._writer: asyncpg.Connection | None = None
        self._opened = False
        self._away = False

    @property
    def is_open(self) -> bool:
        return self._opened

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self._readers, timeout=CONNECT_TIMEOUT)
        try:
            async with self._pool.acquire() as conn:
                await _migrate(conn)
        except BaseException:
            await self._pool.close()
            self._pool = None
            raise
        self._opened = True

    async def close(self) -> None:
        await self._drain()
        self._opened = False
        if self._writer is not None:
            await self._writer.close(timeout=CONNECT_TIMEOUT)
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _writer_conn(self) -> asyncpg.Connection:
        if self._writer is None or self._writer.is_closed():
            self._writer = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT)
        return self._writer

    async def _commit(self, jobs: list[Job]) -> tuple[list[Any], list[Event]]:
        for attempt in range(RETRIES):
            try:
                done = await self._commit_once(await self._writer_conn(), jobs)
                if self._away:  # back after being unreachable (/metrics)
                    self._away = False
                    stats.reconnects["postgresql"] += 1
                    log.warning("PostgreSQL is back")
                return done
            except _RETRYABLE as exc:
                log.info("a batch met another host's locks (%s); running it again", type(exc).__name__)
                await asyncio.sleep(0.005 * (attempt + 1))
            except _UNREACHABLE as exc:
                writer, self._writer = self._writer, None
                if writer is not None:
                    writer.terminate()
                log.warning("PostgreSQL unreachable: %s", exc)
                self._away = True
                raise unavailable(exc) from exc
        raise ArcaneError(ErrorCode.SERVICE_UNAVAILABLE, "the game database is too busy; try again shortly")

    async def _commit_once(self, conn: asyncpg.Connection, jobs: list[Job]) -> tuple[list[Any], list[Event]]:
        results: list[Any] = []
        events: list[Event] = []
        async with conn.transaction():
            for action, start, end in runs_of(jobs):
                writes = PgWrites(conn, self.retention)
                savepoint = conn.transaction()
                await savepoint.start()
                try:
                    outcome = action(writes, [job.item for job in jobs[start:end]])
                    answered: list[Any] = await outcome if isinstance(outcome, Coroutine) else outcome
                    assert len(answered) == end - start, f"{action.__name__}: {len(answered)} answers"
                    await writes.prune()
                except Exception as exc:
                    if writes.must_retry(exc):
                        raise
                    await savepoint.rollback()
                    results.extend(exc for _ in range(start, end))
                else:
                    await savepoint.commit()
                    results.extend(answered)
                    events.extend(writes.events)
        return results, events

    @asynccontextmanager
    async def copying(self) -> AsyncIterator[Callable[[str, Sequence[str], list[tuple[Any, ...]]], Coroutine[Any, Any, None]]]:
        """Rows copied in bulk (COPY), all in one transaction: all of them, or none
        (`python -m arcane migrate-db`)."""
        if self._pool is None:
            raise RuntimeError("store is not open")
        async with self._pool.acquire() as conn, conn.transaction():
            async def copy(table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
                await conn.copy_records_to_table(table, records=rows, columns=list(columns))

            yield copy

    # -- reads ------------------------------------------------------------------------------

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PostgresStore]:
        if _snapshot_owner.get() is self:
            yield self
            return
        pool = self._pool
        if pool is None:
            raise RuntimeError("store is not open")
        try:
            conn = await pool.acquire(timeout=CONNECT_TIMEOUT)
        except _UNREACHABLE as exc:
            raise unavailable(exc) from exc
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                owner, held = _snapshot_owner.set(self), _snapshot_conn.set(conn)
                try:
                    yield self
                finally:
                    _snapshot_owner.reset(owner)
                    _snapshot_conn.reset(held)
        finally:
            await pool.release(conn)

    async def _read(self, method: str, sql: str, params: Sequence[Any]) -> Any:
        held = _snapshot_conn.get() if _snapshot_owner.get() is self else None
        try:
            if held is not None:
                return await getattr(held, method)(numbered(sql), *params)
            if self._pool is None:
                raise RuntimeError("store is not open")
            return await getattr(self._pool, method)(numbered(sql), *params)
        except _UNREACHABLE as exc:
            raise unavailable(exc) from exc

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return await self._read("fetchrow", sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._read("fetch", sql, params))

    async def log_since(self, game_code: str, after: int, viewer: str | None, *,
                        upto: int | None = None) -> tuple[int, int, list[Event] | None] | None:
        async with self.snapshot():
            row = await self.fetchone("SELECT log_floor, last_seq FROM games WHERE code = ?", (game_code,))
            if row is None:
                return None
            floor, last = int(row[0]), int(row[1])
            if not floor <= after:
                return floor, last, None
            target = last if upto is None else min(upto, last)
            rows = await self.fetchall(
                "SELECT seq, event, audience, payload, created_at FROM events WHERE game_code = ? AND seq > ?"
                " AND seq <= ? AND audience = ANY(?::text[]) ORDER BY seq",
                (game_code, after, target, list(audiences(viewer))))
        return floor, last, [Event(game_code, r[1], jsoncodec.loads(r[3]), r[2], r[0], r[4]) for r in rows]


async def _migrate(conn: asyncpg.Connection) -> None:
    """The schema brought up to date, one host at a time: `schema_version` counts the
    migrations applied, each in its own transaction with its count."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
        for number, script in enumerate(POSTGRES_MIGRATIONS[version:], start=version + 1):
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
