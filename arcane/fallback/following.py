"""What SSE and long-poll share: a feed owned by one HTTP request that ends with the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from arcane.feed import Feed
from arcane.game.records import Identity

if TYPE_CHECKING:
    from arcane.runtime import Runtime


@asynccontextmanager
async def follow(rt: Runtime, ident: Identity) -> AsyncIterator[Feed]:
    """A bounded feed of `ident`'s game, closed when the request ends or shutdown begins.

    Closing the feed wakes whoever waits on it (`Feed.next` answers None with
    `feed.closed` set), so an open stream or a waiting poll ends promptly and
    hypercorn is not held up.
    """
    feed = Feed(rt.bus, ident, maxsize=rt.settings.stream_buffer)

    def on_shutdown(task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            feed.close()

    shutdown = asyncio.ensure_future(rt.closing.wait())
    shutdown.add_done_callback(on_shutdown)
    try:
        yield feed
    finally:
        shutdown.cancel()
        feed.close()


def parse_cursor(raw: str | None) -> int | None:
    """A seq cursor from the wire, or None when absent or not a whole number >= 0."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
