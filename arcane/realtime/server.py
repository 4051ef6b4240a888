"""The Socket.IO server: python-socketio, told whether each event asked for an ack."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import socketio

from arcane import jsoncodec
from arcane.config import Settings
from arcane.errors import ArcaneError
from arcane.events import Event, new_request
from arcane.realtime.frames import text_frame
from arcane.serving import engineio as serving_engineio
from arcane.serving import socketio as serving_socketio
from arcane.transports import Refusal


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
        return text_frame(("4" + pkt.encode()).encode())


# The ack the client awaits for the event being handled, if it asked for one.
REPLY: contextvars.ContextVar[Reply | None] = contextvars.ContextVar("reply", default=None)


class SocketServer(serving_socketio.Server):
    """An AsyncServer whose handlers know the ack the client awaits, if any (`REPLY`).

    Errors go back through the ack when there is one, else as an `error` event;
    python-socketio does not expose the ack id to handlers, so it is noted here (through
    the hooks of arcane/serving/socketio.py).
    """

    def begin_event(self, id: int | None, namespace: str) -> contextvars.Token[Reply | None]:
        return REPLY.set(None if id is None else Reply(id, namespace))

    def end_event(self, token: contextvars.Token[Reply | None]) -> None:
        REPLY.reset(token)

    def sent_already(self, pkt: Any) -> bool:
        reply = REPLY.get()
        # Written already, with the event it answers.
        return (reply is not None and reply.sent and pkt.packet_type == socketio.packet.ACK
                and pkt.id == reply.id)

    def refusal_ack(self, error: ArcaneError) -> list[Any]:
        return [Refusal(error).body]

    def refusal_event(self, error: ArcaneError, event: str | None) -> dict[str, Any]:
        return Refusal(error).payload(event=event)


def create_server(settings: Settings) -> SocketServer:
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
        client_manager=serving_socketio.RoomIndexManager(),
    )
    serving_engineio.install(server.eio)
    return server
