"""The app factory: Quart for HTTP and pages, Socket.IO mounted beside it, one runtime behind both."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import random
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from collections.abc import Callable
from typing import Any, cast

import socketio
from quart import Quart

from arcane import fallback, serving
from arcane import logs, shutdown
from arcane.admin import AdminState
from arcane.bus import Bus
from arcane.cluster import Cluster, RedisLimiter
from arcane.config import Settings, described
from arcane.fallback.asgi import ASGIApp
from arcane.events import draining_event
from arcane.feed import Feed
from arcane.gate import Gate
from arcane.game.scenarios import LibrarySource, ScenarioSource
from arcane.game.service import GameService
from arcane.identity import SESSION_COOKIE, Tokens
from arcane.limits import Limits, LocalLimiter
from arcane.presence import Presence
from arcane.realtime.bodies import BoundedPollingBodies
from arcane.realtime.handlers import Realtime
from arcane.recent import PER_GAME as RECENT_PER_GAME, RecentEvents
from arcane.realtime.server import SocketServer, create_server
from arcane.routes import admin, api, errors, legacy, pages
from arcane.logwatch import LogWatch
from arcane.metrics import Metrics
from arcane.serving.listen import check_backlog
from arcane.store import connect
from arcane.transports import Services

ROOT = Path(__file__).resolve().parent.parent
BACKLOG_CHECK_AFTER = 1.0  # seconds after startup: the listening sockets are open by then
DRAIN_STEP = 0.1  # the drain lets a slice of the clients go every this many seconds
SWITCH_INTERVAL = 0.0005
# Python's cycle collector, tuned for a server holding thousands of connections. With the
# default (700, 10, 10) a full collection ran every few seconds under load and, walking
# every object of every connection, stopped the event loop for 0.1 to 0.7 s each time:
# the whole of the game-night p99. Young collections now come every 20,000 allocations
# instead of 700, so far fewer short-lived objects are promoted, and full ones rarely.
GC_THRESHOLDS = (20_000, 50, 100)
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything one server process owns; opened before serving, closed after.

    The transports and the routes are given its `services`, never the runtime itself."""

    services: Services
    sio: SocketServer
    cluster: Cluster | None = None
    realtime: Realtime | None = None
    _closing_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _shutdown_watch: asyncio.Task[None] | None = None
    _log_watch: LogWatch | None = None
    admin: AdminState | None = None

    async def start(self) -> None:
        self.services.closing.clear()
        await self.services.store.open()
        await self.services.bus.start()
        await self.services.presence.start()
        await self.services.service.resume_waiting_games()
        self.services.service.start_clock()
        if self.admin is not None:
            self.admin.start()
        if self.cluster is not None:  # one process hears everything itself: nothing to watch
            self._log_watch = LogWatch(self.services.bus, self.services.store)
            self._log_watch.start()
        self._shutdown_watch = shutdown.watch(self.begin_shutdown)
        # Once hypercorn listens (its sockets may be opened after this startup): is the
        # backlog deep enough for a reconnect storm? (arcane/serving/listen.py)
        asyncio.get_running_loop().call_later(BACKLOG_CHECK_AFTER, check_backlog)
        # What is loaded by now (modules, the app) lives as long as the process: leave it out
        # of every later collection.
        gc.collect()
        gc.freeze()

    def begin_shutdown(self) -> None:
        """Shutdown has begun: no new connection is taken (refused SERVICE_UNAVAILABLE), and
        every client is told `server_draining` and let go, spread over ARCANE_DRAIN_SECONDS, so
        they reconnect at once (elsewhere, or here once restarted) without arriving together."""
        if self.services.closing.is_set():
            return
        self.services.closing.set()
        task = asyncio.ensure_future(self._drain())
        self._closing_tasks.add(task)
        task.add_done_callback(self._closing_tasks.discard)

    async def _drain(self) -> None:
        feeds = list(self.services.followers)
        sockets = list(self.realtime.connections.values()) if self.realtime is not None else []
        clients: list[Any] = [*feeds, *sockets]
        random.shuffle(clients)
        steps = max(1, round(self.services.settings.drain_seconds / DRAIN_STEP))
        letting_go: list[asyncio.Task[None]] = []
        for step in range(steps):
            for client in clients[step::steps]:
                if isinstance(client, Feed):
                    client.drain(draining_event(client.ident.game_code))
                elif self.realtime is not None:
                    letting_go.append(asyncio.ensure_future(self.realtime.drain(client)))
            if step < steps - 1:
                await asyncio.sleep(DRAIN_STEP)
        await asyncio.gather(*letting_go, return_exceptions=True)
        for feed in list(self.services.followers):  # any that came in meanwhile
            feed.close()
        if self.realtime is not None:
            await self.realtime.close_all()

    async def stop(self) -> None:
        self.begin_shutdown()
        if self._shutdown_watch is not None:
            self._shutdown_watch.cancel()
        await asyncio.gather(*self._closing_tasks, return_exceptions=True)
        await self.sio.shutdown()
        await self.services.presence.close()
        if self.admin is not None:
            await self.admin.stop()
        if self._log_watch is not None:
            await self._log_watch.stop()
        await self.services.service.close()
        await self.services.bus.stop()
        if self.cluster is not None:
            await self.cluster.close()
        await self.services.store.close()


