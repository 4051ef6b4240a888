"""What an action sees of the store: the writer connection, on its own thread, inside the
batch's transaction.

An action is written as `async def action(writes, items) -> results`, or one item at a time
under `each`. `Writes`' methods are coroutines that never suspend: on SQLite each statement
runs at once on the writer's thread, and the engine drives the whole action there in one
step (`drive`), so a batch costs one trip to the thread however many statements it makes.
The actions themselves (arcane/game/actions.py) are plain Python over this interface and
arcane/store/games.py; they import no SQL and no driver.
"""

from __future__ import annotations

import abc
import sqlite3
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar, cast

from arcane import jsoncodec
from arcane.events import ROOM, Event, player_audience

T = TypeVar("T")
R = TypeVar("R")
# (game_code, event name, payload, audience, cause): one entry of `Writes.log_many`.
Entry = tuple[str, str, dict[str, Any], str, "int | None"]
Action = Callable[["Writes", list[Any]], "Coroutine[Any, Any, list[Any]] | list[Any]"]


class Writes(abc.ABC):
    """The writer's connection inside the batch's transaction, and the events its action logs.

    Statements are written with `?` placeholders; `dialect` ("sqlite" or "postgresql") lets
    the repository pick a statement where the two differ."""

    dialect: str

    def __init__(self, retention: int) -> None:
        self._retention = retention
        self._bounds: dict[str, tuple[int, int]] = {}  # game -> (its last seq, its floor when read)
        self.events: list[Event] = []

    @abc.abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs a statement; answers how many rows it changed."""

    @abc.abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    @abc.abstractmethod
    async def log_many(self, entries: Sequence[Entry], bounds: Mapping[str, tuple[int, int]] | None = None) -> list[Event]:
        """Append (game_code, name, payload, audience, cause) entries to their games' logs, in
        order, in a few statements however many there are. `bounds` may give each game's
        (last_seq, log_floor) as read in this transaction: one statement fewer."""

    async def log(self, game_code: str, name: str, payload: dict[str, Any], *,
                  to_player: str | None = None) -> Event:
        """Append an event to the game's log. Its seq is assigned here, in this transaction,
        by the UPDATE of the game's row, which holds that row until COMMIT: another writer of
        the same game waits, so seqs are gap-free and in commit order."""
        audience = ROOM if to_player is None else player_audience(to_player)
        now = time.time()
        row = await self.fetchone("UPDATE games SET last_seq = last_seq + 1 WHERE code = ? RETURNING last_seq, log_floor",
                                  (game_code,))
        assert row is not None, f"log() for unknown game {game_code}"
        seq, floor = int(row[0]), int(row[1])
        await self.execute("INSERT INTO events (game_code, seq, event, audience, payload, created_at)"
                           " VALUES (?, ?, ?, ?, ?, ?)", (game_code, seq, name, audience, jsoncodec.dumps(payload), now))
        self._logged(game_code, seq, floor)
        event = Event(game_code, name, payload, audience, seq, now)
        self.events.append(event)
        return event

    def must_retry(self, exc: BaseException) -> bool:
        """Whether `exc` fails the whole batch, to be run again (another host's locks, a lost
        connection), rather than the one item that met it."""
        return False

    def _logged(self, game_code: str, seq: int, floor: int) -> None:
        self._bounds[game_code] = (seq, self._bounds.get(game_code, (0, floor))[1])

    async def prune(self) -> int:
        """Drop each logged game's events older than the retention, which move its log floor;
        answers how many games' logs it shortened."""
        pruned = 0
        for code, (last_seq, floor) in self._bounds.items():
            new_floor = last_seq - self._retention
            if new_floor > floor:
                await self.execute("DELETE FROM events WHERE game_code = ? AND seq <= ?", (code, new_floor))
                await self.execute("UPDATE games SET log_floor = ? WHERE code = ?", (new_floor, code))
                pruned += 1
        self._bounds.clear()
        return pruned

    # -- one item at a time (`each`) ---------------------------------------------------------

    async def _begin_item(self) -> tuple[int, dict[str, tuple[int, int]]]:
        await self.execute("SAVEPOINT item")
        return len(self.events), dict(self._bounds)

    async def _end_item(self) -> None:
        await self.execute("RELEASE SAVEPOINT item")

    async def _undo_item(self, mark: tuple[int, dict[str, tuple[int, int]]]) -> None:
        await self.execute("ROLLBACK TO SAVEPOINT item")
        await self.execute("RELEASE SAVEPOINT item")
        del self.events[mark[0]:]
        self._bounds = mark[1]


