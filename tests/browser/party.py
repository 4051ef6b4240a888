"""A whole game played through the pages: the moves every browser suite shares."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.browser.harness import PHONE, Seat, Table, expect

NAMES = ("Ann", "Bram", "Cora", "Dag")


async def seat_four(table: Table, shots: Path | None = None,
                    blocks: tuple[tuple[str, ...], ...] = ((), (), (), ())) -> tuple[list[Seat], str]:
    """Ann creates a game from the home page; Bram, Cora and Dag join it by its code."""
    # Dag plays on a phone.
    seats = [await table.seat(name, block=block, viewport=PHONE if name == "Dag" else None)
             for name, block in zip(NAMES, blocks, strict=True)]
    ann = seats[0]
    await ann.page.goto("/")
    if shots:
        await ann.shot(shots, "01-home")
    code = await ann.create_game()
    for seat in seats[1:]:
        await seat.join_game(code)
    for seat in seats:
        await expect(seat.page.locator("#lobby-count")).to_have_text("4 of 4 companions have gathered.")
    return seats, code


async def play_to_the_end(seats: list[Seat], shots: Path | None = None) -> None:
    """Start, be interrogated, then play both turns: chat, whispers, choices, resolutions."""
    ann, bram, cora, dag = seats
    await expect(ann.page.get_by_role("button", name="Begin the interrogation")).to_be_visible()
    await expect(bram.page.locator("#lobby-wait")).to_be_visible()
    if shots:
        await ann.shot(shots, "02-lobby")
    await ann.page.get_by_role("button", name="Begin the interrogation").click()
    for seat in seats:
        await expect(seat.page.locator("#question-progress")).to_have_text("Question 1 of 2")
    if shots:
        await bram.shot(shots, "03-interrogation")
    classes = await asyncio.gather(*(seat.answer_interrogation() for seat in seats))
    assert all(c in {"Fighter", "Thief", "Cleric", "Mage"} for c in classes), classes

    for turn in (1, 2):
        for seat in seats:
            await seat.wait_turn(turn)
            whisper = await seat.page.locator("#whisper-text").text_content()
            assert whisper and "not spoken" not in whisper, f"{seat.name} has no whisper on turn {turn}"
            await expect(seat.page.locator("#whisper .private-badge")).to_be_visible()
        # Whispers are secret: each page shows its own class's whisper only.
        if turn == 1 and shots:
            await ann.shot(shots, "04-scene-and-whisper")
            await dag.shot(shots, "04-scene-phone")

        await cora.say(f"Turn {turn}: my whisper says we can trust the innkeeper.")
        for seat in seats:
            await expect(seat.page.locator("#chat-log .chat-text").last).to_have_text(
                f"Turn {turn}: my whisper says we can trust the innkeeper.")

        await ann.choose_option(0)
        await bram.choose_option(0)
        for seat in seats:
            await expect(seat.page.locator("#progress-label")).to_have_text("2 of 4 have chosen")
            await expect(seat.page.locator("#still-choosing")).to_have_text("Still choosing: Cora, Dag")
        assert await ann.page.locator("#choice-progress").get_attribute("value") == "2"
        if turn == 1 and shots:
            await cora.shot(shots, "05-choice-progress")
        await cora.choose_freely(f"I slip away to search the cellar (turn {turn}).")
        await dag.choose_option(1, last=True)
        for seat in seats:
            await expect(seat.page.locator("#resolution-heading")).to_have_text(f"Turn {turn}: what came of it")
            await expect(seat.page.locator("#turn-choices li")).to_have_count(4)
        await expect(ann.page.locator("#turn-choices")).to_contain_text(
            f"Cora chose I slip away to search the cellar (turn {turn}).")
        if turn == 1 and shots:
            await ann.shot(shots, "06-resolution")

    for seat in seats:
        await expect(seat.page.locator("#game-over")).to_be_visible()
        await expect(seat.page.locator("#game-over-text")).to_contain_text("2 turns")
    trusts = {await seat.page.locator("#trust-value").text_content() for seat in seats}
    assert len(trusts) == 1, f"the pages disagree on the party's trust: {trusts}"
    if shots:
        await ann.shot(shots, "07-game-over")
        await dag.shot(shots, "07-game-over-phone")
