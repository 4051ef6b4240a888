"""The store's one commit engine, whatever the database behind it.

Every write is an action run by `Store.run`: the actions queued while the writer is busy go
to the database together and share one transaction and its COMMIT (one fsync, one trip),
each run of one action inside its savepoint (arcane/store/writes.py). Each caller is
answered only after that COMMIT, and the committed events are handed to `on_commit` (the
bus) in seq order. This is the only way anything is written. A backend
(arcane/store/sqlite.py, arcane/store/postgres.py) says how a batch commits (`_commit`) and
how the store is read.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Generic, NamedTuple, TypeVar

from arcane import stats
from arcane.events import Event
from arcane.store.writes import Action

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
# The store whose snapshot the current task is inside, if any.
_snapshot_owner: ContextVar[Store | None] = ContextVar("arcane_store_snapshot", default=None)


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


class Job(NamedTuple):
    """One item of an action, queued for the writer's thread (`Store.run`)."""

    action: Action
    item: Any
    future: asyncio.Future[Any]


def runs_of(jobs: list[Job]) -> Iterator[tuple[Action, int, int]]:
    """The batch as runs of one action: (the action, where its run starts, where it ends).
    Each run is one call of the action, in one savepoint."""
    start = 0
    while start < len(jobs):
        action = jobs[start].action
        end = start
        while end < len(jobs) and jobs[end].action is action:
            end += 1
        yield action, start, end
        start = end


class Store(abc.ABC):
    """The games' store: one writer with group commit, and reads."""

    dialect: str  # "sqlite" or "postgresql": the repository picks a statement by it

    def __init__(self, *, retention: int = 10_000,
                 on_commit: Callable[[list[Event]], None] = lambda events: None) -> None:
        self.retention = retention
        self.on_commit = on_commit
        self._queued: list[Job] = []
        self._runner: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def open(self) -> None:
        """Connects, and brings the schema up to date (each backend's migrations)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Lets go of the database once every action already queued is committed (`_drain`)."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool: ...

    @abc.abstractmethod
    async def _commit(self, jobs: list[Job]) -> tuple[list[Any], list[Event]]:
        """The jobs in one transaction, each run of one action in its savepoint: a result (or
        the exception it was refused with) per job, and the events logged, once committed."""

    @abc.abstractmethod
    def snapshot(self) -> Any:
        """An async context: the reads of the task inside it see one consistent state."""

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    @abc.abstractmethod
    async def log_since(self, game_code: str, after: int, viewer: str | None, *,
                        upto: int | None = None) -> tuple[int, int, list[Event] | None] | None:
        """In one consistent read: (floor, last_seq, the events `viewer` may see with
        after < seq <= min(upto, last_seq)); the events are None when the log no longer
        reaches back to `after`, and the whole answer None when there is no such game."""

    async def _drain(self) -> None:
        while self._runner is not None:
            await asyncio.wait({self._runner})

    async def run(self, action: Action, item: Any) -> Any:
        """One item of an action, run by the writer: `action(writes, items)`.

        Items queued while the writer is busy go to the thread together, and `action`
        handles all of its items in one call, answering one result per item, in order: a
        value, or an exception for an item it refused without writing anything for it
        (`each` makes such an action of a one-item one, a savepoint per item). They share
        one transaction and its COMMIT: one fsync and one handoff for all. Each returns
        only after that COMMIT; events are published in seq order. If `action` itself
        raises, its whole call rolls back and every item gets the error.
        """
        if not self.is_open:
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
                await _uninterrupted(self._run_trips())
        finally:
            self._runner = None
            for job in self._queued:  # only if the runner itself was cancelled
                if not job.future.done():
                    job.future.set_exception(RuntimeError("store closed"))
            self._queued = []

    async def _run_trips(self) -> None:
        """Trips to the writer's thread for the queued jobs, one after another.

        The next trip goes to the thread before the last one's events are published and its
        callers answered: SQLite commits one batch while the event loop fans out the one
        before. Events are still published in seq order, each batch only after its COMMIT.
        """
        trip = self._start_trip()
        while trip is not None:
            jobs, outcome, started = trip
            try:
                results, events = await outcome
                stats.commit_seconds.observe(time.perf_counter() - started)
                stats.batch_size.observe(len(jobs))
            except BaseException as exc:
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                if isinstance(exc, Exception):
                    return
                raise
            trip = self._start_trip() if self._queued else None
            if trip is not None:
                await asyncio.sleep(0)  # the next trip's first step hands its jobs to the thread
            # The callers' results first; they run only after this step, which publishes.
            for job, result in zip(jobs, results):
                if not job.future.done():
                    job.future.set_result(result)
            if events:
                self.on_commit(events)

    def _start_trip(self) -> tuple[list[Job], asyncio.Task[tuple[list[Any], list[Event]]], float] | None:
        """Up to MAX_BATCH queued jobs, not cancelled, on their way to the writer's thread."""
        jobs, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
        jobs = [job for job in jobs if not job.future.done()]
        if not jobs or not self.is_open:
            for job in jobs:
                job.future.set_exception(RuntimeError("store is not open"))
            return None
        return jobs, asyncio.ensure_future(self._commit(jobs)), time.perf_counter()


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
