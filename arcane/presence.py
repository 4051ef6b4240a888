"""Who is online: players with at least one live connection on any transport.

Transports report connections (`connect`/`disconnect`, or a lease that expires
unless `touch`ed, for long-pollers). `player_connected` is announced on 0 -> 1
connections; `player_disconnected` on 1 -> 0 only after a grace period, so a
page reload does not flap. Each change is followed by a `presence_update`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from arcane.events import Event

Roster = Callable[[str], Awaitable[list[tuple[str, str]]]]


@dataclass
class _Seat:
    name: str
    connections: set[str] = field(default_factory=set)
    leaving: asyncio.TimerHandle | None = None
    announced: bool = False


class Presence:
    def __init__(self, *, grace: float, publish: Callable[[Iterable[Event]], None], roster: Roster) -> None:
        self._grace = grace
        self._publish = publish
        self._roster = roster
        self._seats: dict[tuple[str, str], _Seat] = {}
        self._seen: set[tuple[str, str]] = set()
        self._leases: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def online(self, game_code: str) -> set[str]:
        return {pid for (code, pid), seat in self._seats.items() if code == game_code and seat.announced}

    def connect(self, game_code: str, player_id: str, player_name: str, conn_id: str, *, lease: float | None = None) -> None:
        key = (game_code, player_id)
        seat = self._seats.setdefault(key, _Seat(player_name))
        if lease is not None:
            self._renew(key, conn_id, lease)
        if conn_id in seat.connections:
            return
        seat.connections.add(conn_id)
        if seat.leaving is not None:
            seat.leaving.cancel()
            seat.leaving = None
        if not seat.announced:
            seat.announced = True
            reconnected = key in self._seen
            self._seen.add(key)
            self._announce(game_code, Event(game_code, "player_connected", {
                "player_id": player_id, "player_name": player_name, "reconnected": reconnected,
            }))

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

    def _renew(self, key: tuple[str, str], conn_id: str, lease: float) -> None:
        handle = self._leases.pop(conn_id, None)
        if handle is not None:
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._leases[conn_id] = loop.call_later(lease, self.disconnect, key[0], key[1], conn_id)

    def _gone(self, key: tuple[str, str]) -> None:
        seat = self._seats.get(key)
        if seat is None or seat.connections:
            return
        del self._seats[key]
        if seat.announced:
            self._announce(key[0], Event(key[0], "player_disconnected", {
                "player_id": key[1], "player_name": seat.name,
            }))

    def _announce(self, game_code: str, event: Event) -> None:
        self._publish([event])
        task = asyncio.ensure_future(self._publish_update(game_code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish_update(self, game_code: str) -> None:
        self._publish([Event(game_code, "presence_update", await self.update_payload(game_code))])

    async def update_payload(self, game_code: str) -> dict[str, object]:
        online = self.online(game_code)
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
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
