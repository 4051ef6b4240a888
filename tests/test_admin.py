"""The admin API: refused without the token; an operator looks into a game (whispers marked),
ends it and removes a player, each act logged with the admin as its author."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.gameplay import logged
from tests.sockets import socket_for
from tests.support import http_client, play_to_first_turn, seat_party, serving

TOKEN = "admin-test-token-" + "y" * 20
AS_ADMIN = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_admin_api_is_refused_without_the_token_and_off_without_one(tmp_path: Path) -> None:
    async with serving(tmp_path, admin_token=TOKEN) as server, http_client(server.url) as client:
        for path in ("/api/admin/overview", "/api/admin/games/ABCDEF"):
            assert (await client.get(path)).status_code == 401
        assert (await client.post("/api/admin/games/ABCDEF/end", json={})).status_code in (401, 403)
        wrong = await client.post("/admin/session", json={"token": "guess"})
        assert wrong.status_code == 401
        signed = await client.post("/admin/session", json={"token": TOKEN})
        assert signed.status_code == 200 and "arcane_admin" in signed.cookies
        assert (await client.get("/api/admin/overview")).status_code == 200  # the cookie is enough
    async with serving(tmp_path / "off") as server, http_client(server.url) as client:
        assert (await client.get("/admin")).status_code == 404
        assert (await client.get("/api/admin/overview", headers=AS_ADMIN)).status_code == 404


async def test_an_operator_looks_into_a_game_ends_it_and_removes_a_player(tmp_path: Path) -> None:
    async with serving(tmp_path, admin_token=TOKEN) as server, http_client(server.url, headers=AS_ADMIN) as admin:
        ann, bob, cyd = await seat_party(server, ["Ann", "Bob", "Cyd"])
        await play_to_first_turn([ann, bob, cyd])
        ann_ws = await socket_for(ann)
        overview = (await admin.get("/api/admin/overview")).json()
        (listed,) = [g for g in overview["games"] if g["code"] == ann.game_code]
        assert listed["phase"] == "playing" and listed["players"] == 3 and listed["online"] == 1
        assert listed["transports"] == {"socketio": 1, "sse": 0, "longpoll": 0}
        assert overview["connections"]["socketio"] == 1 and overview["process"]["rss_bytes"] > 0

        game = (await admin.get(f"/api/admin/games/{ann.game_code}")).json()
        whispers = [e for e in game["log"] if e["event"] == "whisper"]
        assert len(whispers) == 3 and all(w["private"] and w["audience"].startswith("player:") for w in whispers)
        assert not any(e["private"] for e in game["log"] if e["event"] == "new_scenario")

        # Cyd is removed: the table goes on without her, and everyone hears who did it.
        removed = await admin.post(f"/api/admin/games/{ann.game_code}/players/{cyd.player_id}/remove")
        assert removed.status_code == 200, removed.text
        said = await ann_ws.wait_event("player_removed")
        assert said["player_id"] == cyd.player_id and said["by"] == "admin"
        assert (await cyd.get()).status_code == 403
        assert [p["player_name"] for p in (await ann.view())["players"]] == ["Ann", "Bob"]

        ended = await admin.post(f"/api/admin/games/{ann.game_code}/end", json={"reason": "the table went quiet"})
        assert ended.json() == {"ok": True, "ended": True}
        over = await ann_ws.wait_event("game_over")
        assert over["reason"] == "ended"
        events = [e for e in await logged(server, ann.game_code, ann.player_id) if e.name == "game_ended"]
        assert [e.payload for e in events] == [{"by": "admin", "reason": "the table went quiet"}]
        assert (await ann.view())["phase"] == "finished"
        await ann_ws.close()
        for player in (ann, bob, cyd):
            await player.close()


async def test_with_redis_the_dashboard_shows_every_process(tmp_path: Path) -> None:
    from tests.cluster import RedisServer

    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    shared = {"admin_token": TOKEN, "redis_url": redis.url, "redis_prefix": f"adm{redis.port}"}
    try:
        async with serving(tmp_path / "a", **shared) as one, serving(tmp_path / "b", **shared) as two:
            async with http_client(one.url, headers=AS_ADMIN) as admin:
                for _ in range(100):
                    overview = (await admin.get("/api/admin/overview")).json()
                    if len(overview["processes"]) == 2:
                        break
                    await asyncio.sleep(0.1)
                origins = {p["process"] for p in overview["processes"]}
                assert len(origins) == 2, overview["processes"]
                assert {one.runtime.admin.origin, two.runtime.admin.origin} == origins  # type: ignore[union-attr]
    finally:
        await redis.kill()
