"""Two `hypercorn arcane:app` processes, one shared database, one Redis: one game night."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from arcane.cluster import POOL_SIZE, RedisLimiter, RedisLink
from tests.cluster import Cluster, RedisServer, RoamingSocket, cluster, on
from tests.sockets import SocketClient, socket_for
from tests.streams import Poller, SseFollower, play_scripted_game
from tests.support import Player, seat_party

TTL = 2.0  # ARCANE_PRESENCE_TTL of the test cluster


@dataclass
class Frontend:
    """What a load balancer gives a client: an address whose process may change."""

    url: str


@pytest.fixture
async def two(tmp_path: Path) -> Cluster:  # type: ignore[misc]
    async with cluster(tmp_path) as running:
        yield running


async def test_a_party_spread_over_processes_and_transports_sees_one_log(two: Cluster) -> None:
    a, b = two.nodes
    ann, bram, cato, dara = await seat_party(a, ["Ann", "Bram", "Cato", "Dara"])  # type: ignore[arg-type]
    bram, dara = on(bram, b), on(dara, b)
    ann_ws = await socket_for(ann, last_seq=0)
    bram_sse = SseFollower(bram, last_event_id=0)
    cato_poll = Poller(cato, after=0, timeout=2)
    dara_polling = await socket_for(dara, transports=["polling"], last_seq=0)
    bram_sse.start()
    cato_poll.start()
    try:
        await play_scripted_game([ann, bram, cato, dara])
        clients = [(ann, ann_ws), (bram, bram_sse), (cato, cato_poll), (dara, dara_polling)]
        for player, client in clients:
            truth = await two.log(player)
            assert truth[-1][1] == "game_over"
            await _until(client, lambda c=client, t=truth: c.logged()[-1:] == t[-1:], timeout=15)
            assert client.logged() == truth, player.player_name
        whispers = {p.player_name: [s for s, n in await two.log(p) if n == "whisper"] for p, _ in clients}
        assert len({tuple(w) for w in whispers.values()}) == 4, "each player sees only their own whispers"
    finally:
        await bram_sse.stop()
        await cato_poll.stop()
        for sock in (ann_ws, dara_polling):
            await sock.close()
        for player in (ann, bram, cato, dara):
            await player.close()


def _online(payload: dict[str, object]) -> dict[str, bool]:
    return {p["player_name"]: p["online"] for p in payload["players"]}  # type: ignore[index, union-attr]


async def test_tabs_on_both_processes_are_one_presence_and_a_crash_expires(two: Cluster) -> None:
    a, b = two.nodes
    ann, bram, cato = await seat_party(a, ["Ann", "Bram", "Cato"])  # type: ignore[arg-type]
    cato_b = on(cato, b)
    observer = await socket_for(cato_b)  # on B, sees what everyone sees
    ann_on_a = await socket_for(ann)
    ann_on_b = await socket_for(on(ann, b))
    bram_on_a = await socket_for(bram)
    try:
        await observer.wait_for(lambda r: _online(_last_update(r)) == {"Ann": True, "Bram": True, "Cato": True})
        assert _connected(observer, ann.player_id) == 1, "two tabs, one arrival"
        assert _online(await cato_b.view()) == {"Ann": True, "Bram": True, "Cato": True}

        await ann_on_b.close()  # one tab closed: still online through the other
        await asyncio.sleep(0.3 + 0.5)  # the grace period, and then some
        assert _disconnected(observer, ann.player_id) == 0
        ann_on_b = await socket_for(on(ann, b))
        await asyncio.sleep(0.2)

        await a.kill()  # Ann still has a tab on B; Bram had only A
        await observer.wait_event("player_disconnected", timeout=TTL + 1.0, player_id=bram.player_id)
        assert _disconnected(observer, ann.player_id) == 0
        assert _online(await cato_b.view()) == {"Ann": True, "Bram": False, "Cato": True}
        # The presence_update follows player_disconnected (it reads who is online after it).
        await observer.wait_for(lambda r: _online(_last_update(r)) == {"Ann": True, "Bram": False, "Cato": True})
    finally:
        for sock in (observer, ann_on_a, ann_on_b, bram_on_a):
            await sock.close()
        for player in (ann, bram, cato, cato_b):
            await player.close()


def _last_update(received: list[tuple[str, object]]) -> dict[str, object]:
    updates = [d for e, d in received if e == "presence_update"]
    return updates[-1] if updates else {"players": []}  # type: ignore[return-value]


def _connected(sock: SocketClient, player_id: str) -> int:
    return sum(1 for e, d in sock.received if e == "player_connected" and d["player_id"] == player_id)


def _disconnected(sock: SocketClient, player_id: str) -> int:
    return sum(1 for e, d in sock.received if e == "player_disconnected" and d["player_id"] == player_id)


async def test_events_committed_while_redis_is_down_reach_everyone_once(two: Cluster) -> None:
    a, b = two.nodes
    ann, bram, cato = await seat_party(a, ["Ann", "Bram", "Cato"])  # type: ignore[arg-type]
    bram_b, cato_b = on(bram, b), on(cato, b)
    ann_ws = await socket_for(ann, last_seq=0)
    bram_ws = await socket_for(bram_b, last_seq=0)
    cato_sse = SseFollower(cato_b, last_event_id=0)
    cato_sse.start()
    clients = [(ann, ann_ws), (bram, bram_ws), (cato, cato_sse)]
    try:
        await ann.post("/chat", {"text": "before"})
        await _all_caught_up(two, clients)

        await two.redis.kill()
        for n in range(5):  # committed on both processes while neither can tell the other
            assert (await ann.post("/chat", {"text": f"from A {n}"})).status_code == 201
            assert (await bram_b.post("/chat", {"text": f"from B {n}"})).status_code == 201
        await asyncio.sleep(0.5)
        await two.redis.start()

        await _all_caught_up(two, clients, timeout=20)
        assert (await ann.post("/chat", {"text": "after"})).status_code == 201
        await _all_caught_up(two, clients)
        for player, client in clients:
            texts = [d["text"] for _, d in _chats(client)]
            assert len(texts) == len(set(texts)) == 12, player.player_name
    finally:
        await cato_sse.stop()
        for sock in (ann_ws, bram_ws):
            await sock.close()
        for player in (ann, bram, cato, bram_b, cato_b):
            await player.close()


def _chats(client: SocketClient | SseFollower) -> list[tuple[int, dict[str, object]]]:
    if isinstance(client, SocketClient):
        return [(d["seq"], d) for e, d in client.received if e == "chat_message"]
    return [(e.seq, e.data) for e in client.events if e.event == "chat_message"]  # type: ignore[misc]


Client = SocketClient | SseFollower | Poller | RoamingSocket


async def _until(client: Client, condition: Callable[[], bool], timeout: float = 10) -> None:
    if isinstance(client, SocketClient):
        await client.wait_for(lambda _received: condition(), timeout)
    else:
        await client.wait_for(condition, timeout)


async def _all_caught_up(two: Cluster, clients: list[tuple[Player, Client]], timeout: float = 10) -> None:
    for player, client in clients:
        truth = await two.log(player)
        await _until(client, lambda c=client, t=truth: c.logged() == t, timeout)


async def test_clients_of_a_killed_process_resume_on_the_other_without_a_gap(two: Cluster) -> None:
    a, b = two.nodes
    front = Frontend(a.url)  # the address the roaming clients use
    ann, bram, cato = await seat_party(a, ["Ann", "Bram", "Cato"])  # type: ignore[arg-type]
    writer = on(cato, b)
    ann_ws = RoamingSocket(ann, [a, b])
    bram_sse = SseFollower(on(bram, front), last_event_id=0)
    cato_poll = Poller(on(cato, front), after=0, timeout=1)
    await ann_ws.start()
    bram_sse.start()
    cato_poll.start()
    clients = [(ann, ann_ws), (bram, bram_sse), (cato, cato_poll)]
    try:
        for n in range(5):
            await writer.post("/chat", {"text": f"early {n}"})
        await _all_caught_up(two, clients)

        async def chatter() -> None:
            for n in range(30):
                assert (await writer.post("/chat", {"text": f"steady {n}"})).status_code == 201
                await asyncio.sleep(0.02)

        talking = asyncio.create_task(chatter())
        await asyncio.sleep(0.2)
        await a.kill()
        front.url = b.url
        await talking
        await _all_caught_up(two, clients, timeout=20)
        assert len(ann_ws.joins) >= 2 and ann_ws.joins[-1]["recovered"] is True
        for _, client in clients:
            seqs = [s for s, _ in client.logged()]  # type: ignore[attr-defined]
            assert seqs == sorted(set(seqs)), "a duplicate or out-of-order event"
    finally:
        await ann_ws.stop()
        await bram_sse.stop()
        await cato_poll.stop()
        for player in (ann, bram, cato, writer):
            await player.close()


async def test_a_rate_limit_holds_across_processes(tmp_path: Path) -> None:
    async with cluster(tmp_path, ARCANE_RATE_LIMIT_BURST="6", ARCANE_RATE_LIMIT_PER_SECOND="0.5") as two:
        a, b = two.nodes
        (ann,) = await seat_party(a, ["Ann"])  # type: ignore[arg-type]
        ann_b = on(ann, b)
        try:
            answers = []
            for n in range(8):  # alternately on each process: one player, one bucket
                answers.append(await ann.post("/chat", {"text": f"a{n}"}))
                answers.append(await ann_b.post("/chat", {"text": f"b{n}"}))
            accepted = [r for r in answers if r.status_code == 201]
            refused = [r for r in answers if r.status_code == 429]
            assert 6 <= len(accepted) <= 7  # the burst, and at most one token refilled meanwhile
            assert len(accepted) + len(refused) == len(answers)
            assert {r.json()["error"]["code"] for r in refused} == {"RATE_LIMITED"}
            chats = [n for _, n in await two.log(ann) if n == "chat_message"]
            assert len(chats) == len(accepted), "a refused action changes nothing"
        finally:
            await ann.close()
            await ann_b.close()


async def test_sse_and_long_poll_need_no_sticky_sessions(tmp_path: Path) -> None:
    async with cluster(tmp_path, nodes=1) as one:
        (node,) = one.nodes
        await node.stop()
        node.args = ["--workers", "2"]  # two processes behind one port, no affinity at all
        await node.start()
        ann, bram = await seat_party(node, ["Ann", "Bram"])  # type: ignore[arg-type]
        await ann.close()  # from here on, a new connection for every request: any worker answers
        ann.client = httpx.AsyncClient(base_url=node.url, headers=ann.client.headers,
                                       limits=httpx.Limits(max_keepalive_connections=0))
        poller = Poller(bram, after=0, timeout=1)
        poller.client = httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_keepalive_connections=0))
        follower = SseFollower(bram, last_event_id=0)
        poller.start()
        follower.start()
        try:
            for n in range(20):
                assert (await ann.post("/chat", {"text": f"line {n}"})).status_code == 201
            truth = await one.log(bram)
            await _until(poller, lambda: poller.logged() == truth, 15)
            await _until(follower, lambda: follower.logged() == truth, 15)
        finally:
            await poller.stop()
            await follower.stop()
            await ann.close()
            await bram.close()


async def test_more_redis_commands_at_once_than_the_pool_holds_wait_their_turn(tmp_path: Path) -> None:
    """A crowd of rate checks at one moment is load, not an outage: none falls back to the
    process's own limiter, Redis is not reported down, and the process opens no more
    connections than its pool holds."""
    server = RedisServer(tmp_path / "redis")
    await server.start()
    link = RedisLink(server.url, "crowd")
    try:
        limiter = RedisLimiter(link, rate=1000, burst=1000)
        crowd = 3 * POOL_SIZE
        answers = await asyncio.gather(*(limiter.allow(f"player{n}") for n in range(crowd)))
        assert answers == [True] * crowd
        assert link.healthy, "pool exhaustion was taken for Redis being down"
        keys = await link.client.keys(link.key("rate", "*"))
        assert len(keys) == crowd, "every check was made in Redis, none by the local fallback"
        clients = await link.client.info("clients")
        assert clients["connected_clients"] <= POOL_SIZE
    finally:
        await link.close()
        await server.kill()
