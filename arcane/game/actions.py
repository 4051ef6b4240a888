"""The game's writes: each action's rules, run inside the store's transaction.

Each function here is a store action (arcane/store/writes.py): `Store.run` queues it, and
it runs on the writer's thread inside the batch's transaction, one item at a time in its own
savepoint (`each`), so what it reads it may act on and nothing else writes meanwhile. The
rules decide here; every statement is arcane/store/games.py's. What the callers check
before (the shape of their input) and do after the commit (fetching the next scenario) is
arcane/game/service.py's.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass
from typing import Any

from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.events import ROOM, SEAT_CLOSED, Event
from arcane.game import interrogation, omens
from arcane.game.content import NPCS, Scenario, questions
from arcane.game.records import PLAYER, SPECTATOR, GameRecord, Identity, Member, Seat
from arcane.game.resolution import Choice, resolve_turn
from arcane.store import Writes, each
from arcane.store import games as repo

LOBBY, INTERROGATION, PLAYING, FINISHED = "lobby", "interrogation", "playing", "finished"
CODE_ALPHABET = string.ascii_uppercase + string.digits
START_TRUST = 50
START_APPROVAL = 50


# -- lobby --------------------------------------------------------------------------------------

@each
async def create_game(db: Writes, item: tuple[str, int]) -> Seat:
    name, max_players = item
    code = await _new_code(db)
    npcs = [{"name": n, "title": t, "approval": START_APPROVAL} for n, t in NPCS]
    await repo.insert_game(db, code, LOBBY, max_players, START_TRUST, npcs)
    seat = await _seat(db, code, name, PLAYER, is_host=True)
    await db.log(code, "player_joined", {
        "player_id": seat.player_id, "player_name": name, "player_count": 1, "max_players": max_players,
    })
    return seat


@each
async def join_game(db: Writes, item: tuple[str, str]) -> Seat:
    code, name = item
    game = await require_game(db, code)
    if game.phase != LOBBY:
        raise ArcaneError(ErrorCode.GAME_STARTED, "this game has already started")
    players = [m for m in await repo.load_members(db, code) if m.is_player]
    if len(players) >= game.max_players:
        raise ArcaneError(ErrorCode.GAME_FULL, f"this game is full ({game.max_players} players)")
    seat = await _seat(db, code, name, PLAYER)
    await db.log(code, "player_joined", {
        "player_id": seat.player_id, "player_name": name,
        "player_count": len(players) + 1, "max_players": game.max_players,
    })
    return seat


@each
async def watch_game(db: Writes, item: tuple[str, str, int]) -> Seat:
    code, name, max_spectators = item
    await require_game(db, code)
    watching = sum(1 for m in await repo.load_members(db, code) if not m.is_player)
    if watching >= max_spectators:  # each one costs every view and event
        raise ArcaneError(ErrorCode.GAME_FULL, f"this game has as many spectators as it takes ({max_spectators})")
    seat = await _seat(db, code, name, SPECTATOR)
    await db.log(code, "spectator_joined", {"player_id": seat.player_id, "name": name, "watching": watching + 1})
    return seat


@dataclass(frozen=True)
class Left:
    next_turn: bool  # the table moved on without them: the next turn needs its scenario


@each
async def leave_game(db: Writes, item: tuple[Identity, int]) -> Left:
    """A player may leave in any phase: the party goes on without them. A choice they made
    this turn still counts; if they were the last one the turn waited for, it resolves."""
    ident, turns_per_game = item
    game = await require_game(db, ident.game_code)
    me = await require_member(db, ident)
    await _remove_seat(db, game, me, "left")
    if not me.is_player or game.phase in (LOBBY, FINISHED):
        return Left(False)
    return Left(await _move_on(db, await require_game(db, game.code), turns_per_game))


async def _remove_seat(db: Writes, game: GameRecord, me: Member, reason: str) -> None:
    """The seat is gone: its row (so its token and cookie seat are refused from now on),
    then, last in its log, `seat_closed` to the seat alone, which ends each of its live
    connections on every transport and process (arcane/feed.py)."""
    await repo.delete_seat(db, game.code, me.player_id)
    members = await repo.load_members(db, game.code)
    if me.is_player:
        players = [m for m in members if m.is_player]
        host_id = next((m.player_id for m in players if m.is_host), None)
        if me.is_host and players:
            host_id = players[0].player_id
            await repo.make_host(db, game.code, host_id)
        await db.log(game.code, "player_left", {
            "player_id": me.player_id, "player_name": me.name, "player_count": len(players), "host_id": host_id,
        })
        if me.is_host and host_id is not None:
            await db.log(game.code, "host_changed", {"host_id": host_id, "previous_host_id": me.player_id,
                                                     "reason": "left"})
        if not players and game.phase != FINISHED:
            await _finish(db, game, "abandoned")
    else:
        await db.log(game.code, "spectator_left", {"player_id": me.player_id, "name": me.name,
                                                   "watching": sum(1 for m in members if not m.is_player)})
    await db.log(game.code, SEAT_CLOSED, {"player_id": me.player_id, "reason": reason}, to_player=me.player_id)


async def _move_on(db: Writes, game: GameRecord, turns_per_game: int) -> bool:
    """After a player went: the interrogation ends when everyone left has a class; a turn
    resolves when everyone left has chosen. True when a new turn needs its scenario."""
    players = [m for m in await repo.load_members(db, game.code) if m.is_player]
    if not players:
        return False
    if game.phase == INTERROGATION and all(p.player_class for p in players):
        await repo.set_phase(db, game.code, PLAYING, turn_number=1)
        return True
    if game.phase != PLAYING:
        return False
    scenario = await repo.load_scenario(db, game.code, game.turn_number)
    if scenario is None:
        return False
    choices = await repo.load_choices(db, game.code, game.turn_number, players)
    if any(p.player_id not in choices for p in players):
        return False
    return await _resolve(db, game, scenario, [choices[p.player_id] for p in players], turns_per_game)


@dataclass(frozen=True)
class HostPassed:
    host_id: str | None


@each
async def pass_host(db: Writes, item: tuple[str, str, frozenset[str]]) -> HostPassed:
    """The host stayed away past the grace period in the lobby or the interrogation: the host
    role passes to the next player in seat order, one who is online if any is."""
    code, gone_id, online = item
    game = await repo.load_game(db, code, lock=True)
    if game is None or game.phase not in (LOBBY, INTERROGATION):
        return HostPassed(None)
    players = [m for m in await repo.load_members(db, code) if m.is_player]
    host = next((m for m in players if m.is_host), None)
    if host is None or host.player_id != gone_id:
        return HostPassed(None)
    others = [m for m in players if m.player_id != gone_id]
    after = [m for m in others if m.position > host.position] + [m for m in others if m.position < host.position]
    heir = next((m for m in after if m.player_id in online), None)
    if heir is None:
        return HostPassed(None)  # nobody here to take it: it stays until someone comes back
    await repo.unmake_host(db, code, gone_id)
    await repo.make_host(db, code, heir.player_id)
    await db.log(code, "host_changed", {"host_id": heir.player_id, "previous_host_id": gone_id, "reason": "away"})
    return HostPassed(heir.player_id)


@each
async def start_game(db: Writes, item: tuple[Identity, int]) -> None:
    ident, questions_per_player = item
    game = await require_game(db, ident.game_code)
    me = await require_member(db, ident)
    if not me.is_host:
        raise ArcaneError(ErrorCode.NOT_HOST, "only the host can start the game")
    if game.phase != LOBBY:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "the game has already started")
    players = [m for m in await repo.load_members(db, game.code) if m.is_player]
    for player in players:
        drawn = interrogation.questions_for(game.code, player.player_id, questions_per_player)
        await repo.set_questions(db, game.code, player.player_id, drawn)
    await repo.set_phase(db, game.code, INTERROGATION)
    await db.log(game.code, "game_started", {"players": [p.summary() for p in players], "phase": INTERROGATION})


@each
async def touch_seat(db: Writes, key: tuple[str, str]) -> None:
    await repo.touch_seat(db, *key)


# -- the divine interrogation -------------------------------------------------------------------

@dataclass(frozen=True)
class Answered:
    player_class: str | None
    pending: list[str]  # the questions still to answer, the next first
    drawn: tuple[str, ...]
    everyone_ready: bool


@each
async def answer(db: Writes, item: tuple[Identity, str, Any]) -> Answered:
    ident, answer_id, question_id = item
    game = await require_game(db, ident.game_code)
    me = await require_player(db, ident)
    if game.phase != INTERROGATION:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "the divine interrogation is not under way")
    answered = await repo.load_answers(db, game.code, me.player_id)
    pending = [q for q in me.questions if q not in answered]
    if not pending:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "you have answered every question")
    question = questions()[pending[0]]
    if question_id is not None and question_id != question.id:
        raise validation(f"the current question is {question.id}, not {question_id}")
    chosen = question.answer(answer_id)
    if chosen is None:
        raise validation(f"{answer_id!r} is not an answer to {question.id}")
    favor = interrogation.add_favor(me.divine_favor, chosen)
    await repo.insert_answer(db, game.code, me.player_id, question.id, chosen.id)
    player_class = None
    if len(pending) == 1:
        taken = {m.player_class for m in await repo.load_members(db, game.code)
                 if m.is_player and m.player_class and m.player_id != me.player_id}
        player_class = interrogation.class_for(favor, taken)
    await repo.set_favor(db, game.code, me.player_id, favor, player_class)
    if player_class is None:
        return Answered(None, pending[1:], me.questions, False)
    await db.log(game.code, "class_assigned", {"player_class": player_class, "divine_favor": favor},
                 to_player=me.player_id)
    await db.log(game.code, "player_ready", {
        "player_id": me.player_id, "player_name": me.name, "player_class": player_class,
    })
    players = [m for m in await repo.load_members(db, game.code) if m.is_player]
    everyone_ready = all(p.player_class for p in players)
    if everyone_ready:
        await repo.set_phase(db, game.code, PLAYING, turn_number=1)
    return Answered(player_class, [], me.questions, everyone_ready)


# -- turns --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chosen:
    progress: dict[str, Any]
    next_turn: bool  # another turn follows: it needs its scenario


@each
async def choose(db: Writes, item: tuple[Identity, str | None, str | None, int]) -> Chosen:
    ident, option_id, text, turns_per_game = item
    game = await require_game(db, ident.game_code)
    me = await require_player(db, ident)
    scenario = await repo.load_scenario(db, game.code, game.turn_number) if game.phase == PLAYING else None
    if scenario is None:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "there is no scenario to choose in right now")
    if option_id is not None and scenario.option(option_id) is None:
        raise validation(f"{option_id!r} is not an option of this scenario")
    members = await repo.load_members(db, game.code)
    choices = await repo.load_choices(db, game.code, game.turn_number, members)
    if me.player_id in choices:
        raise ArcaneError(ErrorCode.ALREADY_CHOSE, "you have already chosen this turn")
    await repo.insert_choice(db, game.code, game.turn_number, me.player_id, option_id, text)
    choices[me.player_id] = Choice(me.player_id, me.name, option_id, text)
    progress = _progress(members, choices)
    await db.log(game.code, "player_chose", {"player_id": me.player_id, "player_name": me.name} | progress)
    next_turn = False
    if progress["all_submitted"]:
        players = [m for m in members if m.is_player]
        next_turn = await _resolve(db, game, scenario, [choices[p.player_id] for p in players], turns_per_game)
    return Chosen(progress, next_turn)


def _progress(members: list[Member], choices: dict[str, Choice]) -> dict[str, Any]:
    players = [m for m in members if m.is_player]
    waiting = [p.player_id for p in players if p.player_id not in choices]
    return {"choices_submitted": len(players) - len(waiting), "total_players": len(players),
            "all_submitted": not waiting, "waiting_for": waiting}


@each
async def expire_turn(db: Writes, item: tuple[str, int, float, int]) -> bool:
    """The turn's time ran out (ARCANE_TURN_TIMEOUT): the players who have not chosen hesitate,
    and the turn resolves. Any process may find it due; only the first does anything. True
    when a new turn needs its scenario."""
    code, turn_number, now, turns_per_game = item
    game = await repo.load_game(db, code, lock=True)
    if (game is None or game.phase != PLAYING or game.turn_number != turn_number
            or game.turn_deadline is None or game.turn_deadline > now):
        return False
    scenario = await repo.load_scenario(db, code, turn_number)
    if scenario is None:
        return False
    players = [m for m in await repo.load_members(db, code) if m.is_player]
    choices = await repo.load_choices(db, code, turn_number, players)
    missing = [p for p in players if p.player_id not in choices]
    for player in missing:
        await repo.insert_choice(db, code, turn_number, player.player_id, None, None)
        choices[player.player_id] = Choice(player.player_id, player.name, None, None)
    await db.log(code, "turn_timed_out", {"turn_number": turn_number,
                                          "hesitated": [p.player_id for p in missing]})
    return await _resolve(db, game, scenario, [choices[p.player_id] for p in players], turns_per_game)


@dataclass(frozen=True)
class Voted:
    votes: int
    needed: int
    skipped: bool
    next_turn: bool


@each
async def vote_skip(db: Writes, item: tuple[Identity, str, frozenset[str], int]) -> Voted:
    """A vote to skip a player who is away (the caller checked: offline past the grace
    period) and has not chosen this turn. Once more than half of the other players have voted,
    the absent player hesitates this turn, and the turn resolves if it waited only for them."""
    ident, target_id, online, turns_per_game = item
    game = await require_game(db, ident.game_code)
    me = await require_player(db, ident)
    scenario = await repo.load_scenario(db, game.code, game.turn_number) if game.phase == PLAYING else None
    if scenario is None:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "there is no turn under way to skip anyone in")
    members = await repo.load_members(db, game.code)
    players = [m for m in members if m.is_player]
    target = next((p for p in players if p.player_id == target_id), None)
    if target is None:
        raise validation("player_id is not a player of this game")
    if target.player_id == me.player_id:
        raise validation("you cannot vote to skip yourself")
    if target.player_id in online:
        raise ArcaneError(ErrorCode.WRONG_PHASE, f"{target.name} is here; a vote can only skip a player who is away")
    choices = await repo.load_choices(db, game.code, game.turn_number, members)
    if target.player_id in choices:
        raise ArcaneError(ErrorCode.ALREADY_CHOSE, f"{target.name} has already chosen this turn")
    await repo.insert_skip_vote(db, game.code, game.turn_number, target.player_id, me.player_id)
    votes = len(await repo.skip_votes(db, game.code, game.turn_number, target.player_id))
    needed = (len(players) - 1) // 2 + 1
    await db.log(game.code, "skip_vote", {"player_id": target.player_id, "player_name": target.name,
                                          "voter_id": me.player_id, "votes": votes, "needed": needed})
    if votes < needed:
        return Voted(votes, needed, False, False)
    await repo.insert_choice(db, game.code, game.turn_number, target.player_id, None, None)
    choices[target.player_id] = Choice(target.player_id, target.name, None, None)
    progress = _progress(members, choices)
    await db.log(game.code, "player_skipped", {"player_id": target.player_id, "player_name": target.name} | progress)
    next_turn = False
    if progress["all_submitted"]:
        next_turn = await _resolve(db, game, scenario, [choices[p.player_id] for p in players], turns_per_game)
    return Voted(votes, needed, True, next_turn)


async def _resolve(db: Writes, game: GameRecord, scenario: Scenario, choices: list[Choice],
                   turns_per_game: int) -> bool:
    """Log the turn's resolution; True when another turn follows."""
    trap = await repo.load_trap(db, game.code, game.turn_number)
    result = resolve_turn(scenario, choices, game.party_trust, game.npcs, trap)
    await repo.set_standing(db, game.code, result.party_trust, [n.public() for n in result.npcs])
    await repo.set_deadline(db, game.code, None)
    resolution = {
        "turn_number": game.turn_number, "outcome": result.outcome,
        "trust_change": result.trust_change, "party_trust": result.party_trust,
        "npc_changes": list(result.npc_changes), "choices": list(result.choices),
        "hesitated": list(result.hesitated),
    }
    await repo.set_resolution(db, game.code, game.turn_number, resolution | {"trap": trap, "fell_for_trap": result.fell_for_trap})
    await db.log(game.code, "turn_resolution", resolution)
    game = await require_game(db, game.code)
    if result.party_trust <= 0:
        await _finish(db, game, "trust_broken")
        return False
    if game.turn_number >= turns_per_game:
        await _finish(db, game, "completed")
        return False
    await repo.next_turn(db, game.code)
    return True


