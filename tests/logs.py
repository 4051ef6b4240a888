"""What the tests read of the log and the bus to check what clients were sent."""

from __future__ import annotations

from typing import Any

from arcane import jsoncodec
from arcane.bus import Bus
from arcane.events import ROOM, Event, player_audience
from arcane.store import Store


async def log_bounds(store: Store, game_code: str) -> tuple[int, int] | None:
    """(floor, last_seq): events with floor < seq <= last_seq are in the log."""
    row = await store.fetchone("SELECT log_floor, last_seq FROM games WHERE code = ?", (game_code,))
    return None if row is None else (row[0], row[1])


async def events_after(store: Store, game_code: str, after: int, viewer: str | None, *,
                       upto: int | None = None) -> list[Event]:
    """The events `viewer` may see with after < seq (<= upto), in seq order."""
    own = ROOM if viewer is None else player_audience(viewer)
    sql = ("SELECT seq, event, audience, payload, created_at FROM events"
           " WHERE game_code = ? AND seq > ? AND audience IN (?, ?)")
    params: list[Any] = [game_code, after, ROOM, own]
    if upto is not None:
        sql += " AND seq <= ?"
        params.append(upto)
    rows = await store.fetchall(sql + " ORDER BY seq", params)
    return [Event(game_code, r["event"], jsoncodec.loads(r["payload"]), r["audience"], r["seq"], r["created_at"])
            for r in rows]


def subscribers(bus: Bus, game_code: str | None = None) -> int:
    """Open subscriptions, of one game or of all: a client that went must leave none behind."""
    by_game = bus._by_game
    if game_code is None:
        return sum(len(subs) for subs in by_game.values())
    return len(by_game.get(game_code, ()))


async def visible_truth(database: Any, game_code: str, player_id: str) -> list[tuple[int, str]]:
    """(seq, name) of every logged event a player may see, read from the database itself."""
    from arcane.store import connect

    store = connect(database)
    await store.open()
    try:
        return [(e.seq, e.name) for e in await events_after(store, game_code, 0, player_id) if e.seq is not None]
    finally:
        await store.close()
