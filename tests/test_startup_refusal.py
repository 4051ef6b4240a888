"""A server that cannot be served safely does not start, and says why in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("key", ["", "too-short-a-key"])
def test_hypercorn_refuses_to_serve_with_a_short_key_file(tmp_path: Path, key: str) -> None:
    key_file = tmp_path / "arcane.key"
    key_file.write_text(key)
    env = os.environ | {
        "ARCANE_DATABASE": str(tmp_path / "arcane.db"),
        "ARCANE_SECRET_KEY_FILE": str(key_file),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ARCANE_SECRET_KEY", None)
    hypercorn = Path(sys.executable).with_name("hypercorn")
    try:
        done = subprocess.run([str(hypercorn), "--bind", "127.0.0.1:0", "arcane:app"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:  # it served instead (the bug): no exit on its own
        raise AssertionError(f"hypercorn kept running with a {len(key)}-byte key") from exc
    refusal = [line for line in done.stderr.splitlines() if "[CRITICAL] not starting:" in line]
    assert len(refusal) == 1, done.stderr
    assert "at least 32" in refusal[0] and str(key_file) in refusal[0]
    assert "Running on" not in done.stderr
    assert not (tmp_path / "arcane.db").exists()  # nothing was opened


def test_python_m_arcane_refuses_to_serve_with_a_short_key_file_and_exits_1(tmp_path: Path) -> None:
    key_file = tmp_path / "arcane.key"
    key_file.write_text("too-short-a-key")
    env = os.environ | {
        "ARCANE_DATABASE": str(tmp_path / "arcane.db"),
        "ARCANE_SECRET_KEY_FILE": str(key_file),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("ARCANE_SECRET_KEY", None)
    try:
        done = subprocess.run([sys.executable, "-m", "arcane", "--bind", "127.0.0.1:0"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError("python -m arcane kept running with a short key") from exc
    assert done.returncode == 1, done.stderr
    refusal = [line for line in done.stderr.splitlines() if "not starting:" in line]
    assert len(refusal) == 1 and "at least 32" in refusal[0], done.stderr
    assert not (tmp_path / "arcane.db").exists()
