"""A game night through a real balancer (HAProxy, deploy/haproxy.cfg) in front of three hosts
that share only PostgreSQL, Redis and the secret key; one host is killed in the middle."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.balancer import deployment
from tests.cluster import RoamingSocket
from tests.logs import visible_truth
from tests.streams import Poller, SseFollower
from tests.support import Player, seat_party

GAMES = 6  # four players each: a websocket, an Engine.IO polling socket, an SSE stream, a long-poller
TTL = 2.0  # ARCANE_PRESENCE_TTL of the deployment


@dataclass
class Front:
    """What every client is given: the balancer's address, never a host's."""

    url: str


async def truth(database: Any, player: Player) -> list[tuple[int, str]]:
    return await visible_truth(database, player.game_code, player.player_id)


async def test_a_host_killed_in_a_game_night_behind_the_balancer_loses_nobody_anything(tmp_path: Path) -> None:
    async with deployment(tmp_path) as deployed:
        front = Front(deployed.balancer.url)
        parties = [await seat_party(front, [f"P{g}a", f"P{g}b", f"P{g}c", f"P{g}d"]) for g in range(GAMES)]  # type: ignore[arg-type]
        followers: list[tuple[Player, Any]] = []
        for ws, eio, sse, poll in parties:
            followers += [(ws, RoamingSocket(ws, [front])), (eio, RoamingSocket(eio, [front], transports=["polling"])),
                          (sse, SseFollower(sse, last_event_id=0)), (poll, Poller(poll, after=0, timeout=1))]
        for _, client in followers:
            started = client.start()
            if started is not None:
                await started
        acknowledged: list[tuple[str, int]] = []
        chance = random.Random(21)

        async def night(rounds: int) -> None:
            for n in range(rounds):
                for party in parties:
                    speaker = chance.choice(party)
                    try:
                        answer = await speaker.post("/chat", {"text": f"{speaker.player_name} {n}"})
                    except Exception:
                        continue  # not acknowledged: it may or may not be in the log
                    if answer.status_code == 201:
                        acknowledged.append((speaker.game_code, answer.json()["seq"]))
                await asyncio.sleep(0.02)

        talking = asyncio.create_task(night(40))
        await asyncio.sleep(0.6)
        killed = deployed.hosts[1]
        await killed.kill()  # kill -9: no goodbye to anyone
        await talking
        assert len(acknowledged) > GAMES * 30, "most actions are acknowledged through the kill"
        for player, client in followers:
            expected = await truth(deployed.database, player)
            try:
                await client.wait_for(lambda c=client, t=expected: c.logged() == t, 30)
            except TimeoutError:
                got = client.logged()
                raise AssertionError(f"{type(client).__name__} of {player.player_name}: missing "
                                     f"{sorted(set(expected) - set(got))}, extra or doubled "
                                     f"{[e for e in got if got.count(e) > 1 or e not in expected]}; "
                                     f"joins {getattr(client, 'joins', '-')}, failures {getattr(client, 'failures', '-')}") from None
            seqs = [seq for seq, _ in client.logged()]
            assert seqs == sorted(set(seqs)), f"{player.player_name}: a duplicate or an event out of order"
            mine = {seq for code, seq in acknowledged if code == player.game_code}
            assert mine <= set(seqs), f"{player.player_name}: an acknowledged chat is missing"
        # The kill was felt: sockets and streams of the dead host came back through the balancer,
        # from their cursors.
        sockets = [c for _, c in followers if isinstance(c, RoamingSocket)]
        rejoins = [j for c in sockets for j in c.joins[1:]]
        assert rejoins and all(j.get("ok") and j.get("recovered") is True for j in rejoins), rejoins
        streams = [c for _, c in followers if isinstance(c, SseFollower)]
        assert sum(s.connections for s in streams) >= len(streams)  # where round robin put them is not fixed

        # Presence: the killed host's connections expire within the TTL; everyone is back online.
        async def everyone_online() -> bool:
            for party in parties:
                view = await party[0].view()
                if not all(p["online"] for p in view["players"]):
                    return False
            return True

        deadline = asyncio.get_running_loop().time() + TTL + 8
        while not await everyone_online():
            assert asyncio.get_running_loop().time() < deadline, "presence did not recover within the TTL"
            await asyncio.sleep(0.25)
        for _, client in followers:
            await client.stop()
        for party in parties:
            for player in party:
                await player.close()
