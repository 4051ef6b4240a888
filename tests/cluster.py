"""Several real server processes joined through a real Redis that the tests start themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import socketio

from arcane.store import connect
from tests.support import ADDRESS_LIMITS_OFF, Player, require_tool, test_database
from tests.logs import events_after

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`redis-server` on a free loopback port, without persistence: a restart forgets everything."""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_tool("redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(int(START_TIMEOUT / 0.02)):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise AssertionError("redis-server did not start")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def answers_healthz(url: str, timeout: float) -> bool:
    """Whether the server at `url` answers GET /healthz with 200 within `timeout` seconds."""
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(int(timeout / 0.05)):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    return False


@dataclass
class Node:
    """One `hypercorn arcane:app` process of the cluster."""

    name: str
    port: int
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    cwd: Path = ROOT  # elsewhere, the environment's PYTHONPATH finds arcane

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hypercorn", "arcane:app", "--bind", f"127.0.0.1:{self.port}",
            "--graceful-timeout", "5", "--backlog", "4096", *self.args, env=self.env, cwd=str(self.cwd),
            start_new_session=True,  # its own process group: hypercorn and its worker processes
        )
        if not await answers_healthz(self.url, START_TIMEOUT):
            raise AssertionError(f"node {self.name} did not start")

    async def kill(self) -> None:
        """A crash: SIGKILL to hypercorn and its workers, no goodbye to anyone."""
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                pass
        await self.kill()  # nothing of the group outlives the test


@dataclass
class Cluster:
    redis: RedisServer
    nodes: list[Node]
    database: Path | str

    async def log(self, player: Player) -> list[tuple[int, str]]:
        """The truth: every logged event `player` may see, read from the shared database."""
        store = connect(self.database)
        await store.open()
        try:
            events = await events_after(store, player.game_code, 0, player.player_id)
        finally:
            await store.close()
        return [(e.seq, e.name) for e in events if e.seq is not None]


@asynccontextmanager
async def cluster(tmp_path: Path, nodes: int = 2, **settings: str) -> AsyncIterator[Cluster]:
    redis_server = RedisServer(tmp_path / "redis")
    await redis_server.start()
    database = test_database(tmp_path)
    env = os.environ | {
        "ARCANE_DATABASE": str(database),
        "ARCANE_SECRET_KEY": "cluster-test-secret-" + "k" * 32,
        "ARCANE_REDIS_URL": redis_server.url,
        "ARCANE_REDIS_PREFIX": f"test{redis_server.port}",
        "ARCANE_PRESENCE_GRACE": "0.3",
        "ARCANE_PRESENCE_TTL": "2",
        "ARCANE_SCENARIO_TIMEOUT": "2",
        # Every test client is 127.0.0.1, as in tests/support.py test_settings.
    } | {f"ARCANE_{name.upper()}": str(value) for name, value in ADDRESS_LIMITS_OFF.items()} | settings
    members = [Node(chr(ord("A") + n), free_port(), env) for n in range(nodes)]
    try:
        await asyncio.gather(*(node.start() for node in members))
        yield Cluster(redis_server, members, database)
    finally:
        await asyncio.gather(*(node.stop() for node in members))
        await redis_server.kill()


def on(player: Player, node: Any) -> Player:
    """The same seat, talking to another process (its own HTTP client, same token)."""
    client = httpx.AsyncClient(base_url=node.url, timeout=30)
    client.headers["Authorization"] = f"Bearer {player.token}"
    return Player(node, player.game_code, player.player_id, player.player_name, player.token, client)


class RoamingSocket:
    """A Socket.IO tab behind a load balancer: when its process dies it connects to the next
    one and rejoins from the last seq it saw, as the browser client does."""

    def __init__(self, player: Player, nodes: list[Any], *, transports: list[str] | None = None) -> None:
        self.player = player
        self.nodes = nodes
        self.transports = transports or ["websocket"]
        self.received: list[tuple[str, Any]] = []
        self.joins: list[dict[str, Any]] = []
        self.failures: list[str] = []  # why a connection or a join failed, in order
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()
        self._start_after = 0

    def logged(self) -> list[tuple[int, str]]:
        return [(d["seq"], e) for e, d in self.received
                if isinstance(d, dict) and d.get("seq") is not None and e != "reconnect_sync"]

    @property
    def cursor(self) -> int:
        seqs = [d["seq"] for _, d in self.received if isinstance(d, dict) and d.get("seq") is not None]
        return max(seqs, default=self._start_after)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._joined.wait(), 10)

    async def _run(self) -> None:
        index = 0
        while True:
            node = self.nodes[index % len(self.nodes)]
            # A browser's cookies: a balancer pins Engine.IO polling to a host by one, and
            # aiohttp's own jar refuses cookies of an address like 127.0.0.1.
            session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            client = socketio.AsyncClient(reconnection=False, http_session=session)
            gone = asyncio.Event()
            client.on("disconnect", lambda *_: gone.set())

            @client.on("*")
            async def anything(event: str, data: Any = None) -> None:
                self.received.append((event, data))
                self._changed.set()

            stage = "connect"
            began = time.monotonic()
            try:
                await client.connect(node.url, auth={"token": self.player.token},
                                     transports=self.transports, wait_timeout=5)
                stage = "join"
                body = {"game_code": self.player.game_code, "last_seq": self.cursor}
                joined = await client.call("join_game_room", body, timeout=10)
                self.joins.append(joined)
                if joined.get("ok"):  # refused (a database away, say): the browser tries again
                    self._joined.set()
                    stage = "joined"
                    await gone.wait()
            except Exception as error:  # whatever it was, a browser tab tries again; the test reads why
                self.failures.append(f"{stage}: {error!r} after {time.monotonic() - began:.1f} s")
            finally:
                try:
                    await client.disconnect()
                finally:
                    await session.close()
            index += 1
            await asyncio.sleep(0.1)

    async def wait_for(self, condition: Any, timeout: float = 15.0) -> None:
        async def until() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
