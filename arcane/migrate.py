"""The database's commands: `python -m arcane migrate-db SOURCE TARGET`, a SQLite database
copied into PostgreSQL; `python -m arcane new-epoch [CODE ...]`, new stream epochs.

migrate-db:

Every game, seat, answer, scenario, choice and logged event goes across as it is: the same
codes, player ids, seqs, log floors and timestamps, so tokens, cookies and every client's
cursor keep working against the new database (with the same ARCANE_SECRET_KEY). The source
is first brought to the current SQLite schema (its migrations), then read in one snapshot;
the target must be empty (its schema is made here). Stop the servers first: what is written
to the source after its snapshot is not copied.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arcane.config import described, is_postgres_url
from arcane.store import SqliteStore, connect

# (table, its columns, the order to read it in): parents first.
TABLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("games", ("code", "phase", "max_players", "turn_number", "party_trust", "npcs", "last_seq", "log_floor",
               "finished_reason", "created_at", "epoch", "turn_deadline", "rematch_code", "public"), "code"),
    ("players", ("game_code", "player_id", "name", "role", "is_host", "position", "player_class", "divine_favor",
                 "questions", "joined_at", "seen_at"), "game_code, player_id"),
    ("interrogation_answers", ("game_code", "player_id", "question_id", "answer_id", "answered_at"),
     "game_code, player_id, question_id"),
    ("scenarios", ("game_code", "turn_number", "scenario_id", "theme", "title", "public_scene", "options", "whispers",
                   "created_at", "trap", "resolution"), "game_code, turn_number"),
    ("choices", ("game_code", "turn_number", "player_id", "option_id", "text", "created_at"),
     "game_code, turn_number, player_id"),
    ("skip_votes", ("game_code", "turn_number", "target_id", "voter_id"), "game_code, turn_number, target_id, voter_id"),
    ("events", ("game_code", "seq", "event", "audience", "payload", "created_at"), "id"),
)
CHUNK = 5_000  # rows read and written at a time


class MigrationRefused(Exception):
    """The copy cannot be made as asked (a target that is not empty, not PostgreSQL...)."""


async def migrate(source: Path, target: str, *, out: Any = sys.stdout) -> dict[str, int]:
    """Copies every table; answers the rows copied per table, checked against the source."""
    if not is_postgres_url(target):
        raise MigrationRefused(f"the target must be a postgresql:// URL, not {target!r}")
    if not source.is_file():
        raise MigrationRefused(f"no SQLite database at {source}")
    from arcane.store.postgres import PostgresStore

    reader = SqliteStore(source)
    await reader.open()
    writer = connect(target)
    assert isinstance(writer, PostgresStore)
    try:
        await writer.open()
        if await writer.fetchone("SELECT 1 FROM games LIMIT 1") is not None:
            raise MigrationRefused(f"the target {described(target)} already holds games: copy into an empty database")
        copied: dict[str, int] = {}
        async with reader.snapshot(), writer.copying() as copy:
            for table, columns, order in TABLES:
                count = 0
                offset = 0
                while True:
                    rows = await reader.fetchall(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}"
                                                 f" LIMIT {CHUNK} OFFSET {offset}")
                    if not rows:
                        break
                    await copy(table, columns, [tuple(row) for row in rows])
                    count += len(rows)
                    offset += len(rows)
                copied[table] = count
                print(f"{table}: {count} rows", file=out, flush=True)
        for table, count in copied.items():
            there = await writer.fetchone(f"SELECT COUNT(*) FROM {table}")
            if there is None or int(there[0]) != count:
                raise MigrationRefused(f"{table}: {count} rows read but {there and there[0]} in the target")
        return copied
    finally:
        await writer.close()
        await reader.close()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m arcane migrate-db",
                                     description="Copy a SQLite database (games, seats, logs) into an empty "
                                                 "PostgreSQL database; cursors and tokens keep working.")
    parser.add_argument("source", type=Path, help="the SQLite file (ARCANE_DATABASE of the old deployment)")
    parser.add_argument("target", help="the postgresql:// URL of an empty database")
    args = parser.parse_args(argv)
    try:
        copied = asyncio.run(migrate(args.source, args.target))
    except MigrationRefused as refused:
        print(f"migrate-db: {refused}", file=sys.stderr)
        return 2
    print(f"copied {sum(copied.values())} rows into {described(args.target)}")
    return 0


async def new_epochs(database: Path | str, codes: Sequence[str]) -> int:
    from arcane.store import each, games

    store = connect(database)
    await store.open()
    try:
        async def renew(db: Any, _: None) -> int:
            return await games.renew_epochs(db, codes)

        renewed: int = await store.run(each(renew), None)
        return renewed
    finally:
        await store.close()


def new_epoch_main(argv: Sequence[str]) -> int:
    """After restoring the database from a backup (or resetting a game's log), with every
    server stopped: each game named (every game, if none is) gets a new epoch, so every
    client's cursor, from the stream before, gets a snapshot on its next connect instead
    of a replay of events the restored log may not have, or may have differently."""
    from arcane.config import Settings

    parser = argparse.ArgumentParser(prog="python -m arcane new-epoch", description=new_epoch_main.__doc__)
    parser.add_argument("codes", nargs="*", metavar="CODE", help="the games (default: every game)")
    args = parser.parse_args(argv)
    database = Settings.from_env().database
    renewed = asyncio.run(new_epochs(database, [code.upper() for code in args.codes]))
    print(f"new epochs for {renewed} games in {described(database)}; start the servers again")
    return 0
