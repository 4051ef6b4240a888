"""Settings come from ARCANE_* variables; the secret key is generated once and kept."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from arcane import create_app
from arcane.config import Settings, WeakSecretKey


def test_settings_read_numbers_paths_and_origins_from_the_environment() -> None:
    settings = Settings.from_env({
        "ARCANE_DATABASE": "/var/lib/arcane/codex.db",
        "ARCANE_SECRET_KEY_FILE": "/etc/arcane/key",
        "ARCANE_MAX_PLAYERS": "3",
        "ARCANE_TURNS_PER_GAME": "12",
        "ARCANE_LOG_RETENTION": "500",
        "ARCANE_SCENARIO_TIMEOUT": "2.5",
        "ARCANE_PING_INTERVAL": "10",
        "ARCANE_CORS_ORIGINS": "https://codex.example, http://localhost:5173,, ",
        "ARCANE_SECRET_KEY": "s3cret",
        "ARCANE_POLL_TIMEOUT": "",  # empty means unset
        "ARCANE_NOT_A_SETTING": "ignored",
        "MAX_PLAYERS": "1",  # without the prefix it is not ours
    })
    assert settings.database == Path("/var/lib/arcane/codex.db")
    assert settings.secret_key_file == Path("/etc/arcane/key")
    assert settings.max_players == 3 and isinstance(settings.max_players, int)
    assert settings.turns_per_game == 12 and settings.log_retention == 500
    assert settings.scenario_timeout == 2.5 and isinstance(settings.scenario_timeout, float)
    assert settings.ping_interval == 10.0 and isinstance(settings.ping_interval, float)
    assert settings.cors_origins == ("https://codex.example", "http://localhost:5173")
    assert settings.secret_key == "s3cret"
    assert settings.poll_timeout == Settings().poll_timeout


def test_without_variables_the_defaults_hold_and_overrides_win() -> None:
    assert Settings.from_env({}) == Settings()
    settings = Settings.from_env({"ARCANE_MAX_PLAYERS": "2"}, max_players=4, turns_per_game=3)
    assert settings.max_players == 4 and settings.turns_per_game == 3


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCANE_QUESTIONS_PER_PLAYER", "7")
    monkeypatch.setenv("ARCANE_CORS_ORIGINS", "https://one.example")
    settings = Settings.from_env()
    assert settings.questions_per_player == 7
    assert settings.cors_origins == ("https://one.example",)


@pytest.mark.parametrize(("name", "raw"), [
    ("MAX_PLAYERS", "four"), ("MAX_PLAYERS", "2.5"), ("LOG_RETENTION", "1e3x"),
    ("SCENARIO_TIMEOUT", "soon"), ("PING_INTERVAL", "25s"),
])
def test_a_setting_that_is_not_a_number_is_refused_by_name(name: str, raw: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env({f"ARCANE_{name}": raw})
    message = str(caught.value)
    assert f"ARCANE_{name}" in message and "number" in message and repr(raw) in message


def test_a_missing_secret_key_is_generated_once_into_a_private_file(tmp_path: Path) -> None:
    settings = Settings(database=tmp_path / "codex.db")
    key_file = tmp_path / "codex.db.secret"
    assert not key_file.exists()
    key = settings.resolved_secret_key()
    assert len(key) >= 32
    assert key_file.read_text() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert settings.resolved_secret_key() == key
    assert Settings(database=tmp_path / "codex.db").resolved_secret_key() == key
    assert Settings(database=tmp_path / "other.db").resolved_secret_key() != key


def test_the_key_file_may_live_elsewhere_and_a_given_key_needs_no_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "arcane.key"
    settings = Settings(database=tmp_path / "codex.db", secret_key_file=key_file)
    key = settings.resolved_secret_key()
    assert key_file.read_text() == key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (tmp_path / "codex.db.secret").exists()

    given = Settings(database=tmp_path / "third.db", secret_key="configured-" + "k" * 32)
    assert given.resolved_secret_key() == "configured-" + "k" * 32
    assert not (tmp_path / "third.db.secret").exists()


def test_a_generated_key_keeps_player_tokens_valid_across_restarts(tmp_path: Path) -> None:
    settings = Settings(database=tmp_path / "codex.db")
    before, after = create_app(settings), create_app(settings)
    assert before.quart.secret_key == after.quart.secret_key
    token = before.runtime.services.tokens.issue("ABC123", "p1")
    assert after.runtime.services.tokens.read(token).player_id == "p1"


@pytest.mark.parametrize("key", ["", "short", "k" * 31])
def test_a_key_file_with_a_short_key_is_refused_with_the_way_to_make_one(tmp_path: Path, key: str) -> None:
    key_file = tmp_path / "arcane.key"
    key_file.write_text(key)
    with pytest.raises(WeakSecretKey) as caught:
        Settings(database=tmp_path / "codex.db", secret_key_file=key_file).resolved_secret_key()
    assert "at least 32" in str(caught.value) and str(key_file) in str(caught.value)
    assert "secrets.token_urlsafe" in str(caught.value)


def test_a_short_configured_key_is_refused() -> None:
    with pytest.raises(WeakSecretKey, match="ARCANE_SECRET_KEY"):
        Settings(secret_key="s3cret").resolved_secret_key()
    assert Settings(secret_key="k" * 32).resolved_secret_key() == "k" * 32


def test_a_postgresql_url_is_kept_whole_and_its_password_never_logged() -> None:
    from arcane.config import described

    url = "postgresql://arcane:s3cret@db.internal:5432/codex"
    settings = Settings.from_env({"ARCANE_DATABASE": url})
    assert settings.database == url  # not a Path, which would fold its "//"
    assert described(url) == "postgresql://arcane:***@db.internal:5432/codex"
    assert "s3cret" not in described(url)
    assert Settings.from_env({"ARCANE_DATABASE": "games/arcane.db"}).database == Path("games/arcane.db")


def test_postgresql_without_a_shared_key_is_refused_rather_than_given_a_key_of_its_own() -> None:
    settings = Settings(database="postgresql://arcane@127.0.0.1/codex")
    with pytest.raises(WeakSecretKey, match="ARCANE_SECRET_KEY or ARCANE_SECRET_KEY_FILE"):
        settings.resolved_secret_key()