async def _finish(db: Writes, game: GameRecord, reason: str) -> None:
    played = await repo.turns_played(db, game.code)
    await repo.set_phase(db, game.code, FINISHED, finished_reason=reason)
    await repo.set_deadline(db, game.code, None)
    await db.log(game.code, "game_over", {"reason": reason, "party_trust": game.party_trust, "turns_played": played})


@each
async def store_scenario(db: Writes, item: tuple[str, int, Scenario, float]) -> None:
    """The turn's scenario, fetched outside the transaction: stored unless the game moved on
    or another process stored one first. Its trap and every whisper are drawn here, in secret
    (arcane/game/omens.py); its clock starts now (`turn_timeout` seconds, 0: none)."""
    code, turn_number, scenario, turn_timeout = item
    current = await repo.load_game(db, code, lock=True)
    if current is None or current.phase != PLAYING or current.turn_number != turn_number:
        return
    if await repo.load_scenario(db, code, turn_number) is not None:
        return
    players = [m for m in await repo.load_members(db, code) if m.is_player]
    omen = omens.draw(scenario, [(p.player_id, p.player_class or "") for p in players])
    await repo.insert_scenario(db, code, turn_number, scenario, whispers=omen.whispers, trap=omen.trap)
    deadline = time.time() + turn_timeout if turn_timeout > 0 else None
    await repo.set_deadline(db, code, deadline)
    await db.log(code, "new_scenario", {
        "scenario_id": scenario.id, "theme": scenario.theme, "title": scenario.title,
        "turn_number": turn_number, "public_scene": scenario.public_scene,
        "options": scenario.public_options(), "turn_deadline": deadline, "turn_timeout": turn_timeout,
    })
    for player in players:
        await db.log(code, "whisper", {
            "scenario_id": scenario.id, "turn_number": turn_number, "text": omen.whispers[player.player_id],
        }, to_player=player.player_id)


