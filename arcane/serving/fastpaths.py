"""The fast paths: which are on, which are off and why, and how much traffic each carried.

Each fast path reads or replaces private names of a server library. It is on only when
`ARCANE_FAST_PATHS` asks for it, every distribution it reaches into is installed at a
version it was tested with (`TESTED`), and every private name it needs was found
(`reach`). Anything else turns it off, with the reason in the startup line and, for an
untested version or a missing name, a WARNING of its own. Off, the traffic takes the
libraries' public paths: slower, never different.

`FastPath.used` counts what went through each one (frames written, polls answered...):
tests/test_serving_seam.py fails when a fast path that is on carries nothing.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

log = logging.getLogger("arcane.serving")

# Distribution -> the versions its private names were read and tested at: [low, high).
TESTED: dict[str, tuple[str, str]] = {
    "hypercorn": ("0.18", "0.19"),
    "h11": ("0.16", "0.17"),
    "wsproto": ("1.2", "1.4"),  # the parser state read is the same in 1.2 and 1.3
    "python-engineio": ("4.15", "4.16"),
    "python-socketio": ("5.18", "5.19"),
    "aiosqlite": ("0.22", "0.23"),
}


@dataclass(slots=True)
class FastPath:
    name: str
    summary: str
    needs: tuple[str, ...]  # the distributions whose private names it touches
    on: bool = False
    reason: str = "not configured"
    used: int = 0  # what real traffic went through it, since the process started
    missing: str = ""  # a private name not found: the path cannot be on


PATHS: dict[str, FastPath] = {path.name: path for path in (
    FastPath("slim_queues", "hypercorn's per-request queue and per-worker events made slim", ("hypercorn",)),
    FastPath("keepalive_timer", "hypercorn's keep-alive timeout as a timer handle, not a task", ("hypercorn",)),
    FastPath("poll_lane", "whole keep-alive long-poll requests read beside h11", ("hypercorn", "h11")),
    FastPath("sse_direct", "SSE chunks written straight to the transport", ("hypercorn", "h11")),
    FastPath("websocket_receive", "whole small websocket messages read beside wsproto", ("hypercorn", "wsproto")),
    FastPath("websocket_direct", "websocket frames written straight to the transport",
             ("hypercorn", "wsproto", "python-engineio")),
    FastPath("websocket_loop", "one read loop per websocket, no task per message", ("python-engineio",)),
    FastPath("no_deflate", "permessage-deflate declined (ARCANE_WEBSOCKET_COMPRESSION=false)",
             ("hypercorn", "wsproto")),
    FastPath("room_index", "a leaving socket's rooms looked up, not searched for among every room",
             ("python-socketio",)),
)}
NAMES = tuple(PATHS)
# Private names that are not a fast path: no public way does the same (see docs/serving.md).
NEEDED: dict[str, str] = {}


def parse(raw: str) -> frozenset[str]:
    """The fast paths `ARCANE_FAST_PATHS` asks for: `on` (all), `off` (none), a comma list of
    names (only those), or of `-name`s (all but those)."""
    value = raw.strip().lower()
    if value in {"", "on", "all"}:
        return frozenset(NAMES)
    if value in {"off", "none"}:
        return frozenset()
    items = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in items if item.lstrip("-") not in PATHS]
    if unknown:
        raise ValueError(f"ARCANE_FAST_PATHS: unknown fast path {', '.join(unknown)}; "
                         f"use on, off, or a comma list of {', '.join(NAMES)} (each may start with -)")
    negative = [item[1:] for item in items if item.startswith("-")]
    if negative and len(negative) != len(items):
        raise ValueError(f"ARCANE_FAST_PATHS: either the fast paths to keep or the ones to drop (-name), "
                         f"not both: {raw!r}")
    return frozenset(NAMES) - frozenset(negative) if negative else frozenset(items)


def reach(module: str, name: str | None = None, *, paths: tuple[str, ...] = (), needed: str = "") -> Any:
    """A private module (or one name in it); None, and `paths` (or the `needed` use) marked as
    unable to run, when it is not there."""
    try:
        found = importlib.import_module(module)
        return found if name is None else getattr(found, name)
    except (ImportError, AttributeError) as error:
        where = module if name is None else f"{module}.{name}"
        for path in paths:
            PATHS[path].missing = PATHS[path].missing or f"{where} not found ({error})"
        if needed:
            NEEDED[needed] = f"{where} not found ({error})"
        return None


def version_problem(distribution: str) -> str:
    """Why the installed `distribution` is not one a private use was tested with; '' if it is."""
    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return f"{distribution} is not installed"
    low, high = TESTED[distribution]
    if not _release(low) <= _release(installed) < _release(high):
        return f"{distribution} {installed} is untested (tested >={low},<{high})"
    return ""


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0].split("rc")[0])[:3])


def decide(wanted: frozenset[str], *, compression: bool) -> list[FastPath]:
    """Set each path on or off, with its reason; answers the paths newly found unusable
    (an untested version, a missing name), to be logged loudly."""
    problems = []
    for path in PATHS.values():
        broken = path.missing or "; ".join(filter(None, map(version_problem, path.needs)))
        if path.name not in wanted:
            path.on, path.reason = False, "ARCANE_FAST_PATHS"
        elif path.name == "no_deflate" and compression:
            path.on, path.reason = False, "ARCANE_WEBSOCKET_COMPRESSION"
        elif broken:
            path.on, path.reason = False, broken
            problems.append(path)
        else:
            path.on, path.reason = True, ""
    return problems


def on(name: str) -> bool:
    return PATHS[name].on


def status_line() -> str:
    """`fast paths on: a, b; off (reason): c, d`, the paths off grouped by their reason."""
    ons = [path.name for path in PATHS.values() if path.on]
    offs: dict[str, list[str]] = {}
    for path in PATHS.values():
        if not path.on:
            offs.setdefault(path.reason, []).append(path.name)
    parts = [f"fast paths on: {', '.join(ons) or 'none'}"]
    parts += [f"off ({reason}): {', '.join(names)}" for reason, names in offs.items()]
    return "; ".join(parts)


def counts() -> dict[str, int]:
    return {path.name: path.used for path in PATHS.values()}
