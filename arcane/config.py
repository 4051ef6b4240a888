"""Settings read from ARCANE_* environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from arcane import logs
from arcane.serving import fastpaths


@dataclass(frozen=True, kw_only=True)
class Settings:
    database: Path | str = Path("arcane.db")  # a SQLite file, or a postgresql:// URL
    secret_key: str = ""
    secret_key_file: Path | None = None
    max_players: int = 4
    questions_per_player: int = 5
    turns_per_game: int = 8
    turn_timeout: float = 180.0  # seconds a turn waits for its choices; 0: for ever
    log_level: str = "INFO"  # the arcane logger's level (arcane/logs.py)
    # On SIGTERM, clients are told to reconnect and let go over this many seconds: keep it
    # below hypercorn's --graceful-timeout (default 3 s), which then cuts what is left.
    drain_seconds: float = 1.0
    # The operator's side (/metrics, /admin): refused unless the caller presents this token;
    # unset, both are off, unless admin_loopback lets callers on this machine in without one.
    admin_token: str = field(default="", repr=False)
    admin_loopback: bool = False
    log_format: str = "text"  # or json: one object per line
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
    # The fast paths through the server libraries' private names (arcane/serving/): on, off,
    # the names to keep, or the -names to drop.
    fast_paths: str = "on"
    # Hardening (docs/security.md).
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-* headers we believe
    allowed_hosts: tuple[str, ...] = ()  # Host names served (empty: any), against DNS rebinding
    secure_cookies: str = "auto"  # auto: Secure when the request came over https; on; off
    hsts_max_age: int = 31_536_000  # sent while cookies are Secure
    token_ttl: float = 30 * 86_400.0  # a player token's lifetime, renewed on use
    max_spectators: int = 50
    max_connections_per_identity: int = 16  # live SSE streams, long-polls and sockets of one seat
    max_connections_per_address: int = 256
    stream_buffer_bytes: int = 1_048_576  # a slow consumer is cut past this many queued bytes
    create_rate_per_minute: float = 30.0  # games, players and spectators created per client address
    create_burst: int = 10
    read_rate_per_second: float = 20.0  # views and polls per identity
    read_burst: int = 60
    lookup_failures_per_minute: float = 30.0  # failed game-code lookups per address
    session_games_max: int = 20  # seats kept in the session cookie, most recent first

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
        """The configured key, else one generated once and kept beside the database.

        A key under MIN_SECRET_KEY_BYTES is refused: it signs every token and cookie.
        """
        if self.secret_key:
            return _strong(self.secret_key, "ARCANE_SECRET_KEY")
        if self.secret_key_file is None and not isinstance(self.database, Path):
            raise WeakSecretKey("with a PostgreSQL database every host must sign with one key: set "
                                "ARCANE_SECRET_KEY or ARCANE_SECRET_KEY_FILE (a key made here would be this host's alone)")
        path = self.secret_key_file or Path(self.database).with_name(Path(self.database).name + ".secret")
        try:
            return _strong(path.read_text().strip(), f"the key file {path}")
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


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def described(database: Path | str) -> str:
    """The database as a log line may show it: a URL without its password."""
    if not is_postgres_url(database):
        return str(database)
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(str(database))
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2 and ":" in netloc[0]:
        netloc[0] = netloc[0].split(":", 1)[0] + ":***"
    return urlunsplit((parts.scheme, "@".join(netloc), parts.path, "", ""))


class WeakSecretKey(ValueError):
    """The session key is too short to sign tokens and cookies."""


def _strong(key: str, where: str) -> str:
    if len(key.encode()) < MIN_SECRET_KEY_BYTES:
        raise WeakSecretKey(
            f"{where} holds a secret key of {len(key.encode())} bytes; at least {MIN_SECRET_KEY_BYTES} "
            "are needed. Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return key


_INTS = {
    "max_players", "questions_per_player", "turns_per_game", "log_retention", "max_payload",
    "rate_limit_burst", "sse_retry_ms", "stream_buffer", "hsts_max_age", "max_spectators",
    "max_connections_per_identity", "max_connections_per_address", "stream_buffer_bytes",
    "create_burst", "read_burst", "session_games_max",
}
_BOOLS = {"websocket_compression", "admin_loopback"}
_TUPLES = {"cors_origins", "trusted_proxies", "allowed_hosts"}
MIN_SECRET_KEY_BYTES = 32
_FLOATS = {
    "scenario_timeout", "turn_timeout", "drain_seconds", "ping_interval", "ping_timeout", "rate_limit_per_second",
    "presence_grace", "sse_heartbeat", "poll_timeout", "poll_timeout_max", "presence_ttl",
    "token_ttl", "create_rate_per_minute", "read_rate_per_second", "lookup_failures_per_minute",
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
    if name == "database" and is_postgres_url(raw):
        return raw.strip()
    if name in {"database", "secret_key_file"}:
        return Path(raw)
    if name in _TUPLES:
        return tuple(o.strip() for o in raw.split(",") if o.strip())
    if name == "fast_paths":
        fastpaths.parse(raw)  # refuses an unknown name
        return raw.strip().lower()
    if name == "log_level":
        value = raw.strip().upper()
        if value not in logs.LEVELS:
            raise ValueError(f"ARCANE_LOG_LEVEL must be one of {', '.join(logs.LEVELS)}, got {raw!r}")
        return value
    if name == "log_format":
        value = raw.strip().lower()
        if value not in logs.FORMATS:
            raise ValueError(f"ARCANE_LOG_FORMAT must be text or json, got {raw!r}")
        return value
    if name == "secure_cookies":
        value = raw.strip().lower()
        value = {"1": "on", "true": "on", "yes": "on", "0": "off", "false": "off", "no": "off"}.get(value, value)
        if value not in {"auto", "on", "off"}:
            raise ValueError(f"ARCANE_SECURE_COOKIES must be auto, on or off, got {raw!r}")
        return value
    return raw
