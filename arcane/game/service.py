"""The game service: every action of The Arcane Codex, each one transaction of state + events."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from arcane import jsoncodec
from arcane.config import Settings
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.events import ROOM, SEAT_CLOSED, Event
from arcane.game import interrogation
from arcane.game.content import NPCS, questions
from arcane.game.records import (
    PLAYER, SPECTATOR, GameRecord, Identity, Member, load_answers, load_choices, load_game,
    load_history, load_member, load_members, load_members_by_key, load_scenario,
)
from arcane.game.resolution import Choice, resolve_turn
from arcane.game.scenarios import ScenarioRequest, ScenarioSource, ScenarioUnavailable, fetch_scenario
from arcane.store import KeyedReads, Store, Transaction, Writes

log = logging.getLogger(__name__)

LOBBY, INTERROGATION, PLAYING, FINISHED = "lobby", "interrogation", "playing", "finished"
CODE_ALPHABET = string.ascii_uppercase + string.digits
CODE_PATTERN = re.compile(r"^[A-Z0-9]{6}$")
NAME_MAX = 30
TEXT_MAX = 500
START_TRUST = 50
START_APPROVAL = 50
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# A seat's last use is written when it is older than this share of ARCANE_TOKEN_TTL: a write
# per seat every two days or so by default, not one per request.
RENEW_AFTER = 1 / 16
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Seat:
    """What creating, joining or watching a game gives the caller."""

    game_code: str
    player_id: str
    player_name: str
    role: str

    def public(self) -> dict[str, Any]:
        return {"game_code": self.game_code, "player_id": self.player_id,
                "player_name": self.player_name, "role": self.role}


def normalize_code(code: Any) -> str:
    if not isinstance(code, str) or not CODE_PATTERN.match(code.strip().upper()):
        raise ArcaneError(ErrorCode.INVALID_GAME, "game codes are 6 letters or digits")
    return code.strip().upper()


def clean_name(name: Any, field: str = "player_name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise validation(f"{field} is required")
    cleaned = " ".join(name.split())
    if len(cleaned) > NAME_MAX:
        raise validation(f"{field} is at most {NAME_MAX} characters")
    if _CONTROL.search(cleaned):
        raise validation(f"{field} may not contain control characters")
    return cleaned


def clean_text(text: Any, field: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise validation(f"{field} is required")
    if len(text) > TEXT_MAX:
        raise validation(f"{field} is at most {TEXT_MAX} characters")
    return text


class GameService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        source: ScenarioSource,
        *,
        publish: Callable[[Iterable[Event]], None],
        online: Callable[[str], Awaitable[set[str]]] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._source = source
        self._publish = publish
        self.online = online or _nobody_online
        self._advancing: dict[str, asyncio.Lock] = {}
        self._retries: dict[str, asyncio.Task[None]] = {}
        # Every request resolves its caller's seat: those that come together share a read.
        self._members: KeyedReads[tuple[str, str], Member] = KeyedReads(store, load_members_by_key)
        self._renewing: dict[tuple[str, str], asyncio.Task[None]] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def resume_waiting_games(self) -> None:
        """After a restart, games left waiting for a scenario get one."""
        rows = await self._store.fetchall(
            "SELECT code FROM games g WHERE phase = ? AND NOT EXISTS"
            " (SELECT 1 FROM scenarios s WHERE s.game_code = g.code AND s.turn_number = g.turn_number)",
            (PLAYING,),
        )
        for row in rows:
            await self._advance(row["code"])

    async def close(self) -> None:
        tasks = [*self._retries.values(), *self._renewing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._retries.clear()

    # -- who is who ----------------------------------------------------------------------

    async def require_game(self, code: str) -> GameRecord:
        game = await load_game(self._store, normalize_code(code))
        if game is None:
            raise ArcaneError(ErrorCode.INVALID_GAME, f"no game with code {code}")
        return game

    async def member(self, ident: Identity) -> Member:
        member = await self._members.get((normalize_code(ident.game_code), ident.player_id))
        if member is None:
            await self.require_game(ident.game_code)  # INVALID_GAME before NOT_IN_GAME
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game")
        return member

    async def authenticate(self, ident: Identity) -> Member:
        """`member`, for a caller presenting the seat's token or cookie: refused AUTH_REQUIRED
        once the seat has gone unused for `token_ttl`, and each use renews it.

        The lifetime is the seat's, not one token's: its token and its cookie are one
        credential, and expire or are revoked (the seat leaves: no row) together. It is read
        with the seat itself, so no cache of verified tokens can outlive it.
        """
        member = await self.member(ident)
        idle = time.time() - member.seen_at
        ttl = self._settings.token_ttl
        if idle > ttl:
            raise ArcaneError(ErrorCode.AUTH_REQUIRED,
                              "this seat went unused too long and its token and cookie have expired")
        if idle > ttl * RENEW_AFTER:
            await self._renew((normalize_code(ident.game_code), ident.player_id))
        return member

    async def _renew(self, key: tuple[str, str]) -> None:
        """Write the seat's last use; the requests of one seat that arrive together share it."""
        task = self._renewing.get(key)
        if task is None:
            task = self._renewing[key] = asyncio.ensure_future(self._write_seen(key))
            task.add_done_callback(lambda done: self._renewing.pop(key, None))
        await asyncio.shield(task)

    async def _write_seen(self, key: tuple[str, str]) -> None:
        async with self._store.transaction() as tx:
            await tx.execute("UPDATE players SET seen_at = ? WHERE game_code = ? AND player_id = ?",
                             (time.time(), *key))

    async def roster(self, code: str) -> list[tuple[str, str]]:
        """(player_id, name) of the game's players, spectators aside."""
        return [(m.player_id, m.name) for m in await load_members(self._store, code) if m.is_player]

    # -- lobby ---------------------------------------------------------------------------

    async def create_game(self, player_name: Any, max_players: Any = None) -> Seat:
        name = clean_name(player_name)
        cap = self._settings.max_players
        if max_players is None:
            max_players = cap
        if isinstance(max_players, bool) or not isinstance(max_players, int) or not 1 <= max_players <= cap:
            raise validation(f"max_players must be a whole number from 1 to {cap}")
        npcs = [{"name": n, "title": t, "approval": START_APPROVAL} for n, t in NPCS]
        async with self._store.transaction() as tx:
            code = await self._new_code(tx)
            await tx.execute(
                "INSERT INTO games (code, phase, max_players, party_trust, npcs, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (code, LOBBY, max_players, START_TRUST, json.dumps(npcs), time.time()),
            )
            seat = await self._seat(tx, code, name, PLAYER, is_host=True)
            await tx.log(code, "player_joined", {
                "player_id": seat.player_id, "player_name": name,
                "player_count": 1, "max_players": max_players,
            })
        return seat

    async def join_game(self, code: Any, player_name: Any) -> Seat:
        code = normalize_code(code)
        name = clean_name(player_name)
        async with self._store.transaction() as tx:
            game = await self._game(tx, code)
            if game.phase != LOBBY:
                raise ArcaneError(ErrorCode.GAME_STARTED, "this game has already started")
            players = [m for m in await load_members(tx, code) if m.is_player]
            if len(players) >= game.max_players:
                raise ArcaneError(ErrorCode.GAME_FULL, f"this game is full ({game.max_players} players)")
            seat = await self._seat(tx, code, name, PLAYER)
            await tx.log(code, "player_joined", {
                "player_id": seat.player_id, "player_name": name,
                "player_count": len(players) + 1, "max_players": game.max_players,
            })
        return seat

    async def watch_game(self, code: Any, name: Any) -> Seat:
        code = normalize_code(code)
        name = clean_name(name, "name")
        async with self._store.transaction() as tx:
            await self._game(tx, code)
            watching = sum(1 for m in await load_members(tx, code) if not m.is_player)
            if watching >= self._settings.max_spectators:  # each one costs every view and event
                raise ArcaneError(ErrorCode.GAME_FULL,
                                  f"this game has as many spectators as it takes ({self._settings.max_spectators})")
            return await self._seat(tx, code, name, SPECTATOR)

    async def leave_game(self, ident: Identity) -> None:
        async with self._store.transaction() as tx:
            game = await self._game(tx, ident.game_code)
            me = await self._member(tx, ident)
            if me.is_player and game.phase != LOBBY:
                raise ArcaneError(ErrorCode.GAME_STARTED, "players can only leave while in the lobby")
            await self._remove_seat(tx, game, me, "left")

    async def _remove_seat(self, tx: Transaction, game: GameRecord, me: Member, reason: str) -> None:
        """The seat is gone: its row (so its token and cookie seat are refused from now on),
        then, last in its log, `seat_closed` to the seat alone, which ends each of its live
        connections on every transport and process (arcane/feed.py)."""
        await tx.execute("DELETE FROM players WHERE game_code = ? AND player_id = ?",
                         (game.code, me.player_id))
        if me.is_player:
            players = [m for m in await load_members(tx, game.code) if m.is_player]
            host_id = next((m.player_id for m in players if m.is_host), None)
            if me.is_host and players:
                host_id = players[0].player_id
                await tx.execute("UPDATE players SET is_host = 1 WHERE game_code = ? AND player_id = ?",
                                 (game.code, host_id))
            await tx.log(game.code, "player_left", {
                "player_id": me.player_id, "player_name": me.name,
                "player_count": len(players), "host_id": host_id,
            })
            if not players:
                await self._finish(tx, game, "abandoned")
        await tx.log(game.code, SEAT_CLOSED, {"player_id": me.player_id, "reason": reason},
                     to_player=me.player_id)

    async def start_game(self, ident: Identity) -> None:
        async with self._store.transaction() as tx:
            game = await self._game(tx, ident.game_code)
            me = await self._member(tx, ident)
            if not me.is_host:
                raise ArcaneError(ErrorCode.NOT_HOST, "only the host can start the game")
            if game.phase != LOBBY:
                raise ArcaneError(ErrorCode.WRONG_PHASE, "the game has already started")
            players = [m for m in await load_members(tx, game.code) if m.is_player]
            for player in players:
                drawn = interrogation.questions_for(game.code, player.player_id,
                                                    self._settings.questions_per_player)
                await tx.execute(
                    "UPDATE players SET questions = ?, divine_favor = '{}' WHERE game_code = ? AND player_id = ?",
                    (json.dumps(drawn), game.code, player.player_id),
                )
            await tx.execute("UPDATE games SET phase = ? WHERE code = ?", (INTERROGATION, game.code))
            await tx.log(game.code, "game_started", {
                "players": [p.summary() for p in players],
                "phase": INTERROGATION,
            })

    # -- the divine interrogation ----------------------------------------------------------

    async def answer(self, ident: Identity, answer_id: Any, question_id: Any = None) -> dict[str, Any]:
        if not isinstance(answer_id, str) or not answer_id:
            raise validation("answer_id is required")
        async with self._store.transaction() as tx:
            game = await self._game(tx, ident.game_code)
            me = await self._player(tx, ident)
            if game.phase != INTERROGATION:
                raise ArcaneError(ErrorCode.WRONG_PHASE, "the divine interrogation is not under way")
            answered = await load_answers(tx, game.code, me.player_id)
            pending = [q for q in me.questions if q not in answered]
            if not pending:
                raise ArcaneError(ErrorCode.WRONG_PHASE, "you have answered every question")
            question = questions()[pending[0]]
            if question_id is not None and question_id != question.id:
                raise validation(f"the current question is {question.id}, not {question_id}")
            answer = question.answer(answer_id)
            if answer is None:
                raise validation(f"{answer_id!r} is not an answer to {question.id}")
            favor = interrogation.add_favor(me.divine_favor, answer)
            await tx.execute(
                "INSERT INTO interrogation_answers (game_code, player_id, question_id, answer_id, answered_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (game.code, me.player_id, question.id, answer.id, time.time()),
            )
            player_class = interrogation.class_for(favor) if len(pending) == 1 else None
            await tx.execute(
                "UPDATE players SET divine_favor = ?, player_class = ? WHERE game_code = ? AND player_id = ?",
                (json.dumps(favor), player_class, game.code, me.player_id),
            )
            if player_class is None:
                return {"ok": True, "player_class": None,
                        "question": self._question_view(me.questions, pending[1:])}
            await tx.log(game.code, "class_assigned",
                         {"player_class": player_class, "divine_favor": favor}, to_player=me.player_id)
            await tx.log(game.code, "player_ready", {
                "player_id": me.player_id, "player_name": me.name, "player_class": player_class,
            })
            players = [m for m in await load_members(tx, game.code) if m.is_player]
            everyone_ready = all(p.player_class for p in players)
            if everyone_ready:
                await tx.execute("UPDATE games SET phase = ?, turn_number = 1 WHERE code = ?",
                                 (PLAYING, game.code))
        if everyone_ready:
            await self._advance(game.code)
        return {"ok": True, "player_class": player_class, "question": None}

    async def current_question(self, ident: Identity) -> dict[str, Any] | None:
        async with self._store.snapshot() as db:
            game = await self._game(db, ident.game_code)
            me = await self._member(db, ident)
            if game.phase != INTERROGATION or not me.is_player:
                return None
            answered = await load_answers(db, game.code, me.player_id)
        return self._question_view(me.questions, [q for q in me.questions if q not in answered])

    @staticmethod
    def _question_view(drawn: tuple[str, ...], pending: list[str]) -> dict[str, Any] | None:
        if not pending:
            return None
        return questions()[pending[0]].public() | {
            "number": len(drawn) - len(pending) + 1, "total": len(drawn),
        }

    # -- turns -------------------------------------------------------------------------------

    async def choose(self, ident: Identity, option_id: Any = None, text: Any = None) -> dict[str, Any]:
        if (option_id is None) == (text is None):
            raise validation("send exactly one of option_id or text")
        if option_id is not None and (not isinstance(option_id, str) or not option_id):
            raise validation("option_id must be a non-empty string")
        if text is not None:
            text = clean_text(text)
        async with self._store.transaction() as tx:
            game = await self._game(tx, ident.game_code)
            me = await self._player(tx, ident)
            scenario = await load_scenario(tx, game.code, game.turn_number) if game.phase == PLAYING else None
            if scenario is None:
                raise ArcaneError(ErrorCode.WRONG_PHASE, "there is no scenario to choose in right now")
            if option_id is not None and scenario.option(option_id) is None:
                raise validation(f"{option_id!r} is not an option of this scenario")
            members = await load_members(tx, game.code)
            choices = await load_choices(tx, game.code, game.turn_number, members)
            if me.player_id in choices:
                raise ArcaneError(ErrorCode.ALREADY_CHOSE, "you have already chosen this turn")
            await tx.execute(
                "INSERT INTO choices (game_code, turn_number, player_id, option_id, text, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (game.code, game.turn_number, me.player_id, option_id, text, time.time()),
            )
            choices[me.player_id] = Choice(me.player_id, me.name, option_id, text)
            players = [m for m in members if m.is_player]
            waiting = [p.player_id for p in players if p.player_id not in choices]
            progress = {
                "choices_submitted": len(players) - len(waiting), "total_players": len(players),
                "all_submitted": not waiting, "waiting_for": waiting,
            }
            await tx.log(game.code, "player_chose",
                         {"player_id": me.player_id, "player_name": me.name} | progress)
            next_turn = False
            if not waiting:
                ordered = [choices[p.player_id] for p in players]
                next_turn = await self._resolve(tx, game, scenario, ordered)
        if next_turn:
            await self._advance(game.code)
        return {"ok": True} | progress

    async def _resolve(self, tx: Transaction, game: GameRecord, scenario: Any, choices: list[Choice]) -> bool:
        """Log the turn's resolution; True when another turn follows."""
        result = resolve_turn(scenario, choices, game.party_trust, game.npcs)
        await tx.execute(
            "UPDATE games SET party_trust = ?, npcs = ? WHERE code = ?",
            (result.party_trust, json.dumps([n.public() for n in result.npcs]), game.code),
        )
        await tx.log(game.code, "turn_resolution", {
            "turn_number": game.turn_number, "outcome": result.outcome,
            "trust_change": result.trust_change, "party_trust": result.party_trust,
            "npc_changes": list(result.npc_changes), "choices": [c.public() for c in choices],
        })
        game = await self._game(tx, game.code)
        if result.party_trust <= 0:
            await self._finish(tx, game, "trust_broken")
            return False
        if game.turn_number >= self._settings.turns_per_game:
            await self._finish(tx, game, "completed")
            return False
        await tx.execute("UPDATE games SET turn_number = turn_number + 1 WHERE code = ?", (game.code,))
        return True

    async def _finish(self, tx: Transaction, game: GameRecord, reason: str) -> None:
        turns_played = await tx.fetchone(
            "SELECT COUNT(DISTINCT turn_number) FROM choices WHERE game_code = ?", (game.code,)
        )
        await tx.execute("UPDATE games SET phase = ?, finished_reason = ? WHERE code = ?",
                         (FINISHED, reason, game.code))
        await tx.log(game.code, "game_over", {
            "reason": reason, "party_trust": game.party_trust,
            "turns_played": turns_played[0] if turns_played else 0,
        })

    # -- scenarios: fetched outside the writer lock, stored in their own transaction -----------

    async def _advance(self, code: str) -> bool:
        """Give the game its scenario for the current turn; on failure retry in the background."""
        lock = self._advancing.setdefault(code, asyncio.Lock())
        async with lock:
            try:
                await self._store_next_scenario(code)
            except ScenarioUnavailable as exc:
                log.error("game %s: no scenario for the next turn: %s", code, exc)
                self._schedule_retry(code, str(exc))
                return False
            except Exception as exc:
                # The action that led here is committed: never fail it, retry the scenario instead.
                log.exception("game %s: storing the next scenario failed", code)
                self._schedule_retry(code, repr(exc))
                return False
        return True

    async def _store_next_scenario(self, code: str) -> None:
        game = await load_game(self._store, code)
        if game is None or game.phase != PLAYING:
            return
        if await load_scenario(self._store, code, game.turn_number) is not None:
            return
        themes, used = await load_history(self._store, code)
        players = [m for m in await load_members(self._store, code) if m.is_player]
        classes = tuple(sorted({p.player_class for p in players if p.player_class}))
        request = ScenarioRequest(code, game.turn_number, tuple(themes), frozenset(used), classes)
        scenario = await fetch_scenario(self._source, request, self._settings.scenario_timeout)
        async with self._store.transaction() as tx:
            current = await self._game(tx, code)
            if current.phase != PLAYING or current.turn_number != game.turn_number:
                return
            if await load_scenario(tx, code, current.turn_number) is not None:
                return
            await tx.execute(
                "INSERT INTO scenarios (game_code, turn_number, scenario_id, theme, title, public_scene,"
                " options, whispers, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (code, current.turn_number, scenario.id, scenario.theme, scenario.title,
                 scenario.public_scene, json.dumps(scenario.to_json()["options"]),
                 json.dumps(dict(scenario.whispers)), time.time()),
            )
            await tx.log(code, "new_scenario", {
                "scenario_id": scenario.id, "theme": scenario.theme, "title": scenario.title,
                "turn_number": current.turn_number, "public_scene": scenario.public_scene,
                "options": scenario.public_options(),
            })
            for player in [m for m in await load_members(tx, code) if m.is_player]:
                await tx.log(code, "whisper", {
                    "scenario_id": scenario.id, "turn_number": current.turn_number,
                    "text": scenario.whispers[player.player_class or ""],
                }, to_player=player.player_id)

    def _schedule_retry(self, code: str, reason: str) -> None:
        if code in self._retries and not self._retries[code].done():
            return
        self._publish([Event(code, "error", {
            "code": ErrorCode.INTERNAL_ERROR.value,
            "message": "The next scenario could not be prepared; the game will continue shortly.",
        })])
        self._retries[code] = asyncio.create_task(self._retry(code), name=f"scenario-retry-{code}")

    async def _retry(self, code: str) -> None:
        try:
            for delay in (*RETRY_DELAYS, *[RETRY_DELAYS[-1]] * 1000):
                await asyncio.sleep(delay)
                try:
                    async with self._advancing.setdefault(code, asyncio.Lock()):
                        await self._store_next_scenario(code)
                    return
                except ScenarioUnavailable as exc:
                    log.error("game %s: scenario retry failed: %s", code, exc)
                except Exception:
                    log.exception("game %s: scenario retry failed", code)
        finally:
            self._retries.pop(code, None)

    # -- chat and typing ---------------------------------------------------------------------

    async def chat(self, ident: Identity, text: Any, *, cause: int | None = None) -> Event:
        """The chat line, logged; its event carries `cause`, the id of the request that sent it."""
        text = clean_text(text)
        event: Event = await self._store.run(_chats, (ident, text, cause))
        return event

    async def typing(self, ident: Identity, is_typing: Any, *, member: Member | None = None) -> None:
        if not isinstance(is_typing, bool):
            raise validation("is_typing must be true or false")
        me = member or await self.member(ident)
        if not me.is_player:
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "spectators cannot type in the party chat")
        self._publish([Event(ident.game_code, "player_typing", {
            "player_id": me.player_id, "player_name": me.name, "is_typing": is_typing,
        }, exclude=me.player_id)])

    # -- the caller's view -----------------------------------------------------------------------

    async def view(self, ident: Identity) -> dict[str, Any]:
        async with self._store.snapshot() as db:
            game = await self._game(db, ident.game_code)
            me = await self._member(db, ident)
            members = await load_members(db, game.code)
            scenario = await load_scenario(db, game.code, game.turn_number) if game.phase == PLAYING else None
            choices = await load_choices(db, game.code, game.turn_number, members) if scenario else {}
            answered = await load_answers(db, game.code, me.player_id) if me.is_player else {}
        online = await self.online(game.code)
        players = [m for m in members if m.is_player]
        if game.phase == INTERROGATION:
            waiting = [p.player_id for p in players if not p.player_class]
        elif scenario is not None:
            waiting = [p.player_id for p in players if p.player_id not in choices]
        else:
            waiting = []
        mine = choices.get(me.player_id)
        return {
            "game_code": game.code,
            "phase": game.phase,
            "you": {"player_id": me.player_id, "player_name": me.name, "role": me.role,
                    "is_host": me.is_host, "player_class": me.player_class},
            "players": [p.public(p.player_id in online) for p in players],
            "max_players": game.max_players,
            "turn_number": game.turn_number,
            "party_trust": game.party_trust,
            "npcs": [n.public() for n in game.npcs],
            "scenario": None if scenario is None else {
                "scenario_id": scenario.id, "theme": scenario.theme, "title": scenario.title,
                "turn_number": game.turn_number, "public_scene": scenario.public_scene,
                "options": scenario.public_options(),
            },
            "whisper": scenario.whispers.get(me.player_class or "") if scenario and me.is_player else None,
            "my_choice": None if mine is None else {"option_id": mine.option_id, "text": mine.text},
            "waiting_for": waiting,
            "question": (self._question_view(me.questions, [q for q in me.questions if q not in answered])
                         if game.phase == INTERROGATION and me.is_player else None),
            "finished_reason": game.finished_reason,
            "seq": game.last_seq,
        }

    # -- helpers -------------------------------------------------------------------------------

    async def _new_code(self, tx: Transaction) -> str:
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
            if await tx.fetchone("SELECT 1 FROM games WHERE code = ?", (code,)) is None:
                return code

    async def _seat(self, tx: Transaction, code: str, name: str, role: str, *, is_host: bool = False) -> Seat:
        player_id = secrets.token_hex(6)
        now = time.time()
        position = await tx.fetchone(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM players WHERE game_code = ?", (code,)
        )
        await tx.execute(
            "INSERT INTO players (game_code, player_id, name, role, is_host, position, joined_at, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (code, player_id, name, role, int(is_host), position[0] if position else 1, now, now),
        )
        return Seat(code, player_id, name, role)

    @staticmethod
    async def _game(db: Any, code: str) -> GameRecord:
        game = await load_game(db, code)
        if game is None:
            raise ArcaneError(ErrorCode.INVALID_GAME, f"no game with code {code}")
        return game

    @staticmethod
    async def _member(db: Any, ident: Identity) -> Member:
        member = await load_member(db, ident.game_code, ident.player_id)
        if member is None:
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "you are not in this game")
        return member

    async def _player(self, db: Any, ident: Identity) -> Member:
        member = await self._member(db, ident)
        if not member.is_player:
            raise ArcaneError(ErrorCode.NOT_IN_GAME, "spectators watch; they cannot act")
        return member


