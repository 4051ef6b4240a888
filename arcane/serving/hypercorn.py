"""hypercorn 0.18's private objects: its connection behind an ASGI `send`, its slim queues and
timers, its websocket extensions, and its worker's arguments.

Hypercorn passes every message the app sends through its stream, protocol and server
objects (h11 or wsproto, a lock, a drain): for one small frame or chunk that costs more
than the rest of a delivery. `connection_of` finds, behind an ASGI `send`, hypercorn's
stream, its HTTP/1.1 protocol and its TCP server, so that simple bytes (an unmasked
websocket frame, an HTTP/1.1 body chunk) can be written to the transport at once when
nothing of hypercorn's waits to be written ahead of them (arcane/serving/h11.py,
arcane/serving/engineio.py). Anywhere they are not what is expected (another server,
HTTP/2, TLS), it answers None and everything goes through hypercorn as usual.

Fast paths here: `slim_queues`, `keepalive_timer`, `no_deflate`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from arcane.queues import SlimEvent, SlimQueue
from arcane.serving.fastpaths import PATHS, reach

_WIRE = ("poll_lane", "sse_direct", "websocket_receive", "websocket_direct")
TCPServer: Any = reach("hypercorn.asyncio.tcp_server", "TCPServer", paths=_WIRE)
H11Protocol: Any = reach("hypercorn.protocol.h11", "H11Protocol", paths=_WIRE)
H11WSConnection: Any = reach("hypercorn.protocol.h11", "H11WSConnection", paths=("websocket_receive",))
HTTPStream: Any = reach("hypercorn.protocol.http_stream", "HTTPStream", paths=("sse_direct",))
ASGIHTTPState: Any = reach("hypercorn.protocol.http_stream", "ASGIHTTPState", paths=("sse_direct",))
WSStream: Any = reach("hypercorn.protocol.ws_stream", "WSStream", paths=("websocket_receive", "websocket_direct"))
ASGIWebsocketState: Any = reach("hypercorn.protocol.ws_stream", "ASGIWebsocketState",
                                paths=("websocket_receive", "websocket_direct"))
Closed: Any = reach("hypercorn.events", "Closed", paths=("poll_lane", "websocket_receive"))
RawData: Any = reach("hypercorn.events", "RawData", paths=("poll_lane", "websocket_receive"))
Updated: Any = reach("hypercorn.events", "Updated", paths=("poll_lane",))
_task_group: Any = reach("hypercorn.asyncio.task_group", paths=("slim_queues",))
_tcp_server: Any = reach("hypercorn.asyncio.tcp_server", paths=("keepalive_timer",))
_worker_context: Any = reach("hypercorn.asyncio.worker_context", paths=("slim_queues", "keepalive_timer"))
_ws_stream: Any = reach("hypercorn.protocol.ws_stream", paths=("no_deflate",))
PerMessageDeflate: Any = reach("wsproto.extensions", "PerMessageDeflate", paths=("no_deflate",))

# Above this many unsent bytes a client is reading slowly: writes go through hypercorn
# again, which awaits the drain.
HIGH_WATER = 64 * 1024


@dataclass(frozen=True, slots=True)
class Connection:
    stream: Any  # hypercorn's WSStream or HTTPStream: the request
    protocol: Any  # H11Protocol: the connection's HTTP/1.1 state
    server: Any  # TCPServer: the socket, its transport and its send lock

    @property
    def transport(self) -> asyncio.WriteTransport:
        transport: asyncio.WriteTransport = self.server.writer.transport
        return transport

    def clear(self) -> bool:
        """Nothing of hypercorn's waits to be written, and the client keeps up."""
        transport = self.transport
        return (not self.server.send_lock.locked() and not transport.is_closing()
                and transport.get_write_buffer_size() <= HIGH_WATER)


def connection_of(send: Any, stream_type: Any) -> Connection | None:
    """ASGI send -> hypercorn's `stream_type` -> H11Protocol (not TLS) -> TCPServer."""
    if TCPServer is None or stream_type is None:
        return None
    stream = getattr(send, "__self__", None)
    if not isinstance(stream, stream_type):
        return None
    return connection_of_protocol(getattr(stream.send, "__self__", None), stream)


def connection_of_protocol(protocol: Any, stream: Any = None) -> Connection | None:
    """H11Protocol (not TLS) -> TCPServer."""
    if TCPServer is None or H11Protocol is None or not isinstance(protocol, H11Protocol) or protocol.ssl:
        return None
    server = getattr(protocol.send, "__self__", None)
    if not isinstance(server, TCPServer):
        return None
    return Connection(stream, protocol, server)


