"""The hot HTTP actions, served by the bare ASGI front: `POST /api/games/<code>/chat`,
`.../typing` and `.../choices`.

Players on SSE or long-poll can only act over HTTP: a game night sends a POST for every
chat line and typing notice they make. Through Quart each one paid for a request and an
app context, parsed request and response objects, two tasks (the handler and the body
reader) and the session interface: at 2,000 players that saturated the core. Here they
take the path of a socket's action instead: the same `GameService` calls, the same
identity, limits and store, and, when the request arrived whole, one write for the answer
(arcane/serving/h11.py, `poll_lane`).

They answer exactly as the Quart routes of arcane/routes/api.py do, to the byte: the
same checks in the same order (the caller's seat, the action limit, the body: its size,
then its JSON, then the service), the same statuses and error bodies (Quart's compact
JSON and its trailing newline, `Retry-After`), and the session cookie re-signed as Quart
re-signs it on every answer (`SessionCookie`). The gate (arcane/gate.py) stands in front
of both, so cross-site refusals, JSON-only cookie bodies, CORS and Secure cookies are
the same. tests/test_fallback_actions.py holds every answer against Quart's.

One difference, on purpose: Quart cancels a route whose client hangs up; an action here
runs to its end once its whole body has arrived (its answer goes to nobody), so a line
the client sent in full is never half-written by a cancellation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout
from werkzeug.http import dump_cookie, parse_cookie

from arcane.errors import ArcaneError, ErrorCode
from arcane.fallback.asgi import Receive, Scope, Send
from arcane.game.records import Identity, Member
from arcane.identity import bearer, seat_of
from arcane.limits import RateLimited, retry_after_header
from arcane.routes.common import json_object
from arcane.serving import h11
from arcane.transports import Refusal

if TYPE_CHECKING:
    from quart import Quart

    from arcane.transports import Services

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]

PATH = re.compile(r"/api/games/([^/]+)/(chat|typing|choices)")
JSON = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class SessionCookie:
    """Quart's signed session cookie, read and re-signed outside Quart exactly as its
    `SecureCookieSessionInterface` does: read from the first cookie of that name; on the
    way out, a session that is not empty and is permanent (identity.remember makes every
    seat's session so) is signed again with a new expiry, and the answer varies by Cookie.
    """

    name: str
    serializer: URLSafeTimedSerializer | None
    lifetime: timedelta
    refresh: bool  # SESSION_REFRESH_EACH_REQUEST
    domain: str | None
    path: str
    secure: bool
    httponly: bool
    samesite: str | None
    partitioned: bool
    max_size: int

    @classmethod
    def of(cls, app: Quart) -> SessionCookie:
        interface = app.session_interface
        return cls(
            name=interface.get_cookie_name(app),
            serializer=interface.get_signing_serializer(app),
            lifetime=app.permanent_session_lifetime, refresh=bool(app.config["SESSION_REFRESH_EACH_REQUEST"]),
            domain=interface.get_cookie_domain(app), path=interface.get_cookie_path(app),
            secure=interface.get_cookie_secure(app), httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app), partitioned=interface.get_cookie_partitioned(app),
            max_size=app.config["MAX_COOKIE_SIZE"],
        )

    def load(self, cookies: list[str]) -> dict[str, Any]:
        if self.serializer is None:
            return {}
        value = parse_cookie(";".join(cookies)).get(self.name)
        if value is None:
            return {}
        try:
            data = self.serializer.loads(value, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return {}
        return dict(data)

    def headers(self, session: dict[str, Any]) -> Headers:
        """What Quart adds to an answer for this request's `session` (it is never modified here)."""
        if not session or self.serializer is None or not (self.refresh and session.get("_permanent", False)):
            return []
        cookie = dump_cookie(self.name, self.serializer.dumps(session), expires=datetime.now(UTC) + self.lifetime,
                             path=self.path, domain=self.domain, secure=self.secure, httponly=self.httponly,
                             max_size=self.max_size, samesite=self.samesite, partitioned=self.partitioned)
        return [(b"set-cookie", cookie.encode("latin1")), (b"vary", b"Cookie")]


@dataclass(frozen=True, slots=True)
class Request:
    """What an action reads of its request, as Quart's request object would give it."""

    code: str
    action: str
    token: str | None  # of the first Authorization header, as `request.headers.get` gives it
    session: dict[str, Any]
    content_length: int | None
    address: str
    method: str
    path: str


class Actions:
    """The three routes. `serve` is called by the bare front for a POST to one of them."""

    def __init__(self, runtime: Callable[[], Services], cookie: SessionCookie, *, max_body: int,
                 body_timeout: float | None) -> None:
        self._runtime = runtime
        self._cookie = cookie
        self._max_body = max_body
        self._body_timeout = body_timeout
        self._run = {"chat": self._chat, "typing": self._typing, "choices": self._choose}
        self.served = 0  # requests taken here, not by Quart

    @classmethod
    def of(cls, app: Quart, runtime: Callable[[], Services]) -> Actions:
        """The actions of this Quart app: its cookie, its body limit and its body timeout."""
        return cls(runtime, SessionCookie.of(app), max_body=app.config["MAX_CONTENT_LENGTH"],
                   body_timeout=app.config["BODY_TIMEOUT"])

    async def serve(self, code: str, action: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.served += 1
        rt = self._runtime()
        request = self._request(rt, code, action, scope)
        head: Headers | None = None  # the error page's own, when it is werkzeug's
        extra: Headers = []
        try:
            status, body = await self._run[action](rt, request, receive)
        except ArcaneError as error:
            status, body, extra = error.status, _error_body(error), retry_after_header(error)
        except HTTPException as error:
            page = _http_error(error)
            if isinstance(page, ArcaneError):
                status, body = page.status, _error_body(page)
            else:
                status, body, head = page
        except _Gone:
            return
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            internal = ArcaneError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side")
            status, body = internal.status, _error_body(internal)
        if head is None:
            head = [JSON, *extra, (b"content-length", b"%d" % len(body))]  # in the order Quart writes them
        await respond(send, status, [*head, *self._cookie.headers(request.session)], body)

    # -- the routes of arcane/routes/api.py -----------------------------------------------------

    async def _chat(self, rt: Services, request: Request, receive: Receive) -> tuple[int, bytes]:
        ident, _ = await self._acting(rt, request)
        body = await self._json(request, receive)
        event = await rt.service.chat(ident, body.get("text"))
        return 201, _json({"ok": True, "seq": event.seq})

    async def _typing(self, rt: Services, request: Request, receive: Receive) -> tuple[int, bytes]:
        ident, member = await self._acting(rt, request)
        body = await self._json(request, receive)
        await rt.service.typing(ident, body.get("is_typing"), member=member)
        return 200, _json({"ok": True})

    async def _choose(self, rt: Services, request: Request, receive: Receive) -> tuple[int, bytes]:
        ident, _ = await self._acting(rt, request)
        body = await self._json(request, receive)
        return 200, _json(await rt.service.choose(ident, body.get("option_id"), body.get("text")))

    # -- what they share with routes/common.py ---------------------------------------------------

    async def _acting(self, rt: Services, request: Request) -> tuple[Identity, Member]:
        """`routes.common.acting`: the caller's seat, then the action limit."""
        ident, member = await seat_of(rt, request.code, request.token, request.session, address=request.address)
        if not await rt.limiter.allow(ident.rate_key):
            raise RateLimited("too many actions; slow down", retry_after=1 / rt.settings.rate_limit_per_second)
        return ident, member

    async def _json(self, request: Request, receive: Receive) -> dict[str, Any]:
        """`routes.common.json_body`, with Quart's body limit and body timeout."""
        if request.content_length is not None and request.content_length > self._max_body:
            raise RequestEntityTooLarge()
        try:
            async with asyncio.timeout(self._body_timeout):  # no task of its own, unlike wait_for
                raw = await self._body(receive)
        except TimeoutError:
            raise RequestTimeout() from None
        return json_object(raw)

    async def _body(self, receive: Receive) -> bytes:
        data = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            data += message.get("body", b"")
            if len(data) > self._max_body:
                raise RequestEntityTooLarge()
            if not message.get("more_body", False):
                return bytes(data)

    def _request(self, rt: Services, code: str, action: str, scope: Scope) -> Request:
        authorization = length = None
        chunked = False
        cookies = []
        for name, value in scope.get("headers", ()):
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin1")
            elif name == b"cookie":
                cookies.append(value.decode("latin1"))
            elif name == b"content-length" and length is None:
                length = _length(value)
            elif name == b"transfer-encoding":
                chunked = True
        return Request(code, action, bearer(authorization or ""), self._cookie.load(cookies) if cookies else {},
                       None if chunked else length, rt.limits.address(scope), scope["method"], scope["path"])


class _Gone(Exception):
    """The client went before its body arrived: nobody to answer."""


def _length(value: bytes) -> int:
    """werkzeug's `content_length` (h11 lets only whole numbers through)."""
    text = value.strip()
    return int(text) if text.isdigit() else 0


def _json(value: Any) -> bytes:
    """Quart's `jsonify` (not in debug): compact, ASCII, the keys in their order, a newline."""
    return (json.dumps(value, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _error_body(error: ArcaneError) -> bytes:
    """The refusal's body as every transport renders it (arcane/transports.py `Refusal`)."""
    return Refusal(error).http()[2]


# routes/errors.py: the HTTP errors with a contract code answer in the error shape; any other
# (a body that never came: 408) is werkzeug's own page, as Quart sends it.
_HTTP_CODES = {413: ErrorCode.PAYLOAD_TOO_LARGE}


def _http_error(error: HTTPException) -> ArcaneError | tuple[int, bytes, Headers]:
    code = _HTTP_CODES.get(error.code or 500)
    if code is not None:
        return ArcaneError(code, error.description or error.name)
    page = error.get_response()
    head = [(k.lower().encode("latin1"), v.encode("latin1")) for k, v in page.headers.items()]
    return page.status_code, page.get_data(), head


async def respond(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
