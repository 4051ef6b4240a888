"""One game, every transport: the same events, in the same order, with the same seq.

`test_all_three_transports_see_the_same_game` also needs the Socket.IO transport
(arcane/realtime/, DESIGN.md "Socket.IO events"); the others need only fallback/.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import socketio

from tests.streams import Poller, SseStream, play_scripted_game, sse_for, visible_log
from tests.support import LiveServer, Player, seat_party, serving

GAME = {"turns_per_game": 2, "questions_per_player": 2}


class SocketObserver:
    """A python-socketio AsyncClient in the game's room, recording every event it is sent."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any = None) -> None:
        self.received.append((event, data))

    async def join(self, player: Player, *, last_seq: int) -> dict[str, Any]:
        await self.sio.connect(player.server.url, auth={"token": player.token},
                               transports=["websocket"], wait_timeout=10)
        ack: dict[str, Any] = await self.sio.call(
            "join_game_room", {"game_code": player.game_code, "last_seq": last_seq}, timeout=10)
        return ack

    def logged(self) -> list[tuple[int, str]]:
        return [(data["seq"], event) for event, data in self.received
                if event != "reconnect_sync" and isinstance(data, dict) and isinstance(data.get("seq"), int)]

    async def close(self) -> None:
        await self.sio.disconnect()


async def eventually(condition: Any, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_sse_and_long_poll_see_the_same_game(tmp_path: Path) -> None:
    async with serving(tmp_path, **GAME) as server:
        party = await seat_party(server, ["Ann", "Bob", "Cleo"])
        ann = party[0]
        stream = await sse_for(ann, last_event_id=0)
        poller = Poller(ann, after=0, timeout=5)
        poller.start()
        try:
            await play_scripted_game(party)
            truth = await visible_log(server, ann)
            assert truth[-1][1] == "game_over"
            await stream.wait_for(lambda: stream.logged() == truth)
            await poller.wait_for(lambda: poller.logged() == truth)
            assert Counter(name for _, name in truth)["whisper"] == GAME["turns_per_game"]
        finally:
            await poller.stop()
            await stream.close()
            for player in party:
                await player.close()


async def test_all_three_transports_see_the_same_game(tmp_path: Path) -> None:
    """Needs arcane/realtime: the same player on Socket.IO, SSE and long-poll at once."""
    async with serving(tmp_path, **GAME) as server:
        party = await seat_party(server, ["Ann", "Bob", "Cleo"])
        ann = party[0]
        socket = SocketObserver()
        stream = await sse_for(ann, last_event_id=0)
        poller = Poller(ann, after=0, timeout=5)
        poller.start()
        try:
            ack = await socket.join(ann, last_seq=0)
            assert ack.get("ok") is True and ack.get("recovered") is True, ack
            await play_scripted_game(party)
            truth = await visible_log(server, ann)
            await eventually(lambda: socket.logged() == truth)
            await stream.wait_for(lambda: stream.logged() == truth)
            await poller.wait_for(lambda: poller.logged() == truth)
            assert socket.logged() == stream.logged() == poller.logged()
        finally:
            await socket.close()
            await poller.stop()
            await stream.close()
            for player in party:
                await player.close()


async def stream_events(stream: SseStream) -> AsyncIterator[tuple[str, Any]]:
    seen = 0
    while True:
        await stream.wait_for(lambda: len(stream.events) > seen, timeout=15)
        event = stream.events[seen]
        seen += 1
        yield event.event, event.data


async def poll_events(poller: Poller) -> AsyncIterator[tuple[str, Any]]:
    while True:
        for item in (await poller.poll())["events"]:
            yield item["event"], item["data"]


async def play_from_events(player: Player, events: AsyncIterator[tuple[str, Any]], *,
                           start_at: int | None = None) -> Counter[str]:
    """A player who acts only on what their transport delivers, through the HTTP API."""
    seen: Counter[str] = Counter()
    async for name, data in events:
        seen[name] += 1
        if name == "player_joined" and data["player_count"] == start_at:
            response = await player.post("/start")
            assert response.status_code == 200, response.text
        elif name == "game_started":
            question = (await player.get("/interrogation")).json()["question"]
            while question is not None:
                response = await player.post("/interrogation", {"answer_id": question["answers"][0]["id"]})
                assert response.status_code == 200, response.text
                question = response.json()["question"]
        elif name == "new_scenario":
            response = await player.post("/choices", {"option_id": data["options"][0]["id"]})
            assert response.status_code == 200, response.text
        elif name == "game_over":
            return seen
    raise AssertionError("the transport ended before the game did")


async def test_a_game_played_by_one_player_on_sse_and_one_on_long_poll(server: LiveServer) -> None:
    ann = await Player.create(server, "Ann")
    stream = await sse_for(ann, last_event_id=0)
    bob = await Player.join(server, ann.game_code, "Bob")
    poller = Poller(bob, after=0, timeout=5)
    try:
        seen_by_ann, seen_by_bob = await asyncio.wait_for(asyncio.gather(
            play_from_events(ann, stream_events(stream), start_at=2),
            play_from_events(bob, poll_events(poller)),
        ), 30)
        turns = server.settings.turns_per_game
        for seen in (seen_by_ann, seen_by_bob):
            assert seen["class_assigned"] == 1 and seen["player_ready"] == 2
            assert seen["new_scenario"] == seen["whisper"] == seen["turn_resolution"] == turns
            assert seen["player_chose"] == 2 * turns and seen["game_over"] == 1
        view = await bob.view()
        assert view["phase"] == "finished" and view["finished_reason"] == "completed"
        assert stream.logged() == await visible_log(server, ann)
        assert poller.logged() == await visible_log(server, bob)
    finally:
        await poller.stop()
        await stream.close()
        await ann.close()
        await bob.close()
