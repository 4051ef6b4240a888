"""Player text is only ever text: HTML in a name or a chat line is shown, never run."""

from __future__ import annotations

import pytest

from tests.browser.harness import Table, expect

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVIL = "<img src=x onerror=alert(1)>"


async def test_html_in_a_name_and_a_chat_message_renders_as_text_and_runs_nothing(table: Table) -> None:
    bram = await table.seat("Bram")
    code = await bram.create_game()
    eve = await table.seat(EVIL)
    requested: list[str] = []
    for seat in (bram, eve):
        seat.context.on("request", lambda request: requested.append(request.url))
    await eve.join_game(code)

    await expect(bram.page.locator("#toasts")).to_contain_text(f"{EVIL} joined the table.")
    await eve.page.get_by_label("Message to the party").press_sequentially("<b>")
    await expect(bram.page.locator("#typing-indicator")).to_have_text(f"{EVIL} is typing…")
    await eve.say(EVIL)
    for seat in (bram, eve):
        await expect(seat.page.locator("#players .player-name")).to_have_text(["Bram", EVIL])
        await expect(seat.page.locator("#chat-log .chat-name")).to_have_text([EVIL])
        await expect(seat.page.locator("#chat-log .chat-text")).to_have_text([EVIL])
        # No element was made from the text, whatever the CSP would have done with its handler.
        assert await seat.page.locator("main img, #toasts img").count() == 0
        assert await seat.page.evaluate("document.querySelectorAll('[onerror]').length") == 0
        assert seat.dialogs == []
    assert not [url for url in requested if url.rstrip("/").endswith("/x")], "the page fetched the injected image"


async def test_pages_forbid_inline_script_and_serve_everything_themselves(table: Table) -> None:
    ann = await table.seat("Ann")
    code = await ann.create_game()
    outside: list[str] = []
    ann.context.on("request", lambda request: None if request.url.startswith(table.server.url)
                   else outside.append(request.url))
    for path in ("/", f"/game/{code}", "/diagnostics"):
        response = await ann.page.goto(path)
        assert response is not None and response.ok
        policy = await response.header_value("content-security-policy") or ""
        assert "script-src 'self'" in policy and "default-src 'self'" in policy, policy
        assert "unsafe-inline" not in policy
    await ann.page.goto(f"/game/{code}")
    await ann.wait_connected("connected")  # the websocket opens under the policy
    assert outside == []
    vendored = await ann.page.request.get("/static/vendor/socket.io-client/socket.io.esm.min.js")
    assert vendored.ok and "Socket.IO v4." in (await vendored.text())[:200]
