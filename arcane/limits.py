"""Rate limits: a token bucket per player (per socket before it joins a game)."""

from __future__ import annotations

import time
from typing import Protocol


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
