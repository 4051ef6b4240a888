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
from dataclasses import dataclass, field
from typing import Any

from arcane import jsoncodec
from arcane.bus import Bus
from arcane.config import Settings
from arcane.errors import ArcaneError
from arcane.encoding import PAYLOAD, Encoder
from arcane.events import Event
from arcane.feed import Feed
from arcane.game.service import GameService
from arcane.identity import Tokens
from arcane.limits import Limiter, Limits, retry_after_header
from arcane.presence import Presence
from arcane.store import Store

__all__ = ["PAYLOAD", "Encoder", "Refusal", "Services"]


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


@dataclass(frozen=True, slots=True)
class Refusal:
    """An `ArcaneError` as each transport shows it: the one place that renders one."""

    error: ArcaneError

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
