"""Socket.IO event handlers: authenticate, join rooms, relay actions to the game service."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from socketio.exceptions import ConnectionRefusedError

from arcane import stats
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.events import SEAT_CLOSED, Event, draining_event
from arcane.feed import CURSOR_MAX, EPOCH_MAX, Backlog, Feed
from arcane.logs import bind
from arcane.game.service import normalize_code
from arcane.identity import cookie_session, session_games
from arcane.realtime.connections import Connection, Room, SocketWire, emit
from arcane.realtime.server import REPLY, SocketServer
from arcane.transports import Pump, Refusal, Services

log = logging.getLogger(__name__)
DRAIN_WAIT = 1.0  # seconds a draining socket's client has to fetch `server_draining`
Handler = Callable[..., Awaitable[Any]]


class Realtime:
    """Owns every Socket.IO connection of this process."""

    def __init__(self, services: Services, sio: SocketServer,
                 session_loader: Callable[[str], dict[str, Any] | None]) -> None:
        self.rt = services
        self.sio = sio
        self._load_session = session_loader
        self.connections: dict[str, Connection] = {}
        self._ending: set[asyncio.Task[None]] = set()  # sockets leaving the room of a seat that left
        self._register()

    # -- plumbing ------------------------------------------------------------------------------

    def _register(self) -> None:
        self.sio.on("connect", self.connect)
        self.sio.on("disconnect", self.disconnect)
        for name, handler in {
            "join_game_room": self.join_game_room,
            "leave_game_room": self.leave_game_room,
            "make_choice": self.make_choice,
            "vote_skip": self.vote_skip,
            "chat_message": self.chat_message,
            "typing": self.typing,
            "request_presence": self.request_presence,
            "ping": self.ping,
            "choice_submitted": self.choice_submitted,
        }.items():
            self.sio.on(name, self._guarded(name, handler))
        self.sio.on("*", self._unknown)  # python-socketio never routes reserved names here

    async def _unknown(self, name: str, sid: str, data: Any = None, *extra: Any) -> Any:
        return await self._guarded(name, self._unknown_event)(sid, data)

    async def _unknown_event(self, conn: Connection, data: Any) -> dict[str, Any]:
        raise ArcaneError(ErrorCode.UNKNOWN_EVENT, "the server handles no event of that name")

    def _guarded(self, name: str, handler: Handler) -> Handler:
        """Errors never kill the connection: they answer through the ack or an `error` event."""

        @functools.wraps(handler)
        async def run(sid: str, data: Any = None, *extra: Any) -> Any:
            conn = self.connections.get(sid)
            started = time.perf_counter()
            try:
                if conn is None:
                    raise ArcaneError(ErrorCode.AUTH_REQUIRED, "connect again")
                if not await self.rt.limiter.allow(conn.rate_key):
                    raise ArcaneError(ErrorCode.RATE_LIMITED, "too many events; slow down")
                return await handler(conn, data)
            except ArcaneError as error:
                return await self._refuse(sid, name, error)
            except asyncio.CancelledError:
                raise
            except Exception:
                ident = conn.room.ident if conn is not None and conn.room is not None else None
                bind(transport="socketio", request_id=sid, game_code=ident.game_code if ident else None,
                     player_id=ident.player_id if ident else None)
                log.exception("socket event %s from %s failed", name, sid)
                return await self._refuse(
                    sid, name, ArcaneError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side")
                )
            finally:
                if conn is not None:
                    conn.reply = None  # an early ack is only ever for the event being handled
                stats.action(name, "socketio", time.perf_counter() - started)

        return run

    async def _refuse(self, sid: str, name: str, error: ArcaneError) -> dict[str, Any]:
        """The ack's error body; without an ack, an `error` event naming the event refused."""
        refusal = Refusal(error)
        if REPLY.get() is None:
            await self.sio.emit("error", refusal.payload(event=name), to=sid)
        return refusal.body

    # -- connection lifecycle ----------------------------------------------------------------------

    async def connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if self.rt.closing.is_set():  # draining: another process, or this one restarted, takes it
            stopping = ArcaneError(ErrorCode.SERVICE_UNAVAILABLE, "this server is stopping; connect again")
            raise ConnectionRefusedError(stopping.message, Refusal(stopping).payload())
        token = auth.get("token") if isinstance(auth, dict) else None
        token_identity = None
        if isinstance(token, str) and token:
            try:
                token_identity = self.rt.tokens.read(token)
                # Expired, or its seat left the game: refused now, not at the first join.
                await self.rt.service.authenticate(token_identity)
            except ArcaneError as error:
                raise ConnectionRefusedError(error.message, Refusal(error).payload()) from None
        games = session_games(cookie_session(environ.get("HTTP_COOKIE", ""), self._load_session))
        if token_identity is None and not games:
            anonymous = ArcaneError(ErrorCode.AUTH_REQUIRED, "send auth: {token} or the session cookie")
            raise ConnectionRefusedError(anonymous.message, Refusal(anonymous).payload())
        address = self.rt.limits.address(environ.get("asgi.scope") or {})
        try:
            slot = self.rt.limits.connections.open(address=address)
        except ArcaneError as error:
            raise ConnectionRefusedError(error.message, Refusal(error).payload()) from None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        self.connections[sid] = Connection(sid, eio_sid, games, token_identity, address=address, slot=slot)
        # python-socketio keeps the handshake's environ for the socket's whole life: its
        # headers and request-body reader (a class made per request) are 4 KB a connection.
        for key in [key for key in environ if key.startswith("HTTP_") or key == "wsgi.input"]:
            del environ[key]

    async def disconnect(self, sid: str, reason: Any = None) -> None:
        if reason == self.sio.reason.CLIENT_DISCONNECT:
            self._release_long_poll(sid)
        conn = self.connections.pop(sid, None)
        if conn is not None:
            conn.release()
            await self._leave(conn)

    def _release_long_poll(self, sid: str) -> None:
        """Answer a polling client's pending GET now that it has gone.

        On a client's close packet Engine.IO marks the socket closed but leaves
        the client's last long-poll GET waiting until the next ping (25 s), which
        holds the client's disconnect and the server's shutdown. Engine.IO has no
        public call for this; an empty answer is what its own close path sends.
        """
        try:
            eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
            socket = self.sio.eio.sockets.get(eio_sid)
        except Exception:
            return
        queue = getattr(socket, "queue", None)
        if socket is not None and not getattr(socket, "upgraded", False) and queue is not None:
            queue.put_nowait(None)

    async def _leave(self, conn: Connection) -> None:
        room, conn.room = conn.room, None
        if room is None:
            return
        room.feed.close()
        if room.slot is not None:
            room.slot.release()
        if room.member.is_player:
            self.rt.presence.disconnect(room.ident.game_code, room.ident.player_id, conn.sid)
        if room.pump is not None:
            await room.pump.stop()

    async def drain(self, conn: Connection) -> None:
        """Shutdown, one socket at a time: `server_draining` tells the client to reconnect at
        once (elsewhere, or here once restarted), then the socket closes."""
        room = conn.room
        if room is not None:
            # Through the room's pump, as every event goes (its fast path included); then the
            # feed ends, and the pump writes what it holds before the socket closes.
            room.feed.drain(draining_event(room.ident.game_code))
            deadline = asyncio.get_running_loop().time() + DRAIN_WAIT
            while room.pump is not None and not room.pump.idle and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        socket = self.sio.eio.sockets.get(conn.eio_sid)
        if socket is not None:
            reason = self.sio.eio.reason.SERVER_DISCONNECT
            try:  # an Engine.IO polling client fetches the word with its next GET: wait for it
                await asyncio.wait_for(socket.close(wait=True, reason=reason), DRAIN_WAIT)
            except (TimeoutError, Exception):  # gone, or not reading: let it go regardless
                await socket.close(wait=False, reason=reason)
        await self._leave(conn)
        self.connections.pop(conn.sid, None)

    async def close_all(self) -> None:
        """Shutdown: every socket is told to go, so hypercorn is not held up."""
        eio = self.sio.eio
        sockets = list(eio.sockets.values())
        # Not eio.disconnect(): it waits for each socket's send queue to drain, and a socket
        # whose websocket already died has nobody draining it, which held shutdown for ever.
        await asyncio.gather(*(socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
                               for socket in sockets), return_exceptions=True)
        eio.sockets.clear()
        for conn in list(self.connections.values()):
            await self._leave(conn)
        self.connections.clear()

    # -- rooms ---------------------------------------------------------------------------------

    async def join_game_room(self, conn: Connection, data: Any) -> dict[str, Any]:
        data = _object(data)
        code = normalize_code(data.get("game_code"))
        last_seq = data.get("last_seq")
        if last_seq is not None and (isinstance(last_seq, bool) or not isinstance(last_seq, int)
                                     or not 0 <= last_seq <= CURSOR_MAX):
            raise validation("last_seq must be a whole number from 0 to 2^63-1")
        epoch = data.get("epoch")
        if epoch is not None and (not isinstance(epoch, str) or len(epoch) > EPOCH_MAX):
            raise validation(f"epoch must be a string of at most {EPOCH_MAX} characters")
        ident = conn.identity_for(code)
        if ident is None:  # the same answer whether or not the game exists (docs/client.md)
            raise await self.rt.limits.failed_lookup(
                conn.address, ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game"))
        member = await self.rt.service.authenticate(ident)  # reads the games table only to refuse
        await self._leave(conn)
        slot = self.rt.limits.connections.open(identity=ident.rate_key)
        feed = Feed(self.rt.bus, ident, store=self.rt.store, snapshot=self.rt.service.view,
                    maxsize=self.rt.settings.stream_buffer)
        try:
            first = await feed.start(last_seq, epoch, current=member.epoch)
        except BaseException:
            feed.close()
            slot.release()
            raise
        room = Room(ident, member, feed, slot=slot)
        conn.room = room
        if member.is_player:
            self.rt.presence.connect(code, ident.player_id, member.name, conn.sid)
        def written(event: Event) -> None:
            if event.name == SEAT_CLOSED:
                self._seat_closed(conn, room)

        room.pump = Pump(feed, SocketWire(self.sio, conn), Backlog.of(self.rt.settings), on_event=written)
        room.pump.start(first)
        return {"ok": True, "seq": first.seq, "recovered": first.recovered, "epoch": first.epoch}

    async def leave_game_room(self, conn: Connection, data: Any) -> dict[str, Any]:
        code = normalize_code(_object(data).get("game_code"))
        if conn.room is None or conn.room.ident.game_code != code:
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "this socket is not in that game's room")
        await self._leave(conn)
        return {"ok": True}

    def _room(self, conn: Connection) -> Room:
        if conn.room is None:
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "join a game room first (join_game_room)")
        if conn.room.feed.seat_closed:  # it left the game; `_end_seat` is on its way
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "you are no longer in this game")
        return conn.room

    def _seat_closed(self, conn: Connection, room: Room) -> None:
        """The room's seat left the game (on any process): its feed has closed; leave the room."""
        task = asyncio.ensure_future(self._end_seat(conn, room))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_seat(self, conn: Connection, room: Room) -> None:
        try:
            if conn.room is room:
                await self._leave(conn)
            error = ArcaneError(ErrorCode.NOT_IN_GAME, "you have left this game; this socket left its room")
            await self.sio.emit("error", Refusal(error).payload(game_code=room.ident.game_code), to=conn.sid)
        except Exception:
            log.exception("socket %s could not leave the room of its closed seat", conn.sid)

    # -- actions -------------------------------------------------------------------------------

    async def make_choice(self, conn: Connection, data: Any) -> dict[str, Any]:
        data = _object(data)
        room = self._room(conn)
        return await self.rt.service.choose(room.ident, data.get("option_id"), data.get("text"))

    async def vote_skip(self, conn: Connection, data: Any) -> dict[str, Any]:
        room = self._room(conn)
        return await self.rt.service.vote_skip(room.ident, _object(data).get("player_id"))

    async def chat_message(self, conn: Connection, data: Any) -> dict[str, Any]:
        room = self._room(conn)
        event = await self.rt.service.chat(room.ident, _object(data).get("text"),
                                           cause=conn.answer_early(_chat_answer))
        return _chat_answer(event)

    async def typing(self, conn: Connection, data: Any) -> dict[str, Any]:
        room = self._room(conn)
        await self.rt.service.typing(room.ident, _object(data).get("is_typing"), member=room.member)
        return {"ok": True}

    async def request_presence(self, conn: Connection, data: Any) -> dict[str, Any]:
        room = self._room(conn)
        payload = await self.rt.presence.update_payload(room.ident.game_code)
        await emit(self.sio, conn, Event(room.ident.game_code, "presence_update", payload))
        return {"ok": True} | payload

    async def choice_submitted(self, conn: Connection, data: Any) -> dict[str, Any]:
        """The original game's client announces the choice it has just made over HTTP;
        the HTTP choice did it all (docs/realtime.md, deprecated events)."""
        return {"ok": True}

    async def ping(self, conn: Connection, data: Any) -> dict[str, Any]:
        payload = {"timestamp": time.time()}
        await self.sio.emit("pong", payload, to=conn.sid)
        return {"ok": True} | payload


def _chat_answer(event: Event) -> dict[str, Any]:
    return {"ok": True, "seq": event.seq}


def _object(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise validation("the payload must be an object")
    return data
