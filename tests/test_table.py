"""The game at the table (docs/realtime.md): distinct classes and secret whispers, the turn's
clock, a vote to skip an absent player, the host's hand-off, leaving mid-game, spectators,
free text that counts, the recap and the rematch. Over real HTTP and Socket.IO."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from arcane.game.content import CLASSES, Option, Scenario
from arcane.game.omens import SAFE_CLUES, TRAP_CLUES, TRAP_PENALTY
from arcane.game.resolution import Choice, read_as, resolve_turn
from arcane.store import Writes, each
from arcane.store.games import load_game
from tests.gameplay import error_of, logged, names, wait_until
from tests.sockets import socket_for
from tests.support import LiveServer, Player, play_to_first_turn, seat_party, serving, test_database


@pytest.mark.real_traps
async def test_a_party_giving_the_same_answers_gets_four_classes_and_four_whispers(server: LiveServer) -> None:
    party = await seat_party(server, ["Ann", "Bob", "Cid", "Dee"])
    await play_to_first_turn(party)  # every player answers every question with its first answer
    views = [await p.view() for p in party]
    assert sorted(v["you"]["player_class"] for v in views) == sorted(CLASSES)
    whispers = [v["whisper"] for v in views]
    assert all(whispers) and len(set(whispers)) == 4, whispers
    trap = await trap_of(server, party[0].game_code, 1)
    options = {o["id"]: o["text"] for o in views[0]["scenario"]["options"]}
    # Each whisper ends with its clue: exactly one names the trap's words, each other names
    # a safe option's words, a different one each while there are enough.
    clues = [w.split("\n\n")[-1] for w in whispers]
    named = [next(oid for oid, text in options.items() if text in clue) for clue in clues]
    assert named.count(trap) == 1, (named, trap)
    assert len(set(named)) == min(4, len(options)), named
    knower = clues[named.index(trap)]
    assert knower in {w.format(option=options[trap]) for ws in TRAP_CLUES.values() for w in ws}, knower
    for clue, oid in zip(clues, named):
        if clue != knower:
            assert clue in {w.format(option=options[oid]) for ws in SAFE_CLUES.values() for w in ws}, clue
    for player in party:
        await player.close()


async def trap_of(server: LiveServer, code: str, turn: int) -> str:
    row = await server.runtime.services.store.fetchone(
        "SELECT trap FROM scenarios WHERE game_code = ? AND turn_number = ?", (code, turn))
    assert row is not None
    return str(row[0])


@pytest.mark.real_traps
async def test_the_same_scenario_hides_its_trap_anew_in_each_game(tmp_path: Path) -> None:
    """The trap is drawn in secret, not from anything a player sees: the same scene, the
    same classes, other games, other traps."""
    async with serving(tmp_path) as server:
        traps = set()
        for _ in range(12):
            party = await seat_party(server, ["Ann", "Bob"])
            await play_to_first_turn(party)
            traps.add(await trap_of(server, party[0].game_code, 1))
            for player in party:
                await player.close()
        assert len(traps) >= 2, traps


async def test_the_clock_resolves_a_turn_with_the_missing_hesitating(tmp_path: Path) -> None:
    async with serving(tmp_path, turn_timeout=1.5) as server:
        party = await seat_party(server, ["Ann", "Bob", "Cid"])
        await play_to_first_turn(party)
        view = await party[0].view()
        assert view["turn_timeout"] == 1.5 and view["turn_deadline"] > time.time()
        assert (await party[0].post("/choices", {"option_id": view["scenario"]["options"][0]["id"]})).status_code == 200

        async def resolved() -> bool:
            return (await party[0].view())["turn_number"] == 2

        await wait_until(resolved, timeout=10)
        events = await logged(server, party[0].game_code, party[0].player_id)
        timed_out = next(e for e in events if e.name == "turn_timed_out")
        assert timed_out.payload == {"turn_number": 1, "hesitated": [party[1].player_id, party[2].player_id]}
        resolution = next(e for e in events if e.name == "turn_resolution").payload
        assert resolution["hesitated"] == [party[1].player_id, party[2].player_id]
        assert "Bob and Cid hesitated" in resolution["outcome"]
        assert [c["hesitated"] for c in resolution["choices"]] == [False, True, True]
        assert names(events).index("turn_timed_out") < names(events).index("turn_resolution")
        for player in party:
            await player.close()


async def test_the_party_votes_to_skip_a_player_who_is_away(server: LiveServer) -> None:
    ann, bob, cid = await seat_party(server, ["Ann", "Bob", "Cid"])
    await play_to_first_turn([ann, bob, cid])
    bob_ws = await socket_for(bob)  # Bob is here; Cid never came (away past any grace)
    try:
        refused = await ann.post("/skip", {"player_id": bob.player_id})
        assert refused.status_code == 409 and error_of(refused) == "WRONG_PHASE"
        assert error_of(await ann.post("/skip", {"player_id": ann.player_id})) == "VALIDATION_ERROR"
        assert error_of(await ann.post("/skip", {"player_id": "stranger"})) == "VALIDATION_ERROR"
        option = (await ann.view())["scenario"]["options"][1]["id"]
        for player in (ann, bob):
            assert (await player.post("/choices", {"option_id": option})).status_code == 200
        first = await ann.post("/skip", {"player_id": cid.player_id})
        assert first.json() == {"ok": True, "votes": 1, "needed": 2, "skipped": False}
        again = await ann.post("/skip", {"player_id": cid.player_id})  # one vote each
        assert again.json()["votes"] == 1
        second = await bob_ws.call("vote_skip", {"player_id": cid.player_id})
        assert second == {"ok": True, "votes": 2, "needed": 2, "skipped": True}
        skipped = await bob_ws.wait_event("player_skipped")
        assert skipped["player_id"] == cid.player_id and skipped["all_submitted"] is True
        resolution = await bob_ws.wait_event("turn_resolution")
        assert resolution["hesitated"] == [cid.player_id] and "Cid hesitated" in resolution["outcome"]
        late = await ann.post("/skip", {"player_id": cid.player_id})
        assert late.status_code in (409, 200) and (late.status_code == 409 or late.json()["skipped"] is False)
    finally:
        await bob_ws.close()
        for player in (ann, bob, cid):
            await player.close()


async def test_the_host_who_stays_away_in_the_lobby_hands_over(server: LiveServer) -> None:
    ann, bob, cid = await seat_party(server, ["Ann", "Bob", "Cid"])
    ann_ws, cid_ws = await socket_for(ann), await socket_for(cid)  # Bob, next in line, is not here
    try:
        await ann_ws.close()
        changed = await cid_ws.wait_event("host_changed", timeout=server.settings.presence_grace + 5)
        assert (changed["host_id"], changed["previous_host_id"], changed["reason"]) == (
            cid.player_id, ann.player_id, "away")  # Bob, next in seat order, is away too
        view = await cid.view()
        assert view["you"]["is_host"] is True
        assert [p["player_name"] for p in view["players"] if p["is_host"]] == ["Cid"]
        assert (await cid.post("/start")).status_code == 200  # the new host can begin
    finally:
        await cid_ws.close()
        for player in (ann, bob, cid):
            await player.close()


async def test_a_player_may_leave_mid_game_and_the_turn_goes_on(server: LiveServer) -> None:
    ann, bob, cid = await seat_party(server, ["Ann", "Bob", "Cid"])
    await play_to_first_turn([ann, bob, cid])
    option = (await ann.view())["scenario"]["options"][0]["id"]
    for player in (ann, bob):
        assert (await player.post("/choices", {"option_id": option})).status_code == 200
    assert (await cid.post("/leave")).status_code == 200
    view = await ann.view()
    assert view["turn_number"] == 2 and [p["player_name"] for p in view["players"]] == ["Ann", "Bob"]
    events = await logged(server, ann.game_code, ann.player_id)
    assert names(events)[-3:] == ["turn_resolution", "new_scenario", "whisper"]
    for player in (ann, bob, cid):
        await player.close()


async def test_spectators_are_announced_and_listed(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    ann_ws = await socket_for(ann)
    sam = await Player.watch(server, ann.game_code, "Sam")
    try:
        joined = await ann_ws.wait_event("spectator_joined")
        assert (joined["player_id"], joined["name"], joined["watching"]) == (sam.player_id, "Sam", 1)
        assert (await ann.view())["spectators"] == [{"player_id": sam.player_id, "name": "Sam"}]
        assert (await sam.post("/leave")).status_code == 200
        left = await ann_ws.wait_event("spectator_left")
        assert (left["name"], left["watching"]) == ("Sam", 0)
        assert (await ann.view())["spectators"] == []
    finally:
        await ann_ws.close()
        for player in (ann, bob, sam):
            await player.close()


def test_free_text_is_read_as_the_option_it_shares_most_words_with() -> None:
    scenario = Scenario("s", "t", "T", "scene", {}, (
        Option("a", "Bribe the guard with silver", 0, {}, ""),
        Option("b", "Climb the northern wall at night", 0, {}, ""),
    ))
    assert read_as(scenario, "we CLIMB over the wall quietly").id == "b"  # type: ignore[union-attr]
    assert read_as(scenario, "offer him silver coins").id == "a"  # type: ignore[union-attr]
    assert read_as(scenario, "sing a song") is None  # an improvisation
    assert read_as(scenario, "the the the") is None


async def test_free_text_moves_the_outcome_and_is_named_in_it(server: LiveServer) -> None:
    ann, bob = await seat_party(server, ["Ann", "Bob"])
    await play_to_first_turn([ann, bob])
    option = (await ann.view())["scenario"]["options"][2]
    assert (await ann.post("/choices", {"text": f"I say: {option['text'].lower()}!"})).status_code == 200
    assert (await bob.post("/choices", {"text": "dance a jig"})).status_code == 200
    resolution = next(e for e in await logged(server, ann.game_code, ann.player_id) if e.name == "turn_resolution").payload
    assert [c.get("read_as") for c in resolution["choices"]] == [option["id"], None]
    assert "Ann's idea" in resolution["outcome"] and f"is taken as \u201c{option['text']}\u201d" in resolution["outcome"]
    assert "Bob's idea (\u201cdance a jig\u201d) is tried as it stands" in resolution["outcome"]
    for player in (ann, bob):
        await player.close()


async def test_the_recap_tells_every_turn_and_the_party_plays_again(tmp_path: Path) -> None:
    async with serving(tmp_path, turns_per_game=2) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        sam = await Player.watch(server, ann.game_code, "Sam")
        await play_to_first_turn([ann, bob])
        assert error_of(await ann.get("/recap")) == "WRONG_PHASE"
        for turn in (1, 2):
            assert (await bob.post("/chat", {"text": f"trust me, turn {turn}"})).status_code == 201
            option = (await ann.view())["scenario"]["options"][0]["id"]
            for player in (ann, bob):
                assert (await player.post("/choices", {"option_id": option})).status_code == 200
        assert (await ann.view())["phase"] == "finished"
        recap = (await sam.get("/recap")).json()  # spectators see it too
        assert recap["finished_reason"] in ("completed", "trust_broken")
        turns = recap["turns"]
        assert [t["turn_number"] for t in turns] == [1, 2][:len(turns)]
        first = turns[0]
        assert {w["player_name"] for w in first["whispers"]} == {"Ann", "Bob"}
        assert all(w["text"] and w["player_class"] for w in first["whispers"])
        assert first["trap"] in {o["id"] for o in first["options"]}
        assert first["resolution"]["outcome"] and first["chat"][0]["text"] == "trust me, turn 1"
        assert first["chat"][0]["player_name"] == "Bob"

        assert error_of(await sam.post("/rematch")) == "NOT_IN_GAME"  # spectators watch
        seat = await bob.post("/rematch")
        assert seat.status_code == 201, seat.text
        new = seat.json()
        assert new["game_code"] != ann.game_code and new["player_id"] == bob.player_id
        again = await ann.post("/rematch")
        assert again.json()["game_code"] == new["game_code"] and again.json()["player_id"] == ann.player_id
        rejoined = [Player(server, new["game_code"], new["player_id"], "Bob", new["player_token"], bob.client),
                    Player(server, new["game_code"], ann.player_id, "Ann", again.json()["player_token"], ann.client)]
        for player in rejoined:
            player.client.headers["Authorization"] = f"Bearer {player.token}"
        view = await rejoined[0].view()
        assert view["phase"] == "lobby" and view["you"]["is_host"] is True
        assert [p["player_name"] for p in view["players"]] == ["Bob", "Ann"]
        assert (await rejoined[1].view())["you"]["player_name"] == "Ann"
        old_room = [e for e in await logged(server, ann.game_code, sam.player_id) if e.name == "rematch"]
        assert [e.payload["game_code"] for e in old_room] == [new["game_code"]]
        for player in (ann, bob, sam):
            await player.close()


async def test_a_turn_clock_survives_a_restart(tmp_path: Path) -> None:
    """The deadline lives in the database: a server started after it passed resolves the turn."""
    database = test_database(tmp_path)
    async with serving(tmp_path, database=database, turn_timeout=30) as server:
        ann, bob = await seat_party(server, ["Ann", "Bob"])
        await play_to_first_turn([ann, bob])
        code = ann.game_code
        await server.runtime.services.store.run(due_now, code)
        for player in (ann, bob):
            await player.close()
    async with serving(tmp_path, database=database, turn_timeout=30) as again:
        async def resolved() -> bool:
            return any(e.name == "turn_timed_out" for e in await logged(again, code, None))

        await wait_until(resolved, timeout=10)
        game = await load_game(again.runtime.services.store, code)
        assert game is not None and game.turn_number == 2 and game.phase == "playing"


@each
async def due_now(db: Writes, code: str) -> None:
    """The turn's deadline, moved to a second ago (while the server is stopped, time passed)."""
    await db.execute("UPDATE games SET turn_deadline = ? WHERE code = ?", (time.time() - 1, code))


def test_the_trap_costs_each_player_who_picks_it_and_colours_the_outcome() -> None:
    scenario = Scenario("s", "t", "T", "scene", {}, (
        Option("a", "Cross the bridge", 0, {}, "You cross."),
        Option("b", "Wade the ford", 0, {}, "You wade."),
        Option("c", "Wait for dawn", 0, {}, "You wait."),
    ))
    choices = [Choice("1", "Ann", "a", None), Choice("2", "Bob", "a", None), Choice("3", "Cid", "b", None)]
    clear = resolve_turn(scenario, choices, 50, (), trap="c")
    fallen = resolve_turn(scenario, choices, 50, (), trap="a")
    assert clear.trust_change - fallen.trust_change == 2 * TRAP_PENALTY
    assert fallen.fell_for_trap and "It was a trap" in fallen.outcome and not clear.fell_for_trap
    some = resolve_turn(scenario, choices, 50, (), trap="b")
    assert clear.trust_change - some.trust_change == TRAP_PENALTY and "some of you chose the trap" in some.outcome
