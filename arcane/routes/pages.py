"""The pages players open in a browser: home, a game's table, and the client diagnostics.

Pages are HTML shells; static/js/ fills them from the HTTP API and the game's events.
Every page forbids inline script (Content-Security-Policy), so player text that slipped
into markup could never run.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, redirect, render_template, request, url_for

from arcane.errors import ArcaneError
from arcane.game.service import normalize_code

blueprint = Blueprint("pages", __name__)


def content_security_policy(host: str) -> str:
    # Websockets are listed by host as well as 'self': older engines do not map 'self' to ws(s).
    sockets = f"ws://{host} wss://{host}" if host else ""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self' {sockets}".strip(),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


@blueprint.after_request
async def page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy(request.host)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.after_app_request
async def revalidate_static(response: Response) -> Response:
    """Static files are revalidated (ETag) on every load: a new client never meets a stale module."""
    if request.endpoint == "static":
        response.cache_control.max_age = None
        response.cache_control.no_cache = True
        response.headers.pop("Expires", None)
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get("/")
async def home() -> Any:
    return await render_template("index.html", page="home")


@blueprint.get("/game/<code>")
async def game(code: str) -> Any:
    return await _game_page("game", code)


@blueprint.get("/games/<code>/replay")
async def replay(code: str) -> Any:
    """A finished game, turn by turn (static/js/pages/replay.js reads its recap)."""
    return await _game_page("replay", code)


async def _game_page(page: str, code: str) -> Any:
    """A game's page (the code checked for shape only: the page asks the API the rest)."""
    try:
        code = normalize_code(code)
    except ArcaneError:
        return redirect(url_for("pages.home"))
    return await render_template(f"{page}.html", page=page, game_code=code)


@blueprint.get("/diagnostics")
async def diagnostics() -> Any:
    return await render_template("diagnostics.html", page="diagnostics")
