"""GET /metrics: real Prometheus text, parsed by prometheus-client's own parser, with values
checked against what the test did; and refused without the admin token."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.sockets import socket_for
from tests.support import http_client, seat_party, serving

TOKEN = "metrics-test-token-" + "x" * 20


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_metrics_count_what_the_players_did(tmp_path: Path) -> None:
    async with serving(tmp_path, admin_token=TOKEN) as server, http_client(server.url) as client:
        before = await scrape(client)
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        bob_ws = await socket_for(bob)  # no cursor: a snapshot
        for text in ("hello", "again"):
            assert (await ann.post("/chat", {"text": text})).status_code == 201
        await bob_ws.wait_for(lambda got: sum(1 for e, _ in got if e == "chat_message") == 2)
        assert (await ann.post("/chat", {"text": ""})).status_code == 400  # VALIDATION_ERROR
        after = await scrape(client)

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert value(after, "arcane_connections", transport="socketio") == 1
        assert value(after, "arcane_games", phase="lobby") >= 1
        assert grew("arcane_events_delivered_total", transport="socketio") >= 2
        assert grew("arcane_action_seconds_count", action="chat_message", transport="http") == 3
        assert grew("arcane_action_seconds_count", action="create", transport="http") == 1
        assert grew("arcane_action_seconds_count", action="join_game_room", transport="socketio") == 1
        assert grew("arcane_errors_total", code="VALIDATION_ERROR") == 1
        assert grew("arcane_catch_ups_total", kind="snapshot") == 1
        assert grew("arcane_events_published_total") >= 4  # two joins, two chats
        assert grew("arcane_store_commit_seconds_count") >= 4
        assert value(after, "arcane_database_up") == 1
        assert value(after, "process_open_fds") > 0 and value(after, "process_resident_memory_bytes") > 0
        assert any(name == "arcane_build_info" for name, _ in after)
        assert not any(labels and dict(labels).keys() & {"game_code", "player_id"} for _, labels in after)
        await bob_ws.close()
        for player in (ann, bob):
            await player.close()


async def test_metrics_are_refused_without_the_token(tmp_path: Path) -> None:
    async with serving(tmp_path, admin_token=TOKEN) as server, http_client(server.url) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "AUTH_REQUIRED"


async def test_without_a_token_metrics_are_off_unless_loopback_is_allowed(tmp_path: Path) -> None:
    async with serving(tmp_path) as server, http_client(server.url) as client:
        assert (await client.get("/metrics")).status_code == 404
    async with serving(tmp_path / "b", admin_loopback=True) as server, http_client(server.url) as client:
        response = await client.get("/metrics")  # the test client is on 127.0.0.1
        assert response.status_code == 200 and "arcane_events_published_total" in response.text
