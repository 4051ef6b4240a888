"""Players at real browsers: headless Chromium through Playwright, one context per player.

Debian's `chromium` from PATH is used when present, else Playwright's own build (after
`playwright install chromium`); with neither, the tests skip (outside CI) or fail (in CI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import (
    Browser, BrowserContext, ConsoleMessage, Dialog, Page, Playwright, Route, WebSocketRoute,
    async_playwright, expect,
)

from tests.support import LiveServer, require_tool
from tests.logs import events_after

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 860}
# Generous: two cores run the server, Chromium and four players' pages at once.
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)

__all__ = ["Browser", "LAPTOP", "PHONE", "Page", "Seat", "Table", "expect", "launch_browser", "output_dir", "table_with"]


def output_dir() -> Path:
    return Path(os.environ.get("ARCANE_TEST_OUTPUT") or ROOT / "test-output")


def chromium_path(playwright: Playwright) -> str | None:
    """Debian's chromium when on PATH; else Playwright's own build if installed; else None."""
    system = shutil.which("chromium")
    if system is not None:
        return system
    bundled = Path(playwright.chromium.executable_path)
    return None if not bundled.exists() else str(bundled)


@asynccontextmanager
async def launch_browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        path = chromium_path(playwright)
        if path is None:
            require_tool("chromium")  # skips, or fails in CI, with the reason
        browser = await playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class Table:
    """Everyone at one game's table, each in their own browser context; closed at the end of a test."""

    def __init__(self, browser: Browser, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.seats: list[Seat] = []

    async def seat(self, name: str, *, viewport: dict[str, int] | None = None, block: tuple[str, ...] = (),
                   switchable: bool = False) -> Seat:
        seat = await Seat.open(self.browser, self.server, name, viewport=viewport, block=block)
        self.seats.append(seat)
        if switchable:
            await seat.switchable_network()
        return seat

    def page_errors(self) -> list[str]:
        return [f"{seat.name}: {error}" for seat in self.seats for error in seat.errors]

    async def close(self) -> None:
        for seat in self.seats:
            await seat.close()
        self.seats.clear()


@dataclass
class Seat:
    """One player: a browser context (their cookies and storage) and the pages (tabs) they opened."""

    name: str
    context: BrowserContext
    server: LiveServer
    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    identity: tuple[str, str] | None = None
    _offline: bool = False
    _tasks: set[asyncio.Future[None]] = field(default_factory=set, repr=False)

    @classmethod
    async def open(cls, browser: Browser, server: LiveServer, name: str, *, viewport: dict[str, int] | None = None,
                   block: tuple[str, ...] = ()) -> Seat:
        context = await browser.new_context(base_url=server.url, viewport=viewport or LAPTOP)
        context.set_default_timeout(WAIT_MS)
        await block_transports(context, block)
        seat = cls(name, context, server, await context.new_page())
        seat.watch(seat.page)
        return seat

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self._console(message))
        page.on("dialog", lambda dialog: self._dialog(dialog))

    def _console(self, message: ConsoleMessage) -> None:
        # A policy violation means the page needs something its own CSP forbids.
        if "Content Security Policy" in message.text or message.text.startswith("handler for"):
            self.errors.append(message.text)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        # An alert would block the page: dismiss it (the test still sees that it happened).
        task = asyncio.ensure_future(dialog.dismiss())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def new_tab(self, path: str) -> Page:
        page = await self.context.new_page()
        self.watch(page)
        await page.goto(path)
        return page

    # -- arriving -------------------------------------------------------------------------------

    async def create_game(self) -> str:
        await self.page.goto("/")
        await self.page.get_by_label("Your name").first.fill(self.name)
        await self.page.get_by_role("button", name="Create game").click()
        await self.page.wait_for_url("**/game/*")
        code, _ = await self.seat()
        return code

    async def join_game(self, code: str, *, query: str = "") -> None:
        await self.page.goto("/" + query)
        form = self.page.locator("#join-form")
        await form.get_by_label("Your name").fill(self.name)
        await form.get_by_label("Game code").fill(code)
        await form.get_by_role("button", name="Join game").click()
        await self.page.wait_for_url(f"**/game/{code}*")
        await self.seat()
        if query:
            await self.page.goto(f"/game/{code}{query}")

    async def switchable_network(self) -> None:
        """Route every request and websocket through a switch (before the pages load: the
        websocket routing is installed into each new document)."""

        async def maybe_refuse(route: Route) -> None:
            await (route.abort() if self._offline else route.fallback())

        async def maybe_refuse_socket(ws: WebSocketRoute) -> None:
            if self._offline:
                await ws.close()
            else:
                ws.connect_to_server()

        await self.context.route("**/*", maybe_refuse)
        await self.context.route_web_socket("**/*", maybe_refuse_socket)

    def cut_network(self) -> None:
        """Every new request and websocket fails from now on (needs switchable_network first)."""
        self._offline = True

    def restore_network(self) -> None:
        self._offline = False

    # -- reading the page ---------------------------------------------------------------------

    async def wait_connected(self, state: str = "connected", page: Page | None = None) -> None:
        await expect((page or self.page).locator("#connection")).to_have_attribute("data-state", state)

    async def transport(self, page: Page | None = None) -> str:
        return str(await (page or self.page).evaluate("window.arcane.client.transport"))

    async def client_log(self, page: Page | None = None) -> list[tuple[int, str]]:
        """The logged events the page's client accepted, in order: (seq, event)."""
        entries = await (page or self.page).evaluate("window.arcane.client.log.map(e => [e.seq, e.event])")
        return [(int(seq), str(name)) for seq, name in entries]

    async def seat(self) -> tuple[str, str]:
        """(game code, player id) of this player's seat, as their game page learned it."""
        if self.identity is None:
            await self.page.wait_for_function("() => !!window.arcane?.table?.me")
            self.identity = (
                str(await self.page.locator("body").get_attribute("data-game-code")),
                str(await self.page.evaluate("window.arcane.table.me.player_id")),
            )
        return self.identity

    async def visible_log(self) -> list[tuple[int, str]]:
        """The truth, from the store: every logged event this player may see, in order."""
        code, player_id = await self.seat()
        events = await events_after(self.server.runtime.services.store, code, 0, player_id)
        return [(e.seq, e.name) for e in events if e.seq is not None]

    async def shot(self, folder: Path, name: str, *, full_page: bool = True) -> Path:
        path = folder / f"{name}.png"
        await self.page.evaluate("window.scrollTo(0, 0)")
        await self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    # -- playing --------------------------------------------------------------------------------

    async def answer_interrogation(self) -> str:
        """Answer every question with its first answer; the class the gods gave."""
        page = self.page
        done = "#class-result:visible, #scene:visible"
        while True:
            await expect(page.locator(f"#question .answer:enabled:visible, {done}").first).to_be_visible()
            if await page.locator(done).count():
                return str(await page.evaluate("window.arcane.table.me.player_class"))
            progress = await page.locator("#question-progress").text_content()
            await page.locator("#answers .answer").first.click()
            await page.wait_for_function(
                "(before) => document.getElementById('question').hidden"
                " || document.getElementById('question-progress').textContent !== before",
                arg=progress,
            )

    async def wait_turn(self, turn: int) -> None:
        """Until the scene of `turn` is on the page; after a resolution seen live, the outcome
        is its own step, and the player moves on to the next scene with its button."""
        page = self.page
        button = "#to-first-scene" if turn == 1 else f"#continue:text-is('On to turn {turn}')"
        onward = page.locator(f"{button}:enabled:visible")
        await expect(page.locator(f"#scene:visible, {button}:enabled:visible").first).to_be_visible()
        if await onward.count():
            await onward.click()
        await expect(page.locator("#turn-label")).to_have_text(f"Turn {turn}")
        await expect(page.locator("#scene")).to_be_visible()

    async def choose_option(self, index: int = 0, *, last: bool = False) -> str:
        """Pick an option; `last`: this choice resolves the turn, so the page moves on at once."""
        turn = await self.page.locator("#turn-label").text_content()
        option = self.page.locator("#options .option").nth(index)
        text = str(await option.text_content())
        await option.click()
        await self._chosen(text, turn, last)
        return text

    async def choose_freely(self, text: str, *, last: bool = False) -> None:
        turn = await self.page.locator("#turn-label").text_content()
        await self.page.get_by_label("Or something else entirely").fill(text)
        await self.page.get_by_role("button", name="Do this instead").click()
        await self._chosen(text, turn, last)

    async def _chosen(self, text: str, turn: str | None, last: bool) -> None:
        if last:
            number = (turn or "").removeprefix("Turn ")
            await expect(self.page.locator("#resolution-heading")).to_have_text(f"Turn {number}: what came of it")
        else:
            await expect(self.page.locator("#my-choice")).to_have_text(f"You chose: {text}")

    async def say(self, text: str) -> None:
        box = self.page.get_by_label("Message to the party")
        await box.press_sequentially(text[:3])
        await box.fill(text)
        await box.press("Enter")
        await expect(box).to_have_value("")

    async def close(self) -> None:
        await self.context.close()


async def block_transports(context: BrowserContext, block: tuple[str, ...]) -> None:
    """Make a network that breaks some transports: "websocket" (all of /socket.io/), "sse"."""
    async def refuse_socket(ws: WebSocketRoute) -> None:
        await ws.close()

    async def refuse(route: Route) -> None:
        await route.abort()

    if "websocket" in block:
        await context.route_web_socket("**/socket.io/**", refuse_socket)
        await context.route("**/socket.io/**", refuse)
    if "sse" in block:
        await context.route("**/api/games/*/events*", refuse)


@asynccontextmanager
async def table_with(browser: Browser, tmp_path: Path, **settings: Any) -> AsyncIterator[Table]:
    """A table on a server of its own settings (the module's `table` fixture has the default
    ones); its pages must raise no error."""
    from tests.support import serving

    async with serving(tmp_path, **{"turns_per_game": 2, "questions_per_player": 2} | settings) as live:
        seated = Table(browser, live)
        try:
            yield seated
            assert seated.page_errors() == [], "uncaught errors in the pages"
        finally:
            await seated.close()
