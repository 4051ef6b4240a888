"""python-socketio 5.x's private dispatch (`_handle_*`, `_send_packet`), opened where we need it.

python-socketio exposes no hook for what these do, so `Server` overrides its private methods,
each calling python-socketio's own, and hands the rest to public methods of its subclass
(arcane/realtime/server.py):

- a packet it cannot decode raises out of `_handle_eio_message` (a traceback per packet):
  here it is counted, logged in one line, and the socket closed after `MALFORMED_LIMIT`;
  an event whose ack id can still be read is answered VALIDATION_ERROR through it;
- a client's Engine.IO CLOSE ends its websocket at once (Engine.IO would keep it open,
  answering nothing, until the ping timeout);
- an event whose name is not a string, or one Socket.IO reserves, is refused
  (python-socketio would raise on the first, and run its own handler for the second);
- a handler does not learn whether the client asked for an ack: `begin_event(id,
  namespace)` and `end_event` surround each handler, with the ack id;
- `sent_already(pkt)` drops an ack that went out early, with the event it answers;
- its Engine.IO server is ours (arcane/serving/engineio.py).

And one fast path, `room_index` (`RoomIndexManager`): python-socketio's client manager keeps
its rooms as `rooms[namespace][room][sid]`; a disconnect looks for the socket in every room
of the namespace, and every socket has a room of its own. So n sockets leaving cost n²
look-ups: 10,000 players dropping at once held the event loop 28 s, 9 s with this
(docs/serving.md). Here each socket's rooms are also kept by socket, and a disconnect
visits those alone.

Not fast paths: without them the server would answer differently, so they are always on;
`check()` warns when the installed python-socketio is untested or lacks one of them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import socketio

from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.serving import engineio
from arcane.serving.fastpaths import NEEDED, PATHS, version_problem
from arcane.serving.engineio import MALFORMED_LIMIT

log = logging.getLogger("arcane.realtime.server")  # the name it logged under before the move
# Names Socket.IO gives its own meaning: from a client they are never events.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "newListener", "removeListener"})
# A Socket.IO EVENT packet's head: `2`, an optional namespace, its ack id.
UNREADABLE_EVENT = re.compile(r"2(?:(?P<namespace>/[^,]{0,100}),)?(?P<id>[0-9]{1,15})")
_room_index = PATHS["room_index"]
# What RoomIndexManager.basic_disconnect does after leaving the rooms is python-socketio's
# (5.18), on these attributes of its manager.
MANAGER_STATE = ("rooms", "callbacks", "pending_connect", "pending_disconnect")
if not all(hasattr(socketio.AsyncManager(), name) for name in MANAGER_STATE):
    _room_index.missing = f"socketio.AsyncManager lacks one of {', '.join(MANAGER_STATE)}"
OVERRIDDEN = ("_engineio_server_class", "_handle_eio_message", "_handle_eio_disconnect", "_handle_event",
              "_handle_event_internal", "_send_packet")


def check() -> None:
    """Note (for the startup warning) a python-socketio whose private dispatch we have not read."""
    problem = version_problem("python-socketio")
    missing = [name for name in OVERRIDDEN if not callable(getattr(socketio.AsyncServer, name, None))]
    if missing:
        problem = "; ".join(filter(None, [problem, f"socketio.AsyncServer has no {', '.join(missing)}"]))
    if problem:
        NEEDED["socketio_dispatch"] = problem
    else:
        NEEDED.pop("socketio_dispatch", None)


class Server(socketio.AsyncServer):  # type: ignore[misc]
    def _engineio_server_class(self) -> type[engineio.Server]:
        return engineio.Server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._malformed: dict[str, int] = {}  # eio sid -> packets it sent that could not be read

    # -- hooks for the subclass ------------------------------------------------------------------

    def begin_event(self, id: int | None, namespace: str) -> Any:
        """An event's handler is about to run; `id` is its ack's, if the client asked for one.
        Answers what `end_event` is given after."""
        return None

    def end_event(self, token: Any) -> None:
        """The handler begun with `begin_event` (which answered `token`) has returned."""

    def sent_already(self, pkt: Any) -> bool:
        """This packet went out already (an ack written with its event): do not send it."""
        return False

    def refusal_ack(self, error: ArcaneError) -> list[Any]:
        """The ack's arguments for an event refused here (one that could not be read, or whose
        name Socket.IO reserves)."""
        raise NotImplementedError

    def refusal_event(self, error: ArcaneError, event: str | None) -> dict[str, Any]:
        """The `error` event's payload for an event refused here that asked for no ack."""
        raise NotImplementedError

    # -- python-socketio's private methods ---------------------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, IndexError, KeyError, TypeError) as error:  # the packet could not be decoded
            await self._malformed_packet(eio_sid, error)
            await self._refuse_through_ack(eio_sid, data)

    async def _refuse_through_ack(self, eio_sid: str, data: Any) -> None:
        """An event that could not be decoded but whose ack id could (`421[` or
        `421["x",Infinity]`) is answered VALIDATION_ERROR, so its client does not wait
        out its timeout."""
        head = UNREADABLE_EVENT.match(data) if isinstance(data, str) else None
        if head is None:
            return
        namespace = head["namespace"] or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        socket = self.eio.sockets.get(eio_sid)
        if sid is None or not self.manager.is_connected(sid, namespace) or socket is None or socket.closed:
            return
        error = validation("the event could not be read: it must be a JSON list (no NaN or Infinity) "
                           "whose first item is its name")
        await self._send_packet(eio_sid, self.packet_class(
            socketio.packet.ACK, namespace=namespace, id=int(head["id"]), data=self.refusal_ack(error)))

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self._malformed.pop(eio_sid, None)
        if reason == self.eio.reason.CLIENT_DISCONNECT:
            # The client sent Engine.IO's CLOSE: Engine.IO marks the session closed but
            # leaves its websocket open until the next message or the ping timeout (45 s).
            # Ending the writer closes the websocket now, as the client asked.
            socket = self.eio.sockets.get(eio_sid)
            if socket is not None and socket.upgraded:
                socket.queue.put_nowait(None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _malformed_packet(self, eio_sid: str, error: Exception) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return  # closing already; what was still in flight is dropped quietly
        count = self._malformed[eio_sid] = self._malformed.get(eio_sid, 0) + 1
        log.info("socket %s sent a malformed packet (%s)", eio_sid, type(error).__name__)
        if count == MALFORMED_LIMIT:
            log.warning("socket %s sent %d malformed packets; closing it", eio_sid, count)
            await engineio.close_now(self.eio, eio_sid)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """An event whose name is not a string, or is one Socket.IO reserves, is refused."""
        name = data[0] if isinstance(data, list) and data else None
        if isinstance(name, str) and name not in RESERVED_EVENTS:
            await super()._handle_event(eio_sid, namespace, id, data)
            return
        namespace = namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            if not isinstance(name, str):
                await self._malformed_packet(eio_sid, ValueError("not an event"))
            return  # as python-socketio does with any event before the connect
        if isinstance(name, str):
            error = ArcaneError(ErrorCode.UNKNOWN_EVENT, f"{name!r} is reserved by Socket.IO, not an event")
        else:
            error = validation("an event is a list whose first item is its name")
        if id is not None:
            await self._send_packet(eio_sid, self.packet_class(
                socketio.packet.ACK, namespace=namespace, id=id, data=self.refusal_ack(error)))
        else:
            await self.emit("error", self.refusal_event(error, name if isinstance(name, str) else None),
                            to=sid, namespace=namespace)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> Any:
        token = self.begin_event(id, namespace)
        try:
            return await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            self.end_event(token)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        if self.sent_already(pkt):
            return
        await super()._send_packet(eio_sid, pkt)


class RoomIndexManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's in-process client manager, which also knows each socket's rooms.

    The index is kept whether `room_index` is on or off (entering and leaving go through
    here either way); only a disconnect uses it, when on.
    """

    def __init__(self) -> None:
        super().__init__()
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}  # (namespace, sid) -> its rooms

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        if not _room_index.on:
            super().basic_disconnect(sid, namespace, **kwargs)
            return
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        _room_index.used += 1
        # From here as python-socketio's own basic_disconnect.
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def rooms_indexed(self) -> int:
        """How many sockets the index holds (for tests: it must not outlive the sockets)."""
        return len(self._rooms_of)