def _chats(db: Writes, items: list[tuple[Identity, str, int | None]]) -> list[Event | ArcaneError]:
    """Every chat of a batch on the writer's thread, in a few statements (`Store.run`)."""
    row = db.fetchone(
        "SELECT json_group_array(json_array(j.key, g.code, g.last_seq, g.log_floor, p.role, p.name))"
        " FROM json_each(?) AS j"
        " LEFT JOIN games g ON g.code = j.value->>0"
        " LEFT JOIN players p ON p.game_code = j.value->>0 AND p.player_id = j.value->>1",
        (jsoncodec.dumps([[ident.game_code, ident.player_id] for ident, _, _ in items]),),
    )
    assert row is not None  # an aggregate answers one row, even of nothing
    seats, bounds = {}, {}
    for key, code, last_seq, log_floor, role, name in jsoncodec.loads(row[0]):
        seats[key] = (code, role, name)
        if code is not None:
            bounds[code] = (last_seq, log_floor)
    answers: list[Event | ArcaneError | None] = []
    entries = []
    for index, (ident, text, cause) in enumerate(items):
        code, role, name = seats[index]
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
    logged = iter(db.log_many(entries, bounds))
    return [answer if answer is not None else next(logged) for answer in answers]


async def _nobody_online(game_code: str) -> set[str]:
    return set()
