"""One interface for the three transports: Socket.IO, SSE and long-poll are adapters under it.

Every adapter is given the same `Services` (never the runtime), writes events through its
own `Encoder`, is pumped by the one `Pump` under the one `Backlog` rule (arcane/feed.py),
and renders a refusal through `Refusal`:

    realtime/   Socket.IO: packets and websocket frames, refusals in the ack
    fallback/   SSE frames and long-poll answers, refusals as JSON with a status

An encoder keeps the frames it made for the events it saw last, so a broadcast is encoded
once per encoder however many recipients it has; the event itself stays a plain record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from arcane import jsoncodec, stats
from arcane.bus import Bus, Item
from arcane.config import Settings
from arcane.errors import ArcaneError
from arcane.encoding import PAYLOAD, Encoder
from arcane.events import Event
from arcane.feed import Backlog, CatchUp, Feed
from arcane.game.service import GameService
from arcane.identity import Tokens
from arcane.limits import Limiter, Limits, retry_after_header
from arcane.presence import Presence
from arcane.store import Store

if TYPE_CHECKING:
    from arcane.cluster import RedisLink

__all__ = ["PAYLOAD", "Encoder", "Pump", "Refusal", "Services", "Transport"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    """What a transport (and an HTTP route) may use of the server process."""

    settings: Settings
    store: Store
    bus: Bus
    service: GameService
    tokens: Tokens
    presence: Presence
    limiter: Limiter  # the per-player action limit
    limits: Limits  # per address and identity, and the connection caps
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # set once shutdown begins
    followers: set[Feed] = field(default_factory=set)  # open SSE streams and long-polls
    redis: RedisLink | None = None  # with ARCANE_REDIS_URL: what /healthz/ready pings


@dataclass(frozen=True, slots=True)
class Refusal:
    """An `ArcaneError` as each transport shows it: the one place that renders one."""

    error: ArcaneError

    def __post_init__(self) -> None:
        stats.errors[self.error.code.value] += 1  # each refusal is rendered once (/metrics)

    @property
    def body(self) -> dict[str, Any]:
        """The contract's error body: the HTTP answer, and a refused Socket.IO event's ack."""
        return {"error": self.error.to_dict()}

    def http(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, headers, body) of the JSON answer; RATE_LIMITED says when to come back."""
        body = jsoncodec.dumps(self.body).encode()
        return self.error.status, [(b"content-type", b"application/json"), *retry_after_header(self.error)], body

    def payload(self, **context: Any) -> dict[str, Any]:
        """The `error` event's payload, `{code, message, ...}`: for a client with no ack to wait
        on, or a stream that has begun and can no longer answer with a status."""
        return self.error.to_dict() | context

    def event(self, game_code: str, **context: Any) -> Event:
        """The ephemeral `error` event itself."""
        return Event(game_code, "error", self.payload(**context))


class Transport(Protocol):
    """One client's connection, as the pump writes to it; each adapter implements it."""

    name: str  # who it is, for the log
    kind: str  # which transport: socketio, sse or longpoll (a metric's label: bounded)

    def write_now(self, event: Event) -> bool:
        """Write the event at once if nothing waits ahead of it; else False, nothing written."""

    async def write(self, events: Sequence[Event]) -> None:
        """Write the events in order, waiting for the client where it must."""

    async def write_snapshot(self, event: Event, seq: int) -> None:
        """Write `reconnect_sync`, whose cursor is `seq` (the event itself has none)."""

    def size(self, event: Event) -> int:
        """The bytes the event takes on this transport's wire (its frame, encoded once)."""

    def unsent(self, event: Event | None = None) -> tuple[int, int]:
        """(events, bytes) handed to the connection that the client has not taken yet, and
        `event` besides, if given (it is about to be)."""

    def cut(self) -> None:
        """Drop the connection now, unsent bytes and all: the client fell behind."""

    def ended(self) -> None:
        """Nothing more will be written: the feed closed, or the client was cut."""


@dataclass(frozen=True, slots=True)
class _Accepted:
    """An event the feed has already taken (its cursor moved): write it as it is."""

    event: Event


