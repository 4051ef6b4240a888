"""The server's log lines: their level (ARCANE_LOG_LEVEL) and form (ARCANE_LOG_FORMAT), and
what each line knows of where it was written.

`text` (the default) is one readable line each, as hypercorn writes its own. `json` is one
JSON object per line, for a log shipper: `time`, `level`, `logger`, `message`, and, where
known, `game_code`, `player_id`, `transport` (`http`, `sse`, `longpoll`, `socketio`) and
`request_id` (an HTTP request's `X-Request-ID`, or one made up for it; a socket's session id),
then `exception` with the traceback when there is one.

What a line knows comes from `bind()`, called where a request or a socket event learns it
(arcane/gate.py, arcane/routes/common.py, arcane/realtime/handlers.py, the fallback routes):
a context variable, so each request and each socket event has its own, and a line logged
anywhere beneath carries it. hypercorn's own lines take the same form through its
`--log-config` (deploy/logging.json, docs/operations.md).
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any

FIELDS = ("game_code", "player_id", "transport", "request_id")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
TEXT_DATES = "%Y-%m-%d %H:%M:%S %z"

_context: ContextVar[dict[str, str]] = ContextVar("arcane_log_context", default={})


def bind(**fields: str | None) -> None:
    """What the current request or socket event is about, for every line logged beneath it."""
    known = {k: v for k, v in fields.items() if v is not None}
    if known:
        _context.set(_context.get() | known)


def context() -> dict[str, str]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Puts the bound fields on each record (as attributes), for any formatter to use."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None) or _context.get().get(key)
            if value:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def formatter(form: str) -> logging.Formatter:
    return JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT, TEXT_DATES)


def configure(level: str = "INFO", form: str = "text") -> None:
    """The `arcane` logger (and the Socket.IO libraries', which log through theirs) at `level`,
    in `form`, to stderr; unless the host set up logging itself (a handler on the root)."""
    ours = logging.getLogger("arcane")
    ours.setLevel(level)
    if logging.getLogger().handlers or any(not getattr(h, "arcane", False) for h in ours.handlers):
        return  # the host set up logging itself (a root handler, a --log-config)
    handler = next((h for h in ours.handlers if getattr(h, "arcane", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.arcane = True  # type: ignore[attr-defined]
        handler.addFilter(ContextFilter())
        ours.addHandler(handler)
    handler.setFormatter(formatter(form))
