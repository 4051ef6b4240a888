"""A seat's credentials and cursors at the edges: cursors out of range, seats that are gone,
tokens that expire."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import socketio

from arcane.store import MIGRATIONS
from tests.cluster import cluster, on
from tests.logs import subscribers
from tests.rawws import RawSocketIO
from tests.sockets import SocketClient, socket_for
from tests.streams import Poller, SseStream, sse_for
from tests.support import LiveServer, Player, http_client, seat_party, serving

# Past what a seq (an SQLite INTEGER) can be, and a negative one.
BAD_CURSORS = (2**63, 2**64, 10**30, -1)


# -- cursors out of range ---------------------------------------------------------------------

async def test_a_poll_after_a_cursor_out_of_range_is_a_validation_error(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    try:
        for after in BAD_CURSORS:
            response = await ann.get("/poll", params={"after": str(after), "timeout": "0"})
            assert response.status_code == 400, (after, response.text)
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        response = await ann.get("/poll", params={"after": str(2**63 - 1), "timeout": "0"})
        assert response.status_code == 200 and response.json()["recovered"] is False  # the last one that is valid
    finally:
        await ann.close()
        await bob.close()


async def test_joining_a_room_from_a_cursor_out_of_range_is_a_validation_error(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    # A hand-made client: python-socketio's own (orjson) cannot even encode 2**64.
    sock = await RawSocketIO.open(server.port, ann.token)
    try:
        for last_seq in BAD_CURSORS:
            ack, _ = await sock.ack(await sock.call("join_game_room", {"game_code": ann.game_code,
                                                                       "last_seq": last_seq}))
            assert ack.get("error", {}).get("code") == "VALIDATION_ERROR", (last_seq, ack)
        ack, _ = await sock.ack(await sock.call("join_game_room", {"game_code": ann.game_code,
                                                                   "last_seq": 2**63 - 1}))
        assert ack["ok"] is True and ack["recovered"] is False
    finally:
        await sock.close()
        await ann.close()
        await bob.close()


async def test_a_stream_from_a_cursor_out_of_range_gets_a_snapshot(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    try:
        for cursor in BAD_CURSORS:
            for where in ("header", "query"):
                stream = SseStream(server, ann.game_code, token=ann.token,
                                   last_event_id=cursor if where == "header" else None,
                                   params={"last_event_id": str(cursor)} if where == "query" else None)
                try:
                    assert (await stream.open()).status_code == 200
                    sync = await stream.wait_event("reconnect_sync")
                    assert sync.data["recovered"] is False and sync.id == str(sync.data["seq"]), (cursor, where)
                finally:
                    await stream.close()
    finally:
        await ann.close()
        await bob.close()


# -- a seat that is gone --------------------------------------------------------------------

async def barrier(sock: SocketClient) -> None:
    """Everything already published to this socket has reached it: a ping's answer comes after."""
    assert (await sock.call("ping"))["ok"] is True


def chats(received: list[tuple[str, Any]]) -> list[str]:
    return [data["text"] for name, data in received if name == "chat_message"]


def typists(received: list[tuple[str, Any]]) -> list[str]:
    return [data["player_id"] for name, data in received if name == "player_typing"]


async def wait_seat_closed(sock: SocketClient) -> None:
    await sock.wait_event("seat_closed")
    notice = await sock.wait_event("error", code="NOT_IN_GAME")
    assert notice["game_code"]


async def refused_everywhere(server: Any, seat: Player, code: str = "NOT_IN_GAME") -> None:
    """The seat's token, on HTTP, SSE, poll and a socket's join, and its cookie, are refused."""
    status = 403 if code == "NOT_IN_GAME" else 401
    for response in (await seat.get(), await seat.get("/poll", params={"timeout": "0"}),
                     await seat.post("/chat", {"text": "still here?"})):
        assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    stream = SseStream(seat.server, seat.game_code, token=seat.token)
    try:
        response = await stream.open()
        assert response.status_code == status and response.json()["error"]["code"] == code
    finally:
        await stream.close()
    await refused_at_connect(seat, code)
    if not seat.client.cookies:
        return  # a seat handed to another process (tests.cluster.on) has its token only
    cookie_only = http_client(seat.server.url, cookies=seat.client.cookies)
    try:
        response = await cookie_only.get(f"/api/games/{seat.game_code}")
        assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    finally:
        await cookie_only.aclose()


async def refused_at_connect(seat: Player, code: str) -> None:
    sock = SocketClient(seat.server)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sock.connect(token=seat.token)
    assert sock.connect_error["data"]["code"] == code, sock.connect_error


