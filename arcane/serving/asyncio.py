"""asyncio's event loop policy: the loop `hypercorn arcane:app` runs on, which remembers its
signal handlers.

`hypercorn arcane:app` makes its event loop in the worker, after importing the app, with
`asyncio.Runner()` and no loop factory (its `asyncio` worker class, the default): that
loop comes from the event loop policy, so the policy is the only place the app can
choose it. Hypercorn's public ways to choose (`-k uvloop`, `worker_class = "uvloop"` in
a config file, `serve()` in one's own loop) are all the operator's, before the app is
imported; none keeps `hypercorn arcane:app` on uvloop by itself. Python 3.14 deprecates
policies (3.16 removes them): there the warning is silenced, and once they are gone
`hypercorn arcane:app` runs asyncio's loop and `-k uvloop` chooses uvloop.

Each loop made here remembers the callbacks given to `add_signal_handler`, as neither
uvloop nor asyncio lets Python read them back; arcane/shutdown.py chains in front of
hypercorn's. Only public methods are overridden.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any

CHOICES = ("uvloop", "asyncio")


class _Remembering:
    """A loop that keeps the callback of each signal handler it is given (`signal_callbacks`)."""

    signal_callbacks: dict[int, Callable[[], None]]

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        super().add_signal_handler(sig, callback, *args)  # type: ignore[misc]
        self.signal_callbacks[sig] = functools.partial(callback, *args)

    def remove_signal_handler(self, sig: int) -> bool:
        self.signal_callbacks.pop(sig, None)
        return bool(super().remove_signal_handler(sig))  # type: ignore[misc]


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    base = asyncio.ProactorEventLoop if sys.platform == "win32" else asyncio.SelectorEventLoop  # type: ignore[attr-defined]

    class Loop(_Remembering, base):  # type: ignore[misc, valid-type]
        """asyncio's own loop, remembering its signal handlers."""

        def __init__(self) -> None:
            super().__init__()
            self.signal_callbacks = {}

    loop: asyncio.AbstractEventLoop = Loop()
    return loop


@functools.cache
def _uvloop_class() -> type[asyncio.AbstractEventLoop]:
    import uvloop

    class Loop(_Remembering, uvloop.Loop):  # type: ignore[misc]
        """uvloop's loop, remembering its signal handlers: uvloop keeps them where Python cannot read them."""

        def __init__(self) -> None:
            super().__init__()
            self.signal_callbacks = {}

    return Loop


def _uvloop_loop() -> asyncio.AbstractEventLoop:
    return _uvloop_class()()


def use(choice: str) -> str:
    """New event loops (hypercorn's among them) are `choice`'s, if it can be had; answers the
    loop chosen (asyncio's without uvloop installed)."""
    factory = _asyncio_loop
    if choice == "uvloop":
        try:
            _uvloop_class()
            factory = _uvloop_loop
        except ImportError:
            choice = "asyncio"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.14 deprecates policies

        class Policy(asyncio.DefaultEventLoopPolicy):
            def new_event_loop(self) -> asyncio.AbstractEventLoop:
                return factory()

        asyncio.set_event_loop_policy(Policy())
    return choice


def kind(loop: asyncio.AbstractEventLoop) -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    return "uvloop" if isinstance(loop, uvloop.Loop) else "asyncio"


def signal_handler(loop: asyncio.AbstractEventLoop, sig: int) -> Callable[[], None] | None:
    """The callback `loop` runs on `sig`, if any, and if the loop is one of ours."""
    remembered = getattr(loop, "signal_callbacks", None)
    return remembered.get(sig) if isinstance(remembered, dict) else None
