"""Game state as stored: typed records. The statements that read and write them are
arcane/store/games.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arcane.game.resolution import Npc

PLAYER = "player"
SPECTATOR = "spectator"


@dataclass(frozen=True)
class Identity:
    """Who is calling: a member (player or spectator) of one game."""

    game_code: str
    player_id: str

    @property
    def rate_key(self) -> str:
        return f"player:{self.game_code}:{self.player_id}"


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
    # The stream's epoch: new for each game, and again after a reset or restore (`python -m
    # arcane new-epoch`). A cursor of another epoch gets a snapshot, never a replay.
    epoch: str = ""
    turn_deadline: float | None = None  # when the turn resolves without the missing (time.time())
    rematch_code: str | None = None  # the game this finished one was played again as


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
    epoch: str = ""  # its game's stream epoch, read with the seat (`GameRecord.epoch`)

    @property
    def is_player(self) -> bool:
        return self.role == PLAYER

    def summary(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "player_name": self.name,
                "player_class": self.player_class, "is_host": self.is_host}

    def public(self, online: bool) -> dict[str, Any]:
        return self.summary() | {"online": online}