class SqliteWrites(Writes):
    """On the SQLite writer's thread: each statement runs at once, no coroutine suspends.

    Every statement lets go of the GIL while SQLite works and takes it back after, and
    under load each taking-back waits on the event loop: a batch should cost a handful
    of statements, not a handful per action. Hence `log_many` for the hot actions.
    """

    dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection, retention: int) -> None:
        super().__init__(retention)
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, params).rowcount

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        return cast("sqlite3.Row | None", self._db.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    async def log_many(self, entries: Sequence[Entry], bounds: Mapping[str, tuple[int, int]] | None = None) -> list[Event]:
        if not entries:
            return []
        games = {entry[0] for entry in entries}
        if bounds is None:
            row = self._db.execute(
                "SELECT json_group_array(json_array(code, last_seq, log_floor)) FROM games"
                " WHERE code IN (SELECT value FROM json_each(?))", (jsoncodec.dumps(sorted(games)),)).fetchone()
            bounds = {code: (last, floor) for code, last, floor in jsoncodec.loads(row[0])}
        events, rows, last = _numbered(entries, bounds)
        self._db.execute(
            "INSERT INTO events (game_code, seq, event, audience, payload, created_at)"
            " SELECT value->>0, value->>1, value->>2, value->>3, value->>4, ?1 FROM json_each(?2)",
            (events[0].timestamp, jsoncodec.dumps(rows)))
        self._db.execute(
            "UPDATE games SET last_seq = j.value->>1 FROM json_each(?) AS j WHERE games.code = j.value->>0",
            (jsoncodec.dumps(list(last.items())),))
        for code, seq in last.items():
            self._logged(code, seq, bounds[code][1])
        self.events.extend(events)
        return events


def _numbered(entries: Sequence[Entry], bounds: Mapping[str, tuple[int, int]]
              ) -> tuple[list[Event], list[tuple[str, int, str, str, str]], dict[str, int]]:
    """The entries' events, numbered on from each game's last seq; their rows; each game's new last seq."""
    missing = {entry[0] for entry in entries} - bounds.keys()
    assert not missing, f"log_many() for unknown games {missing}"
    now = time.time()
    last = {code: seq for code, (seq, _) in bounds.items()}
    events, rows = [], []
    for game_code, name, payload, audience, cause in entries:
        last[game_code] += 1
        event = Event(game_code, name, payload, audience, last[game_code], now, cause=cause)
        events.append(event)
        rows.append((game_code, last[game_code], name, audience, jsoncodec.dumps(payload)))
    return events, rows, last


def each(action: Callable[[Writes, T], Coroutine[Any, Any, R]]) -> Callable[[Writes, list[T]], Coroutine[Any, Any, list[R | Exception]]]:
    """A batch action made of a one-item action: each item inside its own savepoint, so an
    item that raises (a refusal, or a bug) leaves nothing behind and fails alone."""
    async def batch(writes: Writes, items: list[T]) -> list[R | Exception]:
        results: list[R | Exception] = []
        for item in items:
            mark = await writes._begin_item()
            try:
                result = await action(writes, item)
            except Exception as exc:
                if writes.must_retry(exc):
                    raise
                await writes._undo_item(mark)
                results.append(exc)
            else:
                await writes._end_item()
                results.append(result)
        return results

    batch.__name__ = batch.__qualname__ = action.__name__
    batch.__doc__ = action.__doc__
    return batch


def drive(outcome: Coroutine[Any, Any, T]) -> T:
    """An action's coroutine run to its end in one step, here on the writer's thread. It
    awaits only `Writes`' methods, which never suspend; one that does is a bug."""
    try:
        outcome.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    outcome.close()
    raise RuntimeError("a store action awaited something other than the store; it was abandoned")
