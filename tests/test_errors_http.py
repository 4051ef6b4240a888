"""Every refusal over HTTP: its status, its {"error": {"code", "message"}} body, and no change behind it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from quart import jsonify

from arcane.store import Writes
from tests.gameplay import close_all, error_of, logged, written
from tests.support import TEST_SECRET, LiveServer, Player, http_client, play_to_first_turn, seat_party, serving
from tests.logs import log_bounds

Send = Callable[[], Awaitable[httpx.Response]]


async def world(server: LiveServer, watchers: Sequence[Player]) -> list[Any]:
    """What a refusal must leave alone: the number of games, and each watcher's log bounds and view."""
    count = await server.runtime.services.store.fetchone("SELECT COUNT(*) FROM games")
    state: list[Any] = [count[0] if count else None]
    for watcher in watchers:
        state.append(await log_bounds(server.runtime.services.store, watcher.game_code))
        state.append(await watcher.view())
    return state


async def refused(server: LiveServer, watchers: Sequence[Player], send: Send, status: int, code: str) -> None:
    before = await world(server, watchers)
    response = await send()
    assert response.status_code == status, response.text
    assert error_of(response) == code, response.text
    assert await world(server, watchers) == before


def raw_post(client: httpx.AsyncClient, path: str, content: bytes | str,
             content_type: str = "application/json") -> Send:
    return lambda: client.post(path, content=content, headers={"Content-Type": content_type})


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    # refused() reads each watcher's view before and after every refusal: far more views a
    # second than one player makes, past the default read limit (tests/test_hostile_limits.py).
    async with serving(tmp_path, read_burst=10**6) as live:
        yield live


@pytest.fixture
async def stranger(server: LiveServer) -> Any:
    client = http_client(server.url)
    yield client
    await client.aclose()


