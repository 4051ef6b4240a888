"""Benchmark peer: Flask + Flask-SocketIO on eventlet (runs in bench/.peers/flask-venv); usage: flask_socketio_server.py PORT."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # eventlet >=0.36 warns on import

import eventlet  # noqa: E402

eventlet.monkey_patch()  # must precede every other import

import sys  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO, emit, join_room  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet", cors_allowed_origins="*")


@socketio.on("join")
def join(data: dict[str, Any]) -> dict[str, bool]:
    join_room(data["room"])
    return {"ok": True}


@socketio.on("msg")
def msg(data: dict[str, Any]) -> None:
    emit("msg", data, to=data["room"])


if __name__ == "__main__":
    socketio.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_output=False)
