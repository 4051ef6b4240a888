"""How deep this process's listening sockets' backlogs are, read from the kernel.

After a restart or a deploy every player reconnects at once. Connections beyond the listen
backlog are dropped, and TCP retries each one 1, 3, 7, 15 and 31 seconds later: with
hypercorn's default of 100, a 2,000-player storm took 30 s to recover; with 4,096, 2.5 s.
Every way of starting the server that the project ships asks for 4,096 (`make run`,
`python -m arcane`, deploy/arcane.service); this module warns when the socket it really got
is smaller, whatever started it (`hypercorn arcane:app` with its default, a config file, or
net.core.somaxconn capping what was asked for).

Linux only: a listening TCP socket's `TCP_INFO` holds its backlog (`tcpi_sacked`, the
kernel's `sk_max_ack_backlog`) and how many connections wait in it now (`tcpi_unacked`).
Elsewhere the check says it cannot look and changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys

log = logging.getLogger("arcane")

STORM_BACKLOG = 4096
ENOUGH = 1024  # below this a storm of a few thousand players waits on TCP's retries
# struct tcp_info: eight one-byte fields, then tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss,
# then tcpi_unacked and tcpi_sacked, all u32.
_BACKLOG_AT = 8 + 4 * 4


def listening_backlogs() -> list[tuple[str, int, int]] | None:
    """(address, backlog, waiting now) of each listening TCP socket of this process; None
    where the kernel cannot be asked (not Linux)."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/fd"):
        return None
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            probe = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with probe:
            try:
                if probe.type != socket.SOCK_STREAM or probe.family not in (socket.AF_INET, socket.AF_INET6):
                    continue
                if not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    continue
                info = probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
                waiting, backlog = struct.unpack_from("=II", info, _BACKLOG_AT)
                host, port = probe.getsockname()[:2]
            except OSError:
                continue
        found.append((f"{host}:{port}", backlog, waiting))
    return found


def check_backlog() -> list[tuple[str, int, int]] | None:
    """Log a WARNING for each listening socket whose backlog is too small for a storm."""
    sockets = listening_backlogs()
    if sockets is None:
        log.info("the listen backlog cannot be read on this system; ask for %d (--backlog)", STORM_BACKLOG)
        return None
    for address, backlog, _ in sockets:
        if backlog < ENOUGH:
            log.warning(
                "listening on %s with a backlog of %d: after a restart, players reconnecting at once beyond it "
                "wait for TCP's retries (1, 3, 7, 15 s...). Start with --backlog %d, and raise "
                "net.core.somaxconn if it is lower (README, \"Reconnect storms\")", address, backlog, STORM_BACKLOG)
    return sockets
