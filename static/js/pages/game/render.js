// Drawing the table. Player text only ever reaches the page as text nodes (dom.js).

import { $, h, replace, setText, show } from "../dom.js";
import { choiceText, nameOf, onlineCount } from "./state.js";

const REASONS = {
  completed: (over) =>
    `The party saw the tale through: ${over.turns_played} turns, ending with trust at ${over.party_trust}.`,
  trust_broken: (over) => `Trust is broken. The party scatters after ${over.turns_played} turns.`,
  abandoned: () => "Everyone left the table. The tale ends unfinished.",
};

// Keys of what was last drawn where rebuilding would steal focus from a control.
const drawn = { options: null, answers: null };

export function render(table, actions) {
  const phase = table.phase;
  const isPlayer = table.me?.role === "player";
  show("lobby", phase === "lobby");
  show("interrogation", phase === "interrogation");
  show("scene", phase === "playing" && !!table.scenario);
  show("resolution", (phase === "playing" || phase === "finished") && !!table.resolution);
  show("game-over", phase === "finished");
  show("chat-form", isPlayer);
  renderParty(table);
  renderStanding(table);
  if (phase === "lobby") renderLobby(table, actions);
  if (phase === "interrogation") renderInterrogation(table, actions);
  if (phase === "playing" && table.scenario) renderScene(table, actions, isPlayer);
  if (table.resolution) renderResolution(table);
  if (phase === "finished") renderGameOver(table);
  if (phase === "playing" && !table.scenario) setText("loading", "The next scene is being written…");
  show("loading", phase === "playing" && !table.scenario);
}

function renderParty(table) {
  const me = table.me?.player_id;
  const choosing = table.phase === "playing" ? new Set(table.waitingFor) : new Set();
  const items = [...table.players.values()].map((p) => {
    const status = p.online ? "online" : "offline";
    return h("li", { class: `player ${status}`, dataset: { playerId: p.player_id, online: String(p.online) } },
      h("span", { class: `presence-dot ${status}`, role: "img", "aria-label": status }),
      h("span", { class: "player-name" }, p.player_name),
      p.player_id === me ? h("span", { class: "badge you" }, "you") : null,
      p.is_host ? h("span", { class: "badge host" }, "host") : null,
      p.player_class ? h("span", { class: "player-class" }, p.player_class) : null,
      choosing.has(p.player_id) ? h("span", { class: "badge choosing" }, "choosing…") : null,
    );
  });
  replace("players", items);
  setText("online-count", `${onlineCount(table)}/${table.players.size} online`);
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
  const host = !!table.me?.is_host;
  show("start-game", host);
  show("lobby-wait", !host);
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
  setText("interrogation-wait", waiting.length ? `Still before the gods: ${waiting.join(", ")}` : "");
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
  show("choice-form", isPlayer && !chosen);
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

function renderResolution(table) {
  const r = table.resolution;
  setText("resolution-heading", `Turn ${r.turn_number}: what came of it`);
  setText("outcome", r.outcome);
  const trust = $("trust-change");
  trust.dataset.direction = r.trust_change > 0 ? "up" : r.trust_change < 0 ? "down" : "same";
  trust.textContent = `Party trust ${signed(r.trust_change)}, now ${r.party_trust}.`;
  replace("npc-changes", r.npc_changes.map((c) => {
    const mood = c.change > 0 ? "warms to" : c.change < 0 ? "cools toward" : "is unmoved by";
    return h("li", {}, h("span", { class: "npc-name" }, c.name),
      ` ${mood} the party: approval ${c.approval} (${signed(c.change)})`);
  }));
  replace("turn-choices", r.choices.map((c) => h("li", {},
    h("span", { class: "chooser" }, c.player_name), ": ", choiceText(table, r.turn_number, c))));
}

function signed(n) {
  return n > 0 ? `+${n}` : n < 0 ? `−${-n}` : "±0";
}

function renderGameOver(table) {
  const over = table.over ?? { reason: "completed", party_trust: table.trust, turns_played: table.turn };
  setText("game-over-text", (REASONS[over.reason] ?? REASONS.completed)(over));
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
