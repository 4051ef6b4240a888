"""The JSON HTTP API of DESIGN.md (the SSE and long-poll routes live in arcane/fallback/)."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, jsonify, request

from arcane.errors import ArcaneError, ErrorCode
from arcane.game.records import Identity
from arcane.game.service import Seat
from arcane.routes.common import acting, json_body, new_seat, reading, runtime, seat_token

blueprint = Blueprint("api", __name__)
READY_TIMEOUT = 2.0  # seconds each dependency has to answer /healthz/ready


def seated(seat: Seat) -> tuple[Any, int]:
    """The answer to create/join/watch: the seat, its token, and the session cookie set."""
    token = seat_token(Identity(seat.game_code, seat.player_id))
    return jsonify(seat.public() | {"player_token": token}), 201


@blueprint.get("/healthz")
async def healthz() -> Any:
    rt = runtime()
    await rt.store.fetchone("SELECT 1")
    return jsonify({"ok": True})


@blueprint.get("/healthz/live")
async def healthz_live() -> Any:
    """The event loop turns: this answer is proof enough (a liveness probe restarts a process
    that stops answering it; nothing outside the process is asked)."""
    return jsonify({"ok": True})


@blueprint.get("/healthz/ready")
async def healthz_ready() -> Any:
    """Ready for new players: not draining, the database answers and, when configured, Redis
    does, each within READY_TIMEOUT. 503 otherwise, at once, with what is wrong."""
    rt = runtime()
    checks: dict[str, str] = {"draining": "yes" if rt.closing.is_set() else "no"}
    try:
        await asyncio.wait_for(rt.store.fetchone("SELECT 1"), READY_TIMEOUT)
        checks["database"] = "up"
    except Exception:  # unreachable, refused, timed out: not ready, whatever the reason
        checks["database"] = "down"
    if rt.redis is None:
        checks["redis"] = "not configured"
    else:
        try:
            await asyncio.wait_for(rt.redis.client.ping(), READY_TIMEOUT)
            checks["redis"] = "up"
        except Exception:
            checks["redis"] = "down"
    ready = checks["draining"] == "no" and checks["database"] == "up" and checks["redis"] != "down"
    return jsonify({"ok": ready} | checks), 200 if ready else 503


@blueprint.get("/livez")
async def livez() -> Any:
    """This process serves, whatever the database's state: what a balancer checks, so that a
    database away marks no host down (its connections stay, its actions are refused 503)."""
    return jsonify({"ok": True})


@blueprint.post("/api/games")
async def create_game() -> Any:
    body = await json_body()
    return seated(await new_seat(lambda: runtime().service.create_game(body.get("player_name"), body.get("max_players"))))


@blueprint.post("/api/games/<code>/players")
async def join_game(code: str) -> Any:
    body = await json_body()
    return seated(await new_seat(lambda: runtime().service.join_game(code, body.get("player_name"))))


@blueprint.post("/api/games/<code>/spectators")
async def watch_game(code: str) -> Any:
    body = await json_body()
    return seated(await new_seat(lambda: runtime().service.watch_game(code, body.get("name"))))


@blueprint.post("/api/games/<code>/leave")
async def leave_game(code: str) -> Any:
    ident, _ = await acting(code)
    await runtime().service.leave_game(ident)
    return jsonify({"ok": True})


@blueprint.get("/api/games/<code>")
async def view(code: str) -> Any:
    ident, _ = await reading(code)
    return jsonify(await runtime().service.view(ident))


@blueprint.post("/api/games/<code>/start")
async def start_game(code: str) -> Any:
    ident, _ = await acting(code)
    await runtime().service.start_game(ident)
    return jsonify({"ok": True, "phase": "interrogation"})


@blueprint.get("/api/games/<code>/interrogation")
async def current_question(code: str) -> Any:
    ident, _ = await reading(code)
    return jsonify({"question": await runtime().service.current_question(ident)})


@blueprint.post("/api/games/<code>/interrogation")
async def answer(code: str) -> Any:
    ident, _ = await acting(code)
    body = await json_body()
    return jsonify(await runtime().service.answer(ident, body.get("answer_id"), body.get("question_id")))


@blueprint.post("/api/games/<code>/choices")
async def choose(code: str) -> Any:
    ident, _ = await acting(code)
    body = await json_body()
    return jsonify(await runtime().service.choose(ident, body.get("option_id"), body.get("text")))


@blueprint.post("/api/games/<code>/skip")
async def vote_skip(code: str) -> Any:
    ident, _ = await acting(code)
    body = await json_body()
    return jsonify(await runtime().service.vote_skip(ident, body.get("player_id")))


@blueprint.get("/api/games/<code>/recap")
async def recap(code: str) -> Any:
    """For the game's players and spectators; for anyone once its players made it public
    (such a stranger's reads count against their address's budget, as creating does)."""
    try:
        ident, _ = await reading(code)
    except ArcaneError as refusal:
        if refusal.code not in (ErrorCode.AUTH_REQUIRED, ErrorCode.NOT_IN_GAME):
            raise
        public = await runtime().service.public_recap(code)
        if public is None:
            raise
        await runtime().limits.create(request.scope)
        return jsonify(public)
    return jsonify(await runtime().service.recap(ident))


@blueprint.post("/api/games/<code>/replay")
async def share_replay(code: str) -> Any:
    ident, _ = await acting(code)
    body = await json_body()
    return jsonify(await runtime().service.share_replay(ident, body.get("public")))


@blueprint.post("/api/games/<code>/rematch")
async def rematch(code: str) -> Any:
    ident, _ = await acting(code)
    return seated(await runtime().service.rematch(ident))


@blueprint.post("/api/games/<code>/chat")
async def chat(code: str) -> Any:
    ident, _ = await acting(code)
    body = await json_body()
    event = await runtime().service.chat(ident, body.get("text"))
    return jsonify({"ok": True, "seq": event.seq}), 201


@blueprint.post("/api/games/<code>/typing")
async def typing(code: str) -> Any:
    ident, member = await acting(code)
    body = await json_body()
    await runtime().service.typing(ident, body.get("is_typing"), member=member)
    return jsonify({"ok": True})

