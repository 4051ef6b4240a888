"""A hostile client against the limits: creation, reads, connections, slow readers, codes.

Each test tries the attack of issue 19 (points 9, 10 and 11) against a live server with
the default limits (tests/support.py raises the per-address ones for every other test,
since all test clients are 127.0.0.1: here they are put back).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest
import socketio

from arcane.config import Settings
from arcane.fallback import sse
from arcane.serving.h11 import ChunkWriter
from tests.cluster import cluster
from tests.logs import subscribers
from tests.rawws import RawSocketIO
from tests.sockets import SocketClient, socket_for
from tests.streams import Poller, SseParser, SseStream, visible_log
from tests.support import (ADDRESS_LIMITS_OFF, LiveServer, Player, http_client, needs_fast_paths, serving, sockets_gone,
                           test_settings)

DEFAULTS = {f.name: f.default for f in fields(Settings) if f.name in ADDRESS_LIMITS_OFF}
FLOOD = {"rate_limit_per_second": 1e6, "rate_limit_burst": 10**6}


def rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert int(response.headers["retry-after"]) >= 1


async def games_in(server: LiveServer) -> int:
    return int((await server.runtime.services.store.fetchone("SELECT COUNT(*) AS n FROM games"))["n"])


async def close_all(*things: Any) -> None:
    for thing in things:
        if isinstance(thing, httpx.AsyncClient):
            await thing.aclose()
        elif isinstance(thing, Poller):
            await thing.stop()
        else:
            await thing.close()


# -- 9. creation and reading -----------------------------------------------------------------


async def test_one_address_cannot_create_games_players_and_spectators_without_limit(tmp_path: Path) -> None:
    async with serving(tmp_path, **DEFAULTS) as server:
        burst = server.settings.create_burst
        client = http_client(server.url)
        host = await Player.create(server, "Ann")
        made = [await client.post(f"/api/games/{host.game_code}/players", json={"player_name": f"P{n}"})
                for n in range(2)]
        made += [await client.post(f"/api/games/{host.game_code}/spectators", json={"name": f"S{n}"})
                 for n in range(2)]
        made += [await client.post("/api/games", json={"player_name": f"G{n}"}) for n in range(burst - 5)]
        assert [r.status_code for r in made] == [201] * (burst - 1)
        games, members = await games_in(server), len((await host.view())["players"])
        for attempt in (client.post("/api/games", json={"player_name": "Flood"}),
                        client.post(f"/api/games/{host.game_code}/players", json={"player_name": "Flood"}),
                        client.post(f"/api/games/{host.game_code}/spectators", json={"name": "Flood"}),
                        client.post("/api/create_game", json={"player_name": "Flood"})):
            rate_limited(await attempt)
        assert await games_in(server) == games, "a refused creation changes nothing"
        assert len((await host.view())["players"]) == members
        await close_all(client, host)


async def test_the_address_is_the_one_a_trusted_proxy_names(tmp_path: Path) -> None:
    async with serving(tmp_path, **DEFAULTS | {"create_burst": 2, "trusted_proxies": ("127.0.0.1",)}) as server:
        client = http_client(server.url)

        async def create(forwarded_for: str) -> int:
            response = await client.post("/api/games", json={"player_name": "Ann"},
                                         headers={"X-Forwarded-For": forwarded_for})
            return response.status_code

        assert [await create("203.0.113.7") for _ in range(3)] == [201, 201, 429]
        assert [await create("203.0.113.8") for _ in range(3)] == [201, 201, 429]
        await client.aclose()
    (tmp_path / "untrusted").mkdir()
    async with serving(tmp_path / "untrusted", **DEFAULTS | {"create_burst": 2}) as server:
        client = http_client(server.url)
        codes = [(await client.post("/api/games", json={"player_name": "Ann"},
                                    headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code for n in range(3)]
        assert codes == [201, 201, 429], "an untrusted peer's X-Forwarded-For is not believed"
        await client.aclose()


async def test_a_game_takes_only_so_many_spectators(tmp_path: Path) -> None:
    async with serving(tmp_path, max_spectators=2) as server:
        host = await Player.create(server, "Ann")
        watchers = [await Player.watch(server, host.game_code, f"W{n}") for n in range(2)]
        response = await host.client.post(f"/api/games/{host.game_code}/spectators", json={"name": "W3"})
        assert response.status_code == 409 and response.json()["error"]["code"] == "GAME_FULL", response.text
        assert len([p for p in (await host.view())["players"]]) == 1
        assert (await Player.join(server, host.game_code, "Bob")).player_name == "Bob", "players still join"
        await close_all(host, *watchers)


async def test_views_and_polls_share_a_read_limit_per_identity(tmp_path: Path) -> None:
    async with serving(tmp_path, read_burst=6, read_rate_per_second=0.2) as server:
        ann = await Player.create(server, "Ann")
        bob = await Player.join(server, ann.game_code, "Bob")
        answers = [await ann.get() for _ in range(3)]
        answers += [await ann.get("/poll", params={"timeout": 0}) for _ in range(2)]
        answers.append(await ann.client.get("/api/game_state"))  # legacy, by the session cookie
        assert [r.status_code for r in answers] == [200] * 6
        for refused in (await ann.get(), await ann.get("/poll", params={"timeout": 0}),
                        await ann.client.get("/api/game_state"), await ann.get("/interrogation")):
            rate_limited(refused)
        assert (await bob.get()).status_code == 200, "another player's reads are their own"
        await close_all(ann, bob)


async def test_a_socket_shares_its_identitys_bucket_before_it_joins_a_room(tmp_path: Path) -> None:
    async with serving(tmp_path, rate_limit_burst=4, rate_limit_per_second=0.01) as server:
        ann = await Player.create(server, "Ann")
        cookie = "; ".join(f"{k}={v}" for k, v in ann.client.cookies.items())
        for by in ("token", "cookie"):
            tabs = [SocketClient(server) for _ in range(3)]
            for tab in tabs:  # (a fresh headers dict each: Engine.IO's client takes the cookie out of it)
                await (tab.connect(token=ann.token) if by == "token" else tab.connect(headers={"Cookie": cookie}))
            acks = [await tab.call("ping") for tab in tabs for _ in range(3)]
            allowed = [a for a in acks if a.get("ok")]
            assert 4 <= len(allowed) <= 5, (by, acks)  # one bucket: the burst, not 3 of them
            assert {a["error"]["code"] for a in acks if not a.get("ok")} == {"RATE_LIMITED"}
            await close_all(*tabs)
        await ann.close()


async def test_address_limits_are_shared_by_every_process_through_redis(tmp_path: Path) -> None:
    async with cluster(tmp_path, ARCANE_CREATE_BURST="4", ARCANE_CREATE_RATE_PER_MINUTE="0.6") as two:
        a, b = two.nodes
        clients = [httpx.AsyncClient(base_url=node.url, timeout=30) for node in (a, b)]
        try:
            codes = [(await clients[n % 2].post("/api/games", json={"player_name": f"A{n}"})).status_code
                     for n in range(8)]
            assert codes.count(201) == 4 and codes.count(429) == 4, codes
        finally:
            await close_all(*clients)


# -- 10. connections and slow readers --------------------------------------------------------


async def test_an_identity_past_its_connection_cap_is_refused_and_a_closed_one_frees_a_slot(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, **DEFAULTS) as server:
        cap = server.settings.max_connections_per_identity
        ann = await Player.create(server, "Ann")
        streams = [SseStream(server, ann.game_code, token=ann.token) for _ in range(20)]
        statuses = [(await stream.open()).status_code for stream in streams]
        assert statuses == [200] * cap + [429] * (20 - cap)
        rate_limited(streams[-1].response)  # type: ignore[arg-type]
        # Long-polls and sockets count against the same cap.
        rate_limited(await ann.get("/poll", params={"timeout": 0}))
        tab = SocketClient(server)
        await tab.connect(token=ann.token)
        assert (await tab.join(ann.game_code))["error"]["code"] == "RATE_LIMITED"
        await streams[0].close()
        again = SseStream(server, ann.game_code, token=ann.token)
        for _ in range(100):  # the server hears the close, then the slot is free
            if (await again.open()).status_code == 200:
                break
            await again.close()
            again = SseStream(server, ann.game_code, token=ann.token)
            await asyncio.sleep(0.05)
        assert again.response is not None and again.response.status_code == 200
        await close_all(again, tab, *streams[1:], ann)


async def test_an_address_past_its_connection_cap_is_refused_on_every_transport(tmp_path: Path) -> None:
    async with serving(tmp_path, max_connections_per_address=3) as server:
        host = await Player.create(server, "Ann")
        others = [await Player.join(server, host.game_code, name) for name in ("Bob", "Cy", "Di")]
        streams = [SseStream(server, host.game_code, token=p.token) for p in (host, *others)]
        assert [(await s.open()).status_code for s in streams] == [200, 200, 200, 429]
        rate_limited(await others[2].get("/poll", params={"timeout": 0}))
        tab = SocketClient(server)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await tab.connect(token=others[2].token)
        assert tab.connect_error["data"]["code"] == "RATE_LIMITED", tab.connect_error
        await close_all(*streams, host, *others)


async def test_a_long_poll_catch_up_comes_in_bounded_pieces_without_a_gap(tmp_path: Path) -> None:
    async with serving(tmp_path, stream_buffer=5, **FLOOD) as server:
        ann = await Player.create(server, "Ann")
        for n in range(17):
            assert (await ann.post("/chat", {"text": f"line {n}"})).status_code == 201
        poller = Poller(ann, after=0, timeout=0)
        while poller.after is None or poller.after < (await ann.view())["seq"]:
            answer = await poller.poll()
            assert 1 <= len(answer["events"]) <= 5 and answer["recovered"] is True, answer
        assert poller.logged() == await visible_log(server, ann)
        await close_all(poller, ann)


@asynccontextmanager
async def tight_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[LiveServer]:
    """A server whose accepted sockets get a small kernel send buffer (inherited from the
    listening socket), so a client that stops reading backs up into the server's own buffers."""
    server = LiveServer(test_settings(tmp_path, **overrides))
    server._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        server.close()


