"""wsproto 1.x's private parser state: whole small websocket messages read beside it.

Every chat line and typing notice a websocket client sends is one small masked frame.
wsproto parses each through a buffer, a generator, a frame and a message decoder, an
event object, then hypercorn's message buffer: several times the work of the message's
own handling. A read that is nothing but whole, final, unfragmented text or binary
frames, on a connection where neither wsproto nor hypercorn holds anything partial, is
read here and handed to the app as hypercorn would (`websocket_receive`, called from
arcane/serving/h11.py); anything else (a control frame, a fragment, a partial frame, a
frame over the size limit, text that is not UTF-8) goes to wsproto untouched, which
answers it as always (pong, close, 1009, 1007).
"""

from __future__ import annotations

from typing import Any

from arcane.serving import hypercorn
from arcane.serving.fastpaths import PATHS, reach

WebsocketState: Any = reach("wsproto.connection", "ConnectionState", paths=("websocket_receive", "websocket_direct"))
_receive = PATHS["websocket_receive"]


def messages_of(data: bytes, max_size: int) -> list[dict[str, Any]] | None:
    """The ASGI receive messages of `data` if it is only whole, final, masked, unextended
    text or binary frames of at most `max_size` bytes each; else None."""
    messages: list[dict[str, Any]] = []
    at, end = 0, len(data)
    while at < end:
        if end - at < 6:
            return None
        first, second = data[at], data[at + 1]
        if first not in (0x81, 0x82) or not second & 0x80:  # FIN, no RSV, text/binary; masked
            return None
        size = second & 0x7F
        at += 2
        if size == 126:
            size = int.from_bytes(data[at:at + 2], "big")
            at += 2
            if size < 126:  # not the shortest form: wsproto refuses it
                return None
        elif size == 127:
            return None
        if size > max_size or end - at < 4 + size:
            return None
        mask, payload = data[at:at + 4], data[at + 4:at + 4 + size]
        at += 4 + size
        unmasked = (int.from_bytes(payload, "little") ^ int.from_bytes(mask * (size // 4 + 1), "little")
                    & ((1 << 8 * size) - 1)).to_bytes(size, "little")
        if first == 0x81:
            try:
                text = unmasked.decode("utf-8")
            except UnicodeDecodeError:
                return None
            messages.append({"type": "websocket.receive", "bytes": None, "text": text})
        else:
            messages.append({"type": "websocket.receive", "bytes": unmasked, "text": None})
    return messages


async def take_messages(protocol: Any, data: bytes) -> bool:
    stream = protocol.stream
    if not isinstance(stream, hypercorn.WSStream) or stream.closed or protocol.connection.buffer:
        return False
    if stream.state != hypercorn.ASGIWebsocketState.CONNECTED or stream.buffer.value is not None:
        return False
    websocket = stream.connection
    try:
        frames = websocket._proto
        idle = (websocket.state is WebsocketState.OPEN and not websocket._events and not frames.extensions
                and len(frames._frame_decoder.buffer) == 0 and frames._frame_decoder.header is None
                and frames._message_decoder.opcode is None)
    except AttributeError:  # another wsproto
        return False
    if not idle:
        return False
    messages = messages_of(data, stream.config.websocket_max_message_size)
    if messages is None:
        return False
    app_put = stream.app_put
    if app_put is None:  # not yet handed to the app
        return False
    _receive.used += len(messages)
    for message in messages:
        await app_put(message)
    return True
