"""The shipped content, and how the game copes when scenarios do not come."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from arcane.game import interrogation
from arcane.game.content import CLASSES, GODS, PATRON_CLASS, Scenario, questions, scenario_library
from arcane.game.scenarios import RECENT_THEMES, LibrarySource, ScenarioRequest, check_playable
from tests.gameplay import FlakySource, close_all, error_of, last_seq, logged, names, wait_until
from tests.support import LiveServer, Player, play_to_first_turn, seat_party, serving
from tests.logs import events_after

EIGHT_GODS = ("Valdris", "Kaitha", "Morvane", "Sylara", "Korvan", "Athena", "Mercus", "Drakmor")


# -- the divine interrogation ----------------------------------------------------------------


def test_the_bank_asks_at_least_24_questions_of_four_answers() -> None:
    bank = questions()
    assert len(bank) >= 24
    assert len({q.text for q in bank.values()}) == len(bank)
    for question in bank.values():
        assert question.text.strip()
        assert len(question.answers) == 4, question.id
        assert len({a.id for a in question.answers}) == 4, question.id
        assert all(a.text.strip() for a in question.answers), question.id


def test_every_answer_favours_a_god_and_every_god_is_courted() -> None:
    assert set(GODS) == set(EIGHT_GODS) and len(GODS) == 8
    patrons: Counter[str] = Counter()
    for question in questions().values():
        favourites = []
        for answer in question.answers:
            assert set(answer.favor) <= set(GODS), (question.id, answer.id)
            god, amount = max(answer.favor.items(), key=lambda kv: kv[1])
            assert amount > 0, (question.id, answer.id)
            favourites.append(god)
        assert len(set(favourites)) == 4, f"{question.id}: answers court the same god"
        patrons.update(favourites)
    assert set(patrons) == set(GODS)
    fair_share = 4 * len(questions()) / len(GODS)
    assert min(patrons.values()) >= fair_share / 2, patrons


def test_each_patron_god_makes_a_class_and_every_class_has_two() -> None:
    for god in GODS:
        assert interrogation.class_for({god: 5}) == PATRON_CLASS[god]
    assert Counter(PATRON_CLASS.values()) == {c: 2 for c in CLASSES}


def test_ties_between_gods_go_to_the_god_named_first() -> None:
    assert interrogation.patron_god({}) == "Valdris"
    assert interrogation.class_for({}) == "Fighter"
    for first, second in itertools.combinations(GODS, 2):
        for favor in ({first: 4, second: 4}, {second: 4, first: 4}, {second: 4, first: 4, "Valdris": -1}):
            if first == "Valdris" and favor.get("Valdris") == -1:
                continue
            assert interrogation.patron_god(favor) == first, favor
    # A tie on top is decided the same way whatever else is in the favour.
    rng = random.Random(7)
    for _ in range(200):
        favor = {god: rng.randint(-3, 3) for god in GODS}
        best = max(favor.values())
        tied = [g for g in GODS if favor[g] == best]
        shuffled = dict(rng.sample(list(favor.items()), len(favor)))
        assert interrogation.patron_god(shuffled) == interrogation.patron_god(favor) == tied[0]


def test_each_player_draws_stable_questions() -> None:
    drawn = interrogation.questions_for("ABC123", "p1", 5)
    assert drawn == interrogation.questions_for("ABC123", "p1", 5)
    assert len(set(drawn)) == 5 and set(drawn) <= set(questions())
    draws = {tuple(interrogation.questions_for("ABC123", f"p{n}", 5)) for n in range(8)}
    assert len(draws) > 1
    assert len(interrogation.questions_for("ABC123", "p1", 999)) == len(questions())


# -- the scenario library --------------------------------------------------------------------------


def test_the_library_holds_16_scenarios_over_8_themes() -> None:
    library = scenario_library()
    assert len(library) >= 16
    assert len({s.id for s in library}) == len(library)
    assert len({s.theme for s in library}) >= 8


@pytest.mark.parametrize("scenario", scenario_library(), ids=lambda s: s.id)
def test_each_scenario_whispers_differently_to_every_class(scenario: Scenario) -> None:
    assert scenario.public_scene.strip() and scenario.title.strip()
    assert set(scenario.whispers) >= set(CLASSES)
    texts = [scenario.whispers[c] for c in CLASSES]
    assert all(t.strip() for t in texts)
    assert len(set(texts)) == len(CLASSES), "two classes hear the same whisper"
    assert all(t not in scenario.public_scene for t in texts)
    assert 3 <= len(scenario.options) <= 4
    assert len({o.id for o in scenario.options}) == len(scenario.options)
    assert all(o.text.strip() and o.outcome.strip() for o in scenario.options)
    check_playable(scenario, CLASSES)


async def test_the_library_never_returns_to_a_recent_theme() -> None:
    source = LibrarySource()
    library = scenario_library()
    for code in ("ABC123", "ZZZ999", "Q1W2E3", "000000"):
        themes: list[str] = []
        used: list[str] = []
        for turn in range(1, 61):
            request = ScenarioRequest(code, turn, tuple(themes), frozenset(used), CLASSES)
            scenario = await source.next_scenario(request)
            assert scenario.theme not in themes[-RECENT_THEMES:], (code, turn, themes[-RECENT_THEMES:])
            if turn <= len(library) // 2:
                assert scenario.id not in used, (code, turn)
            themes.append(scenario.theme)
            used.append(scenario.id)
        assert len(set(themes)) >= RECENT_THEMES + 1


# -- when scenarios do not come ------------------------------------------------------------------


@pytest.fixture
async def flaky() -> FlakySource:
    return FlakySource()


@pytest.fixture
async def oracle_server(tmp_path: Path, flaky: FlakySource) -> Any:
    async with serving(tmp_path, source=flaky, scenario_timeout=0.3) as live:
        yield live


async def assert_held(server: LiveServer, party: list[Player], turn: int, seq: int) -> None:
    """The game waits where it was: playing, on `turn`, no scenario, nothing new logged."""
    code = party[0].game_code
    for player in party:
        view = await player.view()
        assert view["phase"] == "playing" and view["turn_number"] == turn
        assert view["scenario"] is None and view["whisper"] is None and view["waiting_for"] == []
    stored = await server.runtime.services.store.fetchone(
        "SELECT COUNT(*) FROM scenarios WHERE game_code = ? AND turn_number = ?", (code, turn))
    assert stored is not None and stored[0] == 0
    assert await last_seq(server, code) == seq
    response = await party[0].post("/choices", {"option_id": "a"})
    assert response.status_code == 409 and error_of(response) == "WRONG_PHASE"


async def scenario_arrives(player: Player) -> None:
    async def has_scenario() -> bool:
        return (await player.view())["scenario"] is not None

    await wait_until(has_scenario, timeout=10)


@pytest.mark.parametrize("failure", ["fail", "hang", "garbage", "unplayable"])
async def test_the_game_waits_for_a_failing_oracle_and_resumes(oracle_server: LiveServer, flaky: FlakySource,
                                                                failure: str) -> None:
    server = oracle_server
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    flaky.mode = failure
    await play_to_first_turn(party)  # the last answer is accepted even though no scenario came
    assert flaky.calls == 1
    seq = await last_seq(server, code)
    assert names(await logged(server, code, None))[-1] == "player_ready"
    await assert_held(server, party, 1, seq)

    flaky.mode = "ok"
    await scenario_arrives(party[0])
    events = await events_after(server.runtime.services.store, code, seq, party[0].player_id)
    assert names(events) == ["new_scenario", "whisper"]
    assert names(await logged(server, code, None)).count("new_scenario") == 1
    await close_all(party)


async def test_a_failure_between_turns_holds_the_next_turn(oracle_server: LiveServer, flaky: FlakySource) -> None:
    server = oracle_server
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    await play_to_first_turn(party)
    option = (await party[0].view())["scenario"]["options"][0]["id"]
    assert (await party[0].post("/choices", {"option_id": option})).status_code == 200
    flaky.mode = "fail"
    response = await party[1].post("/choices", {"option_id": option})
    assert response.status_code == 200 and response.json()["all_submitted"] is True
    assert names(await logged(server, code, None))[-1] == "turn_resolution"
    await assert_held(server, party, 2, await last_seq(server, code))

    flaky.mode = "ok"
    await scenario_arrives(party[1])
    scenarios = [e for e in await logged(server, code, None) if e.name == "new_scenario"]
    assert [e.payload["turn_number"] for e in scenarios] == [1, 2]
    assert (await party[1].view())["turn_number"] == 2
    await close_all(party)
