"""Who is online: tabs, closing them, and reloads that must not flap."""

from __future__ import annotations

import asyncio

from tests.sockets import SocketClient, socket_for
from tests.support import LiveServer, seat_party


def announced(client: SocketClient, name: str, player_id: str) -> int:
    return sum(1 for e, d in client.received if e == name and d.get("player_id") == player_id)


async def online_ids(client: SocketClient) -> set[str]:
    ack = await client.call("request_presence")
    return {p["player_id"] for p in ack["players"] if p["online"]}


async def test_a_second_tab_keeps_a_player_online_and_the_last_one_closing_does_not(server: LiveServer) -> None:
    grace = server.settings.presence_grace
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    watcher = await socket_for(ann)
    first = await socket_for(bram)
    second = await socket_for(bram)
    await watcher.wait_event("player_connected", player_id=bram.player_id)
    assert announced(watcher, "player_connected", bram.player_id) == 1

    await first.close()
    await asyncio.sleep(grace * 3)
    assert announced(watcher, "player_disconnected", bram.player_id) == 0
    assert bram.player_id in await online_ids(watcher)
    assert next(p for p in (await ann.view())["players"] if p["player_id"] == bram.player_id)["online"]

    await second.close()
    gone = await watcher.wait_event("player_disconnected", player_id=bram.player_id, timeout=grace * 10)
    assert gone["player_name"] == "Bram" and "seq" not in gone
    update = await watcher.wait_event("presence_update", online_players=1)
    assert update["total_players"] == 2
    assert bram.player_id not in await online_ids(watcher)
    await watcher.close()
    await ann.close()
    await bram.close()


async def test_a_reload_within_the_grace_period_announces_nothing(server: LiveServer) -> None:
    grace = server.settings.presence_grace
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    watcher = await socket_for(ann)
    tab = await socket_for(bram)
    await watcher.wait_event("player_connected", player_id=bram.player_id)

    await tab.close()
    tab = await socket_for(bram)
    await asyncio.sleep(grace * 3)
    assert announced(watcher, "player_disconnected", bram.player_id) == 0
    assert announced(watcher, "player_connected", bram.player_id) == 1
    assert announced(watcher, "player_joined", bram.player_id) == 0

    await tab.close()
    await watcher.wait_event("player_disconnected", player_id=bram.player_id, timeout=grace * 10)
    back = await socket_for(bram)
    again = await watcher.wait_event("player_connected", player_id=bram.player_id, reconnected=True)
    assert again["player_name"] == "Bram"
    await back.close()
    await watcher.close()
    await ann.close()
    await bram.close()
