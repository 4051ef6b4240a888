"""Smoke check: starts each benchmark peer on a free port and verifies join + room broadcast over websocket."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parents[2]
PEERS: dict[str, list[str]] = {
    "bare_socketio": [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/peers/bare_socketio.py")],
    "flask_socketio": [
        str(ROOT / "bench/.peers/flask-venv/bin/python"),
        str(ROOT / "bench/peers/flask_socketio_server.py"),
    ],
    "node_socketio": ["node", str(ROOT / "bench/peers/node/server.js")],
}
CLIENTS = 4
TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start listening")


async def exercise(port: int) -> None:
    url = f"http://127.0.0.1:{port}"
    payload = {"room": "r1", "n": 1}
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(CLIENTS)]
    received: list[asyncio.Future[Any]] = [asyncio.get_running_loop().create_future() for _ in clients]
    for client, fut in zip(clients, received):

        def on_msg(data: Any, fut: asyncio.Future[Any] = fut) -> None:
            if not fut.done():
                fut.set_result(data)

        client.on("msg", on_msg)
    try:
        for client in clients:
            await client.connect(url, transports=["websocket"], wait_timeout=TIMEOUT)
        for i, client in enumerate(clients):
            ack = await client.call("join", {"room": "r1"}, timeout=TIMEOUT)
            if ack != {"ok": True}:
                raise RuntimeError(f"client {i} join ack was {ack!r}")
        await clients[0].emit("msg", payload)
        results = await asyncio.wait_for(asyncio.gather(*received), TIMEOUT)
        for i, got in enumerate(results):
            if got != payload:
                raise RuntimeError(f"client {i} received {got!r}")
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def check(cmd: list[str]) -> str:
    port = free_port()
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(
                [*cmd, str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        except OSError as exc:
            return f"FAILED: cannot start {cmd[0]} ({exc.strerror}); run bench/peers/setup.sh first"
        try:
            wait_listening(port, proc)
            asyncio.run(asyncio.wait_for(exercise(port), 4 * TIMEOUT))
            return "ok"
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            stop(proc)
            stderr.seek(0)
            err = stderr.read().decode(errors="replace").strip()
            tail = f" | stderr: {err.splitlines()[-1]}" if err else ""
            return f"FAILED: {type(exc).__name__}: {exc}{tail}"
        finally:
            stop(proc)


def main() -> int:
    failed = False
    for name, cmd in PEERS.items():
        result = check(cmd)
        failed |= result != "ok"
        print(f"{name}: {result}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
