"""Players on networks that break websockets, or SSE too, play the same game on the fallbacks."""

from __future__ import annotations

import pytest

from tests.browser.harness import Table, expect
from tests.browser.party import play_to_the_end, seat_four

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_blocked_websocket_falls_back_to_sse_and_a_blocked_sse_to_long_polling(table: Table) -> None:
    # Cora's proxy drops websockets (all of /socket.io/); Dag's drops event streams as well.
    seats, _ = await seat_four(table, blocks=((), (), ("websocket",), ("websocket", "sse")))
    ann, bram, cora, dag = seats
    await ann.wait_connected("connected")
    await bram.wait_connected("connected")
    await cora.wait_connected("fallback")
    await dag.wait_connected("fallback")
    assert [await seat.transport() for seat in seats] == ["socketio", "socketio", "sse", "poll"]
    await expect(cora.page.locator("#connection-label")).to_have_text("Connected · SSE fallback")
    await expect(dag.page.locator("#connection-label")).to_have_text("Connected · long-poll fallback")
    await expect(dag.page.locator("#toasts")).to_contain_text("playing over the long-poll fallback")
    for seat in seats:
        await expect(seat.page.locator("#online-count")).to_have_text("4/4 online")

    await play_to_the_end(seats)

    for seat in seats:
        assert await seat.client_log() == await seat.visible_log(), f"{seat.name}'s events differ from the log"

    # What worked is remembered: Dag's next visit goes straight to long-polling.
    assert await dag.page.evaluate("JSON.parse(localStorage.getItem('arcane.transport')).transport") == "poll"
    await dag.page.reload()
    await dag.wait_connected("fallback")
    assert await dag.page.evaluate("window.arcane.client.ladder()") == ["poll"]
    assert await dag.transport() == "poll"
    await expect(dag.page.locator("#game-over")).to_be_visible()


async def test_the_transport_can_be_chosen_in_the_address(table: Table) -> None:
    ann = await table.seat("Ann")
    code = await ann.create_game()
    for transport, state in (("poll", "fallback"), ("sse", "fallback"), ("socketio", "connected")):
        await ann.page.goto(f"/game/{code}?transport={transport}")
        await ann.wait_connected(state)
        assert await ann.transport() == transport
        assert await ann.page.evaluate("window.arcane.client.ladder()") == [transport]
        await ann.say(f"over {transport}")
        await expect(ann.page.locator("#chat-log .chat-text").last).to_have_text(f"over {transport}")
    # The chat of earlier visits is rebuilt from the log on every load.
    await expect(ann.page.locator("#chat-log .chat-text")).to_have_text(["over poll", "over sse", "over socketio"])