async def test_a_player_who_leaves_the_lobby_hears_nothing_more_on_any_transport(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    ann_ws, bob_ws = await socket_for(ann), await socket_for(bob)
    bob_sse = await sse_for(bob)
    await bob_sse.wait_event("reconnect_sync")
    cursor = (await bob.view())["seq"]
    bus = server.runtime.services.bus
    listening = subscribers(bus, bob.game_code)
    bob_poll = asyncio.create_task(Poller(bob, after=cursor, timeout=30).poll())

    async def poll_waiting() -> None:
        while subscribers(bus, bob.game_code) == listening:
            assert not bob_poll.done(), bob_poll.result()
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll_waiting(), 10)  # the poll waits in the server: then Bob leaves
        assert (await bob.post("/leave")).status_code == 200
        assert (await ann.post("/chat", {"text": "is Bob gone?"})).status_code == 201
        await ann_ws.wait_event("chat_message")
        await barrier(bob_ws)
        assert chats(bob_ws.received) == []

        await wait_seat_closed(bob_ws)
        await asyncio.wait_for(bob_sse.ended.wait(), 10)  # the stream ends with the seat
        assert bob_sse.events[-1].event == "seat_closed"
        assert chats([(e.event, e.data) for e in bob_sse.events]) == []
        waited = await asyncio.wait_for(bob_poll, 10)  # the waiting poll answers at once
        assert [item["event"] for item in waited["events"]] == ["player_left", "seat_closed"]

        ack = await bob_ws.call("typing", {"is_typing": True})
        assert ack["error"]["code"] == "NOT_IN_GAME"
        await barrier(ann_ws)
        assert bob.player_id not in typists(ann_ws.received)
        response = await bob.post("/typing", {"is_typing": True})
        assert response.status_code == 403 and response.json()["error"]["code"] == "NOT_IN_GAME"
        assert (await bob_ws.join(bob.game_code))["error"]["code"] == "NOT_IN_GAME"
        await refused_everywhere(server, bob)
    finally:
        bob_poll.cancel()
        await asyncio.gather(bob_poll, return_exceptions=True)
        for closable in (ann_ws, bob_ws, bob_sse, ann, bob):
            await closable.close()


