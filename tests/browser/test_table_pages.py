"""The game at the table, in real Chromium: four players and a spectator, the outcome as its
own step in view at 1366x768 and on a phone, secrets that differ, the clock, a vote to skip,
the host's hand-off, the recap and playing again. Screenshots of every phase: test-output/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.browser.harness import PHONE, Browser, Seat, Table, expect, table_with

pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDE = {"width": 1366, "height": 768}
IN_VIEW = """(id) => {
  const box = document.getElementById(id).getBoundingClientRect();
  return box.top >= 0 && box.top < window.innerHeight && box.height > 0;
}"""


async def in_view(seat: Seat, element_id: str) -> bool:
    return bool(await seat.page.evaluate(IN_VIEW, element_id))


async def scroll_to_bottom(seat: Seat) -> None:
    await seat.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")


async def seat_party(table: Table, names: tuple[str, ...], viewports: dict[str, dict[str, int]]) -> tuple[list[Seat], str]:
    seats = [await table.seat(name, viewport=viewports.get(name, WIDE)) for name in names]
    code = await seats[0].create_game()
    for seat in seats[1:]:
        await seat.join_game(code)
    for seat in seats:
        await expect(seat.page.locator("#lobby-count")).to_contain_text(f"{len(seats)} of")
    return seats, code


async def to_first_turn(seats: list[Seat], shots: Path | None = None) -> None:
    await seats[0].page.get_by_role("button", name="Begin the interrogation").click()
    for seat in seats:
        await seat.answer_interrogation()
    # The last player judged, whose answer also began the first turn, sees their class too.
    last = seats[-1]
    await expect(last.page.locator("#class-result")).to_be_visible()
    await expect(last.page.locator("#my-class")).not_to_be_empty()
    await expect(last.page.locator("#to-first-scene")).to_be_enabled()
    if shots:
        await last.shot(shots, "01b-class-revealed", full_page=False)
    for seat in seats:
        await seat.wait_turn(1)


async def test_a_turn_is_a_moment_and_the_party_plays_again(table: Table, shots: Path) -> None:
    (ann, bram, cora, dag), code = await seat_party(table, ("Ann", "Bram", "Cora", "Dag"), {"Dag": PHONE})
    # A spectator finds the game from the home page's Watch button.
    sam = await table.seat("Sam")
    await sam.page.goto("/")
    form = sam.page.locator("#join-form")
    await form.get_by_label("Your name").fill("Sam")
    await form.get_by_label("Game code").fill(code)
    await form.get_by_role("button", name="Watch as a spectator").click()
    await sam.page.wait_for_url(f"**/game/{code}")
    await expect(sam.page.locator("#role-chip")).to_have_text("Spectating")
    await expect(ann.page.locator("#watching")).to_have_text("1 watching")
    await expect(ann.page.locator("#watch-link")).to_have_attribute("href", f"/game/{code}?watch=1")
    await ann.shot(shots, "01-lobby")

    await to_first_turn([ann, bram, cora, dag], shots)
    await expect(sam.page.locator("#scene")).to_be_visible()
    # The spectator sees the options, read-only.
    await expect(sam.page.locator("#options .option")).not_to_have_count(0)
    await expect(sam.page.locator("#options .option").first).to_be_disabled()
    await expect(sam.page.locator("#watching-note")).to_be_visible()
    # Four players, four classes, four different whispers.
    whispers = [await s.page.locator("#whisper-text").text_content() for s in (ann, bram, cora, dag)]
    assert len(set(whispers)) == 4, whispers
    await expect(ann.page).to_have_title(f"Your move · Game {code} · The Arcane Codex")
    await expect(ann.page.locator("#turnbar")).to_contain_text("Turn 1 · 0/4 chosen")
    await expect(ann.page.locator("#turnbar-cue")).to_be_visible()
    # On the phone the scene and every option fill the first screen, above the tabs.
    room = await dag.page.evaluate("""() => {
      const options = [...document.querySelectorAll('#options .option')];
      const tabs = document.getElementById('sheet-tabs').getBoundingClientRect();
      return [Math.max(...options.map((o) => o.getBoundingClientRect().bottom)), tabs.top,
              document.getElementById('scene-title').textContent];
    }""")
    assert room[0] <= room[1], f"on the phone an option is below the first screen: {room}"
    await ann.shot(shots, "02-scene-laptop", full_page=False)
    await dag.shot(shots, "02-scene-phone", full_page=False)
    await sam.shot(shots, "02-spectator", full_page=False)

    # Everyone scrolls down to choose; the last choice resolves the turn.
    for seat in (ann, bram, cora, dag):
        await scroll_to_bottom(seat)
    await ann.choose_option(0)
    await bram.choose_option(0)
    await cora.choose_freely("I slip away to search the cellar.")
    await scroll_to_bottom(dag)
    await dag.choose_option(0, last=True)
    for seat in (ann, dag):  # the laptop at 1366x768 and the phone: the outcome is in view
        await expect(seat.page.locator("#outcome")).to_be_visible()
        await seat.page.wait_for_function(IN_VIEW, arg="outcome")
        assert await in_view(seat, "resolution-heading")
    await expect(ann.page.locator("#turn-choices li")).to_have_count(4)
    await expect(ann.page.locator("#turn-choices")).to_contain_text("Cora chose I slip away to search the cellar.")
    await expect(ann.page.locator("#trust-change-text")).to_contain_text("Party trust")
    await ann.shot(shots, "03-outcome-laptop", full_page=False)
    await dag.shot(shots, "03-outcome-phone", full_page=False)

    # Then on to the next scene, scrolled to its top.
    for seat in (ann, bram, cora, dag):
        await seat.wait_turn(2)
    for seat in (ann, dag):
        await seat.page.wait_for_function(IN_VIEW, arg="scene-title")
    # The phone keeps party and chat behind tabs, with an unread count.
    await cora.say("The cellar had a door.")
    await expect(dag.page.locator("#unread")).to_have_text("1")
    await dag.page.locator("#tab-chat").click()
    await expect(dag.page.locator("#chat-log")).to_be_visible()
    await expect(dag.page.locator("#unread")).to_be_hidden()
    await dag.shot(shots, "04-phone-chat-sheet", full_page=False)
    await dag.page.locator("#tab-chat").click()

    for seat in (ann, bram, cora):
        await seat.choose_option(0)
    await dag.choose_option(0, last=True)
    for seat in (ann, bram, sam):
        await expect(seat.page.locator("#game-over")).to_be_visible()
        await expect(seat.page.locator("#recap-turns > li")).to_have_count(2)
    await expect(ann.page.locator("#recap-turns .recap-whisper")).to_have_count(8)
    await expect(ann.page.locator("#recap-turns")).to_contain_text("The cellar had a door.")
    await ann.shot(shots, "05-game-over-and-recap")

    # Play again: Ann asks first, Bram follows her into the same new lobby.
    await ann.page.get_by_role("button", name="Play again with this party").click()
    await ann.page.wait_for_url("**/game/*")
    await expect(ann.page.locator("#lobby")).to_be_visible()
    new_code = ann.page.url.rsplit("/", 1)[-1]
    assert new_code != code
    await expect(bram.page.locator("#rematch")).to_have_text("Join the new game with this party")
    await bram.page.locator("#rematch").click()
    await bram.page.wait_for_url(f"**/game/{new_code}")
    await expect(bram.page.locator("#players .player-name")).to_have_text(["Ann", "Bram", "Cora", "Dag"])
    await expect(ann.page.get_by_role("button", name="Begin the interrogation")).to_be_visible()
    await bram.shot(shots, "06-rematch-lobby")


async def test_a_host_who_goes_hands_the_lobby_on(table: Table, shots: Path) -> None:
    (ann, bram, cora), _ = await seat_party(table, ("Ann", "Bram", "Cora"), {})
    await expect(bram.page.locator("#lobby-wait")).to_have_text("Waiting for Ann, the host, to begin…")
    await ann.context.close()  # the host's tab is gone, past the grace period
    await expect(bram.page.get_by_role("button", name="Begin the interrogation")).to_be_visible()
    await expect(cora.page.locator("#lobby-wait")).to_have_text("Waiting for Bram, the host, to begin…")
    await bram.shot(shots, "01-new-host")
    table.seats.remove(ann)


async def test_the_party_votes_to_skip_a_player_who_left(table: Table, shots: Path) -> None:
    (ann, bram, cora), _ = await seat_party(table, ("Ann", "Bram", "Cora"), {})
    await to_first_turn([ann, bram, cora])
    await cora.context.close()
    table.seats.remove(cora)
    await ann.choose_option(0)
    await bram.choose_option(0)
    skip = ann.page.locator("#players .skip")
    await expect(skip).to_have_text("Vote to skip")
    await ann.shot(shots, "01-away")
    await skip.click()
    await expect(bram.page.locator("#players .skip")).to_have_text("Skip (1/2)")
    await bram.page.locator("#players .skip").click()
    await expect(ann.page.locator("#outcome")).to_contain_text("Cora hesitated")
    await expect(ann.page.locator("#turn-choices")).to_contain_text("Cora hesitated")
    await ann.shot(shots, "02-skipped")


@pytest_asyncio.fixture(loop_scope="module")
async def clocked(tmp_path: Path, browser: Browser) -> AsyncIterator[Table]:
    async with table_with(browser, tmp_path, turn_timeout=6) as table:
        yield table


async def test_the_clock_resolves_a_turn(clocked: Table, shots: Path) -> None:
    (ann, bram), _ = await seat_party(clocked, ("Ann", "Bram"), {"Bram": PHONE})
    await to_first_turn([ann, bram])
    await expect(ann.page.locator("#turn-clock")).to_contain_text("left")
    await expect(bram.page.locator("#turnbar")).to_contain_text("0/2 chosen · 0:0")
    await bram.shot(shots, "01-clock-phone", full_page=False)
    await ann.choose_option(0)
    await expect(ann.page.locator("#outcome")).to_contain_text("Bram hesitated", timeout=20_000)
    await ann.shot(shots, "02-time-is-up", full_page=False)



async def test_a_code_with_no_game_leads_home(table: Table, shots: Path) -> None:
    ann = await table.seat("Ann")
    await ann.page.goto("/game/ZZZZ99")
    await expect(ann.page.locator("#join")).to_be_visible()  # a stranger is offered a seat...
    await expect(ann.page.locator("#connection")).to_be_hidden()
    await ann.page.get_by_label("Your name").fill("Ann")
    await ann.page.get_by_role("button", name="Take a seat").click()
    await expect(ann.page.locator("#loading")).to_contain_text("There is no game with this code")  # ...then told
    await expect(ann.page.locator("#connection")).to_be_hidden()  # nothing to connect to: no "Connecting…"
    await ann.shot(shots, "01-no-game")
    await ann.page.get_by_role("link", name="Back to the start").click()
    await ann.page.wait_for_url("**/")
    await expect(ann.page.get_by_role("button", name="Create game")).to_be_visible()


async def test_a_long_name_is_cut_with_an_ellipsis(table: Table, shots: Path) -> None:
    long_name = "Bartholomew the Unyielding III"  # 30 characters, the most a name may have
    assert len(long_name) == 30
    ann = await table.seat("Ann")
    code = await ann.create_game()
    bart = await table.seat(long_name)
    await bart.join_game(code)
    name = ann.page.locator("#players .player-name", has_text="Bartholomew")
    await expect(name).to_be_visible()
    fits = await name.evaluate("""(el) => {
      const style = getComputedStyle(el);
      const party = document.getElementById('party-panel').getBoundingClientRect();
      const box = el.getBoundingClientRect();
      return style.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth
        && box.right <= party.right && box.height < 2 * parseFloat(style.lineHeight || '20');
    }""")
    assert fits, "a 30-character name is not cut inside the party list"
    await ann.shot(shots, "01-long-name", full_page=False)