class Pump:
    """Writes one feed to one transport, in seq order, under the one `Backlog` rule.

    In order (the usual case) a live event goes from the bus straight to the transport,
    with no task of its own. Anything else (the catch-up, a seq gap or a resync that
    needs the log, a transport that cannot write at once, a write of the transport's own)
    goes through one task; while it runs, newer items wait behind it, so order holds.

    The rule: more than `backlog.events` events waiting for the client (behind the task,
    and in its connection), or more than `backlog.bytes` bytes (of the events waiting,
    and unsent on its connection), and the client is cut at once. Its connection is
    dropped, its feed closes, and it resumes from its cursor (join_game_room's last_seq,
    Last-Event-ID, the poll's after) with no gap.
    """

    __slots__ = ("_feed", "_transport", "_backlog", "_on_event", "_waiting", "_waiting_bytes",
                 "_task", "cut", "_ended")

    def __init__(self, feed: Feed, transport: Transport, backlog: Backlog, *,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self._feed = feed
        self._transport = transport
        self._backlog = backlog
        self._on_event = on_event  # called with each event once written (a `seat_closed` ends a room)
        self._waiting: deque[Item | _Accepted] | None = None  # made when first needed
        self._waiting_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self.cut = False
        self._ended = False

    def start(self, first: CatchUp | None) -> None:
        """The catch-up first, in the pump's task (it runs once the caller yields: a socket's
        join ack goes out before it), then live events as they are published. None: the
        owner has the catch-up in hand already (a poll's answer)."""
        if first is not None:
            self._task = asyncio.create_task(self._run(first), name=f"pump-{self._transport.name}")
        # After the task: items published during the catch-up's read wait behind it.
        self._feed.listen(self._on_item, closed=self._on_closed)

    @property
    def idle(self) -> bool:
        return self._task is None

    def write_aside(self, write: Callable[[], Awaitable[None]]) -> None:
        """A write of the transport's own (an SSE heartbeat), in turn with the events."""
        if self._task is None and not self.cut:
            self._task = asyncio.create_task(self._run(None, write), name=f"pump-{self._transport.name}")

    async def stop(self) -> None:
        """Close the feed and end the pump's task, if any; an error in it is logged."""
        self._feed.close()
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    def _on_item(self, item: Item) -> None:
        if self.cut:
            return
        pending: Item | _Accepted = item
        if self._task is None:
            taken, event = self._feed.accept(item)
            if taken:
                if event is None:
                    return  # not this client's, or had already
                # The rule (`_behind`) for the usual case, nothing waiting here: once per
                # event and client, so in as few calls as it can be.
                transport = self._transport
                if self._backlog.exceeded(*transport.unsent(event)):
                    self._cut()
                    return
                if transport.write_now(event):
                    stats.delivered[transport.kind] += 1
                    if self._on_event is not None:
                        self._on_event(event)
                    return
                pending = _Accepted(event)  # taken, but the transport must wait to write it
            elif self._behind(item):
                return
            self._task = asyncio.create_task(self._run(None), name=f"pump-{self._transport.name}")
        elif self._behind(item):
            return
        if self._waiting is None:
            self._waiting = deque()
        self._waiting.append(pending)
        self._waiting_bytes += self._size(pending)

    def _behind(self, item: Item) -> bool:
        """The rule, as an item arrives: cut the client (and say so) if it is too far behind."""
        queued, unsent = self._transport.unsent(item if isinstance(item, Event) else None)
        if self._waiting:
            queued += len(self._waiting)
        if self._backlog.exceeded(queued, self._waiting_bytes + unsent):
            self._cut()
            return True
        return False

    def _cut(self) -> None:
        log.warning("%s fell too far behind in %s; cutting it: it resumes from its cursor",
                    self._transport.name, self._feed.ident.game_code)
        self.cut = True
        stats.cut_off[self._transport.kind] += 1
        self._feed.close()
        if self._waiting:
            self._waiting.clear()
            self._waiting_bytes = 0
        self._transport.cut()
        self._settle()

    async def _run(self, first: CatchUp | None, aside: Callable[[], Awaitable[None]] | None = None) -> None:
        feed, transport = self._feed, self._transport
        try:
            if first is not None:
                stats.catch_ups["replay" if first.recovered else "snapshot"] += 1
                if first.recovered:
                    if first.events:
                        await transport.write(first.events)
                        self._written(*first.events)
                else:
                    await transport.write_snapshot(first.sync_event(feed.ident.game_code), first.seq)
            if aside is not None:
                await aside()
            while self._waiting:  # None or empty: nothing behind
                item = self._waiting.popleft()
                self._waiting_bytes -= self._size(item)
                events = [item.event] if isinstance(item, _Accepted) else await feed.take(item)
                if events and not self.cut:
                    await transport.write(events)
                    self._written(*events)
        except Exception:
            if not self.cut:  # a write to a connection it dropped may fail: that is the cut
                log.exception("the pump of %s failed; closing its feed", transport.name)
            feed.close()
        finally:
            self._task = None
            if not self._waiting:
                self._waiting = None
            self._settle()

    def _written(self, *events: Event) -> None:
        stats.delivered[self._transport.kind] += len(events)
        if self._on_event is not None:
            for event in events:
                self._on_event(event)

    def _size(self, item: Item | _Accepted) -> int:
        event = item.event if isinstance(item, _Accepted) else item
        return self._transport.size(event) if isinstance(event, Event) else 0

    def _on_closed(self) -> None:
        # Not at once: a feed closes while it takes its `seat_closed`, before it is written.
        asyncio.get_running_loop().call_soon(self._settle)

    def _settle(self) -> None:
        if not self._ended and self._task is None and (self.cut or self._feed.closed):
            self._ended = True
            self._transport.ended()


