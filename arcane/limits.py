"""Limits: token buckets per player, per client address and per identity, and caps on live
connections (docs/security.md).

Every bucket goes through one `Limiter` interface, so with Redis (`ARCANE_REDIS_URL`) the
address and read limits are shared across processes exactly as the action limit is
(arcane/cluster.py `RedisLimiter`). Connection caps count this process's live connections.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from arcane.config import Settings
from arcane.errors import ArcaneError, ErrorCode
from arcane.game.records import Identity
from arcane.peers import TrustedProxies, client_address


class Limiter(Protocol):
    async def allow(self, key: str) -> bool: ...


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def idle_since(self, now: float) -> bool:
        """Full again: forgetting this bucket changes nothing."""
        return self._tokens + (now - self._at) * self._rate >= self._burst


class LocalLimiter:
    """Buckets kept in this process; full ones are forgotten so memory follows the active keys."""

    SWEEP_EVERY = 1024

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self._calls = 0

    async def allow(self, key: str) -> bool:
        return self.allow_now(key)

    def allow_now(self, key: str) -> bool:
        self._calls += 1
        if self._calls % self.SWEEP_EVERY == 0:
            now = time.monotonic()
            self._buckets = {k: b for k, b in self._buckets.items() if not b.idle_since(now)}
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.allow()


class RateLimited(ArcaneError):
    """RATE_LIMITED (429), with the seconds after which a retry may succeed (`Retry-After`)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.retry_after = max(1, math.ceil(retry_after))


def retry_after_header(error: ArcaneError) -> list[tuple[bytes, bytes]]:
    """The `Retry-After` header an HTTP refusal carries, if any."""
    if isinstance(error, RateLimited):
        return [(b"retry-after", str(error.retry_after).encode())]
    return []


MakeLimiter = Callable[[float, int], Limiter]


@dataclass(frozen=True)
class Bucket:
    """One kind of limit: a limiter, the prefix of its keys, and what a refusal says."""

    limiter: Limiter
    kind: str
    rate: float  # tokens per second
    message: str

    async def take(self, key: str) -> None:
        if not await self.limiter.allow(f"{self.kind}:{key}"):
            raise RateLimited(self.message, retry_after=1 / self.rate if self.rate > 0 else 60)


class Limits:
    """The limits of the HTTP routes, the fallback transports and Socket.IO, in one place."""

    def __init__(self, settings: Settings, make: MakeLimiter = LocalLimiter) -> None:
        self.proxies = TrustedProxies(settings.trusted_proxies)
        per_minute = settings.create_rate_per_minute / 60
        failures = settings.lookup_failures_per_minute / 60
        self.creates = Bucket(make(per_minute, settings.create_burst), "create", per_minute,
                              "too many games, players or spectators from your address; slow down")
        self.reads = Bucket(make(settings.read_rate_per_second, settings.read_burst), "read",
                            settings.read_rate_per_second, "too many reads; slow down")
        self.lookups = Bucket(make(failures, max(1, math.ceil(settings.lookup_failures_per_minute))),
                              "lookup", failures, "too many unknown game codes from your address; slow down")
        self.connections = ConnectionCaps(settings.max_connections_per_identity,
                                          settings.max_connections_per_address)

    def address(self, scope: Mapping[str, Any]) -> str:
        return client_address(scope, self.proxies)

    async def create(self, scope: Mapping[str, Any]) -> None:
        """A game, player or spectator is about to be made for the client at `scope`."""
        await self.creates.take(self.address(scope))

    async def read(self, ident: Identity) -> None:
        await self.reads.take(ident.rate_key)

    async def failed_lookup(self, address: str, refusal: ArcaneError) -> ArcaneError:
        """The answer to a lookup of a game the caller has no seat in: the refusal itself
        while the address has failures left, RATE_LIMITED after."""
        try:
            await self.lookups.take(address)
        except RateLimited as limited:
            return limited
        return refusal


def session_key(identities: Mapping[str, str]) -> str:
    """One bucket key per cookie session (its seats), so its sockets share a bucket."""
    seats = ",".join(f"{code}={player}" for code, player in sorted(identities.items()))
    return "session:" + hashlib.sha256(seats.encode()).hexdigest()[:32]


class ConnectionCaps:
    """Live connections (SSE streams, long-polls in flight, sockets) per identity and per
    address, over every transport of this process."""

    def __init__(self, per_identity: int, per_address: int) -> None:
        self._caps = {"identity": per_identity, "address": per_address}
        self._open: dict[tuple[str, str], int] = {}

    def count(self, kind: str, key: str) -> int:
        return self._open.get((kind, key), 0)

    def open(self, *, identity: str | None = None, address: str | None = None) -> Slot:
        """A slot for one more connection, or RATE_LIMITED past a cap; release it in `finally`."""
        keys = [(kind, key) for kind, key in (("identity", identity), ("address", address)) if key is not None]
        for kind, key in keys:
            if self._open.get((kind, key), 0) >= self._caps[kind]:
                raise RateLimited(f"too many open connections for this {'player' if kind == 'identity' else kind};"
                                  " close one first", retry_after=1)
        for pair in keys:
            self._open[pair] = self._open.get(pair, 0) + 1
        return Slot(self, keys)

    def _release(self, keys: list[tuple[str, str]]) -> None:
        for pair in keys:
            left = self._open.get(pair, 0) - 1
            if left > 0:
                self._open[pair] = left
            else:
                self._open.pop(pair, None)


class Slot:
    """One live connection's place under the caps; `release()` is safe to call twice."""

    __slots__ = ("_caps", "_keys")

    def __init__(self, caps: ConnectionCaps, keys: list[tuple[str, str]]) -> None:
        self._caps: ConnectionCaps | None = caps
        self._keys = keys

    def release(self) -> None:
        caps, self._caps = self._caps, None
        if caps is not None:
            caps._release(self._keys)
