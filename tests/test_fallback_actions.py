"""Chat, typing and choices over HTTP are served by the bare front (arcane/fallback/actions.py),
never by Quart, and every answer, refusals included, is the one the Quart route gives.

Each request is made twice on the same server: once as served (the bare front), once with
the bare front's actions switched off so that it reaches Quart's route in arcane/routes/api.py.
A counter in front of Quart tells which of them answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from arcane.fallback.actions import Actions
from tests.gameplay import close_all, error_of, last_seq
from tests.support import LiveServer, Player, http_client, play_to_first_turn, seat_party, serving

Send = Callable[[], Awaitable[httpx.Response]]
EVIL = "http://127.0.0.1:1"


class QuartDoor:
    """Counts the requests that reach Quart, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


class Front:
    """The server's bare front (arcane/fallback/bare.py), with a counter before Quart."""

    def __init__(self, server: LiveServer) -> None:
        self.routes = server.app.app.other_asgi_app  # Gate -> Socket.IO's ASGIApp -> FallbackRoutes
        self.quart = QuartDoor(self.routes.app)
        self.routes.app = self.quart

    @contextmanager
    def through_quart(self) -> Iterator[None]:
        actions, self.routes.actions = self.routes.actions, None
        try:
            yield
        finally:
            self.routes.actions = actions

    async def both(self, send: Send) -> tuple[httpx.Response, httpx.Response]:
        """(the bare front's answer, Quart's answer) to the same request."""
        before = len(self.quart.paths)
        bare = await send()
        assert len(self.quart.paths) == before, f"Quart served {self.quart.paths[before:]}"
        with self.through_quart():
            quart = await send()
        assert len(self.quart.paths) == before + 1, "the request did not reach Quart"
        return bare, quart

    async def gate(self, send: Send, status: int, code: str) -> None:
        """The gate refuses `send` before either the bare front or Quart sees it, both ways."""
        served = self.routes.actions.served
        before = len(self.quart.paths)
        bare = await send()
        with self.through_quart():
            quart = await send()
        assert len(self.quart.paths) == before and self.routes.actions.served == served
        assert bare.status_code == status and error_of(bare) == code, bare.text
        assert_same_answer(bare, quart)

    async def same(self, send: Send, status: int, code: str | None = None, *,
                   unread_body: bool = False) -> httpx.Response:
        """The bare front and Quart answer `send` alike, with `status` (and error `code`).
        `unread_body`: the answer leaves the rest of a streamed body unread, and whether that
        rest had arrived by then (no `connection: close`, arcane/gate.py) is a matter of timing."""
        bare, quart = await self.both(send)
        assert bare.status_code == status, bare.text
        if code is not None:
            assert error_of(bare) == code, bare.text
        assert_same_answer(bare, quart, ignore=("connection",) if unread_body else ())
        return bare


def assert_same_answer(bare: httpx.Response, quart: httpx.Response, *, body: bool = True,
                       ignore: tuple[str, ...] = ()) -> None:
    assert bare.status_code == quart.status_code, (bare.text, quart.text)
    if body:
        assert bare.content == quart.content
    ours = [header for header in _headers(bare) if header[0] not in ignore]
    theirs = [header for header in _headers(quart) if header[0] not in ignore]
    assert [name for name, _ in ours] == [name for name, _ in theirs], (ours, theirs)
    for (name, mine), (_, other) in zip(ours, theirs):
        if name == "set-cookie":
            assert_same_cookie(mine, other)
        elif name != "date":
            assert mine == other, name


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in response.headers.multi_items()]


def assert_same_cookie(mine: str, other: str) -> None:
    """The same session, re-signed (perhaps a second apart), with the same attributes."""
    (pair, *attributes), (other_pair, *other_attributes) = mine.split("; "), other.split("; ")
    name, value = pair.split("=", 1)
    other_name, other_value = other_pair.split("=", 1)
    assert name == other_name
    assert _session(value) == _session(other_value)
    expires = [a for a in attributes if a.startswith("Expires=")]
    other_expires = [a for a in other_attributes if a.startswith("Expires=")]
    assert len(expires) == len(other_expires) == 1
    seconds = abs((parsedate_to_datetime(expires[0][8:]) - parsedate_to_datetime(other_expires[0][8:]))
                  .total_seconds())
    assert seconds <= 2
    assert [a for a in attributes if a not in expires] == [a for a in other_attributes if a not in other_expires]


_SESSION_LOADS: list[Callable[[str], Any]] = []


def _session(value: str) -> Any:
    return _SESSION_LOADS[-1](value)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with serving(tmp_path, read_burst=10**6, rate_limit_burst=10**6) as live:
        yield live


@pytest.fixture
def front(server: LiveServer) -> Iterator[Front]:
    _SESSION_LOADS.append(server.runtime.realtime._load_session)  # type: ignore[union-attr]
    yield Front(server)
    _SESSION_LOADS.pop()


