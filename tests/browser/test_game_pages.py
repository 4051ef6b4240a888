"""Four friends play a whole game through the pages, each in their own browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import PHONE, Table, expect
from tests.browser.party import play_to_the_end, seat_four

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_four_friends_create_join_and_play_a_whole_game(table: Table, shots: Path) -> None:
    seats, code = await seat_four(table, shots)
    ann, bram, cora, dag = seats
    for seat in seats:
        await seat.wait_connected("connected")
        assert await seat.transport() == "socketio"
        await expect(seat.page.locator("#online-count")).to_have_text("4/4 online")
        await expect(seat.page.locator("#players .presence-dot.online")).to_have_count(4)
    await expect(ann.page.locator("#share-link")).to_have_value(f"{table.server.url}/game/{code}")

    # Typing shows on the others' pages, never on the typist's own.
    await bram.page.get_by_label("Message to the party").press_sequentially("hm")
    await expect(ann.page.locator("#typing-indicator")).to_have_text("Bram is typing…")
    await expect(bram.page.locator("#typing-indicator")).to_have_text("")
    await bram.page.get_by_label("Message to the party").fill("")

    await play_to_the_end(seats, shots)

    # The phone-width page fits its screen: nothing wider than the viewport.
    width = await dag.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
    for seat in seats:
        # Every logged event the server let this player see reached the page once, in order.
        assert await seat.client_log() == await seat.visible_log(), f"{seat.name}'s events differ from the log"


async def test_a_friend_opening_the_shared_link_takes_a_seat_there(table: Table) -> None:
    ann = await table.seat("Ann")
    code = await ann.create_game()
    bram = await table.seat("Bram", viewport=PHONE)
    await bram.page.goto(f"/game/{code}")
    await expect(bram.page.locator("#join-heading")).to_have_text(f"Join game {code}")
    await bram.page.get_by_label("Your name").fill("Bram")
    await bram.page.get_by_role("button", name="Take a seat").click()
    await expect(bram.page.locator("#lobby-count")).to_have_text("2 of 4 companions have gathered.")
    await expect(ann.page.locator("#players .player-name")).to_have_text(["Ann", "Bram"])
    await expect(ann.page.locator("#toasts")).to_contain_text("Bram joined the table.")


async def test_home_refuses_a_code_that_names_no_game(table: Table) -> None:
    ann = await table.seat("Ann")
    await ann.page.goto("/")
    form = ann.page.locator("#join-form")
    await form.get_by_label("Your name").fill("Ann")
    await form.get_by_label("Game code").fill("ZZZZZZ")
    await form.get_by_role("button", name="Join game").click()
    await expect(ann.page.locator("#join-error")).to_have_text("There is no game with that code.")
    assert ann.page.url.endswith("/")


async def test_a_latecomer_may_watch_but_not_act(table: Table) -> None:
    ann = await table.seat("Ann")
    code = await ann.create_game()
    await ann.page.get_by_role("button", name="Begin the interrogation").click()
    await expect(ann.page.locator("#question-progress")).to_have_text("Question 1 of 2")

    zed = await table.seat("Zed")
    await zed.page.goto(f"/game/{code}")
    await zed.page.get_by_label("Your name").fill("Zed")
    await zed.page.get_by_role("button", name="Take a seat").click()
    await expect(zed.page.locator("#join-error")).to_have_text("That tale has already begun. You can still watch.")
    await zed.page.get_by_role("button", name="Watch as a spectator").click()
    await zed.wait_connected("connected")
    await expect(zed.page.locator("#role-chip")).to_have_text("Spectating")
    await expect(ann.page.locator("#watching")).to_have_text("1 watching")
    await expect(zed.page.locator("#interrogation")).to_be_visible()
    await expect(zed.page.locator("#interrogation-wait")).to_have_text("Still before the gods: Ann")
    await expect(zed.page.locator("#question")).to_be_hidden()
    await expect(zed.page.locator("#chat-form")).to_be_hidden()
    await expect(zed.page.locator("#players .player-name")).to_have_text(["Ann"])
    await ann.say("Is someone watching us?")
    await expect(zed.page.locator("#chat-log .chat-text")).to_have_text(["Is someone watching us?"])