# -- the end, and again -------------------------------------------------------------------------

@each
async def end_game(db: Writes, item: tuple[str, str, str]) -> bool:
    """An operator ends a game (`arcane end`, the admin page): `game_ended` says who and why,
    then `game_over` with the reason `ended`. False when it was over already."""
    code, author, reason = item
    game = await require_game(db, code)
    if game.phase == FINISHED:
        return False
    await db.log(code, "game_ended", {"by": author, "reason": reason})
    await _finish(db, game, "ended")
    return True


@each
async def publish_replay(db: Writes, item: tuple[Identity, bool]) -> None:
    """A player of a finished game shows its replay to anyone with the link (or hides it)."""
    ident, public = item
    game = await require_game(db, ident.game_code)
    me = await require_player(db, ident)
    if game.phase != FINISHED:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "a replay can be shown once the game is over")
    await repo.set_public(db, game.code, public)
    await db.log(game.code, "replay_shared", {"public": public, "player_id": me.player_id, "player_name": me.name})


@each
async def remove_player(db: Writes, item: tuple[str, str, str, int]) -> bool:
    """An operator removes a player (or spectator) from a game: `player_removed` says who did,
    then the seat closes as if they had left (its connections end; the table goes on).
    True when the next turn needs its scenario."""
    code, player_id, author, turns_per_game = item
    game = await require_game(db, code)
    member = await repo.load_member(db, code, player_id)
    if member is None:
        raise ArcaneError(ErrorCode.NOT_IN_GAME, "no such player in this game")
    await db.log(code, "player_removed", {"player_id": player_id, "player_name": member.name, "by": author})
    await _remove_seat(db, game, member, "removed")
    if not member.is_player or game.phase in (LOBBY, FINISHED):
        return False
    return await _move_on(db, await require_game(db, code), turns_per_game)

