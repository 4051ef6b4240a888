"""Who is online: players with at least one live connection on any transport, on any process.

Transports report connections (`connect`/`disconnect`, or a lease that expires
unless `touch`ed, for long-pollers). This process keeps its own seats; a
`Directory` says whether a seat is the player's first or last anywhere: the
local one for a single process, Redis's (arcane/cluster.py) for several.

`player_connected` is announced on 0 -> 1 connections anywhere; `player_disconnected`
on 1 -> 0, only after a grace period, so a page reload does not flap. Each change
is followed by a `presence_update`. With a heartbeat (Redis), seats of a process
that died without closing them expire, and a live process announces them gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from arcane.events import Event

Roster = Callable[[str], Awaitable[list[tuple[str, str]]]]
Seat = tuple[str, str]  # (game code, player id)
log = logging.getLogger(__name__)


class Directory(Protocol):
    """Where seats of every process meet. Each call reports a transition only once."""

    heartbeat_interval: float | None

    async def arrive(self, seat: Seat) -> tuple[bool, bool]:
        """This process holds `seat`: (first connection anywhere?, seen online before?)."""

    async def depart(self, seat: Seat) -> bool:
        """This process let go of `seat`: was it the player's last connection anywhere?"""

    async def online(self, game_code: str) -> set[str]: ...

    async def heartbeat(self, seats: list[Seat]) -> list[tuple[Seat, bool]]:
        """Keep this process's seats alive; answers those that had lapsed and came back."""

    async def sweep(self) -> list[Seat]:
        """Seats of processes that stopped beating with no other connection: now offline."""


class LocalDirectory:
    """One process: its own seats are all there is."""

    heartbeat_interval: float | None = None

    def __init__(self) -> None:
        self._online: dict[str, set[str]] = {}  # game code -> players online, looked up per view
        self._seen: set[Seat] = set()

    async def arrive(self, seat: Seat) -> tuple[bool, bool]:
        return self.arrive_now(seat)

    def arrive_now(self, seat: Seat) -> tuple[bool, bool]:
        code, player = seat
        players = self._online.setdefault(code, set())
        if player in players:
            return False, False
        players.add(player)
        seen = seat in self._seen
        self._seen.add(seat)
        return True, seen

    async def depart(self, seat: Seat) -> bool:
        code, player = seat
        players = self._online.get(code)
        if players is None or player not in players:
            return False
        players.discard(player)
        if not players:
            del self._online[code]
        return True

    async def online(self, game_code: str) -> set[str]:
        return set(self._online.get(game_code, ()))

    async def heartbeat(self, seats: list[Seat]) -> list[tuple[Seat, bool]]:
        return []

    async def sweep(self) -> list[Seat]:
        return []


@dataclass
class _Local:
    name: str
    connections: set[str] = field(default_factory=set)
    leaving: asyncio.TimerHandle | None = None


