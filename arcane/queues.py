"""An `asyncio.Queue` and an event that cost next to nothing while nobody uses them.

Every connection has a queue or two that are empty nearly all the time. An
`asyncio.Queue` keeps three deques and an `asyncio.Event` (a fourth deque) from the
start: 3 KB on each idle connection, and an `asyncio.Event` alone is 0.9 KB. These
make their containers on first use and drop them after; they offer the same methods,
with the same meaning. The bus, the connections and the long-polls use them, and
hypercorn is given them too (arcane/serving/hypercorn.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any


class SlimQueue:
    __slots__ = ("_maxsize", "_items", "_getters", "_putters", "_unfinished", "_joiners", "on_put")

    def __init__(self, maxsize: int = 0) -> None:
        self._maxsize = maxsize
        # Called after each put, for an owner that wants to hear of an item without a task
        # waiting on get() (an SSE stream watching for the client's disconnect).
        self.on_put: Callable[[], None] | None = None
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None
        self._putters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self._maxsize <= self.qsize()

    def put_nowait(self, item: Any) -> None:
        if self.full():
            raise asyncio.QueueFull
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._unfinished += 1
        _wake(self._getters)  # each getter checks again, so a cancelled one loses no item
        if self.on_put is not None:
            self.on_put()

    async def put(self, item: Any) -> None:
        while self.full():
            await self._park("_putters")
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        _wake(self._putters)
        return item

    async def get(self) -> Any:
        while not self._items:
            await self._park("_getters")
        return self.get_nowait()

    async def _park(self, waiters: str) -> None:
        """Wait to be woken through the list in slot `waiters`, made for the wait and dropped after."""
        waiter = asyncio.get_running_loop().create_future()
        parked: list[asyncio.Future[None]] | None = getattr(self, waiters)
        if parked is None:
            parked = []
            setattr(self, waiters, parked)
        parked.append(waiter)
        try:
            await waiter
        finally:
            parked.remove(waiter)
            if not parked and getattr(self, waiters) is parked:
                setattr(self, waiters, None)

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            _wake(self._joiners)

    async def join(self) -> None:
        while self._unfinished:
            await self._park("_joiners")


def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)


class SlimEvent:
    """hypercorn's event interface (`hypercorn.typing.Event`): async set/clear/wait, is_set."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    async def clear(self) -> None:
        self._set = False

    async def set(self) -> None:
        self._set = True
        _wake(self._waiters)
        self._waiters = None

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
