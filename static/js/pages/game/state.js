// The table as one player sees it: built from the caller's view, moved by the game's events.
// Pure data; render.js draws it and ../game.js wires it to the client.

export function emptyTable(gameCode) {
  return {
    gameCode, me: null, phase: null, players: new Map(), maxPlayers: 0, turn: 0, trust: 50, npcs: [],
    scenario: null, scenarios: new Map(), whisper: null, myChoice: null, waitingFor: [],
    progress: { submitted: 0, total: 0 }, question: null, resolution: null, over: null,
  };
}

// The caller's view (GET /api/games/<code>, or a reconnect_sync) replaces what it covers.
export function applyView(table, view) {
  table.me = { ...view.you };
  table.phase = view.phase;
  table.players = new Map(view.players.map((p) => [p.player_id, { ...p }]));
  table.maxPlayers = view.max_players;
  table.turn = view.turn_number;
  table.trust = view.party_trust;
  table.npcs = view.npcs.map((n) => ({ ...n, change: 0 }));
  table.scenario = view.scenario;
  if (view.scenario) table.scenarios.set(view.scenario.turn_number, view.scenario);
  table.whisper = view.whisper ? { turn_number: view.turn_number, text: view.whisper } : null;
  table.myChoice = view.my_choice;
  table.waitingFor = [...view.waiting_for];
  const players = table.players.size;
  table.progress = { submitted: view.scenario ? players - view.waiting_for.length : 0, total: players };
  table.question = view.question;
  if (view.phase === "finished") {
    table.over ??= { reason: view.finished_reason, party_trust: view.party_trust, turns_played: view.turn_number };
  }
}

// Events older than the view the page started from only fill in what the view lacks
// (the last resolution, the end): everything else in them the view already holds.
const FROM_HISTORY = new Set(["turn_resolution", "game_over", "new_scenario"]);

export function applyEvent(table, name, data, { live }) {
  if (!live && !FROM_HISTORY.has(name)) return;
  const handler = HANDLERS[name];
  if (handler) handler(table, data, live);
}

const HANDLERS = {
  player_joined(table, data) {
    if (!table.players.has(data.player_id)) {
      table.players.set(data.player_id, {
        player_id: data.player_id, player_name: data.player_name, player_class: null, is_host: false, online: false,
      });
    }
    table.maxPlayers = data.max_players ?? table.maxPlayers;
  },
  player_left(table, data) {
    table.players.delete(data.player_id);
    for (const player of table.players.values()) player.is_host = player.player_id === data.host_id;
    if (table.me) table.me.is_host = table.me.player_id === data.host_id;
  },
  game_started(table, data) {
    table.phase = data.phase;
    for (const p of data.players) {
      const known = table.players.get(p.player_id);
      table.players.set(p.player_id, { ...p, online: known?.online ?? false });
    }
    table.waitingFor = data.players.map((p) => p.player_id);
  },
  player_ready(table, data) {
    const player = table.players.get(data.player_id);
    if (player) player.player_class = data.player_class;
    table.waitingFor = table.waitingFor.filter((id) => id !== data.player_id);
    if (data.player_id === table.me?.player_id) table.me.player_class = data.player_class;
  },
  class_assigned(table, data) {
    table.me.player_class = data.player_class;
    table.question = null;
  },
  new_scenario(table, data, live) {
    table.scenarios.set(data.turn_number, data);
    if (!live) return;
    table.phase = "playing";
    table.scenario = data;
    table.turn = data.turn_number;
    table.myChoice = null;
    table.question = null;
    table.waitingFor = [...table.players.keys()];
    table.progress = { submitted: 0, total: table.players.size };
    if (table.whisper?.turn_number !== data.turn_number) table.whisper = null;
  },
  whisper(table, data) {
    if (data.turn_number >= table.turn) table.whisper = { turn_number: data.turn_number, text: data.text };
  },
  player_chose(table, data) {
    table.progress = { submitted: data.choices_submitted, total: data.total_players };
    table.waitingFor = [...data.waiting_for];
    if (data.player_id === table.me?.player_id) table.myChoice ??= { option_id: null, text: null };
  },
  turn_resolution(table, data, live) {
    table.resolution = data;
    if (!live) return;
    table.trust = data.party_trust;
    for (const change of data.npc_changes) {
      const npc = table.npcs.find((n) => n.name === change.name);
      if (npc) Object.assign(npc, { approval: change.approval, change: change.change });
    }
  },
  game_over(table, data, live) {
    table.over = data;
    if (!live) return;
    table.phase = "finished";
    table.trust = data.party_trust;
    table.scenario = null;
  },
  player_connected(table, data) {
    const player = table.players.get(data.player_id);
    if (player) player.online = true;
  },
  player_disconnected(table, data) {
    const player = table.players.get(data.player_id);
    if (player) player.online = false;
  },
  presence_update(table, data) {
    for (const p of data.players) {
      const player = table.players.get(p.player_id);
      if (player) player.online = p.online;
    }
  },
};

export function onlineCount(table) {
  return [...table.players.values()].filter((p) => p.online).length;
}

export function nameOf(table, playerId) {
  return table.players.get(playerId)?.player_name ?? "someone";
}

// The option text a player picked in `turn` (free text is its own).
export function choiceText(table, turn, choice) {
  if (choice.text) return choice.text;
  const option = table.scenarios.get(turn)?.options.find((o) => o.id === choice.option_id);
  return option?.text ?? choice.option_id ?? "";
}
