"""The server's log lines: ARCANE_LOG_LEVEL, ARCANE_LOG_FORMAT=json with what each line knows
of where it was written (arcane/logs.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from arcane import logs
from arcane.config import Settings
from tests.support import LiveServer, seat_party, started



class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.addFilter(logs.ContextFilter())
        self.setFormatter(logs.JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_a_failing_request_logs_one_json_line_with_its_game_player_transport_and_request_id(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    captured = Captured()
    logging.getLogger("arcane").addHandler(captured)

    async def broken(ident: Any) -> Any:
        raise RuntimeError("the view is broken")

    monkeypatch.setattr(server.runtime.services.service, "view", broken)
    try:
        response = await bob.client.get(f"/api/games/{bob.game_code}", headers={"X-Request-ID": "req-42"})
        assert response.status_code == 500
    finally:
        logging.getLogger("arcane").removeHandler(captured)
    (line,) = [entry for entry in captured.lines if entry["level"] == "ERROR"]
    assert line["message"] == f"unhandled error on GET /api/games/{bob.game_code}"
    assert (line["game_code"], line["player_id"], line["transport"], line["request_id"]) == (
        bob.game_code, bob.player_id, "http", "req-42")
    assert "RuntimeError: the view is broken" in line["exception"]
    assert line["logger"] == "arcane.routes.errors" and line["time"].endswith("Z")
    for player in (ann, bob):
        await player.close()


async def test_context_is_per_task() -> None:
    """Two requests at once never share what they know."""
    async def one(game: str) -> dict[str, str]:
        logs.bind(game_code=game, transport="http")
        await asyncio.sleep(0.01)
        return logs.context()

    first, second = await asyncio.gather(asyncio.create_task(one("AAAAAA")), asyncio.create_task(one("BBBBBB")))
    assert first["game_code"] == "AAAAAA" and second["game_code"] == "BBBBBB"


def test_the_settings_are_checked() -> None:
    assert Settings.from_env({"ARCANE_LOG_LEVEL": "warning", "ARCANE_LOG_FORMAT": "JSON"}).log_level == "WARNING"
    with pytest.raises(ValueError, match="ARCANE_LOG_LEVEL"):
        Settings.from_env({"ARCANE_LOG_LEVEL": "chatty"})
    with pytest.raises(ValueError, match="ARCANE_LOG_FORMAT"):
        Settings.from_env({"ARCANE_LOG_FORMAT": "xml"})


async def served_lines(tmp_path: Path, **env: str) -> list[str]:
    """The stderr lines of `python -m arcane` from its start until it says it runs."""
    async with started(tmp_path, "-m", "arcane", env=env) as server:
        return [line for line in server.text().splitlines() if line.strip()]


async def test_json_lines_and_the_level_are_what_the_operator_asked_for(tmp_path: Path) -> None:
    lines = await served_lines(tmp_path, ARCANE_LOG_FORMAT="json")
    ours = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry["message"].startswith("serving with database") for entry in ours), lines
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in ours)
    quiet = await served_lines(tmp_path, ARCANE_LOG_LEVEL="WARNING")
    assert not any("serving with database" in line for line in quiet), quiet


async def test_hypercorn_itself_logs_json_with_the_shipped_log_config(tmp_path: Path) -> None:
    async with started(tmp_path, "-m", "hypercorn", "arcane:app", "--workers", "1",
                       "--log-config", "json:deploy/logging.json", env={"ARCANE_LOG_FORMAT": "json"}) as server:
        lines = [line for line in server.text().splitlines() if line.strip()]
    running = [json.loads(line) for line in lines if "Running on" in line]
    assert running and running[0]["logger"] == "hypercorn.error", lines
    assert all(line.startswith("{") for line in lines), lines  # every line, hypercorn's and ours
    assert any(json.loads(line)["message"].startswith("serving with database") for line in lines)
