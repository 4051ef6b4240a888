"""What this process has done, counted where it happens: plain integers and a small histogram,
cheap enough for the paths that run for every delivery. arcane/metrics.py turns them into
Prometheus metrics at each scrape (through prometheus-client's own types and exposition).

Counts are per process, from its start: with several processes each serves its own
/metrics, and Prometheus adds them up (docs/operations.md).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Events published on this process's bus (committed and ephemeral), and delivered to a
# client by each transport (socketio, sse, longpoll).
published = 0
delivered: Counter[str] = Counter()
# Refusals by error code (arcane/transports.py Refusal: every transport's one renderer).
errors: Counter[str] = Counter()
# Catch-ups on (re)connect: `replay` from the log, or `snapshot` (reconnect_sync).
catch_ups: Counter[str] = Counter()
# Clients cut for falling too far behind, by transport.
cut_off: Counter[str] = Counter()
# Redis and PostgreSQL coming back after being away.
reconnects: Counter[str] = Counter()
# SSE streams and waiting long-polls open now (Socket.IO's are counted where they are kept),
# in all and by (game, transport) for the admin dashboard (an entry goes with its last stream).
open_streams: Counter[str] = Counter()
open_by_game: Counter[tuple[str, str]] = Counter()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    """Observations into fixed buckets (upper bounds), their count and sum: what a Prometheus
    histogram holds, without a lock (one event loop writes it)."""

    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """(upper bound, observations at or below it), +Inf last: the exposition's buckets."""
        running = 0
        buckets = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(running)))
        return buckets


# Actions by name (a socket event, or an HTTP action route), from receipt to acknowledgement.
actions: dict[tuple[str, str], Histogram] = {}
# The store's commits: how long each took, and how many actions each carried.
commit_seconds = Histogram(LATENCY_BUCKETS)
batch_size = Histogram(BATCH_BUCKETS)


def action(name: str, transport: str, seconds: float) -> None:
    histogram = actions.get((name, transport))
    if histogram is None:
        histogram = actions[(name, transport)] = Histogram(LATENCY_BUCKETS)
    histogram.observe(seconds)
