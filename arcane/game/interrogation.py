"""The divine interrogation: which questions a player gets, and which class their answers earn."""

from __future__ import annotations

import random
from collections.abc import Mapping

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


def patron_god(favor: Mapping[str, int]) -> str:
    """The most favouring god; ties go to the god named first in GODS."""
    return max(GODS, key=lambda god: (favor.get(god, 0), -GODS.index(god)))


def class_for(favor: Mapping[str, int]) -> str:
    return PATRON_CLASS[patron_god(favor)]