def post(client: httpx.AsyncClient, path: str, body: Any = None, **kwargs: Any) -> Send:
    return lambda: client.post(path, json=body, **kwargs)


def raw(client: httpx.AsyncClient, path: str, content: Any, content_type: str = "application/json",
        **headers: str) -> Send:
    """A POST of `content` as it is (bytes, text, or a callable making a fresh chunked stream)."""
    return lambda: client.post(path, content=content() if callable(content) else content,
                               headers={"Content-Type": content_type, **headers})


# -- served by the bare front -------------------------------------------------------------------


async def test_a_party_chats_types_and_chooses_without_quart(server: LiveServer, front: Front) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    await play_to_first_turn(party)
    door = len(front.quart.paths)
    for player in party:
        assert (await player.post("/typing", {"is_typing": True})).status_code == 200
        chat = await player.post("/chat", {"text": f"{player.player_name} is here"})
        assert chat.status_code == 201 and chat.json()["seq"] == await last_seq(server, player.game_code)
    option = (await party[0].view())["scenario"]["options"][0]["id"]
    door += 1  # the view above is Quart's
    first = await party[0].post("/choices", {"option_id": option})
    assert first.status_code == 200 and first.json() == {
        "ok": True, "choices_submitted": 1, "total_players": 2, "all_submitted": False,
        "waiting_for": [party[1].player_id]}
    last = await party[1].post("/choices", {"text": "I open the door"})
    assert last.status_code == 200 and last.json()["all_submitted"] is True
    assert front.quart.paths[door:] == []
    assert (await party[0].view())["turn_number"] == 2  # the turn resolved
    await close_all(party)