async def test_a_spectator_who_leaves_hears_nothing_more(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    sam = await Player.watch(server, ann.game_code, "Sam")
    ann_ws, sam_ws = await socket_for(ann), await socket_for(sam)
    sam_sse = await sse_for(sam)
    await sam_sse.wait_event("reconnect_sync")
    try:
        assert (await sam.post("/leave")).status_code == 200
        assert (await ann.post("/chat", {"text": "was someone watching?"})).status_code == 201
        await ann_ws.wait_event("chat_message")
        await barrier(sam_ws)
        assert chats(sam_ws.received) == []

        await wait_seat_closed(sam_ws)
        await asyncio.wait_for(sam_sse.ended.wait(), 10)
        assert sam_sse.events[-1].event == "seat_closed"
        assert chats([(e.event, e.data) for e in sam_sse.events]) == []
        assert "seat_closed" not in ann_ws.names(), "a seat's closing is its own business"
        ack = await sam_ws.call("typing", {"is_typing": True})
        assert ack["error"]["code"] == "NOT_IN_GAME"
        await refused_everywhere(server, sam)
    finally:
        for closable in (ann_ws, sam_ws, sam_sse, ann, bob, sam):
            await closable.close()


async def test_a_seat_that_leaves_on_one_process_is_ended_on_the_other(tmp_path: Path) -> None:
    async with cluster(tmp_path) as two:
        a, b = two.nodes
        ann, bob, cato = await seat_party(a, ["Ann", "Bob", "Cato"])  # type: ignore[arg-type]
        bob_b, cato_b = on(bob, b), on(cato, b)
        bob_ws, cato_ws = await socket_for(bob_b), await socket_for(cato_b)
        bob_sse = await sse_for(bob_b)
        await bob_sse.wait_event("reconnect_sync")
        try:
            assert (await bob.post("/leave")).status_code == 200  # on A
            assert (await ann.post("/chat", {"text": "Bob left"})).status_code == 201
            await cato_ws.wait_event("chat_message")  # on B, like Bob's socket and stream
            await barrier(bob_ws)
            assert chats(bob_ws.received) == []

            await wait_seat_closed(bob_ws)
            await asyncio.wait_for(bob_sse.ended.wait(), 10)
            assert chats([(e.event, e.data) for e in bob_sse.events]) == []
            ack = await bob_ws.call("typing", {"is_typing": True})
            assert ack["error"]["code"] == "NOT_IN_GAME"
            await barrier(cato_ws)
            assert bob.player_id not in typists(cato_ws.received)
            await refused_everywhere(b, bob_b)
        finally:
            for closable in (bob_ws, cato_ws, bob_sse, ann, bob, cato, bob_b, cato_b):
                await closable.close()


# -- token lifetime ---------------------------------------------------------------------------

TTL = 2.0  # ARCANE_TOKEN_TTL of the lifetime tests: seconds, so a test can outwait it


async def used_everywhere(seat: Player) -> None:
    """One use of the seat's token on each transport (each also renews the seat)."""
    assert (await seat.get()).status_code == 200
    assert (await seat.get("/poll", params={"timeout": "0"})).status_code == 200
    stream = await sse_for(seat)
    await stream.wait_event("reconnect_sync")
    await stream.close()
    sock = await socket_for(seat)
    await sock.close()


async def test_a_seat_left_unused_for_its_lifetime_is_refused_and_use_renews_it(tmp_path: Path) -> None:
    async with serving(tmp_path, token_ttl=TTL) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        cookie_bob = http_client(server.url, cookies=bob.client.cookies)
        try:
            await used_everywhere(bob)  # Bob's token is verified (and cached) on every transport
            loop = asyncio.get_running_loop()
            idle_from = loop.time()
            while loop.time() - idle_from < 1.5 * TTL:  # Ann keeps playing; Bob does not
                await used_everywhere(ann)
                await asyncio.sleep(TTL / 8)
            await refused_everywhere(server, bob, "AUTH_REQUIRED")
            response = await cookie_bob.get(f"/api/games/{bob.game_code}")
            assert response.status_code == 401 and response.json()["error"]["code"] == "AUTH_REQUIRED"
            await used_everywhere(ann)  # past TTL since she joined, but never idle that long
            assert (await ann.post("/chat", {"text": "still here"})).status_code == 201
        finally:
            await cookie_bob.aclose()
            await ann.close()
            await bob.close()


async def test_a_cookie_seat_is_renewed_by_use_and_expires_with_its_seat(tmp_path: Path) -> None:
    async with serving(tmp_path, token_ttl=TTL) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        # The browser's way: the cookie only, re-signed by each answer.
        browser = http_client(server.url, cookies=ann.client.cookies)
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            while loop.time() - start < 2.5 * TTL:  # past what whole-second rounding could excuse
                response = await browser.get(f"/api/games/{ann.game_code}")
                assert response.status_code == 200, response.text
                await asyncio.sleep(TTL / 8)
            await asyncio.sleep(TTL + 1.1)  # the cookie's own signature counts whole seconds
            response = await browser.get(f"/api/games/{ann.game_code}")
            assert response.status_code == 401 and response.json()["error"]["code"] == "AUTH_REQUIRED"
        finally:
            await browser.aclose()
            await ann.close()
            await bob.close()


async def test_a_database_from_before_seat_lifetimes_opens_with_every_seat_fresh(tmp_path: Path) -> None:
    path = tmp_path / "arcane.db"
    long_ago = time.time() - 90 * 86_400
    with closing(sqlite3.connect(path)) as db:
        for script in MIGRATIONS[:2]:  # the schema before seats had a last use
            db.executescript(script)
        db.execute("INSERT INTO games (code, phase, max_players, party_trust, npcs, created_at)"
                   " VALUES ('OLDONE', 'lobby', 4, 50, '[]', ?)", (long_ago,))
        db.execute("INSERT INTO players (game_code, player_id, name, role, is_host, position, joined_at)"
                   " VALUES ('OLDONE', 'a1b2c3d4e5f6', 'Ann', 'player', 1, 1, ?)", (long_ago,))
        db.execute("PRAGMA user_version = 2")
        db.commit()
    async with serving(tmp_path, database=path) as server:  # this SQLite file, whatever the suite runs on
        token = server.runtime.services.tokens.issue("OLDONE", "a1b2c3d4e5f6")
        async with http_client(server.url, headers={"Authorization": f"Bearer {token}"}) as ann:
            response = await ann.get("/api/games/OLDONE")
            assert response.status_code == 200, response.text
        row = await server.runtime.services.store.fetchone(
            "SELECT seen_at FROM players WHERE player_id = 'a1b2c3d4e5f6'")
        assert time.time() - row[0] < 3600, "an old seat's lifetime starts at the upgrade"
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
