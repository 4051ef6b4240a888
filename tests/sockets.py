"""Socket.IO test clients: a real python-socketio AsyncClient that records what it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio

from tests.support import LiveServer, Player


class SocketClient:
    """One browser tab on Socket.IO: records every event in arrival order."""

    def __init__(self, server: LiveServer, *, transports: list[str] | None = None) -> None:
        self.server = server
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self.join_ack: dict[str, Any] = {}
        self._changed = asyncio.Event()

        @self.sio.on("*")
        async def anything(event: str, data: Any = None) -> None:
            self.received.append((event, data))
            self._changed.set()

        @self.sio.event
        async def connect_error(data: Any) -> None:
            self.connect_error = data
            self._changed.set()

    async def connect(self, *, token: str | None = None, headers: dict[str, str] | None = None) -> None:
        await self.sio.connect(
            self.server.url, auth={"token": token} if token else None, headers=headers or {},
            transports=self.transports, wait_timeout=10,
        )

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, timeout=10)

    async def join(self, game_code: str, last_seq: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"game_code": game_code}
        if last_seq is not None:
            body["last_seq"] = last_seq
        return await self.call("join_game_room", body)

    async def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], bool], timeout: float = 10) -> None:
        async def until() -> None:
            while not predicate(self.received):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    async def wait_event(self, name: str, timeout: float = 10, **match: Any) -> Any:
        def found(received: list[tuple[str, Any]]) -> bool:
            return any(e == name and all(d.get(k) == v for k, v in match.items()) for e, d in received)

        await self.wait_for(found, timeout)
        return next(d for e, d in self.received if e == name and all(d.get(k) == v for k, v in match.items()))

    def logged(self) -> list[tuple[int, str]]:
        return [(d["seq"], e) for e, d in self.received if isinstance(d, dict) and "seq" in d and e != "reconnect_sync"]

    def names(self) -> list[str]:
        return [e for e, _ in self.received]

    async def close(self) -> None:
        await self.sio.disconnect()


async def socket_for(player: Player, *, transports: list[str] | None = None, last_seq: int | None = None) -> SocketClient:
    client = SocketClient(player.server, transports=transports)
    await client.connect(token=player.token)
    ack = await client.join(player.game_code, last_seq)
    assert ack.get("ok") is True, ack
    client.join_ack = ack
    if not ack["recovered"]:
        await client.wait_event("reconnect_sync")
    return client
