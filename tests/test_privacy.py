"""Whispers stay secret: across many generated games no one sees a whisper meant for another class."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

import pytest

from arcane.game.content import CLASSES
from tests.gameplay import answer_randomly, close_all, logged
from tests.support import LiveServer, Player, test_settings

GAMES = 12
TURNS = 3
SEED = 20_240_601


@dataclass
class Table:
    code: str
    players: list[Player]
    spectator: Player
    classes: dict[str, str] = field(default_factory=dict)
    # Everything each viewer was shown over HTTP, as JSON text, keyed by player_id.
    seen: dict[str, list[str]] = field(default_factory=dict)

    def viewers(self) -> Iterator[Player]:
        yield from self.players
        yield self.spectator


@pytest.fixture
async def short_game_server(tmp_path: Path) -> LiveServer:
    # Games of TURNS turns, so the generated games also end, and game_over is covered too;
    # three questions each keep the interrogation short while classes still vary.
    live = LiveServer(test_settings(tmp_path, turns_per_game=TURNS, questions_per_player=3))
    await live.start()
    try:
        yield live  # type: ignore[misc]
    finally:
        await live.stop()
        live.close()


async def look(table: Table, *, legacy: bool = False) -> dict[str, Any]:
    """Every viewer reads their view (players also the legacy routes, which show the same seat).

    Returns the host's view.
    """
    views = {}
    for viewer in table.viewers():
        views[viewer.player_id] = await viewer.view()
        shown = [json.dumps(views[viewer.player_id])]
        if legacy and viewer in table.players:
            for path in ("/api/game_state", "/api/my_whisper"):
                response = await viewer.client.get(path)
                assert response.status_code == 200, response.text
                shown.append(json.dumps(response.json()))
        table.seen.setdefault(viewer.player_id, []).extend(shown)
    return views[table.players[0].player_id]


async def play(server: LiveServer, rng: random.Random, number: int) -> Table:
    host = await Player.create(server, f"Host{number}")
    others = [await Player.join(server, host.game_code, f"P{number}-{i}") for i in range(rng.randint(1, 3))]
    spectator = await Player.watch(server, host.game_code, f"Eye{number}")
    table = Table(host.game_code, [host, *others], spectator)

    assert (await host.post("/start")).status_code == 200
    for player in table.players:
        table.classes[player.player_id] = await answer_randomly(player, rng)

    for turn in range(1, TURNS + 1):
        view = await look(table)
        assert view["turn_number"] == turn and view["phase"] == "playing"
        options = [o["id"] for o in view["scenario"]["options"]]
        order = rng.sample(table.players, len(table.players))
        for index, player in enumerate(order):
            if rng.random() < 0.2:
                pick = {"text": f"{player.player_name} improvises ({rng.randint(0, 999)})"}
            else:
                pick = {"option_id": rng.choice(options)}
            response = await player.post("/choices", pick)
            assert response.status_code == 200, response.text
            if index == 0:
                await look(table, legacy=turn == 1)
    await look(table)
    assert (await host.view())["phase"] == "finished"
    return table


async def whispers_by_player(server: LiveServer, code: str) -> list[dict[str, str]]:
    """Each turn's whispers, by player id (each drawn for its player: arcane/game/omens.py)."""
    rows = await server.runtime.services.store.fetchall(
        "SELECT whispers FROM scenarios WHERE game_code = ? ORDER BY turn_number", (code,)
    )
    return [json.loads(r["whispers"]) for r in rows]


async def test_no_one_hears_a_whisper_meant_for_another_class(short_game_server: LiveServer) -> None:
    server = short_game_server
    master = random.Random(SEED)
    # The tables play at once; each has its own seeded generator, so interleaving changes nothing.
    tables = await asyncio.gather(*(play(server, random.Random(master.random()), n) for n in range(GAMES)))

    classes_seen = {c for t in tables for c in t.classes.values()}
    assert len(classes_seen) >= 3, classes_seen
    assert any(len(set(t.classes.values())) > 1 for t in tables), "no game mixed classes"

    for table in tables:
        scenes = await whispers_by_player(server, table.code)
        assert len(scenes) == TURNS
        assert all(set(scene) == set(table.classes) for scene in scenes)
        assert all(len(set(scene.values())) == len(scene) for scene in scenes), "two players heard one whisper"
        for viewer in table.viewers():
            mine = viewer.player_id if viewer.player_id in table.classes else None
            own = {scene[mine] for scene in scenes} if mine else set()
            secret = {text for scene in scenes for text in scene.values()} - own
            stream = await logged(server, table.code, viewer.player_id)
            shown = table.seen[viewer.player_id] + [json.dumps(e.payload) for e in stream]
            everything = "\n".join(shown)
            leaked = [text for text in secret if json.dumps(text)[1:-1] in everything]
            assert leaked == [], f"{viewer.player_name} ({table.classes.get(viewer.player_id, 'spectator')}) saw {leaked}"
            if mine:
                # Not a vacuous check: each player did hear their own whisper, every turn.
                assert [e.payload["text"] for e in stream if e.name == "whisper"] == [s[mine] for s in scenes]
                assert all(json.dumps(text)[1:-1] in everything for text in own)
            else:
                assert not [e for e in stream if e.name in {"whisper", "class_assigned"}]
                assert all(json.loads(v).get("whisper") is None
                           for v in table.seen[viewer.player_id])
        await close_all(list(table.viewers()))
