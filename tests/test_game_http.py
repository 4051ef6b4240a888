"""The game over HTTP: lobby, interrogation, turns, game over, chat, spectators, legacy routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcane.events import Event
from arcane.game import interrogation
from arcane.game.content import questions, scenario_library
from arcane.game.resolution import Choice, Npc, resolve_turn
from tests.gameplay import (
    FixedSource, assert_seq_increasing, choose_all, close_all, doomed_scenario, error_of, last_seq,
    logged, names,
)
from tests.support import LiveServer, Player, http_client, play_to_first_turn, seat_party, test_settings
from tests.logs import events_after

LIBRARY = {s.id: s for s in scenario_library()}


class RoomLog:
    """Reads the room's events a step at a time, checking names and seq as it goes."""

    def __init__(self, server: LiveServer, code: str) -> None:
        self.server, self.code, self.cursor = server, code, 0

    async def step(self, *expected: str) -> list[Event]:
        events = await events_after(self.server.runtime.services.store, self.code, self.cursor, None)
        assert names(events) == list(expected)
        assert_seq_increasing(events)
        assert all(e.seq is not None and e.seq > self.cursor for e in events)
        if events:
            assert events[-1].seq is not None
            self.cursor = events[-1].seq
        return events


def pick_for(turn: int, index: int, options: list[dict[str, str]], trap: str) -> dict[str, Any]:
    """The choices of the table: unanimous on some turns, split or improvised on others; the
    table heeds its whispers and steers clear of the trap, so that the game runs its 8 turns."""
    safe = [o for o in options if o["id"] != trap]
    if turn % 4 == 1:
        return {"option_id": safe[0]["id"]}
    if index == 3 and turn % 3 == 0:
        return {"text": f"Dax improvises on turn {turn}"}
    return {"option_id": safe[(index + turn) % len(safe)]["id"]}


