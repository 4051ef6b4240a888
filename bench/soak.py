"""Soak: a game night with churn against one `hypercorn arcane:app`, restarted now and then.

Games are created and retired, players join, chat and leave, spectators come and go; every
client follows its game over Socket.IO, SSE or long-poll and reconnects from its cursor, and the
server is restarted (SIGTERM, then kill -9, in turn) a few times. At the end every acknowledged
chat must be in the log, and every client's stream must be the log's events it may see, once
each, in order (no gap, no duplicate). RSS and open descriptors of the server are sampled.

    python bench/soak.py                  # SOAK_SECONDS (default 600)
    python bench/soak.py --seconds 10     # the smoke run of tests/test_soak.py

Prints a summary (and --json FILE writes it) and exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from arcane.store import SqliteStore  # noqa: E402
from tests.logs import events_after  # noqa: E402

RSS_LIMIT_MB = 512  # far above a healthy server's few tens of MB: a leak, not a fluctuation
FD_SLACK = 64  # descriptors beyond one per client connection (listening socket, database, loop)
HTTP_POOL = 20  # the actors' own keep-alive connections (chat, join, leave)


@dataclass
class Figures:
    seconds: float = 0.0
    games: int = 0
    clients: int = 0
    restarts_graceful: int = 0
    restarts_killed: int = 0
    chats_acknowledged: int = 0
    events_delivered: int = 0
    reconnects: int = 0
    rss_mb_start: float = 0.0
    rss_mb_peak: float = 0.0
    rss_mb_end: float = 0.0
    fds_start: int = 0
    fds_peak: int = 0
    fds_end: int = 0
    lost: int = 0
    gaps: int = 0
    duplicates: int = 0
    snapshots: int = 0
    violations: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = workdir / "arcane.db"
        self.log = workdir / "server.log"
        self.env = os.environ | {
            "ARCANE_DATABASE": str(self.database), "ARCANE_PRESENCE_GRACE": "0.5",
            # Every soak client comes from 127.0.0.1: per-address limits would refuse the crowd.
            "ARCANE_CREATE_RATE_PER_MINUTE": "100000", "ARCANE_CREATE_BURST": "100000",
            "ARCANE_LOOKUP_FAILURES_PER_MINUTE": "100000", "ARCANE_MAX_CONNECTIONS_PER_ADDRESS": "100000",
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as output:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "arcane", "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", env=self.env, cwd=str(ROOT),
                stdout=output, stderr=output)
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            for _ in range(400):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the server did not start")

    async def stop(self, *, kill: bool = False) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()

    def sample(self) -> tuple[float, int]:
        assert self.proc is not None
        pid = self.proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Seat:
    code: str
    player_id: str
    token: str


class Follower:
    """One client following a seat's stream from its cursor, reconnecting whenever it drops."""

    def __init__(self, server: Server, seat: Seat, transport: str, figures: Figures) -> None:
        self.server, self.seat, self.transport, self.figures = server, seat, transport, figures
        self.seqs: list[int] = []
        self.start_after = 0
        self.task: asyncio.Task[None] | None = None
        self.stopped = False

    @property
    def cursor(self) -> int:
        return self.seqs[-1] if self.seqs else self.start_after

    def received(self, seq: int | None, name: str) -> None:
        if seq is None or name == "reconnect_sync":
            return
        if self.seqs and seq <= self.seqs[-1]:
            self.figures.duplicates += 1
            return
        self.seqs.append(seq)
        self.figures.events_delivered += 1

    def snapshot(self, recovered: bool) -> None:
        if not recovered and (self.seqs or self.start_after):
            self.figures.snapshots += 1  # the log kept everything: a replay was owed

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        run = {"socketio": self._socketio, "sse": self._sse, "poll": self._poll}[self.transport]
        for attempt in itertools.count():
            if self.stopped:
                return
            if attempt:
                self.figures.reconnects += 1
                await asyncio.sleep(0.2)
            try:
                await run()
            except (httpx.HTTPError, socketio.exceptions.SocketIOError, OSError, TimeoutError, ValueError):
                pass

    async def _socketio(self) -> None:
        client = socketio.AsyncClient(reconnection=False)
        gone = asyncio.Event()
        client.on("disconnect", lambda *_: gone.set())

        @client.on("*")
        async def anything(event: str, data: Any = None) -> None:
            if isinstance(data, dict):
                if event == "reconnect_sync":
                    self.snapshot(False)
                self.received(data.get("seq"), event)

        try:
            await client.connect(self.server.url, auth={"token": self.seat.token}, transports=["websocket"], wait_timeout=5)
            ack = await client.call("join_game_room", {"game_code": self.seat.code, "last_seq": self.cursor}, timeout=10)
            if ack.get("error"):
                await asyncio.sleep(1)
                return
            await gone.wait()
        finally:
            await client.disconnect()

    async def _sse(self) -> None:
        headers = {"Last-Event-ID": str(self.cursor)}
        async with httpx.AsyncClient(base_url=self.server.url, timeout=httpx.Timeout(30, read=60)) as client:
            path = f"/api/games/{self.seat.code}/events"
            async with client.stream("GET", path, params={"token": self.seat.token}, headers=headers) as response:
                if response.status_code != 200:
                    await asyncio.sleep(1)
                    return
                name, seq = "message", None
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("id:"):
                        seq = int(line[3:].strip())
                    elif line.startswith("data:") and name == "reconnect_sync":
                        self.snapshot(bool(json.loads(line[5:]).get("recovered")))
                    elif line == "":
                        self.received(seq, name)
                        name, seq = "message", None

    async def _poll(self) -> None:
        async with httpx.AsyncClient(base_url=self.server.url, timeout=30,
                                     headers={"Authorization": f"Bearer {self.seat.token}"}) as client:
            while True:
                response = await client.get(f"/api/games/{self.seat.code}/poll",
                                            params={"after": self.cursor, "timeout": 5})
                if response.status_code != 200:
                    await asyncio.sleep(1)
                    return
                answer = response.json()
                if not answer["recovered"]:
                    self.snapshot(False)
                for event in answer["events"]:
                    self.received(event["seq"], event["event"])

    async def stop(self) -> None:
        self.stopped = True
        if self.task is None:
            return
        # A library may swallow one cancellation (a wait_for racing its own timeout, a client's
        # disconnect): cancel again until the task has ended.
        while not self.task.done():
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=1)
        await asyncio.gather(self.task, return_exceptions=True)


