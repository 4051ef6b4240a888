// Drawing the table. Player text only ever reaches the page as text nodes (dom.js).

import { $, h, replace, setText, show } from "../dom.js";
import { choiceText, clockText, nameOf, onlineCount, secondsLeft } from "./state.js";

const REASONS = {
  completed: (over) =>
    `The party saw the tale through: ${over.turns_played} turns, ending with trust at ${over.party_trust}.`,
  trust_broken: (over) => `Trust is broken. The party scatters after ${over.turns_played} turns.`,
  abandoned: () => "Everyone left the table. The tale ends unfinished.",
};

// Keys of what was last drawn where rebuilding would steal focus from a control.
const drawn = { options: null, answers: null, resolution: null, recap: null };
const TITLE = document.title;

export function render(table, actions) {
  const phase = table.phase;
  const isPlayer = table.me?.role === "player";
  // A resolution is its own step: the outcome, until the player moves on to the next scene.
  const interlude = table.interlude !== null && !!table.resolution && (phase === "playing" || phase === "finished");
  const revealing = table.revealing && phase === "playing" && table.turn <= 1 && !interlude;
  const scene = phase === "playing" && !!table.scenario && !interlude && !revealing;
  show("lobby", phase === "lobby");
  show("interrogation", phase === "interrogation" || revealing);
  show("scene", scene);
  show("resolution", interlude || (phase === "finished" && !!table.resolution));
  show("game-over", phase === "finished");
  show("recap", phase === "finished" && !!table.recap);
  show("chat-form", isPlayer);
  show("role-chip", table.me?.role === "spectator");
  renderParty(table, actions);
  renderStanding(table);
  if (phase === "lobby") renderLobby(table, actions);
  if (phase === "interrogation" || revealing) renderInterrogation(table, actions);
  show("to-first-scene", revealing);
  if (revealing && table.scenario) setText("interrogation-wait", "The first scene is ready.");
  $("to-first-scene").disabled = !table.scenario;
  $("to-first-scene").onclick = actions.toFirstScene;
  if (scene) renderScene(table, actions, isPlayer);
  if (table.resolution) renderResolution(table, actions, phase);
  if (phase === "finished") renderGameOver(table, actions, isPlayer);
  renderTurnbar(table, scene, isPlayer);
  const writing = phase === "playing" && !table.scenario && !interlude && !revealing;
  if (writing) setText("loading", "The next scene is being written…");
  show("loading", writing);
}

// The player's move: a scene is open, they are a player, and they have not chosen.
export function myMove(table) {
  const reading = (table.interlude !== null && table.scenario && table.scenario.turn_number <= table.interlude)
    || (table.revealing && table.turn <= 1);
  return table.phase === "playing" && !!table.scenario && !reading && table.me?.role === "player" && !table.myChoice;
}

function renderTurnbar(table, scene, isPlayer) {
  show("turnbar", scene);
  const left = secondsLeft(table);
  if (scene) {
    const { submitted, total } = table.progress;
    setText("turnbar-progress", `Turn ${table.scenario.turn_number} · ${submitted}/${total} chosen`);
    setText("turnbar-clock", left === null ? "" : `· ${clockText(left)}`);
    show("turnbar-cue", myMove(table));
    $("turnbar").dataset.urgent = String(left !== null && left <= 20);
  }
  show("turn-clock", left !== null && scene);
  if (left !== null) setText("turn-clock", `${clockText(left)} left`);
  const move = myMove(table);
  document.title = move ? `Your move · ${TITLE}` : TITLE;
  void isPlayer;
}

// The clock moves every second without any event: only its text is redrawn.
export function tick(table) {
  const left = secondsLeft(table);
  if (left === null) return;
  setText("turnbar-clock", `· ${clockText(left)}`);
  setText("turn-clock", `${clockText(left)} left`);
  $("turnbar").dataset.urgent = String(left <= 20);
}

function renderParty(table, actions) {
  const me = table.me?.player_id;
  const isPlayer = table.me?.role === "player";
  const choosing = table.phase === "playing" && table.interlude === null ? new Set(table.waitingFor) : new Set();
  const items = [...table.players.values()].map((p) => {
    const status = p.online ? "online" : "offline";
    const votes = table.skipVotes.get(p.player_id);
    // Away past the grace period and holding up the turn: the others may vote to skip them.
    const skippable = isPlayer && p.player_id !== me && !p.online && choosing.has(p.player_id);
    return h("li", { class: `player ${status}`, dataset: { playerId: p.player_id, online: String(p.online) } },
      h("span", { class: `presence-dot ${status}`, role: "img", "aria-label": status }),
      h("span", { class: "player-name", title: p.player_name }, p.player_name),
      p.player_id === me ? h("span", { class: "badge you" }, "you") : null,
      p.is_host ? h("span", { class: "badge host" }, "host") : null,
      p.player_class ? h("span", { class: "player-class" }, p.player_class) : null,
      choosing.has(p.player_id) ? h("span", { class: "badge choosing" }, p.online ? "choosing…" : "away") : null,
      skippable ? h("button", { type: "button", class: "skip quiet", dataset: { skip: p.player_id },
        onclick: () => actions.voteSkip(p.player_id) },
      votes ? `Skip (${votes.votes}/${votes.needed})` : "Vote to skip") : null,
    );
  });
  replace("players", items);
  setText("online-count", `${onlineCount(table)}/${table.players.size} online`);
  const watching = table.spectators.size;
  show("watching", watching > 0);
  setText("watching", watching === 1 ? "1 watching" : `${watching} watching`);
  show("leave", !!table.me);
  show("sound-choice", isPlayer);
}

