"""The Socket.IO server: python-socketio, told whether each event asked for an ack."""

from __future__ import annotations

import contextvars
from typing import Any

import socketio
from hypercorn.protocol import ws_stream
from wsproto.extensions import PerMessageDeflate

from arcane import jsoncodec
from arcane.config import Settings
from arcane.events import Event
from arcane.realtime import direct


class Reply:
    """The ack a client asked for with the event being handled.

    A handler may make it ready early, with the event it answers (`prepare`): when that
    event is written to the socket, the ack goes in the same write (`Delivery`), and the
    ack python-socketio sends when the handler returns is dropped.
    """

    __slots__ = ("id", "namespace", "event", "frame", "sent")

    def __init__(self, id: int, namespace: str) -> None:
        self.id = id
        self.namespace = namespace
        self.event: Event | None = None  # the event the prepared ack goes out with
        self.frame = b""
        self.sent = False

    def prepare(self, event: Event, answer: dict[str, Any]) -> None:
        """The ack carrying `answer`, encoded as python-socketio would, to go out with `event`."""
        pkt = socketio.packet.Packet(socketio.packet.ACK, namespace=self.namespace, id=self.id, data=[answer])
        self.event, self.frame = event, direct.text_frame(("4" + pkt.encode()).encode())


# The ack the client awaits for the event being handled, if it asked for one.
REPLY: contextvars.ContextVar[Reply | None] = contextvars.ContextVar("reply", default=None)


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """An AsyncServer whose handlers know the ack the client awaits, if any (`REPLY`).

    Errors go back through the ack when there is one, else as an `error` event;
    python-socketio does not expose the ack id to handlers, so it is noted here.
    """

    async def _handle_event_internal(  # type: ignore[override]
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


class _DeclinedDeflate(PerMessageDeflate):  # type: ignore[misc]
    """permessage-deflate, never agreed to: hypercorn offers no setting to turn it off."""

    def accept(self, offer: str) -> None:
        return None


def refuse_websocket_compression() -> None:
    """Our frames are small JSON: compressing them costs CPU, and each connection's zlib
    state (about 300 KB once used) costs far more memory than the connection itself."""
    ws_stream.PerMessageDeflate = _DeclinedDeflate  # type: ignore[misc]


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
