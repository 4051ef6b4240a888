"""Several server processes joined through Redis (`ARCANE_REDIS_URL`).

Three things are shared, each in its own class over one `RedisLink`:

- `RedisBus`: every process publishes its events on one Redis pub/sub channel and
  delivers what the others publish to its own subscribers. Pub/sub, not streams:
  the SQLite log is already the durable, ordered record, and feeds fill any seq
  gap from it. Redis only has to say "something happened, quickly". When a
  publish fails or the subscription drops, the affected feeds are told to resync
  from the log, so an outage delays events but never loses them.
- `RedisDirectory`: presence. Each process keeps its seats alive with a heartbeat;
  the seats of a process that stops beating expire and are announced offline.
- `RedisLimiter`: one token bucket per player, whichever process they talk to.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from arcane import jsoncodec, stats
from arcane.bus import Bus
from arcane.config import Settings
from arcane.events import Event
from arcane.limits import LocalLimiter
from arcane.presence import Seat

log = logging.getLogger(__name__)

FAULTS = (RedisError, OSError, asyncio.TimeoutError)
BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
OUTBOX_LIMIT = 10_000
# Connections to Redis per process. More commands at once than this wait for a free one (up to
# POOL_WAIT seconds): a crowd of rate checks is load, not an outage. redis-py 8's default pool
# refuses at once past 100, which read as "Redis is down" in a reconnect storm; older releases
# opened a connection for every command in flight, without limit.
POOL_SIZE = 64
POOL_WAIT = 5.0
SEPARATOR = "|"


class Backoff:
    def __init__(self) -> None:
        self._step = 0

    def next(self) -> float:
        delay = BACKOFF[min(self._step, len(BACKOFF) - 1)]
        self._step += 1
        return delay

    def reset(self) -> None:
        self._step = 0


class RedisLink:
    """The Redis client every shared part uses, and the one place that reports its health."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        # No retries inside the client: each caller decides (resync, local fallback, backoff).
        self.client = redis.Redis.from_pool(redis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=POOL_WAIT, retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=2, socket_timeout=5, health_check_interval=10, decode_responses=True,
        ))  # the client owns the pool: closing it closes the pool
        self.healthy = True
        self._down_since = 0.0

    @property
    def where(self) -> str:
        """The URL without credentials, for logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def failed(self, doing: str, exc: BaseException) -> None:
        if self.healthy:
            self.healthy = False
            self._down_since = time.monotonic()
            log.error(
                "Redis at %s is unavailable (%s failed: %s: %s). Serving this process's own "
                "connections; other processes' events will be read from the log once Redis is back. "
                "Reconnecting with backoff.", self.where, doing, type(exc).__name__, exc,
            )

    def recovered(self) -> None:
        if not self.healthy:
            self.healthy = True
            stats.reconnects["redis"] += 1
            log.warning("Redis at %s is back after %.1f s; feeds are catching up from the log",
                        self.where, time.monotonic() - self._down_since)

    async def close(self) -> None:
        await self.client.aclose()


class RedisBus(Bus):
    """The memory bus, plus a relay of every event to and from the other processes."""

    def __init__(self, link: RedisLink, origin: str) -> None:
        super().__init__()
        self._link = link
        self._origin = origin
        self._channel = link.key("events")
        self._outbox: deque[Event] = deque()
        self._unsent: set[str] = set()  # games whose events may not have reached the others
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def publish(self, events: Iterable[Event]) -> None:
        events = list(events)
        super().publish(events)
        self._outbox.extend(events)
        while len(self._outbox) > OUTBOX_LIMIT:
            # Redis is too slow or away: logged events will be read from the log instead,
            # ephemeral ones (typing) are dropped.
            dropped = self._outbox.popleft()
            if dropped.logged:
                self._unsent.add(dropped.game_code)
        self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._sending(), name="redis-bus-send"),
            asyncio.create_task(self._listening(), name="redis-bus-listen"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await super().stop()

    async def _sending(self) -> None:
        backoff = Backoff()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox or self._unsent:
                batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 500))]
                try:
                    if self._unsent:
                        games = sorted(self._unsent)
                        await self._link.client.publish(self._channel, self._message(resync=games))
                        self._unsent.difference_update(games)
                    if batch:
                        await self._link.client.publish(self._channel, self._message(events=batch))
                    self._link.recovered()
                    backoff.reset()
                except FAULTS as exc:
                    self._unsent.update(event.game_code for event in batch if event.logged)
                    self._link.failed("publishing events", exc)
                    await asyncio.sleep(backoff.next())

    def _message(self, *, events: list[Event] | None = None, resync: list[str] | None = None) -> str:
        body: dict[str, Any] = {"o": self._origin}
        if events:
            body["e"] = [event.to_wire() for event in events]
        if resync:
            body["r"] = resync
        return jsoncodec.dumps(body)

    async def _listening(self) -> None:
        backoff = Backoff()
        missed = False
        while True:
            pubsub = self._link.client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                if missed:
                    # Subscribed again: whatever was published meanwhile is in the log.
                    super().resync(None)
                    missed = False
                self._link.recovered()
                backoff.reset()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                    if message is not None and message["type"] == "message":
                        self._receive(message["data"])
            except FAULTS as exc:
                missed = True
                self._link.failed("listening for events", exc)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # annotated only from redis-py 8.2
                except FAULTS:
                    pass
            await asyncio.sleep(backoff.next())

    def _receive(self, raw: str) -> None:
        try:
            body = jsoncodec.loads(raw)
            if body.get("o") == self._origin:
                return
            events = [Event.from_wire(wire) for wire in body.get("e", ())]
            games = [str(code) for code in body.get("r", ())]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed message on %s", self._channel)
            return
        for code in games:
            super().resync(code)
        super().publish(events)


# A member of a game's online set is "player|process", scored by when it lapses.
_LIVE_ELSEWHERE = """
local function live_elsewhere(key, player, now, mine)
  local prefix = player .. '|'
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, now, '+inf')) do
    if m ~= mine and string.sub(m, 1, #prefix) == prefix then return true end
  end
  return false
end
"""

# KEYS: online set, lapse index, seen set. ARGV: player, process, now, lapses at, game, keep for.
_ARRIVE = _LIVE_ELSEWHERE + """
local mine = ARGV[1] .. '|' .. ARGV[2]
local score = redis.call('ZSCORE', KEYS[1], mine)
local was_live = score and tonumber(score) >= tonumber(ARGV[3])
local others = live_elsewhere(KEYS[1], ARGV[1], ARGV[3], mine)
redis.call('ZADD', KEYS[1], ARGV[4], mine)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5] .. '|' .. mine)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[3], ARGV[6])
if was_live or others then return {0, 0} end
local fresh = redis.call('SADD', KEYS[3], ARGV[1])
return {1, 1 - fresh}
"""

# KEYS: online set, lapse index. ARGV: player, process, now, game.
_DEPART = _LIVE_ELSEWHERE + """
local mine = ARGV[1] .. '|' .. ARGV[2]
redis.call('ZREM', KEYS[2], ARGV[4] .. '|' .. mine)
if redis.call('ZREM', KEYS[1], mine) == 0 then return 0 end
if live_elsewhere(KEYS[1], ARGV[1], ARGV[3], mine) then return 0 end
return 1
"""

# KEYS: lapse index. ARGV: now, key prefix, limit. Answers game, player, game, player, ...
_SWEEP = _LIVE_ELSEWHERE + """
local out = {}
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[3])) do
  redis.call('ZREM', KEYS[1], entry)
  local game, player, proc = string.match(entry, '^([^|]*)|([^|]*)|(.*)$')
  if game then
    local key = ARGV[2] .. game
    local mine = player .. '|' .. proc
    if redis.call('ZREM', key, mine) == 1 and not live_elsewhere(key, player, ARGV[1], mine) then
      table.insert(out, game)
      table.insert(out, player)
    end
  end
