"""What every HTTP route shares: the runtime, JSON bodies, and who the caller is."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quart import current_app, request, session

from arcane import jsoncodec
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.game.records import Identity, Member
from arcane.game.service import Seat
from arcane.identity import bearer, remember, seat_of
from arcane.limits import RateLimited
from arcane.logs import bind
from arcane.transports import Services

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


def runtime() -> Services:
    """The server's services (arcane.transports.Services), as every transport has them."""
    services: Services = current_app.extensions["arcane"]
    return services


async def json_body() -> dict[str, Any]:
    return json_object(await request.get_data(as_text=False))


def json_object(raw: bytes | str) -> dict[str, Any]:
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


def bearer_token(*, allow_query: bool = False) -> str | None:
    token = bearer(request.headers.get("Authorization", ""))
    if token is None and allow_query:
        return request.args.get("token") or None
    return token


async def caller(code: str, *, allow_query_token: bool = False) -> tuple[Identity, Member]:
    """The caller's seat in game `code`, by bearer token or session cookie."""
    rt = runtime()
    ident, member = await seat_of(rt, code, bearer_token(allow_query=allow_query_token), session,
                                  address=rt.limits.address(request.scope))
    bind(game_code=ident.game_code, player_id=ident.player_id)
    return ident, member


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
