"""The soak script (bench/soak.py, `make soak`) runs: a few seconds of it, restarts included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_soak_with_restarts_loses_nothing_and_reports_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--seconds", "8", "--games", "3", "--restarts", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(out.read_text())
    assert figures["restarts_graceful"] == 1 and figures["restarts_killed"] == 1
    assert figures["chats_acknowledged"] > 0 and figures["events_delivered"] > 0
    assert figures["lost"] == figures["gaps"] == figures["duplicates"] == 0
    assert figures["rss_mb_peak"] > 0 and figures["fds_peak"] > 0
    assert "OK" in run.stdout
