"""What SSE and long-poll share: a feed owned by one HTTP request that ends with the server."""

from __future__ import annotations

from arcane import stats
from arcane.errors import validation
from arcane.feed import CURSOR_MAX, EPOCH_MAX, Feed
from arcane.game.records import Identity
from arcane.transports import Services


class Following:
    """A bounded feed of `ident`'s game, closed when the request ends or shutdown begins.

    Closing the feed ends its pump (arcane/transports.py), which tells its transport,
    so an open stream or a waiting poll ends promptly and hypercorn is not held up. A
    class rather than a generator-based context manager: an open stream keeps no
    generator frame for it.
    """

    __slots__ = ("_rt", "_feed", "_kind")

    def __init__(self, rt: Services, ident: Identity, kind: str) -> None:
        self._rt = rt
        self._kind = kind  # sse or longpoll: counted open (/metrics)
        self._feed = Feed(rt.bus, ident, store=rt.store, snapshot=rt.service.view,
                          maxsize=rt.settings.stream_buffer)

    async def __aenter__(self) -> Feed:
        if self._rt.closing.is_set():
            self._feed.close()
        self._rt.followers.add(self._feed)  # a set, not a task per stream: begin_shutdown closes them all
        stats.open_streams[self._kind] += 1
        stats.open_by_game[(self._feed.ident.game_code, self._kind)] += 1
        return self._feed

    async def __aexit__(self, *exc: object) -> None:
        stats.open_streams[self._kind] -= 1
        key = (self._feed.ident.game_code, self._kind)
        stats.open_by_game[key] -= 1
        if stats.open_by_game[key] <= 0:
            del stats.open_by_game[key]
        self._rt.followers.discard(self._feed)
        self._feed.close()


def parse_cursor(raw: str | None) -> int | None:
    """A seq cursor from the wire, or None when absent or not a whole number in 0..CURSOR_MAX."""
    if raw is None:
        return None
    raw = raw.strip()
    # The length bound first: int() of a long run of digits costs time quadratic in its length.
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(CURSOR_MAX)):
        return None
    cursor = int(raw)
    return cursor if cursor <= CURSOR_MAX else None


def epoch_param(raw: str | None) -> str | None:
    """The `epoch` a client sends with its cursor; None when it sends none."""
    if raw is None or raw == "":
        return None
    if len(raw) > EPOCH_MAX:
        raise validation(f"epoch is at most {EPOCH_MAX} characters (the epoch of your last answer)")
    return raw
