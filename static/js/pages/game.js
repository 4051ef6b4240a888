// The game page: the table for one game, live over whichever transport this network allows.
//
// Query options (for testing, and for players on odd networks):
//   ?transport=socketio|sse|poll          use only that transport
//   ?retry_delay=ms&retry_factor=x&retry_max=ms&retry_tries=n   the reconnection schedule

import { GameClient, TRANSPORTS } from "../arcane/client.js";
import { Api } from "../arcane/http.js";
import { $, setText, show } from "./dom.js";
import { watchConnection } from "./connection.js";
import { messageFor } from "./messages.js";
import { appendChat, myMove, render, showTyping, tick } from "./game/render.js";
import { applyEvent, applyView, emptyTable, nameOf } from "./game/state.js";
import { forgetSeat, lastName, rememberName, rememberSeat, tokenFor } from "./seats.js";
import { toast } from "./toasts.js";

const TYPING_IDLE_MS = 3000;
const TYPING_SHOWN_MS = 6000;
const PHONE = window.matchMedia("(max-width: 700px)");

const code = document.body.dataset.gameCode;
const params = new URLSearchParams(window.location.search);
const api = new Api({ token: tokenFor(code) });
const table = emptyTable(code);
let client = null;
let bootSeq = 0;

// -- arriving at the table -------------------------------------------------------------------

async function boot() {
  let view;
  try {
    view = await api.view(code);
  } catch (error) {
    if (["AUTH_REQUIRED", "NOT_IN_GAME"].includes(error.code)) {
      if (api.token) {
        forgetSeat(code);
        api.token = null;
        return boot();
      }
      return offerSeat("You are not at this table yet. Take a seat:");
    }
    if (error.code === "INVALID_GAME") return lost("There is no game with this code. Check it with whoever gave it to you.");
    return lost("The server could not be reached. Reload the page to try again.");
  }
  play(view);
}

// Nothing to connect to: say so, with a way home, and no "Connecting…" on the status dot.
function lost(message) {
  const loading = $("loading");
  loading.replaceChildren(message, document.createElement("br"));
  const home = document.createElement("a");
  home.href = "/";
  home.className = "button primary";
  home.textContent = "Back to the start";
  loading.append(home);
  show("connection", false);
  $("main").setAttribute("aria-busy", "false");
}

function offerSeat(reason) {
  show("loading", false);
  show("join");
  show("connection", false);
  const watching = params.has("watch");
  setText("join-reason", watching ? "Watch this game as a spectator, or take a seat if there is one:" : reason);
  if (watching) $("watch").classList.add("primary");
  $("main").setAttribute("aria-busy", "false");
  const input = $("join-name");
  input.value ||= lastName();
  input.focus();
  const take = (seatFor) => async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    setText("join-error", "");
    if (!name) {
      setText("join-error", "Tell us your name first.");
      return;
    }
    try {
      const seat = await seatFor(name);
      rememberSeat(seat);
      rememberName(seat.player_name);
      api.token = seat.player_token;
      show("join", false);
      boot();
    } catch (error) {
      if (error.code === "INVALID_GAME") {
        show("join", false);
        show("loading");
        return lost("There is no game with this code. Check it with whoever gave it to you.");
      }
      setText("join-error", error.code === "GAME_STARTED" || error.code === "GAME_FULL"
        ? `${messageFor(error)} You can still watch.` : messageFor(error));
    }
  };
  $("join-form").addEventListener("submit", take((name) => api.joinGame(code, name)));
  $("watch").addEventListener("click", take((name) => api.watchGame(code, name)));
}

function play(view) {
  applyView(table, view);
  bootSeq = view.seq;
  show("loading", false);
  show("board");
  show("connection");
  $("main").setAttribute("aria-busy", "false");
  client = new GameClient({
    gameCode: code, token: api.token, transport: transportParam(), backoff: backoffParams(),
  });
  window.arcane = { client, table }; // for the console: arcane.client.log, arcane.client.seq
  watchConnection(client);
  listen(client);
  wireControls();
  draw();
  if (table.phase === "finished") fetchRecap();
  setInterval(() => tick(table), 1000);
  // From 0: the chat and the last resolution are rebuilt from the log; the view holds the rest.
  client.connect({ after: 0 }).catch(() => {});
}

function transportParam() {
  const wanted = params.get("transport");
  return TRANSPORTS.includes(wanted) ? wanted : null;
}

function backoffParams() {
  const number = (name) => {
    const value = Number.parseFloat(params.get(name) ?? "");
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  };
  return {
    initialDelay: number("retry_delay"), factor: number("retry_factor"),
    maxDelay: number("retry_max"), maxTries: number("retry_tries"),
  };
}

