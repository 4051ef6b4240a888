"""The PostgreSQL backend on a real server: the same actions and reads as SQLite's, several
writers (hosts) on one game, and the database going away and coming back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event
from arcane.game import actions
from arcane.game.records import Identity
from arcane.store import Store, Writes, connect
from tests.gameplay import Recorder, new_game, written
from tests.postgres import PostgresServer, postgres
from tests.sockets import socket_for
from tests.support import LiveServer, play_to_first_turn, seat_party, test_settings


async def open_pg(url: str, **kwargs: Any) -> tuple[Store, Recorder]:
    recorder = Recorder()
    store = connect(url, on_commit=recorder, **kwargs)
    await store.open()
    return store, recorder


async def seat(store: Store, code: str, player_id: str, name: str) -> Identity:
    async def work(tx: Writes) -> None:
        await tx.execute("INSERT INTO players (game_code, player_id, name, role, is_host, position, joined_at, seen_at)"
                         " VALUES (?, ?, ?, 'player', 0, 1, 0, 0)", (code, player_id, name))

    await written(store, work)
    return Identity(code, player_id)


async def test_actions_commit_log_and_read_back_as_on_sqlite() -> None:
    store, recorder = await open_pg(postgres().fresh_database())
    try:
        await new_game(store)
        aria = await seat(store, "ABC123", "aria", "Aria")
        lines = await asyncio.gather(*(store.run(actions.chats, (aria, f"line {n}", n)) for n in range(20)))
        assert [e.seq for e in lines] == list(range(2, 22)) and [e.cause for e in lines] == list(range(20))

        async def whisper(tx: Writes) -> Event:
            return await tx.log("ABC123", "whisper", {"text": "only Aria"}, to_player="aria")

        await written(store, whisper)
        found = await store.log_since("ABC123", 1, "aria")
        assert found is not None and found[:2] == (0, 22)
        assert [e.payload["text"] for e in found[2] or []] == [f"line {n}" for n in range(20)] + ["only Aria"]
        stranger = await store.log_since("ABC123", 20, "bran")
        assert stranger is not None and [e.seq for e in stranger[2] or []] == [21]
        assert [e.seq for e in recorder.published] == list(range(1, 23))
        with pytest.raises(ArcaneError) as refused:
            await store.run(actions.chats, (Identity("ABC123", "nobody"), "hello", None))
        assert refused.value.code is ErrorCode.NOT_IN_GAME
    finally:
        await store.close()


async def test_writers_on_several_hosts_share_one_gap_free_order_per_game() -> None:
    url = postgres().fresh_database()
    hosts = [await open_pg(url) for _ in range(3)]
    try:
        await new_game(hosts[0][0])
        await new_game(hosts[0][0], "XYZ789")
        people = [await seat(hosts[0][0], code, f"p{n}", f"P{n}") for n in range(3) for code in ("ABC123", "XYZ789")]

        async def talk(host: int, n: int) -> Event:
            store = hosts[host][0]
            return await store.run(actions.chats, (people[(host + n) % len(people)], f"{host}:{n}", None))

        said = await asyncio.gather(*(talk(host, n) for n in range(60) for host in range(3)))
        for code in ("ABC123", "XYZ789"):
            seqs = sorted(e.seq for e in said if e.game_code == code)
            assert seqs == list(range(2, 2 + len(seqs))), code  # no gap, no duplicate
            found = await hosts[1][0].log_since(code, 1, None)
            assert found is not None and [e.seq for e in found[2] or []] == seqs
        for _, recorder in hosts:  # each host publishes its own commits in seq order
            for code in ("ABC123", "XYZ789"):
                mine = [e.seq for e in recorder.published if e.game_code == code and e.name == "chat_message"]
                assert mine == sorted(mine)
    finally:
        for store, _ in hosts:
            await store.close()


async def test_an_unreachable_database_refuses_actions_and_service_resumes_by_itself() -> None:
    own = PostgresServer()
    own.start()
    try:
        store, _ = await open_pg(own.fresh_database())
        try:
            await new_game(store)
            aria = await seat(store, "ABC123", "aria", "Aria")
            await store.run(actions.chats, (aria, "before", None))
            own._run(str(own.bin / "pg_ctl"), "-D", str(own.data), "-m", "immediate", "-w", "stop")
            with pytest.raises(ArcaneError) as down:
                await asyncio.wait_for(store.run(actions.chats, (aria, "while down", None)), 30)
            assert down.value.code is ErrorCode.SERVICE_UNAVAILABLE and down.value.status == 503
            with pytest.raises(ArcaneError):
                await store.log_since("ABC123", 0, None)
            own.start_again()
            after = await asyncio.wait_for(store.run(actions.chats, (aria, "after", None)), 30)
            found = await store.log_since("ABC123", 0, None)
            assert found is not None
            assert [e.payload.get("text") for e in found[2] or []] == [None, "before", "after"]
            assert after.seq == 3
        finally:
            await store.close()
    finally:
        own.stop()


async def test_a_game_is_played_over_http_on_postgres(tmp_path: Path) -> None:
    server = LiveServer(test_settings(tmp_path, database=postgres().fresh_database()))
    await server.start()
    try:
        party = await seat_party(server, ["Aria", "Brom", "Cass"])
        await play_to_first_turn(party)
        assert (await party[1].post("/chat", {"text": "on postgres"})).status_code == 201
        view = await party[0].view()
        assert view["phase"] == "playing" and view["scenario"] is not None and view["whisper"]
        for player in party:
            await player.close()
    finally:
        await server.stop()
        server.close()


async def test_with_the_database_away_actions_get_503_on_http_and_sockets_and_the_host_stays_live(
        tmp_path: Path) -> None:
    own = PostgresServer()
    own.start()
    try:
        server = LiveServer(test_settings(tmp_path, database=own.fresh_database()))
        await server.start()
        try:
            ann, bram = await seat_party(server, ["Ann", "Bram"])
            socket = await socket_for(bram)
            own._run(str(own.bin / "pg_ctl"), "-D", str(own.data), "-m", "immediate", "-w", "stop")
            refused = await ann.post("/chat", {"text": "while away"})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            ack = await socket.call("chat_message", {"text": "while away"})
            assert ack["error"]["code"] == "SERVICE_UNAVAILABLE", ack
            assert (await ann.client.get("/healthz")).status_code == 503
            assert (await ann.client.get("/livez")).status_code == 200  # the balancer keeps the host
            own.start_again()
            assert (await ann.post("/chat", {"text": "back"})).status_code == 201
            await socket.wait_event("chat_message", text="back")
            assert not [d for e, d in socket.received if e == "chat_message" and d["text"] == "while away"]
            await socket.close()
            for player in (ann, bram):
                await player.close()
        finally:
            await server.stop()
            server.close()
    finally:
        own.stop()
