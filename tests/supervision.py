"""deploy/arcane.service run as systemd would run it: its ExecStart and Environment under a
supervisor that honours the same restart rule (Restart=always, RestartSec), on this machine
where systemd itself is not running."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "arcane.service"
STATE_DIRECTORY = "/var/lib/arcane"
INSTALL_DIRECTORY = "/opt/arcane"


@dataclass(frozen=True)
class Unit:
    service: dict[str, list[str]]  # every key of [Service], each with all its values in order

    @classmethod
    def read(cls, path: Path = UNIT) -> Unit:
        service: dict[str, list[str]] = {}
        section = ""
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
            elif section == "Service":
                key, _, value = line.partition("=")
                service.setdefault(key, []).append(value)
        return cls(service)

    def one(self, key: str) -> str:
        (value,) = self.service[key]
        return value

    @property
    def environment(self) -> dict[str, str]:
        pairs = (item.partition("=") for line in self.service.get("Environment", []) for item in shlex.split(line))
        return {name: value for name, _, value in pairs}

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.one("ExecStart"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Supervisor:
    """Starts the unit's command and, as `Restart=always` says, starts it again whenever it exits,
    after RestartSec, until stopped. The unit's paths are moved under `state` and this checkout."""

    def __init__(self, unit: Unit, state: Path, *, overrides: dict[str, str] | None = None) -> None:
        assert unit.one("Restart") == "always", "the unit must restart the server whatever its exit"
        self.unit = unit
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.restart_sec = float(unit.one("RestartSec"))
        moved = {name: value.replace(STATE_DIRECTORY, str(state)) for name, value in unit.environment.items()}
        self.env = os.environ | moved | (overrides or {})
        self.argv = self._local(unit.argv)
        self.cwd = unit.one("WorkingDirectory").replace(INSTALL_DIRECTORY, str(ROOT))
        self.starts = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def _local(self, argv: list[str]) -> list[str]:
        program, *args = argv
        assert Path(program).name == "hypercorn" and "arcane:app" in args, argv
        bind = args.index("--bind")
        args[bind + 1] = f"127.0.0.1:{self.port}"
        return [sys.executable, "-m", "hypercorn", *args]  # this checkout's venv stands for /opt/arcane/.venv

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self.wait_serving()

    async def _run(self) -> None:
        while not self._stopping:
            self.starts += 1
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=self.cwd, start_new_session=True,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            await self.proc.wait()
            self._kill_group()  # systemd's KillMode=control-group: nothing of the old one lingers
            if not self._stopping:
                await asyncio.sleep(self.restart_sec)

    async def wait_serving(self, *, other_than: int | None = None, timeout: float = 30) -> int:
        """The main pid once it answers /healthz (a new one, if `other_than` is given)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            for _ in range(int(timeout / 0.05)):
                proc = self.proc
                if proc is not None and proc.returncode is None and proc.pid != other_than:
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            return proc.pid
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(0.05)
        raise AssertionError("the supervised server did not come back")

    def workers(self) -> list[int]:
        """hypercorn's worker processes (multiprocessing children of the main pid)."""
        assert self.proc is not None
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(c) for c in children if b"spawn_main" in _cmdline(int(c))]

    def kill_worker(self) -> int:
        (worker,) = self.workers()
        os.kill(worker, signal.SIGKILL)
        return worker

    def kill_all(self) -> None:
        """A crash of the whole server: SIGKILL to hypercorn and its workers."""
        self._kill_group()

    def _kill_group(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def stop(self) -> None:
        self._stopping = True
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), float(self.unit.one("TimeoutStopSec")))
            except TimeoutError:
                pass
        self._kill_group()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""
