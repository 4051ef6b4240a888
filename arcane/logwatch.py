"""Events this process never heard of: the log is the truth, the bus only a wake-up.

With several processes (Redis), a process learns of another's event when Redis relays it;
a feed that then sees a seq jump reads what it missed from the log. A process that dies
between its COMMIT and its publish leaves an event nobody hears of until the game's next
one, and if that event was the game's last, never. So every `INTERVAL` each process reads
the last seq of the games it has followers in (one statement per 500 games) and, for any
game whose log already held more at the previous reading than this process has heard,
tells that game's feeds to look in the log (`Bus.resync`). Two readings apart, so an event
still on its way through Redis is not taken for a lost one.
"""

from __future__ import annotations

import asyncio
import logging

from arcane.bus import Bus
from arcane.store import Store

log = logging.getLogger(__name__)

INTERVAL = 2.0  # seconds between readings: the longest a lost wake-up delays a client
CHUNK = 500  # games per statement


class LogWatch:
    def __init__(self, bus: Bus, store: Store, *, interval: float = INTERVAL) -> None:
        self._bus = bus
        if bus.heard is None:
            bus.heard = {}  # from now on the bus notes what it hears
        self._store = store
        self._interval = interval
        self._logged: dict[str, int] = {}  # the last reading: game -> its log's last seq
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="arcane-log-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception as exc:  # the database away: the next reading tries again
                log.warning("reading the games' last seqs failed: %s: %s", type(exc).__name__, exc)

    async def check(self) -> list[str]:
        """One reading; answers the games whose feeds were told to look in the log."""
        games = self._bus.followed_games()
        logged: dict[str, int] = {}
        for start in range(0, len(games), CHUNK):
            chunk = games[start:start + CHUNK]
            rows = await self._store.fetchall(
                f"SELECT code, last_seq FROM games WHERE code IN ({', '.join('?' * len(chunk))})", tuple(chunk))
            logged.update((row[0], int(row[1])) for row in rows)
        heard = self._bus.heard
        assert heard is not None
        behind = [code for code, last in self._logged.items() if code in logged and last > heard.get(code, 0)]
        for code in behind:
            log.info("game %s: its log holds events this process never heard of; its feeds read them", code)
            self._bus.resync(code)
            heard[code] = self._logged[code]
        self._logged = logged
        self._bus.forget_heard(set(games))
        return behind
