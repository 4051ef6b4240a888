// The load generator of `make bench`: one Node process drives every client of a run.
//
//   node bench/load/load.mjs <scenario> '<json options>'
//
// Scenarios: fanout, gamenight, hold, storm, polls. Each prints JSON lines on stdout: progress
// lines {"phase": ...} and one final {"result": {...}}. `hold` waits for a line on stdin
// between phases so the orchestrator can read the server's memory.
// Targets: "arcane" (this server's protocol) or "peer" (join / msg, bench/peers/).

import { createRequire } from "node:module";
import http from "node:http";
import readline from "node:readline";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

const require = createRequire(new URL("../.load/package.json", import.meta.url));
const { io } = require("socket.io-client");

// A pooled connection idle for 4 s is closed here, before hypercorn's 5 s keep-alive timeout
// closes it: else a request sent on it just as the server closes it meets a "socket hang up"
// (the keep-alive race of HTTP/1.1, which Node does not retry for a POST).
const setupAgent = new http.Agent({ keepAlive: true, maxSockets: 32, timeout: 4000 });
const streamAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
// The HTTP actions (chat, typing) of SSE and long-poll players: keep-alive connections of their
// own, as a browser opens beside its stream or its waiting poll.
const actionAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, timeout: 4000 });  // as setupAgent
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();

// -- HTTP ---------------------------------------------------------------------------------

