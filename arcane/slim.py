"""An `asyncio.Queue` and an event that cost next to nothing while nobody uses them.

Every connection has a queue or two that are empty nearly all the time. An
`asyncio.Queue` keeps three deques and an `asyncio.Event` (a fourth deque) from the
start: 3 KB on each idle connection, and an `asyncio.Event` alone is 0.9 KB. These
make their containers on first use and drop them after; they offer the same methods,
with the same meaning. `slim_hypercorn()` has hypercorn use them for its per-request
queue and per-connection event, and a timer handle for its keep-alive timeout instead
of a task per idle connection.
"""

from __future__ import annotations

import asyncio
import weakref
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


class KeepAliveTimer:
    """hypercorn's keep-alive timeout (`TCPServer.idle_task`) as one timer handle.

    hypercorn keeps a task per idle connection that waits, through `wait_for` and a second
    task, for the timeout or the worker's shutdown (`context.terminated`), and cancels and
    remakes it around every request: for a long-poller asking twice a second that was a
    twentieth of the event loop. Here `restart` schedules a call and `stop` cancels it; at
    the timeout the connection is closed as hypercorn closes it (`_initiate_server_close`,
    in the connection's task group), and so is every idle connection once the worker's
    `terminated` is set (one task per worker waits for it). For any other action than
    hypercorn's own `_idle_timeout`, hypercorn's task is used as before.
    """

    __slots__ = ("_handle", "_server", "_group", "_fallback", "__weakref__")

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None
        self._server: Any = None
        self._group: Any = None
        self._fallback: Any = None

    async def restart(self, task_group: Any, action: Callable[[], Any]) -> None:
        self._cancel()
        server: Any = getattr(action, "__self__", None)
        if getattr(action, "__name__", None) != "_idle_timeout" or not hasattr(server, "_initiate_server_close"):
            if self._fallback is None:
                from hypercorn.asyncio.worker_context import AsyncioSingleTask

                self._fallback = AsyncioSingleTask()
            await self._fallback.restart(task_group, action)
            return
        self._server, self._group = server, task_group
        if server.context.terminated.is_set():
            self.close()
            return
        self._handle = asyncio.get_running_loop().call_later(server.config.keep_alive_timeout, self.close)
        _idle_in(server.context).add(self)

    async def stop(self) -> None:
        self._cancel()
        if self._fallback is not None:
            await self._fallback.stop()

    def close(self) -> None:
        """The connection is idle too long, or the worker is shutting down: close it."""
        if self._server is None:
            return
        self._cancel()
        server, group = self._server, self._group
        self._server = self._group = None
        try:
            group._task_group.create_task(server._initiate_server_close())
        except RuntimeError:  # the connection's task group has ended: it is closed already
            pass

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()  # the handle lets go of its callback, and of us
            self._handle = None
            if self._server is not None:
                _idle_in(self._server.context).discard(self)


# The waiting timers of each hypercorn worker, and one task per worker that closes their
# connections when the worker's `terminated` is set.
_idle: weakref.WeakKeyDictionary[Any, weakref.WeakSet[KeepAliveTimer]] = weakref.WeakKeyDictionary()
_watching: set[asyncio.Task[None]] = set()


def _idle_in(context: Any) -> weakref.WeakSet[KeepAliveTimer]:
    timers = _idle.get(context)
    if timers is None:
        timers = _idle[context] = weakref.WeakSet()
        task = asyncio.ensure_future(_close_at_shutdown(context.terminated, timers))
        _watching.add(task)
        task.add_done_callback(_watching.discard)
    return timers


async def _close_at_shutdown(terminated: Any, timers: weakref.WeakSet[KeepAliveTimer]) -> None:
    await terminated.wait()
    for timer in list(timers):
        timer.close()


def run_from_thread(loop: asyncio.AbstractEventLoop, func: Callable[..., Any], *args: Any) -> Any:
    """hypercorn's `call_soon` for an ASGI app's threads: run `func(*args)` on `loop` and wait."""
    return asyncio.run_coroutine_threadsafe(func(*args), loop).result()


def slim_hypercorn() -> None:
    """Hypercorn gives each request (each websocket, each SSE stream) an `asyncio.Queue`
    for what the app receives, and each connection an `asyncio.Event`: make them slim.
    The event class is hypercorn's own setting (`WorkerContext.event_class`); the queue
    is made in `TaskGroup.spawn_app`, replaced here by hypercorn 0.18's own code with only
    the queue's class changed."""
    from functools import partial

    from hypercorn.asyncio import task_group, tcp_server, worker_context

    worker_context.WorkerContext.event_class = SlimEvent
    tcp_server.AsyncioSingleTask = KeepAliveTimer  # type: ignore[attr-defined, assignment]  # TCPServer's idle_task

    async def spawn_app(self: Any, app: Any, config: Any, scope: Any, send: Any) -> Any:
        app_queue = SlimQueue(config.max_app_queue_size)
        self.spawn(task_group._handle, app, config, scope, app_queue.get, send,
                   partial(self._loop.run_in_executor, None), partial(run_from_thread, self._loop))
        return app_queue.put

    task_group.TaskGroup.spawn_app = spawn_app  # type: ignore[method-assign]