end
return out
"""

# KEYS: bucket. ARGV: rate per second, burst, now.
_TAKE_TOKEN = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return allowed
"""


class RedisDirectory:
    """Presence across processes. A seat lapses `ttl / 2` after its last heartbeat; heartbeats
    and sweeps run every `ttl / 4`, so a dead process's players are offline within `ttl`."""

    KEEP_SECONDS = 86_400  # an idle game's presence keys outlive any plausible pause

    def __init__(self, link: RedisLink, origin: str, ttl: float) -> None:
        self._link = link
        self._origin = origin
        self._lapse = ttl / 2
        self.heartbeat_interval: float | None = ttl / 4
        self._index = link.key("presence", "lapses")
        self._arrive = link.client.register_script(_ARRIVE)
        self._depart = link.client.register_script(_DEPART)
        self._sweep = link.client.register_script(_SWEEP)

    def _online_key(self, game_code: str) -> str:
        return self._link.key("presence", "online", game_code)

    def _arrive_call(self, seat: Seat, now: float) -> tuple[list[str], list[Any]]:
        code, player = seat
        keys = [self._online_key(code), self._index, self._link.key("presence", "seen", code)]
        return keys, [player, self._origin, now, now + self._lapse, code, self.KEEP_SECONDS]

    async def arrive(self, seat: Seat) -> tuple[bool, bool]:
        keys, args = self._arrive_call(seat, time.time())
        try:
            first, seen = await self._arrive(keys=keys, args=args)
        except FAULTS as exc:
            self._link.failed("recording presence", exc)
            return False, False  # the next heartbeat records it once Redis is back
        return bool(first), bool(seen)

    async def depart(self, seat: Seat) -> bool:
        code, player = seat
        try:
            last = await self._depart(keys=[self._online_key(code), self._index],
                                      args=[player, self._origin, time.time(), code])
        except FAULTS as exc:
            self._link.failed("recording presence", exc)
            return False  # the seat lapses instead, and a sweep announces it
        return bool(last)

    async def online(self, game_code: str) -> set[str]:
        try:
            # Text, not bytes (decode_responses), and plain members (no scores asked for).
            members = cast(list[str], await self._link.client.zrangebyscore(
                self._online_key(game_code), time.time(), "+inf"))
        except FAULTS as exc:
            self._link.failed("reading presence", exc)
            return set()
        return {member.rpartition(SEPARATOR)[0] for member in members}

    async def heartbeat(self, seats: list[Seat]) -> list[tuple[Seat, bool]]:
        if not seats:
            return []
        now = time.time()
        try:
            async with self._link.client.pipeline(transaction=False) as pipe:
                for seat in seats:
                    keys, args = self._arrive_call(seat, now)
                    await self._arrive(keys=keys, args=args, client=pipe)
                results = await pipe.execute()
        except FAULTS as exc:
            self._link.failed("presence heartbeat", exc)
            return []
        return [(seat, bool(seen)) for seat, (first, seen) in zip(seats, results) if first]

    async def sweep(self) -> list[Seat]:
        try:
            flat = await self._sweep(keys=[self._index],
                                     args=[time.time(), self._link.key("presence", "online", ""), 1000])
        except FAULTS as exc:
            self._link.failed("presence sweep", exc)
            return []
        return list(zip(flat[0::2], flat[1::2]))


class RedisLimiter:
    """One bucket per key across processes; while Redis is away, each process limits alone."""

    def __init__(self, link: RedisLink, rate: float, burst: int) -> None:
        self._link = link
        self._take = link.client.register_script(_TAKE_TOKEN)
        self._fallback = LocalLimiter(rate, burst)

    async def allow(self, key: str) -> bool:
        limits = self._fallback
        try:
            allowed = await self._take(keys=[self._link.key("rate", key)],
                                       args=[limits.rate, limits.burst, time.time()])
        except FAULTS as exc:
            self._link.failed("checking a rate limit", exc)
            return limits.allow_now(key)
        return bool(allowed)


class Cluster:
    """What one process shares with the others; opened with the runtime, closed after it."""

    def __init__(self, settings: Settings) -> None:
        self.origin = uuid.uuid4().hex
        self.link = RedisLink(settings.redis_url, settings.redis_prefix)
        self.bus = RedisBus(self.link, self.origin)
        self.directory = RedisDirectory(self.link, self.origin, settings.presence_ttl)
        self.limiter = RedisLimiter(self.link, settings.rate_limit_per_second, settings.rate_limit_burst)

    async def close(self) -> None:
        await self.link.close()