async def test_four_players_play_to_game_over(server: LiveServer) -> None:
    host = await Player.create(server, "Aria")
    code = host.game_code
    room = RoomLog(server, code)
    (joined,) = await room.step("player_joined")
    assert joined.payload == {"player_id": host.player_id, "player_name": "Aria",
                              "player_count": 1, "max_players": 4}

    party = [host]
    for count, name in enumerate(("Brom", "Cyra", "Dax"), start=2):
        party.append(await Player.join(server, code, name))
        (joined,) = await room.step("player_joined")
        assert joined.payload == {"player_id": party[-1].player_id, "player_name": name,
                                  "player_count": count, "max_players": 4}
    ids = [p.player_id for p in party]
    assert len(set(ids)) == 4

    spectator = await Player.watch(server, code, "Wren")
    (arrived,) = await room.step("spectator_joined")
    assert arrived.payload == {"player_id": spectator.player_id, "name": "Wren", "watching": 1}

    lobby = await host.view()
    assert lobby["phase"] == "lobby"
    assert lobby["you"] == {"player_id": host.player_id, "player_name": "Aria", "role": "player",
                            "is_host": True, "player_class": None}
    assert [p["player_id"] for p in lobby["players"]] == ids
    assert [p["is_host"] for p in lobby["players"]] == [True, False, False, False]
    assert lobby["waiting_for"] == [] and lobby["scenario"] is None and lobby["whisper"] is None
    assert lobby["seq"] == await last_seq(server, code) == 5
    assert lobby["spectators"] == [{"player_id": spectator.player_id, "name": "Wren"}]
    watching = await spectator.view()
    assert watching["you"]["role"] == "spectator" and watching["you"]["is_host"] is False
    assert spectator.player_id not in [p["player_id"] for p in watching["players"]]

    # The host starts: everyone is asked questions, the spectator is not.
    response = await host.post("/start")
    assert response.status_code == 200, response.text
    (started,) = await room.step("game_started")
    assert started.payload["phase"] == "interrogation"
    assert [p["player_id"] for p in started.payload["players"]] == ids
    for player in party:
        view = await player.view()
        assert view["phase"] == "interrogation"
        assert view["question"] is not None and view["question"]["number"] == 1
        assert view["waiting_for"] == ids
    assert (await spectator.view())["question"] is None

    # The divine interrogation: each player's answers earn the class their favour says.
    classes: dict[str, str] = {}
    for index, player in enumerate(party):
        favor: dict[str, int] = {}
        while (question := (await player.get("/interrogation")).json()["question"]) is not None:
            answer_id = question["answers"][index % len(question["answers"])]["id"]
            answer = questions()[question["id"]].answer(answer_id)
            assert answer is not None
            favor = interrogation.add_favor(favor, answer)
            response = await player.post("/interrogation", {"answer_id": answer_id})
            assert response.status_code == 200, response.text
        classes[player.player_id] = interrogation.class_for(favor, set(classes.values()))
        last = index == len(party) - 1
        events = await room.step("player_ready", *(["new_scenario"] if last else []))
        assert events[0].payload == {"player_id": player.player_id, "player_name": player.player_name,
                                     "player_class": classes[player.player_id]}
        mine = [e for e in await logged(server, code, player.player_id) if e.name == "class_assigned"]
        assert len(mine) == 1
        assert mine[0].payload == {"player_class": classes[player.player_id], "divine_favor": favor}
        if not last:
            assert (await host.view())["waiting_for"] == ids[index + 1:]

    trust = 50
    npcs = {"Aldric": 50, "Vex": 50}
    chat_seqs: list[int] = []
    for turn in range(1, 9):
        if turn > 1:
            await room.step()  # the new scenario was checked with the last turn's resolution
        scenario_event = [e for e in await logged(server, code, None)
                          if e.name == "new_scenario" and e.payload["turn_number"] == turn]
        assert len(scenario_event) == 1
        scene = scenario_event[0].payload
        assert set(scene) >= {"scenario_id", "theme", "turn_number", "public_scene", "options"}
        authored = LIBRARY[scene["scenario_id"]]
        assert scene["options"] == authored.public_options()
        assert 3 <= len(scene["options"]) <= 4

        for player in party:
            view = await player.view()
            assert view["phase"] == "playing" and view["turn_number"] == turn
            assert view["scenario"]["scenario_id"] == scene["scenario_id"]
            assert view["scenario"]["options"] == scene["options"]
            # The class's words, then this player's secret clue (arcane/game/omens.py).
            assert view["whisper"].startswith(authored.whispers[classes[player.player_id]] + "\n\n")
            assert view["my_choice"] is None and view["waiting_for"] == ids
            assert view["party_trust"] == trust
            assert {n["name"]: n["approval"] for n in view["npcs"]} == npcs
            whispers = [e for e in await logged(server, code, player.player_id)
                        if e.name == "whisper" and e.payload["turn_number"] == turn]
            assert [w.payload for w in whispers] == [{
                "scenario_id": scene["scenario_id"], "turn_number": turn, "text": view["whisper"],
            }]
        watching = await spectator.view()
        assert watching["scenario"] == (await host.view())["scenario"]
        assert watching["whisper"] is None and watching["my_choice"] is None

        if turn == 2:
            response = await host.post("/chat", {"text": "My whisper says: trust Brom."})
            assert response.status_code == 201, response.text
            (said,) = await room.step("chat_message")
            assert response.json()["seq"] == said.seq
            assert said.payload == {"player_id": host.player_id, "player_name": "Aria",
                                    "text": "My whisper says: trust Brom."}
            chat_seqs.append(said.seq or 0)

        trap = await server.runtime.services.store.fetchone(
            "SELECT trap FROM scenarios WHERE game_code = ? AND turn_number = ?", (code, turn))
        picks = [pick_for(turn, i, scene["options"], trap[0]) for i in range(4)]
        for index, (player, pick) in enumerate(zip(party, picks)):
            await choose_all([player], [pick])
            expected = ["player_chose"] + (["turn_resolution"] if index == 3 else [])
            if index == 3:
                expected += ["new_scenario"] if turn < 8 else ["game_over"]
            events = await room.step(*expected)
            assert events[0].payload == {
                "player_id": player.player_id, "player_name": player.player_name,
                "choices_submitted": index + 1, "total_players": 4, "all_submitted": index == 3,
                "waiting_for": ids[index + 1:],
            }
            if index < 3:
                view = await player.view()
                assert view["my_choice"] == {"option_id": pick.get("option_id"), "text": pick.get("text")}
                assert view["waiting_for"] == ids[index + 1:]
                assert (await party[index + 1].view())["my_choice"] is None

        resolution = events[1].payload
        expected_choices = [Choice(p.player_id, p.player_name, k.get("option_id"), k.get("text"))
                            for p, k in zip(party, picks)]
        oracle = resolve_turn(authored, expected_choices, trust,
                              [Npc(n, t, npcs[n]) for n, t in (("Aldric", "the desperate father"),
                                                               ("Vex", "the vengeful rogue"))], trap[0])
        assert resolution["turn_number"] == turn
        assert resolution["choices"] == list(oracle.choices)
        assert [c["player_id"] for c in resolution["choices"]] == [c.player_id for c in expected_choices]
        assert resolution["trust_change"] == oracle.trust_change
        assert resolution["party_trust"] == trust + resolution["trust_change"] == oracle.party_trust
        assert resolution["outcome"] == oracle.outcome
        assert resolution["npc_changes"] == list(oracle.npc_changes)
        for change in resolution["npc_changes"]:
            assert change["approval"] == npcs[change["name"]] + change["change"]
        trust = resolution["party_trust"]
        npcs = {c["name"]: c["approval"] for c in resolution["npc_changes"]}

        after = await spectator.view()
        assert after["party_trust"] == trust
        assert {n["name"]: n["approval"] for n in after["npcs"]} == npcs
        if turn < 8:
            assert events[2].payload["turn_number"] == turn + 1
            assert after["turn_number"] == turn + 1 and after["phase"] == "playing"
        else:
            assert events[2].payload == {"reason": "completed", "party_trust": trust, "turns_played": 8}

    final = await host.view()
    assert final["phase"] == "finished" and final["finished_reason"] == "completed"
    assert final["scenario"] is None and final["whisper"] is None and final["waiting_for"] == []
    assert final["seq"] == await last_seq(server, code)
    response = await host.post("/choices", {"option_id": "a"})
    assert response.status_code == 409 and error_of(response) == "WRONG_PHASE"

    # Each stream is the room plus the viewer's own events; together they are the whole log.
    room_events = await logged(server, code, None)
    assert chat_seqs[0] in [e.seq for e in room_events]
    everything = {e.seq for e in room_events}
    for player in party:
        own = await logged(server, code, player.player_id)
        assert_seq_increasing(own)
        private = [e for e in own if e.audience != "room"]
        assert names(private) == ["class_assigned"] + ["whisper"] * 8
        assert {e.audience for e in private} == {f"player:{player.player_id}"}
        assert [e for e in own if e.audience == "room"] == room_events
        everything |= {e.seq for e in private}
    assert everything == set(range(1, await last_seq(server, code) + 1))
    assert await logged(server, code, spectator.player_id) == room_events
    await close_all([*party, spectator])


