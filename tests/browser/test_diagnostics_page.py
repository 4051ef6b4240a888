"""The diagnostics page: connect on a chosen transport, send events, watch raw events, seq and latency."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.harness import Table, expect

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_diagnostics_connects_sends_and_shows_the_raw_events(table: Table, shots: Path) -> None:
    ann = await table.seat("Ann")
    code = await ann.create_game()  # the session cookie identifies the page's client
    page = ann.page
    await page.goto(f"/diagnostics?game={code}&transport=poll")
    await page.get_by_role("button", name="Connect", exact=True).click()
    await ann.wait_connected("fallback")
    await expect(page.locator("#stat-transport")).to_have_text("long-poll fallback")
    await expect(page.locator("#raw-log li[data-direction=in][data-event=reconnect_sync]")).to_have_count(1)
    await expect(page.locator("#stat-seq")).to_have_text(str((await ann.visible_log())[-1][0]))

    await page.get_by_label("Event", exact=True).fill("chat_message")
    await page.get_by_label("Payload (JSON)").fill('{"text": "testing, testing"}')
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#send-result")).to_contain_text('"ok": true')
    chat = page.locator("#raw-log li[data-direction=in][data-event=chat_message]")
    await expect(chat).to_contain_text("testing, testing")
    seq = (await ann.visible_log())[-1][0]
    await expect(chat).to_have_attribute("data-seq", str(seq))
    await expect(page.locator("#stat-seq")).to_have_text(str(seq))

    await page.get_by_role("button", name="Ping").click()
    await expect(page.locator("#stat-latency")).to_have_text(re.compile(r"^\d+ ms$"))

    # An event with no HTTP equivalent is refused on the fallback, with the reason.
    await page.get_by_label("Event", exact=True).fill("leave_game_room")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#send-result")).to_contain_text("UNSUPPORTED")

    # The same page on Socket.IO: raw events go through the socket, acks and all.
    await page.get_by_label("Transport").select_option("socketio")
    await page.get_by_label("Resume after seq").fill(str(seq))
    await page.get_by_role("button", name="Connect", exact=True).click()
    await ann.wait_connected("connected")
    await page.get_by_label("Event", exact=True).fill("ping")
    await page.get_by_label("Payload (JSON)").fill("")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#send-result")).to_contain_text('"timestamp"')
    await expect(page.locator("#raw-log li[data-direction=in][data-event=pong]")).to_have_count(1)
    await page.get_by_label("Event", exact=True).fill("make_choice")
    await page.get_by_label("Payload (JSON)").fill('{"option_id": "a"}')
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#send-result")).to_contain_text("WRONG_PHASE")
    await ann.shot(shots, "diagnostics")
