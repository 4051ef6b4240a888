"""One browser in many games: the session cookie keeps the most recent seats and stays small."""

from __future__ import annotations

import pytest

from arcane.routes import common
from tests.gameplay import error_of
from tests.support import LiveServer, http_client

BROWSER_COOKIE_LIMIT = 4096


async def test_after_200_games_the_cookie_is_under_4_kb_and_the_latest_games_still_work(server: LiveServer) -> None:
    host = http_client(server.url)
    browser = http_client(server.url)
    seats: list[tuple[str, str]] = []  # (game code, token), oldest first
    keep = server.settings.session_games_max
    size_at_keep = 0
    try:
        for number in range(200):
            code = (await host.post("/api/games", json={"player_name": f"Host {number}"})).json()["game_code"]
            joined = await browser.post(f"/api/games/{code}/players", json={"player_name": "Wanderer"})
            assert joined.status_code == 201, joined.text
            seats.append((code, joined.json()["player_token"]))
            if len(seats) == keep:
                size_at_keep = len(browser.cookies["arcane_session"])
        cookie = browser.cookies.get("arcane_session")
        assert cookie is not None and len(f"arcane_session={cookie}") < BROWSER_COOKIE_LIMIT
        assert len(cookie) <= size_at_keep + 64  # bounded: 180 more games added nothing

        for code, _ in seats[-keep:]:
            view = await browser.get(f"/api/games/{code}")
            assert view.status_code == 200, view.text
        info = (await browser.get("/api/session_info")).json()
        assert info["game_code"] == seats[-1][0] and len(info["games"]) == keep

        oldest, token = seats[0]
        forgotten = await browser.get(f"/api/games/{oldest}")
        assert forgotten.status_code in {401, 403} and error_of(forgotten) in {"NOT_IN_GAME", "AUTH_REQUIRED"}
        by_token = await browser.get(f"/api/games/{oldest}", headers={"Authorization": f"Bearer {token}"})
        assert by_token.status_code == 200, by_token.text
    finally:
        await host.aclose()
        await browser.aclose()


async def test_a_game_whose_cookie_cannot_be_written_is_still_answered_with_its_seat(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The game is committed before the cookie is written: a failing cookie (Quart's session
    without a key refused every write this way) must not turn the answer into a 500."""
    def no_session(*args: object, **kwargs: object) -> None:
        raise RuntimeError("The session is unavailable because no secret key was set.")

    monkeypatch.setattr(common, "remember", no_session)
    client = http_client(server.url)
    try:
        for path, body in [("/api/games", {"player_name": "Ann"}), ("/api/create_game", {"player_name": "Ben"})]:
            created = await client.post(path, json=body)
            assert created.status_code in {200, 201}, created.text
            seat = created.json()
            view = await client.get(f"/api/games/{seat['game_code']}",
                                    headers={"Authorization": f"Bearer {seat['player_token']}"})
            assert view.status_code == 200 and view.json()["you"]["player_id"] == seat["player_id"]
        assert "answered with its token only" in caplog.text
    finally:
        await client.aclose()
