"""The operator's command line (arcane/cli.py), run as a subprocess against a real database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.support import ROOT, play_to_first_turn, seat_party, serving, started



async def arcane(database: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "arcane", *args, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=os.environ | {"ARCANE_DATABASE": database})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_games_show_export_and_end_a_game(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        await play_to_first_turn([ann, bob])
        assert (await bob.post("/chat", {"text": "trust me"})).status_code == 201
        lobby, = await seat_party(server, ["Cyd"])
        code, database = ann.game_code, str(server.settings.database)
        last_seq = (await ann.view())["seq"]
        for player in (ann, bob, lobby):
            await player.close()

    status, out, _ = await arcane(database, "games")
    assert status == 0 and out.splitlines()[0].split()[:3] == ["CODE", "PHASE", "PLAYERS"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == {code, lobby.game_code}
    status, out, _ = await arcane(database, "games", "--phase", "lobby", "--json")
    assert [json.loads(line)["code"] for line in out.splitlines()] == [lobby.game_code]

    status, out, _ = await arcane(database, "show", code.lower())
    assert status == 0 and f"game {code}: playing, turn 1" in out and "Ann (" in out and "Bob (" in out
    assert "[PRIVATE to player:" in out  # the whispers, marked
    status, out, _ = await arcane(database, "show", code, "--json")
    shown = json.loads(out)
    assert shown["phase"] == "playing" and [p["player_name"] for p in shown["players"]] == ["Ann", "Bob"]

    exported = tmp_path / "game.jsonl"
    status, _, err = await arcane(database, "export", code, "-o", str(exported))
    assert status == 0 and f"{last_seq} events" in err
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert [line["seq"] for line in lines] == list(range(1, last_seq + 1))
    whispers = [line for line in lines if line["event"] == "whisper"]
    assert len(whispers) == 2 and all(w["private"] and w["audience"].startswith("player:") for w in whispers)
    assert any(line["event"] == "chat_message" and line["data"]["text"] == "trust me" for line in lines)

    status, out, _ = await arcane(database, "end", code, "--reason", "stuck for an hour")
    assert status == 0 and out.strip() == f"game {code} ended"
    status, out, _ = await arcane(database, "end", code)
    assert out.strip() == f"game {code} was already over"
    status, out, _ = await arcane(database, "export", code)
    ended = [json.loads(line) for line in out.splitlines()][-2:]
    assert [e["event"] for e in ended] == ["game_ended", "game_over"]
    assert ended[0]["data"] == {"by": "operator", "reason": "stuck for an hour"}
    assert ended[1]["data"]["reason"] == "ended"

    status, _, err = await arcane(database, "show", "ZZZZZZ")
    assert status == 2 and "no game with code ZZZZZZ" in err
    status, _, err = await arcane(database, "show", "not-a-code")
    assert status == 2 and "is not a game code" in err


async def test_check_says_what_works_and_fails_when_the_database_does_not_answer(tmp_path: Path) -> None:
    database = str(tmp_path / "arcane.db")
    status, out, _ = await arcane(database, "check")
    assert status == 0, out
    names = [line.split()[1] for line in out.splitlines()]
    assert names == ["settings", "database", "versions", "fast"]
    assert all(line.startswith("ok") for line in out.splitlines()), out
    assert "hypercorn " in out and "fast paths on" in out
    status, out, _ = await arcane("postgresql://nobody@127.0.0.1:1/none", "check")
    assert status == 1 and any(line.startswith("FAIL  database") for line in out.splitlines()), out


async def test_help_follows_argparse_and_serving_stays_the_default(tmp_path: Path) -> None:
    status, out, _ = await arcane(str(tmp_path / "a.db"), "--help")
    assert status == 0 and out.startswith("usage: arcane")
    for command in ("serve", "games", "show", "export", "end", "check", "migrate-db", "new-epoch"):
        assert command in out
    status, out, _ = await arcane(str(tmp_path / "a.db"), "show", "--help")
    assert status == 0 and "CODE" in out and "--json" in out
    status, _, err = await arcane(str(tmp_path / "a.db"), "show")
    assert status == 2 and "required: CODE" in err
    status, out, _ = await arcane(str(tmp_path / "a.db"), "serve", "--help")
    assert status == 0 and "--backlog" in out and "--bind" in out


async def test_serve_takes_the_settings_as_flags(tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.db"
    async with started(tmp_path, "-m", "arcane", "serve", "--database", str(chosen), "--turn-timeout", "42",
                       env={"ARCANE_DATABASE": str(tmp_path / "not-this.db")}) as server:
        assert f"serving with database {chosen}" in server.text()
        assert chosen.exists() and not (tmp_path / "not-this.db").exists()