def create_quart(settings: Settings) -> Quart:
    app = Quart("arcane", template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.secret_key = settings.resolved_secret_key()
    app.config.update(
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # The cookie's seats live as long as a token: token_ttl from the last use (the session
        # is permanent, so each response re-signs it; see identity.remember).
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.token_ttl),
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(legacy.blueprint)
    app.register_blueprint(pages.blueprint)
    errors.register(app)
    return app


def _log_to_stderr(settings: Settings) -> None:
    """Our own lines (what the server serves, Redis coming and going) reach the operator
    beside hypercorn's, at ARCANE_LOG_LEVEL and in ARCANE_LOG_FORMAT (arcane/logs.py), unless
    the host has set up logging itself."""
    logs.configure(settings.log_level, settings.log_format)


def create_app(settings: Settings | None = None, *, source: ScenarioSource | None = None) -> Gate:
    settings = settings or Settings.from_env()
    _log_to_stderr(settings)
    # SQLite runs in aiosqlite's threads; under load the busy event loop would keep each of
    # them waiting up to the default 5 ms for the GIL at every statement.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    # The fast paths through hypercorn, h11, wsproto and Engine.IO: on as far as they may be.
    serving.configure(settings.fast_paths, compression=settings.websocket_compression)
    # Without Redis: one process, the memory bus, presence and limits kept here.
    cluster = Cluster(settings) if settings.redis_url else None
    bus = cluster.bus if cluster else Bus()
    # Never more than the log keeps: a cursor the log can no longer honour gets its snapshot.
    bus.recent = RecentEvents(per_game=min(RECENT_PER_GAME, settings.log_retention))
    limiter = cluster.limiter if cluster else LocalLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    store = connect(settings.database, retention=settings.log_retention, on_commit=bus.publish)
    service = GameService(store, settings, source or LibrarySource(), publish=bus.publish)
    presence = Presence(grace=settings.presence_grace, publish=bus.publish, roster=service.roster,
                        directory=cluster.directory if cluster else None)
    service.online = presence.online
    presence.on_gone = service.player_gone
    sio = create_server(settings)
    quart_app = create_quart(settings)
    # Address and read limits go through the same Limiter as the action limit: shared over Redis.
    limits = Limits(settings, functools.partial(RedisLimiter, cluster.link) if cluster else LocalLimiter)
    secret = quart_app.secret_key
    assert isinstance(secret, str)  # create_quart's, from Settings.resolved_secret_key
    services = Services(settings, store, bus, service, Tokens(secret), presence, limiter, limits,
                        redis=cluster.link if cluster else None)
    runtime = Runtime(services, sio, cluster)
    quart_app.extensions["arcane"] = services
    runtime.realtime = Realtime(services, sio, _session_loader(quart_app))
    realtime = runtime.realtime
    quart_app.extensions["arcane_metrics"] = Metrics(services, lambda: len(realtime.connections))
    runtime.admin = quart_app.extensions["arcane_admin"] = AdminState(services, lambda: list(realtime.connections.values()))

    @quart_app.before_serving
    async def start() -> None:
        await runtime.start()
        if cluster is None and shutdown.hypercorn_workers() > 1:
            log.error("hypercorn runs %d worker processes but ARCANE_REDIS_URL is not set: each "
                      "worker only sees its own events. Set ARCANE_REDIS_URL, or run one worker.",
                      shutdown.hypercorn_workers())
        log.info("serving with database %s on %s's event loop%s", described(settings.database),
                 loop_name(asyncio.get_running_loop()),
                 f", joined to other processes through Redis at {cluster.link.where}" if cluster else "")

    @quart_app.after_serving
    async def stop() -> None:
        await runtime.stop()

    # No on_startup/on_shutdown here: with either set, Quart's serving hooks never run.
    # SSE, long-poll and the hot HTTP actions (chat, typing, choices) are served outside Quart.
    # Quart types its ASGI messages as TypedDicts; what it is handed here is exactly those.
    streams = fallback.FallbackRoutes(cast(ASGIApp, quart_app), services, _session_loader(quart_app),
                                      actions=fallback.Actions.of(quart_app, lambda: services))
    asgi = socketio.ASGIApp(sio, other_asgi_app=streams)
    # Engine.IO's polling POSTs, bounded before Engine.IO reads them (arcane/realtime/bodies.py).
    asgi.engineio_server = BoundedPollingBodies(
        sio, path="/socket.io/", limit=settings.max_payload,
        timeout=settings.ping_interval + settings.ping_timeout, closing=lambda: services.closing)
    asgi.quart = quart_app
    asgi.runtime = runtime
    return Gate(asgi, settings)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """uvloop or asyncio: `hypercorn -k uvloop` or `python -m arcane` choose it (arcane/serving/runner.py)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _session_loader(app: Quart) -> Callable[[str], dict[str, Any] | None]:
    """Decode Quart's signed session cookie outside a request (for Socket.IO connects)."""
    serializer = app.session_interface.get_signing_serializer(app)
    max_age = int(app.permanent_session_lifetime.total_seconds())

    def load(value: str) -> dict[str, Any] | None:
        if serializer is None:
            return None
        try:
            data = serializer.loads(value, max_age=max_age)
        except Exception:
            return None
        return data if isinstance(data, dict) else None

    return load
