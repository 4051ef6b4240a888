"""The seam: a server library's private names are touched in arcane/serving/ only, and each fast
path that is on carries real traffic (it cannot stop working silently), while with
ARCANE_FAST_PATHS=off none does and the game plays the same."""

from __future__ import annotations

import ast
import asyncio
import base64
import importlib.util
import logging
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from arcane import serving
from arcane.config import Settings
from arcane.serving import fastpaths
from tests.sockets import socket_for
from tests.streams import Poller, sse_for
from tests.support import FAST_PATHS, http_client, seat_party
from tests.support import serving as live_server

ROOT = Path(__file__).resolve().parent.parent
ARCANE = ROOT / "arcane"
# The libraries whose private names the fast paths read, and what the runtime needs besides.
LIBRARIES = ("hypercorn", "h11", "wsproto", "engineio", "socketio", "aiosqlite", "asyncio", "multiprocessing")
# Outside arcane/serving/ none of these is imported at all...
SERVER_INTERNALS = ("hypercorn", "h11", "wsproto")
# ...and of these only their public modules.
PUBLIC_MODULES = {"socketio", "socketio.exceptions", "socketio.packet", "engineio", "engineio.packet",
                  "engineio.exceptions", "aiosqlite", "asyncio", "multiprocessing"}


@cache
def library_private_names() -> frozenset[str]:
    """The `_names` (not dunders) a library defines that may not be touched outside arcane/serving/:
    every one arcane/serving/ touches, and every other one the libraries define (functions,
    classes, attributes) unless arcane names something of its own so."""
    defined = _private_names_defined(p for library in LIBRARIES for p in _sources(library))
    ours = _private_names_defined(outside_serving())
    return frozenset((_private_names_touched_in_serving() & defined) | (defined - ours))