async def test_a_caller_without_identity_must_authenticate(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria")
    code = host.game_code
    for method, path, body in (("GET", "", None), ("POST", "/start", {}), ("POST", "/chat", {"text": "hi"}),
                               ("GET", "/interrogation", None), ("POST", "/leave", {})):
        await refused(server, [host], lambda: stranger.request(method, f"/api/games/{code}{path}", json=body),
                      401, "AUTH_REQUIRED")

    forged_key = URLSafeSerializer("not-the-server-key", salt="arcane-player-token")
    right_key_wrong_shape = URLSafeSerializer(TEST_SECRET, salt="arcane-player-token")
    tampered = host.token[:-2] + ("AA" if not host.token.endswith("AA") else "BB")
    for token in ("garbage", tampered, forged_key.dumps({"g": code, "p": host.player_id}),
                  right_key_wrong_shape.dumps(["not", "a", "seat"])):
        headers = {"Authorization": f"Bearer {token}"}
        await refused(server, [host], lambda: stranger.get(f"/api/games/{code}", headers=headers),
                      401, "AUTH_REQUIRED")
        await refused(server, [host], lambda: stranger.post(f"/api/games/{code}/start", headers=headers),
                      401, "AUTH_REQUIRED")
    await host.close()


async def test_outsiders_and_spectators_are_not_in_the_game(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    elsewhere = await Player.create(server, "Zed")
    spectator = await Player.watch(server, code, "Wren")
    watchers = [party[0], elsewhere]

    # A token of another game, by header, and a cookie that only holds another game.
    foreign = {"Authorization": f"Bearer {elsewhere.token}"}
    await refused(server, watchers, lambda: party[0].client.get(f"/api/games/{code}", headers=foreign),
                  403, "NOT_IN_GAME")
    await refused(server, watchers, lambda: party[0].client.post(f"/api/games/{code}/chat", json={"text": "x"},
                                                                 headers=foreign), 403, "NOT_IN_GAME")
    async with http_client(server.url, cookies=elsewhere.client.cookies) as cookie_only:
        await refused(server, watchers, lambda: cookie_only.get(f"/api/games/{code}"), 403, "NOT_IN_GAME")

    await play_to_first_turn(party)
    option = (await party[0].view())["scenario"]["options"][0]["id"]
    for path, body in (("/choices", {"option_id": option}), ("/chat", {"text": "boo"}),
                       ("/typing", {"is_typing": True}), ("/interrogation", {"answer_id": "a"})):
        await refused(server, watchers, lambda: spectator.post(path, body), 403, "NOT_IN_GAME")
    await close_all([*party, elsewhere, spectator])


async def test_a_player_who_left_is_no_longer_in_the_game(server: LiveServer) -> None:
    host, brom = await seat_party(server, ["Aria", "Brom"])
    assert (await brom.post("/leave")).status_code == 200
    await refused(server, [host], lambda: brom.post("/chat", {"text": "back!"}), 403, "NOT_IN_GAME")
    await refused(server, [host], lambda: brom.post("/leave"), 403, "NOT_IN_GAME")
    await close_all([host, brom])


async def test_only_the_host_starts_the_game(server: LiveServer) -> None:
    host, brom = await seat_party(server, ["Aria", "Brom"])
    spectator = await Player.watch(server, host.game_code, "Wren")
    await refused(server, [host], lambda: brom.post("/start"), 403, "NOT_HOST")
    await refused(server, [host], lambda: spectator.post("/start"), 403, "NOT_HOST")
    assert (await host.view())["phase"] == "lobby"
    await close_all([host, brom, spectator])


async def test_unknown_and_malformed_game_codes_are_invalid(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria")
    unknown = "ZZZZZ9" if host.game_code != "ZZZZZ9" else "ZZZZZ8"
    token = {"Authorization": f"Bearer {host.token}"}
    # A well-formed code the caller has no seat in is answered as for a game that exists
    # (no enumeration: tests/test_hostile_limits.py); only joining and watching say INVALID_GAME.
    for path in (f"/api/games/{unknown}", f"/api/games/{unknown}/start"):
        await refused(server, [host], lambda: stranger.request("POST" if path.endswith("start") else "GET", path,
                                                               headers=token), 403, "NOT_IN_GAME")
    for code in (unknown, "abc", "ABCDEFG", "AB_123", "ÄBC123"):
        if code != unknown:
            await refused(server, [host], lambda: stranger.get(f"/api/games/{code}", headers=token), 404, "INVALID_GAME")
        await refused(server, [host], lambda: stranger.post(f"/api/games/{code}/players",
                                                            json={"player_name": "Brom"}), 404, "INVALID_GAME")
        await refused(server, [host], lambda: stranger.post(f"/api/games/{code}/spectators",
                                                            json={"name": "Wren"}), 404, "INVALID_GAME")
        if code != unknown:
            await refused(server, [host], lambda: stranger.post(f"/api/games/{code}/start", headers=token),
                          404, "INVALID_GAME")
    for body in ({"game_code": unknown, "player_name": "Brom"}, {"game_code": "no!", "player_name": "Brom"},
                 {"player_name": "Brom"}, {"game_code": 123456, "player_name": "Brom"}):
        await refused(server, [host], lambda: stranger.post("/api/join_game", json=body), 404, "INVALID_GAME")
    await host.close()


async def test_legacy_routes_without_a_game_say_so(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria")
    for method, path in (("GET", "/api/game_state"), ("GET", "/api/current_scenario"),
                         ("GET", "/api/my_whisper"), ("GET", "/api/waiting_for"), ("POST", "/api/make_choice")):
        body = {"option_id": "a"} if method == "POST" else None
        await refused(server, [host], lambda: stranger.request(method, path, json=body), 404, "NO_GAME")
    info = (await stranger.get("/api/session_info")).json()
    assert info["in_game"] is False and info["games"] == []
    await host.close()


async def test_names_and_seats_are_validated(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria")
    code = host.game_code
    bad_names: list[Any] = [None, "", "   ", "x" * 31, 42, ["Aria"], "Ar\x00ia"]
    for name in bad_names:
        body = {} if name is None else {"player_name": name}
        await refused(server, [host], lambda: stranger.post("/api/games", json=body), 400, "VALIDATION_ERROR")
        await refused(server, [host], lambda: stranger.post(f"/api/games/{code}/players", json=body),
                      400, "VALIDATION_ERROR")
        watch = {} if name is None else {"name": name}
        await refused(server, [host], lambda: stranger.post(f"/api/games/{code}/spectators", json=watch),
                      400, "VALIDATION_ERROR")
        legacy = {} if name is None else {"username": name}
        await refused(server, [host], lambda: stranger.post("/api/set_username", json=legacy),
                      400, "VALIDATION_ERROR")
    for cap in (0, 5, -1, "4", True, 2.5):
        await refused(server, [host], lambda: stranger.post("/api/games", json={"player_name": "Brom",
                                                                                 "max_players": cap}),
                      400, "VALIDATION_ERROR")
    # The legacy create needs a name from somewhere: the body or /api/set_username.
    await refused(server, [host], lambda: stranger.post("/api/create_game", json={}), 400, "VALIDATION_ERROR")
    assert (await stranger.get("/api/session_info")).json()["username"] is None
    await host.close()


async def test_bodies_must_be_json_objects(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria")
    code = host.game_code
    for content in ("{not json", "[1, 2]", '"Aria"', "5", "null", b"\xff\xfe", "[" * 50_000):
        await refused(server, [host], raw_post(stranger, "/api/games", content), 400, "VALIDATION_ERROR")
        await refused(server, [host], raw_post(host.client, f"/api/games/{code}/chat", content),
                      400, "VALIDATION_ERROR")
        await refused(server, [host], raw_post(stranger, "/api/set_username", content), 400, "VALIDATION_ERROR")
    # The body is read as JSON whatever the client says it is.
    await refused(server, [host], raw_post(host.client, f"/api/games/{code}/chat", "text=hi",
                                           "application/x-www-form-urlencoded"), 400, "VALIDATION_ERROR")
    await host.close()


async def test_interrogation_answers_and_choices_are_validated(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    host = party[0]
    assert (await host.post("/start")).status_code == 200
    question = (await host.get("/interrogation")).json()["question"]
    for body in ({}, {"answer_id": ""}, {"answer_id": "zz"}, {"answer_id": 1},
                 {"answer_id": question["answers"][0]["id"], "question_id": "not-this-one"}):
        await refused(server, party, lambda: host.post("/interrogation", body), 400, "VALIDATION_ERROR")
    assert (await host.get("/interrogation")).json()["question"] == question

    for player in party:
        await player.answer_all()
    scenario = (await host.view())["scenario"]
    option = scenario["options"][0]["id"]
    for body in ({}, {"option_id": option, "text": "both"}, {"option_id": None, "text": None},
                 {"text": "x" * 501}, {"text": "   "}, {"text": 7}, {"option_id": "zz"}, {"option_id": ""},
                 {"option_id": 1}):
        await refused(server, party, lambda: host.post("/choices", body), 400, "VALIDATION_ERROR")
    for body in ({}, {"text": ""}, {"text": "x" * 501}, {"text": ["hi"]}):
        await refused(server, party, lambda: host.post("/chat", body), 400, "VALIDATION_ERROR")
    for body in ({}, {"is_typing": "yes"}, {"is_typing": 1}):
        await refused(server, party, lambda: host.post("/typing", body), 400, "VALIDATION_ERROR")

    # The limits themselves are allowed.
    assert (await host.post("/choices", {"text": "x" * 500})).status_code == 200
    assert (await host.post("/chat", {"text": "y" * 500})).status_code == 201
    await close_all(party)


async def test_a_full_table_turns_newcomers_away(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria", max_players=2)
    brom = await Player.join(server, host.game_code, "Brom")
    await refused(server, [host], lambda: stranger.post(f"/api/games/{host.game_code}/players",
                                                        json={"player_name": "Cyra"}), 409, "GAME_FULL")
    await refused(server, [host], lambda: stranger.post("/api/join_game", json={
        "game_code": host.game_code, "player_name": "Cyra"}), 409, "GAME_FULL")
    # Spectators are not seats at the table.
    assert (await stranger.post(f"/api/games/{host.game_code}/spectators", json={"name": "Wren"})).status_code == 201
    await close_all([host, brom])


async def test_a_started_game_takes_no_new_players(server: LiveServer, stranger: httpx.AsyncClient) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    assert (await party[0].post("/start")).status_code == 200
    await refused(server, party, lambda: stranger.post(f"/api/games/{code}/players", json={"player_name": "Cyra"}),
                  409, "GAME_STARTED")
    await close_all(party)


async def test_actions_out_of_their_phase_are_refused(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    host, brom = party
    await refused(server, party, lambda: host.post("/interrogation", {"answer_id": "a"}), 409, "WRONG_PHASE")
    await refused(server, party, lambda: host.post("/choices", {"option_id": "a"}), 409, "WRONG_PHASE")

    assert (await host.post("/start")).status_code == 200
    await refused(server, party, lambda: host.post("/start"), 409, "WRONG_PHASE")
    await refused(server, party, lambda: host.post("/choices", {"text": "too soon"}), 409, "WRONG_PHASE")
    await host.answer_all()
    await refused(server, party, lambda: host.post("/interrogation", {"answer_id": "a"}), 409, "WRONG_PHASE")
    await brom.answer_all()

    option = (await host.view())["scenario"]["options"][0]["id"]
    assert (await host.post("/choices", {"option_id": option})).status_code == 200
    await refused(server, party, lambda: host.post("/choices", {"option_id": option}), 409, "ALREADY_CHOSE")
    await refused(server, party, lambda: host.post("/choices", {"text": "changed my mind"}), 409, "ALREADY_CHOSE")
    assert (await host.view())["my_choice"] == {"option_id": option, "text": None}
    await refused(server, party, lambda: host.post("/interrogation", {"answer_id": "a"}), 409, "WRONG_PHASE")
    await close_all(party)


async def test_an_unexpected_failure_is_an_internal_error_without_a_traceback(server: LiveServer) -> None:
    # No shipped route fails on purpose, and a failing ScenarioSource is retried in the background
    # rather than surfaced, so the test adds one route to the running app (Quart accepts routes until
    # it is told setup is over, which it never is): it logs a game event inside a real store
    # transaction and then raises. The app's catch-all handler must answer INTERNAL_ERROR without
    # leaking the exception, and the transaction must leave nothing behind.
    host = await Player.create(server, "Aria")
    marker = "the-vault-combination-is-4217"

    async def explode(code: str) -> Any:
        async def boom(tx: Writes) -> None:
            await tx.log(code, "chat_message", {"player_id": "x", "player_name": "x", "text": marker})
            raise RuntimeError(marker)

        await written(server.runtime.services.store, boom)
        return jsonify({})  # pragma: no cover

    server.app.quart.add_url_rule("/api/games/<code>/explode", "explode", explode, methods=["POST"])
    before = await world(server, [host])
    response = await host.post("/explode")
    assert response.status_code == 500
    assert error_of(response) == "INTERNAL_ERROR"
    assert response.headers["content-type"].startswith("application/json")
    for leak in (marker, "Traceback", "RuntimeError", ".py", "line "):
        assert leak not in response.text
    assert await world(server, [host]) == before
    assert marker not in json.dumps([e.payload for e in await logged(server, host.game_code, None)])
    # The store is fine afterwards.
    assert (await host.post("/chat", {"text": "still here"})).status_code == 201
    await host.close()


async def test_unknown_routes_and_methods_answer_in_the_error_shape(server: LiveServer,
                                                                    stranger: httpx.AsyncClient) -> None:
    host = await Player.create(server, "Aria")
    code = host.game_code
    for method, path in (("GET", "/api/nothing-here"), ("POST", "/api/games/ABC123/nonsense"),
                         ("GET", "/definitely/not/a/page")):
        await refused(server, [host], lambda: stranger.request(method, path), 404, "NOT_FOUND")
    for method, path in (("GET", f"/api/games/{code}/start"), ("DELETE", f"/api/games/{code}"),
                         ("PUT", "/api/games"), ("GET", f"/api/games/{code}/chat"), ("GET", "/api/make_choice"),
                         ("POST", f"/api/games/{code}/events"), ("POST", f"/api/games/{code}/poll")):
        await refused(server, [host], lambda: host.client.request(method, path), 405, "METHOD_NOT_ALLOWED")
    # Bodies beyond the server's limit are refused before they are read.
    await refused(server, [host], lambda: host.post("/chat", {"text": "x" * 70_000}), 413, "PAYLOAD_TOO_LARGE")
    await host.close()
