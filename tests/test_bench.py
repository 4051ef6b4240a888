"""The benchmark harness itself, on a tiny load: it runs every scenario and writes its report.

Speed is judged by `make bench`, never here: this only checks the harness works."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.postgres import require_postgresql
from tests.support import require_tool

ROOT = Path(__file__).resolve().parent.parent


def test_the_harness_runs_every_scenario_and_writes_its_report(tmp_path: Path) -> None:
    require_tool("node")
    require_tool("npm")
    require_tool("redis-server")  # bench/hosts.py: PostgreSQL, Redis and HAProxy
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        require_tool("haproxy")
    require_postgresql()
    subprocess.run(["bash", "bench/peers/setup.sh", "--load-only"], cwd=ROOT, check=True, timeout=300)
    out = tmp_path / "benchmarks.md"
    run = subprocess.run([sys.executable, "bench/run.py", "--smoke", "--peers", "bare", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    results = json.loads(out.with_suffix(".json").read_text())
    for key in ("arcane:typing", "arcane:chat_message", "arcane:http_chat", "bare:msg"):
        fan = results["fanout"][key]
        assert fan["deliveries_per_s"] > 0 and fan["p50_ms"] is not None and fan["stalls"] == 0, key
        assert len(fan["runs"]) == 3 and fan["deliveries_per_s"] == sorted(fan["runs"])[1], fan  # the median run
    assert results["memory"]["arcane"]["ws"] == 8 and results["memory"]["arcane"]["sse"] == 8
    assert results["memory"]["bare"]["ws"] == 8
    assert results["fanout"]["arcane:http_chat"]["posts_per_s"] > 0
    night = results["gamenight"]
    assert all(night["chat_deliveries"][t] > 0 for t in ("websocket", "sse", "longpoll")), night
    assert len(night["runs"]) == 2 and harness_worst(night) == max(night["runs"]), night  # the worse of two
    assert night["generator_lag"]["max_ms"] >= night["generator_lag"]["p99_ms"] > 0, night
    over_http = results["gamenight_http"]
    assert len(over_http["runs"]) == 2 and harness_worst(over_http) == max(over_http["runs"]), over_http
    assert all(over_http["chat_deliveries"][t] > 0 for t in ("websocket", "sse", "longpoll")), over_http
    assert over_http["http_actions"]["posts"] > 0 and over_http["http_actions"]["errors"] == 0, over_http
    smaller = results["gamenight_smaller"]["4"]
    assert smaller["players"] == 4 and all(smaller["chat_deliveries"][t] > 0 for t in smaller["chat_deliveries"])
    assert results["storm"]["complete"] == results["storm"]["players"] == 8
    assert results["storm"]["recovered"] == 8 and results["storm"]["handshake_only"] is False
    floor = results["storm_floor"]  # the same storm stopping at Socket.IO's connect: no joins at all
    assert floor["handshake_only"] is True and floor["complete"] == floor["players"] == 8, floor
    assert floor["recovered"] == floor["snapshots"] == 0, floor
    assert results["storm"]["server_cpu_s"] >= 0 and floor["server_cpu_s"] >= 0
    assert results["polls"]["polls"] > 0 and results["polls"]["errors"] == 0
    hosts = results["hosts"]  # bench/hosts.py: PostgreSQL, then one and two hosts behind HAProxy
    for key in ("sqlite", "postgresql", "one_host", "two_hosts"):
        assert hosts[key]["deliveries_per_s"] > 0 and len(hosts[key]["runs"]) == 3, (key, hosts[key])
    assert all(hosts["two_hosts"]["cpu_s"][part] >= 0 for part in ("hosts", "postgresql", "redis", "balancer"))
    assert hosts["two_hosts"]["cpu_us_per_delivery"]["hosts"] > 0
    assert all(hosts["night_postgresql"]["chat_deliveries"][t] > 0 for t in ("websocket", "sse", "longpoll"))
    assert all(ms > 0 for ms in results["machine"]["reference_ms"]) and len(results["machine"]["reference_ms"]) == 2
    assert 0 <= results["machine"]["steal_percent"] <= 100

    report = out.read_text()
    for heading in ("## Targets", "### Fan-out saturation", "### Memory", "### Game night",
                    "### Game night at fewer players", "### Long-poll answers", "### Reconnect storm",
                    "### Game night, SSE and long-poll players acting over HTTP",
                    "| HTTP chat posts/s >= 0.5x chat_message over a socket |",
                    "## PostgreSQL, and several hosts behind the balancer",
                    "| two hosts >= 1.3x one host, behind the balancer |"):
        assert heading in report
    assert "python-socketio on hypercorn" in report and "bench/run.py --smoke" in report
    assert "The floor under it: " in report and "8 of 8 connected in" in report
    assert "The median of 2 runs by worst p99" in report and "The load generator's own event loop" in report
    start, end = results["machine"]["reference_ms"]
    assert f"took {start} ms\n  before the run and {end} ms after it" in report
    png = out.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def harness_worst(night: dict[str, object]) -> float:
    return float(_harness().worst_p99(night))


def test_the_median_game_night_is_the_middle_one_by_worst_p99_and_the_worse_of_two() -> None:
    harness = _harness()

    def night(p99: float) -> dict[str, object]:
        return {"transports": {"sse": {"chat": {"p99_ms": p99}, "typing": {"p99_ms": 1.0}}}}

    middle = harness.median_run([night(90.0), {"failed": "no server"}, night(20.0), night(40.0)],
                                harness.worst_p99, higher_is_better=False)
    assert harness.worst_p99(middle) == 40.0 and middle["runs"] == [90.0, "no server", 20.0, 40.0]
    worse = harness.median_run([night(20.0), night(30.0)], harness.worst_p99, higher_is_better=False)
    assert harness.worst_p99(worse) == 30.0


def _fan(per_second: int) -> dict[str, object]:
    return {"deliveries_per_s": per_second, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0, "stalls": 0}


def test_a_failed_fan_out_run_is_listed_and_the_median_is_of_the_runs_that_finished() -> None:
    harness = _harness()
    runs = [_fan(900), {"failed": "lost its clients"}, _fan(700), _fan(800)]
    median = harness.median_run(runs)
    assert median["deliveries_per_s"] == 800
    assert median["runs"] == [900, "lost its clients", 700, 800]
    assert harness.median_run([{"failed": "a"}, {"failed": "b"}]) == {"failed": "b"}
    results = {"fanout": {"bare:msg": median}, "memory": {}, "gamenight": {"failed": "not run"},
               "storm": {"failed": "not run"}}
    row = next(line for line in harness.tables(results).splitlines() if line.startswith("| python-socketio"))
    assert "| 800 | 900, failed: lost its clients, 700, 800 |" in row


def test_the_steal_share_is_the_hypervisor_s_part_of_the_time_between_two_readings() -> None:
    harness = _harness()
    # user nice system idle iowait irq softirq steal guest guest_nice
    before = [100, 0, 50, 800, 0, 0, 10, 40, 30, 0]
    after = [400, 0, 150, 1400, 0, 0, 30, 120, 90, 0]  # 1,100 ticks spent, 80 of them stolen
    assert harness.steal_percent(before, after) == round(100 * 80 / 1100, 2)
    assert harness.steal_percent(before, before) == 0.0


def test_the_ablation_table_shows_what_each_fast_path_alone_off_loses_and_keeps_the_report(tmp_path: Path) -> None:
    harness = _harness()
    night = {"transports": {"websocket": {"chat": {"p99_ms": 20}, "typing": {"p99_ms": 10}}}}
    memory = {"kb_per_ws": 30.0, "kb_per_sse": 12.0}
    slow = {"transports": {"sse": {"chat": {"p99_ms": 70}, "typing": {"p99_ms": 10}}}}
    on = {"fanout": _fan(1000), "chat": _fan(800), "http_chat": _fan(600), "gamenight": night,
          "gamenight_http": night, "polls": {"polls_per_s": 3000}, "memory": memory}
    results = {"on": on, "-websocket_direct": on | {"fanout": _fan(600)},
               "-slim_queues": on | {"memory": {"kb_per_ws": 44.0, "kb_per_sse": 12.0}},
               "-poll_lane": on | {"http_chat": _fan(300), "gamenight_http": slow},
               "off": on | {"polls": {"failed": "the server did not start"}}}
    table = harness.ablation_table(results).splitlines()
    assert table[2] == "| `on` | 1,000 | 800 | 600 | 20 | 20 | 3,000 | 30.0 | 12.0 | none |"
    assert table[3].startswith("| `-websocket_direct` | 600 (-40%, worse) | 800 (+0%) | 600 (+0%) | 20 (+0%) |")
    assert table[4].endswith("| 44.0 (+47%, worse) | 12.0 (+0%) | <= 40 KB/websocket |")
    assert table[5].endswith("| HTTP chat >= 0.5x chat, HTTP-actions p99 <= 50 ms |")
    assert "| 70 (+250%, worse) |" in table[5]
    assert "failed: the server did not start" in table[6]
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nthe run\n\n## Soak\n\nby hand\n")
    harness.write_ablation(results, out, "bench/run.py --ablation --smoke", harness.SMOKE)
    harness.write_ablation(results, out, "bench/run.py --ablation --smoke", harness.SMOKE)  # replaced, not added
    report = out.read_text()
    assert report.count("## Ablation: each fast path alone off") == 1 and report.endswith("## Soak\n\nby hand\n")
    assert report.startswith("# Benchmarks\n\nthe run\n") and "| `-websocket_direct` | 600 (-40%, worse)" in report