@each
async def rematch(db: Writes, ident: Identity) -> Seat:
    """Play again with this party: the first player to ask makes a new game with every player
    of this one seated, under the same player ids and names, the asker as host; each player
    who asks after gets their seat in it. Spectators may watch the new game."""
    game = await require_game(db, ident.game_code)
    me = await require_player(db, ident)
    if game.phase != FINISHED:
        raise ArcaneError(ErrorCode.WRONG_PHASE, "the game is not over yet")
    if game.rematch_code is None:
        players = [m for m in await repo.load_members(db, game.code) if m.is_player]
        code = await _new_code(db)
        npcs = [{"name": n, "title": t, "approval": START_APPROVAL} for n, t in NPCS]
        await repo.insert_game(db, code, LOBBY, game.max_players, START_TRUST, npcs)
        ordered = [me] + [p for p in players if p.player_id != me.player_id]
        for count, player in enumerate(ordered, 1):
            await repo.insert_seat_as(db, code, player.player_id, player.name, player is me)
            await db.log(code, "player_joined", {"player_id": player.player_id, "player_name": player.name,
                                                 "player_count": count, "max_players": game.max_players})
        await repo.set_rematch(db, game.code, code)
        await db.log(game.code, "rematch", {"game_code": code, "host_id": me.player_id})
        return Seat(code, me.player_id, me.name, PLAYER)
    seat = await repo.load_member(db, game.rematch_code, me.player_id)
    if seat is None:  # left the new game's lobby already
        raise ArcaneError(ErrorCode.NOT_IN_GAME, "you left the new game")
    return Seat(game.rematch_code, me.player_id, me.name, PLAYER)


