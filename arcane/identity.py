"""Player tokens and the identities kept in the session cookie; shared by every transport."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeSerializer

from arcane.errors import ArcaneError, ErrorCode
from arcane.game.records import Identity, Member
from arcane.game.service import GameService, normalize_code
from arcane.limits import Limits

SESSION_GAMES = "games"
SESSION_CURRENT = "current_game"


class Tokens:
    """Signed tokens naming a seat. A token says who signed it and for which seat, nothing
    more: whether the seat still lives (it has not left the game) and has been used within
    ARCANE_TOKEN_TTL is the seat's record, read on every use (`GameService.authenticate`).
    """

    # Tokens already verified, so a client that sends its token with every request (each
    # long-poll, each stream) is checked once: a token's signature never changes verdict
    # while the key stays the same, and the key is fixed for the process's life. Expiry and
    # revocation are not cached here, so a cached token cannot outlive its seat.
    VERIFIED_MAX = 16_384

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="arcane-player-token")
        self._verified: dict[str, Identity] = {}

    def issue(self, game_code: str, player_id: str) -> str:
        return self._serializer.dumps({"g": game_code, "p": player_id})

    def read(self, token: str) -> Identity:
        ident = self._verified.get(token)
        if ident is not None:
            return ident
        ident = self._verify(token)
        if len(self._verified) >= self.VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = ident
        return ident

    def _verify(self, token: str) -> Identity:
        try:
            data = self._serializer.loads(token)
        except BadSignature as exc:
            raise ArcaneError(ErrorCode.AUTH_REQUIRED, "the player token is not valid") from exc
        if not isinstance(data, dict) or not isinstance(data.get("g"), str) or not isinstance(data.get("p"), str):
            raise ArcaneError(ErrorCode.AUTH_REQUIRED, "the player token is not valid")
        return Identity(data["g"], data["p"])


def session_games(session: Mapping[str, Any]) -> dict[str, str]:
    games = session.get(SESSION_GAMES)
    return dict(games) if isinstance(games, dict) else {}


def remember(session: Any, ident: Identity, *, keep: int) -> None:
    """Keep the seat in the signed session cookie; one browser may sit in several games.

    Only the `keep` most recent seats stay: browsers drop a cookie past about 4 KB, and
    every seat is about 20 bytes of it. An older seat still works by its token.
    """
    games = session_games(session)
    games.pop(ident.game_code, None)
    games[ident.game_code] = ident.player_id  # last: the most recent
    for code in list(games)[:-max(1, keep)]:
        del games[code]
    session[SESSION_GAMES] = games
    session[SESSION_CURRENT] = ident.game_code
    session.permanent = True  # re-signed on each response: it expires token_ttl after its last use


def identity_for(game_code: str, token: str | None, session: Mapping[str, Any], tokens: Tokens) -> Identity:
    """The caller's identity in `game_code`: a token wins over the session cookie.

    Raises AUTH_REQUIRED without any identity, NOT_IN_GAME with one for other games only.
    """
    if token:
        ident = tokens.read(token)
        if ident.game_code != game_code:
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "this token belongs to another game")
        return ident
    games = session_games(session)
    if game_code in games:
        return Identity(game_code, games[game_code])
    if games:
        raise ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game")
    raise ArcaneError(ErrorCode.AUTH_REQUIRED, "join the game first, or send your player token")


SESSION_COOKIE = "arcane_session"


def cookie_session(raw: str, load: Callable[[str], dict[str, Any] | None]) -> dict[str, Any]:
    """The signed session from a raw Cookie header, outside Quart's request (sockets, streams)."""
    if not raw:
        return {}
    try:
        cookie = SimpleCookie(raw)
    except CookieError:
        return {}
    morsel = cookie.get(SESSION_COOKIE)
    return (load(morsel.value) or {}) if morsel else {}


def bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


class Seating(Protocol):
    """What finding a caller's seat needs (arcane.transports.Services has it all)."""

    @property
    def tokens(self) -> Tokens: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def service(self) -> GameService: ...


async def seat_of(services: Seating, code: Any, token: str | None, session: Mapping[str, Any], *,
                  address: str) -> tuple[Identity, Member]:
    """The seat that the token (else the session) gives in game `code`, on any transport.

    A caller without a seat in `code` gets the same answer whether or not the game exists
    (AUTH_REQUIRED, or NOT_IN_GAME with seats elsewhere), counted against the address's
    budget of failed lookups: game codes cannot be enumerated (docs/client.md)."""
    code = normalize_code(code)
    try:
        ident = identity_for(code, token, session, services.tokens)
    except ArcaneError as refusal:
        raise await services.limits.failed_lookup(address, refusal) from None
    return ident, await services.service.authenticate(ident)  # reads the games table only to refuse