function renderStanding(table) {
  $("trust-meter").value = table.trust;
  setText("trust-value", String(table.trust));
  replace("npcs", table.npcs.map((npc) => h("li", { class: "npc" },
    h("span", { class: "npc-name" }, npc.name),
    h("span", { class: "npc-title" }, npc.title),
    h("meter", { min: 0, max: 100, low: 25, high: 75, optimum: 100, value: npc.approval,
      "aria-label": `${npc.name}'s approval` }),
    h("span", { class: "npc-approval" }, String(npc.approval)),
  )));
}

function renderLobby(table, actions) {
  const link = `${window.location.origin}/game/${table.gameCode}`;
  const input = $("share-link");
  if (input.value !== link) input.value = link;
  setText("lobby-count", `${table.players.size} of ${table.maxPlayers} companions have gathered.`);
  $("watch-link").href = `/game/${table.gameCode}?watch=1`;
  const host = !!table.me?.is_host;
  show("start-game", host);
  show("lobby-wait", !host);
  const hostName = [...table.players.values()].find((p) => p.is_host)?.player_name;
  setText("lobby-wait", hostName ? `Waiting for ${hostName}, the host, to begin…` : "Waiting for the host to begin…");
  $("start-game").onclick = actions.start;
}

function renderInterrogation(table, actions) {
  const question = table.question;
  show("question", !!question);
  show("class-result", !question && !!table.me?.player_class);
  if (question) {
    setText("question-progress", `Question ${question.number} of ${question.total}`);
    setText("question-text", question.text);
    if (drawn.answers !== question.id) {
      drawn.answers = question.id;
      replace("answers", question.answers.map((answer) =>
        h("button", { type: "button", class: "answer", onclick: () => actions.answer(question, answer) },
          answer.text)));
    }
  } else {
    drawn.answers = null;
    setText("my-class", table.me?.player_class ?? "");
  }
  const waiting = [...table.players.values()].filter((p) => !p.player_class).map((p) => p.player_name);
  setText("interrogation-wait", waiting.length ? `Still before the gods: ${waiting.join(", ")}`
    : "Everyone has been judged. The first scene is being written…");
}

function renderScene(table, actions, isPlayer) {
  const scenario = table.scenario;
  setText("turn-label", `Turn ${scenario.turn_number}`);
  setText("scene-title", scenario.title ?? scenario.theme ?? "");
  setText("scene-text", scenario.public_scene);
  show("whisper", isPlayer);
  setText("whisper-text", table.whisper?.text ?? "The voices have not spoken to you yet…");

  const chosen = table.myChoice;
  const key = `${scenario.scenario_id}:${scenario.turn_number}:${chosen ? "chosen" : "open"}:${isPlayer}`;
  if (drawn.options !== key) {
    drawn.options = key;
    replace("options", scenario.options.map((option) =>
      h("button", { type: "button", class: "option", dataset: { optionId: option.id },
        onclick: () => actions.choose({ option_id: option.id }) }, option.text)));
    $("choice-fields").disabled = !!chosen || !isPlayer;
    if (!chosen) $("free-text").value = "";
  }
  // Spectators see the options, read-only.
  show("choice-form", !chosen);
  show("free-text", isPlayer);
  show("free-submit", isPlayer);
  $("free-text").labels?.forEach((label) => { label.hidden = !isPlayer; });
  show("watching-note", !isPlayer);
  setText("choice-legend", isPlayer ? "What do you do?" : "What will they do?");
  show("my-choice", !!chosen);
  if (chosen) {
    const what = chosen.text ?? scenario.options.find((o) => o.id === chosen.option_id)?.text;
    setText("my-choice", what ? `You chose: ${what}` : "You have made your choice.");
  }

  const { submitted, total } = table.progress;
  const progress = $("choice-progress");
  progress.max = Math.max(total, 1);
  progress.value = submitted;
  setText("progress-label", `${submitted} of ${total} have chosen`);
  const waiting = table.waitingFor.map((id) => nameOf(table, id));
  setText("still-choosing",
    waiting.length ? `Still choosing: ${waiting.join(", ")}` : "Everyone has chosen. The fates are weighing it…");
}

