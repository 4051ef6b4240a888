"""GET /metrics: this process's metrics in Prometheus's text format, through prometheus-client
(its types, its registry, its exposition; nothing written by hand).

Names follow Prometheus's conventions: the `arcane_` prefix, `_total` for counters, `_seconds`
and `_bytes` for units. Labels are bounded: a transport (socketio, sse, longpoll, http), an
action or event name from a fixed set, an error code, a phase; never a game or a player.

The counts come from arcane/stats.py (kept where things happen, cheaply) and are read at
each scrape by `ArcaneCollector`; what is asked of the database and Redis (games by phase,
whether each answers) is asked once per scrape, before the exposition. The process's CPU,
memory and open descriptors are prometheus-client's own `ProcessCollector`.

Each process serves its own: scrape every process (docs/operations.md). The route is refused
unless the caller presents ARCANE_ADMIN_TOKEN (arcane/routes/admin.py `require_admin`).
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Callable, Iterator
from importlib import metadata

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily,
                                    InfoMetricFamily, Metric)
from prometheus_client.registry import Collector

from arcane import stats
from arcane.transports import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PHASES = ("lobby", "interrogation", "playing", "finished")
TRANSPORTS = ("socketio", "sse", "longpoll")
PROBE_TIMEOUT = 1.0


class Scrape:
    """What is asked of the outside world once per scrape."""

    def __init__(self) -> None:
        self.games: dict[str, int] = {}
        self.database_up = 0
        self.redis_up: int | None = None  # None: not configured


class ArcaneCollector(Collector):
    def __init__(self, services: Services, socket_count: Callable[[], int]) -> None:
        self._services = services
        self._sockets = socket_count
        self.scrape = Scrape()

    def collect(self) -> Iterator[Metric]:
        s, scrape = self._services, self.scrape
        connections = GaugeMetricFamily("arcane_connections", "Open client connections, by transport",
                                        labels=["transport"])
        open_now = {"socketio": self._sockets(), "sse": stats.open_streams["sse"],
                    "longpoll": stats.open_streams["longpoll"]}
        for transport in TRANSPORTS:
            connections.add_metric([transport], open_now[transport])
        yield connections
        games = GaugeMetricFamily("arcane_games", "Games in the database, by phase", labels=["phase"])
        for phase in PHASES:
            games.add_metric([phase], scrape.games.get(phase, 0))
        yield games
        yield GaugeMetricFamily("arcane_players_online", "Players with a live connection to this process",
                                value=s.presence.local_players())
        yield CounterMetricFamily("arcane_events_published_total",
                                  "Events published on this process's bus (committed, ephemeral, or relayed)",
                                  value=stats.published)
        delivered = CounterMetricFamily("arcane_events_delivered_total", "Events written to clients, by transport",
                                        labels=["transport"])
        for transport in TRANSPORTS:
            delivered.add_metric([transport], stats.delivered[transport])
        yield delivered
        actions = HistogramMetricFamily("arcane_action_seconds", "Actions from receipt to acknowledgement",
                                        labels=["action", "transport"])
        for (name, transport), histogram in sorted(stats.actions.items()):
            actions.add_metric([name, transport], histogram.cumulative(), histogram.total)
        yield actions
        errors = CounterMetricFamily("arcane_errors_total", "Refusals sent to clients, by error code",
                                     labels=["code"])
        for code, count in sorted(stats.errors.items()):
            errors.add_metric([code], count)
        yield errors
        yield CounterMetricFamily("arcane_rate_limited_total", "Actions and reads refused for their rate",
                                  value=stats.errors["RATE_LIMITED"])
        catch_ups = CounterMetricFamily("arcane_catch_ups_total", "Catch-ups on (re)connect, by kind",
                                        labels=["kind"])
        for kind in ("replay", "snapshot"):
            catch_ups.add_metric([kind], stats.catch_ups[kind])
        yield catch_ups
        cut = CounterMetricFamily("arcane_slow_consumers_cut_total",
                                  "Clients cut off for falling too far behind, by transport", labels=["transport"])
        for transport in TRANSPORTS:
            cut.add_metric([transport], stats.cut_off[transport])
        yield cut
        yield _histogram("arcane_store_commit_seconds", "The store's commits, from start to COMMIT",
                         stats.commit_seconds)
        yield _histogram("arcane_store_batch_size", "Actions per commit (group commit)", stats.batch_size)
        yield GaugeMetricFamily("arcane_database_up", "Whether the database answered this scrape",
                                value=scrape.database_up)
        reconnects = CounterMetricFamily("arcane_reconnects_total", "Redis or PostgreSQL back after being away",
                                         labels=["to"])
        for target in ("redis", "postgresql"):
            reconnects.add_metric([target], stats.reconnects[target])
        yield reconnects
        if scrape.redis_up is not None:
            yield GaugeMetricFamily("arcane_redis_up", "Whether Redis answered this scrape", value=scrape.redis_up)
        info = InfoMetricFamily("arcane_build", "The server's version and what it runs on")
        info.add_metric([], _build_info())
        yield info


def _histogram(name: str, documentation: str, histogram: stats.Histogram) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], histogram.cumulative(), histogram.total)
    return family


def _build_info() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "unknown"

    return {"version": version("arcane-codex"), "python": platform.python_version(),
            "hypercorn": version("hypercorn"), "python_socketio": version("python-socketio")}


class Metrics:
    """One process's registry: ours, and prometheus-client's process collector."""

    def __init__(self, services: Services, socket_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.collector = ArcaneCollector(services, socket_count)
        self.registry.register(self.collector)
        self.registry.register(ProcessCollector(registry=None))
        self._services = services

    async def exposition(self) -> bytes:
        """Ask the database and Redis, then render every metric."""
        s, scrape = self._services, self.collector.scrape
        try:
            rows = await asyncio.wait_for(
                s.store.fetchall("SELECT phase, COUNT(*) AS n FROM games GROUP BY phase"), PROBE_TIMEOUT)
            scrape.games = {row["phase"]: int(row["n"]) for row in rows}
            scrape.database_up = 1
        except Exception:  # away, refused or slow: down, and the games as last seen
            scrape.database_up = 0
        if s.redis is not None:
            try:
                await asyncio.wait_for(s.redis.client.ping(), PROBE_TIMEOUT)
                scrape.redis_up = 1
            except Exception:
                scrape.redis_up = 0
        return generate_latest(self.registry)

