// The table as one player sees it: built from the caller's view, moved by the game's events.
// Pure data; render.js draws it and ../game.js wires it to the client.

export function emptyTable(gameCode) {
  return {
    gameCode, me: null, phase: null, players: new Map(), maxPlayers: 0, turn: 0, trust: 50, npcs: [],
    scenario: null, scenarios: new Map(), whisper: null, myChoice: null, waitingFor: [],
    progress: { submitted: 0, total: 0 }, question: null, resolution: null, over: null,
    // The table's own moments: the turn's clock, who watches, a resolution the player has
    // not yet moved on from (the outcome as its own step), votes to skip, the game after.
    deadline: null, turnTimeout: 0, spectators: new Map(), interlude: null, skipVotes: new Map(),
    rematchCode: null, recap: null, revealing: false,
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
  table.deadline = view.turn_deadline ?? null;
  table.turnTimeout = view.turn_timeout ?? 0;
  table.spectators = new Map((view.spectators ?? []).map((s) => [s.player_id, s.name]));
  table.rematchCode = view.rematch_code ?? null;
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
    table.waitingFor = table.waitingFor.filter((id) => id !== data.player_id);
    setHost(table, data.host_id);
  },
  host_changed(table, data) {
    setHost(table, data.host_id);
  },
  spectator_joined(table, data) {
    table.spectators.set(data.player_id, data.name);
  },
  spectator_left(table, data) {
    table.spectators.delete(data.player_id);
  },
  skip_vote(table, data) {
    table.skipVotes.set(data.player_id, { votes: data.votes, needed: data.needed });
  },
  player_skipped(table, data) {
    table.skipVotes.delete(data.player_id);
    table.progress = { submitted: data.choices_submitted, total: data.total_players };
    table.waitingFor = [...data.waiting_for];
  },
  turn_timed_out(table) {
    table.deadline = null;
  },
  rematch(table, data) {
    table.rematchCode = data.game_code;
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
  class_assigned(table, data, live) {
    table.me.player_class = data.player_class;
    table.question = null;
    // The class is revealed as its own moment, even to the last player judged, whose answer
    // also begins the first turn: the table waits for them to move on.
    if (live) table.revealing = true;
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
    table.deadline = data.turn_deadline ?? null;
    table.turnTimeout = data.turn_timeout ?? table.turnTimeout;
    table.skipVotes = new Map();
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
    table.interlude = data.turn_number; // the outcome is its own step, until the player moves on
    table.deadline = null;
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

function setHost(table, hostId) {
  if (!hostId) return;
  for (const player of table.players.values()) player.is_host = player.player_id === hostId;
  if (table.me) table.me.is_host = table.me.player_id === hostId;
}

// Seconds left on the turn's clock, or null when there is none.
export function secondsLeft(table, now = Date.now()) {
  if (!table.deadline || table.phase !== "playing" || !table.scenario) return null;
  return Math.max(0, Math.round(table.deadline - now / 1000));
}

export function clockText(seconds) {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

export function onlineCount(table) {
  return [...table.players.values()].filter((p) => p.online).length;
}

export function nameOf(table, playerId) {
  return table.players.get(playerId)?.player_name ?? "someone";
}

// The option text a player picked in `turn` (free text is its own).
export function choiceText(table, turn, choice) {
  if (choice.hesitated) return "hesitated";
  if (choice.text) return choice.text;
  const option = table.scenarios.get(turn)?.options.find((o) => o.id === choice.option_id);
  return option?.text ?? choice.option_id ?? "";
}
