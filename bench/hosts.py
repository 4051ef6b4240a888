"""`bench/run.py --hosts`: this server on PostgreSQL, and one and two hosts behind the balancer.

- chat fan-out on a SQLite file and on PostgreSQL (one host each, no balancer);
- chat fan-out through HAProxy (deploy/haproxy.cfg) in front of one host, then two, on one
  PostgreSQL and one Redis, with each part's CPU time per delivered message;
- the 2,000-player game night on PostgreSQL.

The variants take turns, a fresh database (and fresh processes) each; the median run counts.
This 2-core machine runs the balancer, the databases and the load generator too, so the CPU
per delivered message of each part is the figure to size a deployment by.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres import PostgresServer, _bin_dir  # noqa: E402  (a cluster of our own, as the tests start)

TICK = os.sysconf("SC_CLK_TCK")
SECRET = "bench-secret-" + "k" * 40


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total / TICK


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, what: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@dataclass
class Parts:
    """The processes of one deployment, by part, for their CPU time."""

    hosts: list[subprocess.Popen[bytes]] = field(default_factory=list)
    balancer: subprocess.Popen[bytes] | None = None
    redis: subprocess.Popen[bytes] | None = None
    postgres_pids: list[int] = field(default_factory=list)

    def pids(self, tree: Any) -> dict[str, list[int]]:
        return {"hosts": [p for h in self.hosts for p in tree(h.pid)],
                "balancer": [self.balancer.pid] if self.balancer else [],
                "redis": [self.redis.pid] if self.redis else [],
                # The postmaster's backends are its children: their CPU is theirs until reaped.
                "postgresql": [p for root in self.postgres_pids for p in tree(root)]}


class Deployment:
    """`hosts` hypercorn processes on one PostgreSQL database (and Redis, and HAProxy in
    front, when `balanced`), fresh; `key` and `url` as bench/run.py's Server has them."""

    key = "arcane"

    def __init__(self, pg: PostgresServer, env: dict[str, str], hosts: int, balanced: bool) -> None:
        self.pg, self.env, self.count, self.balanced = pg, env, hosts, balanced
        self.parts = Parts()
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
        self.url = ""

    def start(self) -> None:
        env = os.environ | self.env | {"ARCANE_DATABASE": self.pg.fresh_database(), "ARCANE_SECRET_KEY": SECRET,
                                       "PYTHONPATH": str(ROOT)}
        if self.balanced:
            redis_port = free_port()
            self.parts.redis = subprocess.Popen(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_for_port(redis_port, "redis-server", self.parts.redis)
            env |= {"ARCANE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "ARCANE_TRUSTED_PROXIES": "127.0.0.1"}
        ports = []
        for n in range(self.count):
            port = free_port()
            home = self.workdir / f"host-{n}"
            home.mkdir()
            self.parts.hosts.append(subprocess.Popen(
                [str(ROOT / ".venv/bin/hypercorn"), "arcane:app", "--worker-class", "uvloop",
                 "--bind", f"127.0.0.1:{port}", "--backlog", "4096"], cwd=home, env=env, start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "wb"), preexec_fn=_raise_fd_limit))
            ports.append(port)
        for port, proc in zip(ports, self.parts.hosts):
            wait_for_port(port, "a host", proc)
        if self.balanced:
            lb_port = free_port()
            # deploy/haproxy.cfg names three hosts: those not running point at a closed port,
            # and the health check takes them out before the load begins.
            closed = free_port()
            addresses = [f"127.0.0.1:{p}" for p in ports] + [f"127.0.0.1:{closed}"] * (3 - len(ports))
            self.parts.balancer = subprocess.Popen(
                [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(ROOT / "deploy/haproxy.cfg")],
                env=os.environ | {"ARCANE_LB_BIND": f"127.0.0.1:{lb_port}"} | {
                    f"ARCANE_HOST_{c}": a for c, a in zip("ABC", addresses)},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            wait_for_port(lb_port, "haproxy", self.parts.balancer)
            time.sleep(3.5)  # the closed ports' checks fail twice, a second apart
            self.url = f"http://127.0.0.1:{lb_port}"
        else:
            self.url = f"http://127.0.0.1:{ports[0]}"
        self.parts.postgres_pids = self.pg.pids()

    def stop(self) -> None:
        for proc in [*self.parts.hosts, self.parts.balancer, self.parts.redis]:
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def measured(deployment: Deployment, work: Any, tree: Any) -> dict[str, Any]:
    """`work(deployment, on_window)`'s figures, with each part's CPU seconds inside the load
    generator's measuring window (connecting, joining and warming up left out), and per
    delivery in µs: what sizes a deployment."""
    deployment.start()
    edges: dict[str, dict[str, float]] = {}

    def on_window(line: dict[str, Any]) -> None:
        sample = {part: cpu_seconds(p) for part, p in deployment.parts.pids(tree).items()}
        if line["window"] == "closed":
            sample["load generator"] = float(line["cpu_s"])
        edges[line["window"]] = sample

    try:
        figures = dict(work(deployment, on_window))
    finally:
        deployment.stop()
    delivered = figures.get("deliveries") or 0
    if "open" in edges and "closed" in edges and delivered:
        used = {part: edges["closed"][part] - edges["open"].get(part, 0.0) for part in edges["closed"]}
        figures["cpu_s"] = {part: round(seconds, 2) for part, seconds in used.items()}
        figures["cpu_us_per_delivery"] = {part: round(1e6 * seconds / delivered, 1) for part, seconds in used.items()}
        figures["cores_busy"] = round(sum(used.values()) / float(figures.get("seconds") or 1), 2)
    return figures


def run_hosts(load: Any, harness: Any) -> dict[str, Any]:
    """The section's figures; `harness` is bench/run.py (its load generator and Server)."""
    if shutil.which("redis-server") is None or not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        return {"failed": "redis-server or haproxy is not installed"}
    if _bin_dir() is None:
        return {"failed": "PostgreSQL is not installed (initdb, pg_ctl)"}
    pg = PostgresServer()
    pg.start()
    try:
        env = harness.servers()["arcane"].env
        runs: dict[str, list[dict[str, Any]]] = {"sqlite": [], "postgresql": [], "one_host": [], "two_hosts": []}
        for number in range(1, load.fan_runs + 1):
            runs["sqlite"].append(harness.attempt(
                f"chat fan-out on SQLite ({number} of {load.fan_runs})", harness.servers()["arcane"],
                lambda s: harness.fanout(s, load, "chat_message")))
            for name, hosts, balanced in (("postgresql", 1, False), ("one_host", 1, True), ("two_hosts", 2, True)):
                label = {"postgresql": "on PostgreSQL", "one_host": "one host behind the balancer",
                         "two_hosts": "two hosts behind the balancer"}[name]
                try:
                    figures = measured(Deployment(pg, env, hosts, balanced),
                                       lambda d, w: harness.fanout(d, load, "chat_message", w), harness._tree)
                except Exception as exc:
                    figures = {"failed": (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]}
                harness.report(f"chat fan-out {label} ({number} of {load.fan_runs})", figures)
                runs[name].append(figures)
        results: dict[str, Any] = {name: harness.median_run(r) for name, r in runs.items()}
        nights = []
        for number in range(1, load.night_runs + 1):
            try:
                figures = measured(Deployment(pg, env, 1, False), lambda d, w: harness.game_night(d, load, on_window=w), harness._tree)
            except Exception as exc:
                figures = {"failed": (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]}
            harness.report(f"game night on PostgreSQL ({number} of {load.night_runs})", figures)
            nights.append(figures)
        results["night_postgresql"] = harness.median_run(nights, harness.worst_p99, higher_is_better=False)
        return results
    finally:
        pg.stop()
