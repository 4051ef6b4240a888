"""What the admin dashboard shows (arcane/routes/admin.py serves it; static/js/pages/admin.js
draws it): this process at a glance, every process with Redis, the live games, and one game's
whole log.

With ARCANE_REDIS_URL each process writes its own summary to Redis every PROCESS_EVERY seconds
(a hash field per process, read back while fresher than PROCESS_STALE), so any process's
dashboard shows them all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arcane import stats
from arcane.errors import ArcaneError, ErrorCode
from arcane.store.games import list_games, load_game, load_log, load_members
from arcane.transports import Services

log = logging.getLogger(__name__)
PROCESS_EVERY = 5.0
PROCESS_STALE = 15.0
LIVE_GAMES = 50  # the newest games not over, on the dashboard
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class AdminState:
    services: Services
    sockets: Callable[[], list[Any]]  # the live Socket.IO connections (arcane/realtime)
    started: float = field(default_factory=time.time)
    origin: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}")
    _sample: tuple[float, int] = (0.0, 0)
    _rate: float = 0.0
    _task: asyncio.Task[None] | None = None

    def events_per_second(self) -> float:
        now, published = time.monotonic(), stats.published
        then, before = self._sample
        if then == 0.0 or now - then >= 1.0:
            if then:
                self._rate = (published - before) / (now - then)
            self._sample = (now, published)
        return round(self._rate, 1)

    def start(self) -> None:
        if self.services.redis is not None and self._task is None:
            self._task = asyncio.create_task(self._report(), name="admin-process-report")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _report(self) -> None:
        """This process's summary, in Redis for the other processes' dashboards."""
        link = self.services.redis
        assert link is not None
        while True:
            try:
                await link.client.hset(link.key("processes"), self.origin, json.dumps(process(self)))
            except Exception as exc:  # Redis away: the dashboards show this process as stale
                log.debug("admin report to Redis failed: %s", exc)
            await asyncio.sleep(PROCESS_EVERY)


def process(state: AdminState) -> dict[str, Any]:
    """This process: its memory, CPU time, connections and rates."""
    rss = 0
    try:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    cpu = os.times()
    return {
        "process": state.origin, "pid": os.getpid(), "at": time.time(),
        "uptime_seconds": round(time.time() - state.started), "rss_bytes": rss,
        "cpu_seconds": round(cpu.user + cpu.system, 2),
        "connections": {"socketio": len(state.sockets()), "sse": stats.open_streams["sse"],
                        "longpoll": stats.open_streams["longpoll"]},
        "players_online": state.services.presence.local_players(),
        "events_per_second": state.events_per_second(),
        "events_published": stats.published,
        "errors": dict(stats.errors),
    }


async def overview(state: AdminState) -> dict[str, Any]:
    s = state.services
    here = process(state)
    processes = [here]
    if s.redis is not None:
        try:
            reported = await asyncio.wait_for(s.redis.client.hgetall(s.redis.key("processes")), 2)
            for origin, raw in reported.items():
                other = json.loads(raw)
                if origin != state.origin and time.time() - float(other.get("at", 0)) < PROCESS_STALE:
                    processes.append(other)
        except Exception:  # Redis away: this process alone
            pass
    games = [g for g in await list_games(s.store, limit=LIVE_GAMES * 2) if g["phase"] != "finished"][:LIVE_GAMES]
    by_game: dict[tuple[str, str], int] = {}
    for conn in state.sockets():
        if conn.room is not None:
            key = (conn.room.ident.game_code, "socketio")
            by_game[key] = by_game.get(key, 0) + 1
    for (code, kind), count in stats.open_by_game.items():
        by_game[(code, kind)] = by_game.get((code, kind), 0) + count
    for g in games:
        g["online"] = len(await s.presence.online(g["code"]))
        g["transports"] = {kind: by_game.get((g["code"], kind), 0) for kind in ("socketio", "sse", "longpoll")}
    totals = {kind: sum(p["connections"][kind] for p in processes) for kind in ("socketio", "sse", "longpoll")}
    return {"process": here, "processes": processes, "connections": totals,
            "events_per_second": round(sum(p["events_per_second"] for p in processes), 1),
            "errors": here["errors"], "games": games}


async def game(s: Services, code: str) -> dict[str, Any]:
    """One game for the operator: its table and its whole log, whispers included and marked."""
    found = await load_game(s.store, code)
    if found is None:
        raise ArcaneError(ErrorCode.INVALID_GAME, f"no game with code {code}")
    members = await load_members(s.store, code)
    online = await s.presence.online(code)
    return {
        "code": found.code, "phase": found.phase, "turn_number": found.turn_number,
        "party_trust": found.party_trust, "finished_reason": found.finished_reason, "last_seq": found.last_seq,
        "members": [{"player_id": m.player_id, "name": m.name, "role": m.role, "is_host": m.is_host,
                     "player_class": m.player_class, "online": m.player_id in online} for m in members],
        "log": await load_log(s.store, code),
    }