def _sources(library: str) -> list[Path]:
    spec = importlib.util.find_spec(library)
    assert spec is not None and spec.origin is not None, library
    return list(Path(spec.origin).parent.rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_names_defined(paths: Iterable[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(errors="replace"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {name for name in names if _private(name)}


def _private_names_touched_in_serving() -> set[str]:
    """Every private name arcane/serving/ reads or writes as an attribute, or names in a
    string (getattr, reach): a superset of what it touches of the libraries'."""
    names: set[str] = set()
    for path in (ARCANE / "serving").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                names.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.update(part for part in node.value.split(".") if _private(part) and part.isidentifier())
    return names


def outside_serving() -> Iterator[Path]:
    for path in sorted(ARCANE.rglob("*.py")):
        if "serving" not in path.relative_to(ARCANE).parts:
            yield path


def trespasses(source: str) -> list[str]:
    """Each use in `source` of a library's private names, or an internal module's import."""
    private = library_private_names()
    tree = ast.parse(source)
    found: list[str] = []
    library_roots = {"self", "cls"}  # names bound to the libraries' modules, and their classes' bases
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _module_trespass(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += _module_trespass(node.module, node.lineno)
            root = node.module.split(".")[0]
            for alias in node.names:
                if root in LIBRARIES and alias.name.startswith("_"):
                    found.append(f"line {node.lineno}: imports {node.module}.{alias.name}")
                elif root in LIBRARIES:
                    library_roots.add(alias.asname or alias.name)
        elif isinstance(node, ast.Attribute) and node.attr in private:
            owner = node.value
            is_self = isinstance(owner, ast.Name) and owner.id in {"self", "cls"}
            if not is_self:
                found.append(f"line {node.lineno}: .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"getattr", "hasattr", "setattr"} and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in private):
            found.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, ast.ClassDef) and any(_from_library(base) for base in node.bases):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in private:
                    found.append(f"line {item.lineno}: overrides {node.name}.{item.name}")
    return found


def _module_trespass(module: str, line: int) -> list[str]:
    root = module.split(".")[0]
    if root in SERVER_INTERNALS or (root in LIBRARIES and module not in PUBLIC_MODULES):
        return [f"line {line}: imports {module}"]
    if root in LIBRARIES and any(part.startswith("_") for part in module.split(".")):
        return [f"line {line}: imports {module}"]
    return []


def _from_library(base: ast.expr) -> bool:
    while isinstance(base, ast.Attribute):
        base = base.value
    return isinstance(base, ast.Name) and base.id in LIBRARIES


def test_no_module_outside_arcane_serving_touches_a_server_library_s_private_names() -> None:
    found = {str(path.relative_to(ROOT)): uses for path in outside_serving()
             if (uses := trespasses(path.read_text()))}
    assert found == {}, "private names of a server library outside arcane/serving/"


@pytest.mark.parametrize("source", [
    "from h11._writers import ChunkedWriter",
    "from hypercorn.protocol import ws_stream",
    "import wsproto.connection",
    "from engineio.async_drivers import asgi",
    "async def f(conn):\n    await conn._execute(print, conn._conn)",
    "def f(loop):\n    return getattr(loop, '_signal_handlers', None)",
    "import socketio\nclass S(socketio.AsyncServer):\n    async def _handle_event(self, *a):\n        pass",
    "import multiprocessing\nkwargs = multiprocessing.current_process()._kwargs",
])
def test_the_scan_sees_each_kind_of_trespass(source: str) -> None:
    assert trespasses(source), source


def test_the_scan_lets_public_names_and_our_own_private_ones_pass() -> None:
    assert trespasses("import socketio\nfrom engineio import packet\nclass S(socketio.AsyncServer):\n"
                      "    def mine(self):\n        return self._handle_event, socketio.packet.ACK\n") == []


# -- the settings -------------------------------------------------------------------------------

def test_arcane_fast_paths_takes_on_off_a_list_to_keep_or_a_list_to_drop() -> None:
    every = frozenset(fastpaths.NAMES)
    assert fastpaths.parse("on") == fastpaths.parse("") == every
    assert fastpaths.parse(" OFF ") == frozenset()
    assert fastpaths.parse("-websocket_direct,-poll_lane") == every - {"websocket_direct", "poll_lane"}
    assert fastpaths.parse("sse_direct") == {"sse_direct"}
    with pytest.raises(ValueError, match="unknown fast path -warp_drive"):
        Settings.from_env({"ARCANE_FAST_PATHS": "-warp_drive"})
    with pytest.raises(ValueError, match="not both"):
        fastpaths.parse("sse_direct,-poll_lane")
    assert Settings.from_env({"ARCANE_FAST_PATHS": "Off"}).fast_paths == "off"


@pytest.fixture
def restore_paths() -> Iterator[None]:
    saved = {name: (path.on, path.reason, path.missing) for name, path in fastpaths.PATHS.items()}
    yield
    for name, (on, reason, missing) in saved.items():
        path = fastpaths.PATHS[name]
        path.on, path.reason, path.missing = on, reason, missing
    serving.configure(FAST_PATHS, compression=False)


def test_an_untested_version_or_a_missing_name_turns_only_its_fast_paths_off_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, restore_paths: None,
) -> None:
    real = fastpaths.metadata.version
    monkeypatch.setattr(fastpaths.metadata, "version",
                        lambda name: "0.99.0" if name == "h11" else real(name))
    monkeypatch.setattr(fastpaths.PATHS["websocket_loop"], "missing",
                        "engineio.async_drivers.asgi not found (No module named 'engineio.async_drivers')")
    with caplog.at_level(logging.INFO, logger="arcane.serving"):
        line = serving.configure("on", compression=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    h11_paths = ["poll_lane", "sse_direct"]
    for name in h11_paths:
        assert f"fast path {name} is off: h11 0.99.0 is untested (tested >=0.16,<0.17)" in warnings
    assert ("fast path websocket_loop is off: engineio.async_drivers.asgi not found "
            "(No module named 'engineio.async_drivers')") in warnings
    assert line == ("fast paths on: slim_queues, keepalive_timer, websocket_receive, websocket_direct, no_deflate, "
                    "room_index; "
                    "off (h11 0.99.0 is untested (tested >=0.16,<0.17)): poll_lane, sse_direct; "
                    "off (engineio.async_drivers.asgi not found (No module named 'engineio.async_drivers')): "
                    "websocket_loop")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [line]


def test_an_untested_version_under_a_use_with_no_public_alternative_is_warned_of(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, restore_paths: None,
) -> None:
    real = fastpaths.metadata.version
    monkeypatch.setattr(fastpaths.metadata, "version",
                        lambda name: "5.99.0" if name == "python-socketio" else real(name))
    with caplog.at_level(logging.WARNING, logger="arcane.serving"):
        serving.configure("on", compression=False)
    assert [r.getMessage() for r in caplog.records] == [
        "fast path room_index is off: python-socketio 5.99.0 is untested (tested >=5.18,<5.19)",
        "socketio_dispatch is still used, with no public alternative, but python-socketio 5.99.0 is untested "
        "(tested >=5.18,<5.19)"]
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="arcane.serving"):
        serving.configure("on", compression=False)
    assert caplog.records == []


def test_a_failing_import_or_a_missing_name_inside_serving_turns_off_only_its_fast_paths() -> None:
    """In a fresh process: a private module that will not import, and a private class that is
    not there (as with another release of the library)."""
    code = ("import sys, engineio\n"
            "sys.modules['engineio.async_drivers.asgi'] = None  # its import fails from here on\n"
            "import h11._writers\n"
            "del h11._writers.ChunkedWriter\n"
            "from arcane import serving\n"
            "print(serving.configure('on', compression=False))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=os.environ | {"ARCANE_FAST_PATHS": "on"})
    assert done.returncode == 0, done.stderr
    no_writer = "h11._writers.ChunkedWriter not found (module 'h11._writers' has no attribute 'ChunkedWriter')"
    no_driver = ("engineio.async_drivers.asgi not found (import of engineio.async_drivers.asgi halted; "
                 "None in sys.modules)")
    assert done.stderr.splitlines() == [f"fast path sse_direct is off: {no_writer}",
                                        f"fast path websocket_direct is off: {no_driver}",
                                        f"fast path websocket_loop is off: {no_driver}"], done.stderr
    assert done.stdout.strip() == (
        "fast paths on: slim_queues, keepalive_timer, poll_lane, websocket_receive, no_deflate, room_index; "
        f"off ({no_writer}): sse_direct; off ({no_driver}): websocket_direct, websocket_loop")


# -- the traffic --------------------------------------------------------------------------------

async def websocket_extensions(port: int, offer: str) -> str:
    """The extensions the server agrees to for a websocket that offers `offer`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    writer.close()
    assert head.startswith("HTTP/1.1 101"), head
    return next((line.split(":", 1)[1].strip() for line in head.split("\r\n")
                 if line.lower().startswith("sec-websocket-extensions:")), "")


async def play_an_evening(tmp_path: Path, fast_paths: str, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """Two players on websockets, one on SSE, one long-polling; the two on websockets chat and
    type. What each saw, the startup line, and what went through each fast path."""
    before = serving.counts()
    texts = [f"line {n}" for n in range(6)]

    def chats(received: list[tuple[str, Any]]) -> list[str]:
        return [data["text"] for name, data in received if name == "chat_message"]

    with caplog.at_level(logging.INFO, logger="arcane.serving"):
        async with live_server(tmp_path, fast_paths=fast_paths) as server:
            ann, bram, cai, dora = await seat_party(server, ["Ann", "Bram", "Cai", "Dora"])
            ws_ann, ws_bram = await socket_for(ann), await socket_for(bram)
            stream = await sse_for(cai)
            await stream.wait_event("reconnect_sync")
            poller = Poller(dora, timeout=1.0)
            await poller.poll()  # the snapshot: from here on, every event
            poller.start()
            async with http_client(server.url) as stranger:  # answered by the bare front, not a poll
                refused = await stranger.get(f"/api/games/{ann.game_code}/events")
            deflate = await websocket_extensions(server.port, "permessage-deflate")
            for n, text in enumerate(texts):
                sender = ws_ann if n % 2 == 0 else ws_bram
                await sender.call("typing", {"is_typing": True})
                answer = await sender.call("chat_message", {"text": text})
                assert answer.get("ok") is True, answer
            await ws_ann.wait_for(lambda received: len(chats(received)) >= len(texts))
            await ws_bram.wait_for(lambda received: len(chats(received)) >= len(texts))
            await stream.wait_for(lambda: sum(e.event == "chat_message" for e in stream.events) >= len(texts))
            await poller.wait_for(lambda: sum(i["event"] == "chat_message" for i in poller.items) >= len(texts))
            seen = {
                "ws": [chats(ws_ann.received), chats(ws_bram.received)],
                "sse": [e.data["text"] for e in stream.events if e.event == "chat_message"],
                "poll": [i["data"]["text"] for i in poller.items if i["event"] == "chat_message"],
                "refused": (refused.status_code, refused.json()["error"]["code"]),
            }
            await poller.stop()
            await stream.close()
            for client in (ws_ann, ws_bram):
                await client.close()
    after = serving.counts()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("fast paths on:")]
    return {"seen": seen, "line": lines[-1], "used": {name: after[name] - before[name] for name in after},
            "deflate": deflate, "expected": {"ws": [texts, texts], "sse": texts, "poll": texts, "refused": (401, "AUTH_REQUIRED")}}


@pytest.mark.skipif(FAST_PATHS != "on", reason=f"the suite runs with ARCANE_FAST_PATHS={FAST_PATHS}")
async def test_each_fast_path_is_on_and_carries_real_traffic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    evening = await play_an_evening(tmp_path, "on", caplog)
    assert evening["line"] == f"fast paths on: {', '.join(fastpaths.NAMES)}"
    assert evening["seen"] == evening["expected"]
    assert evening["deflate"] == ""  # declined
    idle = [name for name, used in evening["used"].items() if used == 0]
    assert idle == [], f"fast paths on that carried nothing: {idle} ({evening['used']})"


async def test_with_every_fast_path_off_none_carries_anything_and_the_evening_plays_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, restore_paths: None,
) -> None:
    evening = await play_an_evening(tmp_path, "off", caplog)
    assert evening["line"] == f"fast paths on: none; off (ARCANE_FAST_PATHS): {', '.join(fastpaths.NAMES)}"
    assert evening["seen"] == evening["expected"]
    assert evening["deflate"].startswith("permessage-deflate")  # hypercorn's own default
    assert evening["used"] == dict.fromkeys(fastpaths.NAMES, 0)


async def test_one_fast_path_off_is_the_only_one_idle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, restore_paths: None,
) -> None:
    evening = await play_an_evening(tmp_path, "-websocket_direct", caplog)
    assert "off (ARCANE_FAST_PATHS): websocket_direct" in evening["line"]
    assert evening["seen"] == evening["expected"]
    assert evening["used"]["websocket_direct"] == 0
    if FAST_PATHS == "on":
        idle = [name for name, used in evening["used"].items() if used == 0 and name != "websocket_direct"]
        assert idle == [], evening["used"]


def test_every_library_reached_into_is_pinned_to_the_versions_it_was_tested_with() -> None:
    import tomllib

    pins = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, _, spec = requirement.partition(">=")
        pins[name.strip()] = spec.split(";")[0].strip()
    for distribution, (low, high) in fastpaths.TESTED.items():
        assert pins.get(distribution) == f"{low},<{high}", distribution
        assert fastpaths.version_problem(distribution) == "", distribution  # and installed so


def test_ci_runs_the_whole_suite_again_with_every_fast_path_off_and_again_on_postgresql() -> None:
    steps = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert steps[-3:] == ["make test", "ARCANE_FAST_PATHS=off make test", "ARCANE_TEST_DATABASE=postgresql make test"]
