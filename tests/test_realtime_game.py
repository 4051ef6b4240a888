"""Four friends on Socket.IO: every event reaches every player, in order, and nothing leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from arcane.events import ROOM, player_audience
from tests.sockets import SocketClient, socket_for
from tests.support import LiveServer, Player, seat_party, serving
from tests.logs import events_after


@pytest.fixture
async def quick_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with serving(tmp_path, turns_per_game=3, questions_per_player=2) as live:
        yield live


def logged(received: list[tuple[str, Any]], after: int) -> list[tuple[int, str, dict[str, Any]]]:
    return [(d["seq"], e, d) for e, d in received
            if isinstance(d, dict) and "seq" in d and e != "reconnect_sync" and d["seq"] > after]


async def play_game(server: LiveServer, party: list[Player], sockets: list[SocketClient]) -> None:
    """Host starts over HTTP, everyone answers, then every choice and some chat over Socket.IO."""
    assert (await party[0].post("/start")).status_code == 200
    for player in party:
        await player.answer_all()
    for turn in range(1, 4):
        for client in sockets:
            await client.wait_event("new_scenario", turn_number=turn)
        ack = await sockets[0].call("chat_message", {"text": f"turn {turn}: trust me"})
        assert ack["ok"] is True and isinstance(ack["seq"], int)
        for client in sockets:
            scenario = next(d for e, d in client.received if e == "new_scenario" and d["turn_number"] == turn)
            ack = await client.call("make_choice", {"option_id": scenario["options"][0]["id"]})
            assert ack["ok"] is True, ack
    for client in sockets:
        await client.wait_event("game_over")


async def test_four_players_on_socketio_receive_exactly_their_events_in_order(quick_server: LiveServer) -> None:
    server = quick_server
    party = await seat_party(server, ["Ann", "Bram", "Cyd", "Dara"])
    other_party = await seat_party(server, ["Eve", "Finn"])
    transports = [["websocket"], ["websocket"], ["websocket"], ["polling"]]
    sockets = [await socket_for(p, transports=t) for p, t in zip(party, transports)]
    others = [await socket_for(p) for p in other_party]
    joined_at = {c: c.join_ack["seq"] for c in sockets + others}
    assert all(c.received[0][0] == "reconnect_sync" for c in sockets + others)

    await asyncio.gather(play_game(server, party, sockets), other_party[0].post("/chat", {"text": "elsewhere"}))

    store = server.runtime.services.store
    for player, client in zip(party, sockets):
        expected = await events_after(store, player.game_code, joined_at[client], player.player_id)
        got = logged(client.received, joined_at[client])
        assert [(s, e) for s, e, _ in got] == [(e.seq, e.name) for e in expected]
        assert [d for _, _, d in got] == [e.data() for e in expected]
        seqs = [s for s, _, _ in got]
        assert seqs == sorted(set(seqs))
        assert {e.audience for e in expected} <= {ROOM, player_audience(player.player_id)}
        whispers = [d for _, e, d in got if e == "whisper"]
        assert len(whispers) == 3
        names = [e for _, e, _ in got]
        for name in ("game_started", "class_assigned", "player_ready", "new_scenario",
                     "player_chose", "turn_resolution", "chat_message", "game_over"):
            assert name in names, name

    every_private = [e for e in await events_after(store, party[0].game_code, 0, None)]
    assert all(e.audience == ROOM for e in every_private)
    game_one_ids = {p.player_id for p in party}
    for player, client in zip(other_party, others):
        got = logged(client.received, joined_at[client])
        expected = await events_after(store, player.game_code, joined_at[client], player.player_id)
        assert [(s, e) for s, e, _ in got] == [(e.seq, e.name) for e in expected]
        assert not any(d.get("player_id") in game_one_ids for _, _, d in got)
        assert [d["text"] for _, e, d in got if e == "chat_message"] == ["elsewhere"]

    for c in sockets + others:
        await c.close()
    for p in party + other_party:
        await p.close()


async def test_a_spectator_on_socketio_sees_the_room_but_no_whisper(quick_server: LiveServer) -> None:
    party = await seat_party(quick_server, ["Ann", "Bram"])
    watcher = await Player.watch(quick_server, party[0].game_code, "Wren")
    eye = await socket_for(watcher)
    sockets = [await socket_for(p) for p in party]
    await play_game(quick_server, party, sockets)
    await eye.wait_event("game_over")
    names = eye.names()
    assert "new_scenario" in names and "turn_resolution" in names
    assert "whisper" not in names and "class_assigned" not in names
    refused = await eye.call("make_choice", {"option_id": "a"})
    assert refused["error"]["code"] == "NOT_IN_GAME"
    for c in [eye, *sockets]:
        await c.close()
    for p in [watcher, *party]:
        await p.close()


async def test_a_polling_socket_catches_up_on_more_events_than_one_answer_of_python_engineio_held(quick_server: LiveServer) -> None:
    """A catch-up of 40 events reaches an Engine.IO polling client whole, in one or more answers.

    python-engineio's client reads at most 16 packets per polling answer unless raised, as
    tests/support.py does and docs/realtime.md tells Python integrators to.
    """
    ann, bram = await seat_party(quick_server, ["Ann", "Bram"])
    for n in range(40):  # two speakers: each stays inside its burst of 30 actions
        assert (await (ann, bram)[n % 2].post("/chat", {"text": f"line {n}"})).status_code == 201
    late = await socket_for(bram, transports=["polling"], last_seq=0)
    logged = await events_after(quick_server.runtime.services.store, bram.game_code, 0, bram.player_id)
    expected = [(e.seq, e.name) for e in logged]
    assert late.join_ack["recovered"] is True
    await late.wait_for(lambda _: late.logged() == expected)
    assert sum(1 for _, e in late.logged() if e == "chat_message") == 40
    assert late.sio.connected, "the catch-up did not cost the connection"
    await late.close()
    for p in (ann, bram):
        await p.close()
