"""Fallback test clients: an EventSource over httpx streaming, and a long-poller.

Both speak only HTTP to a LiveServer, the way a browser without websockets would,
and record what they receive so tests can compare transports seq by seq.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import LiveServer, Player
from tests.logs import events_after

STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: Any
    id: str | None  # the frame's own `id:` field; None when the frame had none

    @property
    def seq(self) -> int | None:
        """The seq of a logged event, as the contract puts it in the payload."""
        if self.event == "reconnect_sync" or not isinstance(self.data, dict):
            return None
        seq = self.data.get("seq")
        return seq if isinstance(seq, int) else None


@dataclass
class SseParser:
    """The event-stream grammar of the HTML spec, one line at a time."""

    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        frame_id, self._id = self._id, None
        event, self._event = self._event or "message", ""
        data, self._data = self._data, []
        if not data:
            return None
        return SseEvent(event, json.loads("\n".join(data)), frame_id)


class SseStream:
    """One EventSource connection: opened once, never reconnected."""

    def __init__(
        self,
        server: LiveServer,
        game_code: str,
        *,
        token: str | None = None,
        bearer: bool = True,
        last_event_id: int | str | None = None,
        params: dict[str, str] | None = None,
        cookies: httpx.Cookies | None = None,
        on_event: Callable[[SseEvent], None] | None = None,
    ) -> None:
        self.path = f"/api/games/{game_code}/events"
        self.params = dict(params or {})
        self.headers: dict[str, str] = {"Accept": "text/event-stream"}
        if token is not None and bearer:
            self.headers["Authorization"] = f"Bearer {token}"
        elif token is not None:
            self.params["token"] = token
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = str(last_event_id)
        self.client = httpx.AsyncClient(base_url=server.url, timeout=STREAM_TIMEOUT, cookies=cookies)
        self.parser = SseParser()
        self.on_event = on_event
        self.events: list[SseEvent] = []
        self.response: httpx.Response | None = None
        self.ended = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> httpx.Response:
        request = self.client.build_request("GET", self.path, params=self.params, headers=self.headers)
        self.response = await self.client.send(request, stream=True)
        if self.response.status_code == 200:
            self._reader = asyncio.create_task(self._read())
        else:
            await self.response.aread()
            self.ended.set()
        return self.response

    async def _read(self) -> None:
        assert self.response is not None
        try:
            async for line in self.response.aiter_lines():
                event = self.parser.line(line)
                if event is not None:
                    self.events.append(event)
                    if self.on_event is not None:
                        self.on_event(event)
                self._changed.set()
        except (httpx.TransportError, httpx.StreamError):
            pass  # the server went away: the same as the stream ending
        finally:
            self.ended.set()
            self._changed.set()

    @property
    def heartbeats(self) -> int:
        return self.parser.comments.count("heartbeat")

    def logged(self) -> list[tuple[int, str]]:
        return [(e.seq, e.event) for e in self.events if e.seq is not None]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async def until() -> None:
            while not condition():
                if self.ended.is_set():
                    raise AssertionError(f"the stream ended first; received {[e.event for e in self.events]}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    async def wait_event(self, name: str, timeout: float = 10.0) -> SseEvent:
        await self.wait_for(lambda: any(e.event == name for e in self.events), timeout)
        return next(e for e in self.events if e.event == name)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.response is not None:
            await self.response.aclose()
        await self.client.aclose()


async def sse_for(player: Player, **kwargs: Any) -> SseStream:
    stream = SseStream(player.server, player.game_code, token=player.token, **kwargs)
    response = await stream.open()
    assert response.status_code == 200, response.text
    return stream


class SseFollower:
    """A browser's EventSource: whenever the stream ends it reconnects with Last-Event-ID."""

    def __init__(self, player: Player, *, last_event_id: int | None = None) -> None:
        self.player = player
        self.last_event_id: str | None = None if last_event_id is None else str(last_event_id)
        self.events: list[SseEvent] = []
        self.connections = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            stream = SseStream(self.player.server, self.player.game_code, token=self.player.token,
                               last_event_id=self.last_event_id, on_event=self._received)
            try:
                if (await stream.open()).status_code == 200:
                    self.connections += 1
                    await stream.ended.wait()
            except httpx.TransportError:
                pass  # the server is restarting: try again, as EventSource does
            finally:
                await stream.close()
            await asyncio.sleep(0.05)

    def _received(self, event: SseEvent) -> None:
        self.events.append(event)
        if event.id is not None:
            self.last_event_id = event.id
        self._changed.set()

    def logged(self) -> list[tuple[int, str]]:
        return [(e.seq, e.event) for e in self.events if e.seq is not None]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        await _wait(self._changed, condition, timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Unreachable(Exception):
    """A gateway's answer for a server that is not there (502, 503, 504): poll again."""


class Poller:
    """A long-polling client: each answer's `last_seq` is the next request's `after`."""

    def __init__(self, player: Player, *, after: int | None = None, timeout: float = 5.0,
                 client_id: str | None = None) -> None:
        self.player = player
        self.after = after
        self.timeout = timeout
        self.client_id = client_id
        self.items: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0 + timeout))
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def request(self, **params: Any) -> httpx.Response:
        # The server's address is read per request: behind a load balancer it may change.
        return await self.client.get(
            f"{self.player.server.url}/api/games/{self.player.game_code}/poll", params=params,
            headers={"Authorization": f"Bearer {self.player.token}"},
        )

    async def poll(self) -> dict[str, Any]:
        """One poll from the current cursor; its events are recorded and the cursor advances."""
        params: dict[str, Any] = {"timeout": self.timeout}
        if self.after is not None:
            params["after"] = self.after
        if self.client_id is not None:
            params["client_id"] = self.client_id
        response = await self.request(**params)
        if response.status_code in {502, 503, 504}:
            raise Unreachable(response.status_code)  # a balancer with no live host behind it, for now
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        self.answers.append(body)
        self.items.extend(body["events"])
        self.after = body["last_seq"]
        self._changed.set()
        return body

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except (httpx.TransportError, Unreachable):
                await asyncio.sleep(0.05)  # the server is restarting

    def logged(self) -> list[tuple[int, str]]:
        return [(i["seq"], i["event"]) for i in self.items
                if i["seq"] is not None and i["event"] != "reconnect_sync"]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        await _wait(self._changed, condition, timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()


async def _wait(changed: asyncio.Event, condition: Callable[[], bool], timeout: float) -> None:
    """Wait (at most `timeout`) until `condition` holds, re-checking whenever `changed` fires."""

    async def until() -> None:
        while not condition():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(until(), timeout)


async def visible_log(server: LiveServer, player: Player) -> list[tuple[int, str]]:
    """The truth: every logged event `player` may see, from the store."""
    events = await events_after(server.runtime.services.store, player.game_code, 0, player.player_id)
    return [(e.seq, e.name) for e in events if e.seq is not None]


async def play_scripted_game(party: list[Player]) -> None:
    """Start, interrogate, then every turn: a chat line and everyone picks the first option."""
    response = await party[0].post("/start")
    assert response.status_code == 200, response.text
    for player in party:
        await player.answer_all()
    while True:
        view = await party[0].view()
        if view["phase"] != "playing":
            assert view["phase"] == "finished", view
            return
        assert view["scenario"] is not None, view
        response = await party[-1].post("/chat", {"text": f"turn {view['turn_number']}: trust me"})
        assert response.status_code == 201, response.text
        for player in party:
            response = await player.post("/choices", {"option_id": view["scenario"]["options"][0]["id"]})
            assert response.status_code == 200, response.text
