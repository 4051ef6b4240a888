"""python-engineio 4.x's private pieces: its websocket driver table, its per-socket queue, its
socket's writer and read loop, and its server's `disconnect`.

Engine.IO queues every outgoing packet and wakes a writer task per socket, which hands
each packet to hypercorn's ASGI `send`, then wsproto, then a lock and a drain. For one
small frame that path costs more than everything else a delivery does. A frame from
server to client is not masked, so the same bytes serve every recipient of an event:
here they are written to the socket's transport at once, when that keeps order
(`websocket_direct`).

Order is kept by one rule: a packet may skip Engine.IO's queue only when nothing is
ahead of it, i.e. the queue is empty, the writer holds no packet it has taken, and no
earlier write is waiting on a slow client. Otherwise it is queued as before. A packet
is written whole by one `transport.write` call, so frames never interleave with the
control frames hypercorn writes itself. Only MESSAGE packets skip the queue: Engine.IO's
writer must still see its pings, or it times out and closes the socket.

Incoming messages are read in one loop per socket (`websocket_loop`), where Engine.IO
makes a task and a `wait_for` for each.

Anywhere the pieces are not what is expected (another server, HTTP/2, TLS),
`DirectWebSocket` behaves exactly like Engine.IO's own driver; with both fast paths off
it is not installed at all. The helpers at the end (`queue_event`, `write_now`,
`unread`, `abort`, `close_now`) serve the connections whichever queue a socket has.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import engineio

from arcane.queues import SlimQueue
from arcane.realtime.frames import frame_of
from arcane.serving import hypercorn
from arcane.serving.fastpaths import PATHS, reach
from arcane.serving.wsproto import WebsocketState

_DRIVER = ("websocket_direct", "websocket_loop")
eio_packet: Any = reach("engineio.packet", paths=_DRIVER)
eio_exceptions: Any = reach("engineio.exceptions", paths=_DRIVER)
eio_asgi: Any = reach("engineio.async_drivers.asgi", paths=_DRIVER)

log = logging.getLogger("arcane.realtime.direct")  # the name it logged under before the move
# Packets the server cannot read that a connection may send before it is closed; each
# one is a single short log line, never a traceback.
MALFORMED_LIMIT = 5
_direct = PATHS["websocket_direct"]
_loop = PATHS["websocket_loop"]


def packet_frame(pkt: Any) -> bytes:
    return frame_of(pkt.encode())


class SocketQueue(SlimQueue):
    """An Engine.IO socket's send queue that writes a packet at once when none is ahead of it.

    It stands in for the `asyncio.Queue` Engine.IO makes per socket (the methods Engine.IO
    uses, the same semantics), slim while empty, which is nearly always.
    """

    __slots__ = ("ws", "taken")

    def __init__(self) -> None:
        super().__init__()
        self.ws: DirectWebSocket | None = None
        self.taken = 0  # packets the writer took from this queue and has not written yet

    def put_nowait(self, item: Any) -> None:
        if (item is not None and item.packet_type == eio_packet.MESSAGE and self._clear()
                and self.ws is not None and self.ws.write(packet_frame(item))):
            return
        super().put_nowait(item)

    def put_message(self, socketio_packet: str, frame: bytes) -> None:
        """Queue one of our events; `frame` is its websocket frame, shared by all recipients."""
        if self._clear() and self.ws is not None and self.ws.write(frame):
            return
        super().put_nowait(eio_packet.Packet(eio_packet.MESSAGE, data=socketio_packet))

    def write_now(self, frames: bytes) -> bool:
        """Write whole frames at once if nothing is ahead of them; else False, and nothing is queued."""
        return self._clear() and self.ws is not None and self.ws.write(frames)

    def get_nowait(self) -> Any:
        item = super().get_nowait()
        if item is not None and self.ws is not None and self.ws.upgraded():
            self.taken += 1
        return item

    def _clear(self) -> bool:
        return self.taken == 0 and self.empty()


class DirectWebSocket(eio_asgi.WebSocket if eio_asgi is not None else object):  # type: ignore[misc]
    """Engine.IO's ASGI websocket driver, plus a direct write to hypercorn's transport."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self.socket: Any = getattr(handler, "__self__", None)
        self._connection: hypercorn.Connection | None = None  # hypercorn's, when it is what we expect
        self._slow = 0  # writes waiting on a slow client's drain

    async def __call__(self, environ: dict[str, Any]) -> str:
        self.asgi_receive = environ["asgi.receive"]
        self.asgi_send = environ["asgi.send"]
        await self.asgi_send({"type": "websocket.accept"})
        queue = getattr(self.socket, "queue", None)
        if isinstance(queue, SocketQueue):
            self._connection = hypercorn.connection_of(self.asgi_send, hypercorn.WSStream)
            queue.ws = self
        try:
            if _loop.on and self.socket is not None and not self.socket.connected:
                await websocket_session(self.socket, self)
            else:  # an upgrade from long-polling: Engine.IO's own handshake and loop
                await self.handler(self)
        finally:
            if isinstance(queue, SocketQueue) and queue.ws is self:
                queue.ws = None
        return ""

    def upgraded(self) -> bool:
        socket = self.socket
        return bool(socket.upgraded) and not socket.upgrading

    def write(self, frame: bytes) -> bool:
        """Write a whole frame now if the connection is open and keeping up; else False."""
        connection = self._connection
        if connection is None or self._slow or not self.upgraded() or not connection.clear():
            return False
        stream = connection.stream
        if (stream.closed or stream.state != hypercorn.ASGIWebsocketState.CONNECTED
                or stream.connection.state != WebsocketState.OPEN):
            return False
        connection.transport.write(frame)
        _direct.used += 1
        return True

    def buffered(self) -> int:
        """Bytes written to the connection that the client has not taken yet."""
        return 0 if self._connection is None else self._connection.transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the connection now, unsent frames and all (a client that stopped reading)."""
        if self._connection is not None:
            self._connection.transport.abort()

    async def send(self, message: str | bytes) -> None:
        """Engine.IO's writer: a packet it took from the queue."""
        queue = self.socket.queue if self.socket is not None else None
        if isinstance(queue, SocketQueue) and queue.taken:
            queue.taken -= 1
        if self._connection is not None and self.write(frame_of(message)):
            return
        self._slow += 1
        try:
            await super().send(message)
        finally:
            self._slow -= 1


