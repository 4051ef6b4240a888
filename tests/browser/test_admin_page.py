"""The admin dashboard in Chromium: sign in with the token, see the live games, open one,
end it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.browser.harness import Browser, Table, expect, table_with
from tests.support import play_to_first_turn, seat_party

pytestmark = pytest.mark.asyncio(loop_scope="module")
TOKEN = "admin-page-token-" + "z" * 20


@pytest_asyncio.fixture(loop_scope="module")
async def operated(tmp_path: Path, browser: Browser) -> AsyncIterator[Table]:
    async with table_with(browser, tmp_path, admin_token=TOKEN) as table:
        yield table


async def test_an_operator_signs_in_sees_the_games_and_ends_one(operated: Table, shots: Path) -> None:
    server = operated.server
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    await play_to_first_turn([ann, bob])
    await seat_party(server, ["Cyd"])  # a lobby
    operator = await operated.seat("Operator")
    page = operator.page
    await page.goto("/admin")
    await expect(page.locator("#sign-in")).to_be_visible()
    await page.get_by_label("Admin token (ARCANE_ADMIN_TOKEN)").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_have_text("That is not the admin token.")
    await page.get_by_label("Admin token (ARCANE_ADMIN_TOKEN)").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect(page.locator("#games-body tr")).to_have_count(2)
    await expect(page.locator(f"#games-body tr[data-code='{ann.game_code}']")).to_contain_text("playing")
    await expect(page.locator("#processes-body tr")).to_have_count(1)
    await operator.shot(shots, "01-dashboard")

    await page.locator(f"#games-body tr[data-code='{ann.game_code}'] button").click()
    await expect(page.locator("#game-heading")).to_have_text(f"Game {ann.game_code}")
    # Each player's class and whisper: private, and marked so.
    await expect(page.locator("#game-log li.private")).to_have_count(4)
    await expect(page.locator("#game-log li.private", has_text="whisper")).to_have_count(2)
    await operator.shot(shots, "02-a-game-and-its-log")
    await page.get_by_placeholder("Why it ends (the players see this)").fill("closing for the night")
    await page.get_by_role("button", name="End this game").click()
    await page.get_by_role("button", name="Really end it?").click()
    await expect(page.locator("#game-summary")).to_contain_text("ended: ended")
    assert (await ann.view())["phase"] == "finished"
    await operator.shot(shots, "03-ended")
    for player in (ann, bob):
        await player.close()
