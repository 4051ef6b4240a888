"""A websocket's Engine.IO session (arcane/serving/engineio.py `websocket_session`) ends where
Engine.IO's own loop ends it, and not before."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.rawws import RawSocketIO
from tests.sockets import socket_for
from tests.support import LiveServer, needs_fast_paths, seat_party, serving, sockets_gone

QUICK_PINGS = {"ping_interval": 1.0, "ping_timeout": 1.0}  # silent for 2 s: the session ends


def connections(server: LiveServer) -> int:
    return len(server.runtime.realtime.connections)


async def ends(server: LiveServer, raw: RawSocketIO, seconds: float = 5.0) -> bool:
    """The server closed the raw client's websocket and forgot its connection, within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await raw.message()  # answers pings; raises once the server has closed
    except (ConnectionError, asyncio.IncompleteReadError, OSError):
        pass
    except TimeoutError:
        return False
    return await sockets_gone(server, 2.5)


async def test_a_socket_that_keeps_answering_outlives_the_silence_limit_many_times(tmp_path: Path) -> None:
    async with serving(tmp_path, **QUICK_PINGS) as server:
        (ann,) = await seat_party(server, ["Ann"])
        client = await socket_for(ann)  # answers every ping, as a live client does
        await asyncio.sleep(5.0)  # the 2 s limit, passed twice over
        assert connections(server) == 1
        ack = await client.call("typing", {"is_typing": True})
        assert ack == {"ok": True}
        await client.close()
        await ann.close()


async def test_a_socket_that_falls_silent_is_closed_and_forgotten(tmp_path: Path) -> None:
    async with serving(tmp_path, **QUICK_PINGS) as server:
        (ann,) = await seat_party(server, ["Ann"])
        raw = await RawSocketIO.open(server.port, ann.token)
        await asyncio.sleep(0.5)
        assert connections(server) == 1
        assert await sockets_gone(server, 6.0)  # it reads nothing and answers no ping
        await raw.close()
        await ann.close()


async def test_a_packet_over_the_size_limit_ends_the_session(tmp_path: Path) -> None:
    async with serving(tmp_path, max_payload=2048) as server:
        (ann,) = await seat_party(server, ["Ann"])
        raw = await RawSocketIO.open(server.port, ann.token)
        small = await raw.call("typing", {"is_typing": True})
        assert (await raw.message()).startswith(f"43{small}[")  # within the limit: answered
        await raw.call("typing", {"is_typing": True, "padding": "x" * 3000})
        assert await ends(server, raw)
        await raw.close()
        await ann.close()


# Engine.IO's own loop raises out of its handler on such a packet, the socket left behind.
@needs_fast_paths("websocket_loop")
async def test_a_packet_that_is_not_engine_io_ends_the_session_and_the_server_serves_on(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        ann, bram = await seat_party(server, ["Ann", "Bram"])
        raw = await RawSocketIO.open(server.port, ann.token)
        await raw.send("not an engine.io packet")
        assert await ends(server, raw)
        await raw.close()
        other = await socket_for(bram)
        assert await other.call("typing", {"is_typing": False}) == {"ok": True}
        await other.close()
        await ann.close()
        await bram.close()
