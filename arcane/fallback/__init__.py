"""Server-Sent Events and long-polling: the same room events for networks without websockets."""
