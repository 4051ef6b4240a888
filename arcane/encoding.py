"""Encoders: an event written for one transport, once per event however many receive it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from arcane import jsoncodec
from arcane.events import Event

F = TypeVar("F")


class Encoder(Generic[F]):
    """How one transport writes an event: `encoder(event)`, made once per event and encoder.

    The last `keep` to `2 * keep` events' frames are kept, by the event's identity: a
    broadcast reaches all its recipients long before that many newer events are encoded.
    A kept frame holds its event, so no other event can meanwhile take its `id`.
    """

    __slots__ = ("name", "encode", "_keep", "_new", "_old")

    def __init__(self, name: str, encode: Callable[[Event], F], *, keep: int = 512) -> None:
        self.name = name
        self.encode = encode  # uncached: for a frame made for one recipient (a snapshot)
        self._keep = keep
        self._new: dict[int, tuple[Event, F]] = {}
        self._old: dict[int, tuple[Event, F]] = {}

    def __call__(self, event: Event) -> F:
        kept = self._new.get(id(event))
        if kept is None:
            kept = self._old.get(id(event)) or self._make(event)
        return kept[1]

    def _make(self, event: Event) -> tuple[Event, F]:
        kept = (event, self.encode(event))
        if len(self._new) >= self._keep:
            self._old, self._new = self._new, {}
        self._new[id(event)] = kept
        return kept

    def __repr__(self) -> str:
        return f"Encoder({self.name!r})"


# The event's payload as every transport carries it: encoded once, shared by all encoders.
PAYLOAD: Encoder[str] = Encoder("payload", lambda event: jsoncodec.dumps(event.data()))
