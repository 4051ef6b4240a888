"""The event loop the server runs on (arcane/loop.py): uvloop by default, asyncio's on request."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest

from arcane import loop as event_loop


@pytest.fixture
def restore_policy() -> Iterator[None]:
    policy = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(policy)


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_the_chosen_loop_runs_and_its_signal_handlers_can_be_chained(choice: str, restore_policy: None) -> None:
    assert event_loop.choose(f" {choice.upper()} ") == choice
    heard: list[str] = []

    async def main() -> tuple[str, bool]:
        loop = asyncio.get_running_loop()
        assert event_loop.signal_handler(loop, signal.SIGTERM) is None
        loop.add_signal_handler(signal.SIGTERM, heard.append, "hypercorn's")
        previous = event_loop.signal_handler(loop, signal.SIGTERM)
        assert previous is not None
        previous()
        loop.remove_signal_handler(signal.SIGTERM)
        return event_loop.kind(loop), event_loop.signal_handler(loop, signal.SIGTERM) is None

    with asyncio.Runner() as runner:
        assert runner.run(main()) == (choice, True)
    assert heard == ["hypercorn's"]


def test_an_unknown_loop_is_refused_by_name(restore_policy: None) -> None:
    with pytest.raises(ValueError, match="ARCANE_EVENT_LOOP must be one of uvloop, asyncio, got 'trio'"):
        event_loop.choose("trio")
    assert event_loop.choose("") == "uvloop"