// -- what happens at the table ---------------------------------------------------------------

function listen(client) {
  client.on("*", (name, data, meta) => {
    const live = meta.seq === null || meta.seq > bootSeq;
    const wasMyMove = myMove(table);
    if (name === "reconnect_sync") {
      applyView(table, data);
      bootSeq = data.seq;
    } else {
      applyEvent(table, name, data, { live });
    }
    if (name === "chat_message") {
      appendChat(table, data);
      if (live) unread(data);
    }
    if (live) announce(name, data);
    draw();
    if (live && name === "turn_resolution") $("resolution").scrollIntoView({ block: "start" });
    if (!wasMyMove && myMove(table) && live) cue();
  });
  client.on("state", (info) => {
    if (info.state === "reconnecting" || info.state === "failed") {
      // Cut off, the page cannot know who is here; it knows it is not.
      const me = table.players.get(table.me?.player_id);
      if (me?.online) {
        me.online = false;
        draw();
      }
    }
    if (info.state !== "connected") return;
    // Ephemeral presence events are not replayed: ask who is here after every (re)connect.
    client.requestPresence().catch(() => {});
    if (table.phase === "interrogation" && !table.question && !table.me.player_class) fetchQuestion();
  });
}

function announce(name, data) {
  const me = table.me?.player_id;
  const other = data?.player_id && data.player_id !== me;
  switch (name) {
    case "player_joined":
      if (other) toast(`${data.player_name} joined the table.`);
      break;
    case "player_left":
      if (other) toast(`${data.player_name} left the table.`);
      break;
    case "host_changed":
      toast(data.host_id === me ? "You are the host now." : `${nameOf(table, data.host_id)} is the host now.`);
      break;
    case "player_skipped":
      toast(`The party moves on without ${data.player_name} this turn.`);
      break;
    case "turn_timed_out":
      toast("Time is up: the turn resolves without those still choosing.", { kind: "warn" });
      break;
    case "rematch":
      if (data.host_id !== me) toast(`${nameOf(table, data.host_id)} started a new game with this party.`, { kind: "ok" });
      break;
    case "game_over":
      fetchRecap();
      break;
    case "player_connected":
      // A first arrival was already announced as a join; only a return is news.
      if (other && data.reconnected) toast(`${data.player_name} reconnected.`, { kind: "ok" });
      break;
    case "player_disconnected":
      if (other) toast(`${data.player_name} disconnected.`, { kind: "warn" });
      break;
    case "game_started":
      fetchQuestion();
      break;
    case "player_typing":
      typingFrom(data);
      break;
    case "chat_message":
      if (other) typingFrom({ ...data, is_typing: false });
      break;
    case "error":
      toast(data.message ?? "Something went wrong.", { kind: "error" });
      break;
    default:
  }
}

async function fetchQuestion() {
  if (table.me?.role !== "player") return;
  try {
    table.question = (await api.question(code)).question;
    draw();
  } catch (error) {
    toast(messageFor(error), { kind: "error" });
  }
}

async function fetchRecap() {
  try {
    table.recap = await api.recap(code);
    draw();
  } catch {
    // The recap is a bonus at the end; the table works without it.
  }
}

function draw() {
  render(table, actions);
}

// "Your move": the tab's title says it (render.js); a soft tone too, when the player asked.
function cue() {
  if (!$("sound").checked) return;
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 660;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.5);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.5);
  } catch {
    // No audio here: the title still says it.
  }
}

// -- the phone's sheet: party and chat behind two tabs ------------------------------------------

let unreadCount = 0;

function openSheet(which) {
  const open = document.body.dataset.sheet === which ? "" : which;
  document.body.dataset.sheet = open;
  $("tab-party").setAttribute("aria-expanded", String(open === "party"));
  $("tab-chat").setAttribute("aria-expanded", String(open === "chat"));
  if (open === "chat") {
    unreadCount = 0;
    show("unread", false);
    const log = $("chat-log");
    log.scrollTop = log.scrollHeight;
  }
}

function unread(data) {
  if (!PHONE.matches || document.body.dataset.sheet === "chat" || data.player_id === table.me?.player_id) return;
  unreadCount += 1;
  setText("unread", String(unreadCount));
  show("unread");
}

// -- the player's own actions ----------------------------------------------------------------