class Presence:
    def __init__(
        self,
        *,
        grace: float,
        publish: Callable[[Iterable[Event]], None],
        roster: Roster,
        directory: Directory | None = None,
    ) -> None:
        self._grace = grace
        self._publish = publish
        self._roster = roster
        self.directory: Directory = directory or LocalDirectory()
        self._seats: dict[Seat, _Local] = {}
        self._leases: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Directory calls run one at a time, in the order the transitions happened here.
        self._order = asyncio.Lock()
        self._beat: asyncio.Task[None] | None = None
        # Told of each player gone past the grace period (the game passes on a host's role).
        self.on_gone: Callable[[str, str], Awaitable[None]] | None = None

    async def start(self) -> None:
        self._order = asyncio.Lock()
        if self.directory.heartbeat_interval is not None:
            self._beat = asyncio.create_task(self._beating(self.directory.heartbeat_interval), name="presence-heartbeat")

    async def online(self, game_code: str) -> set[str]:
        return await self.directory.online(game_code)

    def local_players(self) -> int:
        """Players with at least one live connection to this process (for /metrics)."""
        return len(self._seats)

    def connect(self, game_code: str, player_id: str, player_name: str, conn_id: str, *, lease: float | None = None) -> None:
        key = (game_code, player_id)
        seat = self._seats.get(key)
        arriving = seat is None
        if seat is None:
            seat = self._seats[key] = _Local(player_name)
        if lease is not None:
            self._renew(key, conn_id, lease)
        if conn_id in seat.connections:
            return
        seat.connections.add(conn_id)
        if seat.leaving is not None:
            seat.leaving.cancel()
            seat.leaving = None
        if arriving:
            if isinstance(self.directory, LocalDirectory):
                # Announced before the caller goes on (its own feed opens after this), as ever.
                first, seen = self.directory.arrive_now(key)
                if first:
                    self._announce(_connected(key, player_name, seen))
            else:
                self._spawn(self._arrive(key, player_name))

    def touch(self, game_code: str, player_id: str, player_name: str, conn_id: str, lease: float) -> None:
        """A lease-held connection (a long-poller) that lives while it keeps coming back."""
        self.connect(game_code, player_id, player_name, conn_id, lease=lease)

    def disconnect(self, game_code: str, player_id: str, conn_id: str) -> None:
        key = (game_code, player_id)
        handle = self._leases.pop(conn_id, None)
        if handle is not None:
            handle.cancel()
        seat = self._seats.get(key)
        if seat is None or conn_id not in seat.connections:
            return
        seat.connections.discard(conn_id)
        if not seat.connections and seat.leaving is None:
            loop = asyncio.get_running_loop()
            seat.leaving = loop.call_later(self._grace, self._gone, key)

    def _renew(self, key: Seat, conn_id: str, lease: float) -> None:
        handle = self._leases.pop(conn_id, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._leases[conn_id] = loop.call_later(lease, self.disconnect, key[0], key[1], conn_id)

    def _gone(self, key: Seat) -> None:
        seat = self._seats.get(key)
        if seat is None or seat.connections:
            return
        del self._seats[key]
        self._spawn(self._depart(key, seat.name))

    async def _arrive(self, key: Seat, name: str) -> None:
        async with self._order:
            first, seen = await self.directory.arrive(key)
        if first:
            self._announce(_connected(key, name, seen))

    async def _depart(self, key: Seat, name: str) -> None:
        async with self._order:
            if key in self._seats:  # came back while this waited its turn
                return
            last = await self.directory.depart(key)
        if last:
            self._announce(_disconnected(key, name))

    def _announce(self, event: Event) -> None:
        self._publish([event])
        self._spawn(self._publish_update(event.game_code))
        if event.name == "player_disconnected" and self.on_gone is not None:
            self._spawn(self.on_gone(event.game_code, str(event.payload["player_id"])))

    async def _publish_update(self, game_code: str) -> None:
        self._publish([Event(game_code, "presence_update", await self.update_payload(game_code))])

    async def _beating(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._order:
                    lapsed = await self.directory.heartbeat(list(self._seats))
                    gone = await self.directory.sweep()
                for key, seen in lapsed:
                    if key in self._seats:
                        self._announce(_connected(key, self._seats[key].name, seen))
                for key in gone:
                    names = dict(await self._roster(key[0]))
                    self._announce(_disconnected(key, names.get(key[1], "")))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("presence heartbeat failed; trying again in %.1f s", interval)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(self._guard(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        close = getattr(work, "close", None)
        if close is not None:
            # A task cancelled before its first step (the loop ending at a stop) never awaits
            # `work`: closed here, it is not reported as "never awaited". Else a no-op.
            task.add_done_callback(lambda _: close())

    @staticmethod
    async def _guard(work: Awaitable[None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("presence change could not be announced")

    async def update_payload(self, game_code: str) -> dict[str, object]:
        online = await self.online(game_code)
        roster = await self._roster(game_code)
        return {
            "online_players": sum(1 for pid, _ in roster if pid in online),
            "total_players": len(roster),
            "players": [{"player_id": pid, "player_name": name, "online": pid in online} for pid, name in roster],
        }

    async def close(self) -> None:
        for handle in self._leases.values():
            handle.cancel()
        for seat in self._seats.values():
            if seat.leaving is not None:
                seat.leaving.cancel()
        self._leases.clear()
        tasks = [*self._tasks, *([self._beat] if self._beat else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _connected(seat: Seat, name: str, reconnected: bool) -> Event:
    return Event(seat[0], "player_connected", {"player_id": seat[1], "player_name": name, "reconnected": reconnected})


def _disconnected(seat: Seat, name: str) -> Event:
    return Event(seat[0], "player_disconnected", {"player_id": seat[1], "player_name": name})
