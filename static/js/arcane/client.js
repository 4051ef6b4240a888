// One client for one game, with the same API on every transport.
//
//   const client = new GameClient({ gameCode: "K7Q2ZD" });
//   client.on("chat_message", (data) => show(data.text));
//   client.on("state", ({ state, transport }) => indicator(state, transport));
//   await client.connect();
//   await client.chat("I saw nothing");
//
// Transport ladder: Socket.IO over websocket, then Server-Sent Events (+ HTTP POSTs), then
// long-polling (+ HTTP POSTs). A transport is left behind only when it fails while the server
// answers plain HTTP (it is blocked, not down); what worked is remembered in localStorage.
// Every (re)connect resumes from the last seq seen; events at or below it are dropped.
// See docs/client.md.

import { Backoff } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { ArcaneError, TransportError } from "./errors.js";
import { Api } from "./http.js";
import { sendOverHttp } from "./transports/http-actions.js";
import { PollTransport } from "./transports/poll.js";
import { SocketIoTransport } from "./transports/socketio.js";
import { SseTransport } from "./transports/sse.js";

// The ladder, best first. A transport is a class: open({after, epoch, deliver, advance, closed}) -> ack,
// send(event, payload) -> result, close(); see docs/client.md to write another.
export const DEFAULT_TRANSPORTS = Object.freeze({
  socketio: SocketIoTransport, sse: SseTransport, poll: PollTransport,
});
export const TRANSPORTS = Object.freeze(Object.keys(DEFAULT_TRANSPORTS));
export const STATES = Object.freeze(["idle", "connecting", "connected", "reconnecting", "failed", "closed"]);
const MEMORY_KEY = "arcane.transport";
const DAY_MS = 24 * 60 * 60 * 1000;

export class GameClient {
  #emitter = new Emitter();
  #backoff;
  #current = null;
  #opening = null;
  #dropped = null;
  #draining = false;
  #generation = 0;
  #wake = null;
  #connected = null;

  constructor({
    gameCode, token = null, baseUrl = "", transport = null, backoff = {}, openTimeout = 8000,
    ackTimeout = 10000, pollTimeout = 25, clientId = null, storage = defaultStorage(),
    rememberFor = DAY_MS, logLimit = 5000, onStateChange = null, transports = DEFAULT_TRANSPORTS,
  } = {}) {
    if (!gameCode) throw new TypeError("gameCode is required");
    this.transports = { ...transports };
    if (transport !== null && !(transport in this.transports)) {
      throw new TypeError(`transport must be one of ${Object.keys(this.transports).join(", ")}`);
    }
    this.gameCode = String(gameCode).toUpperCase();
    this.api = new Api({ baseUrl, token });
    this.options = { token, baseUrl, forced: transport, openTimeout, ackTimeout, pollTimeout, rememberFor, logLimit };
    this.clientId = clientId ?? randomId();
    this.storage = storage;
    this.#backoff = new Backoff(backoff);
    this.state = "idle";
    this.transport = null;
    this.seq = null;
    // The stream's epoch, sent back with the cursor: a cursor of another epoch (the server's
    // log was restored) gets a snapshot instead of a replay.
    this.epoch = null;
    this.log = [];
    this.duplicates = 0;
    this.syncs = 0;
    this.reconnects = 0;
    this.latency = null;
    if (onStateChange) this.on("state", onStateChange);
  }

  get backoffOptions() {
    return this.#backoff.options;
  }

  // -- events ----------------------------------------------------------------------------------

  // Server events by name (handler(data, meta)); "*" for every event (handler(name, data, meta));
  // "state" for connection changes; "transport_failed", "duplicate", "latency".
  on(name, handler) {
    return this.#emitter.on(name, handler);
  }

  off(name, handler) {
    this.#emitter.off(name, handler);
  }

  // -- connection ----------------------------------------------------------------------------

  // Resolves once connected; rejects if the client gives up ("failed") or is closed first.
  // `after`: the cursor to resume from (0 replays the whole retained log); by default the
  // last seq seen, or none (a reconnect_sync snapshot) on the first connect.
  connect({ after } = {}) {
    if (this.state === "connected") return Promise.resolve(this.transport);
    if (after !== undefined) this.seq = after;
    if (!this.#connected || this.state === "failed" || this.state === "closed") {
      this.#connected = deferred();
      this.#connected.promise.catch(() => {});
      this.#run();
    }
    return this.#connected.promise;
  }

  // After "failed": start over with a fresh set of tries. While waiting between tries: try now.
  retry() {
    if (this.state === "failed" || this.state === "idle") return this.connect();
    this.#wake?.();
    return this.#connected?.promise ?? Promise.resolve(this.transport);
  }