function request(base, path, { method = "GET", body, token, agent = setupAgent, timeout = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { Accept: "application/json" };
    if (data) Object.assign(headers, { "Content-Type": "application/json", "Content-Length": data.length });
    if (token) headers.Authorization = `Bearer ${token}`;
    const req = http.request(new URL(path, base), { method, headers, agent, timeout }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, json, text });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout ${method} ${path}`)));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

async function inParallel(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// Seats: one object per player {room, token, playerId, index}; rooms of `perRoom`.
async function seat(target, base, rooms, perRoom) {
  if (target !== "arcane") {
    return Array.from({ length: rooms * perRoom }, (_, i) => ({ room: `r${Math.floor(i / perRoom)}`, index: i % perRoom }));
  }
  const games = await inParallel(Array.from({ length: rooms }, (_, i) => i), 16, async (g) => {
    const host = await request(base, "/api/games", { method: "POST", body: { player_name: `Host ${g}`, max_players: perRoom } });
    if (host.status !== 201) throw new Error(`create game: ${host.status} ${host.text}`);
    const seats = [host.json];
    for (let p = 1; p < perRoom; p++) {
      const joined = await request(base, `/api/games/${host.json.game_code}/players`, { method: "POST", body: { player_name: `P${p} of ${g}` } });
      if (joined.status !== 201) throw new Error(`join game: ${joined.status} ${joined.text}`);
      seats.push(joined.json);
    }
    return seats.map((s, index) => ({ room: s.game_code, token: s.player_token, playerId: s.player_id, index }));
  });
  return games.flat();
}

// -- Socket.IO ----------------------------------------------------------------------------

function connect(base, seatInfo) {
  return new Promise((resolve, reject) => {
    const socket = io(base, {
      transports: ["websocket"], forceNew: true, reconnection: false, timeout: 60_000,
      auth: seatInfo.token ? { token: seatInfo.token } : undefined,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => { socket.close(); reject(err); });
  });
}

async function join(target, socket, seatInfo, lastSeq) {
  const ack = target === "arcane"
    ? await socket.timeout(60_000).emitWithAck("join_game_room", lastSeq === undefined
      ? { game_code: seatInfo.room } : { game_code: seatInfo.room, last_seq: lastSeq })
    : await socket.timeout(60_000).emitWithAck("join", { room: seatInfo.room });
  if (!ack || ack.ok !== true) throw new Error(`join refused: ${JSON.stringify(ack)}`);
  return ack;
}

async function connectAll(target, base, seats, limit = 200) {
  return inParallel(seats, limit, async (s) => {
    const socket = await connect(base, s);
    await join(target, socket, s);
    return socket;
  });
}

// -- SSE and long-poll clients (arcane only) ------------------------------------------------

function openSse(base, seatInfo, onEvent) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(`/api/games/${seatInfo.room}/events`, base), {
      agent: streamAgent, headers: { Accept: "text/event-stream", Authorization: `Bearer ${seatInfo.token}` },
    }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`SSE status ${res.statusCode}`)); res.resume(); return; }
      res.setEncoding("utf8");
      let buffer = "";
      let name = "message";
      let data = "";
      res.on("data", (chunk) => {
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, at).replace(/\r$/, "");
          buffer = buffer.slice(at + 1);
          if (line === "") {
            if (data) onEvent(name, data);
            name = "message"; data = "";
          } else if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).trimStart();
        }
      });
      res.on("error", () => {});
      resolve(req);
    });
    req.on("error", reject);
    req.end();
  });
}

function startPoller(base, seatInfo, onEvent, state) {
  let after;
  const clientId = `bench${seatInfo.index}`;
  (async () => {
    while (!state.stopped) {
      const query = `timeout=25&client_id=${clientId}${after === undefined ? "" : `&after=${after}`}`;
      try {
        const answer = await request(base, `/api/games/${seatInfo.room}/poll?${query}`,
          { token: seatInfo.token, agent: streamAgent, timeout: 40_000 });
        if (answer.status !== 200) { await sleep(100); continue; }
        for (const item of answer.json.events) onEvent(item.event, item.data);
        after = answer.json.last_seq;
      } catch {
        if (!state.stopped) await sleep(100);
      }
    }
  })();
}

// -- statistics ----------------------------------------------------------------------------

class Samples {
  constructor() { this.values = []; }
  add(ms) { this.values.push(ms); }
  summary() {
    const sorted = Float64Array.from(this.values).sort();
    const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);
    const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
    return { count: sorted.length, p50_ms: round(at(0.5)), p99_ms: round(at(0.99)), max_ms: round(sorted.length ? sorted[sorted.length - 1] : null) };
  }
}

// Warm up, then measure for `o.duration` seconds: `window.measuring` holds only in between.
// How late this load generator's own event loop ran during the window: a latency measured here
// includes it, so a report can tell the generator's lag from the server's.
const loopDelay = monitorEventLoopDelay({ resolution: 5 });

// The window's edges are announced on stdout ({"window": "open"}, then "closed" with this
// generator's CPU seconds inside it), so that a harness can read every other process's CPU
// time over exactly the same window (bench/hosts.py).
async function measureWindow(o, window) {
  await sleep(o.warmup * 1000);
  out({ window: "open" });
  const cpu = process.cpuUsage();
  window.measuring = true;
  loopDelay.reset();
  loopDelay.enable();
  const started = now();
  await sleep(o.duration * 1000);
  window.measuring = false;
  loopDelay.disable();
  const used = process.cpuUsage(cpu);
  out({ window: "closed", cpu_s: (used.user + used.system) / 1e6 });
  return (now() - started) / 1000;
}

function generatorLag() {
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  return { p50_ms: ms(loopDelay.percentile(50)), p99_ms: ms(loopDelay.percentile(99)), max_ms: ms(loopDelay.max) };
}

// -- 1. fan-out saturation ------------------------------------------------------------------

async function fanout(o) {
  const perRoom = o.clients / o.rooms;
  const seats = await seat(o.target, o.url, o.rooms, perRoom);
  out({ phase: "seated", seats: seats.length });
  const sockets = await connectAll(o.target, o.url, seats);
  out({ phase: "connected", sockets: sockets.length });
  await sleep(1500); // presence announcements of the joins settle

  const rooms = new Map();
  seats.forEach((s, i) => {
    if (!rooms.has(s.room)) rooms.set(s.room, { name: s.room, members: [], seats: [], turn: 0, t0: 0, got: 0 });
    rooms.get(s.room).members.push(sockets[i]);
    rooms.get(s.room).seats.push(s);
  });
  const latency = new Samples();
  const window = { measuring: false };
  let running = true;
  let deliveries = 0;
  let errors = 0;
  let stalls = 0;
  let posts = 0; // http_chat: chat lines acknowledged (201) over HTTP within the window

  const receipt = (room) => {
    const ms = now() - room.t0;
    if (window.measuring) { deliveries++; latency.add(ms); }
    if (++room.got === perRoom) send(room);
  };
  const refused = (room, ack) => {
    if (ack && ack.error) { errors++; setTimeout(() => send(room), 10); return true; }
    return false;
  };
  function send(room) {
    if (!running) return;
    const sender = room.members[room.turn % perRoom];
    room.turn++;
    room.got = 0;
    room.t0 = now();
    if (o.target !== "arcane") sender.emit("msg", { room: room.name, n: room.turn });
    else if (o.event === "typing") {
      sender.emit("typing", { is_typing: room.turn % 2 === 0 }, (ack) => { if (!refused(room, ack)) receipt(room); });
    } else if (o.event === "http_chat") {
      // The same chat line, posted over HTTP by the sender (its socket still receives it).
      const seatInfo = room.seats[(room.turn - 1) % perRoom];
      request(o.url, `/api/games/${room.name}/chat`, { method: "POST", body: { text: `line ${room.turn}` },
        token: seatInfo.token, agent: actionAgent }).then((answer) => {
        if (answer.status !== 201) { errors++; setTimeout(() => send(room), 10); } else if (window.measuring) posts++;
      }, () => { errors++; setTimeout(() => send(room), 10); });
    } else sender.emit("chat_message", { text: `line ${room.turn}` }, (ack) => refused(room, ack));
  }
  const eventName = o.target !== "arcane" ? "msg" : o.event === "typing" ? "player_typing" : "chat_message";
  for (const room of rooms.values()) {
    for (const socket of room.members) socket.on(eventName, () => receipt(room));
  }
  const watchdog = setInterval(() => {
    for (const room of rooms.values()) {
      if (running && now() - room.t0 > 5000) { stalls++; send(room); }
    }
  }, 1000);
  for (const room of rooms.values()) send(room);
  const elapsed = await measureWindow(o, window);
  running = false;
  clearInterval(watchdog);
  for (const s of sockets) s.close();
  out({ result: { scenario: "fanout", event: o.event || "msg", clients: sockets.length, rooms: rooms.size,
    seconds: elapsed, deliveries, deliveries_per_s: Math.round(deliveries / elapsed), errors, stalls, ...latency.summary(),
    ...(o.event === "http_chat" ? { posts, posts_per_s: Math.round(posts / elapsed) } : {}) } });
}

// -- 2. game night ----------------------------------------------------------------------------

async function gamenight(o) {
  const seats = await seat("arcane", o.url, o.games, 4);
  out({ phase: "seated", seats: seats.length });
  const transportOf = (s) => (s.index < 2 ? "websocket" : s.index === 2 ? "sse" : "longpoll");
  const lat = { websocket: { chat: new Samples(), typing: new Samples() }, sse: { chat: new Samples(), typing: new Samples() }, longpoll: { chat: new Samples(), typing: new Samples() } };
  const received = { websocket: 0, sse: 0, longpoll: 0 };
  const typingAt = new Map();
  const window = { measuring: false };
  const chatsSent = { count: 0 };

  const onEvent = (transport, room) => (name, raw) => {
    if (!window.measuring) return;
    if (name !== "chat_message" && name !== "player_typing") return;
    const data = typeof raw === "string" ? JSON.parse(raw) : raw;
    const t = now();
    if (name === "chat_message") {
      const sent = Number(String(data.text).slice(2));
      if (!Number.isFinite(sent)) return;
      lat[transport].chat.add(t - sent);
      received[transport]++;
    } else if (typingAt.has(room)) lat[transport].typing.add(t - typingAt.get(room));
  };
  const state = { stopped: false };
  const sockets = [];
  const streams = [];
  await inParallel(seats, 100, async (s) => {
    const transport = transportOf(s);
    if (transport === "websocket") {
      const socket = await connect(o.url, s);
      socket.onAny((name, data) => onEvent("websocket", s.room)(name, data));
      await join("arcane", socket, s);
      sockets.push({ socket, seat: s });
    } else if (transport === "sse") streams.push(await openSse(o.url, s, onEvent("sse", s.room)));
    else startPoller(o.url, s, onEvent("longpoll", s.room), state);
  });
  out({ phase: "connected", websocket: sockets.length, sse: streams.length, longpoll: o.games });
  await sleep(2000);

  // Who speaks in each game. Over websocket only (the default): the two socket players take
  // turns. With `http_actions`, the turn goes round the transports (websocket, SSE, long-poll),
  // and the SSE and long-poll players type and chat over HTTP, as they must.
  const byRoom = new Map();
  const speakersOf = (room) => { if (!byRoom.has(room)) byRoom.set(room, { websocket: [], http: [] }); return byRoom.get(room); };
  for (const { socket, seat: s } of sockets) speakersOf(s.room).websocket.push(socket);
  if (o.http_actions) for (const s of seats) if (transportOf(s) !== "websocket") speakersOf(s.room).http.push(s);
  const http = { posts: 0, errors: 0, p50_ms: null, p99_ms: null };
  const postLatency = new Samples();
  const post = (s, path, body) => {
    const started = now();
    const counted = window.measuring;
    request(o.url, `/api/games/${s.room}/${path}`, { method: "POST", body, token: s.token, agent: actionAgent })
      .then((answer) => {
        if (answer.status >= 300) http.errors++;
        else if (counted) { http.posts++; postLatency.add(now() - started); }
      }, () => { http.errors++; });
  };
  let running = true;
  const games = [...byRoom.entries()].map(([room, members], g) => (async () => {
    await sleep((g / byRoom.size) * 1000); // spread the games over the second
    let turn = 0;
    const speakers = [...members.websocket.map((socket) => ({ socket })), ...members.http.map((s) => ({ seat: s }))];
    while (running) {
      // Websocket-only: the sockets in turn. HTTP actions: websocket, SSE, long-poll in turn.
      const speaker = o.http_actions
        ? (turn % 3 === 0 ? speakers[(turn / 3) % members.websocket.length] : speakers[members.websocket.length + (turn % 3) - 1])
        : speakers[turn % members.websocket.length];
      turn++;
      typingAt.set(room, now());
      if (speaker.socket) speaker.socket.emit("typing", { is_typing: true });
      else post(speaker.seat, "typing", { is_typing: true });
      await sleep(100);
      if (window.measuring) chatsSent.count++;
      if (speaker.socket) speaker.socket.emit("chat_message", { text: `t=${now()}` });
      else post(speaker.seat, "chat", { text: `t=${now()}` });
      await sleep(900);
    }
  })());
  const elapsed = await measureWindow(o, window);
  running = false;
  state.stopped = true;
  await Promise.all(games);
  for (const { socket } of sockets) socket.close();
  for (const req of streams) req.destroy();
  const per = {};
  for (const [transport, kinds] of Object.entries(lat)) {
    per[transport] = { chat: kinds.chat.summary(), typing: kinds.typing.summary() };
  }
  await sleep(500); // the last posts' answers
  const posted = postLatency.summary();
  const actions = o.http_actions ? { http_actions: { posts: http.posts, posts_per_s: Math.round(http.posts / elapsed),
    errors: http.errors, p50_ms: posted.p50_ms, p99_ms: posted.p99_ms } } : {};
  out({ result: { scenario: "gamenight", players: seats.length, games: o.games, seconds: elapsed,
    chats_sent: chatsSent.count, chat_deliveries: received, transports: per, ...actions,
    generator_lag: generatorLag() } });
  process.exit(0); // long-polls still waiting end with the process
}

// -- long-poll answers per second ---------------------------------------------------------------

// `clients` keep-alive pollers ask one game again and again for what they have already seen
// (after=0, timeout=0): every poll is answered at once, so this is the cost of a poll itself.
async function polls(o) {
  const [s] = await seat("arcane", o.url, 1, 1);
  const path = `/api/games/${s.room}/poll?after=0&timeout=0&client_id=bench`;
  const window = { measuring: false };
  let running = true;
  let answered = 0;
  let errors = 0;
  const poller = async () => {
    while (running) {
      const answer = await request(o.url, path, { token: s.token, agent: streamAgent });
      if (answer.status !== 200) errors++;
      else if (window.measuring) answered++;
    }
  };
  const pollers = Array.from({ length: o.clients }, poller);
  const elapsed = await measureWindow(o, window);
  running = false;
  await Promise.all(pollers);
  out({ result: { scenario: "polls", clients: o.clients, seconds: elapsed, polls: answered,
    polls_per_s: Math.round(answered / elapsed), errors } });
  process.exit(0);
}

// -- 3. idle connections, for memory ----------------------------------------------------------

async function hold(o) {
  const lines = readline.createInterface({ input: process.stdin });
  const iterator = lines[Symbol.asyncIterator]();
  const seats = await seat(o.target, o.url, Math.ceil(o.ws / 4), 4);
  out({ phase: "seated", seats: seats.length });
  await iterator.next();
  const sockets = await connectAll(o.target, o.url, seats.slice(0, o.ws));
  out({ phase: "ws", connections: sockets.length });
  await iterator.next();
  const streams = [];
  if (o.sse) {
    await inParallel(seats.slice(0, o.sse), 100, async (s) => { streams.push(await openSse(o.url, s, () => {})); });
  }
  out({ phase: "sse", connections: streams.length });
  await iterator.next();
  for (const s of sockets) s.close();
  for (const req of streams) req.destroy();
  out({ result: { scenario: "hold", ws: sockets.length, sse: streams.length } });
  process.exit(0);
}

// -- 4. reconnect storm -----------------------------------------------------------------------
// `handshake_only`: the reconnect is only the websocket, Engine.IO's open and Socket.IO's connect
// with the token, no join: the floor under the storm, what the protocol stack costs alone.

async function storm(o) {
  const seats = await seat("arcane", o.url, o.games, 4);
  const clients = seats.map((s) => ({ seat: s, cursor: 0, socket: null, want: 0, done: false }));
  const track = (client) => (name, data) => {
    if (data && typeof data.seq === "number" && name !== "reconnect_sync") client.cursor = Math.max(client.cursor, data.seq);
    if (name === "reconnect_sync" && data) client.cursor = Math.max(client.cursor, data.seq);
  };
  await inParallel(clients, 200, async (c) => {
    c.socket = await connect(o.url, c.seat);
    c.socket.onAny(track(c));
    const ack = await join("arcane", c.socket, c.seat, 0);
    c.cursor = Math.max(c.cursor, ack.seq);
  });
  await sleep(2000);
  out({ phase: "connected", players: clients.length });
  for (const c of clients) c.socket.close(); // everyone drops at once
  // While they are away each game moves on: one chat line per game.
  const hosts = clients.filter((c) => c.seat.index === 0);
  const missed = new Map();
  await inParallel(hosts, 32, async (c) => {
    const answer = await request(o.url, `/api/games/${c.seat.room}/chat`, { method: "POST", body: { text: "while you were away" }, token: c.seat.token });
    if (answer.status !== 201) throw new Error(`chat: ${answer.status} ${answer.text}`);
    missed.set(c.seat.room, answer.json.seq);
  });
  out({ phase: "dropped" });
  out({ window: "open" });
  const started = now();
  let recovered = 0;
  let snapshots = 0;
  let failures = 0;
  const finished = [];
  await Promise.all(clients.map(async (c) => {
    c.want = missed.get(c.seat.room);
    const done = new Promise((resolve) => { c.resolve = resolve; });
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        const socket = await connect(o.url, c.seat);
        if (o.handshake_only) {
          c.socket = socket;
          c.done = true;
          c.resolve();
          break;
        }
        socket.onAny((name, data) => {
          track(c)(name, data);
          if (c.cursor >= c.want && !c.done) { c.done = true; c.resolve(); }
        });
        const ack = await join("arcane", socket, c.seat, c.cursor);
        if (ack.recovered) recovered++; else snapshots++;
        c.socket = socket;
        break;
      } catch {
        failures++;
        await sleep(100 * (attempt + 1));
      }
    }
    await Promise.race([done, sleep(60_000)]);
    finished.push(now() - started);
  }));
  const elapsed = (now() - started) / 1000;
  out({ window: "closed" });
  const complete = clients.filter((c) => c.done).length;
  for (const c of clients) c.socket?.close();
  const sorted = finished.sort((a, b) => a - b);
  out({ result: { scenario: "storm", handshake_only: Boolean(o.handshake_only), players: clients.length,
    seconds: Math.round(elapsed * 1000) / 1000,
    complete, recovered, snapshots, connect_failures: failures,
    p50_ms: Math.round(sorted[Math.floor(sorted.length / 2)]), p99_ms: Math.round(sorted[Math.floor(sorted.length * 0.99)]) } });
  process.exit(0);
}

const scenarios = { fanout, gamenight, hold, storm, polls };
const [name, options] = process.argv.slice(2);
if (!scenarios[name]) {
  console.error(`usage: node load.mjs <${Object.keys(scenarios).join("|")}> '<json options>'`);
  process.exit(2);
}
scenarios[name](JSON.parse(options || "{}")).catch((error) => {
  out({ error: String(error && error.stack || error) });
  process.exit(1);
});
