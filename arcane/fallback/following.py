"""What SSE and long-poll share: a feed owned by one HTTP request that ends with the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

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
    if rt.closing.is_set():
        feed.close()
    rt.followers.add(feed)  # a set, not a task per stream: begin_shutdown closes them all
    try:
        yield feed
    finally:
        rt.followers.discard(feed)
        feed.close()


def parse_cursor(raw: str | None) -> int | None:
    """A seq cursor from the wire, or None when absent or not a whole number >= 0."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)