# -- chat ---------------------------------------------------------------------------------------

async def chats(db: Writes, items: list[tuple[Identity, str, int | None]]) -> list[Event | ArcaneError]:
    """Every chat of a batch, in a few statements: the hot action, not one savepoint each.
    A refused line writes nothing, so the others need no savepoint of their own."""
    seats = await repo.chat_seats(db, [(ident.game_code, ident.player_id) for ident, _, _ in items])
    bounds = {code: (last_seq, log_floor) for code, last_seq, log_floor, _, _ in seats if code is not None}
    answers: list[Event | ArcaneError | None] = []
    entries = []
    for (ident, text, cause), (code, _, _, role, name) in zip(items, seats):
        if code is None:
            answers.append(ArcaneError(ErrorCode.INVALID_GAME, f"no game with code {ident.game_code}"))
        elif role is None:
            answers.append(ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game"))
        elif role != PLAYER:
            answers.append(ArcaneError(ErrorCode.NOT_IN_GAME, "spectators watch; they cannot act"))
        else:
            answers.append(None)
            entries.append((ident.game_code, "chat_message",
                            {"player_id": ident.player_id, "player_name": name, "text": text}, ROOM, cause))
    logged = iter(await db.log_many(entries, bounds))
    return [answer if answer is not None else next(logged) for answer in answers]


# -- helpers ------------------------------------------------------------------------------------

async def _new_code(db: Writes) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
        if not await repo.code_taken(db, code):
            return code


async def _seat(db: Writes, code: str, name: str, role: str, *, is_host: bool = False) -> Seat:
    player_id = secrets.token_hex(6)
    await repo.insert_seat(db, code, player_id, name, role, is_host)
    return Seat(code, player_id, name, role)


async def require_game(db: repo.Reader, code: str) -> GameRecord:
    """The game; read inside an action, its row stays locked until COMMIT (`load_game`)."""
    game = await repo.load_game(db, code, lock=isinstance(db, Writes))
    if game is None:
        raise ArcaneError(ErrorCode.INVALID_GAME, f"no game with code {code}")
    return game


async def require_member(db: repo.Reader, ident: Identity) -> Member:
    member = await repo.load_member(db, ident.game_code, ident.player_id)
    if member is None:
        raise ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game")
    return member


async def require_player(db: repo.Reader, ident: Identity) -> Member:
    member = await require_member(db, ident)
    if not member.is_player:
        raise ArcaneError(ErrorCode.NOT_IN_GAME, "spectators watch; they cannot act")
    return member
