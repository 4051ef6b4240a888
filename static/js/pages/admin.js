// The operator's dashboard: this process and the others (with Redis), traffic, errors, the
// live games; one game's table and whole log, with the operator's two acts (end the game,
// remove a player). Every call carries the admin cookie the sign-in form set.

import { $, h, replace, setText, show } from "./dom.js";
import { toast } from "./toasts.js";

const REFRESH_MS = 2000;
let openGame = null;
let timer = null;

async function call(method, path, body) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data?.error?.message ?? `HTTP ${response.status}`);
    error.code = data?.error?.code ?? String(response.status);
    throw error;
  }
  return data;
}

const megabytes = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
const duration = (s) => (s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

function pairs(id, entries) {
  replace(id, entries.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))]));
}

function draw(data) {
  const here = data.process;
  pairs("here", [["process", here.process], ["up", duration(here.uptime_seconds)], ["memory", megabytes(here.rss_bytes)],
    ["CPU time", `${here.cpu_seconds} s`], ["players online here", here.players_online]]);
  pairs("traffic", [["sockets", data.connections.socketio], ["SSE streams", data.connections.sse],
    ["long-polls waiting", data.connections.longpoll], ["events per second", data.events_per_second],
    ["processes", data.processes.length]]);
  const errors = Object.entries(data.errors).sort((a, b) => b[1] - a[1]);
  pairs("errors", errors.length ? errors : [["none", "0"]]);
  replace("processes-body", data.processes.map((p) => h("tr", {},
    h("td", {}, p.process), h("td", {}, duration(p.uptime_seconds)), h("td", {}, megabytes(p.rss_bytes)),
    h("td", {}, String(p.cpu_seconds)), h("td", {}, String(p.connections.socketio)),
    h("td", {}, String(p.connections.sse)), h("td", {}, String(p.connections.longpoll)),
    h("td", {}, String(p.events_per_second)))));
  show("no-games", data.games.length === 0);
  replace("games-body", data.games.map((g) => h("tr", { dataset: { code: g.code } },
    h("td", {}, h("strong", {}, g.code)), h("td", {}, g.phase), h("td", {}, String(g.turn_number)),
    h("td", {}, `${g.players}${g.spectators ? ` + ${g.spectators} watching` : ""}`), h("td", {}, String(g.online)),
    h("td", {}, `${g.transports.socketio} / ${g.transports.sse} / ${g.transports.longpoll}`),
    h("td", {}, h("button", { type: "button", class: "quiet", onclick: () => look(g.code) }, "Open")))));
}

async function refresh() {
  try {
    draw(await call("GET", "/api/admin/overview"));
    if (openGame) await look(openGame, { quiet: true });
  } catch (error) {
    if (error.code === "AUTH_REQUIRED") return signIn();
    toast(`The server did not answer: ${error.message}`, { kind: "error" });
  }
}

async function look(code, { quiet = false } = {}) {
  let game;
  try {
    game = await call("GET", `/api/admin/games/${encodeURIComponent(code)}`);
  } catch (error) {
    if (!quiet) toast(error.message, { kind: "error" });
    return;
  }
  openGame = code;
  show("game");
  setText("game-heading", `Game ${game.code}`);
  setText("game-summary", `${game.phase}, turn ${game.turn_number}, trust ${game.party_trust}`
    + (game.finished_reason ? `, ended: ${game.finished_reason}` : "") + `, ${game.last_seq} events`);
  replace("members", game.members.map((m) => h("li", { class: `player ${m.online ? "online" : "offline"}` },
    h("span", { class: `presence-dot ${m.online ? "online" : "offline"}`, role: "img", "aria-label": m.online ? "online" : "offline" }),
    h("span", { class: "player-name", title: m.name }, m.name),
    h("span", { class: "badge" }, m.role === "player" ? (m.player_class ?? "player") : "spectator"),
    m.is_host ? h("span", { class: "badge host" }, "host") : null,
    h("button", { type: "button", class: "quiet skip", dataset: { remove: m.player_id },
      onclick: (event) => remove(game.code, m, event.currentTarget) }, "Remove"))));
  $("end-game").disabled = game.phase === "finished";
  replace("game-log", game.log.map((e) => h("li", { class: e.private ? "private" : "" },
    h("span", { class: "seq" }, String(e.seq)), h("span", { class: "name" }, e.event),
    e.private ? h("span", { class: "private-badge" }, `private · ${e.audience}`) : null, " ",
    JSON.stringify(e.data))));
  if (!quiet) $("game").scrollIntoView({ block: "start" });
}

// Two clicks, not a dialog: the first asks, the second acts.
function armed(button, ask) {
  if (button.dataset.armed === "yes") return true;
  button.dataset.armed = "yes";
  button.dataset.label = button.textContent;
  button.textContent = ask;
  setTimeout(() => { button.dataset.armed = ""; button.textContent = button.dataset.label; }, 4000);
  return false;
}

async function remove(code, member, button) {
  if (!armed(button, `Really remove ${member.name}?`)) return;
  try {
    await call("POST", `/api/admin/games/${encodeURIComponent(code)}/players/${encodeURIComponent(member.player_id)}/remove`);
    toast(`${member.name} was removed from ${code}.`, { kind: "ok" });
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
  await look(code, { quiet: true });
}

function signIn() {
  clearInterval(timer);
  show("loading", false);
  show("dashboard", false);
  show("sign-out", false);
  show("sign-in");
  $("main").setAttribute("aria-busy", "false");
  $("admin-token").focus();
}

async function start() {
  show("sign-in", false);
  show("loading", false);
  show("dashboard");
  show("sign-out");
  $("main").setAttribute("aria-busy", "false");
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setText("sign-in-error", "");
  try {
    await call("POST", "/admin/session", { token: $("admin-token").value });
    $("admin-token").value = "";
    await start();
  } catch (error) {
    setText("sign-in-error", error.code === "RATE_LIMITED" ? "Too many tries: wait a minute." : "That is not the admin token.");
  }
});

$("sign-out").addEventListener("click", async () => {
  await call("POST", "/admin/session/end").catch(() => {});
  signIn();
});

$("end-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("end-game");
  if (!openGame || !armed(button, "Really end it?")) return;
  try {
    await call("POST", `/api/admin/games/${encodeURIComponent(openGame)}/end`, { reason: $("end-reason").value.trim() || undefined });
    toast(`Game ${openGame} was ended.`, { kind: "ok" });
  } catch (error) {
    toast(error.message, { kind: "error" });
  }
  await look(openGame, { quiet: true });
});

call("GET", "/api/admin/overview").then(() => start(), (error) => (error.code === "AUTH_REQUIRED" ? signIn()
  : setText("loading", `The dashboard could not be read: ${error.message}`)));
