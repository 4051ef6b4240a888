"""Socket.IO connections: who each socket is, and the task that feeds it its game."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from arcane.events import Event
from arcane.feed import CatchUp, Feed
from arcane.game.records import Identity, Member

log = logging.getLogger(__name__)


@dataclass
class Room:
    """A socket's seat in one game room: the member and the feed that delivers to it."""

    ident: Identity
    member: Member
    feed: Feed
    pump: asyncio.Task[None] | None = None


@dataclass
class Connection:
    sid: str
    eio_sid: str
    identities: dict[str, str]
    token_identity: Identity | None
    room: Room | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def identity_for(self, game_code: str) -> Identity | None:
        if self.token_identity is not None:
            return self.token_identity if self.token_identity.game_code == game_code else None
        player_id = self.identities.get(game_code)
        return None if player_id is None else Identity(game_code, player_id)

    @property
    def rate_key(self) -> str:
        """Limits count per player, across tabs and processes; per socket until it has a seat."""
        ident = self.room.ident if self.room is not None else self.token_identity
        return f"socket:{self.sid}" if ident is None else ident.rate_key


async def pump(sio: Any, conn: Connection, room: Room, first: CatchUp) -> None:
    """Send the catch-up, then every live event, in seq order, until the feed closes."""
    code = room.ident.game_code
    if first.recovered:
        for event in first.events:
            await emit(sio, conn, event)
    else:
        await emit(sio, conn, first.sync_event(code))
    while (event := await room.feed.next()) is not None:
        await emit(sio, conn, event)
    if room.feed.overflowed:
        log.warning("socket %s fell too far behind in %s; disconnecting it to resume", conn.sid, code)
        await sio.disconnect(conn.sid)


async def emit(sio: Any, conn: Connection, event: Event) -> None:
    """Hand the event's packet, encoded once for all its recipients, to Engine.IO."""
    await sio.eio.send(conn.eio_sid, event.socketio_packet())
