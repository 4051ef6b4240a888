"""Test harness: a live hypercorn on a free port, and players that speak the HTTP API."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from engineio import payload as engineio_payload
from hypercorn.asyncio import serve
from hypercorn.config import Config

from arcane import create_app
from arcane.runtime import Runtime
from arcane.config import Settings
from arcane.game.scenarios import ScenarioSource
from arcane.serving import fastpaths

ROOT = Path(__file__).resolve().parent.parent

ADDRESS_LIMITS_OFF: dict[str, Any] = {
    "create_rate_per_minute": 1e9, "create_burst": 10**9, "lookup_failures_per_minute": 1e9,
    "max_connections_per_address": 10**9,
}
# python-engineio's client drops a polling connection whose answer holds more than 16 packets
# (python-engineio issue 142), which a catch-up after a lost host often does; the browser's
# client reads them all. The suite's Python clients read what a browser reads (docs/realtime.md,
# "Python clients on Engine.IO polling"). Its in-process servers share the class, so their
# limit on a polling POST rises with it; no test counts on that limit.
engineio_payload.Payload.max_decode_packets = 1024
TEST_SECRET = "test-secret-" + "k" * 32  # at least the 32 bytes a server accepts
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# The fast paths the suite runs with (CI runs it once with them on, once with ARCANE_FAST_PATHS=off);
# servers spawned as processes inherit the variable itself.
FAST_PATHS = os.environ.get("ARCANE_FAST_PATHS", "on")
# `postgresql`: every test server and cluster runs on a fresh database of the suite's own
# PostgreSQL server (tests/postgres.py) instead of a SQLite file (`make test` runs both).
TEST_DATABASE = os.environ.get("ARCANE_TEST_DATABASE", "sqlite").strip().lower()


def test_database(tmp_path: Path) -> Path | str:
    """A fresh, empty database for one test: a SQLite file, or a PostgreSQL database."""
    if TEST_DATABASE == "postgresql":
        from tests.postgres import postgres

        return postgres().fresh_database()
    return tmp_path / "arcane.db"


test_database.__test__ = False  # type: ignore[attr-defined]


def needs_fast_paths(*names: str) -> pytest.MarkDecorator:
    """For a test of how a fast path works (not of what a client sees): skipped when it is off."""
    off = sorted(set(names) - fastpaths.parse(FAST_PATHS))
    return pytest.mark.skipif(bool(off), reason=f"ARCANE_FAST_PATHS={FAST_PATHS} turns off {', '.join(off)}")


def require_tool(name: str) -> str:
    """The tool's path; outside CI a missing tool skips with the reason, in CI it fails."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {name})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@cache
def _tls() -> ssl.SSLContext:
    # Built once: loading the CA bundle for every client costs ~50 ms each.
    return ssl.create_default_context()


