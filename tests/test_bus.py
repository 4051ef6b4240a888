"""The bus: bounded subscriptions that never hand their owner a gap."""

from __future__ import annotations

from arcane.bus import Bus
from arcane.events import Event


def chat(seq: int) -> Event:
    return Event("ABCDEF", "chat_message", {"text": str(seq)}, seq=seq)


async def test_an_overflowing_subscriber_keeps_what_it_holds_in_order_and_then_ends() -> None:
    bus = Bus()
    sub = bus.open_subscription("ABCDEF", maxsize=3)
    bus.publish(chat(seq) for seq in range(1, 6))
    assert sub.overflowed and sub.closed
    assert bus.subscriber_count() == 0
    received = [event.seq async for event in sub]
    # Contiguous from the owner's cursor: resuming after 3 from the log loses nothing.
    assert received == [1, 2, 3]
    assert await sub.get() is None


async def test_closing_a_full_subscription_drops_nothing() -> None:
    bus = Bus()
    sub = bus.open_subscription("ABCDEF", maxsize=2)
    bus.publish([chat(1), chat(2)])
    sub.close()
    assert [event.seq async for event in sub] == [1, 2]
