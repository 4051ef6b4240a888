"""Events as the log, the bus and every transport see them, and who may see each."""

from __future__ import annotations

import itertools
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any

ROOM = "room"
# Logged to the seat alone when it leaves the game: every feed of that seat ends with it.
SEAT_CLOSED = "seat_closed"
EPHEMERAL_EVENTS = frozenset({"player_typing", "presence_update", "pong", "error", "server_draining",
                              "player_connected", "player_disconnected"})


def draining_event(game_code: str) -> Event:
    """Told to each client of a server that is stopping (`Runtime.begin_shutdown`): reconnect
    at once, without waiting out a backoff; the drain spreads these over ARCANE_DRAIN_SECONDS."""
    return Event(game_code, "server_draining", {"reconnect": True})


def player_audience(player_id: str) -> str:
    return f"player:{player_id}"


@lru_cache(maxsize=16_384)  # asked for every delivery: a viewer's tuple is made once
def audiences(player_id: str | None) -> tuple[str, ...]:
    """The audiences whose events a viewer may see: the one place that decides it. The log's
    reads ask for exactly these (arcane/store/*.py); the bus's deliveries check them."""
    return (ROOM,) if player_id is None else (ROOM, player_audience(player_id))


def visible_to(audience: str, player_id: str | None) -> bool:
    return audience in audiences(player_id)


@dataclass(frozen=True, slots=True)
class Event:
    """A game event. Logged events carry a seq; ephemeral ones (seq None) are never stored.

    `exclude` names a player who must not receive it (the typist of `player_typing`).
    `cause` is the id of the request that caused it, if its caller gave one (`new_request`): a
    transport may answer that request together with the event. It is neither logged nor
    sent to other processes.
    """

    game_code: str
    name: str
    payload: dict[str, Any]
    audience: str = ROOM
    seq: int | None = None
    timestamp: float = 0.0
    exclude: str | None = None
    cause: int | None = field(default=None, compare=False)

    @property
    def logged(self) -> bool:
        return self.seq is not None

    def visible_to(self, player_id: str | None) -> bool:
        if self.exclude is not None and self.exclude == player_id:
            return False
        return visible_to(self.audience, player_id)

    def data(self) -> dict[str, Any]:
        """The payload a client receives: logged events carry seq and timestamp. Do not mutate."""
        if self.seq is None:
            return self.payload
        return {**self.payload, "seq": self.seq, "timestamp": self.timestamp}

    def to_wire(self) -> dict[str, Any]:
        """The event as it crosses between server processes (see `from_wire`)."""
        return {"g": self.game_code, "n": self.name, "p": self.payload, "a": self.audience,
                "s": self.seq, "t": self.timestamp, "x": self.exclude}

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Event:
        return cls(wire["g"], wire["n"], wire["p"], wire["a"], wire["s"], wire["t"], wire["x"])


_requests = itertools.count(1)


def new_request() -> int:
    """A fresh request id for `Event.cause`: unique in this process."""
    return next(_requests)
