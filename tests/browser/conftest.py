"""Fixtures for the browser suites: one headless Chromium per module, a live server per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

pytest.importorskip("playwright.async_api", reason="install the test extra: pip install -e '.[test]'")

from tests.browser.harness import Browser, Table, launch_browser, output_dir  # noqa: E402
from tests.support import LiveServer, serving  # noqa: E402


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with launch_browser() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="module")
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    # A short game: two questions each, two turns.
    async with serving(tmp_path, turns_per_game=2, questions_per_player=2) as live:
        yield live


@pytest_asyncio.fixture(loop_scope="module")
async def table(browser: Browser, server: LiveServer) -> AsyncIterator[Table]:
    """The players of one test; their browser contexts close before the server stops."""
    seated = Table(browser, server)
    try:
        yield seated
        assert seated.page_errors() == [], "uncaught errors in the pages"
    finally:
        await seated.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    """Where this test's screenshots go: test-output/<module>/<test>/ (or under $ARCANE_TEST_OUTPUT)."""
    folder = output_dir() / request.node.module.__name__.rsplit(".", 1)[-1] / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder
