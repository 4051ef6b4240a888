"""The fallback transports' routes, served by a bare ASGI handler in front of Quart.

`GET /api/games/<code>/events` (SSE) and `GET /api/games/<code>/poll` (long-poll) are
the routes a crowd of clients holds open or hits again and again. They answer exactly
as the Quart routes do (the same credentials, the same JSON errors), without Quart's
request and app contexts, its tasks and its parsed request objects: an open stream
costs a third of the memory, and a poll a fraction of the CPU.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from arcane.errors import ArcaneError, ErrorCode
from arcane.fallback import actions as http_actions
from arcane.fallback import longpoll, sse
from arcane.fallback.asgi import ASGIApp, Receive, Request, Scope, Send, refuse, request_of
from arcane.game.records import Identity, Member
from arcane.identity import bearer, cookie_session, seat_of
from arcane.transports import Services

log = logging.getLogger(__name__)

PATH = re.compile(r"/api/games/([^/]+)/(events|poll)")


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
        rt = self._services
        serve = sse.serve if match.group(2) == "events" else longpoll.serve
        try:
            await serve(rt, self._caller, match.group(1), request_of(scope, rt.limits.address(scope)), receive, send)
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
