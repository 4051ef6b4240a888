"""Server-Sent Events: `GET /api/games/<code>/events`, one open response per client.

Logged events are `id: <seq>` / `event: <name>` / `data: <json>`; ephemeral ones
carry no `id`, so the browser's Last-Event-ID stays on the last logged event.
Served by the bare ASGI front of arcane/fallback/bare.py, not by Quart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable, Sequence

from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event
from arcane.fallback.asgi import Caller, Receive, Request, Send, on_disconnect
from arcane.fallback.following import Following, epoch_param, parse_cursor
from arcane.feed import Backlog
from arcane.game.records import Identity, Member
from arcane.logs import bind
from arcane.serving.h11 import ChunkWriter
from arcane.serving.hypercorn import HIGH_WATER
from arcane.transports import PAYLOAD, Encoder, Pump, Refusal, Services

log = logging.getLogger(__name__)
HEARTBEAT = b": heartbeat\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


async def serve(rt: Services, caller: Caller, code: str, request: Request, receive: Receive, send: Send) -> None:
    if rt.closing.is_set():  # draining: another process, or this one restarted, takes it
        raise ArcaneError(ErrorCode.SERVICE_UNAVAILABLE, "this server is stopping; connect again")
    ident, member = await caller(rt, code, request)
    after = resume_point(request)
    epoch = epoch_param(request.arg("epoch"))
    slot = rt.limits.connections.open(identity=ident.rate_key, address=request.address)
    del request  # an open stream keeps nothing of the request
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        try:
            await stream(rt, ident, member, after, epoch, receive, send)
        except Exception:
            # Too late for a status: the stream's last frame says it, and the client resumes.
            log.exception("SSE stream of %s in %s failed", ident.player_id, ident.game_code)
            error = Refusal(ArcaneError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side"))
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "http.response.body", "body": frame(error.event(ident.game_code)),
                            "more_body": False})
    finally:
        slot.release()


def resume_point(request: Request) -> int | None:
    """The client's cursor; the header wins, since the browser updates it on every reconnect."""
    header = request.headers.get("last-event-id")
    if header:
        return parse_cursor(header)
    return parse_cursor(request.arg("last_event_id"))


async def stream(rt: Services, ident: Identity, member: Member, after: int | None, epoch: str | None,
                 receive: Receive, send: Send) -> None:
    """The whole life of one stream; everything it opens is released in `finally`.

    It ends when the client goes (hypercorn reports the disconnect to `receive`), when
    the feed closes (shutdown, or the seat left the game: its last frame is
    `seat_closed`), or when the client falls `Backlog` behind (the pump cuts it: the
    connection is dropped). The client resumes from its id.
    """
    bind(transport="sse", game_code=ident.game_code, player_id=ident.player_id)
    conn_id = f"sse:{secrets.token_hex(8)}"
    async with Following(rt, ident, "sse") as feed:
        unwatch = on_disconnect(receive, feed.close)
        if member.is_player:
            rt.presence.connect(ident.game_code, ident.player_id, member.name, conn_id)
        try:
            await _body(send, f"retry: {rt.settings.sse_retry_ms}\n\n".encode())
            # The headers are out: the body's chunks may go direct.
            events = EventStream(ChunkWriter.over(send), ident)
            try:
                start = await feed.start(after, epoch, current=member.epoch)
            except ArcaneError as error:
                if error.code is not ErrorCode.NOT_IN_GAME:
                    raise
                # The seat left between its check and this catch-up: the stream ends, as
                # at its `seat_closed`; the response has begun, so no JSON error can follow.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            pump = Pump(feed, events, Backlog.of(rt.settings))
            pump.start(start)
            del start  # the pump has it: an open stream keeps none of it once it is sent
            try:
                await events.until_ended(pump, heartbeat=rt.settings.sse_heartbeat)
            finally:
                await pump.stop()
            if not pump.cut:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            unwatch()
            if member.is_player:
                rt.presence.disconnect(ident.game_code, ident.player_id, conn_id)


class EventStream:
    """The SSE adapter's `Transport`: one streamed response, its chunks written straight to
    the connection when nothing waits ahead of them (arcane/serving/h11.py `ChunkWriter`), else
    through hypercorn, which waits for a slow client. A catch-up goes in pieces of at most
    `HIGH_WATER` bytes, so a long replay never sits whole in the connection's buffer."""

    kind = "sse"
    __slots__ = ("name", "_send", "_ended", "_waiter", "_loop", "_written_at")

    def __init__(self, send: Send | ChunkWriter, ident: Identity) -> None:
        self.name = f"SSE stream of {ident.player_id}"
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._ended = False
        # While idle a stream holds one future and one timer handle, no more: thousands of
        # streams sit here (asyncio.wait would add two coroutine frames, a set and a closure).
        self._waiter: asyncio.Future[None] | None = None
        self._written_at = self._loop.time()

    def write_now(self, event: Event) -> bool:
        if isinstance(self._send, ChunkWriter) and self._send.write(FRAME(event)):
            self._written_at = self._loop.time()
            return True
        return False

    async def write(self, events: Sequence[Event]) -> None:
        remaining, pieces = list(events), Backlog(len(events), HIGH_WATER)
        while remaining:
            piece = pieces.prefix(remaining, self.size)
            await self._write(frames(piece))
            remaining = remaining[len(piece):]

    async def write_snapshot(self, event: Event, seq: int) -> None:
        await self._write(frame(event, seq=seq))

    async def _write(self, data: bytes) -> None:
        await _body(self._send, data)
        self._written_at = self._loop.time()

    def size(self, event: Event) -> int:
        return len(FRAME(event))

    def unsent(self, event: Event | None = None) -> tuple[int, int]:
        events, size = (0, 0) if event is None else (1, len(FRAME(event)))
        return events, size + (self._send.buffered() if isinstance(self._send, ChunkWriter) else 0)

    def cut(self) -> None:
        if isinstance(self._send, ChunkWriter):
            self._send.abort()  # elsewhere the server's own flow control bounds what waits

    def ended(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def until_ended(self, pump: Pump, *, heartbeat: float) -> None:
        """Until the pump ends; after `heartbeat` seconds without a write, `: heartbeat`."""
        while not self._ended:
            silent = self._loop.time() - self._written_at
            if silent >= heartbeat:
                if pump.idle and not (isinstance(self._send, ChunkWriter) and self._send.write(HEARTBEAT)):
                    pump.write_aside(lambda: self._write(HEARTBEAT))
                self._written_at = self._loop.time()
                silent = 0.0
            self._waiter = self._loop.create_future()
            timer = self._loop.call_later(heartbeat - silent, self._wake)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None


async def _body(send: Send | ChunkWriter, data: bytes) -> None:
    if isinstance(send, ChunkWriter) and send.write(data):
        return
    await send({"type": "http.response.body", "body": data, "more_body": True})


def frame(event: Event, *, seq: int | None = None) -> bytes:
    """The event's SSE frame; `seq` gives the id of a snapshot, which has no seq of its own
    (and is one stream's alone: it is not kept encoded)."""
    return FRAME(event) if seq is None or seq == event.seq else _frame(event, seq)


def _frame(event: Event, seq: int | None) -> bytes:
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {event.name}\ndata: {PAYLOAD(event)}\n\n".encode()


FRAME: Encoder[bytes] = Encoder("sse", lambda event: _frame(event, event.seq))


def frames(events: Iterable[Event]) -> bytes:
    return b"".join(frame(event) for event in events)
