"""The replay of a finished game, in Chromium: its players step through it; a stranger sees it
once a player shares it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import Table, expect
from tests.support import Player, play_to_first_turn, seat_party

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def finished_game(table: Table) -> tuple[Player, Player]:
    server = table.server
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    await play_to_first_turn([ann, bob])
    for turn in (1, 2):
        assert (await bob.post("/chat", {"text": f"my whisper is true, turn {turn}"})).status_code == 201
        option = (await ann.view())["scenario"]["options"][0]["id"]
        for player in (ann, bob):
            assert (await player.post("/choices", {"option_id": option})).status_code == 200
    assert (await ann.view())["phase"] == "finished"
    return ann, bob


async def test_a_player_steps_through_the_replay_and_shares_it(table: Table, shots: Path) -> None:
    ann, bob = await finished_game(table)
    seat = await table.seat("Ann")
    # Ann's tab holds her seat's token, as the table's page left it (static/js/pages/seats.js).
    await seat.context.add_init_script(f"sessionStorage.setItem('arcane.token.{ann.game_code}', '{ann.token}')")
    await seat.page.goto(f"/games/{ann.game_code}/replay")
    await expect(seat.page.locator("#replay-step")).to_have_text("Turn 1 of 2")
    await expect(seat.page.locator("#replay-whispers li")).to_have_count(2)
    await expect(seat.page.locator("#replay-chat")).to_contain_text("my whisper is true, turn 1")
    await expect(seat.page.locator("#replay-choices li")).to_have_count(2)
    await expect(seat.page.locator("#replay-trap")).to_contain_text("The trap was:")
    await seat.shot(shots, "01-turn-1")
    await seat.page.get_by_role("button", name="Next turn").click()
    await expect(seat.page.locator("#replay-step")).to_have_text("Turn 2 of 2")
    await expect(seat.page.locator("#replay-end")).to_be_visible()

    stranger = await table.seat("Zed")
    await stranger.page.goto(f"/games/{ann.game_code}/replay")
    await expect(stranger.page.locator("#loading")).to_contain_text("unless they share it")
    await seat.page.get_by_role("button", name="Show this replay to anyone with the link").click()
    await expect(seat.page.locator("#replay-share")).to_contain_text("Shared")
    await seat.shot(shots, "02-shared")
    await stranger.page.reload()
    await expect(stranger.page.locator("#replay-step")).to_have_text("Turn 1 of 2")
    await expect(stranger.page.locator("#replay-share")).to_be_hidden()
    await stranger.shot(shots, "03-a-stranger-watches")
    for player in (ann, bob):
        await player.close()
