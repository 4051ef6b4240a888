"""Each game's stream has an epoch that travels with the cursor (the join ack, the SSE
stream's `epoch` parameter, the poll answer, every snapshot): a cursor of another epoch
gets a snapshot, never a replay; after a restore, `python -m arcane new-epoch` makes every
older cursor one of another epoch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.sockets import SocketClient
from tests.streams import sse_for
from tests.support import LiveServer, Player, seat_party, serving, test_settings

ROOT = Path(__file__).resolve().parent.parent


async def chatted(server: LiveServer) -> tuple[list[Player], str]:
    """Two seats, three chat lines: the stream's epoch, from the view."""
    party = await seat_party(server, ["Aria", "Brom"])
    for n in range(3):
        assert (await party[n % 2].post("/chat", {"text": f"line {n}"})).status_code == 201
    epoch = (await party[0].view())["epoch"]
    assert isinstance(epoch, str) and len(epoch) == 8
    return party, epoch


async def poll(player: Player, **params: Any) -> dict[str, Any]:
    response = await player.get("/poll", params={"timeout": 0, **params})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_every_transport_replays_a_cursor_of_its_epoch_and_snapshots_one_of_another(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        (aria, brom), epoch = await chatted(server)
        other = "0badcafe" if epoch != "0badcafe" else "feedf00d"

        # Long-poll: the answer carries the epoch; the right one replays from the cursor.
        same = await poll(brom, after=2, epoch=epoch)
        assert same["recovered"] is True and same["epoch"] == epoch
        assert [e["data"]["text"] for e in same["events"] if e["event"] == "chat_message"] == ["line 0", "line 1", "line 2"]
        assert "reconnect_sync" not in [e["event"] for e in same["events"]]
        moved = await poll(brom, after=2, epoch=other)
        assert moved["recovered"] is False and moved["epoch"] == epoch
        assert [e["event"] for e in moved["events"] if e["event"] != "presence_update"] == ["reconnect_sync"]
        assert moved["events"][0]["data"]["epoch"] == epoch and moved["events"][0]["data"]["recovered"] is False
        unknown = await poll(brom, after=2)  # a client that never learnt one: as before
        assert unknown["recovered"] is True and unknown["epoch"] == epoch

        # SSE: `?epoch=` with the cursor.
        stream = await sse_for(brom, last_event_id=2, params={"epoch": epoch})
        await stream.wait_for(lambda: sum(e.event == "chat_message" for e in stream.events) == 3)
        assert [e.data["text"] for e in stream.events if e.event == "chat_message"] == ["line 0", "line 1", "line 2"]
        assert "reconnect_sync" not in [e.event for e in stream.events]
        await stream.close()
        stream = await sse_for(brom, last_event_id=2, params={"epoch": other})
        first = await stream.wait_event("reconnect_sync")
        assert first.data["recovered"] is False and first.data["epoch"] == epoch
        assert [e.event for e in stream.events if e.event == "chat_message"] == []
        await stream.close()

        # Socket.IO: the join ack.
        for sent, recovered in ((epoch, True), (other, False)):
            client = SocketClient(server)
            await client.connect(token=brom.token)
            ack = await client.call("join_game_room", {"game_code": brom.game_code, "last_seq": 2, "epoch": sent})
            assert ack["ok"] is True and ack["recovered"] is recovered and ack["epoch"] == epoch, ack
            if recovered:
                await client.wait_for(lambda got: sum(e == "chat_message" for e, _ in got) == 3)
            else:
                sync = await client.wait_event("reconnect_sync")
                assert sync["epoch"] == epoch and not any(e == "chat_message" for e, _ in client.received)
            await client.close()
        for player in (aria, brom):
            await player.close()


async def test_an_epoch_too_long_is_refused_on_every_transport(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        (aria, _), _ = await chatted(server)
        long = "e" * 65
        response = await aria.get("/poll", params={"after": 1, "epoch": long, "timeout": 0})
        assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"
        response = await aria.get("/events", params={"last_event_id": 1, "epoch": long})
        assert response.status_code == 400 and response.json()["error"]["code"] == "VALIDATION_ERROR"
        client = SocketClient(server)
        await client.connect(token=aria.token)
        ack = await client.call("join_game_room", {"game_code": aria.game_code, "last_seq": 1, "epoch": long})
        assert ack["error"]["code"] == "VALIDATION_ERROR", ack
        ack = await client.call("join_game_room", {"game_code": aria.game_code, "last_seq": 1, "epoch": 7})
        assert ack["error"]["code"] == "VALIDATION_ERROR", ack
        await client.close()


async def test_new_epoch_after_a_restore_turns_every_older_cursor_into_a_snapshot(tmp_path: Path) -> None:
    settings = test_settings(tmp_path)
    server = LiveServer(settings)
    await server.start()
    try:
        (aria, brom), epoch = await chatted(server)
        await server.stop()
        database = settings.database
        done = subprocess.run([sys.executable, "-m", "arcane", "new-epoch"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env=os.environ | {"ARCANE_DATABASE": str(database), "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0 and "new epochs for 1 games" in done.stdout, done.stderr
        await server.start()
        renewed = (await brom.view())["epoch"]
        assert renewed != epoch and len(renewed) == 8
        old = await poll(brom, after=2, epoch=epoch)
        assert old["recovered"] is False and old["epoch"] == renewed
        assert [e["event"] for e in old["events"] if e["seq"] is not None] == ["reconnect_sync"]
        again = await poll(brom, after=old["last_seq"], epoch=renewed)
        # Nothing logged since: only ephemeral news (a presence_update) may come.
        assert again["recovered"] is True and [e for e in again["events"] if e["seq"] is not None] == []
        for player in (aria, brom):
            await player.close()
    finally:
        await server.stop()
        server.close()
