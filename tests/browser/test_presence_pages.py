"""Presence on the pages: green while any tab of a player is open, grey once the last one closes."""

from __future__ import annotations

import asyncio

import pytest

from tests.browser.harness import Table, expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

GREEN = "rgb(114, 193, 138)"  # --moss
GREY = "rgb(111, 104, 121)"  # --ash


async def test_closing_the_last_tab_greys_the_dot_while_a_second_tab_keeps_it_green(table: Table) -> None:
    ann = await table.seat("Ann")
    code = await ann.create_game()
    bram = await table.seat("Bram")
    await bram.join_game(code)
    row = ann.page.locator("#players .player", has_text="Bram")
    dot = row.locator(".presence-dot")
    await expect(ann.page.locator("#online-count")).to_have_text("2/2 online")
    await expect(row).to_have_attribute("data-online", "true")
    assert await dot.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN

    # A second tab, on another transport: presence counts connections on every transport.
    second = await bram.new_tab(f"/game/{code}?transport=sse")
    await bram.wait_connected("fallback", page=second)
    await bram.page.close()
    await asyncio.sleep(3 * table.server.settings.presence_grace)  # well past the grace period
    await expect(row).to_have_attribute("data-online", "true")
    await expect(ann.page.locator("#online-count")).to_have_text("2/2 online")
    await expect(ann.page.locator("#toasts")).not_to_contain_text("Bram disconnected.")

    await second.close()
    await expect(row).to_have_attribute("data-online", "false")
    await expect(ann.page.locator("#online-count")).to_have_text("1/2 online")
    await expect(ann.page.locator("#toasts")).to_contain_text("Bram disconnected.")
    assert await dot.evaluate("e => getComputedStyle(e).backgroundColor") == GREY
    await expect(dot).to_have_attribute("aria-label", "offline")

    # Back again: green, and the others are told.
    await bram.new_tab(f"/game/{code}")
    await expect(row).to_have_attribute("data-online", "true")
    await expect(ann.page.locator("#toasts")).to_contain_text("Bram reconnected.")
    await expect(ann.page.locator("#online-count")).to_have_text("2/2 online")
