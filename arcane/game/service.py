"""The game service: every action of The Arcane Codex, as its callers see it. It checks the
caller's input, runs the action's rules inside the store's transaction (arcane/game/actions.py),
and does what follows the commit (the next scenario, fetched outside any transaction)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from arcane.config import Settings
from arcane.errors import ArcaneError, ErrorCode, validation
from arcane.events import Event
from arcane.game import actions
from arcane.game.actions import FINISHED, INTERROGATION, LOBBY, PLAYING, require_game, require_member
from arcane.game.content import questions
from arcane.game.records import GameRecord, Identity, Member, Seat
from arcane.game.scenarios import ScenarioRequest, ScenarioSource, ScenarioUnavailable, fetch_scenario
from arcane.store import KeyedReads, Store
from arcane.store.games import (games_due, games_waiting_for_a_scenario, is_public, load_answers, load_choices,
                                load_events_named, load_game, load_history, load_members, load_members_by_key,
                                load_scenario, load_turns)

log = logging.getLogger(__name__)

__all__ = ["FINISHED", "INTERROGATION", "LOBBY", "PLAYING", "GameService", "Seat"]

CODE_PATTERN = re.compile(r"^[A-Z0-9]{6}$")
NAME_MAX = 30
TEXT_MAX = 500
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# A seat's last use is written when it is older than this share of ARCANE_TOKEN_TTL: a write
# per seat every two days or so by default, not one per request.
RENEW_AFTER = 1 / 16
CLOCK_TICK = 1.0  # how often each process looks for turns whose time has run out
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
        self._clock: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def resume_waiting_games(self) -> None:
        """After a restart, games left waiting for a scenario get one."""
        for code in await games_waiting_for_a_scenario(self._store):
            await self._advance(code)

    def start_clock(self) -> None:
        """Every process looks for turns past their deadline (ARCANE_TURN_TIMEOUT) once a
        CLOCK_TICK: the deadline is in the database, so a restart or a lost host loses none,
        and whichever process finds one first resolves it (`actions.expire_turn`)."""
        if self._settings.turn_timeout > 0 and self._clock is None:
            self._clock = asyncio.create_task(self._ticking(), name="turn-clock")

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_TICK)
            try:
                await self.expire_due_turns()
            except ArcaneError as exc:  # the database away: the next tick tries again
                log.warning("turn clock: %s", exc.message)
            except Exception:
                log.exception("turn clock failed; it ticks on")

    async def expire_due_turns(self) -> None:
        now = time.time()
        for code, turn_number in await games_due(self._store, now):
            moved = await self._store.run(actions.expire_turn, (code, turn_number, now, self._settings.turns_per_game))
            if moved:
                log.info("game %s: turn %d ran out of time and resolved", code, turn_number)
                await self._advance(code)

    async def close(self) -> None:
        tasks = [*self._retries.values(), *self._renewing.values(), *([self._clock] if self._clock else [])]
        self._clock = None
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
        await self._store.run(actions.touch_seat, key)

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
        seat: Seat = await self._store.run(actions.create_game, (name, max_players))
        return seat

    async def join_game(self, code: Any, player_name: Any) -> Seat:
        code = normalize_code(code)
        name = clean_name(player_name)
        seat: Seat = await self._store.run(actions.join_game, (code, name))
        return seat

    async def watch_game(self, code: Any, name: Any) -> Seat:
        code = normalize_code(code)
        name = clean_name(name, "name")
        seat: Seat = await self._store.run(actions.watch_game, (code, name, self._settings.max_spectators))
        return seat

    async def leave_game(self, ident: Identity) -> None:
        left: actions.Left = await self._store.run(actions.leave_game, (ident, self._settings.turns_per_game))
        if left.next_turn:
            await self._advance(normalize_code(ident.game_code))

    async def player_gone(self, game_code: str, player_id: str) -> None:
        """A player stayed away past the grace period: a host's role passes on in the lobby and
        the interrogation (presence tells every process's own departures)."""
        member = await self._members.get((game_code, player_id))  # a read shared by a storm's departures
        if member is None or not member.is_host:
            return
        online = frozenset(await self.online(game_code))
        if player_id in online:
            return
        passed: actions.HostPassed = await self._store.run(actions.pass_host, (game_code, player_id, online))
        if passed.host_id is not None:
            log.info("game %s: the host stayed away; %s is host now", game_code, passed.host_id)

    async def start_game(self, ident: Identity) -> None:
        await self._store.run(actions.start_game, (ident, self._settings.questions_per_player))

    # -- the divine interrogation ----------------------------------------------------------

    async def answer(self, ident: Identity, answer_id: Any, question_id: Any = None) -> dict[str, Any]:
        if not isinstance(answer_id, str) or not answer_id:
            raise validation("answer_id is required")
        done: actions.Answered = await self._store.run(actions.answer, (ident, answer_id, question_id))
        if done.everyone_ready:
            await self._advance(normalize_code(ident.game_code))
        question = None if done.player_class else self._question_view(done.drawn, done.pending)
        return {"ok": True, "player_class": done.player_class, "question": question}

    async def current_question(self, ident: Identity) -> dict[str, Any] | None:
        async with self._store.snapshot() as db:
            game = await require_game(db, ident.game_code)
            me = await require_member(db, ident)
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
        done: actions.Chosen = await self._store.run(actions.choose,
                                                     (ident, option_id, text, self._settings.turns_per_game))
        if done.next_turn:
            await self._advance(normalize_code(ident.game_code))
        return {"ok": True} | done.progress

    # -- scenarios: fetched outside any transaction, stored by an action of their own ---------

    async def advance(self, code: str) -> bool:
        """After an action run from outside this service (the admin's): the next scenario."""
        return await self._advance(code)

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
        await self._store.run(actions.store_scenario, (code, game.turn_number, scenario, self._settings.turn_timeout))

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

    async def vote_skip(self, ident: Identity, player_id: Any) -> dict[str, Any]:
        """A vote to skip `player_id`, who is away past the grace period, for this turn."""
        if not isinstance(player_id, str) or not player_id:
            raise validation("player_id is required")
        online = frozenset(await self.online(normalize_code(ident.game_code)))
        done: actions.Voted = await self._store.run(
            actions.vote_skip, (ident, player_id, online, self._settings.turns_per_game))
        if done.next_turn:
            await self._advance(normalize_code(ident.game_code))
        return {"ok": True, "votes": done.votes, "needed": done.needed, "skipped": done.skipped}

    # -- the end, and again --------------------------------------------------------------------

    async def rematch(self, ident: Identity) -> Seat:
        seat: Seat = await self._store.run(actions.rematch, ident)
        return seat

    async def share_replay(self, ident: Identity, public: Any) -> dict[str, Any]:
        if not isinstance(public, bool):
            raise validation("public must be true or false")
        await self._store.run(actions.publish_replay, (ident, public))
        return {"ok": True, "public": public}

    async def public_recap(self, code: str) -> dict[str, Any] | None:
        """The recap of a finished game its players made public; None when it is not."""
        code = normalize_code(code)
        if not await is_public(self._store, code):
            return None
        return await self._recap(code)

    async def recap(self, ident: Identity) -> dict[str, Any]:
        """The whole story of a finished game, for its players and spectators: each turn's
        scene, every whisper (revealed now), the hidden trap, each choice, the outcome, and what
        each player said in chat during that turn."""
        async with self._store.snapshot() as db:
            game = await require_game(db, ident.game_code)
            await require_member(db, ident)
            if game.phase != FINISHED:
                raise ArcaneError(ErrorCode.WRONG_PHASE, "the recap opens when the game is over")
        return await self._recap(game.code)

    async def _recap(self, code: str) -> dict[str, Any]:
        async with self._store.snapshot() as db:
            game = await require_game(db, code)
            members = await load_members(db, game.code)
            turns = await load_turns(db, game.code)
            logged = await load_events_named(db, game.code, ("new_scenario", "chat_message", "player_left"))
        names = {m.player_id: m.name for m in members}
        classes = {m.player_id: m.player_class for m in members}
        for _, name, payload in logged:
            if name == "player_left":
                names.setdefault(payload["player_id"], payload["player_name"])
        chat_by_turn: dict[int, list[dict[str, Any]]] = {}
        turn = 0
        for seq, name, payload in logged:
            if name == "new_scenario":
                turn = int(payload["turn_number"])
            elif name == "chat_message":
                chat_by_turn.setdefault(turn, []).append(
                    {"seq": seq, "player_id": payload["player_id"], "player_name": payload["player_name"],
                     "text": payload["text"]})
        story = []
        for t in turns:
            story.append({
                "turn_number": t["turn_number"], "title": t["title"], "public_scene": t["public_scene"],
                "options": t["options"], "trap": t["trap"],
                "whispers": [{"player_id": pid, "player_name": names.get(pid, ""), "player_class": classes.get(pid),
                              "text": text} for pid, text in t["whispers"].items() if pid in names],
                "resolution": t["resolution"],
                "chat": chat_by_turn.get(t["turn_number"], []),
            })
        return {"game_code": game.code, "finished_reason": game.finished_reason, "party_trust": game.party_trust,
                "public": await is_public(self._store, game.code),
                "npcs": [n.public() for n in game.npcs], "rematch_code": game.rematch_code,
                "players": [m.summary() for m in members if m.is_player],
                "before_the_story": chat_by_turn.get(0, []), "turns": story}

    # -- chat and typing ---------------------------------------------------------------------

    async def chat(self, ident: Identity, text: Any, *, cause: int | None = None) -> Event:
        """The chat line, logged; its event carries `cause`, the id of the request that sent it."""
        text = clean_text(text)
        event: Event = await self._store.run(actions.chats, (ident, text, cause))
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
            game = await require_game(db, ident.game_code)
            me = await require_member(db, ident)
            members = await load_members(db, game.code)
            scenario = await load_scenario(db, game.code, game.turn_number) if game.phase == PLAYING else None
            choices = await load_choices(db, game.code, game.turn_number, members) if scenario else {}
            answered = await load_answers(db, game.code, me.player_id) if me.is_player else {}
        online = await self.online(game.code)
        players = [m for m in members if m.is_player]
        watching = [m for m in members if not m.is_player]
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
            "whisper": _whisper(scenario.whispers, me) if scenario and me.is_player else None,
            "turn_deadline": game.turn_deadline if scenario is not None and game.turn_deadline else None,
            "turn_timeout": self._settings.turn_timeout,
            "spectators": [{"player_id": m.player_id, "name": m.name} for m in watching],
            "rematch_code": game.rematch_code,
            "my_choice": None if mine is None else {"option_id": mine.option_id, "text": mine.text},
            "waiting_for": waiting,
            "question": (self._question_view(me.questions, [q for q in me.questions if q not in answered])
                         if game.phase == INTERROGATION and me.is_player else None),
            "finished_reason": game.finished_reason,
            "seq": game.last_seq,
            "epoch": game.epoch,
        }

async def _nobody_online(game_code: str) -> set[str]:
    return set()


def _whisper(whispers: Any, me: Member) -> str | None:
    """The player's own whisper: stored by player id (by class in games stored before)."""
    found = whispers.get(me.player_id) or whispers.get(me.player_class or "")
    return str(found) if found else None
