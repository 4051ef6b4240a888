"""What every HTTP route shares: the runtime, JSON bodies, and who the caller is."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from quart import current_app, request, session

from arcane import jsoncodec
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.game.records import Identity, Member
from arcane.game.service import normalize_code
from arcane.identity import remember

log = logging.getLogger(__name__)


def seat_token(ident: Identity) -> str:
    """The new seat's token, with the seat also kept in the session cookie.

    The seat is committed by now: if the cookie cannot be written, the answer still
    carries the token, which alone is a full credential, instead of a 500 that would
    leave the caller with a seat it cannot use.
    """
    token: str = runtime().tokens.issue(ident.game_code, ident.player_id)
    try:
        remember(session, ident, keep=runtime().settings.session_games_max)
    except Exception:
        log.exception("seat %s of game %s answered with its token only: the session cookie "
                      "could not keep it", ident.player_id, ident.game_code)
    return token


def runtime() -> Any:
    return current_app.extensions["arcane"]


async def json_body() -> dict[str, Any]:
    raw = await request.get_data()
    if not raw:
        return {}
    try:
        body = jsoncodec.loads(raw)
    except (ValueError, RecursionError):  # malformed, not text at all, or nested past the parser
        body = None
    if not isinstance(body, dict):
        raise validation("the request body must be a JSON object")
    return body


def bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def bearer_token(*, allow_query: bool = False) -> str | None:
    token = bearer(request.headers.get("Authorization", ""))
    if token is None and allow_query:
        return request.args.get("token") or None
    return token


async def caller(code: str, *, allow_query_token: bool = False) -> tuple[Identity, Member]:
    """The caller's seat in game `code`, by bearer token or session cookie."""
    return await seat_of(runtime(), code, bearer_token(allow_query=allow_query_token), session)


async def seat_of(rt: Any, code: str, token: str | None, session: Mapping[str, Any]) -> tuple[Identity, Member]:
    """`caller` for any transport: the seat that the token (else the session) gives in `code`."""
    from arcane.identity import identity_for

    code = normalize_code(code)
    try:
        ident = identity_for(code, token, session, rt.tokens)
    except ArcaneError:
        await rt.service.require_game(code)  # INVALID_GAME before any complaint about the caller
        raise
    return ident, await rt.service.authenticate(ident)  # reads the games table only to refuse


async def acting(code: str) -> tuple[Identity, Member]:
    """`caller` for a request that acts in the game: it counts against the player's rate limit."""
    ident, member = await caller(code)
    await limit(ident)
    return ident, member


async def limit(ident: Identity) -> None:
    if not await runtime().limiter.allow(ident.rate_key):
        raise ArcaneError(ErrorCode.RATE_LIMITED, "too many actions; slow down")
