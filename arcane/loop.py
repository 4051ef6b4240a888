"""Which event loop the server runs on: uvloop's by default, asyncio's own on request.

`choose()` runs when `arcane:app` is imported: hypercorn loads the app before it makes
its event loop, and makes that loop from the policy set here. uvloop runs the same code
about a fifth faster (docs/scaling.md). Without uvloop installed (Windows), or with
ARCANE_EVENT_LOOP=asyncio, asyncio's own loop is used.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

Ts = TypeVarTuple("Ts")

CHOICES = ("uvloop", "asyncio")


def choose(choice: str | None = None) -> str:
    """Set the policy new event loops come from; answers the loop chosen."""
    raw = choice if choice is not None else os.environ.get("ARCANE_EVENT_LOOP", "")
    choice = raw.strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise ValueError(f"ARCANE_EVENT_LOOP must be one of {', '.join(CHOICES)}, got {raw!r}")
    if choice == "uvloop":
        try:
            policy: asyncio.AbstractEventLoopPolicy | None = _uvloop_policy()
        except ImportError:
            policy, choice = None, "asyncio"
    else:
        policy = None
    asyncio.set_event_loop_policy(policy)
    return choice


def kind(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith(("uvloop", __name__)) else "asyncio"


def signal_handler(loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> Callable[[], None] | None:
    """The callback `loop` runs on `sig`, if any (arcane/shutdown.py chains in front of it)."""
    remembered = getattr(loop, "signal_callbacks", None)  # our uvloop subclass
    if isinstance(remembered, dict):
        return remembered.get(sig)
    handles = getattr(loop, "_signal_handlers", None)  # asyncio's own loops
    handle = handles.get(sig) if isinstance(handles, dict) else None
    return handle._run if handle is not None else None


def _uvloop_policy() -> asyncio.AbstractEventLoopPolicy:
    import uvloop

    class Loop(uvloop.Loop):
        """uvloop's loop, remembering its signal handlers as asyncio's loops do: uvloop keeps
        them where Python cannot read them."""

        def __init__(self) -> None:
            super().__init__()
            self.signal_callbacks: dict[int, Callable[[], object]] = {}

        def add_signal_handler(self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: Unpack[Ts]) -> None:
            super().add_signal_handler(sig, callback, *args)
            self.signal_callbacks[sig] = functools.partial(callback, *args)

        def remove_signal_handler(self, sig: int) -> bool:
            self.signal_callbacks.pop(sig, None)
            return bool(super().remove_signal_handler(sig))

    class Policy(asyncio.DefaultEventLoopPolicy):
        def _loop_factory(self) -> asyncio.AbstractEventLoop:
            return Loop()

    return Policy()
