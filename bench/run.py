"""`make bench`: this server against its peers, on this machine, in one run.

Starts each server in its own process group on a free loopback port, drives it
with the Node load generator (bench/load/load.mjs), reads its memory from /proc,
prints a table and writes docs/benchmarks.md with a PNG chart beside it.

    .venv/bin/python bench/run.py            # the full run (several minutes)
    .venv/bin/python bench/run.py --smoke    # a tiny load: checks the harness itself
    .venv/bin/python bench/run.py --ablation # this server with each fast path alone off
                                             # (ARCANE_FAST_PATHS=-name): what each one buys
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hosts import cpu_seconds, run_hosts  # noqa: E402  (bench/hosts.py)

ROOT = Path(__file__).resolve().parent.parent
LOAD = ROOT / "bench" / "load" / "load.mjs"
PY = ROOT / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Load:
    """How big each scenario is; the issue's figures, or a tiny smoke version."""

    fan_clients: int = 1000
    fan_rooms: int = 250
    fan_seconds: float = 10.0
    # Each fan-out runs this many times, interleaved with the other servers' (a fresh server
    # each time); the median counts. One run moves by 15% on a shared machine.
    fan_runs: int = 3
    warmup: float = 3.0
    idle: int = 5000
    night_players: int = 2000
    night_seconds: float = 20.0
    # Each 2,000-player game night (over the sockets, and with HTTP actions) runs this many
    # times, the two taking turns on a fresh server each; the median run counts, as for the
    # fan-outs. At 2,000 players one run's p99 moves with the shared machine's worst minute.
    night_runs: int = 3
    # Smaller game nights, each on a fresh server: how many players one process keeps within 50 ms.
    night_smaller: tuple[int, ...] = (1000, 500)
    storm_players: int = 10_000
    poll_clients: int = 50
    poll_seconds: float = 5.0
    settle: float = 3.0  # seconds for memory to settle before it is read


SMOKE = Load(fan_clients=8, fan_rooms=2, fan_seconds=1.0, warmup=0.5, idle=8, night_players=8,
             night_seconds=2.0, night_runs=2, night_smaller=(4,), storm_players=8, poll_clients=2, poll_seconds=1.0,
             settle=0.2)


