"""Websocket frames from server to client (RFC 6455 section 5.2), made once per event.

A frame from server to client is not masked, so the same bytes serve every recipient of
an event (arcane/serving/engineio.py writes them straight to each connection).
"""

from __future__ import annotations

import struct



def text_frame(payload: bytes) -> bytes:
    """A final, unmasked websocket text frame."""
    return _header(0x81, len(payload)) + payload


def binary_frame(payload: bytes) -> bytes:
    return _header(0x82, len(payload)) + payload


def _header(first: int, size: int) -> bytes:
    if size < 126:
        return bytes((first, size))
    if size < 1 << 16:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def frame_of(encoded: str | bytes) -> bytes:
    """The frame Engine.IO's driver would send for an encoded packet: text, or binary for bytes."""
    return binary_frame(encoded) if isinstance(encoded, bytes) else text_frame(encoded.encode())
