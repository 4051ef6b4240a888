"""Long-polling: one answer per request, the cursor carried by the client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcane.fallback import longpoll
from arcane.presence import Presence
from tests.streams import Poller, sse_for, visible_log
from tests.support import LiveServer, Player, seat_party, serving
from tests.logs import subscribers


def without_epoch(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer but its `epoch` (tests/test_epoch.py checks that one)."""
    assert isinstance(answer.get("epoch"), str) and len(answer["epoch"]) == 8, answer
    return {k: v for k, v in answer.items() if k != "epoch"}


async def close_all(*things: Player | Poller) -> None:
    for thing in things:
        if isinstance(thing, Poller):
            await thing.stop()
        else:
            await thing.close()


async def test_a_poll_with_events_after_the_cursor_answers_at_once(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    await bob.post("/chat", {"text": "hello"})
    poller = Poller(ann, after=1, timeout=30)
    try:
        body = await poller.poll()
        assert set(body) == {"events", "last_seq", "recovered", "epoch"} and len(body["epoch"]) == 8
        assert body["recovered"] is True and body["last_seq"] == 3
        assert [(e["seq"], e["event"]) for e in body["events"]] == [(2, "player_joined"), (3, "chat_message")]
        chat = body["events"][1]["data"]
        assert chat["text"] == "hello" and chat["seq"] == 3 and chat["player_id"] == bob.player_id
    finally:
        await close_all(poller, ann, bob)


async def test_a_poll_without_cursor_starts_with_a_snapshot_at_the_current_seq(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    poller = Poller(ann, timeout=30)
    try:
        body = await poller.poll()
        assert body["recovered"] is False and body["last_seq"] == 2
        first = body["events"][0]
        assert first["event"] == "reconnect_sync" and first["seq"] == 2
        assert first["data"]["seq"] == 2 and first["data"]["recovered"] is False
        assert first["data"]["you"]["player_id"] == ann.player_id
        assert all(e["seq"] is None for e in body["events"][1:])  # only presence may follow
    finally:
        await close_all(poller, ann, bob)


async def test_a_cursor_too_old_or_unknown_gets_a_snapshot(tmp_path: Path) -> None:
    async with serving(tmp_path, log_retention=2) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        for n in range(3):
            await bob.post("/chat", {"text": f"line {n}"})
        for after in (0, 1, 6):
            poller = Poller(ann, after=after, timeout=30)
            try:
                body = await poller.poll()
                assert body["recovered"] is False, after
                assert (body["events"][0]["seq"], body["events"][0]["event"]) == (5, "reconnect_sync")
                assert body["last_seq"] == 5
            finally:
                await poller.stop()
        await close_all(ann, bob)


async def test_a_waiting_poll_answers_the_event_that_arrives(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    poller = Poller(ann, after=2, timeout=30, client_id="tab-1")
    try:
        await poller.poll()  # the first poll brings Ann's own arrival (presence, no seq)
        waiting = asyncio.create_task(poller.poll())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await bob.post("/chat", {"text": "wake up"})
        body = await asyncio.wait_for(waiting, 10)
        assert [(e["seq"], e["event"]) for e in body["events"]] == [(3, "chat_message")]
        assert body["last_seq"] == 3 and body["recovered"] is True
    finally:
        await close_all(poller, ann, bob)


async def test_a_quiet_poll_answers_an_empty_list_after_its_timeout(tmp_path: Path) -> None:
    async with serving(tmp_path, poll_timeout_max=0.3) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        poller = Poller(ann, after=2, timeout=0.2)
        try:
            await poller.poll()
            assert without_epoch(await poller.poll()) == {"events": [], "last_seq": 2, "recovered": True}
            # Asked for 100 s, capped at poll_timeout_max: answered well within the client's 10 s.
            response = await poller.request(after=2, timeout=100)
            assert without_epoch(response.json()) == {"events": [], "last_seq": 2, "recovered": True}
            assert response.headers["cache-control"] == "no-store"
        finally:
            await close_all(poller, ann, bob)


async def test_bad_parameters_and_credentials_get_the_http_error_codes(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    other = await Player.create(server, "Cleo")
    poller = Poller(ann)
    plain = httpx.AsyncClient(base_url=server.url)
    path = f"/api/games/{ann.game_code}/poll"
    try:
        for params in ({"after": "x"}, {"after": "-4"}, {"after": "1_0"}, {"timeout": "-1"}, {"timeout": "nan"}, {"client_id": "no spaces"}):
            response = await poller.request(**params)
            assert response.status_code == 400, params
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        refusals = [
            (await plain.get(path, params={"timeout": 0}), 401, "AUTH_REQUIRED"),
            (await plain.get(path, params={"token": other.token}), 403, "NOT_IN_GAME"),
            (await plain.get("/api/games/ZZZZZZ/poll", params={"token": ann.token}), 403, "NOT_IN_GAME"),
        ]
        for response, status, code in refusals:
            assert response.status_code == status, response.text
            assert response.json()["error"]["code"] == code
        by_query = await plain.get(path, params={"token": ann.token, "after": 0, "timeout": 0})
        by_cookie = await bob.client.get(path, params={"after": 0, "timeout": 0},
                                         headers={"Authorization": ""})
        for response in (by_query, by_cookie):
            assert response.status_code == 200, response.text
            assert [e["seq"] for e in response.json()["events"] if e["seq"]] == [1, 2]
    finally:
        await plain.aclose()
        await close_all(poller, ann, bob, other)


async def test_a_poller_misses_nothing_across_a_restart(tmp_path: Path) -> None:
    async with serving(tmp_path, turns_per_game=2, questions_per_player=2) as server:
        party = await seat_party(server, ["Ann", "Bob"])
        ann = party[0]
        poller = Poller(ann, after=0, timeout=0)
        await poller.poll()
        await party[0].post("/start")
        await server.restart()
        for player in party:
            await player.answer_all()
        try:
            while not any(i["event"] == "whisper" for i in poller.items):
                body = await poller.poll()
                assert body["recovered"] is True
            assert poller.logged() == await visible_log(server, ann)
        finally:
            await close_all(poller, *party)


async def test_a_waiting_poll_rides_through_a_restart(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        poller = Poller(ann, after=0, timeout=30)
        poller.start()
        try:
            await poller.wait_for(lambda: len(poller.logged()) == 2)
            await server.restart()  # the waiting poll is answered at shutdown, not held
            await bob.post("/chat", {"text": "back again"})
            await poller.wait_for(lambda: len(poller.logged()) == 3)
            assert poller.logged() == await visible_log(server, ann)
            assert all(body["recovered"] for body in poller.answers)
        finally:
            await close_all(poller, ann, bob)


async def test_a_client_that_gives_up_on_a_poll_releases_its_subscription(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    bus = server.runtime.services.bus
    client = httpx.AsyncClient(base_url=server.url, timeout=30)
    path = f"/api/games/{ann.game_code}/poll"
    params = {"token": ann.token, "after": 2, "timeout": 30}
    try:
        first = await client.get(path, params=params)  # answered by Ann's own arrival (presence)
        assert [e["event"] for e in first.json()["events"]] == ["presence_update"]
        waiting = asyncio.create_task(client.get(path, params=params))
        for _ in range(200):
            if subscribers(bus, ann.game_code) == 1:
                break
            await asyncio.sleep(0.02)
        assert subscribers(bus, ann.game_code) == 1
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await client.aclose()  # the connection drops: the server hears a disconnect
        for _ in range(200):
            if subscribers(bus) == 0:
                break
            await asyncio.sleep(0.02)
        assert subscribers(bus) == 0
    finally:
        await client.aclose()
        await close_all(ann, bob)


async def test_shutdown_answers_a_waiting_poll_with_the_word_to_reconnect(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    poller = Poller(ann, after=2, timeout=30)
    try:
        await poller.poll()
        waiting = asyncio.create_task(poller.poll())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        server.runtime.begin_shutdown()
        body = await asyncio.wait_for(waiting, 5)
        assert without_epoch(body) == {"events": [{"seq": None, "event": "server_draining", "data": {"reconnect": True}}],
                                       "last_seq": 2, "recovered": True}
        again = await poller.request(after=2, timeout=30)  # a new poll meanwhile: elsewhere, or later
        assert again.status_code == 503 and again.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        await close_all(poller, ann, bob)


async def test_a_long_poller_stays_online_while_its_polls_keep_coming(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(longpoll, "LEASE_FLOOR", 0.1)  # lease = 2 x 0.2 s timeout = 0.4 s
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    poller = Poller(ann, after=2, timeout=0.2)
    presence = server.runtime.services.presence
    grace = server.settings.presence_grace
    try:
        await poller.poll()
        assert await presence.online(ann.game_code) == {ann.player_id}
        for _ in range(8):  # 1.6 s of polling: far past one lease plus the grace period
            await poller.poll()
        assert {p["player_name"]: p["online"] for p in (await bob.view())["players"]} == {
            "Ann": True, "Bob": False}
        await asyncio.sleep(0.4 + grace + 0.3)
        assert await presence.online(ann.game_code) == set()
    finally:
        await close_all(poller, ann, bob)


async def test_a_stream_and_a_poller_count_together_for_one_player(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(longpoll, "LEASE_FLOOR", 0.1)
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    presence = server.runtime.services.presence
    grace = server.settings.presence_grace
    poller = Poller(ann, after=2, timeout=0.6, client_id="phone")  # a lease of 1.2 s
    stream = await sse_for(ann, last_event_id=2)
    try:
        await stream.wait_event("player_connected")
        await poller.poll()
        await stream.close()  # the stream's grace would end at +0.5 s; the poll's lease holds
        await asyncio.sleep(grace + 0.2)
        assert await presence.online(ann.game_code) == {ann.player_id}
        await asyncio.sleep(1.2)
        assert await presence.online(ann.game_code) == set()
        await a_lapsed_poll_lease_changes_nothing_while_a_stream_is_open(ann, poller, presence)
    finally:
        await close_all(poller, ann, bob)


async def a_lapsed_poll_lease_changes_nothing_while_a_stream_is_open(
    ann: Player, poller: Poller, presence: Presence,
) -> None:
    stream = await sse_for(ann, last_event_id=2)
    try:
        await stream.wait_event("player_connected")
        await poller.poll()
        await asyncio.sleep(1.2 + 0.7)
        assert await presence.online(ann.game_code) == {ann.player_id}
    finally:
        await stream.close()


async def test_a_poller_that_goes_while_waiting_releases_its_feed_at_once(server: LiveServer) -> None:
    (ann,) = await seat_party(server, ["Ann"])
    bus = server.runtime.services.bus
    poller = Poller(ann, timeout=0.3)
    await poller.poll()  # the snapshot
    # Ann's own arrival (player_connected, then presence_update) may still be on its way: a
    # poll that waits would be answered by it. Poll until one comes back empty: all is quiet.
    while (await poller.poll())["events"]:
        pass
    poller.timeout = 30

    async def subscribed(count: int) -> None:
        while subscribers(bus, ann.game_code) != count:
            await asyncio.sleep(0.02)

    waiting = asyncio.create_task(poller.poll())
    await asyncio.wait_for(subscribed(1), 5)
    assert not waiting.done()
    waiting.cancel()
    await poller.client.aclose()  # the client is gone, 30 s before its poll would end
    await asyncio.wait_for(subscribed(0), 2)
    await ann.close()


async def test_answered_polls_leave_nothing_for_the_cycle_collector(server: LiveServer) -> None:
    """Each poll's feed, pump and answer are freed when it is answered, by reference counting:
    thousands of polls a second must not each leave a cycle for the collector to find."""
    import gc

    from arcane.transports import Pump

    ann, bob = await seat_party(server, ["Ann", "Bob"])

    def pumps() -> int:
        return sum(1 for thing in gc.get_objects() if isinstance(thing, Pump))

    gc.collect()
    gc.disable()
    try:
        before = pumps()
        for n in range(20):
            await bob.post("/chat", {"text": f"line {n}"})
            body = (await ann.get("/poll", params={"after": 0, "timeout": 0})).json()
            assert body["events"][-1]["data"]["text"] == f"line {n}"
        await asyncio.sleep(0.1)
        left = pumps() - before
    finally:
        gc.enable()
    assert left == 0, f"{left} answered polls' pumps still alive without the cycle collector"
    await close_all(ann, bob)
