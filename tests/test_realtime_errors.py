"""Refusals over Socket.IO: the right code, through the ack or an `error` event, never a dropped socket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import socketio

from tests.sockets import SocketClient, socket_for
from tests.support import LiveServer, Player, seat_party, serving
from tests.logs import log_bounds


async def refused_connect(server: LiveServer, **kwargs: object) -> object:
    client = SocketClient(server)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(**kwargs)  # type: ignore[arg-type]
    return client.connect_error


async def test_connections_without_identity_are_refused_with_auth_required(server: LiveServer) -> None:
    for kwargs in ({}, {"token": "forged.token"}):
        error = await refused_connect(server, **kwargs)
        assert isinstance(error, dict) and error["data"]["code"] == "AUTH_REQUIRED", error
        assert error["data"]["message"]


async def test_the_session_cookie_authenticates_a_socket(server: LiveServer) -> None:
    ann = await Player.create(server, "Ann")
    cookie = "; ".join(f"{k}={v}" for k, v in ann.client.cookies.items())
    client = SocketClient(server)
    await client.connect(headers={"Cookie": cookie})
    ack = await client.join(ann.game_code)
    assert ack["ok"] is True and ack["recovered"] is False
    await client.close()
    await ann.close()


async def test_joins_are_refused_with_the_right_code(server: LiveServer) -> None:
    ann, _ = await seat_party(server, ["Ann", "Bram"])
    stranger = await Player.create(server, "Zed")
    client = SocketClient(server)
    await client.connect(token=ann.token)
    cases = [
        ({"game_code": "ZZZZZZ"}, "NOT_IN_GAME"),  # as for a game that exists: codes are not enumerable
        ({"game_code": "no!"}, "INVALID_GAME"),
        ({"game_code": stranger.game_code}, "NOT_IN_GAME"),
        ({"game_code": ann.game_code, "last_seq": -1}, "VALIDATION_ERROR"),
        ({"game_code": ann.game_code, "last_seq": "3"}, "VALIDATION_ERROR"),
        ("not an object", "VALIDATION_ERROR"),
    ]
    for payload, code in cases:
        ack = await client.call("join_game_room", payload)
        assert ack["error"]["code"] == code, (payload, ack)
    for event in ("make_choice", "chat_message", "typing", "request_presence"):
        ack = await client.call(event, {})
        assert ack["error"]["code"] == "NOT_IN_GAME", event
    assert client.sio.connected
    await client.close()
    for p in (ann, stranger):
        await p.close()


async def test_bad_actions_are_answered_and_change_nothing(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    tab = await socket_for(ann)
    before = await log_bounds(server.runtime.services.store, ann.game_code)
    cases = [
        ("make_choice", {"option_id": "a"}, "WRONG_PHASE"),
        ("make_choice", {}, "VALIDATION_ERROR"),
        ("make_choice", {"option_id": "a", "text": "both"}, "VALIDATION_ERROR"),
        ("chat_message", {"text": ""}, "VALIDATION_ERROR"),
        ("chat_message", {"text": "x" * 501}, "VALIDATION_ERROR"),
        ("typing", {"is_typing": "yes"}, "VALIDATION_ERROR"),
        ("leave_game_room", {"game_code": "ZZZZZZ"}, "NOT_IN_GAME"),
    ]
    for event, payload, code in cases:
        ack = await tab.call(event, payload)
        assert ack["error"]["code"] == code, (event, ack)
    assert await log_bounds(server.runtime.services.store, ann.game_code) == before

    await tab.sio.emit("chat_message", {"text": ""})
    error = await tab.wait_event("error")
    assert error == {"code": "VALIDATION_ERROR", "message": error["message"], "event": "chat_message"}
    assert tab.sio.connected
    pong = await tab.call("ping")
    assert pong["ok"] is True
    await tab.close()
    await ann.close()
    await bram.close()


async def test_a_flood_is_rate_limited_and_others_stay_served(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    flooder = await socket_for(ann)
    calm = await socket_for(bram)
    answers = await asyncio.gather(*(flooder.call("ping") for _ in range(80)))
    limited = [a for a in answers if "error" in a]
    assert limited and all(a["error"]["code"] == "RATE_LIMITED" for a in limited)
    # The join spent one token of the burst.
    assert sum(1 for a in answers if a.get("ok")) >= server.settings.rate_limit_burst - 1
    assert (await calm.call("ping"))["ok"] is True
    assert (await calm.call("chat_message", {"text": "still here"}))["ok"] is True
    assert flooder.sio.connected
    await asyncio.sleep(1 / server.settings.rate_limit_per_second * 2)
    assert (await flooder.call("ping"))["ok"] is True
    await flooder.close()
    await calm.close()
    await ann.close()
    await bram.close()


async def test_an_oversized_payload_is_not_processed(server: LiveServer) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    tab = await socket_for(ann)
    before = await log_bounds(server.runtime.services.store, ann.game_code)
    await tab.sio.emit("chat_message", {"text": "x" * (server.settings.max_payload * 2)})
    other = await socket_for(bram)
    assert (await other.call("ping"))["ok"] is True
    await asyncio.sleep(0.2)
    assert await log_bounds(server.runtime.services.store, ann.game_code) == before
    await other.close()
    if tab.sio.connected:
        await tab.close()
    await ann.close()
    await bram.close()


async def test_an_unexpected_failure_is_logged_and_answered_internal_error(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    ann, bram = await seat_party(server, ["Ann", "Bram"])
    tab = await socket_for(ann)
    service = server.runtime.services.service

    async def broken_chat(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the quill snapped")

    service.chat = broken_chat  # type: ignore[method-assign]
    ack = await tab.call("chat_message", {"text": "hello"})
    assert ack["error"]["code"] == "INTERNAL_ERROR"
    assert "quill" not in ack["error"]["message"]
    assert any(r.exc_info and "the quill snapped" in str(r.exc_info[1]) for r in caplog.records)
    assert (await tab.call("ping"))["ok"] is True
    await tab.close()
    await ann.close()
    await bram.close()


async def test_browsers_from_other_origins_are_refused_unless_configured(tmp_path: Path) -> None:
    async with serving(tmp_path, cors_origins=("https://friends.example",)) as server:
        ann = await Player.create(server, "Ann")
        stranger = SocketClient(server, transports=["polling"])
        with pytest.raises(socketio.exceptions.ConnectionError):
            await stranger.connect(token=ann.token, headers={"Origin": "https://evil.example"})
        friend = SocketClient(server, transports=["polling"])
        await friend.connect(token=ann.token, headers={"Origin": "https://friends.example"})
        assert (await friend.join(ann.game_code))["ok"] is True
        await friend.close()
        await ann.close()


async def test_same_origin_only_by_default(server: LiveServer) -> None:
    ann = await Player.create(server, "Ann")
    stranger = SocketClient(server, transports=["polling"])
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect(token=ann.token, headers={"Origin": "https://evil.example"})
    own = SocketClient(server, transports=["polling"])
    await own.connect(token=ann.token, headers={"Origin": server.url})
    assert (await own.join(ann.game_code))["ok"] is True
    await own.close()
    await ann.close()