async def test_every_answer_is_the_quart_routes_answer(server: LiveServer, front: Front) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    host, brom = party
    code = host.game_code
    spectator = await Player.watch(server, code, "Wren")
    elsewhere = await Player.create(server, "Zed")
    stranger = http_client(server.url)
    cookie_only = http_client(server.url, cookies=host.client.cookies)
    foreign_cookie = http_client(server.url, cookies=elsewhere.client.cookies)
    paths = {action: f"/api/games/{code}/{action}" for action in ("chat", "typing", "choices")}
    bodies = {"chat": {"text": "hello"}, "typing": {"is_typing": True}, "choices": {"option_id": "a"}}
    try:
        # Successes: typing answers alike; chat alike but for the seq it was given.
        await front.same(post(host.client, paths["typing"], bodies["typing"]), 200)
        await front.same(post(cookie_only, paths["typing"], bodies["typing"]), 200)  # the cookie re-signed
        bare, quart = await front.both(post(host.client, paths["chat"], bodies["chat"]))
        assert bare.status_code == 201 and quart.json()["seq"] == bare.json()["seq"] + 1
        assert_same_answer(bare, quart, body=False)
        bare, quart = await front.both(post(cookie_only, paths["chat"], bodies["chat"]))
        assert bare.status_code == 201 and "set-cookie" in bare.headers
        assert_same_answer(bare, quart, body=False)
        before = await last_seq(server, code)

        for action, path in paths.items():
            # No identity, a bad one, one for another game, or a spectator's.
            await front.same(post(stranger, path, bodies[action]), 401, "AUTH_REQUIRED")
            await front.same(post(stranger, path, bodies[action], headers={"Authorization": "Bearer garbage"}),
                             401, "AUTH_REQUIRED")
            await front.same(post(host.client, path, bodies[action],
                                  headers={"Authorization": f"Bearer {elsewhere.token}"}), 403, "NOT_IN_GAME")
            await front.same(post(foreign_cookie, path, bodies[action]), 403, "NOT_IN_GAME")
            await front.same(post(spectator.client, path, bodies[action]), 403, "NOT_IN_GAME")
            tampered = host.client.cookies["arcane_session"][:-3] + "xyz"
            await front.same(post(stranger, path, bodies[action], headers={"Cookie": f"arcane_session={tampered}"}),
                             401, "AUTH_REQUIRED")
            # The session among other cookies, one of them malformed: read as Quart reads it.
            among = {"Cookie": f'theme=dark; x="y; arcane_session={host.client.cookies["arcane_session"]}'}
            if action == "chat":
                bare, quart = await front.both(post(stranger, path, bodies[action], headers=among))
                assert bare.status_code == 201, bare.text
                assert_same_answer(bare, quart, body=False)
            else:
                await front.same(post(stranger, path, bodies[action], headers=among), 200 if action == "typing" else 409)
            stranger.cookies.clear()  # the answers' Set-Cookie: the stranger stays one
            # Bodies that are not JSON objects, however they are labelled (a bearer request may
            # say text/plain: the gate lets it through, and the body is read as JSON all the same).
            for content in ("{not json", "[1, 2]", '"Aria"', "5", "null", b"\xff\xfe", "[" * 50_000):
                await front.same(raw(host.client, path, content), 400, "VALIDATION_ERROR")
                await front.same(raw(host.client, path, content, "text/plain"), 400, "VALIDATION_ERROR")
            await front.same(raw(host.client, path, "text=hi", "application/x-www-form-urlencoded"),
                             400, "VALIDATION_ERROR")
            # Too big: by its Content-Length, or chunked past the limit; after the caller's seat.
            big = b'{"text": "' + b"x" * 70_000 + b'"}'
            await front.same(raw(host.client, path, big), 413, "PAYLOAD_TOO_LARGE")
            await front.same(raw(cookie_only, path, big), 413, "PAYLOAD_TOO_LARGE")
            await front.same(raw(host.client, path, lambda: _chunks(big)), 413, "PAYLOAD_TOO_LARGE",
                             unread_body=True)
            await front.same(raw(stranger, path, big), 401, "AUTH_REQUIRED")
            # A cookie's body must be JSON, from our own origin: the gate's refusals.
            await front.gate(raw(cookie_only, path, b'{"text": "x"}', "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
            await front.gate(raw(cookie_only, path, b'{"text": "x"}', Origin=EVIL), 403, "FORBIDDEN")
            await front.gate(raw(cookie_only, path, b'{"text": "x"}', **{"Sec-Fetch-Site": "cross-site"}),
                             403, "FORBIDDEN")
            # An empty body is {}; a chunked one is read whole.
            await front.same(raw(host.client, path, b""), 400, "VALIDATION_ERROR")
            await front.same(raw(host.client, path, lambda: _chunks(b'{"is_typing": "yes", "text": ""}')),
                             400, "VALIDATION_ERROR")

        # Each action's own refusals.
        for body in ({}, {"text": ""}, {"text": "x" * 501}, {"text": ["hi"]}, {"text": "   "}):
            await front.same(post(host.client, paths["chat"], body), 400, "VALIDATION_ERROR")
        for body in ({}, {"is_typing": "yes"}, {"is_typing": 1}, {"is_typing": None}):
            await front.same(post(host.client, paths["typing"], body), 400, "VALIDATION_ERROR")
        for body in ({"option_id": "a"}, {"text": "too soon"}):  # the game is still in its lobby
            await front.same(post(host.client, paths["choices"], body), 409, "WRONG_PHASE")
        await front.same(post(host.client, paths["choices"], {"option_id": "a", "text": "both"}),
                         400, "VALIDATION_ERROR")
        await front.same(post(host.client, paths["chat"], {"text": "\u00e9" * 501}), 400, "VALIDATION_ERROR")
        assert await last_seq(server, code) == before + 2  # the two chats among other cookies; no refusal wrote

        await play_to_first_turn(party)
        option = (await host.view())["scenario"]["options"][0]["id"]
        for body in ({"option_id": "zz"}, {"option_id": "caf\u00e9"}, {"option_id": ""}, {"option_id": 1},
                     {"text": 7}, {}):
            await front.same(post(host.client, paths["choices"], body), 400, "VALIDATION_ERROR")
        with front.through_quart():
            quart = await host.post("/choices", {"option_id": option})
        assert quart.status_code == 200 and quart.json()["all_submitted"] is False
        await front.same(post(host.client, paths["choices"], {"option_id": option}), 409, "ALREADY_CHOSE")
        await front.same(post(host.client, paths["choices"], {"text": "changed my mind"}), 409, "ALREADY_CHOSE")
        last = await brom.post("/choices", {"option_id": option})
        assert last.status_code == 200 and last.json()["all_submitted"] is True

        # What the bare front leaves to Quart: other methods, other paths.
        door = len(front.quart.paths)
        assert (await host.client.get(paths["chat"])).status_code == 405
        assert (await host.client.put(paths["typing"], json={})).status_code == 405
        assert (await host.client.post(paths["chat"] + "/", json={"text": "x"})).status_code == 404
        assert (await host.client.post(f"/api/games/{code}/chat/more", json={"text": "x"})).status_code == 404
        assert len(front.quart.paths) == door + 4
    finally:
        for client in (stranger, cookie_only, foreign_cookie):
            await client.aclose()
        await close_all([*party, spectator, elsewhere])


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(data), 8192):
        yield data[at:at + 8192]


async def test_rate_limited_actions_answer_as_quart_does(tmp_path: Path) -> None:
    async with serving(tmp_path, rate_limit_per_second=0.5, rate_limit_burst=3) as server:
        _SESSION_LOADS.append(server.runtime.realtime._load_session)  # type: ignore[union-attr]
        front = Front(server)
        host = await Player.create(server, "Aria")
        try:
            for _ in range(3):
                assert (await host.post("/chat", {"text": "spam"})).status_code == 201
            before = await last_seq(server, host.game_code)
            for action, body in (("chat", {"text": "more"}), ("typing", {"is_typing": True}),
                                 ("choices", {"option_id": "a"})):
                limited = await front.same(post(host.client, f"/api/games/{host.game_code}/{action}", body),
                                           429, "RATE_LIMITED")
                assert limited.headers["retry-after"] == "2"
            # The body is not read, nor judged, before the limit.
            await front.same(raw(host.client, f"/api/games/{host.game_code}/chat", b"{bad"), 429, "RATE_LIMITED")
            assert await last_seq(server, host.game_code) == before
        finally:
            _SESSION_LOADS.pop()
            await host.close()


async def test_cors_and_secure_cookies_apply_to_the_bare_actions(tmp_path: Path) -> None:
    app_origin = "http://app.example"
    async with serving(tmp_path, cors_origins=(app_origin,), secure_cookies="on") as server:
        _SESSION_LOADS.append(server.runtime.realtime._load_session)  # type: ignore[union-attr]
        front = Front(server)
        host = await Player.create(server, "Aria")
        # A Secure cookie: httpx keeps none over http://, so it is sent by hand.
        seated = await host.client.post(f"/api/games/{host.game_code}/players", json={"player_name": "Brom"})
        session = seated.headers["set-cookie"].split(";", 1)[0]
        cookie_only = http_client(server.url, headers={"Cookie": session})
        try:
            path = f"/api/games/{host.game_code}/typing"
            assert "; Secure" in seated.headers["set-cookie"]
            answer = await front.same(post(cookie_only, path, {"is_typing": True}, headers={"Origin": app_origin}),
                                      200)
            assert answer.headers["access-control-allow-origin"] == app_origin
            assert "; Secure" in answer.headers["set-cookie"]
            assert answer.headers["strict-transport-security"].startswith("max-age=")
            await front.gate(post(cookie_only, path, {"is_typing": True}, headers={"Origin": EVIL}), 403, "FORBIDDEN")
        finally:
            _SESSION_LOADS.pop()
            await cookie_only.aclose()
            await host.close()


async def test_an_unexpected_failure_is_an_internal_error_as_in_quart(
    server: LiveServer, front: Front, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    host = await Player.create(server, "Aria")
    marker = "the-vault-combination-is-4217"

    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(marker)

    monkeypatch.setattr(server.runtime.services.service, "chat", explode)
    with caplog.at_level(logging.ERROR):
        answer = await front.same(post(host.client, f"/api/games/{host.game_code}/chat", {"text": "x"}),
                                  500, "INTERNAL_ERROR")
    assert marker not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if r.getMessage() == f"unhandled error on POST /api/games/{host.game_code}/chat"]
    assert len(logged) == 2 and all(r.exc_info and marker in str(r.exc_info[1]) for r in logged)
    await host.close()


async def _head_then_stall(server: LiveServer, path: str, token: str, *, sent: bytes, length: int,
                           close: bool) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode() + sent)
    await writer.drain()
    if close:
        writer.close()
        return b""
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