@dataclass
class Server:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.key}-"))
        env = os.environ | {"ARCANE_DATABASE": str(self.workdir / "arcane.db")} | self.env
        argv = [part.replace("{port}", str(self.port)) for part in self.argv]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, preexec_fn=_raise_fd_limit,
                                     stdout=subprocess.DEVNULL, stderr=open(self.workdir / "server.log", "wb"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited at start: {self.log_tail()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    time.sleep(0.5)  # accepting; let it finish starting up
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.label} did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        assert self.workdir is not None
        return (self.workdir / "server.log").read_text(errors="replace")[-2000:]

    def rss_kb(self) -> int:
        """Resident memory of the server and every process it started."""
        assert self.proc is not None
        return sum(_rss_kb(pid) for pid in _tree(self.proc.pid))

    def cpu_seconds(self) -> float:
        """CPU time (user and system) of the server and every process it started."""
        assert self.proc is not None
        return cpu_seconds(_tree(self.proc.pid))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def servers() -> dict[str, Server]:
    # The benchmark floods on purpose: this server's per-player rate limit would refuse it.
    # So would its per-address limits: every simulated client comes from 127.0.0.1.
    arcane_env = {"ARCANE_RATE_LIMIT_PER_SECOND": "1000000", "ARCANE_RATE_LIMIT_BURST": "1000000",
                  "ARCANE_CREATE_RATE_PER_MINUTE": "1000000000", "ARCANE_CREATE_BURST": "1000000000",
                  "ARCANE_READ_RATE_PER_SECOND": "1000000", "ARCANE_READ_BURST": "1000000",
                  "ARCANE_LOOKUP_FAILURES_PER_MINUTE": "1000000000",
                  "ARCANE_MAX_CONNECTIONS_PER_ADDRESS": "1000000000", "ARCANE_MAX_SPECTATORS": "100000"}
    return {
        "arcane": Server("arcane", "arcane (hypercorn arcane:app)",
                         [str(ROOT / ".venv/bin/hypercorn"), "arcane:app", "--worker-class", "uvloop",
                          "--bind", "127.0.0.1:{port}", "--backlog", "4096"], arcane_env),
        "bare": Server("bare", "python-socketio on hypercorn", [str(PY), "bench/peers/bare_socketio.py", "{port}"]),
        "flask": Server("flask", "Flask-SocketIO on eventlet",
                        [str(ROOT / "bench/.peers/flask-venv/bin/python"), "bench/peers/flask_socketio_server.py", "{port}"]),
        "node": Server("node", "Node socket.io", ["node", "bench/peers/node/server.js", "{port}"]),
    }


# -- running the load generator ---------------------------------------------------------------

def drive(scenario: str, options: dict[str, Any], *, timeout: float = 600,
          on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Runs one scenario of the load generator; `on_window` is called, as they happen, with its
    announcements that the measuring window opens and closes."""
    if on_window is None:
        proc = subprocess.run(["node", str(LOAD), scenario, json.dumps(options)], cwd=ROOT, capture_output=True,
                              timeout=timeout, preexec_fn=_raise_fd_limit)
        return _result(proc.stdout.decode(), proc.stderr.decode())
    with tempfile.TemporaryFile() as errors:
        live = subprocess.Popen(["node", str(LOAD), scenario, json.dumps(options)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=errors, preexec_fn=_raise_fd_limit)
        assert live.stdout is not None
        lines = []
        for raw in live.stdout:
            lines.append(raw.decode())
            if raw.startswith(b'{"window"'):
                on_window(json.loads(raw))
        live.wait(timeout)
        errors.seek(0)
        return _result("".join(lines), errors.read().decode())


def _result(stdout: str, stderr: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        data = json.loads(line)
        if "result" in data:
            return dict(data["result"])
        if "error" in data:
            raise RuntimeError(f"load generator failed: {data['error']}")
    raise RuntimeError(f"load generator gave no result: {stdout[-500:]} {stderr[-1000:]}")


def fanout(server: Server, load: Load, event: str,
           on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    target = "arcane" if server.key == "arcane" else "peer"
    return drive("fanout", {"target": target, "url": server.url, "clients": load.fan_clients,
                            "rooms": load.fan_rooms, "event": event, "duration": load.fan_seconds,
                            "warmup": load.warmup}, on_window=on_window)


def memory(server: Server, load: Load) -> dict[str, Any]:
    """RSS idle, with `idle` websockets joined to rooms, then (this server) as many SSE streams."""
    target = "arcane" if server.key == "arcane" else "peer"
    sse = load.idle if server.key == "arcane" else 0
    proc = subprocess.Popen(["node", str(LOAD), "hold", json.dumps(
        {"target": target, "url": server.url, "ws": load.idle, "sse": sse})], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_raise_fd_limit)
    assert proc.stdin is not None and proc.stdout is not None
    figures: dict[str, Any] = {}

    def phase() -> dict[str, Any]:
        line = proc.stdout.readline().decode()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"hold ended early: {proc.stderr.read().decode()[-1000:]}")  # type: ignore[union-attr]
        data = json.loads(line)
        if "error" in data:
            raise RuntimeError(data["error"])
        return dict(data)

    def settle() -> int:
        time.sleep(load.settle)  # let allocations from the burst of connections settle
        return server.rss_kb()

    phase()  # seated over HTTP: the server has warmed up its code paths
    figures["idle_kb"] = settle()
    proc.stdin.write(b"next\n"); proc.stdin.flush()
    figures["ws"] = phase()["connections"]
    figures["ws_kb"] = settle()
    proc.stdin.write(b"next\n"); proc.stdin.flush()
    figures["sse"] = phase()["connections"]
    figures["all_kb"] = settle()
    proc.stdin.write(b"next\n"); proc.stdin.flush()
    phase()
    proc.wait(30)
    figures["kb_per_ws"] = round((figures["ws_kb"] - figures["idle_kb"]) / max(1, figures["ws"]), 1)
    if figures["sse"]:
        figures["kb_per_sse"] = round((figures["all_kb"] - figures["ws_kb"]) / figures["sse"], 1)
    return figures


def game_night(server: Server, load: Load, players: int | None = None, *, http_actions: bool = False,
               on_window: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`http_actions`: the SSE and long-poll players chat and type over HTTP (POST .../chat, .../typing),
    taking turns with a websocket player: a third of the lines come over each transport."""
    return drive("gamenight", {"url": server.url, "games": (players or load.night_players) // 4,
                               "duration": load.night_seconds, "warmup": load.warmup, "http_actions": http_actions},
                 on_window=on_window)


def worst_p99(night: dict[str, Any]) -> float:
    """The highest p99 of a game night, chat or typing, over every transport."""
    return max(max(k["chat"]["p99_ms"] or 0, k["typing"]["p99_ms"] or 0) for k in night["transports"].values())


def polls(server: Server, load: Load) -> dict[str, Any]:
    return drive("polls", {"url": server.url, "clients": load.poll_clients, "duration": load.poll_seconds,
                           "warmup": min(load.warmup, 1.0)})


def storm(server: Server, load: Load, *, handshake_only: bool = False) -> dict[str, Any]:
    """Every player drops at once and reconnects at once; with the listening socket's backlog
    as the kernel has it (arcane/serving/listen.py: what decides how fast a storm recovers),
    and the server's CPU seconds over the storm itself (from the drop's end to the last rejoin).

    `handshake_only`: the reconnect stops at Socket.IO's connect (no join, no catch-up, no
    presence): the floor under the storm, what hypercorn, Engine.IO and Socket.IO cost alone."""
    used: list[float] = []  # at the window's opening and closing
    figures = drive("storm", {"url": server.url, "games": load.storm_players // 4, "handshake_only": handshake_only},
                    on_window=lambda line: used.append(server.cpu_seconds()))
    figures["backlog"] = listen_backlog(int(server.url.rsplit(":", 1)[1]))
    if len(used) == 2:
        figures["server_cpu_s"] = round(used[1] - used[0], 2)
    return figures


def storms(arcane: Server, load: Load) -> dict[str, Any]:
    """The storm, then its floor (handshake only), each on a fresh server, in the same minutes."""
    return {"storm": attempt("reconnect storm", arcane, lambda s: storm(s, load)),
            "storm_floor": attempt("reconnect storm, handshake only", arcane,
                                   lambda s: storm(s, load, handshake_only=True))}


def listen_backlog(port: int) -> int | None:
    """The backlog of the socket listening on `port`: `ss`'s Send-Q for a LISTEN socket."""
    try:
        shown = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in shown.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2].isdigit():
            return int(fields[2])
    return None


# -- the run -----------------------------------------------------------------------------------

def run(load: Load, peers: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {"fanout": {}, "memory": {}}
    speed_before, ticks_before = reference_ms(), cpu_ticks()
    catalogue = servers()
    keys = ["arcane", *peers]
    fan_runs: dict[str, list[dict[str, Any]]] = {}
    for number in range(1, load.fan_runs + 1):
        for key in keys:
            for event in ["typing", "chat_message", "http_chat"] if key == "arcane" else ["msg"]:
                fan_runs.setdefault(f"{key}:{event}", []).append(attempt(
                    f"fan-out {key} {event} ({number} of {load.fan_runs})", catalogue[key],
                    lambda s, e=event: fanout(s, load, e)))
    results["fanout"] = {name: median_run(runs) for name, runs in fan_runs.items()}
    for key in keys:
        results["memory"][key] = attempt(f"memory {key}", catalogue[key], lambda s: memory(s, load))
    night_runs: dict[str, list[dict[str, Any]]] = {"gamenight": [], "gamenight_http": []}
    for number in range(1, load.night_runs + 1):
        night_runs["gamenight"].append(attempt(
            f"game night ({number} of {load.night_runs})", catalogue["arcane"], lambda s: game_night(s, load)))
        night_runs["gamenight_http"].append(attempt(
            f"game night, HTTP actions ({number} of {load.night_runs})", catalogue["arcane"],
            lambda s: game_night(s, load, http_actions=True)))
    for name, runs in night_runs.items():
        results[name] = median_run(runs, worst_p99, higher_is_better=False)
    results["gamenight_smaller"] = {
        str(players): attempt(f"game night, {players} players", catalogue["arcane"],
                              lambda s, n=players: game_night(s, load, n))
        for players in load.night_smaller}
    results.update(storms(catalogue["arcane"], load))
    results["polls"] = attempt("long-poll answers", catalogue["arcane"], lambda s: polls(s, load))
    results["hosts"] = run_hosts(load, sys.modules[__name__])
    results["machine"] = {"reference_ms": [speed_before, reference_ms()],
                          "steal_percent": steal_percent(ticks_before, cpu_ticks())}
    return results




def fast_path_names() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from arcane.serving.fastpaths import NAMES

    return list(NAMES)


def run_ablation(load: Load) -> dict[str, Any]:
    """The same scenarios for every variant: all on, each fast path alone off, all off. The
    variants take turns for each scenario, so a slow minute of the machine is shared."""
    arcane = servers()["arcane"]
    variants = ["on", *(f"-{name}" for name in fast_path_names()), "off"]
    results: dict[str, Any] = {variant: {} for variant in variants}
    work = {
        "fanout": lambda s: fanout(s, load, "typing"),
        "chat": lambda s: fanout(s, load, "chat_message"),
        "http_chat": lambda s: fanout(s, load, "http_chat"),
        "gamenight": lambda s: game_night(s, load),
        "gamenight_http": lambda s: game_night(s, load, http_actions=True),
        "polls": lambda s: polls(s, load),
        "memory": lambda s: memory(s, load),
    }
    for scenario in work:
        for variant in variants:
            server = Server(arcane.key, arcane.label, arcane.argv, arcane.env | {"ARCANE_FAST_PATHS": variant})
            results[variant][scenario] = attempt(f"ablation {variant} {scenario}", server,
                                                 lambda s, w=work[scenario], v=variant: checked(s, v) | w(s))
    return results


def checked(server: Server, variant: str) -> dict[str, Any]:
    """The server's startup line, if it says what `variant` asked (else the variant fails)."""
    line = fast_path_line(server)
    off = line.split("; ", 1)[1] if "; " in line else ""
    if variant == "on":
        ok = not off
    elif variant == "off":
        ok = line.startswith("none;")
    else:
        ok = variant[1:] in off and variant[1:] not in line.split(";", 1)[0].split(", ")
    if not ok:
        raise RuntimeError(f"ARCANE_FAST_PATHS={variant} but the server said: fast paths on: {line}")
    return {"line": line}


def fast_path_line(server: Server) -> str:
    """What the server said of its fast paths at start."""
    assert server.workdir is not None
    lines = [line for line in (server.workdir / "server.log").read_text(errors="replace").splitlines()
             if "fast paths on:" in line]
    return lines[-1].split("fast paths on:", 1)[1].strip() if lines else "?"


def ablation_table(results: dict[str, Any]) -> str:
    def figure(variant: str, scenario: str, key: str) -> Any:
        value = results[variant].get(scenario, {})
        if "failed" in value:
            return None
        if key == "worst_p99":
            return worst_p99(value) if "transports" in value else None
        return value.get(key)

    def cell(variant: str, scenario: str, key: str, higher_is_better: bool) -> str:
        value, base = figure(variant, scenario, key), figure("on", scenario, key)
        if value is None:
            failed = results[variant].get(scenario, {}).get("failed")
            return f"failed: {failed}" if failed else "-"
        shown = f"{value:,}" if isinstance(value, int) else f"{value}"
        if variant == "on" or not base:
            return shown
        change = 100 * (value - base) / base
        worse = change < 0 if higher_is_better else change > 0
        return f"{shown} ({change:+.0f}%{', worse' if worse and abs(change) >= 5 else ''})"

    columns = [("fanout", "deliveries_per_s", True), ("chat", "deliveries_per_s", True),
               ("http_chat", "deliveries_per_s", True), ("gamenight", "worst_p99", False),
               ("gamenight_http", "worst_p99", False), ("polls", "polls_per_s", True),
               ("memory", "kb_per_ws", False), ("memory", "kb_per_sse", False)]
    def missed(variant: str) -> str:
        """The targets (of those one server's figures decide) this variant misses."""
        typing, chat = figure(variant, "fanout", "deliveries_per_s"), figure(variant, "chat", "deliveries_per_s")
        http_chat = figure(variant, "http_chat", "deliveries_per_s")
        p99, p99_http = figure(variant, "gamenight", "worst_p99"), figure(variant, "gamenight_http", "worst_p99")
        ws, sse = figure(variant, "memory", "kb_per_ws"), figure(variant, "memory", "kb_per_sse")
        checks = [("chat >= 0.8x typing", None if not (typing and chat) else chat >= 0.8 * typing),
                  ("HTTP chat >= 0.5x chat", None if not (chat and http_chat) else http_chat >= 0.5 * chat),
                  ("p99 <= 50 ms", None if p99 is None else p99 <= 50),
                  ("HTTP-actions p99 <= 50 ms", None if p99_http is None else p99_http <= 50),
                  ("<= 40 KB/websocket", None if ws is None else ws <= 40),
                  ("<= 20 KB/SSE", None if sse is None else sse <= 20)]
        return ", ".join(name for name, ok in checks if ok is False) or "none"

    lines = ["| ARCANE_FAST_PATHS | typing fan-out deliveries/s | chat fan-out deliveries/s | "
             "HTTP chat fan-out deliveries/s | game night worst p99 ms | game night, HTTP actions, worst p99 ms | "
             "long-poll answers/s | KB per idle websocket | KB per idle SSE stream | targets missed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for variant in results:
        lines.append(f"| `{variant}` | " + " | ".join(cell(variant, *column) for column in columns)
                     + f" | {missed(variant)} |")
    return "\n".join(lines)


SMOKE_NOTE = ("\n\n**A smoke run:** at this load the figures are noise (a few clients for a second or two, on a\n"
              "shared machine); they show the harness works, not what a fast path buys. `make bench\n"
              "BENCH_ARGS=--ablation` gives the figures that count.")


HOSTS_HEADING = "\n## PostgreSQL, and several hosts behind the balancer"


def hosts_section(results: dict[str, Any], command: str, load: Load) -> str:
    if "failed" in results:
        return f"{HOSTS_HEADING}\n\nNot measured: {results['failed']}.\n"
    lines = [HOSTS_HEADING, "", f"Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
             f"(bench/hosts.py): the chat_message fan-out ({load.fan_clients:,} websocket clients in "
             f"{load.fan_rooms} rooms) on a SQLite file, on PostgreSQL, and through HAProxy (deploy/haproxy.cfg) "
             f"in front of one host and of two on one PostgreSQL and one Redis; then the "
             f"{load.night_players:,}-player game night on PostgreSQL. {load.fan_runs} runs of each fan-out and "
             f"{load.night_runs} of the night, taking turns, fresh processes and database each; the median counts. "
             "Everything, the load generator included, shares this 2-core machine: the CPU time of each part per "
             "delivered message, read at the edges of the load generator's measuring window (connecting, joining "
             "and warming up left out), is what sizes a deployment (docs/deploy.md); `cores busy` is all the parts' "
             "CPU time in the window over its length, of the 2 there are. Machine: " + machine() + ".", "",
             "| run | deliveries/s (median) | every run | p50 ms | p99 ms | CPU µs per delivery: hosts / PostgreSQL / Redis / balancer / load generator | cores busy |",
             "|---|---|---|---|---|---|---|"]
    names = {"sqlite": "SQLite, one host", "postgresql": "PostgreSQL, one host",
             "one_host": "PostgreSQL + Redis, one host behind HAProxy", "two_hosts": "PostgreSQL + Redis, two hosts behind HAProxy"}
    for key, label in names.items():
        r = results.get(key, {"failed": "not run"})
        if "failed" in r:
            lines.append(f"| {label} | failed: {r['failed']} | | | | | |")
            continue
        cpu = r.get("cpu_us_per_delivery", {})
        parts = " / ".join(str(cpu.get(p, "-")) for p in ("hosts", "postgresql", "redis", "balancer", "load generator"))
        runs = ", ".join(f"{v:,}" if isinstance(v, int) else f"failed: {v}" for v in r.get("runs", []))
        lines.append(f"| {label} | {r['deliveries_per_s']:,} | {runs} | {r['p50_ms']} | {r['p99_ms']} | {parts if cpu else '-'} "
                     f"| {r.get('cores_busy', '-')} |")
    night = results.get("night_postgresql", {"failed": "not run"})
    lines += ["", "| target | measured | |", "|---|---|---|"]
    sqlite, pg = results.get("sqlite", {}), results.get("postgresql", {})
    one, two = results.get("one_host", {}), results.get("two_hosts", {})

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
        if "deliveries_per_s" not in a or "deliveries_per_s" not in b or not b["deliveries_per_s"]:
            return None
        return round(float(a["deliveries_per_s"]) / float(b["deliveries_per_s"]), 2)

    on_pg, doubled = ratio(pg, sqlite), ratio(two, one)
    lines.append(f"| chat fan-out on PostgreSQL >= 0.7x SQLite | {on_pg}x | {'met' if on_pg and on_pg >= 0.7 else 'NOT met'} |")
    lines.append(f"| two hosts >= 1.3x one host, behind the balancer | {doubled}x | {'met' if doubled and doubled >= 1.3 else 'NOT met'} |")
    lines += ceiling_lines(one, two)
    if "failed" in night:
        lines.append(f"| game night on PostgreSQL, p99 <= 50 ms on every transport | failed: {night['failed']} | NOT met |")
    else:
        worst = worst_p99(night)
        lines.append(f"| game night on PostgreSQL, p99 <= 50 ms on every transport | worst {worst} ms{of_runs(night)} "
                     f"| {'met' if worst <= 50 else 'NOT met'} |")
        lines += ["", *night_runs_line(night), *night_rows(night)]
    return "\n".join(lines) + "\n"


def ceiling_lines(one: dict[str, Any], two: dict[str, Any]) -> list[str]:
    """What the measured costs allow: the most deliveries per second this machine's cores can
    give each layout (its cores over all parts' CPU per delivery, a host never more than its
    one core), and what two hosts would give with a core each and the rest elsewhere."""
    cores = os.cpu_count() or 1
    cost = {name: r.get("cpu_us_per_delivery") for name, r in (("one", one), ("two", two))}
    if not all(cost.values()):
        return []
    total = {name: sum(c.values()) for name, c in cost.items() if c}
    host = {name: c["hosts"] for name, c in cost.items() if c}
    one_cap = min(cores * 1e6 / total["one"], 1e6 / host["one"])
    two_cap = min(cores * 1e6 / total["two"], 2e6 / host["two"])
    apart = 2 * host["one"] / host["two"]
    return ["", f"What these costs allow on this {cores}-core machine, where the balancer, Redis, PostgreSQL and the "
            f"load generator take {total['one'] - host['one']:.0f} µs per delivery of the cores the hosts need: one host "
            f"at most {one_cap:,.0f} deliveries/s (a host is one process, one core), two hosts at most {two_cap:,.0f}/s, "
            f"{two_cap / one_cap:.2f}x. So the 1.3x target cannot be met here whatever the server does. With a core "
            f"for each host and the other parts on cores of their own, two hosts would deliver {apart:.2f}x one host: "
            f"each costs {host['two'] / host['one']:.2f}x per delivery, because every host hears and decodes every "
            "event on the one Redis channel (docs/deploy.md, what breaks first)."]


def write_hosts(results: dict[str, Any], out: Path, command: str, load: Load) -> None:
    """Put the hosts' section into the report, keeping the rest of it."""
    previous = out.read_text() if out.exists() else "# Benchmarks\n"
    section = hosts_section(results, command, load)
    if HOSTS_HEADING in previous:
        head, rest = previous.split(HOSTS_HEADING, 1)
        tail = rest[rest.index("\n## "):] if "\n## " in rest else ""
    elif "\n## Ablation" in previous:
        head, tail = previous[:previous.index("\n## Ablation")], previous[previous.index("\n## Ablation"):]
    else:
        head, tail = previous, ""
    out.write_text(head.rstrip("\n") + "\n" + section + tail)


def write_ablation(results: dict[str, Any], out: Path, command: str, load: Load) -> None:
    """Put the ablation's section into the report, keeping the rest of it."""
    section = f"""
## Ablation: each fast path alone off

Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: this server
(`hypercorn arcane:app`) with every fast path on, then each alone off (`ARCANE_FAST_PATHS=-name`,
arcane/serving/), then all off. Load: {json.dumps({k: getattr(load, k) for k in (
        "fan_clients", "fan_rooms", "fan_seconds", "night_players", "night_seconds", "poll_clients", "idle")})};
one run of each, the variants taking turns. In brackets, the change against all on; `worse` marks a
loss of 5% or more. Machine: {machine()}.{SMOKE_NOTE if load == SMOKE else ""}

{ablation_table(results)}
"""
    previous = out.read_text() if out.exists() else "# Benchmarks\n"
    if "\n## Ablation" in previous:
        head, rest = previous.split("\n## Ablation", 1)
        tail = rest[rest.index("\n## "):] if "\n## " in rest else ""
    elif "\n## Soak" in previous:
        head, tail = previous[:previous.index("\n## Soak")], previous[previous.index("\n## Soak"):]
    else:
        head, tail = previous, ""
    out.write_text(head.rstrip("\n") + "\n" + section + tail)


def deliveries(run: dict[str, Any]) -> Any:
    return run["deliveries_per_s"]


def median_run(runs: list[dict[str, Any]], figure: Callable[[dict[str, Any]], Any] = deliveries, *,
               higher_is_better: bool = True) -> dict[str, Any]:
    """The run with the median `figure` of those that did not fail (the worse of the middle
    two for an even count), with every run's figure, or its failure, in `runs`; the last
    failure when every run failed."""
    done = sorted((r for r in runs if "failed" not in r), key=figure, reverse=not higher_is_better)
    if not done:
        return runs[-1]
    return done[(len(done) - 1) // 2] | {"runs": [r["failed"] if "failed" in r else figure(r) for r in runs]}


def attempt(what: str, server: Server, work: Any) -> dict[str, Any]:
    """One scenario on a fresh server; a server that cannot take the load is reported, not fatal."""
    try:
        server.start()
        try:
            figures = dict(work(server))
        finally:
            server.stop()
    except Exception as exc:
        figures = {"failed": (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]}
    report(what, figures)
    return figures


def report(what: str, figures: dict[str, Any]) -> None:
    print(f"  {what}: {json.dumps(figures)}", file=sys.stderr, flush=True)


# -- the report --------------------------------------------------------------------------------

LABELS = {"arcane:typing": "arcane, typing (ephemeral)", "arcane:chat_message": "arcane, chat_message (durable)",
          "arcane:http_chat": "arcane, chat over HTTP POST (durable)",
          "bare:msg": "python-socketio on hypercorn", "flask:msg": "Flask-SocketIO on eventlet",
          "node:msg": "Node socket.io"}


def tables(results: dict[str, Any]) -> str:
    lines = ["### Fan-out saturation (websocket, rooms of 4, every member receives)", "",
             "| server | deliveries/s (median run) | every run | p50 ms | p99 ms | errors | stalls |",
             "|---|---|---|---|---|---|---|"]
    for key, r in results["fanout"].items():
        if "failed" in r:
            lines.append(f"| {LABELS.get(key, key)} | failed: {r['failed']} | | | | | |")
            continue
        runs = ", ".join(f"{v:,}" if isinstance(v, int) else f"failed: {v}" for v in r["runs"])
        lines.append(f"| {LABELS.get(key, key)} | {r['deliveries_per_s']:,} | {runs} | {r['p50_ms']} | {r['p99_ms']} "
                     f"| {r['errors']} | {r['stalls']} |")
    lines += ["", "### Memory (resident set of all the server's processes)", "",
              "| server | idle MB | websockets held | KB per idle websocket | SSE streams held | KB per idle SSE stream |",
              "|---|---|---|---|---|---|"]
    for key, m in results["memory"].items():
        label = LABELS.get(f"{key}:msg", "arcane (hypercorn arcane:app)")
        if "failed" in m:
            lines.append(f"| {label} | failed: {m['failed']} | | | | |")
            continue
        lines.append(f"| {label} | {m['idle_kb'] / 1024:.1f} | {m['ws']:,} | {m['kb_per_ws']} | "
                     f"{m['sse'] or '-'} | {m.get('kb_per_sse', '-')} |")
    night = results["gamenight"]
    if "failed" in night:
        lines += ["", f"### Game night: failed: {night['failed']}"]
        night = {"players": 0, "games": 0, "seconds": 0, "chats_sent": 0, "transports": {}, "chat_deliveries": {}}
    lines += ["", f"### Game night: {night['players']:,} players in {night['games']} games, "
              f"{night['seconds']:.0f} s measured, {night['chats_sent']:,} chat lines", "",
              *night_runs_line(night), *night_rows(night)]
    lines += night_http_table(results.get("gamenight_http", {"failed": "not run"}))
    lines += ["", "### Game night at fewer players (a fresh server each)", "",
              "| players | websocket chat p99 ms | sse chat p99 ms | longpoll chat p99 ms | worst p99 ms (chat or typing) |",
              "|---|---|---|---|---|"]
    for players, smaller in results.get("gamenight_smaller", {}).items():
        if "failed" in smaller:
            lines.append(f"| {int(players):,} | failed: {smaller['failed']} | | | |")
            continue
        chat = {t: k["chat"]["p99_ms"] for t, k in smaller["transports"].items()}
        lines.append(f"| {int(players):,} | {chat.get('websocket')} | {chat.get('sse')} | {chat.get('longpoll')} "
                     f"| {worst_p99(smaller)} |")
    p = results.get("polls", {"failed": "not run"})
    lines += ["", "### Long-poll answers per second (keep-alive pollers, each answered at once)", "",
              "| pollers | answers/s | errors |", "|---|---|---|",
              f"| failed: {p['failed']} | | |" if "failed" in p else f"| {p['clients']} | {p['polls_per_s']:,} | {p['errors']} |"]
    s = results["storm"]
    if "failed" in s:
        return "\n".join([*lines, "", f"### Reconnect storm: failed: {s['failed']}"])
    lines += ["", "### Reconnect storm", "",
              "| players | listen backlog | all recovered in s | recovered from cursor | snapshots | p50 ms | p99 ms | connect failures |",
              "|---|---|---|---|---|---|---|---|",
              f"| {s['players']:,} | {s.get('backlog') or 'unknown'} | {s['seconds']} ({s['complete']:,} complete) "
              f"| {s['recovered']:,} | {s['snapshots']} | {s['p50_ms']} | {s['p99_ms']} | {s['connect_failures']} |"]
    f = results.get("storm_floor", {"failed": "not run"})
    lines += ["", "The floor under it: the same storm on a fresh server, each reconnect stopping at Socket.IO's "
              "connect (the websocket, Engine.IO's open, the token checked; no join, no catch-up, no presence): "
              + (f"failed: {f['failed']}." if "failed" in f else
                 f"{f['complete']:,} of {f['players']:,} connected in {f['seconds']} s (p50 {f['p50_ms']} ms, "
                 f"{f['connect_failures']} connect failures), the server's CPU {f.get('server_cpu_s')} s "
                 f"(the whole storm's: {s.get('server_cpu_s')} s).")]
    return "\n".join(lines)


def night_http_table(night: dict[str, Any]) -> list[str]:
    if "failed" in night:
        return ["", f"### Game night, SSE and long-poll players acting over HTTP: failed: {night['failed']}"]
    posts = night.get("http_actions", {})
    lines = ["", f"### Game night, SSE and long-poll players acting over HTTP: {night['players']:,} players, "
             f"{night['chats_sent']:,} chat lines, a third from each transport", "",
             f"HTTP posts (chat and typing) answered: {posts.get('posts', 0):,} ({posts.get('posts_per_s', 0):,}/s), "
             f"errors {posts.get('errors', 0)}, answer p50 {posts.get('p50_ms')} ms, p99 {posts.get('p99_ms')} ms.", "",
             *night_runs_line(night), *night_rows(night)]
    return lines


def night_runs_line(night: dict[str, Any]) -> list[str]:
    """Which of the runs the table shows, and how late the load generator itself ran."""
    lines = []
    if "runs" in night:
        runs = ", ".join(f"{v} ms" if isinstance(v, (int, float)) else f"failed: {v}" for v in night["runs"])
        lines.append(f"The median of {len(night['runs'])} runs by worst p99 ({runs}).")
    lag = night.get("generator_lag")
    if lag:
        lines.append(f"The load generator's own event loop ran late by p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms "
                     "(a 5 ms timer's delay; it is part of every latency measured).")
    return [" ".join(lines), ""] if lines else []


def night_rows(night: dict[str, Any]) -> list[str]:
    """The game night's table: a row per transport."""
    lines = ["| transport | chat deliveries | chat p50 ms | chat p99 ms | chat max ms | typing p50 ms | typing p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for transport, kinds in night["transports"].items():
        chat, typing = kinds["chat"], kinds["typing"]
        lines.append(f"| {transport} | {night['chat_deliveries'][transport]:,} | {chat['p50_ms']} | {chat['p99_ms']} "
                     f"| {chat['max_ms']} | {typing['p50_ms']} | {typing['p99_ms']} |")
    return lines


def targets(results: dict[str, Any]) -> str:
    fan = {k: v for k, v in results["fanout"].items() if "failed" not in v}
    typing = fan.get("arcane:typing", {}).get("deliveries_per_s", 0)
    rows = []

    def row(name: str, figure: str, ok: bool) -> None:
        rows.append(f"| {name} | {figure} | {'met' if ok else 'NOT met'} |")

    for peer in ("bare", "flask"):
        if f"{peer}:msg" in fan:
            ratio = typing / max(1, fan[f"{peer}:msg"]["deliveries_per_s"])
            row(f"typing fan-out >= 2x {LABELS[peer + ':msg']}", f"{ratio:.2f}x", ratio >= 2)
        else:
            row(f"typing fan-out >= 2x {LABELS[peer + ':msg']}", "not measured (peer failed or not run)", False)
    chat = fan.get("arcane:chat_message", {}).get("deliveries_per_s", 0) / max(1, typing)
    row("chat_message fan-out >= 0.8x typing", f"{chat:.2f}x", chat >= 0.8)
    # Both deliver each line to the room's four sockets: the ratio of deliveries is that of lines sent.
    socket_chat = fan.get("arcane:chat_message", {}).get("deliveries_per_s", 0)
    http_chat = fan.get("arcane:http_chat", {})
    if http_chat and socket_chat:
        ratio = http_chat["deliveries_per_s"] / socket_chat
        row("HTTP chat posts/s >= 0.5x chat_message over a socket", f"{http_chat.get('posts_per_s', 0):,}/s "
            f"against {socket_chat // 4:,}/s: {ratio:.2f}x", ratio >= 0.5)
    else:
        row("HTTP chat posts/s >= 0.5x chat_message over a socket", "not measured (a fan-out failed)", False)
    mem = results["memory"]["arcane"]
    if "failed" in mem:
        row("memory", f"failed: {mem['failed']}", False)
    else:
        row("<= 40 KB per idle websocket", f"{mem['kb_per_ws']} KB", mem["kb_per_ws"] <= 40)
        row("<= 20 KB per idle SSE stream", f"{mem.get('kb_per_sse')} KB", mem.get("kb_per_sse", 1e9) <= 20)
        held = mem["ws"] + mem["sse"]
        row("10,000 connections held by one process", f"{held:,}", held >= 10_000)
    night = results["gamenight"]
    if "failed" in night:
        row("game night p99 <= 50 ms on every transport", f"failed: {night['failed']}", False)
    else:
        worst = worst_p99(night)
        row("game night p99 <= 50 ms on every transport", f"worst {worst} ms{of_runs(night)}", worst <= 50)
    night_http = results.get("gamenight_http", {"failed": "not run"})
    if "failed" in night_http:
        row("game night, HTTP actions: p99 <= 50 ms on every transport", f"failed: {night_http['failed']}", False)
    else:
        worst = worst_p99(night_http)
        errors = night_http.get("http_actions", {}).get("errors", 0)
        row("game night, HTTP actions: p99 <= 50 ms on every transport, no refused post",
            f"worst {worst} ms{of_runs(night_http)}, {errors} refused", worst <= 50 and errors == 0)
    s = results["storm"]
    if "failed" in s:
        row("reconnect storm", f"failed: {s['failed']}", False)
    else:
        floor = results.get("storm_floor", {})
        row(f"reconnect storm ({s['players']:,} players, backlog {s.get('backlog') or 'unknown'}): "
            "all recovered within 10 s, none lost",
            f"{s['seconds']} s, {s['complete']}/{s['players']}"
            + (f" (its floor, the handshake alone: {floor['seconds']} s)" if "seconds" in floor else ""),
            s["seconds"] <= 10 and s["complete"] == s["players"])
    return "\n".join(["| target | measured | |", "|---|---|---|", *rows])


def of_runs(night: dict[str, Any]) -> str:
    runs = night.get("runs", [])
    return f" (median of {len(runs)} runs)" if len(runs) > 1 else ""


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, v in results["fanout"].items() if "failed" not in v]
    names = [textwrap.fill(LABELS.get(k, k), 16) for k in keys]
    fig, (left, right, night) = plt.subplots(1, 3, figsize=(19, 5))
    left.bar(names, [results["fanout"][k]["deliveries_per_s"] for k in keys], color="#6b4fa0")
    left.set_title("Fan-out: deliveries per second (higher is better)")
    left.tick_params(axis="x", labelsize=8)
    width = 0.38
    xs = range(len(keys))
    right.bar([x - width / 2 for x in xs], [results["fanout"][k]["p50_ms"] for k in keys], width, label="p50")
    right.bar([x + width / 2 for x in xs], [results["fanout"][k]["p99_ms"] for k in keys], width, label="p99")
    right.set_xticks(list(xs), names, fontsize=8)
    right.set_title("Fan-out: delivery latency, ms (lower is better)")
    right.legend()
    # Game night: chat p99 per transport against the number of players, with the target.
    nights = {int(n): r for n, r in results.get("gamenight_smaller", {}).items() if "failed" not in r}
    if "failed" not in results["gamenight"]:
        nights[results["gamenight"]["players"]] = results["gamenight"]
    players = sorted(nights)
    for transport in ("websocket", "sse", "longpoll"):
        night.plot(players, [nights[n]["transports"][transport]["chat"]["p99_ms"] or 0 for n in players],
                   marker="o", label=transport)
    night.axhline(50, color="grey", linestyle="--", label="target (50 ms)")
    night.set_yscale("log")
    night.set_xticks(players, [f"{n:,}" for n in players])
    night.set_xlabel("players (one server process)")
    night.set_title("Game night: chat p99 latency, ms (log scale)")
    night.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    return f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB, Linux {platform.release()}"


def reference_ms() -> float:
    """Milliseconds for a fixed single-threaded Python workload, the best of five: the same
    code on a slower (or busier) machine takes longer, so runs of different days compare."""
    def work() -> float:
        started = time.perf_counter()
        rows = [{"seq": n, "text": f"line {n}", "ok": n % 2 == 0} for n in range(20_000)]
        for row in rows:
            json.dumps(row)
        return (time.perf_counter() - started) * 1000
    return round(min(work() for _ in range(5)), 1)


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far, by kind, in clock ticks (the first line of /proc/stat)."""
    return [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def steal_percent(before: list[int], after: list[int]) -> float:
    """The share of CPU time the hypervisor gave to other machines between two readings."""
    spent = [b - a for a, b in zip(before, after)]
    # user nice system idle iowait irq softirq steal guest guest_nice: guests are inside user
    total = sum(spent[:8])
    return round(100 * spent[7] / total, 2) if total else 0.0


def speed(results: dict[str, Any]) -> str:
    figures = results["machine"]
    start, end = figures["reference_ms"]
    return (f"A fixed single-threaded Python workload (`reference_ms` in bench/run.py) took {start} ms\n"
            f"  before the run and {end} ms after it: the same code on a machine twice as slow takes twice\n"
            f"  as long, so compare runs of different days by it. CPU taken by the hypervisor (steal)\n"
            f"  during the run: {figures['steal_percent']}%.")


def versions() -> str:
    def py(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    def flask_venv(name: str) -> str:
        python = ROOT / "bench/.peers/flask-venv/bin/python"
        if not python.exists():
            return "not installed"
        out = subprocess.run([str(python), "-c", f"from importlib.metadata import version; print(version('{name}'))"],
                             capture_output=True, text=True)
        return out.stdout.strip() or "?"

    def node_pkg(folder: str, name: str) -> str:
        path = ROOT / folder / "node_modules" / name / "package.json"
        return json.loads(path.read_text())["version"] if path.exists() else "not installed"

    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"Python {platform.python_version()}: quart {py('quart')}, python-socketio {py('python-socketio')}, "
            f"python-engineio {py('python-engineio')}, hypercorn {py('hypercorn')}, aiosqlite {py('aiosqlite')}; "
            f"Flask-SocketIO {flask_venv('flask-socketio')}, eventlet {flask_venv('eventlet')}; "
            f"Node {node}: socket.io {node_pkg('bench/.peers/node', 'socket.io')}, "
            f"load generator socket.io-client {node_pkg('bench/.load', 'socket.io-client')}")


def write_report(results: dict[str, Any], out: Path, command: str, load: Load) -> None:
    png = out.with_suffix(".png")
    chart(results, png)
    # The "Soak" section is written by hand from `make soak` (bench/soak.py), the "Ablation"
    # one by `bench/run.py --ablation`: keep them.
    previous = out.read_text() if out.exists() else ""
    kept = [previous.index(heading) for heading in (HOSTS_HEADING, "\n## Ablation", "\n## Soak") if heading in previous]
    soak = previous[min(kept):] if kept else ""
    out.write_text(f"""# Benchmarks

Written by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every figure below
comes from one machine: compare the rows with each other, not with other machines.

- **Machine:** {machine()}. {speed(results)}
- **Versions:** {versions()}
- **Load:** {json.dumps(load.__dict__)}. One Node process (`bench/load/load.mjs`, socket.io-client
  over websocket, plus its own SSE and long-poll clients) drives every client; each server runs
  alone, freshly started, on a loopback port. This server runs as `hypercorn arcane:app` (one
  worker process) on a fresh SQLite file, with its per-player rate limit raised out of the way.

![Fan-out throughput and latency; game-night latency by number of players]({png.name})

## Targets

{targets(results)}

## Results

{tables(results)}

## What each scenario does

- **Fan-out:** {load.fan_clients} websocket clients in {load.fan_rooms} rooms; in each room one member
  sends (members take turns), every member receives (the peers broadcast to the whole room; this
  server's `player_typing` goes to the three others and the typist's ack counts as its receipt;
  `chat_message` goes to all four after it is committed to SQLite); the room sends again when all
  have received. Deliveries per second over {load.fan_seconds:.0f} s after {load.warmup:.0f} s of warm-up.
  Each fan-out runs {load.fan_runs} times on a fresh server, the servers taking turns, so that a
  slow minute of the machine falls on all of them; the table gives the median run, and the
  targets compare medians.
- **Memory:** resident set of the server's processes (hypercorn and its worker) idle, then holding
  {load.idle:,} idle websockets joined to rooms, then (this server) {load.idle:,} SSE streams as well.
- **Game night:** {load.night_players:,} players in {load.night_players // 4} games: two on websocket,
  one on SSE, one long-polling in each; every game types then sends one chat line per second.
  Latency from send to receipt, per transport. Then the same at {', '.join(f'{n:,}' for n in load.night_smaller)}
  players, each on a fresh server.
- **Game night, HTTP actions:** the {load.night_players:,} players again, but the turn to type and chat
  goes round the transports (a websocket player, the SSE player, the long-poller), and the SSE
  and long-poll players send theirs as they must, over HTTP (`POST .../typing`, then
  `POST .../chat`, on keep-alive connections of their own, Bearer token).
  Each of the two {load.night_players:,}-player nights runs {load.night_runs} times, taking turns, each on a fresh
  server; the run with the median worst p99 is shown and judged, as a fan-out's median run is: on
  a shared machine one run's p99 is set by its worst minute. The load generator reports how late
  its own event loop ran, since every latency it measures includes that.
- **Chat over HTTP POST (fan-out):** the chat_message fan-out again, but each line is posted over
  HTTP (`POST .../chat`) by its sender instead of sent on its socket; the room's four sockets
  receive it. Its deliveries per second over the socket chat_message's are its posts per second
  over the socket's chat lines per second.
- **Long-poll answers:** {load.poll_clients} keep-alive pollers ask one game for what they have
  already seen, with `timeout=0`, for {load.poll_seconds:.0f} s: the cost of a poll itself.
- **Reconnect storm:** {load.storm_players:,} websocket players drop at once, each game logs a chat line
  meanwhile, all reconnect at once with their `last_seq`; time until every one has rejoined and
  received what it missed. Then its floor, on a fresh server: the same storm with each reconnect
  stopping at Socket.IO's connect, what the protocol stack costs before any of the game's work.
""" + soak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a tiny load, to check the harness")
    parser.add_argument("--peers", default="bare,flask,node", help="comma-separated: bare, flask, node")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--ablation", action="store_true",
                        help="only this server, with each fast path alone off; updates the report's Ablation section")
    parser.add_argument("--hosts", action="store_true",
                        help="only PostgreSQL and the hosts behind the balancer; updates the report's section on them")
    parser.add_argument("--storm", type=int, metavar="PLAYERS",
                        help="only the reconnect storm, of this many players; prints its figures (JSON)")
    args = parser.parse_args()
    load = SMOKE if args.smoke else Load()
    if args.storm:
        load = dataclasses.replace(load, storm_players=args.storm)
        print(json.dumps(storms(servers()["arcane"], load)))
        return
    if args.hosts:
        command = "bench/run.py --hosts" + (" --smoke" if args.smoke else "")
        hosts = run_hosts(load, sys.modules[__name__])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_hosts(hosts, args.out, command, load)
        args.out.with_name(args.out.stem + "-hosts.json").write_text(json.dumps(hosts, indent=1))
        print(hosts_section(hosts, command, load))
        print(f"\nwrote the hosts' section into {args.out}", file=sys.stderr)
        return
    if args.ablation:
        command = "bench/run.py --ablation" + (" --smoke" if args.smoke else "")
        ablation = run_ablation(load)
        print(ablation_table(ablation))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_ablation(ablation, args.out, command, load)
        args.out.with_name(args.out.stem + "-ablation.json").write_text(json.dumps(ablation, indent=1))
        print(f"\nwrote the ablation into {args.out}", file=sys.stderr)
        return
    peers = [p for p in args.peers.split(",") if p]
    command = "make bench" if not args.smoke else "bench/run.py --smoke"
    results = run(load, peers)
    text = tables(results) + "\n\n" + targets(results)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(results, args.out, command, load)
    write_hosts(results["hosts"], args.out, command, load)
    (args.out.with_suffix(".json")).write_text(json.dumps(results, indent=1))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.png').name}", file=sys.stderr)


# -- helpers -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    main()
