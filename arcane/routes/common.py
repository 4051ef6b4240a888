"""What every HTTP route shares: the runtime, JSON bodies, and who the caller is."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from quart import current_app, request, session

from arcane import jsoncodec
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.game.records import Identity, Member
from arcane.game.service import Seat, normalize_code
from arcane.identity import remember
from arcane.limits import RateLimited

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
    return json_object(await request.get_data())


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object: none at all is {}; anything else is VALIDATION_ERROR."""
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
    rt = runtime()
    return await seat_of(rt, code, bearer_token(allow_query=allow_query_token), session,
                         address=rt.limits.address(request.scope))


async def seat_of(rt: Any, code: str, token: str | None, session: Mapping[str, Any], *,
                  address: str) -> tuple[Identity, Member]:
    """`caller` for any transport: the seat that the token (else the session) gives in `code`.

    A caller without a seat in `code` gets the same answer whether or not the game exists
    (AUTH_REQUIRED, or NOT_IN_GAME with seats elsewhere), counted against the address's
    budget of failed lookups: game codes cannot be enumerated (docs/client.md)."""
    from arcane.identity import identity_for

    code = normalize_code(code)
    try:
        ident = identity_for(code, token, session, rt.tokens)
    except ArcaneError as refusal:
        raise await rt.limits.failed_lookup(address, refusal) from None
    return ident, await rt.service.authenticate(ident)  # reads the games table only to refuse


async def reading(code: str) -> tuple[Identity, Member]:
    """`caller` for a view: it counts against the identity's read limit."""
    ident, member = await caller(code)
    await runtime().limits.read(ident)
    return ident, member


async def new_seat(make: Callable[[], Awaitable[Seat]]) -> Seat:
    """Create, join or watch: limited per client address, and a wrong game code counts
    against the address's budget of failed lookups."""
    limits = runtime().limits
    await limits.create(request.scope)
    try:
        return await make()
    except ArcaneError as refusal:
        if refusal.code is not ErrorCode.INVALID_GAME:
            raise
        raise await limits.failed_lookup(limits.address(request.scope), refusal) from None


async def acting(code: str) -> tuple[Identity, Member]:
    """`caller` for a request that acts in the game: it counts against the player's rate limit."""
    ident, member = await caller(code)
    await limit(ident)
    return ident, member


async def limit(ident: Identity) -> None:
    rt = runtime()
    if not await rt.limiter.allow(ident.rate_key):
        raise RateLimited("too many actions; slow down", retry_after=1 / rt.settings.rate_limit_per_second)
