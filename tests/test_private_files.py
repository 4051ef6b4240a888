"""The database holds whispers and chat: it and its companions are the server's user's alone."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Player, serving


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask of a shell, which left the files world-readable."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_new_database_its_wal_and_its_shm_are_created_0600(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "arcane.db"  # a SQLite file's, whatever ARCANE_TEST_DATABASE says
    async with serving(tmp_path, database=db) as server:
        ann = await Player.create(server, "Ann")
        assert (await ann.post("/chat", {"text": "only for the party"})).status_code == 201
        files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        await ann.close()


async def test_a_database_made_world_readable_before_is_made_private_on_start(
    tmp_path: Path, open_umask: None
) -> None:
    db = tmp_path / "arcane.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    db.chmod(0o644)
    async with serving(tmp_path, database=db):
        wal = db.with_name(db.name + "-wal")
        assert mode(db) == 0o600
        assert wal.exists() and mode(wal) == 0o600