class RawSse:
    """An EventSource over a bare socket with a small receive buffer, read only when told."""

    def __init__(self, server: LiveServer, code: str, token: str, last_event_id: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.setblocking(False)
        self.http = h11.Connection(h11.CLIENT)
        self.parser = SseParser()
        self.events: list[Any] = []
        self._text = ""
        request = h11.Request(method="GET", target=f"/api/games/{code}/events?token={token}",
                              headers=[("host", "127.0.0.1"), ("last-event-id", str(last_event_id))])
        self.sock.sendall(self.http.send(request) or b"")

    async def read_until(self, condition: Any) -> bool:
        """Read until `condition()` or the connection ends; whether the condition held."""
        loop = asyncio.get_running_loop()
        while not condition():
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), 10)
            except (ConnectionError, OSError):
                data = b""
            self.http.receive_data(data)
            try:
                while (event := self.http.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                    if isinstance(event, h11.Data):
                        self._text += bytes(event.data).decode()
                    elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                        data = b""
                        break
            except h11.RemoteProtocolError:  # cut in the middle of a chunk
                data = b""
            self._parse()
            if not data:
                return condition()
        return True

    def _parse(self) -> None:
        *lines, self._text = self._text.split("\n")
        for line in lines:
            event = self.parser.line(line)
            if event is not None:
                self.events.append(event)

    def close(self) -> None:
        self.sock.close()


async def resumes_after_the_cut(server: LiveServer, reader: RawSse, ann: Player, bob: Player) -> None:
    """Bob's stream was cut: a new one from his last id replays, with no gap, what he missed."""
    await reader.read_until(lambda: False)  # whatever reached Bob before the cut
    reader.close()
    last = int(reader.parser.last_event_id)
    truth = [entry for entry in await visible_log(server, bob) if entry[0] > last]
    resumed = SseStream(server, ann.game_code, token=bob.token, last_event_id=last)
    assert (await resumed.open()).status_code == 200
    await resumed.wait_for(lambda: len(resumed.logged()) >= len(truth), 20)
    assert resumed.events[0].event != "reconnect_sync", "a replay from the cursor, not a snapshot"
    assert resumed.logged() == truth
    await close_all(resumed, ann, bob)


@needs_fast_paths('sse_direct')  # the byte bound drops the connection through hypercorn's transport
async def test_an_sse_client_that_never_reads_is_cut_and_resumes_with_no_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = 32 * 1024
    writers: list[ChunkWriter] = []
    over = ChunkWriter.over

    def spy(send: Any) -> Any:  # records the stream's writer, to read its unsent bytes
        writer = over(send)
        if isinstance(writer, ChunkWriter):
            writers.append(writer)
        return writer

    monkeypatch.setattr(sse.ChunkWriter, "over", staticmethod(spy))
    async with tight_server(tmp_path, stream_buffer=100_000, stream_buffer_bytes=limit, **FLOOD) as server:
        ann = await Player.create(server, "Ann")
        bob = await Player.join(server, ann.game_code, "Bob")
        reader = RawSse(server, ann.game_code, bob.token, last_event_id=0)
        assert await reader.read_until(lambda: any(e.event == "player_joined" and e.id == "2" for e in reader.events))
        assert len(writers) == 1 and len(server.runtime.services.followers) == 1
        highest = 0
        line = "a whisper shared, or a lie: " + "x" * 400
        for n in range(2000):  # up to 1 MB of chat that Bob never reads: cut long before
            assert (await ann.post("/chat", {"text": f"{n} {line}"})).status_code == 201
            highest = max(highest, writers[0].buffered())
            if not server.runtime.services.followers:
                break
        assert not server.runtime.services.followers, "the stream of a client that never reads is cut"
        assert highest <= limit
        await resumes_after_the_cut(server, reader, ann, bob)


@needs_fast_paths('sse_direct')  # without it a stuck write holds the stream (docs/security.md)
async def test_an_sse_client_that_falls_behind_by_events_is_cut_and_resumes_from_its_cursor(
        tmp_path: Path) -> None:
    # The rule a socket is cut by: a client that keeps up is never cut, however many events
    # one commit brings; one whose connection backs up has at most 5 events waiting for it.
    async with tight_server(tmp_path, stream_buffer=5, **FLOOD) as server:
        ann = await Player.create(server, "Ann")
        bob = await Player.join(server, ann.game_code, "Bob")
        reader = RawSse(server, ann.game_code, bob.token, last_event_id=0)
        assert await reader.read_until(lambda: any(e.event == "player_joined" and e.id == "2" for e in reader.events))
        line = "a whisper shared, or a lie: " + "x" * 400
        for n in range(2000):  # Bob reads none of it: his connection backs up, then events wait
            assert (await ann.post("/chat", {"text": f"{n} {line}"})).status_code == 201
            if not server.runtime.services.followers:
                break
        assert not server.runtime.services.followers, "the stream of a client that falls behind is cut"
        assert subscribers(server.runtime.services.bus, ann.game_code) == 0
        await resumes_after_the_cut(server, reader, ann, bob)


@needs_fast_paths('websocket_direct')  # the byte bound drops the connection through hypercorn's transport
async def test_a_websocket_that_never_reads_is_cut_by_the_same_byte_bound(tmp_path: Path) -> None:
    async with tight_server(tmp_path, stream_buffer=100_000, stream_buffer_bytes=16 * 1024, **FLOOD) as server:
        ann = await Player.create(server, "Ann")
        bram = await Player.join(server, ann.game_code, "Bram")
        raw = await RawSocketIO.open(server.port, bram.token)
        ack_id = await raw.call("join_game_room", {"game_code": bram.game_code})
        assert (await raw.message()).startswith(f"43{ack_id}[")
        line = "x" * 450
        for n in range(3000):  # far past the kernel's buffers, but cut by bytes long before
            assert (await ann.post("/chat", {"text": f"{n} {line}"})).status_code == 201
            if not server.runtime.realtime.connections:
                break
        assert await sockets_gone(server), "a websocket that reads nothing is cut by bytes, not only by events"
        await raw.close()
        back = await socket_for(bram, last_seq=2)
        assert back.join_ack["recovered"] is True
        await back.wait_for(lambda got: sum(1 for e, _ in got if e == "chat_message") == n + 1, 20)
        await close_all(back, ann, bram)


# -- 11. game codes cannot be enumerated -------------------------------------------------------


async def test_a_stranger_gets_the_same_answer_for_a_game_that_exists_and_one_that_does_not(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as server:
        ann = await Player.create(server, "Ann")
        zed = await Player.create(server, "Zed")  # seated elsewhere: a cookie and a token for another game
        unknown = "ZZZZZ9" if ann.game_code != "ZZZZZ9" else "ZZZZZ8"
        anonymous = http_client(server.url)
        cookie_only = http_client(server.url, cookies=zed.client.cookies)
        for client, headers in ((anonymous, {}), (cookie_only, {}), (anonymous, {"Authorization": f"Bearer {zed.token}"})):
            for path, method in (("", "GET"), ("/interrogation", "GET"), ("/poll?timeout=0", "GET"),
                                 ("/events", "GET"), ("/chat", "POST"), ("/start", "POST")):
                answers = [await client.request(method, f"/api/games/{code}{path}", headers=headers,
                                                json={"text": "hi"} if method == "POST" else None)
                           for code in (ann.game_code, unknown)]
                assert answers[0].status_code == answers[1].status_code in (401, 403), (path, answers[0].text)
                assert answers[0].json() == answers[1].json(), path
        tab = SocketClient(server)
        await tab.connect(token=zed.token)
        assert await tab.join(ann.game_code) == await tab.join(unknown)
        await close_all(tab, anonymous, cookie_only, ann, zed)


async def test_failed_lookups_are_limited_per_address(tmp_path: Path) -> None:
    async with serving(tmp_path, **DEFAULTS | {"lookup_failures_per_minute": 4.0}) as server:
        ann = await Player.create(server, "Ann")
        stranger = http_client(server.url)
        codes = [(await stranger.get(f"/api/games/{code}")).status_code for code in ("AAAAA1", "AAAAA2", "AAAAA3")]
        codes.append((await stranger.post("/api/games/AAAAA4/players", json={"player_name": "Eve"})).status_code)
        assert codes == [401, 401, 401, 404], "joining a wrong code still says INVALID_GAME"
        rate_limited(await stranger.get(f"/api/games/{ann.game_code}"))
        rate_limited(await stranger.post("/api/games/AAAAA5/spectators", json={"name": "Eve"}))
        rate_limited(await stranger.get("/api/games/AAAAA6/poll", params={"timeout": 0}))
        assert (await ann.get()).status_code == 200, "a seated player's lookups are not failures"
        await close_all(stranger, ann)
