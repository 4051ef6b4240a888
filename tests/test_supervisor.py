"""Under a supervisor (deploy/arcane.service, Restart=always), a server killed with -9 comes back
and loses nothing: every acknowledged chat is in the log, and clients resume from their cursor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx

from arcane.store import SqliteStore
from tests.cluster import RoamingSocket
from tests.supervision import Supervisor, Unit
from tests.support import Player, http_client
from tests.logs import events_after

CHATS_BETWEEN_CRASHES = 40


def test_the_unit_restarts_always_as_a_dedicated_user_on_a_read_only_system() -> None:
    unit = Unit.read()
    assert unit.one("Restart") == "always"
    assert unit.one("User") == "arcane" and unit.one("DynamicUser") == "yes"
    assert unit.one("ProtectSystem") == "strict" and unit.one("NoNewPrivileges") == "yes"
    assert unit.one("StateDirectory") == "arcane"
    assert unit.argv[0].endswith("/hypercorn") and unit.argv[1] == "arcane:app" and "--bind" in unit.argv
    assert unit.argv[unit.argv.index("--worker-class") + 1] == "uvloop"  # hypercorn's own way to choose it
    env = unit.environment
    assert env["ARCANE_DATABASE"].startswith("/var/lib/arcane/")
    assert env["ARCANE_SECRET_KEY_FILE"].startswith("/var/lib/arcane/")


async def chat_until_acknowledged(ann: Player, count: int, acknowledged: list[str]) -> None:
    """Send chats until `count` more are acknowledged (201); refused or lost sends are retried
    with a new text, so only acknowledged texts are promised to be in the log."""
    target = len(acknowledged) + count
    attempt = 0
    while len(acknowledged) < target:
        attempt += 1
        text = f"line {len(acknowledged)} try {attempt}"
        try:
            response = await ann.post("/chat", {"text": text})
        except httpx.TransportError:
            await asyncio.sleep(0.05)
            continue
        if response.status_code == 201:
            acknowledged.append(text)
        else:
            assert response.status_code in {429, 503}, response.text
            await asyncio.sleep(0.05)


async def logged_chats(database: Path, code: str) -> list[tuple[int, str]]:
    store = SqliteStore(database)
    await store.open()
    try:
        events = await events_after(store, code, 0, None)
    finally:
        await store.close()
    return [(e.seq, e.payload["text"]) for e in events if e.name == "chat_message" and e.seq is not None]


async def test_a_server_killed_with_minus_9_is_restarted_and_loses_no_acknowledged_chat(tmp_path: Path) -> None:
    supervisor = Supervisor(Unit.read(), tmp_path, overrides={
        "ARCANE_RATE_LIMIT_PER_SECOND": "1000", "ARCANE_RATE_LIMIT_BURST": "1000",
        "ARCANE_PRESENCE_GRACE": "0.3",
    })
    await supervisor.start()
    node = SimpleNamespace(url=supervisor.url)
    clients: list[Player] = []
    watcher: RoamingSocket | None = None
    try:
        ann = await Player.create(node, "Ann")  # type: ignore[arg-type]
        bob = await Player.join(node, ann.game_code, "Bob")  # type: ignore[arg-type]
        clients += [ann, bob]
        watcher = RoamingSocket(bob, [node])
        await watcher.start()
        acknowledged: list[str] = []

        await chat_until_acknowledged(ann, CHATS_BETWEEN_CRASHES, acknowledged)
        first = supervisor.proc.pid if supervisor.proc else 0
        supervisor.kill_worker()  # hypercorn's parent exits when its worker dies ...
        second = await supervisor.wait_serving(other_than=first)  # ... and the supervisor starts it again

        await chat_until_acknowledged(ann, CHATS_BETWEEN_CRASHES, acknowledged)
        supervisor.kill_all()  # the whole server at once, mid-traffic
        chatting = asyncio.create_task(chat_until_acknowledged(ann, CHATS_BETWEEN_CRASHES, acknowledged))
        await supervisor.wait_serving(other_than=second)
        await asyncio.wait_for(chatting, 60)
        assert supervisor.starts == 3

        truth = await logged_chats(tmp_path / "arcane.db", ann.game_code)
        assert set(acknowledged) <= {text for _, text in truth}
        assert len(acknowledged) == 3 * CHATS_BETWEEN_CRASHES

        # Bob's tab reconnected after each crash from the last seq it had seen, and was replayed
        # what it missed: every event exactly once, in order, the same as the log's.
        store = SqliteStore(tmp_path / "arcane.db")
        await store.open()
        try:
            events = await events_after(store, bob.game_code, 0, bob.player_id)
        finally:
            await store.close()
        expected = [(e.seq, e.name) for e in events if e.seq is not None]
        await watcher.wait_for(lambda: watcher.logged()[-1:] == expected[-1:], timeout=30)
        assert watcher.logged() == expected
        assert len(watcher.joins) >= 3 and all(join.get("ok") for join in watcher.joins)
        assert all(join["recovered"] for join in watcher.joins[1:])  # a replay, never a snapshot

        async with http_client(supervisor.url) as client:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        if watcher is not None:
            await watcher.stop()
        for player in clients:
            await player.close()
        await supervisor.stop()
