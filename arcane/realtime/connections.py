"""Socket.IO connections: who each socket is, and how its game's events reach it."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arcane import jsoncodec
from arcane.bus import Item
from arcane.encoding import PAYLOAD, Encoder
from arcane.events import SEAT_CLOSED, Event
from arcane.feed import Backlog, CatchUp, Feed
from arcane.game.records import Identity, Member
from arcane.limits import Slot, session_key
from arcane.realtime import direct
from arcane.realtime.server import REPLY, Reply

# An event as Socket.IO carries it: the EVENT packet of the default namespace, and the
# websocket frame of the Engine.IO MESSAGE around it (unmasked: the same for every socket).
PACKET: Encoder[str] = Encoder("socket.io", lambda event: f"2[{jsoncodec.dumps(event.name)},{PAYLOAD(event)}]")
FRAME: Encoder[bytes] = Encoder("websocket", lambda event: direct.text_frame(("4" + PACKET(event)).encode()))

log = logging.getLogger(__name__)


@dataclass
class Room:
    """A socket's seat in one game room: the member and the feed that delivers to it."""

    ident: Identity
    member: Member
    feed: Feed
    pump: asyncio.Task[None] | None = None
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


@dataclass(frozen=True, slots=True)
class _Accepted:
    """An event the feed has already taken (its cursor moved): send it as it is."""

    event: Event


class Delivery:
    """Hands one socket its game's events, in seq order.

    In order (the usual case) an event goes from the bus straight into the socket's
    Engine.IO queue, with no task of its own. Anything else (the catch-up at join, a
    seq gap, a resync, a socket Engine.IO is not ready for) goes through a task that
    reads the log; while it runs, newer items wait behind it, so order holds.
    """

    def __init__(self, sio: Any, conn: Connection, room: Room, first: CatchUp, *, backlog: Backlog,
                 seat_closed: Callable[[], None] = lambda: None) -> None:
        self._sio = sio
        self._conn = conn
        self._room = room
        self._backlog = backlog
        self._seat_closed = seat_closed  # called once the seat's `seat_closed` is handed over
        self._waiting: deque[Item | _Accepted] | None = None  # made when first needed
        self._socket = sio.eio.sockets.get(conn.eio_sid)
        # Created now, first run after the join handler returns: its ack goes out before the catch-up.
        self._task: asyncio.Task[None] | None = asyncio.create_task(self._run(first), name=f"feed-{conn.sid}")
        room.pump = self._task
        # After the task: items published during the catch-up's read wait behind it.
        room.feed.listen(self._on_item)

    def _on_item(self, item: Item) -> None:
        pending: Item | _Accepted = item
        if self._task is None:
            taken, event = self._room.feed.accept(item)
            if taken:
                if event is None:
                    return
                if self._send_now(event):
                    self._sent(event)
                    return
                pending = _Accepted(event)  # taken, but Engine.IO wants its async path for it
            self._task = asyncio.create_task(self._run(None), name=f"feed-{self._conn.sid}")
            self._room.pump = self._task
        if self._waiting is None:
            self._waiting = deque()
        self._waiting.append(pending)
        if self._backlog.exceeded(events=len(self._waiting)):
            self._fall_behind()

    def _fall_behind(self) -> None:
        """The client fell `Backlog` behind: cut it; it resumes from its cursor."""
        log.warning("socket %s fell too far behind in %s; disconnecting it to resume",
                    self._conn.sid, self._room.ident.game_code)
        self._room.feed.close()
        if self._waiting:
            self._waiting.clear()
        socket = self._socket
        if socket is None:
            asyncio.ensure_future(self._sio.disconnect(self._conn.sid))
            return
        # Not sio.disconnect(): it waits for the client to read what is queued, which it is not doing.
        if socket.queue.ws is not None:
            socket.queue.ws.abort()
        asyncio.ensure_future(socket.close(wait=False, reason=self._sio.eio.reason.SERVER_DISCONNECT))

    def _send_now(self, event: Event) -> bool:
        """Engine.IO's `send`, without awaiting it: only for an open, live socket."""
        socket = self._socket
        if not direct.socket_alive(self._sio.eio, socket):
            return False  # let Engine.IO's own send notice the dead client and close it
        queue: direct.SocketQueue = socket.queue  # every socket's, since direct.install()
        unread = queue.ws.buffered() if queue.ws is not None else 0
        if self._backlog.exceeded(events=queue.qsize() + 1, nbytes=unread):  # a client that stopped reading
            self._fall_behind()
        elif not self._with_reply(queue, event):
            queue.put_message(PACKET(event), FRAME(event))
        return True

    def _with_reply(self, queue: direct.SocketQueue, event: Event) -> bool:
        """The event and the ack it answers in one write, when the ack is ready and nothing
        is ahead of them: one segment for the client to read, where two would follow each
        other within a loop turn. Else the ack goes as usual when its handler returns."""
        reply = self._conn.reply
        ack = None if reply is None or event.cause is None else reply.frame_with(event)
        if ack is None:
            return False
        assert reply is not None
        self._conn.reply = None
        reply.sent = queue.write_now(FRAME(event) + ack)
        return reply.sent

    async def _run(self, first: CatchUp | None) -> None:
        feed = self._room.feed
        try:
            if first is not None:
                if first.recovered:
                    for event in first.events:
                        await emit(self._sio, self._conn, event)
                        self._sent(event)
                else:
                    await emit(self._sio, self._conn, first.sync_event(self._room.ident.game_code))
            while self._waiting:  # None or empty: nothing behind
                item = self._waiting.popleft()
                events = [item.event] if isinstance(item, _Accepted) else await feed.take(item)
                for event in events:
                    await emit(self._sio, self._conn, event)
                    self._sent(event)
        finally:
            self._task = None
            if not self._waiting:
                self._waiting = None

    def _sent(self, event: Event) -> None:
        if event.name == SEAT_CLOSED:
            self._seat_closed()


async def emit(sio: Any, conn: Connection, event: Event) -> None:
    """Hand the event's packet, encoded once for all its recipients, to Engine.IO."""
    await sio.eio.send(conn.eio_sid, PACKET(event))
