"""The server restarts mid-turn: every page shows it, comes back, and misses or doubles nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.harness import PHONE, Table, expect
from tests.support import Player

pytestmark = pytest.mark.asyncio(loop_scope="module")
WHILE_AWAY = "Did the candles gutter for you too?"


async def test_a_restart_mid_turn_shows_reconnecting_then_resumes_without_gaps_or_doubles(
    table: Table, shots: Path,
) -> None:
    server = table.server
    ann = await table.seat("Ann")  # the automatic ladder: websocket
    code = await ann.create_game()
    bram = await table.seat("Bram")
    await bram.join_game(code, query="?transport=sse")
    cora = await table.seat("Cora", viewport=PHONE)
    await cora.join_game(code, query="?transport=poll")
    dag = await Player.join(server, code, "Dag")  # the fourth friend plays from another client, over HTTP
    pages = [ann, bram, cora]
    try:
        for seat in pages:
            await expect(seat.page.locator("#lobby-count")).to_have_text("4 of 4 companions have gathered.")
        await ann.page.get_by_role("button", name="Begin the interrogation").click()
        for seat in pages:
            await seat.answer_interrogation()
        await dag.answer_all()
        for seat in pages:
            await seat.wait_turn(1)
        await ann.choose_option(0)
        for seat in pages:
            await expect(seat.page.locator("#progress-label")).to_have_text("1 of 4 have chosen")

        await server.stop()
        for seat in pages:
            await seat.wait_connected("reconnecting")
            await expect(seat.page.locator("#overlay")).to_be_visible()
            await expect(seat.page.locator("#overlay-title")).to_have_text("Reconnecting…")
            await expect(seat.page.locator("#overlay-spinner")).to_be_visible()
        await ann.shot(shots, "reconnecting")
        await cora.shot(shots, "reconnecting-phone", full_page=False)

        await server.start()
        # The pages are still waiting out their backoff: whatever happens now, they must catch up on.
        assert (await dag.post("/chat", {"text": WHILE_AWAY})).status_code == 201
        view = await dag.view()
        assert (await dag.post("/choices", {"option_id": view["scenario"]["options"][1]["id"]})).status_code == 200

        for seat, state in zip(pages, ("connected", "fallback", "fallback"), strict=True):
            await seat.wait_connected(state)
            await expect(seat.page.locator("#overlay")).to_be_hidden()
            await expect(seat.page.locator("#toasts")).to_contain_text("Reconnected.")
            await expect(seat.page.locator("#chat-log .chat-text")).to_have_text([WHILE_AWAY])
            await expect(seat.page.locator("#progress-label")).to_have_text("2 of 4 have chosen")
            await expect(seat.page.locator("#still-choosing")).to_have_text("Still choosing: Bram, Cora")
        assert [await seat.transport() for seat in pages] == ["socketio", "sse", "poll"]

        await bram.choose_option(1)
        await cora.choose_option(0, last=True)
        for seat in pages:
            await expect(seat.page.locator("#resolution-heading")).to_have_text("Turn 1: what came of it")
            await seat.wait_turn(2)
        for seat in pages:
            log = await seat.client_log()
            assert len(log) == len(set(log)), f"{seat.name} got events twice: {log}"
            assert log == await seat.visible_log(), f"{seat.name} is missing events"
            assert await seat.page.evaluate("window.arcane.client.reconnects") == 1
    finally:
        await dag.close()


async def test_after_the_last_try_the_page_offers_to_reload(table: Table, shots: Path) -> None:
    server = table.server
    ann = await table.seat("Ann", switchable=True)
    code = await ann.create_game()
    await ann.page.goto(f"/game/{code}?retry_delay=100&retry_tries=3")
    await ann.wait_connected("connected")

    # The server goes down and Ann's network with it: every try fails at once.
    ann.cut_network()
    await server.stop()
    await expect(ann.page.locator("#overlay-title")).to_have_text("Connection failed")
    await ann.wait_connected("offline")
    await expect(ann.page.locator("#overlay-spinner")).to_be_hidden()
    reload = ann.page.get_by_role("button", name="Reload")
    await expect(reload).to_be_focused()
    assert await ann.page.evaluate("window.arcane.client.state") == "failed"
    assert await ann.page.evaluate("window.arcane.client.reconnects") == 0
    await ann.shot(shots, "connection-failed")

    await server.start()
    ann.restore_network()
    await reload.click()
    await ann.wait_connected("connected")
    await expect(ann.page.locator("#overlay")).to_be_hidden()
    await expect(ann.page.locator("#lobby")).to_be_visible()
