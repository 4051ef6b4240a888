"""The JSON every transport speaks (arcane/jsoncodec.py): text in any script arrives as it was
written, and JSON the codec refuses changes nothing and costs the sender nothing more."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from arcane import jsoncodec
from tests.rawws import RawSocketIO
from tests.sockets import socket_for
from tests.streams import Poller, sse_for
from tests.support import seat_party, serving

SPOKEN = 'Ysolde: ¿Dónde está el grimorio? 龍の書 ✨ — "quoted" and back\\slash'


async def test_a_chat_in_any_script_arrives_unchanged_on_every_transport_and_from_the_log(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bram, cara = await seat_party(server, ["Ann", "Bram", "Cara"])
        bram_socket = await socket_for(bram)
        cara_stream = await sse_for(cara)
        raw = await RawSocketIO.open(server.port, ann.token)
        joined, before = await raw.ack(await raw.call("join_game_room", {"game_code": ann.game_code}))
        assert joined["ok"] is True and before == []

        said = await bram_socket.call("chat_message", {"text": SPOKEN})
        assert said["ok"] is True

        chat = await bram_socket.wait_event("chat_message")
        assert chat["text"] == SPOKEN
        assert (await cara_stream.wait_event("chat_message")).data["text"] == SPOKEN
        frame = await asyncio.wait_for(raw.message(), 10)
        while '"chat_message"' not in frame:
            frame = await asyncio.wait_for(raw.message(), 10)
        assert "龍の書 ✨" in frame  # written as UTF-8 on the wire, not as \u escapes
        assert json.loads(frame[2:])[1]["text"] == SPOKEN
        poller = Poller(ann, after=0, timeout=0)
        polled = await poller.poll()
        assert [e["data"]["text"] for e in polled["events"] if e["event"] == "chat_message"] == [SPOKEN]
        rejoined = await socket_for(cara, last_seq=0)  # recovered from the log, not the bus
        assert rejoined.join_ack["recovered"] is True
        assert (await rejoined.wait_event("chat_message"))["text"] == SPOKEN

        for client in (rejoined, bram_socket, raw):
            await client.close()
        await cara_stream.close()
        await poller.client.aclose()
        for player in (ann, bram, cara):
            await player.close()


async def test_json_the_codec_refuses_is_refused_through_its_ack_and_the_socket_goes_on(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, ann.token)
        joined, before = await raw.ack(await raw.call("join_game_room", {"game_code": ann.game_code}))
        assert joined["ok"] is True and before == []
        for bad in ('{"text":NaN}', '{"text":"\\ud800"}', '{"text":1e400}', '{"text":"open'):
            await raw.send(f'4290["chat_message",{bad}]')
        await raw.send('4291["chat_message",{"text":"still here"}]')
        said, before = await raw.ack(91)
        assert said["ok"] is True
        # Each is refused through its ack (issue 19.14), and nothing of it is said.
        refusals = [json.loads(packet[4:])[0] for packet in before if packet.startswith("4390")]
        assert len(refusals) == 4 and all(r["error"]["code"] == "VALIDATION_ERROR" for r in refusals), before
        texts = [e["data"]["text"] for e in (await bram.get("/poll?after=0&timeout=0")).json()["events"]
                 if e["event"] == "chat_message"]
        assert texts == ["still here"]

        huge, _ = await raw.ack(await raw.call("join_game_room", {"game_code": ann.game_code, "last_seq": 10**30}))
        assert huge["error"]["code"] == "VALIDATION_ERROR"
        await raw.close()
        await ann.close()
        await bram.close()


def test_the_codec_writes_plain_compact_json_that_any_parser_reads() -> None:
    value = {"text": SPOKEN, "seq": 7, "timestamp": 1732684800.25, 3: [True, None]}
    written = jsoncodec.dumps(value, separators=(", ", ": "))  # python-socketio's arguments are ignored
    assert written == ('{"text":' + json.dumps(SPOKEN, ensure_ascii=False)
                       + ',"seq":7,"timestamp":1732684800.25,"3":[true,null]}')
    assert json.loads(written) == {**{k: v for k, v in value.items() if k != 3}, "3": [True, None]}
    assert jsoncodec.loads(written.encode()) == jsoncodec.loads(written)
    assert jsoncodec.dumps(float("nan")) == "null"