def http_client(base_url: str, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client for the live server (no bearer header: cookies only, until one is set)."""
    return httpx.AsyncClient(base_url=base_url, verify=_tls(), **({"timeout": 30} | kwargs))


def test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        database=test_database(tmp_path), secret_key=TEST_SECRET, presence_grace=0.5,
        scenario_timeout=2.0, fast_paths=FAST_PATHS,
        # Every test client is 127.0.0.1: the per-address limits (games, seats, failed lookups,
        # connections) are raised here; tests/test_hostile_limits.py restores the defaults.
        **ADDRESS_LIMITS_OFF,
    )
    return replace(base, **overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a factory, not a test


class LiveServer:
    """`hypercorn` serving a fresh `create_app()` on a socket that outlives restarts."""

    def __init__(self, settings: Settings, source: ScenarioSource | None = None) -> None:
        self.settings = settings
        self.source = source
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(512)
        self._sock.set_inheritable(True)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: Any = None
        self._shutdown: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def runtime(self) -> Runtime:
        return self.app.runtime

    async def start(self) -> None:
        self.app = create_app(self.settings, source=self.source)
        config = Config()
        # hypercorn owns (and closes) the fd it is given: hand it a duplicate.
        config.bind = [f"fd://{os.dup(self._sock.fileno())}"]
        config.graceful_timeout = 2
        config.accesslog = None
        config.errorlog = None
        self._shutdown = asyncio.Event()
        self._task = asyncio.create_task(serve(self.app, config, shutdown_trigger=self._shutdown.wait))
        async with http_client(self.url) as client:
            for _ in range(200):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if self._task.done():
                    self._task.result()
                await asyncio.sleep(0.02)
        raise RuntimeError("server did not start")

    async def stop(self) -> None:
        if self._task is None:
            return
        assert self._shutdown is not None
        # What the SIGTERM handler does under `hypercorn arcane:app`; see Runtime.begin_shutdown.
        self.runtime.begin_shutdown()
        self._shutdown.set()
        await asyncio.wait_for(self._task, 15)
        self._task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def close(self) -> None:
        self._sock.close()


@dataclass
class Player:
    """One person at the table, speaking the HTTP API with their bearer token."""

    server: LiveServer
    game_code: str
    player_id: str
    player_name: str
    token: str
    client: httpx.AsyncClient = field(repr=False)

    @classmethod
    async def create(cls, server: LiveServer, name: str, **body: Any) -> Player:
        client = http_client(server.url)
        response = await client.post("/api/games", json={"player_name": name, **body})
        assert response.status_code == 201, response.text
        return cls._seated(server, client, response.json())

    @classmethod
    async def join(cls, server: LiveServer, code: str, name: str) -> Player:
        client = http_client(server.url)
        response = await client.post(f"/api/games/{code}/players", json={"player_name": name})
        assert response.status_code == 201, response.text
        return cls._seated(server, client, response.json())

    @classmethod
    async def watch(cls, server: LiveServer, code: str, name: str) -> Player:
        client = http_client(server.url)
        response = await client.post(f"/api/games/{code}/spectators", json={"name": name})
        assert response.status_code == 201, response.text
        return cls._seated(server, client, response.json())

    @classmethod
    def _seated(cls, server: LiveServer, client: httpx.AsyncClient, data: dict[str, Any]) -> Player:
        client.headers["Authorization"] = f"Bearer {data['player_token']}"
        return cls(server, data["game_code"], data["player_id"], data["player_name"], data["player_token"], client)

    async def get(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.client.get(f"/api/games/{self.game_code}{path}", **kwargs)

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.client.post(f"/api/games/{self.game_code}{path}", json=body if body is not None else {})

    async def view(self) -> dict[str, Any]:
        response = await self.get()
        assert response.status_code == 200, response.text
        return response.json()

    async def answer_all(self) -> str:
        """Answer every interrogation question with its first answer; the class earned."""
        while True:
            question = (await self.get("/interrogation")).json()["question"]
            if question is None:
                return (await self.view())["you"]["player_class"]
            response = await self.post("/interrogation", {"answer_id": question["answers"][0]["id"]})
            assert response.status_code == 200, response.text

    async def close(self) -> None:
        await self.client.aclose()


def reseated(player: Player, server: LiveServer) -> Player:
    """The same seat and token, speaking to another server (process, or database)."""
    client = http_client(server.url, headers={"Authorization": f"Bearer {player.token}"})
    return Player(server, player.game_code, player.player_id, player.player_name, player.token, client)


async def seat_party(server: LiveServer, names: list[str]) -> list[Player]:
    host = await Player.create(server, names[0])
    others = [await Player.join(server, host.game_code, n) for n in names[1:]]
    return [host, *others]


async def sockets_gone(server: LiveServer, seconds: float = 5.0) -> bool:
    """Every Socket.IO connection of the server has ended (within `seconds`)."""
    for _ in range(int(seconds / 0.05)):
        if not server.runtime.realtime.connections:
            return True
        await asyncio.sleep(0.05)
    return not server.runtime.realtime.connections


async def play_to_first_turn(party: list[Player]) -> None:
    response = await party[0].post("/start")
    assert response.status_code == 200, response.text
    for player in party:
        await player.answer_all()


@asynccontextmanager
async def serving(
    tmp_path: Path, *, source: ScenarioSource | None = None, **overrides: Any
) -> AsyncIterator[LiveServer]:
    """A LiveServer with the test settings plus `overrides`, stopped and closed afterwards."""
    server = LiveServer(test_settings(tmp_path, **overrides), source=source)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        server.close()


@dataclass
class Started:
    """A server in a process of its own, as an operator starts it: where it listens, and what
    it has written to stderr so far."""

    url: str
    log: Path
    proc: asyncio.subprocess.Process

    def text(self) -> str:
        return self.log.read_text()


@asynccontextmanager
async def started(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> AsyncIterator[Started]:
    """`python <args> --bind 127.0.0.1:<free port>` in the repository, on a database of its own
    unless `env` names one, until it says "Running on"; stopped (SIGTERM) afterwards."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log = tmp_path / f"server-{port}.log"
    environment = os.environ | {"ARCANE_DATABASE": str(tmp_path / f"arcane-{port}.db")} | (env or {})
    with log.open("wb") as output:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, "--bind", f"127.0.0.1:{port}", cwd=str(ROOT), stderr=output, env=environment)
    try:
        for _ in range(300):
            if "Running on" in log.read_text() or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        if "Running on" not in log.read_text():
            raise AssertionError(f"`python {' '.join(args)}` did not start: {log.read_text()[-2000:]}")
        yield Started(f"http://127.0.0.1:{port}", log, proc)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