const actions = {
  async start() {
    $("start-game").disabled = true;
    try {
      await api.start(code);
    } catch (error) {
      toast(messageFor(error), { kind: "error" });
    } finally {
      $("start-game").disabled = false;
    }
  },

  async answer(question, answer) {
    for (const button of $("answers").querySelectorAll("button")) button.disabled = true;
    try {
      const result = await api.answer(code, answer.id, question.id);
      table.question = result.question;
      if (result.player_class) table.me.player_class = result.player_class;
    } catch (error) {
      toast(messageFor(error), { kind: "error" });
      if (error.code === "VALIDATION_ERROR" || error.code === "WRONG_PHASE") await fetchQuestion();
    }
    for (const button of $("answers").querySelectorAll("button")) button.disabled = false;
    draw();
  },

  toFirstScene() {
    table.revealing = false;
    draw();
    $("scene").scrollIntoView({ block: "start" });
  },

  moveOn() {
    table.interlude = null;
    draw();
    $("scene").scrollIntoView({ block: "start" });
  },

  async voteSkip(playerId) {
    try {
      const result = await api.voteSkip(code, playerId);
      if (!result.skipped) toast(`Your vote is counted: ${result.votes} of ${result.needed}.`);
    } catch (error) {
      toast(messageFor(error), { kind: "error" });
    }
  },

  async rematch() {
    $("rematch").disabled = true;
    try {
      const seat = await api.rematch(code);
      rememberSeat(seat);
      window.location.assign(`/game/${encodeURIComponent(seat.game_code)}`);
    } catch (error) {
      toast(messageFor(error), { kind: "error" });
      $("rematch").disabled = false;
    }
  },

  async leave() {
    const playing = table.me?.role === "player" && table.phase !== "lobby" && table.phase !== "finished";
    if (playing && !window.confirm("Leave the table? The party will go on without you, and you cannot come back.")) return;
    try {
      await api.leave(code);
    } catch (error) {
      if (error.code !== "NOT_IN_GAME") {
        toast(messageFor(error), { kind: "error" });
        return;
      }
    }
    client?.close();
    forgetSeat(code);
    window.location.assign("/");
  },

  async choose(pick) {
    const turn = table.turn;
    $("choice-fields").disabled = true;
    setText("choice-error", "");
    try {
      await client.makeChoice(pick);
      // The last choice resolves the turn: the next scene may be here before the answer.
      if (table.turn === turn) table.myChoice = { option_id: pick.option_id ?? null, text: pick.text ?? null };
    } catch (error) {
      if (error.code === "ALREADY_CHOSE" && table.turn === turn) table.myChoice ??= { option_id: null, text: null };
      else if (table.turn === turn) setText("choice-error", messageFor(error));
      $("choice-fields").disabled = !!table.myChoice;
    }
    draw();
  },
};

function wireControls() {
  $("leave").addEventListener("click", actions.leave);
  $("tab-party").addEventListener("click", () => openSheet("party"));
  $("tab-chat").addEventListener("click", () => openSheet("chat"));
  const sound = $("sound");
  sound.checked = window.localStorage?.getItem("arcane.sound") === "on";
  sound.addEventListener("change", () => window.localStorage?.setItem("arcane.sound", sound.checked ? "on" : "off"));

  $("copy-link").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("share-link").value);
      toast("Link copied.", { kind: "ok" });
    } catch {
      $("share-link").select();
    }
  });

  $("choice-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("free-text").value.trim();
    if (!text) {
      setText("choice-error", "Describe what you do, or pick one of the paths above.");
      return;
    }
    actions.choose({ text });
  });

  const input = $("chat-input");
  let typingSince = 0;
  let idle = null;
  const stopTyping = () => {
    clearTimeout(idle);
    if (typingSince) client.typing(false).catch(() => {});
    typingSince = 0;
  };
  input.addEventListener("input", () => {
    if (!input.value) return stopTyping();
    if (Date.now() - typingSince > TYPING_IDLE_MS) {
      typingSince = Date.now();
      client.typing(true).catch(() => {});
    }
    clearTimeout(idle);
    idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  });
  $("chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    $("chat-send").disabled = true;
    try {
      await client.chat(text);
      input.value = "";
      stopTyping();
    } catch (error) {
      toast(messageFor(error), { kind: "error" });
    } finally {
      $("chat-send").disabled = false;
      input.focus();
    }
  });
}

// -- who is typing ---------------------------------------------------------------------------

const typists = new Map();

function typingFrom(data) {
  clearTimeout(typists.get(data.player_id));
  if (data.is_typing) {
    typists.set(data.player_id, setTimeout(() => typingFrom({ ...data, is_typing: false }), TYPING_SHOWN_MS));
  } else {
    typists.delete(data.player_id);
  }
  showTyping([...typists.keys()].map((id) => nameOf(table, id)));
}

boot();
