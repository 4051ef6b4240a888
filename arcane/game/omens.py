"""Each turn's hidden truth, and the whispers that carry it.

One of the turn's options is a trap. Which one is drawn in secret when the scenario is stored
(`secrets.SystemRandom`, never from the game code or the turn), kept in the scenario's row
and shown to nobody until the recap. Every player's whisper is their class's authored text
(the same words for anyone who has read scenarios.json) followed by a clue drawn just as
secretly:

- one player, chosen at random, learns which option is the trap;
- each other player learns that one option is safe, a different one each while there are
  enough (with as many players as options, two may learn the same safe option).

So no one can work out what another player was told from what they see, and what a player
says in chat about their whisper may be true or a lie. It matters: each player who picks the
trap costs the party TRAP_PENALTY trust, and a trap the party falls into together colours
the outcome (arcane/game/resolution.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from arcane.game.content import Option, Scenario

TRAP_PENALTY = 6
_random = secrets.SystemRandom()

# How each class comes to know: several wordings each, drawn like the facts, so that even
# the shape of a clue tells nobody else anything. `{option}` is the option's own words.
TRAP_CLUES: dict[str, tuple[str, ...]] = {
    "Fighter": (
        "Your soldier's eye finds the killing ground: \u201c{option}\u201d is a trap.",
        "Every scar you carry says the same thing: \u201c{option}\u201d ends in an ambush.",
    ),
    "Thief": (
        "You know a setup when you see one: \u201c{option}\u201d is exactly what they want you to do.",
        "A fence you trust once sold you this trick: \u201c{option}\u201d is the trap.",
    ),
    "Cleric": (
        "Your god's voice is cold and clear: \u201c{option}\u201d leads to ruin.",
        "The prayer-beads go dark when you think of it: \u201c{option}\u201d is a snare.",
    ),
    "Mage": (
        "The threads of fate knot tight around one path: \u201c{option}\u201d is a trap.",
        "Your scrying shows a single certain doom: \u201c{option}\u201d.",
    ),
}
SAFE_CLUES: dict[str, tuple[str, ...]] = {
    "Fighter": (
        "You have walked into worse: \u201c{option}\u201d hides no ambush, of that you are sure.",
        "You checked the ground yourself: \u201c{option}\u201d is safe.",
    ),
    "Thief": (
        "You cased it while the others talked: \u201c{option}\u201d is clean.",
        "No marks, no tells: \u201c{option}\u201d is not the trap.",
    ),
    "Cleric": (
        "A warmth settles on you when you weigh it: \u201c{option}\u201d is blessed, or at least not cursed.",
        "Your god lets you see this much: \u201c{option}\u201d is not the snare.",
    ),
    "Mage": (
        "The wards are quiet around one path: \u201c{option}\u201d is safe.",
        "Whatever else is true, \u201c{option}\u201d is not the trap; the runes agree.",
    ),
}
ANY_CLASS = "Fighter"  # a class the library has no words for borrows these


@dataclass(frozen=True)
class Omen:
    """The turn's secret: the trap, and each player's whisper (by player id)."""

    trap: str
    whispers: dict[str, str]


def pick_trap(options: Sequence[Option]) -> Option:
    return _random.choice(options)


def draw(scenario: Scenario, players: Sequence[tuple[str, str]]) -> Omen:
    """`players`: (player id, class) of everyone at the table, in seat order."""
    options = list(scenario.options)
    trap = pick_trap(options)
    safe = [o for o in options if o.id != trap.id]
    _random.shuffle(safe)
    knower = _random.randrange(len(players)) if players else -1
    whispers: dict[str, str] = {}
    others = 0
    for index, (player_id, player_class) in enumerate(players):
        if index == knower:
            clue, option = TRAP_CLUES, trap
        else:
            clue, option = SAFE_CLUES, safe[others % len(safe)]
            others += 1
        wording = _random.choice(clue.get(player_class, clue[ANY_CLASS]))
        authored = scenario.whispers.get(player_class, "").strip()
        whispers[player_id] = (authored + "\n\n" if authored else "") + wording.format(option=option.text)
    return Omen(trap.id, whispers)
