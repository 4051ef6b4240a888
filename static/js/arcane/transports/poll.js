// Long-polling: one GET at a time, each answer's `last_seq` the next request's `after`;
// actions are HTTP POSTs. The transport of last resort: plain request/response.

import { ArcaneError, TransportError } from "../errors.js";
import { sendOverHttp } from "./http-actions.js";

const EARLY_MS = 1000;

export class PollTransport {
  name = "poll";
  #after = null;
  #epoch = null;
  #controller = null;
  #closing = false;

  constructor({ api, baseUrl = "", token = null, gameCode, clientId, openTimeout = 8000, pollTimeout = 25 }) {
    Object.assign(this, { api, baseUrl, token, gameCode, clientId, openTimeout, pollTimeout });
  }

  url(timeout) {
    const params = new URLSearchParams({ timeout: String(timeout) });
    if (this.clientId) params.set("client_id", this.clientId);
    if (this.#after !== null && this.#after !== undefined) {
      params.set("after", String(this.#after));
      if (this.#epoch) params.set("epoch", this.#epoch);
    }
    return `${this.baseUrl}/api/games/${encodeURIComponent(this.gameCode)}/poll?${params}`;
  }

  // The first poll answers at once (timeout 0): it proves the path works and brings the catch-up.
  async open({ after, epoch, deliver, advance, closed }) {
    this.#after = after ?? null;
    this.#epoch = epoch ?? null;
    const first = await this.#poll(0, this.openTimeout, deliver, advance);
    this.#loop(deliver, advance, closed);
    return { ok: true, seq: first.last_seq, recovered: first.recovered, epoch: first.epoch };
  }

  async #loop(deliver, advance, closed) {
    while (!this.#closing) {
      const started = performance.now();
      try {
        const body = await this.#poll(this.pollTimeout, (this.pollTimeout + 10) * 1000, deliver, advance);
        // A waiting poll answered at once with nothing: the server let it go (shutting down,
        // or this client fell too far behind). Reconnect like the other transports do.
        const early = performance.now() - started < EARLY_MS && this.pollTimeout * 1000 > 5 * EARLY_MS;
        if (early && !body.events?.length) throw new TransportError(this.name, "the server ended the poll early");
      } catch (error) {
        if (!this.#closing) {
          this.#closing = true;
          closed(error.message);
        }
        return;
      }
    }
  }

  async #poll(timeout, limitMs, deliver, advance) {
    const controller = new AbortController();
    this.#controller = controller;
    const timer = setTimeout(() => controller.abort(), limitMs);
    let response;
    let body;
    try {
      response = await fetch(this.url(timeout), {
        headers: this.token ? { Authorization: `Bearer ${this.token}` } : {},
        credentials: "same-origin", cache: "no-store", signal: controller.signal,
      });
      body = await response.json();
    } catch {
      throw new TransportError(this.name, controller.signal.aborted ? "the poll was cut off" : "the poll failed");
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      const error = ArcaneError.from(body, { status: response.status });
      if (error.fatal) throw error;
      throw new TransportError(this.name, `HTTP ${response.status}`);
    }
    if (this.#closing) return body;
    for (const item of body.events ?? []) deliver(item.event, item.data);
    this.#after = body.last_seq;
    if (typeof body.epoch === "string") this.#epoch = body.epoch;
    advance(body.last_seq, body.epoch);
    return body;
  }

  send(event, payload) {
    return sendOverHttp(this.api, this.gameCode, event, payload);
  }

  close() {
    this.#closing = true;
    this.#controller?.abort();
  }
}
