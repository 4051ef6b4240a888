"""Frames written straight to the websocket keep every guarantee of Engine.IO's queue."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from engineio import packet as eio_packet

from arcane.realtime.frames import text_frame
from arcane.serving.engineio import SocketQueue
from tests.rawws import RawSocketIO
from tests.sockets import SocketClient, socket_for
from tests.logs import log_bounds
from tests.support import LiveServer, needs_fast_paths, seat_party, serving, sockets_gone

FLOOD = {"rate_limit_per_second": 100_000.0, "rate_limit_burst": 100_000}


def only_queue(server: LiveServer) -> SocketQueue:
    (socket,) = server.runtime.sio.eio.sockets.values()
    assert isinstance(socket.queue, SocketQueue)
    return socket.queue


def queued_events(queue: SocketQueue) -> int:
    """MESSAGE packets waiting in the queue; not the CLOSE and the writer's end that follow a cut."""
    return sum(1 for pkt in queue._items or () if pkt is not None and pkt.packet_type == eio_packet.MESSAGE)


def logged_seqs(received: list[tuple[str, Any]]) -> list[int]:
    return [d["seq"] for e, d in received if isinstance(d, dict) and "seq" in d]


@needs_fast_paths('websocket_direct')
async def test_a_client_that_stops_reading_gets_everything_in_order_when_it_reads_again(tmp_path: Path) -> None:
    async with serving(tmp_path, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, bram.token)
        ack_id = await raw.call("join_game_room", {"game_code": bram.game_code, "last_seq": 0})
        # The join ack goes out before the catch-up of the events already logged.
        assert (await raw.message()).startswith(f"43{ack_id}[")
        queue = only_queue(server)
        assert queue.ws is not None and queue.ws.write(b"") is True  # the direct path is in use

        # Bram stops reading. Big chats (each dragon is 12 bytes of JSON) fill the socket
        # buffers until the server has to queue for him.
        dragons = "\U0001F409" * 490
        sent = 0
        while not (queue.qsize() or queue.taken) and sent < 3000:
            assert (await ann.post("/chat", {"text": f"{sent:05d}{dragons}"})).status_code == 201
            sent += 1
        assert queue.qsize() or queue.taken, "the server never had to queue for the slow client"

        async def more(first: int) -> None:  # and more, while he catches up slowly
            for i in range(first, first + 300):
                assert (await ann.post("/chat", {"text": f"{i:05d}{dragons[:i % 50]}"})).status_code == 201

        poster = asyncio.create_task(more(sent))
        sent += 300
        received: list[tuple[str, Any]] = []
        while len([1 for e, _ in received if e == "chat_message"]) < sent:
            packet = await asyncio.wait_for(raw.message(), 10)
            assert packet.startswith("42"), packet
            received.append(tuple(json.loads(packet[2:])))  # type: ignore[arg-type]
            await asyncio.sleep(0.001 if len(received) % 3 else 0)
        await poster
        texts = [d["text"][:5] for e, d in received if e == "chat_message"]
        assert texts == [f"{i:05d}" for i in range(sent)], [(i, t) for i, t in enumerate(texts) if t != f"{i:05d}"][:20]
        seqs = logged_seqs(received)
        assert seqs == list(range(1, seqs[-1] + 1))  # from the first event, none missing or repeated

        # Caught up: nothing is left queued or counted as taken, so frames go direct again.
        assert queue.qsize() == 0 and queue.taken == 0
        assert (await ann.post("/chat", {"text": "live again"})).status_code == 201
        packet = await asyncio.wait_for(raw.message(), 10)
        assert json.loads(packet[2:])[1]["text"] == "live again"
        assert queue.qsize() == 0 and queue.taken == 0
        await raw.close()
        await ann.close()
        await bram.close()


@needs_fast_paths('websocket_direct')
async def test_events_published_while_a_socket_upgrades_from_polling_arrive_once_in_order(tmp_path: Path) -> None:
    async with serving(tmp_path, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])

        async def chatter() -> int:
            for i in range(150):
                assert (await ann.post("/chat", {"text": f"c{i}"})).status_code == 201
                await asyncio.sleep(0)
            return 150

        stream = asyncio.create_task(chatter())
        tab = await socket_for(bram, transports=["polling", "websocket"], last_seq=0)
        await stream
        await tab.wait_event("chat_message", text="c149")
        assert [d["text"] for e, d in tab.received if e == "chat_message"] == [f"c{i}" for i in range(150)]
        seqs = logged_seqs(tab.received)
        assert seqs == list(range(1, seqs[-1] + 1))
        queue = only_queue(server)
        assert tab.sio.transport() == "websocket" and queue.ws is not None
        assert queue.qsize() == 0 and queue.taken == 0
        await tab.close()
        await ann.close()
        await bram.close()


