"""The integration guide names every event the server can emit and every event it handles."""

from __future__ import annotations

import re
from pathlib import Path

from arcane.config import Settings
from arcane.events import EPHEMERAL_EVENTS

ROOT = Path(__file__).resolve().parent.parent
EMITTERS = re.compile(r'(?:\.log\(|Event\(|\.emit\()\s*(?:[\w.\[\]]+\s*,\s*)?"(\w+)"', re.S)
HANDLERS = re.compile(r'"(\w+)":\s*self\.\w+,')


def server_emitted_events() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "arcane").rglob("*.py"):
        names |= set(EMITTERS.findall(path.read_text()))
    return names


def documented(doc: str) -> set[str]:
    return set(re.findall(r"^\| `(\w+)` \|", doc, re.M))


def test_every_event_the_server_emits_is_documented() -> None:
    emitted = server_emitted_events()
    assert {"whisper", "turn_resolution", "player_typing", "pong", "reconnect_sync", "error"} <= emitted
    missing = emitted - documented((ROOT / "docs" / "realtime.md").read_text())
    assert not missing, f"undocumented server events: {sorted(missing)}"
    assert EPHEMERAL_EVENTS <= emitted


def test_every_client_event_the_server_handles_is_documented() -> None:
    handled = set(HANDLERS.findall((ROOT / "arcane" / "realtime" / "handlers.py").read_text()))
    assert {"join_game_room", "make_choice", "ping"} <= handled
    missing = handled - documented((ROOT / "docs" / "realtime.md").read_text())
    assert not missing, f"undocumented client events: {sorted(missing)}"


def test_every_setting_is_documented() -> None:
    docs = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
    missing = [f"ARCANE_{name.upper()}" for name in Settings.__dataclass_fields__
               if f"ARCANE_{name.upper()}" not in docs]
    assert not missing, f"undocumented settings: {missing}"


def test_the_browser_client_listens_for_every_event_the_server_emits() -> None:
    """An SSE stream delivers only the event names the client listens for: one missing from
    static/js/arcane/transports/events.js never reaches a page on that transport."""
    listed = set(re.findall(r'"(\w+)"', (ROOT / "static" / "js" / "arcane" / "transports" / "events.js").read_text()))
    missing = server_emitted_events() - listed
    assert not missing, f"the browser client does not listen for {sorted(missing)}"
