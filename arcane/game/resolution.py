"""Resolving a turn: how the party's choices move trust, NPC approval, and the story.

Every choice counts (docs/realtime.md, "How a turn resolves"):
- an option counts as itself;
- free text is read as the option whose words it shares most (`read_as`, `WORD` below: words
  of four letters or more, stop-words aside, the same word in any case); a text that shares
  none with any option is an improvisation: it moves trust by nothing and is named in the
  outcome, as every free text is;
- a player who did not choose in time, or was skipped by the party's vote, hesitates: trust
  falls by HESITATION_PENALTY for each, and the outcome names them;
- each player whose option (or free text, as read) is the turn's hidden trap costs the party
  TRAP_PENALTY trust (arcane/game/omens.py), and the outcome says when the party's choice was
  the trap.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arcane.game.content import Option, Scenario
from arcane.game.omens import TRAP_PENALTY

AGREEMENT_BONUS = 5
DISCORD_PENALTY = 5
HESITATION_PENALTY = 3
IMPROVISED_OUTCOME = "The party abandons the obvious paths and improvises; the world answers in kind."
WORD = re.compile(r"[a-z]{4,}")
STOP_WORDS = frozenset(
    "that this with from into them they their there then than what when where which while your yours "
    "have will would could should about over under again every each some such only just also very".split())


@dataclass(frozen=True)
class Choice:
    """One player's choice; neither an option nor a text: they hesitated."""

    player_id: str
    player_name: str
    option_id: str | None
    text: str | None

    @property
    def hesitated(self) -> bool:
        return self.option_id is None and self.text is None

    def public(self) -> dict[str, Any]:
        return {"player_id": self.player_id, "player_name": self.player_name,
                "option_id": self.option_id, "text": self.text}


@dataclass(frozen=True)
class Npc:
    name: str
    title: str
    approval: int

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "approval": self.approval}


@dataclass(frozen=True)
class Resolution:
    outcome: str
    trust_change: int
    party_trust: int
    npcs: tuple[Npc, ...]
    npc_changes: tuple[dict[str, Any], ...]
    choices: tuple[dict[str, Any], ...]  # each choice, with `read_as` (free text) and `hesitated`
    hesitated: tuple[str, ...]  # player ids
    fell_for_trap: bool


def _clamp(value: int) -> int:
    return max(0, min(100, value))


def _mean(values: Sequence[int]) -> int:
    return round(sum(values) / len(values)) if values else 0


def _words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP_WORDS}


def read_as(scenario: Scenario, text: str) -> Option | None:
    """The option a free text means: the one sharing most of its words; ties go to the option
    listed first; None when it shares none (an improvisation)."""
    said = _words(text)
    scored = [(len(said & _words(o.text)), -i, o) for i, o in enumerate(scenario.options)]
    best = max(scored, key=lambda s: (s[0], s[1]))
    return best[2] if best[0] > 0 else None


def resolve_turn(
    scenario: Scenario, choices: Sequence[Choice], party_trust: int, npcs: Sequence[Npc], trap: str | None = None,
) -> Resolution:
    """Trust moves by the chosen options, by how much the party agreed, by hesitation and by
    the trap; the majority's option tells the tale."""
    picked: list[Option | None] = []
    described: list[dict[str, Any]] = []
    notes: list[str] = []
    for c in choices:
        option = scenario.option(c.option_id) if c.option_id else read_as(scenario, c.text) if c.text else None
        picked.append(option)
        entry = c.public() | {"hesitated": c.hesitated}
        if c.text is not None:
            entry["read_as"] = option.id if option else None
            notes.append(f"{c.player_name}'s idea (“{_short(c.text)}”) "
                         + (f"is taken as “{option.text}”." if option else "is tried as it stands."))
        described.append(entry)
    acting = [(c, o) for c, o in zip(choices, picked) if not c.hesitated]
    hesitated = tuple(c.player_id for c in choices if c.hesitated)
    trust_change = _mean([o.trust if o else 0 for _, o in acting]) - HESITATION_PENALTY * len(hesitated)
    votes = Counter(o.id if o else "" for _, o in acting)
    if len(acting) > 1 and len(votes) == 1:
        trust_change += AGREEMENT_BONUS
    elif len(acting) > 2 and len(votes) == len(acting):
        trust_change -= DISCORD_PENALTY
    trapped = sum(1 for _, o in acting if o is not None and o.id == trap)
    trust_change -= TRAP_PENALTY * trapped
    new_trust = _clamp(party_trust + trust_change)

    options = [o for _, o in acting if o is not None]
    changed: list[Npc] = []
    npc_changes: list[dict[str, Any]] = []
    for npc in npcs:
        delta = _mean([o.npc.get(npc.name, 0) for o in options]) if options else 0
        approval = _clamp(npc.approval + delta)
        changed.append(Npc(npc.name, npc.title, approval))
        npc_changes.append({"name": npc.name, "change": approval - npc.approval, "approval": approval})

    # The majority decides the tale; ties go to the option listed first, improvisation last.
    order = {o.id: i for i, o in enumerate(scenario.options)}
    winner = min(votes, key=lambda v: (-votes[v], order.get(v, len(order)))) if votes else None
    chosen = scenario.option(winner) if winner else None
    story = [chosen.outcome if chosen and chosen.outcome else IMPROVISED_OUTCOME] if votes else [
        "Nobody moves. The moment passes, and the world decides without you."]
    fell = chosen is not None and chosen.id == trap
    if fell:
        story.append("It was a trap, and the party walked into it together.")
    elif trapped:
        story.append("Not everyone was fooled, but some of you chose the trap.")
    story += notes
    names = [c.player_name for c in choices if c.hesitated]
    if names:
        story.append(f"{_listed(names)} hesitated, and the party moved on without {'them' if len(names) > 1 else 'a word from ' + names[0]}.")
    return Resolution(" ".join(story), new_trust - party_trust, new_trust, tuple(changed), tuple(npc_changes),
                      tuple(described), hesitated, fell)


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
