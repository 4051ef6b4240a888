"""The official JavaScript client (npm `socket.io-client` 4.x) plays on our server."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.support import LiveServer, Player, require_tool
from tests.logs import events_after

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = ROOT / ".cache" / "node-socket.io-client"
SCRIPT = Path(__file__).resolve().parent / "js" / "interop.mjs"


def install_client() -> Path:
    npm = require_tool("npm")
    if not (CLIENT_DIR / "node_modules" / "socket.io-client").is_dir():
        CLIENT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CLIENT_DIR), "socket.io-client@4"],
            check=True, capture_output=True, timeout=300,
        )
    return CLIENT_DIR / "node_modules"


async def test_the_official_javascript_client_joins_and_receives_events(server: LiveServer) -> None:
    node = require_tool("node")
    modules = install_client()
    ann = await Player.create(server, "Ann")
    bram = await Player.join(server, ann.game_code, "Bram")
    proc = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), server.url, bram.token, bram.game_code, "hello from python",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"SOCKET_IO_CLIENT_DIR": str(modules), "PATH": "/usr/bin:/bin"},
    )
    assert proc.stdout is not None
    lines: list[dict[str, object]] = []
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), 20)
        if not raw:
            break
        lines.append(json.loads(raw))
        if lines[-1]["kind"] == "ack" and lines[-1]["name"] == "chat_message":
            assert (await ann.post("/chat", {"text": "hello from python"})).status_code == 201
    assert await asyncio.wait_for(proc.wait(), 20) == 0, (await proc.stderr.read()).decode()  # type: ignore[union-attr]

    join = next(line for line in lines if line["name"] == "join_game_room")
    assert join["data"] == {"ok": True, "seq": 2, "recovered": False, "epoch": join["data"]["epoch"]}
    assert isinstance(join["data"]["epoch"], str) and len(join["data"]["epoch"]) == 8
    events = [(line["name"], line["data"]) for line in lines if line["kind"] == "event"]
    assert events[0][0] == "reconnect_sync"
    chats = [data["text"] for name, data in events if name == "chat_message"]  # type: ignore[index]
    assert chats == ["hello from node", "hello from python"]
    logged = await events_after(server.runtime.services.store, ann.game_code, 2, bram.player_id)
    assert [e.seq for e in logged if e.name == "chat_message"] == [
        data["seq"] for name, data in events if name == "chat_message"  # type: ignore[index]
    ]
    await ann.close()
    await bram.close()
