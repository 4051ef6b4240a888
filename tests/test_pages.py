"""The pages and their assets as served: policy headers, caching, the vendored client, no foreign code."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import LiveServer, Player, http_client

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "static" / "vendor" / "socket.io-client"
OWN_SCRIPTS = [p for p in (ROOT / "static" / "js").rglob("*.js")]


async def test_every_page_forbids_inline_script_and_foreign_sources(server: LiveServer) -> None:
    ann = await Player.create(server, "Ann")
    async with http_client(server.url) as client:
        for path in ("/", f"/game/{ann.game_code}", "/diagnostics"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html")
            policy = response.headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
            assert directives["script-src"] == "'self'"
            assert directives["default-src"] == "'self'"
            assert directives["object-src"] == "'none'"
            assert directives["frame-ancestors"] == "'none'"
            assert "unsafe" not in policy
            assert response.headers["x-content-type-options"] == "nosniff"
    await ann.close()


async def test_the_game_page_names_its_game_and_a_malformed_code_goes_home(server: LiveServer) -> None:
    async with http_client(server.url) as client:
        page = await client.get("/game/k7q2zd")
        assert page.status_code == 200
        assert 'data-game-code="K7Q2ZD"' in page.text
        refused = await client.get("/game/%3Cscript%3E")
        assert refused.status_code == 302
        assert refused.headers["location"] == "/"


async def test_modules_are_javascript_and_revalidated_on_every_load(server: LiveServer) -> None:
    async with http_client(server.url) as client:
        for path in ("/static/js/arcane/index.js", "/static/vendor/socket.io-client/socket.io.esm.min.js",
                     "/static/css/arcane.css"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "no-cache" in response.headers["cache-control"], path
            assert "max-age" not in response.headers["cache-control"], path
            assert "expires" not in response.headers, path
        module = await client.get("/static/js/arcane/index.js")
        assert module.headers["content-type"].startswith("text/javascript")


def test_the_vendored_socketio_client_is_the_pinned_4x_with_its_licence() -> None:
    version = (VENDOR / "VERSION").read_text().strip()
    assert re.fullmatch(r"4\.\d+\.\d+", version), version
    build = (VENDOR / "socket.io.esm.min.js").read_text()
    assert build.startswith(f"/*!\n * Socket.IO v{version}\n"), build[:80]
    assert "Permission is hereby granted, free of charge" in (VENDOR / "LICENSE").read_text()
    assert (VENDOR / "INTEGRITY").read_text().startswith("sha512-")
    imports = {m for p in OWN_SCRIPTS for m in re.findall(r'from "([^"]*socket\.io[^"]*)"', p.read_text())}
    assert imports == {"../../../vendor/socket.io-client/socket.io.esm.min.js"}


def test_nothing_is_loaded_from_another_origin() -> None:
    sources = [*OWN_SCRIPTS, *(ROOT / "templates").glob("*.html"), ROOT / "static" / "css" / "arcane.css"]
    foreign = re.compile(r'(?:from\s+|import\(|src=|href=|url\()\s*["\']?(?:https?:)?//', re.I)
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in sources for m in foreign.finditer(p.read_text())]
    assert offenders == []


def test_page_scripts_never_parse_strings_as_html() -> None:
    sink = re.compile(r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in OWN_SCRIPTS
                 for n, line in enumerate(p.read_text().splitlines(), 1) if sink.search(line)]
    assert offenders == []
