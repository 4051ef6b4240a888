"""The games' repository: every statement about games, seats, answers, scenarios and
choices, for the rules of arcane/game/ to call. Reads take the store or, inside an action,
its `Writes`; writes take `Writes` (arcane/store/writes.py). The event log's own statements
are the engine's (`Writes.log`, `Store.log_since`)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Protocol, Sequence

from arcane import jsoncodec
from arcane.game.content import Scenario
from arcane.game.records import PLAYER, GameRecord, Member
from arcane.game.resolution import Choice, Npc
from arcane.store.writes import Writes


class Reader(Protocol):
    dialect: str  # "sqlite" or "postgresql": where a statement differs, the repository picks

    async def fetchone(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    async def fetchall(self, sql: str, params: Sequence[Any] = ...) -> list[Any]: ...


# -- reads ------------------------------------------------------------------------------------

async def load_game(db: Reader, code: str, *, lock: bool = False) -> GameRecord | None:
    """`lock`, inside a transaction: on PostgreSQL the game's row stays locked until COMMIT,
    so an action that decides on what it read (everyone has chosen: resolve) is never raced
    by the same game's action on another host. SQLite's one writer serialises them anyway."""
    row = await db.fetchone(
        "SELECT code, phase, max_players, turn_number, party_trust, npcs, last_seq, finished_reason, epoch,"
        " turn_deadline, rematch_code FROM games WHERE code = ?" + (" FOR UPDATE" if lock and db.dialect == "postgresql" else ""),
        (code,),
    )
    if row is None:
        return None
    return GameRecord(
        code=row["code"], phase=row["phase"], max_players=row["max_players"],
        turn_number=row["turn_number"], party_trust=row["party_trust"],
        npcs=tuple(Npc(n["name"], n["title"], n["approval"]) for n in json.loads(row["npcs"])),
        last_seq=row["last_seq"], finished_reason=row["finished_reason"], epoch=row["epoch"],
        turn_deadline=row["turn_deadline"], rematch_code=row["rematch_code"],
    )


def _member(row: Any) -> Member:
    return Member(
        player_id=row["player_id"], name=row["name"], role=row["role"], is_host=bool(row["is_host"]),
        position=row["position"], player_class=row["player_class"],
        divine_favor=json.loads(row["divine_favor"] or "{}"),
        questions=tuple(json.loads(row["questions"] or "[]")),
        seen_at=row["seen_at"], epoch=row["epoch"] if "epoch" in row.keys() else "",
    )


_MEMBER_COLUMNS = "player_id, name, role, is_host, position, player_class, divine_favor, questions, seen_at"


async def load_members_by_key(db: Reader, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Member]:
    """The members with these (game_code, player_id), in one statement."""
    keyed = ("SELECT k->>0, k->>1 FROM jsonb_array_elements(?::jsonb) AS k" if db.dialect == "postgresql"
             else "SELECT value->>0, value->>1 FROM json_each(?)")
    rows = await db.fetchall(
        f"SELECT game_code, {_MEMBER_COLUMNS}, (SELECT epoch FROM games WHERE code = game_code) AS epoch"
        f" FROM players WHERE (game_code, player_id) IN ({keyed})",
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


async def load_trap(db: Reader, code: str, turn_number: int) -> str | None:
    row = await db.fetchone("SELECT trap FROM scenarios WHERE game_code = ? AND turn_number = ?", (code, turn_number))
    return None if row is None else row["trap"]


async def load_turns(db: Reader, code: str) -> list[dict[str, Any]]:
    """Every turn of the game with its scenario, whispers (by player id), trap and resolution
    (None while unresolved): what the recap tells."""
    rows = await db.fetchall(
        "SELECT turn_number, scenario_id, title, public_scene, options, whispers, trap, resolution"
        " FROM scenarios WHERE game_code = ? ORDER BY turn_number", (code,))
    return [{"turn_number": r["turn_number"], "scenario_id": r["scenario_id"], "title": r["title"],
             "public_scene": r["public_scene"], "options": [{"id": o["id"], "text": o["text"]} for o in json.loads(r["options"])],
             "whispers": json.loads(r["whispers"]), "trap": r["trap"],
             "resolution": json.loads(r["resolution"]) if r["resolution"] else None} for r in rows]


async def load_events_named(db: Reader, code: str, names: Sequence[str]) -> list[tuple[int, str, dict[str, Any]]]:
    """(seq, name, payload) of the game's logged events of these names, in order (as far back
    as the log keeps them, ARCANE_LOG_RETENTION)."""
    marks = ", ".join("?" for _ in names)
    rows = await db.fetchall(
        f"SELECT seq, event, payload FROM events WHERE game_code = ? AND event IN ({marks}) ORDER BY seq",
        (code, *names))
    return [(r["seq"], r["event"], json.loads(r["payload"])) for r in rows]


async def list_games(db: Reader, *, phase: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest games first, with how many players and spectators each has."""
    rows = await db.fetchall(
        "SELECT g.code, g.phase, g.turn_number, g.party_trust, g.created_at, g.finished_reason,"
        " (SELECT COUNT(*) FROM players p WHERE p.game_code = g.code AND p.role = 'player') AS players,"
        " (SELECT COUNT(*) FROM players p WHERE p.game_code = g.code AND p.role <> 'player') AS spectators"
        " FROM games g" + (" WHERE g.phase = ?" if phase else "") + " ORDER BY g.created_at DESC LIMIT ?",
        (phase, limit) if phase else (limit,))
    return [{key: row[key] for key in ("code", "phase", "turn_number", "party_trust", "created_at",
                                        "finished_reason", "players", "spectators")} for row in rows]


