"""Game state as stored: typed records and the queries that load them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from arcane.game.content import Scenario
from arcane.game.resolution import Choice, Npc

PLAYER = "player"
SPECTATOR = "spectator"


class Reader(Protocol):
    async def fetchone(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ...) -> list[Any]: ...


@dataclass(frozen=True)
class Identity:
    """Who is calling: a member (player or spectator) of one game."""

    game_code: str
    player_id: str

    @property
    def rate_key(self) -> str:
        return f"player:{self.game_code}:{self.player_id}"


@dataclass(frozen=True)
class GameRecord:
    code: str
    phase: str
    max_players: int
    turn_number: int
    party_trust: int
    npcs: tuple[Npc, ...]
    last_seq: int
    finished_reason: str | None


@dataclass(frozen=True)
class Member:
    player_id: str
    name: str
    role: str
    is_host: bool
    position: int
    player_class: str | None
    divine_favor: dict[str, int]
    questions: tuple[str, ...]
    seen_at: float = 0.0  # when its token or cookie was last used (time.time())

    @property
    def is_player(self) -> bool:
        return self.role == PLAYER

    def summary(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "player_name": self.name,
                "player_class": self.player_class, "is_host": self.is_host}

    def public(self, online: bool) -> dict[str, Any]:
        return self.summary() | {"online": online}


async def load_game(db: Reader, code: str) -> GameRecord | None:
    row = await db.fetchone(
        "SELECT code, phase, max_players, turn_number, party_trust, npcs, last_seq, finished_reason"
        " FROM games WHERE code = ?",
        (code,),
    )
    if row is None:
        return None
    return GameRecord(
        code=row["code"], phase=row["phase"], max_players=row["max_players"],
        turn_number=row["turn_number"], party_trust=row["party_trust"],
        npcs=tuple(Npc(n["name"], n["title"], n["approval"]) for n in json.loads(row["npcs"])),
        last_seq=row["last_seq"], finished_reason=row["finished_reason"],
    )


def _member(row: Any) -> Member:
    return Member(
        player_id=row["player_id"], name=row["name"], role=row["role"], is_host=bool(row["is_host"]),
        position=row["position"], player_class=row["player_class"],
        divine_favor=json.loads(row["divine_favor"] or "{}"),
        questions=tuple(json.loads(row["questions"] or "[]")),
        seen_at=row["seen_at"],
    )


_MEMBER_COLUMNS = "player_id, name, role, is_host, position, player_class, divine_favor, questions, seen_at"


async def load_members_by_key(db: Reader, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Member]:
    """The members with these (game_code, player_id), in one statement."""
    rows = await db.fetchall(
        f"SELECT game_code, {_MEMBER_COLUMNS} FROM players WHERE (game_code, player_id) IN"
        " (SELECT value->>0, value->>1 FROM json_each(?))",
        (json.dumps(keys),),
    )
    return {(row["game_code"], row["player_id"]): _member(row) for row in rows}


async def load_members(db: Reader, code: str) -> list[Member]:
    rows = await db.fetchall(
        f"SELECT {_MEMBER_COLUMNS} FROM players WHERE game_code = ? ORDER BY position", (code,)
    )
    return [_member(r) for r in rows]


async def load_member(db: Reader, code: str, player_id: str) -> Member | None:
    row = await db.fetchone(
        f"SELECT {_MEMBER_COLUMNS} FROM players WHERE game_code = ? AND player_id = ?",
        (code, player_id),
    )
    return None if row is None else _member(row)


async def load_scenario(db: Reader, code: str, turn_number: int) -> Scenario | None:
    row = await db.fetchone(
        "SELECT scenario_id, theme, title, public_scene, options, whispers FROM scenarios"
        " WHERE game_code = ? AND turn_number = ?",
        (code, turn_number),
    )
    if row is None:
        return None
    return Scenario.from_json({
        "id": row["scenario_id"], "theme": row["theme"], "title": row["title"],
        "public_scene": row["public_scene"], "options": json.loads(row["options"]),
        "whispers": json.loads(row["whispers"]),
    })


async def load_choices(db: Reader, code: str, turn_number: int, members: list[Member]) -> dict[str, Choice]:
    names = {m.player_id: m.name for m in members}
    rows = await db.fetchall(
        "SELECT player_id, option_id, text FROM choices WHERE game_code = ? AND turn_number = ?"
        " ORDER BY created_at",
        (code, turn_number),
    )
    return {
        r["player_id"]: Choice(r["player_id"], names.get(r["player_id"], ""), r["option_id"], r["text"])
        for r in rows
    }


async def load_answers(db: Reader, code: str, player_id: str) -> dict[str, str]:
    rows = await db.fetchall(
        "SELECT question_id, answer_id FROM interrogation_answers WHERE game_code = ? AND player_id = ?",
        (code, player_id),
    )
    return {r["question_id"]: r["answer_id"] for r in rows}


async def load_history(db: Reader, code: str) -> tuple[list[str], set[str]]:
    """Themes in turn order and every scenario id the game has used."""
    rows = await db.fetchall(
        "SELECT scenario_id, theme FROM scenarios WHERE game_code = ? ORDER BY turn_number", (code,)
    )
    return [r["theme"] for r in rows], {r["scenario_id"] for r in rows}