class Night:
    def __init__(self, server: Server, figures: Figures, seed: int) -> None:
        self.server, self.figures = server, figures
        self.random = random.Random(seed)
        self.http = httpx.AsyncClient(base_url=server.url, timeout=30,
                                      limits=httpx.Limits(max_connections=HTTP_POOL))
        self.followers: list[Follower] = []
        self.acknowledged: dict[str, list[str]] = {}  # game code -> acknowledged chat texts
        self.counter = itertools.count()

    async def seat(self, path: str, body: dict[str, Any]) -> Seat:
        for _ in range(100):
            try:
                response = await self.http.post(path, json=body)
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            if response.status_code == 201:
                data = response.json()
                return Seat(data["game_code"], data["player_id"], data["player_token"])
            await asyncio.sleep(0.2)
        raise RuntimeError(f"could not take a seat: {path}")

    def follow(self, seat: Seat, transport: str) -> Follower:
        follower = Follower(self.server, seat, transport, self.figures)
        follower.start()
        self.followers.append(follower)
        self.figures.clients += 1
        return follower

    async def chat(self, seat: Seat) -> None:
        text = f"line {next(self.counter)}"
        try:
            response = await self.http.post(f"/api/games/{seat.code}/chat", json={"text": text},
                                            headers={"Authorization": f"Bearer {seat.token}"})
        except httpx.TransportError:
            return  # not acknowledged: promised nothing
        if response.status_code == 201:
            self.acknowledged.setdefault(seat.code, []).append(text)
            self.figures.chats_acknowledged += 1

    async def leave(self, seat: Seat) -> None:
        try:
            await self.http.post(f"/api/games/{seat.code}/leave", json={},
                                 headers={"Authorization": f"Bearer {seat.token}"})
        except httpx.TransportError:
            pass

    async def game(self, lifetime: float) -> None:
        """One table: three players (Socket.IO, SSE, long-poll) and a spectator who comes and goes."""
        host = await self.seat("/api/games", {"player_name": "Host"})
        self.figures.games += 1
        players = [host] + [await self.seat(f"/api/games/{host.code}/players", {"player_name": n}) for n in ("Bo", "Cy")]
        followers = [self.follow(seat, t) for seat, t in zip(players, ["socketio", "sse", "poll"])]
        ends = time.monotonic() + lifetime
        while time.monotonic() < ends:
            await self.chat(self.random.choice(players))
            roll = self.random.random()
            if roll < 0.03:  # a spectator drops in, watches a while over a random transport, leaves
                watcher = await self.seat(f"/api/games/{host.code}/spectators", {"name": "Wren"})
                followers.append(self.follow(watcher, self.random.choice(["socketio", "sse", "poll"])))
            elif roll < 0.06:  # a tab closes and opens again from its cursor
                old = self.random.choice(followers)
                await old.stop()
                again = self.follow(old.seat, old.transport)
                again.seqs, again.start_after = list(old.seqs), old.start_after
                self.followers.remove(old)
                followers[followers.index(old)] = again
            await asyncio.sleep(self.random.uniform(0.5, 1.5))
        # The night ends for this table: the guests and spectators close their tabs and leave (the
        # lobby allows it); the host stays, still following.
        for follower in followers:
            if follower.seat is not host:
                await follower.stop()
                await self.leave(follower.seat)

    async def tables(self, seconds: float, concurrent: int) -> None:
        ends = time.monotonic() + seconds
        running: set[asyncio.Task[None]] = set()
        while time.monotonic() < ends:
            while len(running) < concurrent:
                lifetime = min(self.random.uniform(20, 90), max(1.0, ends - time.monotonic()))
                running.add(asyncio.create_task(self.game(lifetime)))
            done, running = await asyncio.wait(running, timeout=1, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        await asyncio.gather(*running)


async def restarts(server: Server, figures: Figures, seconds: float, count: int) -> None:
    for n in range(count):
        await asyncio.sleep(seconds / (count + 1))
        kill = n % 2 == 1
        await server.stop(kill=kill)
        if kill:
            figures.restarts_killed += 1
        else:
            figures.restarts_graceful += 1
        await server.start()


async def sampling(server: Server, night: Night, peaks: list[tuple[float, int, int]]) -> None:
    """RSS, descriptors, and the bound on descriptors: two per live client, at most."""
    while True:
        try:
            live = sum(1 for f in night.followers if f.task is not None and not f.task.done())
            peaks.append((*server.sample(), 2 * live + HTTP_POOL + FD_SLACK))
        except (FileNotFoundError, ProcessLookupError, AssertionError, StopIteration):
            pass
        await asyncio.sleep(1)


async def verify(server: Server, night: Night, figures: Figures) -> None:
    store = SqliteStore(server.database)
    await store.open()
    try:
        for code, texts in night.acknowledged.items():
            logged = {e.payload.get("text") for e in await events_after(store, code, 0, None) if e.name == "chat_message"}
            figures.lost += sum(1 for text in texts if text not in logged)
        for follower in night.followers:
            truth = [e.seq for e in await events_after(store, follower.seat.code, follower.start_after, follower.seat.player_id)
                     if e.seq is not None]
            upto = follower.seqs[-1] if follower.seqs else follower.start_after
            expected = [seq for seq in truth if seq <= upto]
            figures.gaps += len(set(expected) - set(follower.seqs))
    finally:
        await store.close()


async def soak(seconds: float, concurrent: int, restart_count: int, seed: int) -> Figures:
    figures = Figures(seconds=seconds)
    with tempfile.TemporaryDirectory(prefix="arcane-soak-") as tmp:
        server = Server(Path(tmp))
        await server.start()
        figures.rss_mb_start, figures.fds_start = server.sample()
        night = Night(server, figures, seed)
        samples: list[tuple[float, int, int]] = []
        sampler = asyncio.create_task(sampling(server, night, samples))
        try:
            await asyncio.gather(night.tables(seconds, concurrent), restarts(server, figures, seconds, restart_count))
            await asyncio.sleep(3)  # let every follower catch up with the last events
            figures.rss_mb_end, figures.fds_end = server.sample()
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            for follower in night.followers:
                await follower.stop()
            await night.http.aclose()
            await server.stop()
        figures.rss_mb_peak = max(rss for rss, _, _ in samples)
        figures.fds_peak = max(fds for _, fds, _ in samples)
        over = [(fds, bound) for _, fds, bound in samples if fds > bound]
        await verify(server, night, figures)
        if "Traceback" in server.log.read_text(errors="replace"):
            figures.violations.append("the server logged a traceback")
    if over:
        figures.violations.append(f"{len(over)} samples with more descriptors than clients allow: {over[:3]}")
    if figures.rss_mb_peak > RSS_LIMIT_MB:
        figures.violations.append(f"RSS peaked at {figures.rss_mb_peak:.0f} MB (limit {RSS_LIMIT_MB})")
    for name in ("lost", "gaps", "duplicates", "snapshots"):
        if getattr(figures, name):
            figures.violations.append(f"{getattr(figures, name)} {name}")
    if not figures.chats_acknowledged or not figures.events_delivered:
        figures.violations.append("nothing was exchanged")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")))
    parser.add_argument("--games", type=int, default=int(os.environ.get("SOAK_GAMES", "12")), help="tables at once")
    parser.add_argument("--restarts", type=int, default=int(os.environ.get("SOAK_RESTARTS", "4")))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = asyncio.run(soak(args.seconds, args.games, args.restarts, args.seed))
    for key, value in asdict(figures).items():
        print(f"{key:>20}: {value:.1f}" if isinstance(value, float) else f"{key:>20}: {value}")
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=1))
    print("OK" if not figures.violations else "VIOLATIONS: " + "; ".join(figures.violations))
    return 1 if figures.violations else 0


if __name__ == "__main__":
    sys.exit(main())