async def load_log(db: Reader, code: str, after: int = 0) -> list[dict[str, Any]]:
    """The game's whole log (as far back as it keeps), every audience: for an operator's
    eyes only (export, the admin page). A private event says whose it is."""
    rows = await db.fetchall(
        "SELECT seq, event, audience, payload, created_at FROM events WHERE game_code = ? AND seq > ? ORDER BY seq",
        (code, after))
    return [{"seq": r["seq"], "event": r["event"], "audience": r["audience"],
             "private": r["audience"] != "room", "time": r["created_at"], "data": json.loads(r["payload"])}
            for r in rows]


async def skip_votes(db: Reader, code: str, turn_number: int, target_id: str) -> set[str]:
    rows = await db.fetchall(
        "SELECT voter_id FROM skip_votes WHERE game_code = ? AND turn_number = ? AND target_id = ?",
        (code, turn_number, target_id))
    return {r["voter_id"] for r in rows}


async def games_due(db: Reader, now: float) -> list[tuple[str, int]]:
    """(code, turn) of the games in play whose turn's deadline has passed."""
    rows = await db.fetchall(
        "SELECT code, turn_number FROM games WHERE turn_deadline IS NOT NULL AND turn_deadline <= ?"
        " AND phase = 'playing'", (now,))
    return [(r["code"], r["turn_number"]) for r in rows]


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


async def games_waiting_for_a_scenario(db: Reader) -> list[str]:
    """The codes of games in play with no scenario for their current turn."""
    rows = await db.fetchall(
        "SELECT code FROM games g WHERE phase = 'playing' AND NOT EXISTS"
        " (SELECT 1 FROM scenarios s WHERE s.game_code = g.code AND s.turn_number = g.turn_number)")
    return [row["code"] for row in rows]


async def code_taken(db: Reader, code: str) -> bool:
    return await db.fetchone("SELECT 1 FROM games WHERE code = ?", (code,)) is not None


async def turns_played(db: Reader, code: str) -> int:
    row = await db.fetchone("SELECT COUNT(DISTINCT turn_number) FROM choices WHERE game_code = ?", (code,))
    return int(row[0]) if row else 0


