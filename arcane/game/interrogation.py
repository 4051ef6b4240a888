"""The divine interrogation: which questions a player gets, and which class their answers earn."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping

from arcane.game.content import GODS, PATRON_CLASS, Answer, questions


def questions_for(game_code: str, player_id: str, count: int) -> list[str]:
    """A stable draw per player, so a restart asks the same questions."""
    bank = sorted(questions())
    return random.Random(f"{game_code}:{player_id}").sample(bank, min(count, len(bank)))


def add_favor(favor: Mapping[str, int], answer: Answer) -> dict[str, int]:
    total = {god: favor.get(god, 0) for god in GODS}
    for god, amount in answer.favor.items():
        total[god] = total.get(god, 0) + amount
    return total


def gods_by_favor(favor: Mapping[str, int]) -> list[str]:
    """Every god, the most favouring first; ties go to the god named first in GODS."""
    return sorted(GODS, key=lambda god: (-favor.get(god, 0), GODS.index(god)))


def patron_god(favor: Mapping[str, int]) -> str:
    return gods_by_favor(favor)[0]


def class_for(favor: Mapping[str, int], taken: Collection[str] = ()) -> str:
    """The class of the most favouring god whose class nobody in the party has yet: no two
    players of a party share a class (nor so a whisper) while there are classes enough. The
    second-highest favour decides when the highest's class is taken, and so on; a party
    larger than the classes reuses the patron's."""
    for god in gods_by_favor(favor):
        if PATRON_CLASS[god] not in taken:
            return PATRON_CLASS[god]
    return PATRON_CLASS[patron_god(favor)]