async def websocket_session(socket: Any, ws: DirectWebSocket) -> None:
    """Engine.IO's `AsyncSocket._websocket_handler` for a socket that opened on websocket.

    The same steps and outcomes (the writer task for queued packets, the packet size limit,
    the silence limit of ping interval plus ping timeout, the close at the end), but each
    incoming message is one wait under a deadline that moves, where Engine.IO makes a task
    and a `wait_for` for every message: that was a tenth of the event loop under load.
    """
    server = socket.server
    socket.connected = True
    socket.upgraded = True
    writer_task = asyncio.ensure_future(_writer(socket, ws))
    server.logger.info("%s: Upgrade to websocket successful", socket.sid)
    silence = server.ping_interval + server.ping_timeout
    loop = asyncio.get_running_loop()
    unknown = 0
    async with asyncio.timeout(None) as deadline:
        while True:
            deadline.reschedule(loop.time() + silence)
            try:
                data = await ws.wait()
            except BaseException:  # closed, silent too long, or cancelled: the session ends, as in Engine.IO
                break
            deadline.reschedule(None)
            if data is None or (data and len(data) > server.max_http_buffer_size):
                break
            _loop.used += 1
            try:
                pkt = eio_packet.Packet(encoded_packet=data)
            except Exception:  # not Engine.IO: Engine.IO's loop ends on it too, here without a traceback
                log.info("socket %s sent a packet that is not Engine.IO; closing it", socket.sid)
                break
            try:
                if not 0 <= pkt.packet_type < len(eio_packet.packet_names):
                    raise eio_exceptions.UnknownPacketError()  # Engine.IO's receive would raise IndexError
                await socket.receive(pkt)
            except eio_exceptions.SocketIsClosedError:
                server.logger.info("Receive error -- socket is closed")
                break
            except eio_exceptions.UnknownPacketError:  # Engine.IO ignores these for ever
                unknown += 1
                log.info("socket %s sent a packet of no known Engine.IO type", socket.sid)
                if unknown >= MALFORMED_LIMIT:
                    log.warning("socket %s sent %d packets of no known type; closing it", socket.sid, unknown)
                    break
            except Exception:
                server.logger.exception("Unknown receive error")
    await socket.queue.put(None)  # the writer ends
    await writer_task
    await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


