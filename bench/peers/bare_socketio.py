"""Benchmark peer: bare python-socketio AsyncServer (ASGI) served by hypercorn; usage: bare_socketio.py PORT."""
import asyncio
import sys
from typing import Any

import socketio
from hypercorn.asyncio import serve
from hypercorn.config import Config

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)


@sio.on("join")
async def join(sid: str, data: dict[str, Any]) -> dict[str, bool]:
    await sio.enter_room(sid, data["room"])
    return {"ok": True}


@sio.on("msg")
async def msg(sid: str, data: dict[str, Any]) -> None:
    await sio.emit("msg", data, to=data["room"])


def main() -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
