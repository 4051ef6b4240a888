"""A real PostgreSQL server for the tests: a fresh cluster (`initdb`, `pg_ctl` from Debian's
`postgresql` package) in a temporary directory, on a free loopback port, started once per
test session, and a fresh database for each test that asks.

Both programs refuse to run as root: as root they run as the `postgres` user (`runuser`).
`ARCANE_TEST_DATABASE=postgresql` runs the whole suite on it (`make test-postgres`)."""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_counter = itertools.count(1)


def _bin_dir() -> Path | None:
    """Debian's newest /usr/lib/postgresql/*/bin, else wherever `initdb` is on the PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_postgresql() -> None:
    """Outside CI a machine without PostgreSQL skips, saying so; in CI it fails."""
    if _bin_dir() is None:
        message = "PostgreSQL is not installed (apt-get install postgresql: initdb, pg_ctl)"
        import pytest

        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


class PostgresServer:
    """One throwaway cluster: trust authentication on loopback, user `arcane`, no fsync (the
    tests kill processes, never the machine; synchronous_commit stays on, so a killed server
    loses no commit it acknowledged)."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            require_postgresql()  # skips (or fails in CI); `make bench` checks first (bench/hosts.py)
        assert bin_dir is not None
        self.bin = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="arcane-pg-"))
        self.data = self.root / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str) -> None:
        done = subprocess.run([*self._as_user, *argv], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "arcane", "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale", "C")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def start_again(self) -> None:
        """After a stop: the same cluster, port and databases."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=300")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def pids(self) -> list[int]:
        """The server's processes: the postmaster and its children (for their CPU time)."""
        try:
            main = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        found = [main]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == main:
                    found.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://arcane@127.0.0.1:{self.port}/{database}"

    def fresh_database(self) -> str:
        """A new, empty database on this server; its URL."""
        name = f"t{os.getpid()}_{next(_counter)}_{int(time.time() * 1000) % 100000}"
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "arcane", name],
                       check=True, capture_output=True, timeout=60)
        return self.url(name)


_server: PostgresServer | None = None


def postgres() -> PostgresServer:
    """The session's PostgreSQL server, started on first use and stopped at exit."""
    global _server
    if _server is None:
        server = PostgresServer()
        server.start()
        atexit.register(server.stop)
        _server = server
    return _server
