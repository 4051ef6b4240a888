"""The drain (docs/operations.md): SIGTERM with clients open on every transport. Each is told
`server_draining` and let go within ARCANE_DRAIN_SECONDS, new connections are refused
meanwhile, the server stops; started again, every client is back from its cursor with
nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tests.cluster import Node, RoamingSocket, free_port
from tests.logs import visible_truth
from tests.streams import Poller, SseFollower
from tests.support import TEST_SECRET, Player, seat_party, test_database

DRAIN = 1.0


async def truth(database: Any, player: Player) -> list[tuple[int, str]]:
    return await visible_truth(database, player.game_code, player.player_id)


def _kind(client: Any) -> str:
    if isinstance(client, RoamingSocket):
        return "engineio-polling" if client.transports == ["polling"] else "websocket"
    return "sse" if isinstance(client, SseFollower) else "longpoll"


def drained(client: Any) -> bool:
    """Whether the client was told `server_draining` on its transport."""
    if isinstance(client, RoamingSocket):
        return any(name == "server_draining" for name, _ in client.received)
    if isinstance(client, SseFollower):
        return any(e.event == "server_draining" for e in client.events)
    return any(item["event"] == "server_draining" for item in client.items)


async def test_a_drained_server_lets_every_client_go_told_and_loses_nothing(tmp_path: Path) -> None:
    database = test_database(tmp_path)
    env = os.environ | {"ARCANE_DATABASE": str(database), "ARCANE_SECRET_KEY": TEST_SECRET,
                        "ARCANE_DRAIN_SECONDS": str(DRAIN), "ARCANE_PRESENCE_GRACE": "0.3"}
    node = Node("drained", free_port(), env)
    await node.start()
    try:
        ws, eio, sse, poll = await seat_party(node, ["Ann", "Bob", "Cyd", "Dee"])  # type: ignore[arg-type]
        followers: list[tuple[Player, Any]] = [
            (ws, RoamingSocket(ws, [node])), (eio, RoamingSocket(eio, [node], transports=["polling"])),
            (sse, SseFollower(sse, last_event_id=0)), (poll, Poller(poll, after=0, timeout=5))]
        for _, client in followers:
            started = client.start()
            if started is not None:
                await started
        for n in range(3):
            assert (await ws.post("/chat", {"text": f"before {n}"})).status_code == 201
        for player, client in followers:
            expected = await truth(database, player)
            await client.wait_for(lambda c=client, t=expected: c.logged() == t, 15)

        await asyncio.sleep(0.5)  # the long-poller waits again: a poll between two is refused 503 instead
        began = time.monotonic()
        node.proc.send_signal(15)  # SIGTERM: the drain
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=node.url) as newcomer:  # no new connection meanwhile
            try:
                refused = await newcomer.get(f"/api/games/{ws.game_code}/poll",
                                             headers={"Authorization": f"Bearer {ws.token}"})
                assert refused.status_code == 503 and refused.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
                ready = await newcomer.get("/healthz/ready")
                assert ready.status_code == 503 and ready.json()["draining"] == "yes"
            except httpx.TransportError:
                pass  # already stopped listening: refused as well
        assert node.proc is not None
        await asyncio.wait_for(node.proc.wait(), 10)
        took = time.monotonic() - began
        assert took < DRAIN + 4, took  # within the drain, plus hypercorn's own stop
        # The open connections are each told on their transport. A poller between two requests
        # (a long-poll, an Engine.IO GET) hears no word: its next request is refused (503, or
        # the listener is closed), and it reconnects as from any failure, losing nothing.
        told = {_kind(c) for _, c in followers if drained(c)}
        assert told >= {"websocket", "sse"} and len(told) >= 3, f"told to go: {sorted(told)}"

        await node.start()  # the same server, back
        for n in range(3):
            assert (await ws.post("/chat", {"text": f"after {n}"})).status_code == 201
        for player, client in followers:
            expected = await truth(database, player)
            try:
                await client.wait_for(lambda c=client, t=expected: c.logged() == t, 20)
            except TimeoutError:
                got = client.logged()
                raise AssertionError(f"{type(client).__name__} of {player.player_name}: missing "
                                     f"{sorted(set(expected) - set(got))}") from None
            seqs = [seq for seq, _ in client.logged()]
            assert seqs == sorted(set(seqs)), f"{player.player_name}: a duplicate or an event out of order"
        for _, client in followers:
            await client.stop()
        for player in (ws, eio, sse, poll):
            await player.close()
    finally:
        await node.stop()
