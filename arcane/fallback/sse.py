"""Server-Sent Events: `GET /api/games/<code>/events`, one open response per client.

Logged events are `id: <seq>` / `event: <name>` / `data: <json>`; ephemeral ones
carry no `id`, so the browser's Last-Event-ID stays on the last logged event.

A stream is served by a bare ASGI handler placed in front of Quart (`SseRoute`). It
answers exactly as the Quart routes do (the same credentials, the same JSON errors),
but an open stream holds no request and app contexts, no Quart tasks and no parsed
request: a stream costs a third of what it did through Quart, and there may be
thousands of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from arcane.errors import ArcaneError, ErrorCode
from arcane.events import Event
from arcane.fallback.following import follow, parse_cursor
from arcane.game.records import Identity, Member
from arcane.game.service import normalize_code
from arcane.identity import cookie_session, identity_for

if TYPE_CHECKING:
    from arcane.runtime import Runtime

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = re.compile(r"/api/games/([^/]+)/events")
HEARTBEAT = b": heartbeat\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
]


class SseRoute:
    """`GET /api/games/<code>/events` itself; every other request goes on to `app` (Quart)."""

    def __init__(self, app: ASGIApp, runtime: Callable[[], Runtime],
                 load_session: Callable[[str], dict[str, Any] | None]) -> None:
        self.app = app
        self._runtime = runtime
        self._load_session = load_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        rt = self._runtime()
        try:
            ident, member, after = await self._request(rt, match.group(1), scope)
        except ArcaneError as error:
            await _refuse(send, error)
            return
        except Exception:
            log.exception("unhandled error on GET %s", scope.get("path"))
            await _refuse(send, ArcaneError(ErrorCode.INTERNAL_ERROR, "something went wrong on our side"))
            return
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await stream(rt, ident, member, after, receive, send)

    async def _request(self, rt: Runtime, code: str, scope: Scope) -> tuple[Identity, Member, int | None]:
        """The caller and the cursor; the parsed request is not kept for the stream's life."""
        headers = _headers(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        ident, member = await self._caller(rt, code, headers, query)
        return ident, member, resume_point(headers, query)

    async def _caller(self, rt: Runtime, code: str, headers: dict[str, str],
                      query: dict[str, list[str]]) -> tuple[Identity, Member]:
        """`routes.common.caller`, from the raw request: token (header, then ?token=), or cookie."""
        code = normalize_code(code)
        token = _bearer(headers.get("authorization", "")) or (query.get("token") or [None])[0] or None
        session = cookie_session(headers.get("cookie", ""), self._load_session)
        try:
            ident = identity_for(code, token, session, rt.tokens)
        except ArcaneError:
            await rt.service.require_game(code)  # INVALID_GAME before any complaint about the caller
            raise
        return ident, await rt.service.member(ident)


def resume_point(headers: dict[str, str], query: dict[str, list[str]]) -> int | None:
    """The client's cursor; the header wins, since the browser updates it on every reconnect."""
    header = headers.get("last-event-id")
    if header:
        return parse_cursor(header)
    return parse_cursor((query.get("last_event_id") or [None])[0])


async def stream(rt: Runtime, ident: Identity, member: Member, after: int | None,
                 receive: Receive, send: Send) -> None:
    """The whole life of one stream; everything it opens is released in `finally`.

    It ends when the client goes (hypercorn reports the disconnect to `receive`), when
    the feed closes (fell `stream_buffer` events behind, or shutdown: the client
    resumes from its id), or when sending fails.
    """
    conn_id = f"sse:{secrets.token_hex(8)}"

    async def body(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    async with follow(rt, ident) as feed:
        gone = asyncio.ensure_future(_disconnected(receive))
        gone.add_done_callback(lambda _: feed.close())
        if member.is_player:
            rt.presence.connect(ident.game_code, ident.player_id, member.name, conn_id)
        try:
            await body(f"retry: {rt.settings.sse_retry_ms}\n\n".encode())
            start = await feed.start(rt.store, rt.service, after)
            if not start.recovered:
                await body(frame(start.sync_event(ident.game_code), seq=start.seq))
            elif start.events:
                await body(frames(start.events))
            del start  # the catch-up is sent: an open stream keeps none of it
            while True:
                event = await feed.next(timeout=rt.settings.sse_heartbeat)
                if event is not None:
                    await body(frames([event, *await feed.ready()]))
                elif feed.closed:
                    break
                else:
                    await body(HEARTBEAT)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            gone.cancel()
            if member.is_player:
                rt.presence.disconnect(ident.game_code, ident.player_id, conn_id)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def frame(event: Event, *, seq: int | None = None) -> bytes:
    seq = event.seq if seq is None else seq
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {event.name}\ndata: {event.data_json()}\n\n".encode()


def frames(events: Iterable[Event]) -> bytes:
    return b"".join(frame(event) for event in events)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", ())}


def _bearer(header: str) -> str | None:
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


async def _refuse(send: Send, error: ArcaneError) -> None:
    """The JSON error body every route answers with (`routes.errors.error_response`)."""
    body = json.dumps({"error": error.to_dict()}).encode()
    await send({"type": "http.response.start", "status": error.status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
