"""The raw ASGI pieces the fallback transports share: the request they read, the answers
they write, and the watch for a client that goes. No Quart here: arcane/fallback/bare.py routes
to them in front of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from arcane.errors import ArcaneError
from arcane.game.records import Identity, Member
from arcane.queues import SlimQueue
from arcane.transports import Refusal, Services

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

@dataclass(frozen=True, slots=True)
class Request:
    """What the fallback routes read of a request; not kept once they have read it."""

    headers: dict[str, str]
    query: dict[str, list[str]]
    address: str  # the client's, through trusted proxies only (arcane/peers.py)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


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


def request_of(scope: Scope, address: str) -> Request:
    headers = {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", ())}
    return Request(headers, parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True),
                   address)
