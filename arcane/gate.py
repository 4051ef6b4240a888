"""The HTTP gate: what every request passes before any route sees it.

One place for the checks that do not depend on the route (docs/security.md):

- `Host` against ARCANE_ALLOWED_HOSTS (DNS rebinding), for HTTP and websockets;
- cross-site requests: a state-changing request that a cookie would authenticate must
  come from our own origin (or one of ARCANE_CORS_ORIGINS) and carry JSON;
- CORS for the HTTP API, SSE and long-poll (Socket.IO answers its own), preflight included;
- `X-Forwarded-*` headers from peers that are not trusted proxies are dropped, so no
  library behind us (Engine.IO's origin check, say) believes them;
- `Secure` cookies and HSTS when the request came over https (ARCANE_SECURE_COOKIES).

A plain request (no Origin, no https, no forwarded headers) passes with its own `send`,
so the transports' direct writes (arcane/serving/) still recognise hypercorn's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from arcane import stats
from arcane.config import Settings
from arcane.errors import ArcaneError, ErrorCode
from arcane.logs import bind
from arcane.peers import TrustedProxies, is_https

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SOCKET_IO = "/socket.io/"
FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")  # a balancer's (HAProxy's unique-id) or a client's
CORS_ALLOW_METHODS = b"GET, POST, OPTIONS"
CORS_ALLOW_HEADERS = b"authorization, content-type, last-event-id"
CORS_EXPOSE_HEADERS = b"retry-after"
CORS_MAX_AGE = b"600"


class Gate:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._proxies = TrustedProxies(settings.trusted_proxies)
        self._hosts = tuple(h.lower() for h in settings.allowed_hosts)
        self._cors = frozenset(settings.cors_origins)
        self._secure = settings.secure_cookies
        self._hsts = f"max-age={settings.hsts_max_age}".encode()

    def __getattr__(self, name: str) -> Any:  # the app's own attributes (`quart`, `runtime`)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        headers = _Headers(scope["headers"])
        if not self._proxies.trusts(_peer(scope)) and headers.forwarded:
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k not in FORWARDED]
        if self._hosts and not self._host_allowed(headers.host):
            await _refuse(scope, send, ArcaneError(ErrorCode.FORBIDDEN, "this server does not serve that host"))
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        bind(transport="http", request_id=headers.request_id)  # for this request's log lines (arcane/logs.py)
        if headers.has_body and not scope["path"].startswith(SOCKET_IO):  # (Engine.IO's are read whole: bodies.py)
            receive, send = _closing_unless_read(receive, send)
        origin = headers.origin
        listed = origin is not None and origin in self._cors
        if scope["method"] == "OPTIONS" and headers.preflight and not scope["path"].startswith(SOCKET_IO):
            await self._preflight(scope, send, origin if listed else None)
            return
        # Engine.IO's polling POSTs are text/plain, carry no cookie authority of their own
        # (a session id from the handshake does) and get Engine.IO's own origin check.
        if scope["method"] not in SAFE_METHODS and not headers.bearer and not scope["path"].startswith(SOCKET_IO):
            refusal = self._cross_site(scope, headers, listed)
            if refusal is not None:
                await _refuse(scope, send, refusal)
                return
        if scope["method"] == "POST" and scope["path"].startswith("/api/games"):
            action = _action_name(scope["path"])
            if action is not None:  # timed from here to the answer's first byte (/metrics)
                send = _timed(send, action)
        extra: list[tuple[bytes, bytes]] = []
        if listed and not scope["path"].startswith(SOCKET_IO):
            extra += _cors_headers(origin)  # type: ignore[arg-type]
        secure = self._secure == "on" or (self._secure == "auto" and is_https(scope, self._proxies))
        if secure:
            extra.append((b"strict-transport-security", self._hsts))
        if not extra:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _adding(send, extra, secure_cookies=secure))

    def _host_allowed(self, host: str) -> bool:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower().rstrip(".")
        return any(name == h or (h.startswith(".") and (name.endswith(h) or name == h[1:])) for h in self._hosts)

    def _cross_site(self, scope: Scope, headers: _Headers, listed: bool) -> ArcaneError | None:
        """Why a request a cookie would authenticate is refused, if it is."""
        if not listed:
            if headers.fetch_site is not None and headers.fetch_site not in {"same-origin", "none"}:
                return ArcaneError(ErrorCode.FORBIDDEN, f"a {headers.fetch_site} request may not act with "
                                   "this site's cookie; send your player token (Authorization: Bearer)")
            if headers.origin is not None and headers.origin != self._own_origin(scope, headers):
                return ArcaneError(ErrorCode.FORBIDDEN, f"requests from {headers.origin} may not act with "
                                   "this site's cookie; send your player token (Authorization: Bearer)")
        if headers.has_body and not headers.json:
            return ArcaneError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
        return None

    def _own_origin(self, scope: Scope, headers: _Headers) -> str:
        scheme = "https" if is_https(scope, self._proxies) else "http"
        return f"{scheme}://{headers.host}"

    async def _preflight(self, scope: Scope, send: Send, origin: str | None) -> None:
        if origin is None:
            await _refuse(scope, send, ArcaneError(ErrorCode.FORBIDDEN, "this origin is not allowed"))
            return
        headers = [*_cors_headers(origin), (b"access-control-allow-methods", CORS_ALLOW_METHODS),
                   (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
                   (b"access-control-max-age", CORS_MAX_AGE), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class _Headers:
    """The few request headers the gate reads, in one pass."""

    __slots__ = ("host", "origin", "fetch_site", "bearer", "preflight", "has_body", "json", "forwarded", "request_id")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.host = ""
        self.origin: str | None = None
        self.fetch_site: str | None = None
        self.bearer = self.preflight = self.has_body = self.json = self.forwarded = False
        self.request_id: str | None = None
        for name, value in raw:
            if name == b"host":
                self.host = value.decode("latin1")
            elif name == b"origin":
                self.origin = value.decode("latin1")
            elif name == b"sec-fetch-site":
                self.fetch_site = value.decode("latin1").lower()
            elif name == b"authorization":
                self.bearer = value[:7].lower() == b"bearer "
            elif name == b"access-control-request-method":
                self.preflight = True
            elif name == b"content-length":
                self.has_body = self.has_body or value.strip() not in {b"0", b""}
            elif name == b"transfer-encoding":
                self.has_body = True
            elif name == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
                self.json = media == b"application/json" or media.endswith(b"+json")
            elif name in FORWARDED:
                self.forwarded = True
            elif name == b"x-request-id" and REQUEST_ID.fullmatch(value):
                self.request_id = value.decode("ascii")


# POST /api/games/<code>/<route>: the action's name, as /metrics labels it (a fixed set).
HTTP_ACTIONS = {"players": "join", "spectators": "watch", "leave": "leave", "start": "start",
                "interrogation": "answer", "choices": "make_choice", "chat": "chat_message", "typing": "typing",
                "skip": "vote_skip", "rematch": "rematch"}


def _action_name(path: str) -> str | None:
    if path == "/api/games":
        return "create"
    parts = path.split("/")  # "", "api", "games", code, route
    return HTTP_ACTIONS.get(parts[4]) if len(parts) == 5 else None


def _timed(send: Send, action: str) -> Send:
    started = time.perf_counter()

    async def timing(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            stats.action(action, "http", time.perf_counter() - started)
        await send(message)

    return timing


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [(b"access-control-allow-origin", origin.encode("latin1")),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", CORS_EXPOSE_HEADERS),
            (b"vary", b"origin")]


def _adding(send: Send, extra: list[tuple[bytes, bytes]], *, secure_cookies: bool) -> Send:
    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if secure_cookies:
                headers = [(k, v + b"; Secure") if k.lower() == b"set-cookie" and b"secure" not in v.lower()
                           else (k, v) for k, v in headers]
            message = {**message, "headers": headers + extra}
        await send(message)

    return adding


def _closing_unless_read(receive: Receive, send: Send) -> tuple[Receive, Send]:
    """An answer that starts before the request's whole body has arrived says
    `connection: close`.

    hypercorn keeps a connection alive only if the whole request had arrived by the time
    the answer ended; if not (the body came in a later read than the head, and the answer
    was a refusal that never waited for it), it closes the connection without having said
    so, and a client that sends its next request on it finds it dropped (docs/upstream/
    hypercorn-unannounced-close.md). Said up front, the client opens a new one instead.
    A body that has arrived but was not read is taken from the queue, without waiting."""
    read = False

    async def receiving() -> Message:
        nonlocal read
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            read = True
        return message

    async def sending(message: Message) -> None:
        nonlocal read
        if message["type"] == "http.response.start" and not read:
            read = await _arrived(receive)
            if not read:
                message = {**message, "headers": [*message.get("headers", ()), (b"connection", b"close")]}
        await send(message)

    return receiving, sending


async def _arrived(receive: Receive) -> bool:
    """Whether the rest of the body is already there: read what is, and never wait."""
    while True:
        task = asyncio.ensure_future(receive())
        await asyncio.sleep(0)  # a message already queued is taken in this one turn
        if not task.done():
            task.cancel()
            return False
        message = task.result()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return True


async def _refuse(scope: Scope, send: Send, error: ArcaneError) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": error.to_dict()}).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
