"""Health for an operator's probes: /healthz/live while the event loop turns; /healthz/ready
fails fast while the database or Redis cannot be reached, and while the server drains."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.cluster import RedisServer
from tests.support import LiveServer, http_client, serving


async def test_live_and_ready_answer_while_all_is_well(server: LiveServer) -> None:
    async with http_client(server.url) as client:
        live = await client.get("/healthz/live")
        assert live.status_code == 200 and live.json() == {"ok": True}
        ready = await client.get("/healthz/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"ok": True, "draining": "no", "database": "up", "redis": "not configured"}
        assert (await client.get("/healthz")).json() == {"ok": True}  # keeps its meaning


async def test_ready_fails_while_the_server_drains(server: LiveServer) -> None:
    async with http_client(server.url) as client:
        server.runtime.begin_shutdown()
        ready = await client.get("/healthz/ready")
        assert ready.status_code == 503 and ready.json()["draining"] == "yes" and ready.json()["ok"] is False
        assert (await client.get("/healthz/live")).status_code == 200  # alive, though not ready


async def test_ready_fails_fast_while_redis_is_away_and_recovers(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    try:
        async with serving(tmp_path, redis_url=redis.url, redis_prefix=f"h{redis.port}") as server:
            async with http_client(server.url) as client:
                assert (await client.get("/healthz/ready")).json()["redis"] == "up"
                await redis.kill()
                started = time.monotonic()
                ready = await client.get("/healthz/ready")
                assert ready.status_code == 503 and ready.json()["redis"] == "down", ready.text
                assert time.monotonic() - started < 5  # fails fast, not after a client's timeout
                await redis.start()
                for _ in range(100):
                    if (await client.get("/healthz/ready")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("ready did not recover with Redis")
    finally:
        await redis.kill()
