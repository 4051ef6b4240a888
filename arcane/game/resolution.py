"""Resolving a turn: how the party's choices move trust, NPC approval, and the story."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arcane.game.content import Scenario

AGREEMENT_BONUS = 5
DISCORD_PENALTY = 5
FREE_TEXT_OUTCOME = "The party abandons the obvious paths and improvises; the world answers in kind."


@dataclass(frozen=True)
class Choice:
    player_id: str
    player_name: str
    option_id: str | None
    text: str | None

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


def _clamp(value: int) -> int:
    return max(0, min(100, value))


def _mean(values: Sequence[int]) -> int:
    return round(sum(values) / len(values)) if values else 0


def resolve_turn(
    scenario: Scenario, choices: Sequence[Choice], party_trust: int, npcs: Sequence[Npc]
) -> Resolution:
    """Trust moves by the chosen options' tags and by how much the party agreed."""
    picked = [scenario.option(c.option_id) if c.option_id else None for c in choices]
    options = [o for o in picked if o is not None]
    trust_change = _mean([o.trust if o else 0 for o in picked])
    votes = Counter(c.option_id or "" for c in choices)
    if len(choices) > 1 and len(votes) == 1:
        trust_change += AGREEMENT_BONUS
    elif len(choices) > 2 and len(votes) == len(choices):
        trust_change -= DISCORD_PENALTY
    new_trust = _clamp(party_trust + trust_change)

    changed: list[Npc] = []
    npc_changes: list[dict[str, Any]] = []
    for npc in npcs:
        delta = _mean([o.npc.get(npc.name, 0) for o in options]) if options else 0
        approval = _clamp(npc.approval + delta)
        changed.append(Npc(npc.name, npc.title, approval))
        npc_changes.append({"name": npc.name, "change": approval - npc.approval, "approval": approval})

    # The majority decides the tale; ties go to the option listed first, free text last.
    order = {o.id: i for i, o in enumerate(scenario.options)}
    winner = min(votes, key=lambda v: (-votes[v], order.get(v, len(order))))
    chosen = scenario.option(winner) if winner else None
    outcome = chosen.outcome if chosen and chosen.outcome else FREE_TEXT_OUTCOME
    return Resolution(outcome, new_trust - party_trust, new_trust, tuple(changed), tuple(npc_changes))
