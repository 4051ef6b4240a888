"""Server-Sent Events: the game's events as an EventSource sees them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from arcane.fallback import sse

from tests.streams import SseFollower, SseStream, play_scripted_game, sse_for, visible_log
from tests.support import LiveServer, Player, play_to_first_turn, seat_party, serving
from tests.logs import subscribers


async def close_all(*things: Player | SseStream) -> None:
    for thing in things:
        await thing.close()


async def test_a_stream_without_cursor_starts_with_a_retry_hint_and_a_snapshot(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    stream = await sse_for(ann)
    try:
        sync = await stream.wait_event("reconnect_sync")
        assert stream.response is not None
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-cache"
        assert stream.response.headers["x-accel-buffering"] == "no"
        assert stream.parser.retry == server.settings.sse_retry_ms
        assert stream.events[0] is sync
        assert sync.id == "2" and sync.data["seq"] == 2
        assert sync.data["recovered"] is False
        assert sync.data["you"]["player_id"] == ann.player_id
        assert [p["player_name"] for p in sync.data["players"]] == ["Ann", "Bob"]
    finally:
        await close_all(stream, ann, bob)


async def test_a_stream_replays_from_last_event_id_then_goes_live(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    stream = await sse_for(ann, last_event_id=0)
    try:
        await stream.wait_for(lambda: len(stream.logged()) == 2)
        response = await bob.post("/chat", {"text": "I see a light"})
        assert response.status_code == 201
        chat = await stream.wait_event("chat_message")
        assert stream.logged() == [(1, "player_joined"), (2, "player_joined"), (3, "chat_message")]
        assert [e.id for e in stream.events if e.seq is not None] == ["1", "2", "3"]
        assert chat.data["text"] == "I see a light" and chat.data["seq"] == 3
        assert isinstance(chat.data["timestamp"], float)
        assert not any(e.event == "reconnect_sync" for e in stream.events)
    finally:
        await close_all(stream, ann, bob)


async def test_the_last_event_id_header_wins_over_the_query_parameter(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    await bob.post("/chat", {"text": "one"})
    # An EventSource keeps its URL on reconnect but sends its newest id in the header.
    by_query = await sse_for(ann, params={"last_event_id": "1"})
    both = await sse_for(ann, params={"last_event_id": "0"}, last_event_id=2)
    try:
        await by_query.wait_event("chat_message")
        await both.wait_event("chat_message")
        assert by_query.logged() == [(2, "player_joined"), (3, "chat_message")]
        assert both.logged() == [(3, "chat_message")]
    finally:
        await close_all(by_query, both, ann, bob)


async def test_a_cursor_that_cannot_be_honoured_gets_a_snapshot_instead(tmp_path: Path) -> None:
    async with serving(tmp_path, log_retention=2) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        for n in range(3):
            await bob.post("/chat", {"text": f"line {n}"})
        # seq 5 is current; the log keeps only 4 and 5, so 1 is too old, 9 is unknown.
        for cursor in (1, 9, "not-a-seq"):
            stream = await sse_for(ann, last_event_id=cursor)
            try:
                first = await stream.wait_event("reconnect_sync")
                assert stream.events[0] is first
                assert first.id == "5" and first.data["seq"] == 5 and first.data["recovered"] is False
            finally:
                await stream.close()
        stream = await sse_for(ann, last_event_id=3)
        try:
            await stream.wait_for(lambda: len(stream.logged()) == 2)
            assert stream.logged() == [(4, "chat_message"), (5, "chat_message")]
        finally:
            await close_all(stream, ann, bob)


async def test_streams_take_the_same_credentials_and_refusals_as_http(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    other = await Player.create(server, "Cleo")
    checks = [
        (SseStream(server, ann.game_code), 401, "AUTH_REQUIRED"),
        (SseStream(server, ann.game_code, token="forged.token"), 401, "AUTH_REQUIRED"),
        (SseStream(server, ann.game_code, token=other.token), 403, "NOT_IN_GAME"),
        (SseStream(server, "ZZZZZZ", token=ann.token), 403, "NOT_IN_GAME"),  # as for a game that exists
        (SseStream(server, "bad", token=ann.token), 404, "INVALID_GAME"),
    ]
    try:
        for stream, status, code in checks:
            try:
                response = await stream.open()
                assert response.status_code == status, (code, response.text)
                assert response.json()["error"]["code"] == code
            finally:
                await stream.close()
        # EventSource cannot set headers: ?token= works, and so does the session cookie.
        by_query = SseStream(server, ann.game_code, token=ann.token, bearer=False)
        by_cookie = SseStream(server, ann.game_code, cookies=bob.client.cookies)
        try:
            for stream, who in ((by_query, ann), (by_cookie, bob)):
                assert (await stream.open()).status_code == 200
                sync = await stream.wait_event("reconnect_sync")
                assert sync.data["you"]["player_id"] == who.player_id
        finally:
            await close_all(by_query, by_cookie)
    finally:
        await close_all(ann, bob, other)


async def test_whispers_reach_only_their_player_and_spectators_see_room_events(server: LiveServer) -> None:
    party = await seat_party(server, ["Ann", "Bob"])
    ghost = await Player.watch(server, party[0].game_code, "Ghost")
    streams = [await sse_for(p, last_event_id=0) for p in (*party, ghost)]
    try:
        await play_to_first_turn(party)
        for stream in streams:
            await stream.wait_event("new_scenario")
        ann, bob, watcher = streams
        await ann.wait_event("whisper")
        await bob.wait_event("whisper")
        assert ann.logged() == await visible_log(server, party[0])
        assert bob.logged() == await visible_log(server, party[1])
        assert [e.event for e in ann.events].count("class_assigned") == 1
        whispers_to = [{e.seq for e in stream.events if e.event == "whisper"} for stream in (ann, bob)]
        assert len(whispers_to[0]) == len(whispers_to[1]) == 1 and not whispers_to[0] & whispers_to[1]
        assert not {"whisper", "class_assigned"} & {e.event for e in watcher.events}
        assert watcher.logged() == [(s, n) for s, n in ann.logged() if n not in {"whisper", "class_assigned"}]
    finally:
        await close_all(*streams, *party, ghost)


async def test_ephemeral_events_arrive_without_an_id(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    stream = await sse_for(ann, last_event_id=2)
    try:
        await stream.wait_event("presence_update")
        response = await bob.post("/typing", {"is_typing": True})
        assert response.status_code == 200
        typing = await stream.wait_event("player_typing")
        assert typing.id is None and "seq" not in typing.data
        assert typing.data == {"player_id": bob.player_id, "player_name": "Bob", "is_typing": True}
        assert all(e.id is None for e in stream.events if e.event in {"presence_update", "player_connected"})
        # An event without id leaves the browser's Last-Event-ID on the last logged event.
        assert stream.parser.last_event_id == ""
    finally:
        await close_all(stream, ann, bob)


async def test_the_stream_outlives_the_response_timeout_with_heartbeats(tmp_path: Path) -> None:
    async with serving(tmp_path, sse_heartbeat=0.1) as server:
        # Quart ends a streamed body after RESPONSE_TIMEOUT (60 s) unless the response opts out.
        server.app.quart.config["RESPONSE_TIMEOUT"] = 0.5
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        stream = await sse_for(ann, last_event_id=2)
        try:
            await asyncio.sleep(1.0)
            assert not stream.ended.is_set()
            assert stream.heartbeats >= 3
            await bob.post("/chat", {"text": "still there?"})
            chat = await stream.wait_event("chat_message")
            assert chat.id == "3"
        finally:
            await close_all(stream, ann, bob)


async def test_two_hundred_streams_leave_no_subscriber_behind(tmp_path: Path) -> None:
    # One seat holding 200 streams is past the default cap (tests/test_hostile_limits.py).
    async with serving(tmp_path, max_connections_per_identity=200) as server:
        await _two_hundred_streams(server)


async def _two_hundred_streams(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    bus = server.runtime.services.bus
    client = httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(10.0, read=None),
                               limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))
    url = f"/api/games/{ann.game_code}/events"

    async def visit(opened: asyncio.Event, release: asyncio.Event) -> None:
        async with client.stream("GET", url, headers={"Authorization": f"Bearer {ann.token}"}) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("event: reconnect_sync"):
                    opened.set()
                    await release.wait()
                    return

    release = asyncio.Event()
    opened = [asyncio.Event() for _ in range(200)]
    visits = [asyncio.create_task(visit(o, release)) for o in opened]
    try:
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 20)
        assert subscribers(bus, ann.game_code) == 200
        assert ann.player_id in await server.runtime.services.presence.online(ann.game_code)
        release.set()
        await asyncio.gather(*visits)
        for _ in range(200):
            if subscribers(bus) == 0:
                break
            await asyncio.sleep(0.02)
        assert subscribers(bus) == 0
        await asyncio.sleep(server.settings.presence_grace + 0.3)
        assert ann.player_id not in await server.runtime.services.presence.online(ann.game_code)
    finally:
        for task in visits:
            task.cancel()
        await asyncio.gather(*visits, return_exceptions=True)
        await client.aclose()
        await close_all(ann, bob)


async def test_a_player_whose_only_connection_is_a_stream_is_online_until_it_closes(
    server: LiveServer,
) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])

    async def online() -> dict[str, bool]:
        return {p["player_name"]: p["online"] for p in (await bob.view())["players"]}

    assert await online() == {"Ann": False, "Bob": False}
    watcher = await sse_for(bob, last_event_id=2)
    ann_stream = await sse_for(ann, last_event_id=2)
    try:
        await watcher.wait_for(lambda: any(
            e.event == "player_connected" and e.data["player_id"] == ann.player_id for e in watcher.events))
        assert (await online())["Ann"] is True
        await ann_stream.close()
        await watcher.wait_for(lambda: any(e.event == "player_disconnected" for e in watcher.events))
        gone = next(e for e in watcher.events if e.event == "player_disconnected")
        assert gone.data == {"player_id": ann.player_id, "player_name": "Ann"} and gone.id is None
        assert await online() == {"Ann": False, "Bob": True}
    finally:
        await close_all(watcher, ann_stream, ann, bob)


async def test_a_reload_within_the_grace_period_does_not_flap(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    watcher = await sse_for(bob, last_event_id=2)
    first = await sse_for(ann, last_event_id=2)
    try:
        await watcher.wait_for(lambda: any(
            e.event == "player_connected" and e.data["player_id"] == ann.player_id for e in watcher.events))
        await first.close()
        second = await sse_for(ann, last_event_id=2)
        await asyncio.sleep(server.settings.presence_grace + 0.3)
        assert not any(e.event == "player_disconnected" for e in watcher.events)
        await second.close()
    finally:
        await close_all(watcher, first, ann, bob)


async def test_a_reconnect_with_last_event_id_misses_nothing_across_a_restart(tmp_path: Path) -> None:
    async with serving(tmp_path, turns_per_game=2, questions_per_player=2) as server:
        party = await seat_party(server, ["Ann", "Bob"])
        ann = party[0]
        stream = await sse_for(ann, last_event_id=0)
        await party[1].post("/chat", {"text": "before"})
        await stream.wait_event("chat_message")
        seen = stream.events[:]
        last_id = stream.parser.last_event_id
        await stream.close()
        await party[0].post("/start")
        await server.restart()
        for player in party:
            await player.answer_all()
        resumed = await sse_for(ann, last_event_id=last_id)
        try:
            await resumed.wait_event("whisper")
            assert not any(e.event == "reconnect_sync" for e in resumed.events)
            received = [(e.seq, e.event) for e in seen + resumed.events if e.seq is not None]
            assert received == await visible_log(server, ann)
            assert len({seq for seq, _ in received}) == len(received)
        finally:
            await close_all(resumed, *party)


async def test_an_open_stream_ends_at_shutdown_and_resumes_after_the_restart(tmp_path: Path) -> None:
    async with serving(tmp_path, turns_per_game=2, questions_per_player=2) as server:
        party = await seat_party(server, ["Ann", "Bob", "Cleo"])
        follower = SseFollower(party[0], last_event_id=0)
        follower.start()
        try:
            await follower.wait_for(lambda: len(follower.logged()) == 3)
            await party[0].post("/start")
            await server.restart()
            await play_scripted_game_after_start(party)
            truth = await visible_log(server, party[0])
            await follower.wait_for(lambda: follower.logged() == truth, timeout=15)
            assert follower.connections >= 2
            assert not any(e.event == "reconnect_sync" for e in follower.events)
        finally:
            await follower.stop()
            await close_all(*party)


async def play_scripted_game_after_start(party: list[Player]) -> None:
    for player in party:
        await player.answer_all()
    while (view := await party[0].view())["phase"] == "playing":
        for player in party:
            response = await player.post("/choices", {"option_id": view["scenario"]["options"][0]["id"]})
            assert response.status_code == 200, response.text


async def test_shutdown_ends_every_open_stream(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    streams = [await sse_for(p) for p in (ann, bob, ann)]
    try:
        for stream in streams:
            await stream.wait_event("reconnect_sync")
        server.runtime.begin_shutdown()
        for stream in streams:
            await asyncio.wait_for(stream.ended.wait(), 5)
        assert subscribers(server.runtime.services.bus) == 0
    finally:
        await close_all(*streams, ann, bob)


async def test_a_stream_that_fails_once_begun_ends_with_an_error_frame(
        server: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    (ann,) = await seat_party(server, ["Ann"])

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the ink runs")

    monkeypatch.setattr(sse.Pump, "start", broken)
    stream = SseStream(server, ann.game_code, token=ann.token, last_event_id=0)
    try:
        assert (await stream.open()).status_code == 200  # too late for a status: a frame says it
        await asyncio.wait_for(stream.ended.wait(), 5)
        assert [(e.event, e.data["code"], e.id) for e in stream.events] == [("error", "INTERNAL_ERROR", None)]
        assert "the ink runs" in caplog.text
    finally:
        await close_all(stream, ann)
