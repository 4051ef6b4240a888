"""The last few logged events of each game, kept in memory from the bus.

A client that reconnects or polls usually asks for what followed a seq it saw a
moment ago. Those catch-ups are answered from here instead of a read of SQLite,
which under a storm of reconnects or a crowd of long-pollers is the bottleneck.

The events are the log's own, as committed and published (in seq order); a game's
ring holds a run of consecutive seqs only, and never more events than the log
keeps (`ARCANE_LOG_RETENTION`), so it answers only what the log would answer the
same way. Anything it does not cover goes to the log as before.
"""

from __future__ import annotations

from collections import deque

from arcane.events import Event

PER_GAME = 64
GAMES = 4096


class RecentEvents:
    def __init__(self, *, per_game: int = PER_GAME, games: int = GAMES) -> None:
        self._per_game = per_game
        self._games_max = games
        self._rings: dict[str, deque[Event]] = {}

    def record(self, event: Event) -> None:
        """Every published event, in publish order; ephemeral ones are not kept."""
        seq = event.seq
        if seq is None:
            return
        ring = self._rings.get(event.game_code)
        if ring is not None and seq == ring[-1].seq + 1:  # type: ignore[operator]
            ring.append(event)
        elif ring is None or seq > ring[-1].seq:  # type: ignore[operator]
            # New here, or events were missed (another process's overtook them on Redis):
            # start again from this one, so the ring never has a hole.
            self._rings.pop(event.game_code, None)
            if len(self._rings) >= self._games_max:
                del self._rings[next(iter(self._rings))]  # the game heard from longest ago
            self._rings[event.game_code] = deque((event,), maxlen=self._per_game)

    def forget(self, game_code: str | None = None) -> None:
        """Events may have been missed (Redis was away): trust the log only."""
        if game_code is None:
            self._rings.clear()
        else:
            self._rings.pop(game_code, None)

    def since(self, game_code: str, after: int, viewer: str | None) -> tuple[int, list[Event]] | None:
        """(last seq, the events `viewer` may see with seq > after), when the ring covers
        everything after `after`; None when only the log can tell."""
        ring = self._rings.get(game_code)
        if ring is None or not ring[0].seq - 1 <= after <= ring[-1].seq:  # type: ignore[operator]
            return None
        last = ring[-1].seq
        assert last is not None
        return last, [event for event in ring if event.seq > after and event.visible_to(viewer)]  # type: ignore[operator]
