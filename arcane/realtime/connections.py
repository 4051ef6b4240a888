"""Socket.IO connections: who each socket is, and the adapter its game's events are written through."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from arcane import jsoncodec
from arcane.encoding import PAYLOAD, Encoder
from arcane.events import Event
from arcane.feed import Feed
from arcane.game.records import Identity, Member
from arcane.limits import Slot, session_key
from arcane.realtime.frames import text_frame
from arcane.realtime.server import REPLY, Reply
from arcane.serving import engineio
from arcane.transports import Pump

# An event as Socket.IO carries it: the EVENT packet of the default namespace, and the
# websocket frame of the Engine.IO MESSAGE around it (unmasked: the same for every socket).
PACKET: Encoder[str] = Encoder("socket.io", lambda event: f"2[{jsoncodec.dumps(event.name)},{PAYLOAD(event)}]")
FRAME: Encoder[bytes] = Encoder("websocket", lambda event: text_frame(("4" + PACKET(event)).encode()))

log = logging.getLogger(__name__)


@dataclass
class Room:
    """A socket's seat in one game room: the member and the feed that delivers to it."""

    ident: Identity
    member: Member
    feed: Feed
    pump: Pump | None = None
    slot: Slot | None = None  # its place under the per-identity connection cap


@dataclass
class Connection:
    sid: str
    eio_sid: str
    identities: dict[str, str]
    token_identity: Identity | None
    room: Room | None = None
    reply: Reply | None = None  # the ack of the event being handled, if it may go out early
    address: str = "unknown"  # the client's, through trusted proxies only
    slot: Slot | None = None  # its place under the per-address connection cap

    def identity_for(self, game_code: str) -> Identity | None:
        if self.token_identity is not None:
            return self.token_identity if self.token_identity.game_code == game_code else None
        player_id = self.identities.get(game_code)
        return None if player_id is None else Identity(game_code, player_id)

    @property
    def rate_key(self) -> str:
        """Limits count per player, across tabs and processes. Before it joins a room a socket
        shares its token's bucket, else its cookie session's: never a fresh bucket per socket."""
        ident = self.room.ident if self.room is not None else self.token_identity
        return session_key(self.identities) if ident is None else ident.rate_key

    def answer_early(self, answer: Callable[[Event], dict[str, Any]]) -> int | None:
        """Let the ack of the event being handled go out with the event it causes, as
        `answer(event)`: the id of the request, for the event to carry (`Event.cause`).
        None when the client asked for no ack."""
        reply = REPLY.get()
        if reply is None:
            return None
        reply.early = answer
        self.reply = reply
        return reply.cause

    def release(self) -> None:
        """The socket ended: its place under the per-address cap is free (its room's, on leaving)."""
        if self.slot is not None:
            self.slot.release()


class SocketWire:
    """The Socket.IO adapter's `Transport`: one socket, through Engine.IO's queue or, when
    nothing waits in it, straight to the websocket (arcane/serving/engineio.py).

    The ack of the event being handled goes in the same write as the event it caused
    (`Reply`): one segment for the client to read, where two would follow each other
    within a loop turn.
    """

    kind = "socketio"
    __slots__ = ("name", "_sio", "_conn", "_socket", "_queue")

    def __init__(self, sio: Any, conn: Connection) -> None:
        self.name = f"socket {conn.sid}"
        self._sio = sio
        self._conn = conn
        self._socket = sio.eio.sockets.get(conn.eio_sid)
        queue = getattr(self._socket, "queue", None)
        # Every socket's, since engineio.install(); made with the socket and kept for its life.
        self._queue = queue if isinstance(queue, engineio.SocketQueue) else None

    def write_now(self, event: Event) -> bool:
        """Engine.IO's `send`, without awaiting it: only for an open, live socket."""
        queue = self._queue
        if queue is None or not engineio.socket_alive(self._sio.eio, self._socket):
            return False  # let Engine.IO's own send notice the dead client and close it
        if not self._with_reply(queue, event):
            frame = FRAME(event)
            if not queue.write_now(frame):
                queue.put_message(PACKET(event), frame)
        return True

    def _with_reply(self, queue: engineio.SocketQueue, event: Event) -> bool:
        """The event and the ack it answers in one write, when nothing is ahead of them.
        Else the ack goes as usual when its handler returns."""
        reply = self._conn.reply
        ack = None if reply is None or event.cause is None else reply.frame_with(event)
        if ack is None:
            return False
        assert reply is not None
        self._conn.reply = None
        reply.sent = queue.write_now(FRAME(event) + ack)
        return reply.sent

    async def write(self, events: Sequence[Event]) -> None:
        for event in events:
            await emit(self._sio, self._conn, event)

    async def write_snapshot(self, event: Event, seq: int) -> None:
        # Its payload carries its seq; it is this socket's alone, so it is not kept encoded.
        await self._sio.eio.send(self._conn.eio_sid, PACKET.encode(event))

    def size(self, event: Event) -> int:
        return len(FRAME(event))

    def unsent(self, event: Event | None = None) -> tuple[int, int]:
        queue = self._queue
        events, size = (0, 0) if event is None else (1, len(FRAME(event)))
        if queue is None:
            return events, size
        return events + queue.qsize(), size + (queue.ws.buffered() if queue.ws is not None else 0)

    def cut(self) -> None:
        socket = self._socket
        if socket is None:
            asyncio.ensure_future(self._sio.disconnect(self._conn.sid))
            return
        # Not sio.disconnect(): it waits for the client to read what is queued, which it is not doing.
        engineio.abort(socket)
        asyncio.ensure_future(socket.close(wait=False, reason=self._sio.eio.reason.SERVER_DISCONNECT))

    def ended(self) -> None:
        """The room's owner (`Realtime`) ends the room; the socket itself stays open."""


async def emit(sio: Any, conn: Connection, event: Event) -> None:
    """Hand the event's packet, encoded once for all its recipients, to Engine.IO."""
    await sio.eio.send(conn.eio_sid, PACKET(event))
