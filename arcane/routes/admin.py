"""The operator's side over HTTP: GET /metrics (arcane/metrics.py), the /admin dashboard and
its API (arcane/admin.py gathers what it shows).

Every route here is refused unless the caller presents ARCANE_ADMIN_TOKEN, as `Authorization:
Bearer <token>` (compared in constant time) or as the admin cookie that the dashboard's
sign-in form sets (`arcane_admin`: signed with the server's secret key, HttpOnly,
SameSite=Strict, Secure over https, for ADMIN_COOKIE_HOURS). With no token set, they are off
(404, as if they did not exist), unless ARCANE_ADMIN_LOOPBACK=true lets callers on this
machine in without one: a Prometheus on the same host, an operator over SSH.

What an operator does to a game (end it, remove a player) is an action like a player's,
logged in the game's stream with the admin as its author (`game_ended`, `player_removed`).
"""

from __future__ import annotations

import hashlib
import hmac
from ipaddress import ip_address
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from quart import Blueprint, Response, current_app, jsonify, render_template, request

from arcane import admin
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.game import actions
from arcane.game.service import normalize_code
from arcane.identity import bearer
from arcane.metrics import CONTENT_TYPE, Metrics
from arcane.peers import is_https
from arcane.routes.common import json_body, runtime

blueprint = Blueprint("admin", __name__)
ADMIN_COOKIE = "arcane_admin"
ADMIN_COOKIE_HOURS = 12
AUTHOR = "admin"


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.secret_key), salt="arcane-admin")


def _token_digest(token: str) -> str:
    """What the cookie carries: a digest of the token, so a new token signs everyone out."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def require_admin() -> None:
    settings = runtime().settings
    token = settings.admin_token
    if token:
        presented = bearer(request.headers.get("authorization", ""))
        if presented is not None:
            if hmac.compare_digest(presented.encode(), token.encode()):
                return
        elif _cookie_valid(token):
            return
        raise ArcaneError(ErrorCode.AUTH_REQUIRED, "present the admin token: Authorization: Bearer <token>")
    if settings.admin_loopback and _loopback(runtime().limits.address(request.scope)):
        return
    raise ArcaneError(ErrorCode.NOT_FOUND, "no such page")


def _cookie_valid(token: str) -> bool:
    raw = request.cookies.get(ADMIN_COOKIE)
    if not raw:
        return False
    try:
        digest = _signer().loads(raw, max_age=ADMIN_COOKIE_HOURS * 3600)
    except (BadSignature, SignatureExpired):
        return False
    return isinstance(digest, str) and hmac.compare_digest(digest, _token_digest(token))


def _loopback(address: str) -> bool:
    """The caller's own address (through trusted proxies only, arcane/peers.py): a local
    proxy's does not count, the client behind it does."""
    try:
        return ip_address(address).is_loopback
    except ValueError:
        return False


def _off_unless_configured() -> None:
    """The dashboard's shell and sign-in exist only where an operator may get in."""
    settings = runtime().settings
    if not settings.admin_token and not (settings.admin_loopback and _loopback(runtime().limits.address(request.scope))):
        raise ArcaneError(ErrorCode.NOT_FOUND, "no such page")


# -- Prometheus ----------------------------------------------------------------------------------

@blueprint.get("/metrics")
async def metrics() -> Response:
    require_admin()
    exposed: Metrics = current_app.extensions["arcane_metrics"]
    return Response(await exposed.exposition(), status=200,
                    headers={"content-type": CONTENT_TYPE, "cache-control": "no-store"})


# -- the dashboard -------------------------------------------------------------------------------

@blueprint.get("/admin")
async def dashboard() -> Any:
    _off_unless_configured()
    return await render_template("admin.html", page="admin")


@blueprint.post("/admin/session")
async def sign_in() -> Any:
    """The sign-in form: the token in a JSON body; the answer sets the admin cookie."""
    _off_unless_configured()
    token = runtime().settings.admin_token
    body = await json_body()
    presented = body.get("token")
    if not isinstance(presented, str) or not presented:
        raise validation("token is required")
    if not token or not hmac.compare_digest(presented.encode(), token.encode()):
        # A wrong guess spends the address's budget of failed lookups, as a wrong game code does.
        limits = runtime().limits
        raise await limits.failed_lookup(limits.address(request.scope),
                                         ArcaneError(ErrorCode.AUTH_REQUIRED, "that is not the admin token"))
    response = jsonify({"ok": True})
    response.set_cookie(ADMIN_COOKIE, _signer().dumps(_token_digest(token)), max_age=ADMIN_COOKIE_HOURS * 3600,
                        httponly=True, samesite="Strict", secure=is_https(dict(request.scope), runtime().limits.proxies),
                        path="/")
    return response


@blueprint.post("/admin/session/end")
async def sign_out() -> Any:
    response = jsonify({"ok": True})
    response.delete_cookie(ADMIN_COOKIE, path="/")
    return response


@blueprint.get("/api/admin/overview")
async def overview() -> Any:
    require_admin()
    return jsonify(await admin.overview(current_app.extensions["arcane_admin"]))


@blueprint.get("/api/admin/games/<code>")
async def game(code: str) -> Any:
    require_admin()
    return jsonify(await admin.game(runtime(), normalize_code(code)))


@blueprint.post("/api/admin/games/<code>/end")
async def end(code: str) -> Any:
    require_admin()
    body = await json_body()
    reason = body.get("reason") or "ended by an operator"
    if not isinstance(reason, str) or len(reason) > 200:
        raise validation("reason is a text of at most 200 characters")
    ended = await runtime().store.run(actions.end_game, (normalize_code(code), AUTHOR, reason))
    return jsonify({"ok": True, "ended": ended})


@blueprint.post("/api/admin/games/<code>/players/<player_id>/remove")
async def remove(code: str, player_id: str) -> Any:
    require_admin()
    rt = runtime()
    code = normalize_code(code)
    next_turn = await rt.store.run(actions.remove_player, (code, player_id, AUTHOR, rt.settings.turns_per_game))
    if next_turn:
        await rt.service.advance(code)
    return jsonify({"ok": True})
