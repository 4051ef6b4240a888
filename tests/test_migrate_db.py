"""`python -m arcane migrate-db SOURCE TARGET`: a deployment's SQLite database copied into
PostgreSQL, then served from it: the same seats, tokens, views, logs and cursors."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from tests.gameplay import logged
from tests.postgres import postgres
from tests.support import LiveServer, play_to_first_turn, reseated, seat_party, test_settings

ROOT = Path(__file__).resolve().parent.parent


def migrate_db(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "arcane", "migrate-db", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=os.environ | {"PYTHONPATH": str(ROOT)})


async def test_a_sqlite_deployment_moves_to_postgresql_with_its_games_tokens_and_cursors(tmp_path: Path) -> None:
    sqlite_settings = test_settings(tmp_path, database=tmp_path / "old.db")
    old = LiveServer(sqlite_settings)
    await old.start()
    try:
        party = await seat_party(old, ["Aria", "Brom"])
        code = party[0].game_code
        await play_to_first_turn(party)
        for n in range(5):
            assert (await party[n % 2].post("/chat", {"text": f"line {n}"})).status_code == 201
        before = {p.player_id: await p.view() for p in party}
        logs = {viewer: [(e.seq, e.name, e.payload) for e in await logged(old, code, viewer)]
                for viewer in (None, *before)}
        cursor = (await party[1].get("/poll", params={"after": 0, "timeout": 0})).json()["last_seq"]
        for player in party:
            await player.close()
    finally:
        await old.stop()
        old.close()

    target = postgres().fresh_database()
    done = migrate_db(str(tmp_path / "old.db"), target)
    assert done.returncode == 0, done.stderr
    assert "events:" in done.stdout and "copied" in done.stdout
    again = migrate_db(str(tmp_path / "old.db"), target)  # never over what is there
    assert again.returncode == 2 and "already holds games" in again.stderr

    new = LiveServer(replace(sqlite_settings, database=target))
    await new.start()
    try:
        moved = [reseated(p, new) for p in party]
        for player in moved:  # the same token, the same seat, the same view
            assert await player.view() == before[player.player_id]
        assert {viewer: [(e.seq, e.name, e.payload) for e in await logged(new, code, viewer)]
                for viewer in (None, *before)} == logs
        # A cursor from the old database continues: only what is new, recovered.
        assert (await moved[0].post("/chat", {"text": "on postgres"})).status_code == 201
        answer = (await moved[1].get("/poll", params={"after": cursor, "timeout": 0})).json()
        assert answer["recovered"] is True and answer["last_seq"] == cursor + 1
        assert [(e["seq"], e["data"]["text"]) for e in answer["events"]] == [(cursor + 1, "on postgres")]
        for player in moved:
            await player.close()
    finally:
        await new.stop()
        new.close()


def test_a_target_that_is_not_postgresql_or_a_missing_source_is_refused(tmp_path: Path) -> None:
    missing = migrate_db(str(tmp_path / "none.db"), postgres().fresh_database())
    assert missing.returncode == 2 and "no SQLite database" in missing.stderr
    (tmp_path / "old.db").write_bytes(b"")
    elsewhere = migrate_db(str(tmp_path / "old.db"), str(tmp_path / "copy.db"))
    assert elsewhere.returncode == 2 and "must be a postgresql:// URL" in elsewhere.stderr
