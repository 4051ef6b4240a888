"""The `room_index` fast path: python-socketio's client manager, whose disconnect visits the
leaving socket's own rooms instead of searching every room (arcane/serving/socketio.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import socketio

from arcane.serving.fastpaths import PATHS
from arcane.serving.socketio import RoomIndexManager


def state(manager: Any) -> tuple[Any, ...]:
    rooms = {ns: {room: dict(members) for room, members in by_room.items()} for ns, by_room in manager.rooms.items()}
    return rooms, manager.callbacks, manager.pending_connect, manager.pending_disconnect


def play(manager: Any, seed: int) -> list[tuple[Any, ...]]:
    """A random evening of sockets connecting, joining rooms, leaving them and disconnecting,
    the same for any manager given the same seed; the manager's state after each step."""
    chance = random.Random(seed)
    states = []
    live: list[tuple[str, str]] = []
    for step in range(600):
        roll = chance.random()
        if roll < 0.3 or not live:
            namespace, sid = chance.choice(["/", "/admin"]), f"s{step}"
            manager.basic_enter_room(sid, namespace, None, eio_sid=f"e{step}")
            manager.basic_enter_room(sid, namespace, sid, eio_sid=f"e{step}")
            manager.pending_connect.setdefault(namespace, []).append(sid)
            if chance.random() < 0.7:
                manager.pending_connect[namespace].remove(sid)
                if not manager.pending_connect[namespace]:
                    del manager.pending_connect[namespace]
            manager.callbacks[sid] = {1: "callback"}
            live.append((namespace, sid))
        elif roll < 0.6:
            namespace, sid = chance.choice(live)
            manager.basic_enter_room(sid, namespace, f"game-{chance.randrange(8)}")
        elif roll < 0.75:
            namespace, sid = chance.choice(live)
            manager.basic_leave_room(sid, namespace, f"game-{chance.randrange(8)}")
        elif roll < 0.8:
            manager.basic_close_room(f"game-{chance.randrange(8)}", chance.choice(["/", "/admin"]))
        else:
            namespace, sid = live.pop(chance.randrange(len(live)))
            if chance.random() < 0.5:
                manager.pending_disconnect.setdefault(namespace, []).append(sid)
            manager.basic_disconnect(sid, namespace)
        states.append(state(manager))
    for namespace, sid in live:
        manager.basic_disconnect(sid, namespace)
    states.append(state(manager))
    return states


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_indexed_manager_leaves_exactly_what_python_socketio_s_own_leaves(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PATHS["room_index"], "on", True)
    used = PATHS["room_index"].used
    indexed = RoomIndexManager()
    assert play(indexed, seed) == play(socketio.AsyncManager(), seed)
    assert PATHS["room_index"].used > used, "the disconnects went through the index"
    assert indexed.rooms_indexed() == 0 and indexed.rooms == {}, "nothing outlives its socket"


def test_a_disconnect_through_the_index_looks_at_the_socket_s_rooms_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """With 2,000 sockets connected, one leaving touches its own two rooms, not 2,000."""
    monkeypatch.setattr(PATHS["room_index"], "on", True)
    manager = RoomIndexManager()
    for n in range(2000):
        manager.basic_enter_room(f"s{n}", "/", None, eio_sid=f"e{n}")
        manager.basic_enter_room(f"s{n}", "/", f"s{n}", eio_sid=f"e{n}")
    looked_at = []

    class Watched(dict):  # type: ignore[type-arg]
        def copy(self) -> Any:
            looked_at.append("every room")
            return dict.copy(self)

    manager.rooms["/"] = Watched(manager.rooms["/"])
    manager.basic_disconnect("s7", "/")
    assert looked_at == [] and "s7" not in manager.rooms["/"] and "s7" not in manager.rooms["/"][None]
    monkeypatch.setattr(PATHS["room_index"], "on", False)
    manager.basic_disconnect("s8", "/")  # python-socketio's own: it searches every room
    assert looked_at == ["every room"] and "s8" not in manager.rooms["/"][None]