function renderResolution(table, actions, phase) {
  const r = table.resolution;
  const next = table.scenario && table.scenario.turn_number > r.turn_number ? table.scenario : null;
  const button = $("continue");
  show("continue", phase === "playing");
  button.disabled = !next;
  button.textContent = next ? `On to turn ${next.turn_number}` : "The next scene is being written…";
  button.onclick = actions.moveOn;
  const key = `${r.turn_number}`;
  if (drawn.resolution === key) return;
  drawn.resolution = key;
  const scene = table.scenarios.get(r.turn_number);
  setText("resolution-eyebrow", scene?.title ?? "The turn resolves");
  setText("resolution-heading", `Turn ${r.turn_number}: what came of it`);
  setText("outcome", r.outcome);
  const trust = $("trust-change");
  trust.dataset.direction = r.trust_change > 0 ? "up" : r.trust_change < 0 ? "down" : "same";
  countTo("trust-change-text", r.party_trust - r.trust_change, r.party_trust,
    (now) => `Party trust ${signed(r.trust_change)}: ${now}`);
  replace("npc-changes", r.npc_changes.map((c) => {
    const mood = c.change > 0 ? "warms to" : c.change < 0 ? "cools toward" : "is unmoved by";
    return h("li", { class: "reveal late" }, h("span", { class: "npc-name" }, c.name),
      ` ${mood} the party: approval ${c.approval} (${signed(c.change)})`);
  }));
  replace("turn-choices", r.choices.map((c) => h("li", { class: `reveal${c.hesitated ? " hesitated" : ""}` },
  h("span", { class: "chooser" }, c.player_name), " ",
  c.hesitated ? h("em", {}, "hesitated") : ["chose ", h("q", {}, choiceText(table, r.turn_number, c))],
  c.text && c.read_as ? h("span", { class: "muted" }, ` (taken as ${choiceText(table, r.turn_number, { option_id: c.read_as })})`) : null)));
}

// A number that counts from `from` to `to` over a second, unless the player asked for less motion.
function countTo(id, from, to, format) {
  const still = window.matchMedia?.("(prefers-reduced-motion: reduce)").matches;
  const start = performance.now();
  const step = (now) => {
    const t = still ? 1 : Math.min(1, (now - start) / 1000);
    setText(id, format(Math.round(from + (to - from) * t)));
    if (t < 1) requestAnimationFrame(step);
  };
  step(start);
}

function signed(n) {
  return n > 0 ? `+${n}` : n < 0 ? `−${-n}` : "±0";
}

function renderGameOver(table, actions, isPlayer) {
  const over = table.over ?? { reason: "completed", party_trust: table.trust, turns_played: table.turn };
  setText("game-over-text", (REASONS[over.reason] ?? REASONS.completed)(over));
  const rematch = $("rematch");
  show("rematch", isPlayer);
  rematch.textContent = table.rematchCode ? "Join the new game with this party" : "Play again with this party";
  rematch.onclick = actions.rematch;
  show("rematch-offer", !!table.rematchCode);
  setText("rematch-offer", table.rematchCode ? `A new game with this party is waiting: ${table.rematchCode}.` : "");
  if (table.recap && drawn.recap !== table.recap) {
    drawn.recap = table.recap;
    replace("recap-turns", table.recap.turns.map((turn) => recapTurn(table, turn)));
  }
}

function recapTurn(table, turn) {
  const r = turn.resolution;
  const trap = turn.options.find((o) => o.id === turn.trap);
  const said = (playerId) => turn.chat.filter((line) => line.player_id === playerId);
  return h("li", { class: "recap-turn" },
    h("h3", {}, `Turn ${turn.turn_number}: ${turn.title}`),
    h("p", { class: "scene-text" }, turn.public_scene),
    trap ? h("p", { class: "trap-note" }, "The trap was: ", h("q", {}, trap.text)) : null,
    h("ul", { class: "recap-whispers" }, turn.whispers.map((w) => h("li", { class: "recap-whisper" },
      h("p", {}, h("span", { class: "chooser" }, w.player_name), w.player_class ? ` (${w.player_class})` : "",
        h("span", { class: "private-badge" }, "was whispered")),
      h("p", { class: "whisper-text" }, w.text),
      said(w.player_id).length ? h("p", { class: "claimed" }, "Said at the table: ",
        said(w.player_id).map((line, i) => [i ? " · " : "", h("q", {}, line.text)])) : h("p", { class: "claimed muted" }, "Said nothing at the table.")))),
    r ? h("ul", { class: "turn-choices" }, r.choices.map((c) => h("li", {}, h("span", { class: "chooser" }, c.player_name), " ",
      c.hesitated ? h("em", {}, "hesitated") : ["chose ", h("q", {}, c.text ?? turn.options.find((o) => o.id === c.option_id)?.text ?? "")]))) : null,
    r ? h("p", { class: "outcome" }, r.outcome) : null,
    r ? h("p", { class: "muted" }, `Party trust ${signed(r.trust_change)}, to ${r.party_trust}.`) : null);
}

// -- chat ------------------------------------------------------------------------------------

export function appendChat(table, data) {
  const log = $("chat-log");
  const mine = data.player_id === table.me?.player_id;
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
  log.append(h("li", { class: mine ? "chat-line mine" : "chat-line", dataset: { seq: data.seq } },
    h("span", { class: "chat-name" }, data.player_name),
    h("span", { class: "chat-text" }, data.text)));
  if (stick || mine) log.scrollTop = log.scrollHeight;
}

export function showTyping(names) {
  const text = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…`
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing…`;
  setText("typing-indicator", text);
}
