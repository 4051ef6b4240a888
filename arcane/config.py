"""Settings read from ARCANE_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Settings:
    database: Path = Path("arcane.db")
    secret_key: str = ""
    secret_key_file: Path | None = None
    max_players: int = 4
    questions_per_player: int = 5
    turns_per_game: int = 8
    log_retention: int = 10_000
    scenario_timeout: float = 10.0
    cors_origins: tuple[str, ...] = ()
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 16_384
    rate_limit_per_second: float = 10.0
    rate_limit_burst: int = 30
    presence_grace: float = 3.0
    sse_heartbeat: float = 15.0
    sse_retry_ms: int = 2_000
    stream_buffer: int = 1_000
    poll_timeout: float = 25.0
    poll_timeout_max: float = 55.0
    redis_url: str = ""
    redis_prefix: str = "arcane"
    presence_ttl: float = 15.0
    websocket_compression: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"ARCANE_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        values.update(overrides)
        return cls(**values)

    def resolved_secret_key(self) -> str:
        """The configured key, else one generated once and kept beside the database."""
        if self.secret_key:
            return self.secret_key
        path = self.secret_key_file or self.database.with_name(self.database.name + ".secret")
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        # Written aside then linked into place: workers starting together agree on one key,
        # and none reads a half-written file.
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        return path.read_text().strip()


_INTS = {
    "max_players", "questions_per_player", "turns_per_game", "log_retention", "max_payload",
    "rate_limit_burst", "sse_retry_ms", "stream_buffer",
}
_BOOLS = {"websocket_compression"}
_FLOATS = {
    "scenario_timeout", "ping_interval", "ping_timeout", "rate_limit_per_second",
    "presence_grace", "sse_heartbeat", "poll_timeout", "poll_timeout_max", "presence_ttl",
}


def _parse(name: str, raw: str) -> Any:
    try:
        if name in _INTS:
            return int(raw)
        if name in _FLOATS:
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"ARCANE_{name.upper()} must be a number, got {raw!r}") from exc
    if name in _BOOLS:
        if raw.strip().lower() not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise ValueError(f"ARCANE_{name.upper()} must be true or false, got {raw!r}")
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if name in {"database", "secret_key_file"}:
        return Path(raw)
    if name == "cors_origins":
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    return raw
