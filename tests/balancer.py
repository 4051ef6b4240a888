"""Several hosts behind a real balancer: HAProxy running deploy/haproxy.cfg itself, three
`hypercorn arcane:app` processes that share nothing but the PostgreSQL URL, the Redis URL
and the secret key (each in its own working directory), all on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.cluster import Node, RedisServer, answers_healthz, free_port
from tests.postgres import postgres
from tests.support import ADDRESS_LIMITS_OFF, IN_CI

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str:
    import pytest

    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        message = "haproxy is not installed (apt-get install haproxy)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Balancer:
    port: int
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, hosts: list[Node], workdir: Path) -> None:
        env = os.environ | {"ARCANE_LB_BIND": f"127.0.0.1:{self.port}"} | {
            f"ARCANE_HOST_{chr(ord('A') + n)}": f"127.0.0.1:{node.port}" for n, node in enumerate(hosts)}
        self.proc = await asyncio.create_subprocess_exec(
            haproxy_binary(), "-db", "-f", str(CONFIG), env=env, cwd=str(workdir),
            stdout=asyncio.subprocess.DEVNULL, stderr=open(workdir / "haproxy.log", "wb"))
        if await answers_healthz(self.url, 10.0):
            return
        raise AssertionError(f"haproxy did not start: {(workdir / 'haproxy.log').read_text()[-2000:]}")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Deployment:
    balancer: Balancer
    hosts: list[Node]
    redis: RedisServer
    database: str


@asynccontextmanager
async def deployment(tmp_path: Path, hosts: int = 3, **settings: str) -> AsyncIterator[Deployment]:
    database = postgres().fresh_database()
    redis = RedisServer(tmp_path / "redis")
    await redis.start()
    shared = {
        "ARCANE_DATABASE": database,
        "ARCANE_SECRET_KEY": "balancer-test-secret-" + "k" * 32,
        "ARCANE_REDIS_URL": redis.url,
        "ARCANE_REDIS_PREFIX": f"lb{redis.port}",
        "ARCANE_PRESENCE_GRACE": "0.3",
        "ARCANE_PRESENCE_TTL": "2",
        "ARCANE_SCENARIO_TIMEOUT": "2",
        "ARCANE_TRUSTED_PROXIES": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
    } | {f"ARCANE_{name.upper()}": str(value) for name, value in ADDRESS_LIMITS_OFF.items()} | settings
    nodes = []
    for n in range(hosts):
        home = tmp_path / f"host-{chr(ord('a') + n)}"  # nothing on disk is shared
        home.mkdir()
        nodes.append(Node(chr(ord("A") + n), free_port(), os.environ | shared, cwd=home))
    balancer = Balancer(free_port())
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        await balancer.start(nodes, tmp_path)
        yield Deployment(balancer, nodes, redis, database)
    finally:
        await balancer.stop()
        await asyncio.gather(*(node.stop() for node in nodes))
        await redis.kill()