async def _writer(socket: Any, ws: DirectWebSocket) -> None:
    """Engine.IO's writer task: the packets that went through the queue (pings, and any
    that could not be written at once), in order."""
    while True:
        try:
            packets = await socket.poll()
        except eio_exceptions.QueueEmpty:
            break
        if not packets:
            break
        try:
            for pkt in packets:
                await ws.send(pkt.encode())
        except Exception:
            break
    await ws.close()


def install(eio: Any) -> None:
    """Give an Engine.IO server the direct driver (in a copy of its driver table) and queues,
    as far as `websocket_direct` and `websocket_loop` are on."""
    if _direct.on or _loop.on:
        eio._async = dict(eio._async, websocket=DirectWebSocket)
    if _direct.on:
        eio.create_queue = SocketQueue


class Server(engineio.AsyncServer):  # type: ignore[misc]
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


# -- a socket's queue, whichever it is ----------------------------------------------------------

def socket_alive(eio: Any, socket: Any) -> bool:
    """The check Engine.IO's own `send` makes: open, and the client answered its last ping."""
    if socket is None or socket.closed:
        return False
    last_ping = socket.last_ping
    return not (last_ping and time.time() - last_ping > eio.ping_timeout)


def queue_event(socket: Any, socketio_packet: str, frame: bytes) -> None:
    """Engine.IO's `send` of one of our events without awaiting it (its queue is unbounded);
    `frame` is the event's websocket frame, shared by all recipients."""
    queue = socket.queue
    if isinstance(queue, SocketQueue):
        queue.put_message(socketio_packet, frame)
    else:
        queue.put_nowait(engineio.packet.Packet(engineio.packet.MESSAGE, data=socketio_packet))


def write_now(socket: Any, frames: bytes) -> bool:
    """Whole frames written at once if nothing is ahead of them; else False, and nothing is queued."""
    queue = socket.queue
    return isinstance(queue, SocketQueue) and queue.write_now(frames)


def queued(socket: Any) -> int:
    """Packets waiting in the socket's queue."""
    count: int = socket.queue.qsize()
    return count


def unread(socket: Any) -> int:
    """Bytes written to the socket's connection that its client has not taken yet (0 when unknown)."""
    ws = getattr(socket.queue, "ws", None)
    return ws.buffered() if isinstance(ws, DirectWebSocket) else 0


def abort(socket: Any) -> bool:
    """Drop the socket's connection now, if it is one we can reach; answers whether it was."""
    ws = getattr(socket.queue, "ws", None)
    if isinstance(ws, DirectWebSocket):
        ws.abort()
        return True
    return False


async def close_now(eio: Any, eio_sid: str) -> None:
    """Close an Engine.IO socket without waiting on its client (Engine.IO's own
    `disconnect` waits for its queue to drain, which a hostile client never does)."""
    socket = eio.sockets.get(eio_sid)
    if socket is None:
        return
    aborted = abort(socket)
    await socket.close(wait=False, abort=aborted, reason=eio.reason.SERVER_DISCONNECT)
