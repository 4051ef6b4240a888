"""A seat's credentials and cursors at the edges: cursors out of range, seats that are gone,
tokens that expire."""

from __future__ import annotations

from tests.rawws import RawSocketIO
from tests.sockets import SocketClient
from tests.streams import SseStream
from tests.support import LiveServer, seat_party

# Past what a seq (an SQLite INTEGER) can be, and a negative one.
BAD_CURSORS = (2**63, 2**64, 10**30, -1)


# -- cursors out of range ---------------------------------------------------------------------

async def test_a_poll_after_a_cursor_out_of_range_is_a_validation_error(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    try:
        for after in BAD_CURSORS:
            response = await ann.get("/poll", params={"after": str(after), "timeout": "0"})
            assert response.status_code == 400, (after, response.text)
            assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        response = await ann.get("/poll", params={"after": str(2**63 - 1), "timeout": "0"})
        assert response.status_code == 200 and response.json()["recovered"] is False  # the last one that is valid
    finally:
        await ann.close()
        await bob.close()


async def test_joining_a_room_from_a_cursor_out_of_range_is_a_validation_error(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    # A hand-made client: python-socketio's own (orjson) cannot even encode 2**64.
    sock = await RawSocketIO.open(server.port, ann.token)
    try:
        for last_seq in BAD_CURSORS:
            ack, _ = await sock.ack(await sock.call("join_game_room", {"game_code": ann.game_code,
                                                                       "last_seq": last_seq}))
            assert ack.get("error", {}).get("code") == "VALIDATION_ERROR", (last_seq, ack)
        ack, _ = await sock.ack(await sock.call("join_game_room", {"game_code": ann.game_code,
                                                                   "last_seq": 2**63 - 1}))
        assert ack["ok"] is True and ack["recovered"] is False
    finally:
        await sock.close()
        await ann.close()
        await bob.close()


async def test_a_stream_from_a_cursor_out_of_range_gets_a_snapshot(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    try:
        for cursor in BAD_CURSORS:
            for where in ("header", "query"):
                stream = SseStream(server, ann.game_code, token=ann.token,
                                   last_event_id=cursor if where == "header" else None,
                                   params={"last_event_id": str(cursor)} if where == "query" else None)
                try:
                    assert (await stream.open()).status_code == 200
                    sync = await stream.wait_event("reconnect_sync")
                    assert sync.data["recovered"] is False and sync.id == str(sync.data["seq"]), (cursor, where)
                finally:
                    await stream.close()
    finally:
        await ann.close()
        await bob.close()
