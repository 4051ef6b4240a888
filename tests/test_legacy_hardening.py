"""The original game's routes: a bearer token is enough, and a choice of the wrong shape is refused."""

from __future__ import annotations

import pytest

from tests.gameplay import close_all, error_of, last_seq
from tests.support import LiveServer, http_client, play_to_first_turn, seat_party


async def test_the_legacy_routes_take_a_bearer_token_without_any_cookie(server: LiveServer) -> None:
    party = await seat_party(server, ["Ann", "Ben"])
    await play_to_first_turn(party)
    ann = party[0]
    bare = http_client(server.url, headers={"Authorization": f"Bearer {ann.token}"})
    try:
        state = await bare.get("/api/game_state")
        assert state.status_code == 200, state.text
        assert state.json()["you"]["player_id"] == ann.player_id and not bare.cookies
        whisper = (await bare.get("/api/my_whisper")).json()
        assert whisper["whisper"] == (await ann.view())["whisper"]
        option = (await bare.get("/api/current_scenario")).json()["scenario"]["options"][0]["id"]
        made = await bare.post("/api/make_choice", json={"choice": option})
        assert made.status_code == 200 and made.json()["choices_submitted"] == 1
        waiting = (await bare.get("/api/waiting_for")).json()["waiting_for"]
        assert [w["player_id"] for w in waiting] == [party[1].player_id]

        forged = http_client(server.url, headers={"Authorization": "Bearer not-a-token"})
        refused = await forged.get("/api/game_state")
        assert refused.status_code == 401 and error_of(refused) == "AUTH_REQUIRED"
        await forged.aclose()
    finally:
        await bare.aclose()
        await close_all(party)


@pytest.mark.parametrize("choice", [["a", "b"], {"option_id": "x"}, 7, True, None])
async def test_a_legacy_choice_that_is_not_a_string_is_a_validation_error(server: LiveServer, choice: object) -> None:
    party = await seat_party(server, ["Ann", "Ben"])
    await play_to_first_turn(party)
    before = await last_seq(server, party[0].game_code)
    response = await party[0].client.post("/api/make_choice", json={"choice": choice})
    assert response.status_code == 400, response.text
    assert error_of(response) == "VALIDATION_ERROR"
    assert await last_seq(server, party[0].game_code) == before
    assert (await party[0].view())["my_choice"] is None
    await close_all(party)