async def test_a_body_that_never_comes_times_out_as_in_quart(server: LiveServer, front: Front) -> None:
    host = await Player.create(server, "Aria")
    path = f"/api/games/{host.game_code}/chat"
    server.app.quart.config["BODY_TIMEOUT"] = 0.3
    front.routes.actions = Actions.of(server.app.quart, lambda: server.runtime.services)
    answers = []
    for door in (None, front.through_quart()):
        if door is None:
            answers.append(await _head_then_stall(server, path, host.token, sent=b'{"te', length=20, close=False))
        else:
            with door:
                answers.append(await _head_then_stall(server, path, host.token, sent=b'{"te', length=20, close=False))
    head = [a.split(b"\r\n\r\n", 1) for a in answers]
    assert head[0][0].startswith(b"HTTP/1.1 408 ") and head[0][1] == head[1][1]

    def without_date(lines: bytes) -> list[bytes]:
        return [line for line in lines.split(b"\r\n") if not line.lower().startswith(b"date:")]

    assert without_date(head[0][0]) == without_date(head[1][0])
    await host.close()


async def test_a_client_that_hangs_up_before_its_body_sends_nothing(server: LiveServer, front: Front) -> None:
    host = await Player.create(server, "Aria")
    before = await last_seq(server, host.game_code)
    door = len(front.quart.paths)
    await _head_then_stall(server, f"/api/games/{host.game_code}/chat", host.token, sent=b'{"text": "hal',
                           length=30, close=True)
    await asyncio.sleep(0.3)
    assert await last_seq(server, host.game_code) == before
    assert (await host.post("/chat", {"text": "whole"})).status_code == 201
    assert front.quart.paths[door:] == []
    await host.close()
