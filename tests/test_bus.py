"""The bus: bounded subscriptions that never hand their owner a gap."""

from __future__ import annotations

from arcane.bus import Bus
from arcane.events import Event
from tests.logs import subscribers


def chat(seq: int) -> Event:
    return Event("ABCDEF", "chat_message", {"text": str(seq)}, seq=seq)


async def test_an_overflowing_subscriber_keeps_what_it_holds_in_order_and_then_ends() -> None:
    bus = Bus()
    sub = bus.open_subscription("ABCDEF", maxsize=3)
    bus.publish(chat(seq) for seq in range(1, 6))
    assert sub.overflowed and sub.closed
    assert subscribers(bus) == 0
    received = [event.seq for event in sub.take_held()]
    # Contiguous from the owner's cursor: resuming after 3 from the log loses nothing.
    assert received == [1, 2, 3]
    assert sub.take_held() == []


async def test_closing_a_full_subscription_drops_nothing() -> None:
    bus = Bus()
    sub = bus.open_subscription("ABCDEF", maxsize=2)
    bus.publish([chat(1), chat(2)])
    sub.close()
    assert [event.seq for event in sub.take_held()] == [1, 2]
