// A finished game, turn by turn: scene, the whispers revealed, what was said at the table,
// what each chose, and the outcome. Read from GET /api/games/<code>/recap (its players and
// spectators; anyone, once a player made it public).

import { Api } from "../arcane/http.js";
import { $, h, replace, setText, show } from "./dom.js";
import { messageFor } from "./messages.js";
import { tokenFor } from "./seats.js";

const code = document.body.dataset.gameCode;
const api = new Api({ token: tokenFor(code) });
const REASONS = {
  completed: "The party saw the tale through.",
  trust_broken: "Trust broke, and the party scattered.",
  abandoned: "Everyone left the table.",
  ended: "An operator ended the game.",
};
let recap = null;
let step = 0;

function signed(n) {
  return n > 0 ? `+${n}` : n < 0 ? `−${-n}` : "±0";
}

function draw() {
  const turn = recap.turns[step];
  setText("replay-step", `Turn ${turn.turn_number} of ${recap.turns.length}`);
  setText("replay-heading", turn.title);
  setText("replay-scene", turn.public_scene);
  replace("replay-whispers", turn.whispers.map((w) => h("li", { class: "recap-whisper" },
    h("p", {}, h("span", { class: "chooser" }, w.player_name), w.player_class ? ` (${w.player_class})` : ""),
    h("p", { class: "whisper-text" }, w.text))));
  const trap = turn.options.find((o) => o.id === turn.trap);
  setText("replay-trap", trap ? `The trap was: ${trap.text}` : "");
  replace("replay-chat", turn.chat.length ? turn.chat.map((line) => h("li", { class: "chat-line" },
    h("span", { class: "chat-name" }, line.player_name), h("span", { class: "chat-text" }, line.text)))
    : [h("li", { class: "chat-line muted" }, "Nobody said a word.")]);
  const r = turn.resolution;
  const optionText = (id) => turn.options.find((o) => o.id === id)?.text ?? "";
  replace("replay-choices", r ? r.choices.map((c) => h("li", {}, h("span", { class: "chooser" }, c.player_name), " ",
    c.hesitated ? h("em", {}, "hesitated") : ["chose ", h("q", {}, c.text ?? optionText(c.option_id))])) : []);
  setText("replay-outcome", r?.outcome ?? "This turn was never resolved.");
  setText("replay-trust", r ? `Party trust ${signed(r.trust_change)}, to ${r.party_trust}.` : "");
  $("replay-prev").disabled = step === 0;
  $("replay-next").disabled = step === recap.turns.length - 1;
  const last = step === recap.turns.length - 1;
  show("replay-end", last);
  setText("replay-end-text", `${REASONS[recap.finished_reason] ?? ""} Final trust: ${recap.party_trust}.`);
}

async function boot() {
  try {
    recap = await api.recap(code);
  } catch (error) {
    setText("loading", error.code === "WRONG_PHASE" ? "This game is still being played: its replay opens when it ends."
      : error.code === "AUTH_REQUIRED" || error.code === "NOT_IN_GAME"
        ? "This replay is for the game's players and spectators, unless they share it."
        : messageFor(error));
    $("main").setAttribute("aria-busy", "false");
    return;
  }
  show("loading", false);
  $("main").setAttribute("aria-busy", "false");
  if (!recap.turns.length) {
    show("replay-end");
    setText("replay-end-text", "The tale ended before its first scene.");
    return;
  }
  show("replay");
  $("replay-prev").addEventListener("click", () => { step = Math.max(0, step - 1); draw(); });
  $("replay-next").addEventListener("click", () => { step = Math.min(recap.turns.length - 1, step + 1); draw(); });
  // A player of the game may show it to anyone with the link.
  const share = $("replay-share");
  share.hidden = !api.token || recap.public;
  share.addEventListener("click", async () => {
    try {
      await api.shareReplay(code, true);
      share.textContent = "Shared: anyone with this page's link can watch it.";
      share.disabled = true;
    } catch (error) {
      share.textContent = messageFor(error);
    }
  });
  draw();
}

boot();
