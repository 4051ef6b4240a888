"""The authored content shipped with the package: the interrogation bank and scenario library."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

GODS = ("Valdris", "Kaitha", "Morvane", "Sylara", "Korvan", "Athena", "Mercus", "Drakmor")
CLASSES = ("Fighter", "Thief", "Cleric", "Mage")
PATRON_CLASS = {
    "Valdris": "Fighter", "Korvan": "Fighter",
    "Kaitha": "Thief", "Mercus": "Thief",
    "Sylara": "Cleric", "Drakmor": "Cleric",
    "Athena": "Mage", "Morvane": "Mage",
}
NPCS = (("Aldric", "the desperate father"), ("Vex", "the vengeful rogue"))


@dataclass(frozen=True)
class Answer:
    id: str
    text: str
    favor: Mapping[str, int]


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[Answer, ...]

    def answer(self, answer_id: str) -> Answer | None:
        return next((a for a in self.answers if a.id == answer_id), None)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text,
                "answers": [{"id": a.id, "text": a.text} for a in self.answers]}


@dataclass(frozen=True)
class Option:
    id: str
    text: str
    trust: int
    npc: Mapping[str, int]
    outcome: str


@dataclass(frozen=True)
class Scenario:
    id: str
    theme: str
    title: str
    public_scene: str
    whispers: Mapping[str, str]
    options: tuple[Option, ...]

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)

    def public_options(self) -> list[dict[str, str]]:
        return [{"id": o.id, "text": o.text} for o in self.options]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "theme": self.theme, "title": self.title,
            "public_scene": self.public_scene, "whispers": dict(self.whispers),
            "options": [
                {"id": o.id, "text": o.text, "trust": o.trust, "npc": dict(o.npc), "outcome": o.outcome}
                for o in self.options
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scenario:
        return cls(
            id=str(data["id"]),
            theme=str(data["theme"]),
            title=str(data.get("title", data["id"])),
            public_scene=str(data["public_scene"]),
            whispers={str(k): str(v) for k, v in data["whispers"].items()},
            options=tuple(
                Option(str(o["id"]), str(o["text"]), int(o.get("trust", 0)),
                       {str(k): int(v) for k, v in o.get("npc", {}).items()}, str(o.get("outcome", "")))
                for o in data["options"]
            ),
        )


def _load(name: str) -> Any:
    return json.loads(resources.files("arcane.game").joinpath("content", name).read_text("utf-8"))


@cache
def questions() -> dict[str, Question]:
    return {
        q["id"]: Question(
            q["id"], q["text"],
            tuple(Answer(a["id"], a["text"], dict(a["favor"])) for a in q["answers"]),
        )
        for q in _load("questions.json")
    }


@cache
def scenario_library() -> tuple[Scenario, ...]:
    return tuple(Scenario.from_json(s) for s in _load("scenarios.json"))
