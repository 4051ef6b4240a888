"""A player drops and comes back: every missed event, in order, once; or one honest snapshot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.sockets import SocketClient, socket_for
from tests.support import LiveServer, seat_party, serving
from tests.logs import events_after, log_bounds


def chats(client: SocketClient) -> list[str]:
    return [d["text"] for e, d in client.received if e == "chat_message"]


async def test_reconnect_with_last_seq_replays_what_was_missed_then_goes_live(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    tab = await socket_for(bram)
    await ann.post("/chat", {"text": "one"})
    await tab.wait_event("chat_message", text="one")
    last_seen = max(s for s, _ in tab.logged())
    await tab.close()

    for text in ("two", "three", "four"):
        assert (await ann.post("/chat", {"text": text})).status_code == 201
    tab = await socket_for(bram, last_seq=last_seen)
    assert tab.join_ack["recovered"] is True
    await tab.wait_event("chat_message", text="four")
    await ann.post("/chat", {"text": "five"})
    await tab.wait_event("chat_message", text="five")

    assert chats(tab) == ["two", "three", "four", "five"]
    seqs = [s for s, _ in tab.logged()]
    assert seqs == sorted(set(seqs)) and min(seqs) == last_seen + 1
    assert "reconnect_sync" not in tab.names()
    await tab.close()
    await ann.close()
    await bram.close()


async def test_reconnect_across_a_server_restart_misses_nothing(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        tab = await socket_for(bram)
        await ann.post("/chat", {"text": "before"})
        await tab.wait_event("chat_message", text="before")
        last_seen = max(s for s, _ in tab.logged())

        await server.restart()
        assert not tab.sio.connected or await _disconnected(tab)
        for text in ("while away", "after restart"):
            assert (await ann.post("/chat", {"text": text})).status_code == 201
        back = await socket_for(bram, last_seq=last_seen)
        assert back.join_ack["recovered"] is True
        await back.wait_event("chat_message", text="after restart")
        assert chats(back) == ["while away", "after restart"]
        await back.close()
        await ann.close()
        await bram.close()


async def _disconnected(client: SocketClient) -> bool:
    import asyncio

    for _ in range(200):
        if not client.sio.connected:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_cursor_older_than_the_log_or_missing_gets_one_snapshot(tmp_path: Path) -> None:
    async with serving(tmp_path, log_retention=5) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        for n in range(12):
            await ann.post("/chat", {"text": f"message {n}"})
        floor, last = await log_bounds(server.runtime.services.store, ann.game_code)  # type: ignore[misc]
        assert floor > 1

        for cursor in (1, None, last + 100):
            tab = await socket_for(bram, last_seq=cursor)
            assert tab.join_ack == {"ok": True, "seq": last, "recovered": False, "epoch": tab.join_ack["epoch"]}
            syncs = [d for e, d in tab.received if e == "reconnect_sync"]
            assert len(syncs) == 1
            assert syncs[0]["recovered"] is False and syncs[0]["seq"] == last
            assert syncs[0]["you"]["player_id"] == bram.player_id
            assert "chat_message" not in tab.names()
            await tab.close()

        tab = await socket_for(bram, last_seq=floor)
        assert tab.join_ack["recovered"] is True
        await tab.wait_event("chat_message", text="message 11")
        assert len(chats(tab)) == last - floor
        await tab.close()
        await ann.close()
        await bram.close()


async def test_events_committed_during_the_replay_are_neither_lost_nor_doubled(tmp_path: Path) -> None:
    async with serving(tmp_path, rate_limit_per_second=1000.0, rate_limit_burst=1000) as server:
        await replay_races_the_writer(server)


async def replay_races_the_writer(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    for n in range(30):
        await ann.post("/chat", {"text": f"early {n}"})
    async def chatter(sent: list[str]) -> None:
        for text in sent:
            assert (await ann.post("/chat", {"text": text})).status_code == 201

    for attempt in range(3):
        sent = [f"during {attempt}.{n}" for n in range(40)]
        writer = asyncio.create_task(chatter(sent))
        await asyncio.sleep(0.005 * attempt)
        tab = await socket_for(bram, last_seq=2)
        await writer
        await tab.wait_event("chat_message", text=sent[-1])
        seqs = [s for s, _ in tab.logged()]
        assert seqs == sorted(set(seqs)), "a duplicate or out-of-order event"
        visible = await events_after(server.runtime.services.store, ann.game_code, 2, bram.player_id)
        assert seqs == [e.seq for e in visible]
        await tab.close()
    await ann.close()
    await bram.close()
