"""Requests from other sites, other hosts and behind proxies: CSRF, CORS, Secure cookies, Host names."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.gameplay import error_of, last_seq
from tests.sockets import socket_for
from tests.support import LiveServer, Player, http_client, serving

EVIL = "http://127.0.0.1:1"  # same site as the server (the same host), another origin


async def cookie_player(server: LiveServer) -> tuple[httpx.AsyncClient, str]:
    """A browser holding only the session cookie of a new game: (client, game code)."""
    browser = http_client(server.url)
    created = await browser.post("/api/games", json={"player_name": "Victim"})
    assert created.status_code == 201 and "arcane_session" in browser.cookies
    return browser, created.json()["game_code"]


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL, "Content-Type": "text/plain"},  # a form or a no-cors fetch from a page on another port
    {"Origin": EVIL, "Content-Type": "application/json"},
    {"Sec-Fetch-Site": "same-site", "Content-Type": "text/plain"},
    {"Sec-Fetch-Site": "cross-site", "Origin": "null", "Content-Type": "application/x-www-form-urlencoded"},
])
async def test_a_page_on_another_origin_cannot_chat_with_the_victims_cookie(
    server: LiveServer, headers: dict[str, str]
) -> None:
    browser, code = await cookie_player(server)
    try:
        before = await last_seq(server, code)
        response = await browser.post(f"/api/games/{code}/chat", content=b'{"text": "I betray the party"}',
                                      headers=headers)
        assert response.status_code == 403, response.text
        assert error_of(response) == "FORBIDDEN"
        left = await browser.post(f"/api/games/{code}/leave", headers={k: v for k, v in headers.items()
                                                                        if k != "Content-Type"})
        assert left.status_code == 403
        assert await last_seq(server, code) == before
        assert (await browser.get(f"/api/games/{code}")).status_code == 200  # still seated
    finally:
        await browser.aclose()


async def test_a_cookie_request_from_our_own_page_must_carry_json(server: LiveServer) -> None:
    browser, code = await cookie_player(server)
    try:
        before = await last_seq(server, code)
        plain = await browser.post(f"/api/games/{code}/chat", content=b'{"text": "hello"}',
                                   headers={"Content-Type": "text/plain", "Origin": server.url,
                                            "Sec-Fetch-Site": "same-origin"})
        assert plain.status_code == 415 and error_of(plain) == "UNSUPPORTED_MEDIA_TYPE"
        assert await last_seq(server, code) == before
        ours = await browser.post(f"/api/games/{code}/chat", json={"text": "hello"},
                                  headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
        assert ours.status_code == 201, ours.text
    finally:
        await browser.aclose()


async def test_a_bearer_token_request_is_not_a_cross_site_request(server: LiveServer) -> None:
    ann = await Player.create(server, "Ann")
    response = await ann.client.post(f"/api/games/{ann.game_code}/chat", content=b'{"text": "from my app"}',
                                     headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site",
                                              "Content-Type": "text/plain"})
    assert response.status_code == 201, response.text
    await ann.close()


async def test_cors_answers_listed_origins_on_the_api_sse_and_long_poll(tmp_path: Path) -> None:
    app_origin = "http://app.example"
    async with serving(tmp_path, cors_origins=(app_origin,)) as server:
        ann = await Player.create(server, "Ann")
        chat = f"/api/games/{ann.game_code}/chat"
        preflight = await ann.client.options(chat, headers={
            "Origin": app_origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == app_origin
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        assert "POST" in preflight.headers["access-control-allow-methods"]

        stranger = await ann.client.options(chat, headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert stranger.status_code == 403 and "access-control-allow-origin" not in stranger.headers

        for path, params in [("", {}), ("/poll", {"timeout": "0"})]:
            listed = await ann.get(path, params=params, headers={"Origin": app_origin})
            assert listed.status_code == 200
            assert listed.headers["access-control-allow-origin"] == app_origin
            assert "origin" in listed.headers["vary"].lower()
            other = await ann.get(path, params=params, headers={"Origin": "http://evil.example"})
            assert "access-control-allow-origin" not in other.headers
        async with ann.client.stream("GET", f"/api/games/{ann.game_code}/events",
                                     headers={"Origin": app_origin}) as sse:
            assert sse.status_code == 200
            assert sse.headers["access-control-allow-origin"] == app_origin
        posted = await ann.client.post(chat, json={"text": "from the app"}, headers={"Origin": app_origin})
        assert posted.status_code == 201
        assert posted.headers["access-control-allow-origin"] == app_origin
        await ann.close()


def secure_cookie(response: httpx.Response) -> bool:
    cookies = response.headers.get_list("set-cookie")
    assert cookies, "no cookie set"
    return all("secure" in c.lower() for c in cookies)


async def test_cookies_are_secure_and_hsts_sent_behind_a_trusted_tls_proxy_only(tmp_path: Path) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with serving(tmp_path) as server, http_client(server.url) as client:
        plain = await client.post("/api/games", json={"player_name": "Ann"})
        assert not secure_cookie(plain) and "strict-transport-security" not in plain.headers
        forged = await client.post("/api/games", json={"player_name": "Ann"}, headers=https)
        assert not secure_cookie(forged) and "strict-transport-security" not in forged.headers
    async with serving(tmp_path / "behind", trusted_proxies=("127.0.0.1",)) as server, \
            http_client(server.url) as client:
        proxied = await client.post("/api/games", json={"player_name": "Ann"}, headers=https)
        assert secure_cookie(proxied)
        assert proxied.headers["strict-transport-security"] == f"max-age={server.settings.hsts_max_age}"
        plain = await client.post("/api/games", json={"player_name": "Ann"})
        assert not secure_cookie(plain)
    async with serving(tmp_path / "on", secure_cookies="on") as server, http_client(server.url) as client:
        always = await client.post("/api/games", json={"player_name": "Ann"})
        assert secure_cookie(always) and "strict-transport-security" in always.headers


HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


async def test_socket_io_believes_x_forwarded_host_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    spoofed = {"Origin": "http://evil.example", "X-Forwarded-Host": "evil.example"}
    async with serving(tmp_path) as server, http_client(server.url) as client:
        refused = await client.get(HANDSHAKE, headers=spoofed)
        assert refused.status_code == 400, refused.text
        ours = await client.get(HANDSHAKE, headers={"Origin": server.url})
        assert ours.status_code == 200
    async with serving(tmp_path / "behind", trusted_proxies=("127.0.0.1",)) as server, \
            http_client(server.url) as client:
        proxied = await client.get(HANDSHAKE, headers=spoofed)  # the proxy says the page came from there
        assert proxied.status_code == 200


async def test_only_the_allowed_host_names_are_served(tmp_path: Path) -> None:
    async with serving(tmp_path, allowed_hosts=("arcane.example", ".play.example", "127.0.0.1")) as server, \
            http_client(server.url) as client:
        for host in ("arcane.example", "arcane.example:8000", "eu.play.example"):
            assert (await client.get("/healthz", headers={"Host": host})).status_code == 200, host
        for host in ("localhost", "evil.example", "arcane.example.evil.example", "play.example.evil"):
            refused = await client.get("/healthz", headers={"Host": host})
            assert refused.status_code == 403 and error_of(refused) == "FORBIDDEN", host
        refused = await client.get(HANDSHAKE, headers={"Host": "evil.example"})
        assert refused.status_code == 403
        assert await websocket_status(server, "evil.example") == 403
        assert await websocket_status(server, "arcane.example") == 101


async def websocket_status(server: LiveServer, host: str) -> int:
    """The HTTP status of a websocket handshake to /socket.io/ sent with this Host."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write((f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_engine_io_polling_is_not_taken_for_a_cross_site_form(server: LiveServer) -> None:
    """Engine.IO's polling POSTs are text/plain without a bearer header: the gate leaves them
    to Engine.IO's own origin check."""
    ann = await Player.create(server, "Ann")
    polling = await socket_for(ann, transports=["polling"])
    try:
        ack = await polling.call("chat_message", {"text": "over polling"})
        assert ack["ok"] is True
    finally:
        await polling.close()
        await ann.close()
