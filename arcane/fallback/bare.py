"""The fallback transports' routes, served by a bare ASGI handler in front of Quart.

`GET /api/games/<code>/events` (SSE) and `GET /api/games/<code>/poll` (long-poll) are
the routes a crowd of clients holds open or hits again and again. They answer exactly
as the Quart routes do (the same credentials, the same JSON errors), without Quart's
request and app contexts, its tasks and its parsed request objects: an open stream
costs a third of the memory, and a poll a fraction of the CPU.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from arcane.errors import ArcaneError, ErrorCode
from arcane.fallback import actions as http_actions
from arcane.game.records import Identity, Member
from arcane.identity import bearer, cookie_session, seat_of
from arcane.limits import retry_after_header
from arcane.queues import SlimQueue
from arcane.serving.h11 import respond
from arcane.transports import Refusal, Services

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = re.compile(r"/api/games/([^/]+)/(events|poll)")


@dataclass(frozen=True, slots=True)
class Request:
    """What the fallback routes read of a request; not kept once they have read it."""

    headers: dict[str, str]
    query: dict[str, list[str]]
    address: str  # the client's, through trusted proxies only (arcane/peers.py)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class FallbackRoutes:
    """SSE and long-poll themselves, and the hot HTTP actions (`actions`, arcane/fallback/actions.py);
    every other request goes on to `app` (Quart)."""

    def __init__(self, app: ASGIApp, services: Services,
                 load_session: Callable[[str], dict[str, Any] | None], *,
                 actions: http_actions.Actions | None = None) -> None:
        self.app = app
        self._services = services
        self._load_session = load_session
        self.actions = actions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.actions is not None and scope["type"] == "http" and scope["method"] == "POST":
            action = http_actions.PATH.fullmatch(scope.get("path", ""))
            if action is not None:
                await self.actions.serve(action[1], action[2], scope, receive, send)
                return
        match = PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            error = ArcaneError(ErrorCode.METHOD_NOT_ALLOWED, "The method is not allowed for the requested URL.")
            await refuse(send, error, [(b"allow", b"GET")])
            return
        from arcane.fallback import longpoll, sse

        rt = self._services
        serve = sse.serve if match.group(2) == "events" else longpoll.serve
        try:
            await serve(rt, self._caller, match.group(1), _request(scope, rt.limits.address(scope)), receive, send)
        except ArcaneError as error:
            await refuse(send, error)
        except Exception:
            log.exception("unhandled error on GET %s", scope.get("path"))
            await refuse(send, ArcaneError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side"))

    async def _caller(self, rt: Services, code: str, request: Request) -> tuple[Identity, Member]:
        """`routes.common.caller(allow_query_token=True)`, from the raw request."""
        token = bearer(request.headers.get("authorization", "")) or request.arg("token") or None
        session = cookie_session(request.headers.get("cookie", ""), self._load_session)
        return await seat_of(rt, code, token, session, address=request.address)


Caller = Callable[[Services, str, Request], Awaitable[tuple[Identity, Member]]]


async def refuse(send: Send, error: ArcaneError, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """The refusal as the HTTP API answers it (`Refusal.http`), before any stream has begun."""
    status, head, body = Refusal(error).http()
    await _respond(send, status, [*head, (b"content-length", str(len(body)).encode()), *headers], body)


async def respond_json(send: Send, status: int, body: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    data = body.encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]
    await _respond(send, status, head, data)


async def _respond(send: Send, status: int, head: list[tuple[bytes, bytes]], data: bytes) -> None:
    if await respond(send, status, head, data):  # in one write, under hypercorn
        return
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": data})


def on_disconnect(receive: Receive, gone: Callable[[], None]) -> Callable[[], None]:
    """Have `gone()` called when the client goes (hypercorn reports it to `receive`); returns
    the call that stops watching.

    Under hypercorn, `receive` is our SlimQueue's `get` (arcane/serving/hypercorn.py): the watch is a
    callback on it, not a task per open stream. Elsewhere, a task waits on `receive`.
    """
    queue = getattr(receive, "__self__", None)
    if isinstance(queue, SlimQueue):
        def heard() -> None:
            while not queue.empty():
                if queue.get_nowait()["type"] == "http.disconnect":
                    gone()

        heard()  # the request's own (empty) body is already there

        def stop() -> None:
            queue.on_put = None

        queue.on_put = heard
        return stop
    task = asyncio.ensure_future(_disconnected(receive))
    task.add_done_callback(lambda _: gone())

    def stop_waiting() -> None:
        task.cancel()

    return stop_waiting


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _request(scope: Scope, address: str) -> Request:
    headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", ())}
    return Request(headers, parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True),
                   address)
