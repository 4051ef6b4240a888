"""Server-Sent Events and long-polling: the same room events for networks without websockets.

Both transports read the one bus and the one log through `arcane.feed.Feed`, so a
client sees the same events, in the same order, with the same seq, as a Socket.IO
client. They deliver; they never invent game events.
"""

from __future__ import annotations

from arcane.fallback.actions import Actions
from arcane.fallback.bare import FallbackRoutes

__all__ = ["Actions", "FallbackRoutes"]