async def chat_seats(db: Writes, keys: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """For each (game_code, player_id), in order and in one statement: (the game's code or
    None, its last seq, its log floor, the seat's role or None, its name)."""
    if db.dialect == "postgresql":
        rows = await db.fetchall(
            "SELECT j.n - 1, g.code, g.last_seq, g.log_floor, p.role, p.name"
            " FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS j(k, n)"
            " LEFT JOIN games g ON g.code = j.k->>0"
            " LEFT JOIN players p ON p.game_code = j.k->>0 AND p.player_id = j.k->>1",
            (jsoncodec.dumps([list(key) for key in keys]),))
        by_index = {row[0]: tuple(row)[1:] for row in rows}
        return [by_index[index] for index in range(len(keys))]
    row = await db.fetchone(
        "SELECT json_group_array(json_array(j.key, g.code, g.last_seq, g.log_floor, p.role, p.name))"
        " FROM json_each(?) AS j"
        " LEFT JOIN games g ON g.code = j.value->>0"
        " LEFT JOIN players p ON p.game_code = j.value->>0 AND p.player_id = j.value->>1",
        (jsoncodec.dumps([list(key) for key in keys]),),
    )
    assert row is not None  # an aggregate answers one row, even of nothing
    found = {index: tuple(rest) for index, *rest in jsoncodec.loads(row[0])}
    return [found[index] for index in range(len(keys))]


# -- writes -----------------------------------------------------------------------------------

async def insert_game(db: Writes, code: str, phase: str, max_players: int, party_trust: int, npcs: list[dict[str, Any]]) -> None:
    await db.execute(
        "INSERT INTO games (code, phase, max_players, party_trust, npcs, created_at, epoch) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (code, phase, max_players, party_trust, json.dumps(npcs), time.time(), new_epoch()))


def new_epoch() -> str:
    """A stream's epoch: 8 hex digits, new for each game and at each reset or restore."""
    return secrets.token_hex(4)


async def renew_epochs(db: Writes, codes: Sequence[str] = ()) -> int:
    """New epochs for these games, or every game: after a restore from a backup every
    client's cursor is of the old stream, and must get a snapshot, never a replay."""
    games = list(codes) or [row["code"] for row in await db.fetchall("SELECT code FROM games")]
    for code in games:
        await db.execute("UPDATE games SET epoch = ? WHERE code = ?", (new_epoch(), code))
    return len(games)


async def insert_seat(db: Writes, code: str, player_id: str, name: str, role: str, is_host: bool) -> None:
    """A new seat, after the game's others."""
    now = time.time()
    row = await db.fetchone("SELECT COALESCE(MAX(position), 0) + 1 FROM players WHERE game_code = ?", (code,))
    await db.execute(
        "INSERT INTO players (game_code, player_id, name, role, is_host, position, joined_at, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (code, player_id, name, role, int(is_host), int(row[0]) if row else 1, now, now))


async def delete_seat(db: Writes, code: str, player_id: str) -> None:
    await db.execute("DELETE FROM players WHERE game_code = ? AND player_id = ?", (code, player_id))


async def make_host(db: Writes, code: str, player_id: str) -> None:
    await db.execute("UPDATE players SET is_host = 1 WHERE game_code = ? AND player_id = ?", (code, player_id))


async def unmake_host(db: Writes, code: str, player_id: str) -> None:
    await db.execute("UPDATE players SET is_host = 0 WHERE game_code = ? AND player_id = ?", (code, player_id))


async def touch_seat(db: Writes, code: str, player_id: str) -> None:
    """The seat was used now (its token or cookie)."""
    await db.execute("UPDATE players SET seen_at = ? WHERE game_code = ? AND player_id = ?",
                     (time.time(), code, player_id))


async def set_questions(db: Writes, code: str, player_id: str, drawn: list[str]) -> None:
    await db.execute("UPDATE players SET questions = ?, divine_favor = '{}' WHERE game_code = ? AND player_id = ?",
                     (json.dumps(drawn), code, player_id))


async def set_phase(db: Writes, code: str, phase: str, *, turn_number: int | None = None,
                    finished_reason: str | None = None) -> None:
    await db.execute(
        "UPDATE games SET phase = ?, turn_number = COALESCE(?, turn_number),"
        " finished_reason = COALESCE(?, finished_reason) WHERE code = ?",
        (phase, turn_number, finished_reason, code))


async def next_turn(db: Writes, code: str) -> None:
    await db.execute("UPDATE games SET turn_number = turn_number + 1 WHERE code = ?", (code,))


async def set_standing(db: Writes, code: str, party_trust: int, npcs: list[dict[str, Any]]) -> None:
    await db.execute("UPDATE games SET party_trust = ?, npcs = ? WHERE code = ?",
                     (party_trust, json.dumps(npcs), code))


async def insert_answer(db: Writes, code: str, player_id: str, question_id: str, answer_id: str) -> None:
    await db.execute(
        "INSERT INTO interrogation_answers (game_code, player_id, question_id, answer_id, answered_at)"
        " VALUES (?, ?, ?, ?, ?)", (code, player_id, question_id, answer_id, time.time()))


async def set_favor(db: Writes, code: str, player_id: str, favor: dict[str, int], player_class: str | None) -> None:
    await db.execute("UPDATE players SET divine_favor = ?, player_class = ? WHERE game_code = ? AND player_id = ?",
                     (json.dumps(favor), player_class, code, player_id))


async def insert_choice(db: Writes, code: str, turn_number: int, player_id: str,
                        option_id: str | None, text: str | None) -> None:
    await db.execute(
        "INSERT INTO choices (game_code, turn_number, player_id, option_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (code, turn_number, player_id, option_id, text, time.time()))


async def insert_scenario(db: Writes, code: str, turn_number: int, scenario: Scenario, *,
                          whispers: dict[str, str], trap: str) -> None:
    """The turn's scenario, with each player's whisper (by player id) and its hidden trap."""
    await db.execute(
        "INSERT INTO scenarios (game_code, turn_number, scenario_id, theme, title, public_scene,"
        " options, whispers, created_at, trap) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (code, turn_number, scenario.id, scenario.theme, scenario.title, scenario.public_scene,
         json.dumps(scenario.to_json()["options"]), json.dumps(whispers), time.time(), trap))


async def set_resolution(db: Writes, code: str, turn_number: int, resolution: dict[str, Any]) -> None:
    await db.execute("UPDATE scenarios SET resolution = ? WHERE game_code = ? AND turn_number = ?",
                     (json.dumps(resolution), code, turn_number))


async def set_deadline(db: Writes, code: str, deadline: float | None) -> None:
    await db.execute("UPDATE games SET turn_deadline = ? WHERE code = ?", (deadline, code))


async def insert_skip_vote(db: Writes, code: str, turn_number: int, target_id: str, voter_id: str) -> None:
    await db.execute(
        "INSERT INTO skip_votes (game_code, turn_number, target_id, voter_id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING", (code, turn_number, target_id, voter_id))


async def set_public(db: Writes, code: str, public: bool) -> None:
    await db.execute("UPDATE games SET public = ? WHERE code = ?", (int(public), code))


async def is_public(db: Reader, code: str) -> bool:
    row = await db.fetchone("SELECT public FROM games WHERE code = ? AND phase = 'finished'", (code,))
    return bool(row and row["public"])


async def set_rematch(db: Writes, code: str, rematch_code: str) -> None:
    await db.execute("UPDATE games SET rematch_code = ? WHERE code = ?", (rematch_code, code))


async def insert_seat_as(db: Writes, code: str, player_id: str, name: str, is_host: bool) -> None:
    """A player's seat in a rematch: the same player id (and name) as in the game before."""
    await insert_seat(db, code, player_id, name, "player", is_host)