  close() {
    this.#generation++;
    this.#wake?.();
    this.#dropped?.resolve("closed");
    this.#shutTransport();
    this.#setState("closed");
    this.#connected?.reject(new ArcaneError("CLOSED", "the client was closed"));
    this.#connected = null;
  }

  async #run() {
    const generation = ++this.#generation;
    const live = () => generation === this.#generation;
    this.#backoff.reset();
    let wasConnected = false;
    this.#setState("connecting");
    while (live()) {
      try {
        const { name, ack } = await this.#attempt(live);
        if (!live()) return;
        if (wasConnected) this.reconnects++;
        this.#backoff.reset();
        this.#setState("connected", { ack, reconnected: wasConnected });
        this.#connected?.resolve(name);
        wasConnected = true;
        await this.#dropped.promise;
        if (!live()) return;
      } catch (error) {
        if (!live()) return;
        if (error instanceof ArcaneError && error.fatal) {
          this.#fail(error);
          return;
        }
        this.lastError = error;
      }
      if (this.#draining) {
        // Told to go by a stopping server: the first try is now (its drain spread us out).
        this.#draining = false;
        this.#setState("reconnecting", { attempt: 0, maxTries: this.#backoff.options.maxTries, delay: 0,
          error: "the server is stopping" });
        continue;
      }
      const delay = this.#backoff.next();
      if (delay === null) {
        this.#fail(new ArcaneError("CONNECTION_FAILED",
          `could not reconnect after ${this.#backoff.options.maxTries} tries`));
        return;
      }
      this.#setState("reconnecting", {
        attempt: this.#backoff.tries, maxTries: this.#backoff.options.maxTries, delay,
        error: this.lastError?.message ?? null,
      });
      await this.#sleep(delay);
    }
  }

  #fail(error) {
    this.#shutTransport();
    this.#setState("failed", { error: error.message, code: error.code ?? null });
    this.#connected?.reject(error);
    this.#connected = null;
  }

  // One try: down the ladder while the server answers HTTP but a transport does not.
  async #attempt(live) {
    const ladder = this.ladder();
    let lastError = new TransportError("client", "no transport to try");
    for (const name of ladder) {
      const transport = this.#makeTransport(name);
      this.#opening = transport;
      try {
        const dropped = deferred();
        const ack = await transport.open({
          after: this.seq,
          epoch: this.epoch,
          deliver: (event, data) => this.#receive(transport, event, data),
          advance: (seq, epoch) => this.#advance(transport, seq, epoch),
          closed: (reason) => {
            if (transport !== this.#current) return;
            this.#current = null;
            this.lastError = new TransportError(name, reason);
            dropped.resolve(reason);
          },
        });
        if (typeof ack?.epoch === "string") this.epoch = ack.epoch;
        if (!live()) {
          transport.close();
          return { name, ack };
        }
        this.#current = transport;
        this.#dropped = dropped;
        this.transport = name;
        this.#remember(name);
        return { name, ack };
      } catch (error) {
        transport.close();
        if (error instanceof ArcaneError && error.fatal) throw error;
        lastError = error;
        if (!live()) break;
        // Also tells a refusal (a stream cannot say why it closed) from a blocked path.
        if (!(await this.#serverAnswers()) || name === ladder[ladder.length - 1]) break;
        this.#emitter.emit("transport_failed", { transport: name, error: error.message });
      } finally {
        if (this.#opening === transport) this.#opening = null;
      }
    }
    throw lastError;
  }

  // True when the server answers this game's view: then a failing transport is blocked, not the
  // server down. Throws the refusal when the view itself is refused for good (AUTH_REQUIRED...).
  async #serverAnswers() {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.openTimeout);
    try {
      await this.api.request("GET", this.api.game(this.gameCode), undefined, { signal: controller.signal });
      return true;
    } catch (error) {
      if (error instanceof ArcaneError && error.fatal) throw error;
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  #makeTransport(name) {
    const { token, baseUrl, openTimeout, ackTimeout, pollTimeout } = this.options;
    return new this.transports[name]({
      api: this.api, baseUrl, token, gameCode: this.gameCode, clientId: this.clientId,
      openTimeout, ackTimeout, pollTimeout,
    });
  }

  // The transports to try, best first: the forced one alone, else from the remembered one down.
  ladder() {
    if (this.options.forced) return [this.options.forced];
    const names = Object.keys(this.transports);
    return names.slice(Math.max(0, names.indexOf(this.rememberedTransport())));
  }

  rememberedTransport() {
    return rememberedTransport(this.storage, this.options.rememberFor);
  }

  forgetTransport() {
    forgetTransport(this.storage);
  }

  #remember(name) {
    if (!this.options.forced) rememberTransport(this.storage, name);
  }

  #shutTransport() {
    const current = this.#current;
    this.#current = null;
    current?.close();
    this.#opening?.close();
    this.transport = null;
  }

  #sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    }).finally(() => {
      this.#wake = null;
    });
  }

  #setState(state, details = {}) {
    this.state = state;
    const info = {
      state, transport: this.transport, fallback: !!this.transport && this.transport !== "socketio",
      seq: this.seq, ...details,
    };
    this.stateInfo = info;
    this.#emitter.emit("state", info);
  }

  // -- what arrives --------------------------------------------------------------------------

  #receive(transport, event, data) {
    if (transport !== this.#current && transport !== this.#opening) return;
    const seq = Number.isInteger(data?.seq) ? data.seq : null;
    if (event === "reconnect_sync") {
      this.syncs++;
      if (seq !== null) this.seq = seq;
      if (typeof data?.epoch === "string") this.epoch = data.epoch;
    } else if (seq !== null) {
      if (this.seq !== null && seq <= this.seq) {
        this.duplicates++;
        this.#emitter.emit("duplicate", { event, seq, cursor: this.seq });
        return;
      }
      this.seq = seq;
      this.log.push({ seq, event, transport: transport.name });
      if (this.log.length > this.options.logLimit) this.log.splice(0, this.log.length - this.options.logLimit);
    }
    const meta = { seq, transport: transport.name };
    this.#emitter.emit(event, data, meta);
    this.#emitter.emit("*", event, data, meta);
    // The server is stopping and lets its clients go a few at a time: reconnect at once,
    // without waiting out a backoff (elsewhere behind a balancer, or here once restarted).
    if (event === "server_draining" && transport === this.#current) {
      this.#draining = true;
      this.#current = null;
      transport.close();
      this.lastError = new TransportError(transport.name, "the server is stopping");
      this.#dropped?.resolve("draining");
    }
  }

  #advance(transport, seq, epoch) {
    if (transport !== this.#current && transport !== this.#opening) return;
    if (Number.isInteger(seq) && (this.seq === null || seq > this.seq)) this.seq = seq;
    if (typeof epoch === "string") this.epoch = epoch;
  }

  // -- actions -------------------------------------------------------------------------------

  // Any client event: through the socket when it is up, else its HTTP equivalent.
  send(event, payload = undefined) {
    const current = this.#current;
    if (current && current.connected !== false) return current.send(event, payload);
    return sendOverHttp(this.api, this.gameCode, event, payload ?? {});
  }

  // `pick`: an option id, `{option_id}` or `{text}`.
  makeChoice(pick) {
    return this.send("make_choice", typeof pick === "string" ? { option_id: pick } : pick);
  }

  chat(text) {
    return this.send("chat_message", { text });
  }

  typing(isTyping) {
    return this.send("typing", { is_typing: !!isTyping });
  }

  // Resolves with {online_players, total_players, players}; a "presence_update" follows on
  // every transport (over HTTP the client raises it from the answer).
  async requestPresence() {
    const pushes = this.#current?.pushesPresence && this.#current.connected;
    const result = await this.send("request_presence");
    const { ok, ...presence } = result;
    if (!pushes) {
      const meta = { seq: null, transport: this.transport ?? "http" };
      this.#emitter.emit("presence_update", presence, meta);
      this.#emitter.emit("*", "presence_update", presence, meta);
    }
    return presence;
  }

  // Round trip in milliseconds: a Socket.IO ping, or an HTTP request on the fallbacks.
  async ping() {
    const started = performance.now();
    const result = await this.send("ping");
    this.latency = Math.round(performance.now() - started);
    this.#emitter.emit("latency", this.latency);
    return { latency: this.latency, timestamp: result?.timestamp ?? null };
  }
}

// -- what worked, remembered per browser ---------------------------------------------------------

export function rememberedTransport(storage = defaultStorage(), maxAge = DAY_MS) {
  try {
    const saved = JSON.parse(storage?.getItem(MEMORY_KEY) ?? "null");
    if (saved && TRANSPORTS.includes(saved.transport) && Date.now() - saved.at < maxAge) return saved.transport;
  } catch {
    // unreadable or unavailable storage: start from the top
  }
  return null;
}

export function rememberTransport(storage, name) {
  try {
    storage?.setItem(MEMORY_KEY, JSON.stringify({ transport: name, at: Date.now() }));
  } catch {
    // storage full or unavailable: the ladder simply starts from the top next time
  }
}

export function forgetTransport(storage = defaultStorage()) {
  try {
    storage?.removeItem(MEMORY_KEY);
  } catch {
    // storage unavailable
  }
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

function randomId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled (some private modes): nothing is remembered
  }
}