def run_from_thread(loop: asyncio.AbstractEventLoop, func: Callable[..., Any], *args: Any) -> Any:
    """hypercorn's `call_soon` for an ASGI app's threads: run `func(*args)` on `loop` and wait."""
    return asyncio.run_coroutine_threadsafe(func(*args), loop).result()


# -- slim_queues --------------------------------------------------------------------------------
#
# Hypercorn gives each request (each websocket, each SSE stream) an `asyncio.Queue` for what
# the app receives, and each worker `asyncio.Event`s: 4 KB less on every open connection
# with them slim. The event class is hypercorn's own setting (`WorkerContext.event_class`);
# the queue is made in `TaskGroup.spawn_app`, replaced here by hypercorn 0.18's own code
# with only the queue's class changed.

_slim = PATHS["slim_queues"]


async def _spawn_app(self: Any, app: Any, config: Any, scope: Any, send: Any) -> Any:
    _slim.used += 1
    app_queue = SlimQueue(config.max_app_queue_size)
    self.spawn(_task_group._handle, app, config, scope, app_queue.get, send,
               partial(self._loop.run_in_executor, None), partial(run_from_thread, self._loop))
    return app_queue.put


_ORIGINAL: dict[str, Any] = {}


def _swap(owner: Any, name: str, ours: Any, wanted: bool) -> None:
    """Put `ours` at `owner.name` (remembering hypercorn's), or hypercorn's back."""
    key = f"{id(owner)}.{name}"
    if key not in _ORIGINAL:
        _ORIGINAL[key] = getattr(owner, name)
    setattr(owner, name, ours if wanted else _ORIGINAL[key])


def use_slim_queues(wanted: bool) -> None:
    if _task_group is None or _worker_context is None:
        return
    _swap(_worker_context.WorkerContext, "event_class", SlimEvent, wanted)
    _swap(_task_group.TaskGroup, "spawn_app", _spawn_app, wanted)


# -- keepalive_timer ----------------------------------------------------------------------------

_timer = PATHS["keepalive_timer"]


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
                self._fallback = _worker_context.AsyncioSingleTask()
            await self._fallback.restart(task_group, action)
            return
        _timer.used += 1
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


def use_keepalive_timer(wanted: bool) -> None:
    if _tcp_server is None or _worker_context is None:
        return
    _swap(_tcp_server, "AsyncioSingleTask", KeepAliveTimer, wanted)  # the class TCPServer makes its idle_task of


# -- no_deflate ---------------------------------------------------------------------------------
#
# Our frames are small JSON: compressing them costs CPU, and each connection's zlib state
# (about 300 KB once used) costs far more memory than the connection itself. Hypercorn offers
# no setting to turn permessage-deflate off; it takes the class from its module's globals.

_declined = PATHS["no_deflate"]


class _DeclinedDeflate(PerMessageDeflate or object):  # type: ignore[misc]
    """permessage-deflate, never agreed to."""

    def accept(self, offer: str) -> None:
        _declined.used += 1
        return None


def use_no_deflate(wanted: bool) -> None:
    if _ws_stream is None or PerMessageDeflate is None:
        return
    _swap(_ws_stream, "PerMessageDeflate", _DeclinedDeflate, wanted)


# -- the worker process ------------------------------------------------------------------------
#
# Hypercorn starts each worker with `multiprocessing` and hands it its config and shutdown
# event as the process's keyword arguments; it offers the app no other way to hear that
# the worker is stopping (arcane/shutdown.py says why that is needed), nor how many workers
# there are. Needed whatever ARCANE_FAST_PATHS says; without them, see shutdown.py.

def _worker_kwargs() -> dict[str, Any]:
    kwargs = getattr(multiprocessing.current_process(), "_kwargs", None)
    return kwargs if isinstance(kwargs, dict) else {}


def worker_shutdown_event() -> Any:
    """The shutdown event hypercorn's parent process sets, in a worker process; else None."""
    event = _worker_kwargs().get("shutdown_event")
    return event if callable(getattr(event, "is_set", None)) else None


def workers() -> int:
    """How many worker processes hypercorn started beside this one (1 when not a worker)."""
    count = getattr(_worker_kwargs().get("config"), "workers", 1)
    return count if isinstance(count, int) and count > 0 else 1