async def test_trust_falling_to_zero_breaks_the_party(tmp_path: Path) -> None:
    server = LiveServer(test_settings(tmp_path), source=FixedSource(doomed_scenario))
    await server.start()
    try:
        party = await seat_party(server, ["Aria", "Brom"])
        code = party[0].game_code
        await play_to_first_turn(party)
        view = await party[0].view()
        assert view["scenario"]["scenario_id"] == "doomed-1" and view["party_trust"] == 50

        await choose_all(party, [{"option_id": "a"}, {"option_id": "b"}])
        events = await logged(server, code, None)
        assert names(events)[-2:] == ["turn_resolution", "game_over"]
        resolution, over = events[-2].payload, events[-1].payload
        assert resolution["party_trust"] == 0 and resolution["trust_change"] == -50
        assert over == {"reason": "trust_broken", "party_trust": 0, "turns_played": 1}
        assert names(events).count("new_scenario") == 1

        for player in party:
            view = await player.view()
            assert view["phase"] == "finished" and view["finished_reason"] == "trust_broken"
            assert view["party_trust"] == 0 and view["turn_number"] == 1 and view["scenario"] is None
        await close_all(party)
    finally:
        await server.stop()
        server.close()


async def test_a_player_leaves_the_lobby_and_the_host_passes_on(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom", "Cyra"])
    host, brom, cyra = party
    code = host.game_code

    response = await cyra.post("/leave")
    assert response.status_code == 200, response.text
    left = (await logged(server, code, None))[-1]
    assert left.name == "player_left"
    assert {k: left.payload[k] for k in ("player_id", "player_name", "player_count")} == {
        "player_id": cyra.player_id, "player_name": "Cyra", "player_count": 2}
    assert [p["player_id"] for p in (await host.view())["players"]] == [host.player_id, brom.player_id]
    response = await cyra.get()
    assert response.status_code == 403 and error_of(response) == "NOT_IN_GAME"

    response = await host.post("/leave")
    assert response.status_code == 200, response.text
    left, changed = (await logged(server, code, None))[-2:]
    assert left.name == "player_left" and left.payload["player_id"] == host.player_id
    assert left.payload["player_count"] == 1 and left.payload["host_id"] == brom.player_id
    assert changed.name == "host_changed" and changed.payload == {
        "host_id": brom.player_id, "previous_host_id": host.player_id, "reason": "left"}
    view = await brom.view()
    assert view["you"]["is_host"] is True
    assert [(p["player_id"], p["is_host"]) for p in view["players"]] == [(brom.player_id, True)]

    # The seat is free again, and the new host runs the table.
    dax = await Player.join(server, code, "Dax")
    assert (await logged(server, code, None))[-1].payload["player_count"] == 2
    response = await host.post("/start")
    assert response.status_code == 403 and error_of(response) == "NOT_IN_GAME"
    response = await brom.post("/start")
    assert response.status_code == 200, response.text
    assert (await dax.view())["phase"] == "interrogation"
    await close_all([*party, dax])


async def test_the_last_player_leaving_abandons_the_game(server: LiveServer) -> None:
    host = await Player.create(server, "Aria")
    spectator = await Player.watch(server, host.game_code, "Wren")
    response = await host.post("/leave")
    assert response.status_code == 200, response.text
    events = await logged(server, host.game_code, None)
    assert names(events) == ["player_joined", "spectator_joined", "player_left", "game_over"]
    assert events[-1].payload["reason"] == "abandoned"
    view = await spectator.view()
    assert view["phase"] == "finished" and view["players"] == []
    await close_all([host, spectator])


async def test_players_chat_in_the_lobby_and_at_the_table(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    lines = [(party[1], "Anyone else hear that? 🐉"), (party[0], "  spaces   kept  ")]
    for speaker, text in lines:
        response = await speaker.post("/chat", {"text": text})
        assert response.status_code == 201, response.text
    await play_to_first_turn(party)
    response = await party[0].post("/chat", {"text": "My whisper mentions a well."})
    assert response.status_code == 201, response.text
    lines.append((party[0], "My whisper mentions a well."))

    said = [e for e in await logged(server, code, None) if e.name == "chat_message"]
    assert [e.payload for e in said] == [
        {"player_id": p.player_id, "player_name": p.player_name, "text": t} for p, t in lines]
    assert response.json()["seq"] == said[-1].seq == await last_seq(server, code)
    await close_all(party)


async def test_spectators_watch_but_cannot_act(server: LiveServer) -> None:
    party = await seat_party(server, ["Aria", "Brom"])
    code = party[0].game_code
    spectator = await Player.watch(server, code, "Wren")
    response = await spectator.post("/start")
    assert response.status_code == 403 and error_of(response) == "NOT_HOST"
    await play_to_first_turn(party)
    before = await last_seq(server, code)
    option = (await spectator.view())["scenario"]["options"][0]["id"]
    for path, body in (("/choices", {"option_id": option}), ("/chat", {"text": "boo"}),
                       ("/typing", {"is_typing": True}), ("/interrogation", {"answer_id": "a"})):
        response = await spectator.post(path, body)
        assert response.status_code == 403, (path, response.text)
        assert error_of(response) == "NOT_IN_GAME", path
    assert await last_seq(server, code) == before
    assert (await party[0].view())["waiting_for"] == [p.player_id for p in party]
    await close_all([*party, spectator])


async def test_the_legacy_routes_play_a_turn_on_the_session_cookie(server: LiveServer) -> None:
    clients = [http_client(server.url) for _ in range(3)]
    aria, brom, cyra = clients
    try:
        response = await aria.post("/api/set_username", json={"username": "Aria"})
        assert response.json() == {"success": True, "username": "Aria"}
        info = (await aria.get("/api/session_info")).json()
        assert info["username"] == "Aria" and info["in_game"] is False and info["game_code"] is None

        created = (await aria.post("/api/create_game", json={})).json()
        assert created["success"] is True and created["player_name"] == "Aria"
        code = created["game_code"]
        info = (await aria.get("/api/session_info")).json()
        assert info["in_game"] is True and info["game_code"] == code
        assert info["player_id"] == created["player_id"] and info["games"] == [code]

        await brom.post("/api/set_username", json={"username": "Brom"})
        joined = (await brom.post("/api/join_game", json={"game_code": code.lower()})).json()
        assert joined["success"] is True and joined["game_code"] == code and joined["player_name"] == "Brom"
        joined_c = (await cyra.post("/api/join_game", json={"game_code": code, "player_name": "Cyra"})).json()
        ids = [created["player_id"], joined["player_id"], joined_c["player_id"]]

        state = (await brom.get("/api/game_state")).json()
        assert state["phase"] == "lobby" and state["you"]["player_id"] == joined["player_id"]
        assert [p["player_id"] for p in state["players"]] == ids

        # The new routes take the same cookie: start and interrogation without a token.
        response = await aria.post(f"/api/games/{code}/start")
        assert response.status_code == 200, response.text
        for client in clients:
            while (q := (await client.get(f"/api/games/{code}/interrogation")).json()["question"]):
                response = await client.post(f"/api/games/{code}/interrogation",
                                             json={"answer_id": q["answers"][1]["id"]})
                assert response.status_code == 200, response.text

        current = (await cyra.get("/api/current_scenario")).json()
        assert current["phase"] == "playing" and current["turn_number"] == 1
        scenario = current["scenario"]
        authored = LIBRARY[scenario["scenario_id"]]
        for client, pid in zip(clients, ids):
            whisper = (await client.get("/api/my_whisper")).json()
            state = (await client.get("/api/game_state")).json()
            assert whisper == {"whisper": state["whisper"], "turn_number": 1}
            assert whisper["whisper"].startswith(authored.whispers[state["you"]["player_class"]] + "\n\n")
        waiting = (await aria.get("/api/waiting_for")).json()
        assert waiting["waiting_for"] == [{"player_id": pid, "player_name": n}
                                          for pid, n in zip(ids, ("Aria", "Brom", "Cyra"))]

        option = scenario["options"][0]["id"]
        made = (await aria.post("/api/make_choice", json={"choice": option})).json()
        assert made["success"] is True and made["choices_submitted"] == 1
        made = (await brom.post("/api/make_choice", json={"choice": "We bargain instead."})).json()
        assert made["success"] is True and made["waiting_for"] == [ids[2]]
        waiting = (await aria.get("/api/waiting_for")).json()
        assert [w["player_id"] for w in waiting["waiting_for"]] == [ids[2]]
        response = await brom.post("/api/make_choice", json={"option_id": option})
        assert response.status_code == 409 and error_of(response) == "ALREADY_CHOSE"
        made = (await cyra.post("/api/make_choice", json={"option_id": option})).json()
        assert made["all_submitted"] is True

        resolution = [e for e in await logged(server, code, None) if e.name == "turn_resolution"]
        assert len(resolution) == 1
        assert [(c["option_id"], c["text"]) for c in resolution[0].payload["choices"]] == [
            (option, None), (None, "We bargain instead."), (option, None)]
        current = (await brom.get("/api/current_scenario")).json()
        assert current["turn_number"] == 2 and current["scenario"]["scenario_id"] != scenario["scenario_id"]
    finally:
        for client in clients:
            await client.aclose()


async def test_the_session_cookie_alone_opens_the_game(server: LiveServer) -> None:
    host = await Player.create(server, "Aria")
    cookie_only = http_client(server.url, cookies=host.client.cookies)
    stranger = http_client(server.url)
    try:
        assert "Authorization" not in cookie_only.headers
        response = await cookie_only.get(f"/api/games/{host.game_code}")
        assert response.status_code == 200, response.text
        assert response.json()["you"]["player_id"] == host.player_id
        response = await stranger.get(f"/api/games/{host.game_code}")
        assert response.status_code == 401 and error_of(response) == "AUTH_REQUIRED"
    finally:
        await close_all([host])
        await cookie_only.aclose()
        await stranger.aclose()


async def test_a_bearer_token_speaks_louder_than_the_cookie(server: LiveServer) -> None:
    brom = await Player.create(server, "Brom")
    browser = http_client(server.url)
    try:
        aria = (await browser.post(f"/api/games/{brom.game_code}/players", json={"player_name": "Aria"})).json()
        assert (await browser.get(f"/api/games/{brom.game_code}")).json()["you"]["player_id"] == aria["player_id"]
        as_brom = await browser.get(f"/api/games/{brom.game_code}",
                                    headers={"Authorization": f"Bearer {brom.token}"})
        assert as_brom.json()["you"]["player_id"] == brom.player_id
        assert as_brom.json()["you"]["is_host"] is True
    finally:
        await browser.aclose()
        await brom.close()


async def test_one_browser_sits_in_two_games(server: LiveServer) -> None:
    other_host = await Player.create(server, "Brom")
    browser = http_client(server.url)
    try:
        mine = (await browser.post("/api/games", json={"player_name": "Aria"})).json()
        theirs = (await browser.post(f"/api/games/{other_host.game_code}/players",
                                     json={"player_name": "Aria"})).json()
        assert mine["game_code"] != theirs["game_code"]

        view_mine = (await browser.get(f"/api/games/{mine['game_code']}")).json()
        view_theirs = (await browser.get(f"/api/games/{theirs['game_code']}")).json()
        assert view_mine["you"]["player_id"] == mine["player_id"] and view_mine["you"]["is_host"] is True
        assert view_theirs["you"]["player_id"] == theirs["player_id"]
        assert view_theirs["you"]["is_host"] is False and len(view_theirs["players"]) == 2

        info = (await browser.get("/api/session_info")).json()
        assert info["games"] == sorted([mine["game_code"], theirs["game_code"]])
        assert info["game_code"] == theirs["game_code"] and info["player_id"] == theirs["player_id"]
        assert (await browser.get("/api/game_state")).json()["game_code"] == theirs["game_code"]

        # Acting in one game by cookie leaves the other untouched.
        response = await browser.post(f"/api/games/{mine['game_code']}/start")
        assert response.status_code == 200, response.text
        assert (await browser.get(f"/api/games/{mine['game_code']}")).json()["phase"] == "interrogation"
        assert (await other_host.view())["phase"] == "lobby"
    finally:
        await browser.aclose()
        await other_host.close()
