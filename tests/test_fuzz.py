"""Property-based fuzzing of every HTTP route and Socket.IO event against one live server.

Invariants, whatever is sent: no 5xx (nor an INTERNAL_ERROR ack); every refusal carries a
contract code of its status; a refusal changes nothing (the games' views and last seq are the
same before and after); the server still serves afterwards. Shapes are in tests/fuzzing.py.
CI runs a fixed seed and few examples, `make fuzz` many more.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from tests import fuzzing
from tests.fuzzing import HttpCase, SocketCase
from tests.rawws import RawSocketIO

fuzzing.register_profiles()
ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class ClientLoop:
    """An event loop in a thread for the raw websockets, so hypothesis tests stay synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class Seat:
    code: str
    player_id: str
    token: str
    client: httpx.Client  # keeps the session cookie of this seat

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Server:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    loop: ClientLoop
    http: httpx.Client
    playing: list[Seat] = field(default_factory=list)  # host, guest, spectator of a game in its first turn
    other: Seat | None = None  # a seat of a game nobody else fuzzes

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def seat(self, path: str, body: dict[str, Any]) -> Seat:
        client = self.client()
        response = client.post(path, json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        return Seat(data["game_code"], data["player_id"], data["player_token"], client)

    def lobby(self) -> list[Seat]:
        """A fresh game in its lobby: host, guest, spectator."""
        host = self.seat("/api/games", {"player_name": "Host"})
        guest = self.seat(f"/api/games/{host.code}/players", {"player_name": "Guest"})
        watcher = self.seat(f"/api/games/{host.code}/spectators", {"name": "Watcher"})
        return [host, guest, watcher]

    def state(self, seat: Seat) -> Any:
        """What a refusal must not change: the seat's view (presence aside) and the game's last seq."""
        response = self.http.get(f"/api/games/{seat.code}", headers=seat.bearer())
        if response.status_code != 200:
            return response.status_code, response.json()
        view = response.json()
        for player in view["players"]:
            player.pop("online", None)
        return view

    def serves(self) -> None:
        assert self.proc.poll() is None, "the server died"
        assert self.http.get("/healthz").status_code == 200


SETTINGS = {
    "ARCANE_QUESTIONS_PER_PLAYER": "1",
    "ARCANE_POLL_TIMEOUT_MAX": "0.2",
    "ARCANE_SSE_HEARTBEAT": "1",
    # The fuzzer is one client sending thousands of requests: limits would answer most of them.
    **{f"ARCANE_{name}": "1000000" for name in [
        "RATE_LIMIT_PER_SECOND", "RATE_LIMIT_BURST", "CREATE_RATE_PER_MINUTE", "CREATE_BURST",
        "READ_RATE_PER_SECOND", "READ_BURST", "LOOKUP_FAILURES_PER_MINUTE",
        "MAX_CONNECTIONS_PER_ADDRESS", "MAX_CONNECTIONS_PER_IDENTITY"]},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `python -m arcane` for the whole module (not one per example: speed)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with socketless_port() as port:
        pass
    log = tmp / "server.log"
    env = os.environ | SETTINGS | {"ARCANE_DATABASE": str(tmp / "arcane.db")}
    with log.open("wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "arcane", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"], env=env, cwd=ROOT, stdout=output, stderr=output)
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, timeout=30)
    for _ in range(300):
        try:
            if http.get("/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    live = Server(url, port, proc, log, ClientLoop(), http)
    try:
        live.playing = live.lobby()
        host, guest, _ = live.playing
        assert host.client.post(f"/api/games/{host.code}/start", json={}, headers=host.bearer()).status_code == 200
        for seat in (host, guest):
            question = seat.client.get(f"/api/games/{seat.code}/interrogation", headers=seat.bearer()).json()["question"]
            answer = {"answer_id": question["answers"][0]["id"]}
            assert seat.client.post(f"/api/games/{seat.code}/interrogation", json=answer, headers=seat.bearer()).status_code == 200
        live.other = live.seat("/api/games", {"player_name": "Olga"})
        yield live
    finally:
        live.loop.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        http.close()


class socketless_port:
    """A free loopback port (bound only to find one)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *_: Any) -> None:
        self.sock.close()


# -- HTTP -------------------------------------------------------------------------------------------

def path_and_seats(server: Server, case: HttpCase, garbage: str, lobby: list[Seat]) -> tuple[str, list[Seat]]:
    """The request's path, and the games (as one of their seats) whose state a refusal must keep."""
    assert server.other is not None
    games = {"lobby": lobby, "playing": server.playing, "other": [server.other]}
    code = {"lobby": lobby[0].code, "playing": server.playing[0].code, "other": server.other.code,
            "unknown": "ZZZZZZ", "garbage": garbage[:1000]}[case.target]
    # (A request head over h11's 16 KiB is refused by hypercorn with an empty 431 before the
    # app sees it: a refusal of the HTTP server, not of the contract, so paths stay shorter.)
    return case.route.path.replace("{code}", quote(code, safe="")), games.get(case.target, lobby)


def credentials(server: Server, case: HttpCase, seats: list[Seat]) -> tuple[httpx.Client, dict[str, str]]:
    """The client (its cookies) and headers the caller sends: legacy routes go by cookie."""
    assert server.other is not None
    if case.caller == "none":
        return server.http, {}
    if case.caller == "forged":
        return server.http, {"Authorization": "Bearer eyJnIjoiWlpaWlpaIn0.forged.sig", "Cookie": "session=forged"}
    pick = {"host": 0, "guest": 1, "spectator": 2}
    if case.caller == "other_game":
        seat = server.other if seats[0] is not server.other else server.playing[0]
    else:
        seat = seats[min(pick[case.caller], len(seats) - 1)]
    return (seat.client, {}) if case.route.legacy else (server.http, seat.bearer())


def send(client: httpx.Client, case: HttpCase, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    params = {k: v for k, v in case.query.items()}
    if case.last_event_id is not None:
        headers = headers | {"Last-Event-ID": case.last_event_id}
    if case.route.method == "GET":
        if case.route.path.endswith("/events"):
            with client.stream("GET", path, params=params, headers=headers, timeout=10) as response:
                if response.status_code != 200:
                    return response.status_code, response.read()
                first = next(response.iter_bytes(), b"")  # a snapshot, a replay or a heartbeat
                assert first, "an SSE stream that ends before its first event"
                return 200, first
        response = client.get(path, params=params, headers=headers)
        return response.status_code, response.content
    if isinstance(case.body, bytes):
        content = case.body
    else:
        content = json.dumps(case.body).encode()  # ensure_ascii: lone surrogates travel as \ud800
    headers = headers | ({"Content-Type": case.content_type} if case.content_type else {})
    response = client.request(case.route.method, path, params=params, content=content, headers=headers)
    return response.status_code, response.content


# A game code in the path is cut to 1,000 characters (at most 12 KB percent-encoded): a longer
# request head never reaches the app. Hypercorn answers 431 with no body past its 16 KB
# limit (h11_max_incomplete_size) and httpx refuses a URL over 64 KB. Hypothesis draws
# constants from the code under test, so any change to arcane/ reshuffles the examples:
# such paths were always possible, only not drawn before.
PATH_GARBAGE = fuzzing.names.map(lambda name: name[:1000]) | st.sampled_from(["..", "%2F", "abc123", "ABC12"])


@given(case=fuzzing.http_cases(), garbage=PATH_GARBAGE)
def test_every_http_route_refuses_what_it_cannot_take_with_a_contract_code_and_changes_nothing(
    server: Server, case: HttpCase, garbage: str
) -> None:
    lobby = server.lobby()
    try:
        path, seats = path_and_seats(server, case, garbage, lobby)
        client, headers = credentials(server, case, seats)
        before = [server.state(seat) for seat in seats]
        note(f"{case.route.name} -> {path}")
        status, body = send(client, case, path, headers)
        note(f"{status} {body[:300]!r}")
        assert status < 500, (status, body[:500])
        if status >= 400:
            fuzzing.check_refusal(status, body)
            assert [server.state(seat) for seat in seats] == before
        server.serves()
    finally:
        for seat in lobby:
            seat.client.close()


# -- Socket.IO events -------------------------------------------------------------------------------

class Sockets:
    """The fuzzer's raw Socket.IO connection, opened again when the server closes it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.raw: RawSocketIO | None = None

    async def connection(self, token: str) -> RawSocketIO:
        if self.raw is None:
            self.raw = await RawSocketIO.open(self.server.port, token, receive_buffer=1 << 20)
        return self.raw

    async def call(self, token: str, event: str, args: list[Any], timeout: float) -> Any:
        raw = await self.connection(token)
        raw._ack_id += 1
        ack_id = raw._ack_id
        text = json.dumps([event, *args])  # Infinity, if generated, is not JSON: a malformed packet
        try:
            await raw.send(f"42{ack_id}" + text)
            answer, _ = await raw.ack(ack_id, timeout)
            if not strict_json(text):
                await self.drop()  # the server closes a socket after 5 malformed packets, by design
            return answer
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.drop()
            return ConnectionError
        except TimeoutError:
            return TimeoutError
        except IndexError:
            return None  # an ack without arguments (`43<id>[]`): a handler that returned nothing

    async def drop(self) -> None:
        if self.raw is not None:
            raw, self.raw = self.raw, None
            await raw.close()


def strict_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def sockets(server: Server) -> Iterator[Sockets]:
    holder = Sockets(server)
    yield holder
    server.loop.run(holder.drop())


def socket_args(server: Server, case: SocketCase) -> list[Any]:
    assert server.other is not None
    data = case.data
    if isinstance(data, dict) and "game_code" in data and case.game != "as generated":
        data = data | {"game_code": (server.playing[0] if case.game == "ours" else server.other).code}
    return ([] if data is fuzzing.MISSING else [data]) + case.extra_args


@given(case=fuzzing.socket_cases())
def test_every_socket_event_answers_through_its_ack_with_a_contract_code_and_changes_nothing(
    server: Server, sockets: Sockets, case: SocketCase
) -> None:
    guest = server.playing[1]  # a player of the game in its first turn: every action can succeed
    before = [server.state(seat) for seat in (server.playing[0], server.other)]
    args = socket_args(server, case)
    note(f"{case.event} {args!r:.300}")
    answer = server.loop.run(sockets.call(guest.token, case.event, args, 5))
    note(f"ack: {answer!r:.300}")
    if answer is ConnectionError:
        # Engine.IO closes a connection whose message is over ARCANE_MAX_PAYLOAD: allowed.
        assert len(json.dumps([case.event, *args])) > 16_000, "the server closed the socket"
    else:
        assert answer is not TimeoutError, "no ack came back"
        fuzzing.check_ack(answer)
        if "error" in answer:
            assert [server.state(seat) for seat in (server.playing[0], server.other)] == before
    pong = server.loop.run(sockets.call(guest.token, "ping", [], 10))
    assert isinstance(pong, dict) and pong.get("ok") is True, pong
    server.serves()


# -- raw Engine.IO / Socket.IO packets ----------------------------------------------------------------

async def raw_packet_then_ping(port: int, token: str, packet: str, connected: bool) -> str:
    """Send `packet` on a fresh websocket (after the Socket.IO connect or before it); then
    whether the server still answers a ping on it, or closed it."""
    raw = await RawSocketIO.open(port, token) if connected else await engine_only(port)
    try:
        await raw.send(packet)
        if not connected:
            return "closed" if await closed_soon(raw) else "open"
        await raw.send('429999["ping"]')
        try:
            await raw.ack(9999, 5)
        except (ConnectionError, asyncio.IncompleteReadError):
            return "closed"
        return "answered"
    except (ConnectionError, asyncio.IncompleteReadError):
        return "closed"
    finally:
        await raw.close()


async def engine_only(port: int) -> RawSocketIO:
    """An Engine.IO websocket that never sends the Socket.IO connect."""
    import base64

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    raw = RawSocketIO(reader, writer)
    assert (await raw.message()).startswith("0{")
    return raw


async def closed_soon(raw: RawSocketIO) -> bool:
    try:
        await asyncio.wait_for(raw.message(), 0.2)
    except TimeoutError:
        return False
    except (ConnectionError, asyncio.IncompleteReadError):
        return True
    return False


@given(packet=fuzzing.raw_packets, connected=st.booleans())
def test_raw_engineio_and_socketio_packets_never_break_the_server(server: Server, packet: str, connected: bool) -> None:
    outcome = server.loop.run(raw_packet_then_ping(server.port, server.playing[1].token, packet, connected))
    note(f"{packet!r:.200} -> {outcome}")
    server.serves()
    # A fresh, well-behaved client is served as before.
    assert server.loop.run(raw_packet_then_ping(server.port, server.playing[1].token, '42["ping"]', True)) == "answered"

