"""The one interface of the transports: encoders, the pump's one rule, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from arcane.bus import Bus
from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event
from arcane.feed import Backlog, Feed
from arcane.game.records import Identity
from arcane.limits import RateLimited
from arcane.transports import Encoder, Pump, Refusal

GAME = "ABCDEF"


def chat(seq: int, text: str = "hi") -> Event:
    return Event(GAME, "chat_message", {"text": text}, seq=seq, timestamp=1.0)


def test_an_event_is_encoded_once_per_encoder_however_many_ask() -> None:
    made: list[int | None] = []
    encoder = Encoder("test", lambda event: made.append(event.seq) or f"frame {event.seq}")
    event = chat(1)
    assert [encoder(event) for _ in range(1000)] == ["frame 1"] * 1000
    assert made == [1]
    other = Encoder("other", lambda event: "other")
    assert other(event) == "other", "each encoder keeps its own frames"
    assert not hasattr(event, "__dict__"), "the event keeps no frame of its own"


def test_an_encoder_keeps_only_the_frames_of_the_latest_events() -> None:
    made: list[int | None] = []
    encoder = Encoder("test", lambda event: made.append(event.seq) or "x", keep=4)
    first = chat(1)
    encoder(first)
    for seq in range(2, 12):
        encoder(chat(seq))
    encoder(first)
    assert made == [1, *range(2, 12), 1], "made again once it is no longer kept"


class Stuck:
    """A transport whose client stopped reading: nothing can be written at once."""

    kind = "test"

    name = "a stuck client"

    def __init__(self) -> None:
        self.written: list[Event] = []
        self.was_cut = self.has_ended = False
        self.release = asyncio.Event()

    def write_now(self, event: Event) -> bool:
        return False

    async def write(self, events: Sequence[Event]) -> None:
        await self.release.wait()
        self.written.extend(events)

    async def write_snapshot(self, event: Event, seq: int) -> None:
        self.written.append(event)

    def size(self, event: Event) -> int:
        return 100

    def unsent(self, event: Event | None = None) -> tuple[int, int]:
        return (0, 0) if event is None else (1, self.size(event))

    def cut(self) -> None:
        self.was_cut = True

    def ended(self) -> None:
        self.has_ended = True


def pumped(backlog: Backlog) -> tuple[Bus, Feed, Stuck, Pump]:
    bus = Bus()
    feed = Feed(bus, Identity(GAME, "ann"), store=None, snapshot=None)  # type: ignore[arg-type]  # no catch-up here
    stuck = Stuck()
    pump = Pump(feed, stuck, backlog)
    pump.start(None)
    return bus, feed, stuck, pump


async def test_a_client_that_falls_more_than_the_backlog_behind_is_cut() -> None:
    bus, feed, stuck, pump = pumped(Backlog(events=3, bytes=10**6))
    bus.publish([chat(1), chat(2), chat(3)])
    assert not pump.cut and not stuck.was_cut
    bus.publish([chat(4)])
    assert pump.cut and stuck.was_cut and feed.closed
    await asyncio.sleep(0)
    assert stuck.has_ended
    await pump.stop()


async def test_the_bytes_waiting_count_too() -> None:
    bus, feed, stuck, pump = pumped(Backlog(events=1000, bytes=250))
    bus.publish([chat(1), chat(2)])
    assert not pump.cut
    bus.publish([chat(3)])  # 300 bytes waiting
    assert pump.cut and stuck.was_cut
    await pump.stop()


async def test_a_client_that_catches_up_gets_everything_in_order() -> None:
    bus, feed, stuck, pump = pumped(Backlog(events=3, bytes=10**6))
    bus.publish([chat(1), chat(2), chat(3)])
    stuck.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert [e.seq for e in stuck.written] == [1, 2, 3] and not pump.cut
    feed.close()
    for _ in range(3):
        await asyncio.sleep(0)
    assert stuck.has_ended and not stuck.was_cut
    await pump.stop()


def test_a_refusal_reads_the_same_on_every_transport() -> None:
    refusal = Refusal(ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game"))
    error: dict[str, Any] = {"code": "NOT_IN_GAME", "message": "you are not in this game"}
    assert refusal.body == {"error": error}  # the HTTP answer and the ack
    assert refusal.http() == (403, [(b"content-type", b"application/json")],
                              b'{"error":{"code":"NOT_IN_GAME","message":"you are not in this game"}}')
    assert refusal.payload(event="chat_message") == error | {"event": "chat_message"}
    event = refusal.event(GAME, event="chat_message")
    assert (event.name, event.payload, event.seq) == ("error", error | {"event": "chat_message"}, None)
    status, headers, _ = Refusal(RateLimited("slow down", retry_after=2)).http()
    assert status == 429 and (b"retry-after", b"2") in headers