async def test_typing_and_acks_share_the_one_ordered_path(tmp_path: Path) -> None:
    """Acks are Engine.IO MESSAGE packets too: each answers its own emit, in the order asked."""
    async with serving(tmp_path, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        typist = SocketClient(server)
        await typist.connect(token=ann.token)
        await typist.join(ann.game_code)
        watcher = await socket_for(bram)
        acks = await asyncio.gather(*(typist.call("typing", {"is_typing": i % 2 == 0}) for i in range(200)))
        assert all(a == {"ok": True} for a in acks)
        await watcher.wait_for(lambda r: sum(e == "player_typing" for e, _ in r) == 200)
        flags = [d["is_typing"] for e, d in watcher.received if e == "player_typing"]
        assert flags == [i % 2 == 0 for i in range(200)]
        await typist.close()
        await watcher.close()
        await ann.close()
        await bram.close()


class _Connection:
    """The far end of a websocket: takes frames while `open`, as a transport would."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.open = True

    def upgraded(self) -> bool:
        return True

    def write(self, frame: bytes) -> bool:
        if self.open:
            self.frames.append(frame)
        return self.open


def _message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, data=text)


async def test_a_packet_skips_the_queue_only_when_nothing_is_ahead_of_it() -> None:
    queue = SocketQueue()
    conn = _Connection()
    queue.ws = conn  # type: ignore[assignment]
    frame = {t: text_frame(f"4{t}".encode()) for t in "ABCDEF"}

    queue.put_nowait(_message("A"))
    assert conn.frames == [frame["A"]] and queue.empty()  # nothing ahead: written at once
    queue.put_nowait(eio_packet.Packet(eio_packet.PING))  # Engine.IO's writer must see its pings
    assert queue.get_nowait().packet_type == eio_packet.PING and queue.taken == 1
    queue.taken = 0  # the writer wrote it (DirectWebSocket.send counts down)

    conn.open = False  # the client is slow: B waits in the queue
    queue.put_message("B", frame["B"])
    conn.open = True
    queue.put_message("C", frame["C"])  # writable again, but B is ahead of it
    assert conn.frames == [frame["A"]] and queue.qsize() == 2

    taken = [queue.get_nowait(), queue.get_nowait()]  # Engine.IO's writer takes B and C...
    assert [p.data for p in taken] == ["B", "C"] and queue.taken == 2 and queue.empty()
    queue.put_message("D", frame["D"])  # ...so D waits, though the queue is empty
    assert conn.frames == [frame["A"]] and queue.qsize() == 1
    queue.taken = 0  # the writer wrote B and C
    queue.put_nowait(_message("E"))  # D is still ahead
    assert conn.frames == [frame["A"]] and queue.qsize() == 2
    assert [queue.get_nowait().data for _ in range(2)] == ["D", "E"]
    queue.taken = 0
    queue.put_message("F", frame["F"])
    assert conn.frames == [frame["A"], frame["F"]] and queue.empty()


@needs_fast_paths('websocket_direct')
async def test_a_client_that_stops_reading_is_cut_past_the_stream_buffer_and_resumes(tmp_path: Path) -> None:
    async with serving(tmp_path, stream_buffer=50, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, bram.token)
        ack_id = await raw.call("join_game_room", {"game_code": bram.game_code})
        assert (await raw.message()).startswith(f"43{ack_id}[")
        queue = only_queue(server)
        dragons = "\U0001F409" * 490
        sent = 0
        while server.runtime.realtime.connections and sent < 3000:
            assert (await ann.post("/chat", {"text": f"{sent:05d}{dragons}"})).status_code == 201
            assert queued_events(queue) <= 50, "the server kept queueing for a client that reads nothing"
            sent += 1
        assert await sockets_gone(server), "the slow client was not cut"
        for _ in range(100):  # and more after the cut, for him to resume
            assert (await ann.post("/chat", {"text": f"{sent:05d}{dragons}"})).status_code == 201
            sent += 1
        last = f"{sent - 1:05d}"

        # He reads what was sent before the cut, then resumes from his cursor with the rest.
        seen: list[int] = []
        try:
            while True:
                packet = await asyncio.wait_for(raw.message(), 10)
                if packet.startswith("42"):
                    name, data = json.loads(packet[2:])
                    if "seq" in data:
                        seen.append(data["seq"])
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        await raw.close()
        cursor = seen[-1] if seen else 0  # what was unread when the connection dropped is lost
        assert seen == list(range(seen[0], cursor + 1)) if seen else True
        back = await socket_for(bram, last_seq=cursor)
        assert back.join_ack["recovered"] is True
        await back.wait_event("chat_message", text=f"{last}{dragons}")
        texts = [d["text"][:5] for e, d in back.received if e == "chat_message"]
        assert texts[-1] == last and texts == [f"{i:05d}" for i in range(sent - len(texts), sent)]
        await back.close()
        await ann.close()
        await bram.close()


class _Recorded:
    """A transport (or hypercorn's stream writer) that notes what goes through `write`."""

    def __init__(self, inner: Any, writes: list[bytes]) -> None:
        self._inner = inner
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def spy_on_writes(queue: SocketQueue) -> list[bytes]:
    """Every write straight to the socket's transport from now on; each still goes out."""
    assert queue.ws is not None and queue.ws._connection is not None
    server = queue.ws._connection.server  # hypercorn's TCPServer; uvloop's transport takes no spy
    writes: list[bytes] = []
    writer = _Recorded(server.writer, [])  # hypercorn's own writes are not ours: not noted
    writer.transport = _Recorded(server.writer.transport, writes)
    server.writer = writer
    return writes


@needs_fast_paths('websocket_direct')
async def test_a_chat_and_its_ack_reach_the_sender_in_one_write_and_the_ack_once(tmp_path: Path) -> None:
    async with serving(tmp_path, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, ann.token)
        joined, _ = await raw.ack(await raw.call("join_game_room", {"game_code": ann.game_code}))
        assert (await raw.message()).startswith('42["reconnect_sync",')  # no cursor: the whole view
        queue = only_queue(server)
        watcher = await socket_for(bram)
        writes = spy_on_writes(queue)

        ack_id = await raw.call("chat_message", {"text": "together"})
        answer, before = await raw.ack(ack_id)
        assert answer == {"ok": True, "seq": joined["seq"] + 1}
        chats = [p for p in before if p.startswith('42["chat_message",')]  # Bram's arrival may be there too
        assert [json.loads(p[2:]) for p in chats] == [
            ["chat_message", {"player_id": ann.player_id, "player_name": "Ann", "text": "together",
                              "seq": answer["seq"], "timestamp": ANY}]]
        chat = text_frame(chats[0].encode())
        ack = text_frame(f"43{ack_id}".encode() + json.dumps([answer], separators=(",", ":")).encode())
        assert [w for w in writes if b'"chat_message"' in w or f"43{ack_id}[".encode() in w] == [chat + ack]
        await watcher.wait_event("chat_message", text="together")

        # python-socketio's own ack was dropped: the next answer is the next call's, nothing between.
        ping_id = await raw.call("ping", None)
        _, between = await raw.ack(ping_id)
        assert [p for p in between if p.startswith(f"43{ack_id}[")] == []

        # Without an ack id there is nothing to answer: the chat alone.
        writes.clear()
        await raw.send("42" + json.dumps(["chat_message", {"text": "unasked"}]))
        unasked = await asyncio.wait_for(raw.message(), 10)
        assert json.loads(unasked[2:])[1]["text"] == "unasked"
        assert [w for w in writes if b'"chat_message"' in w] == [text_frame(unasked.encode())]
        await raw.close()
        await watcher.close()
        await ann.close()
        await bram.close()


@needs_fast_paths('websocket_direct')
async def test_a_chat_whose_sender_cannot_be_written_to_at_once_gets_its_ack_after_it(tmp_path: Path) -> None:
    async with serving(tmp_path, **FLOOD) as server:
        ann, = await seat_party(server, ["Ann"])
        raw = await RawSocketIO.open(server.port, ann.token)
        joined, _ = await raw.ack(await raw.call("join_game_room", {"game_code": ann.game_code}))
        assert (await raw.message()).startswith('42["reconnect_sync",')
        queue = only_queue(server)
        assert queue.ws is not None and queue.ws._connection is not None
        send_lock = queue.ws._connection.server.send_lock
        await send_lock.acquire()  # hypercorn is writing: nothing may jump ahead of it
        try:
            ack_id = await raw.call("chat_message", {"text": "behind"})
            for _ in range(500):
                if (await log_bounds(server.runtime.services.store, ann.game_code) or (0, 0))[1] > joined["seq"]:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the handler has returned; its ack waits too
            assert queue.qsize() + queue.taken >= 1
        finally:
            send_lock.release()
        answer, before = await raw.ack(ack_id)
        assert answer == {"ok": True, "seq": joined["seq"] + 1}
        assert [json.loads(p[2:])[1]["text"] for p in before if p.startswith('42["chat_message",')] == ["behind"]
        ping_id = await raw.call("ping", None)
        _, between = await raw.ack(ping_id)
        assert [p for p in between if p.startswith("43")] == []
        await raw.close()
        await ann.close()


@needs_fast_paths('websocket_direct')  # the one write is the direct path's
async def test_a_chats_ack_goes_to_its_sender_in_the_same_write_as_the_chat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    write_now = SocketQueue.write_now

    def spy(queue: SocketQueue, frames: bytes) -> bool:
        written = write_now(queue, frames)
        if written:
            writes.append(frames)
        return written

    monkeypatch.setattr(SocketQueue, "write_now", spy)
    async with serving(tmp_path, **FLOOD) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, ann.token)
        joined = await raw.call("join_game_room", {"game_code": ann.game_code})
        await raw.ack(joined)
        listener = await socket_for(bram)
        ack_id = await raw.call("chat_message", {"text": "the seal is a forgery"})
        answer, before = await raw.ack(ack_id)
        assert answer == {"ok": True, "seq": ANY}
        chat = json.loads(before[-1][2:])
        assert chat[0] == "chat_message" and chat[1]["seq"] == answer["seq"], "the chat, then its ack"
        ack = f'43{ack_id}[{{"ok":true,"seq":{answer["seq"]}}}]'.encode()
        assert [w for w in writes if ack in w] == [text_frame(before[-1].encode()) + text_frame(ack)]
        await listener.wait_for(lambda got: any(e == "chat_message" for e, _ in got))
        await raw.close()
        await listener.close()
        await ann.close()
        await bram.close()
