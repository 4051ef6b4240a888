"""The original game's routes, kept working on the same service; they act on the session's game."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify, session

from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.game.records import Identity
from arcane.game.service import clean_name
from arcane.identity import SESSION_CURRENT, session_games
from arcane.routes.common import bearer_token, json_body, limit, new_seat, runtime, seat_token

blueprint = Blueprint("legacy", __name__)
SESSION_USERNAME = "username"


async def viewer() -> Identity:
    """`current_identity` for a legacy view: it counts against the identity's read limit."""
    ident = await current_identity()
    await runtime().limits.read(ident)
    return ident


async def current_identity() -> Identity:
    """The caller's current game: the bearer token's, else the session's current one.

    Checked as every route checks its caller (the seat lives and has not expired)."""
    token = bearer_token()
    if token is not None:
        ident = runtime().tokens.read(token)
    else:
        code = session.get(SESSION_CURRENT)
        games = session_games(session)
        if not code or code not in games:
            raise ArcaneError(ErrorCode.NO_GAME, "you are not in a game: create or join one first")
        ident = Identity(code, games[code])
    await runtime().service.authenticate(ident)
    return ident


async def _name(body: dict[str, Any]) -> str:
    name = body.get("player_name") or body.get("username") or session.get(SESSION_USERNAME)
    if not name:
        raise ArcaneError(ErrorCode.VALIDATION_ERROR, "set a username first (/api/set_username)")
    return clean_name(name)


def _seated(game_code: str, player_id: str, player_name: str) -> Any:
    token = seat_token(Identity(game_code, player_id))
    return jsonify({"success": True, "game_code": game_code, "player_id": player_id,
                    "player_name": player_name, "player_token": token})


@blueprint.post("/api/set_username")
async def set_username() -> Any:
    body = await json_body()
    name = clean_name(body.get("username"), "username")
    session[SESSION_USERNAME] = name
    return jsonify({"success": True, "username": name})


@blueprint.post("/api/create_game")
async def create_game() -> Any:
    body = await json_body()
    name = await _name(body)
    seat = await new_seat(lambda: runtime().service.create_game(name, body.get("max_players")))
    return _seated(seat.game_code, seat.player_id, seat.player_name)


@blueprint.post("/api/join_game")
async def join_game() -> Any:
    body = await json_body()
    name = await _name(body)
    seat = await new_seat(lambda: runtime().service.join_game(body.get("game_code"), name))
    return _seated(seat.game_code, seat.player_id, seat.player_name)


@blueprint.get("/api/session_info")
async def session_info() -> Any:
    code = session.get(SESSION_CURRENT)
    games = session_games(session)
    return jsonify({
        "username": session.get(SESSION_USERNAME),
        "game_code": code if code in games else None,
        "player_id": games.get(code) if code else None,
        "in_game": bool(code and code in games),
        "games": sorted(games),
    })


@blueprint.get("/api/game_state")
async def game_state() -> Any:
    return jsonify(await runtime().service.view(await viewer()))


@blueprint.get("/api/current_scenario")
async def current_scenario() -> Any:
    view = await runtime().service.view(await viewer())
    return jsonify({"scenario": view["scenario"], "turn_number": view["turn_number"], "phase": view["phase"]})


@blueprint.get("/api/my_whisper")
async def my_whisper() -> Any:
    view = await runtime().service.view(await viewer())
    return jsonify({"whisper": view["whisper"], "turn_number": view["turn_number"]})


@blueprint.post("/api/make_choice")
async def make_choice() -> Any:
    ident = await current_identity()
    await limit(ident)
    body = await json_body()
    option_id, text = body.get("option_id"), body.get("text")
    if option_id is None and text is None and "choice" in body:
        choice = body["choice"]
        if not isinstance(choice, str):
            raise validation("choice must be a string: an option id, or your own words")
        view = await runtime().service.view(ident)
        options = {o["id"] for o in (view["scenario"] or {}).get("options", [])}
        option_id, text = (choice, None) if choice in options else (None, choice)
    result = await runtime().service.choose(ident, option_id, text)
    return jsonify({"success": True} | result)


@blueprint.get("/api/waiting_for")
async def waiting_for() -> Any:
    view = await runtime().service.view(await viewer())
    names = {p["player_id"]: p["player_name"] for p in view["players"]}
    return jsonify({
        "waiting_for": [{"player_id": pid, "player_name": names.get(pid)} for pid in view["waiting_for"]],
        "phase": view["phase"], "turn_number": view["turn_number"],
    })
