"""The Socket.IO server: python-socketio, told whether each event asked for an ack."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from typing import Any

import engineio
import socketio
from hypercorn.protocol import ws_stream
from wsproto.extensions import PerMessageDeflate

from arcane import jsoncodec
from arcane.config import Settings
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.events import Event, new_request
from arcane.realtime import direct

log = logging.getLogger(__name__)
# Names Socket.IO gives its own meaning: from a client they are never events.
RESERVED_EVENTS = frozenset({"connect", "connect_error", "disconnect", "disconnecting",
                             "newListener", "removeListener"})
MALFORMED_LIMIT = direct.MALFORMED_LIMIT


class Reply:
    """The ack a client asked for with the event being handled.

    The request has an id, `cause`, which the events it causes carry (`Event.cause`). A
    handler that can tell its answer from such an event says how (`early`): when that event
    is written to this socket, the ack goes in the same write (`SocketWire`), and the ack
    python-socketio sends when the handler returns is dropped.
    """

    __slots__ = ("id", "namespace", "cause", "early", "sent")

    def __init__(self, id: int, namespace: str) -> None:
        self.id = id
        self.namespace = namespace
        self.cause = new_request()
        self.early: Callable[[Event], dict[str, Any]] | None = None
        self.sent = False

    def frame_with(self, event: Event) -> bytes | None:
        """The ack's frame, encoded as python-socketio would, if `event` was caused by this
        request and tells its answer; else None."""
        if self.early is None or self.sent or event.cause != self.cause:
            return None
        pkt = socketio.packet.Packet(socketio.packet.ACK, namespace=self.namespace, id=self.id,
                                     data=[self.early(event)])
        return direct.text_frame(("4" + pkt.encode()).encode())


# The ack the client awaits for the event being handled, if it asked for one.
REPLY: contextvars.ContextVar[Reply | None] = contextvars.ContextVar("reply", default=None)


class EngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO, whose `disconnect(sid)` does not wait for the socket's queue to drain.

    Engine.IO calls it when a polling request fails (a body too large, an unknown packet),
    from inside that request: on a polling socket only the client's next GET drains the
    queue, so the request waited for ever (docs/upstream/engineio-oversized-post.md).
    """

    async def disconnect(self, sid: str | None = None) -> None:
        if sid is None:
            await super().disconnect()
            return
        socket = self.sockets.get(sid)
        if socket is not None:
            await socket.close(wait=False, reason=self.reason.SERVER_DISCONNECT)
            self.sockets.pop(sid, None)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """An AsyncServer whose handlers know the ack the client awaits, if any (`REPLY`).

    Errors go back through the ack when there is one, else as an `error` event;
    python-socketio does not expose the ack id to handlers, so it is noted here.
    """

    def _engineio_server_class(self) -> type[EngineIOServer]:
        return EngineIOServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._malformed: dict[str, int] = {}  # eio sid -> packets it sent that could not be read

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, IndexError, KeyError, TypeError) as error:  # the packet could not be decoded
            await self._malformed_packet(eio_sid, error)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any = None) -> None:
        self._malformed.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _malformed_packet(self, eio_sid: str, error: Exception) -> None:
        socket = self.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return  # closing already; what was still in flight is dropped quietly
        count = self._malformed[eio_sid] = self._malformed.get(eio_sid, 0) + 1
        log.info("socket %s sent a malformed packet (%s)", eio_sid, type(error).__name__)
        if count == MALFORMED_LIMIT:
            log.warning("socket %s sent %d malformed packets; closing it", eio_sid, count)
            await close_now(self.eio, eio_sid)

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: int | None, data: Any) -> None:
        """An event whose name is not a string, or is one Socket.IO reserves, is refused
        (python-socketio would raise on the first, and run its own handler for the second)."""
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
                socketio.packet.ACK, namespace=namespace, id=id, data=[{"error": error.to_dict()}]))
        else:
            await self.emit("error", error.to_dict() | {"event": name if isinstance(name, str) else None},
                            to=sid, namespace=namespace)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: int | None
    ) -> Any:
        token = REPLY.set(None if id is None else Reply(id, namespace))
        try:
            return await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            REPLY.reset(token)

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        reply = REPLY.get()
        if reply is not None and reply.sent and pkt.packet_type == socketio.packet.ACK and pkt.id == reply.id:
            return  # written already, with the event it answers
        await super()._send_packet(eio_sid, pkt)


async def close_now(eio: Any, eio_sid: str) -> None:
    """Close an Engine.IO socket without waiting on its client (Engine.IO's own
    `disconnect` waits for its queue to drain, which a hostile client never does)."""
    socket = eio.sockets.get(eio_sid)
    if socket is None:
        return
    ws = getattr(socket.queue, "ws", None)
    if ws is not None:
        ws.abort()
    await socket.close(wait=False, abort=ws is not None, reason=eio.reason.SERVER_DISCONNECT)


class _DeclinedDeflate(PerMessageDeflate):
    """permessage-deflate, never agreed to: hypercorn offers no setting to turn it off."""

    def accept(self, offer: str) -> None:
        return None


def refuse_websocket_compression() -> None:
    """Our frames are small JSON: compressing them costs CPU, and each connection's zlib
    state (about 300 KB once used) costs far more memory than the connection itself."""
    ws_stream.PerMessageDeflate = _DeclinedDeflate  # type: ignore[attr-defined]


def create_server(settings: Settings) -> SocketServer:
    if not settings.websocket_compression:
        refuse_websocket_compression()
    server = SocketServer(
        async_mode="asgi",
        cors_allowed_origins=list(settings.cors_origins) or None,
        ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout,
        max_http_buffer_size=settings.max_payload,
        logger=False,
        engineio_logger=False,
        # A socket's events are handled one after another in its own receive task: in the
        # order sent, and without a new task per event (sockets still run concurrently).
        async_handlers=False,
        json=jsoncodec,
    )
    direct.install(server.eio)
    return server
