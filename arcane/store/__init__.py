"""The store: the games and their event logs.

- `engine`: the one commit engine (`Store.run`, the only way anything is written) and the
  interface every backend keeps; `KeyedReads`.
- `sqlite`: the embedded default, one file.
- `writes`: what an action sees inside the transaction (`Writes`, `each`).
- `games`: the games' repository, every statement about games, seats, turns and choices.
- `schema`: the migrations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from arcane.config import is_postgres_url
from arcane.events import Event
from arcane.store.engine import KeyedReads, Store
from arcane.store.schema import MIGRATIONS
from arcane.store.sqlite import SqliteStore
from arcane.store.writes import Writes, each

__all__ = ["MIGRATIONS", "KeyedReads", "SqliteStore", "Store", "Writes", "connect", "each"]


def connect(database: Path | str, *, retention: int = 10_000,
            on_commit: Callable[[list[Event]], None] = lambda events: None) -> Store:
    """The store `ARCANE_DATABASE` names (not yet opened): a `postgresql://` URL is a
    PostgreSQL database (arcane/store/postgres.py), anything else a SQLite file's path."""
    if is_postgres_url(database):
        from arcane.store.postgres import PostgresStore  # asyncpg is needed only then

        return PostgresStore(str(database), retention=retention, on_commit=on_commit)
    return SqliteStore(database, retention=retention, on_commit=on_commit)

