// Server-Sent Events for what the server sends, HTTP POSTs for what the player does.
//
// The browser's own EventSource reconnection is not used: on any error the stream is
// closed and the client reopens it, with its own backoff, from its own cursor
// (`?last_event_id=`), so every transport recovers the same way.

import { TransportError } from "../errors.js";
import { SERVER_EVENTS } from "./events.js";
import { sendOverHttp } from "./http-actions.js";

export class SseTransport {
  name = "sse";
  #source = null;
  #closing = false;

  constructor({ api, baseUrl = "", token = null, gameCode, openTimeout = 8000 }) {
    Object.assign(this, { api, baseUrl, token, gameCode, openTimeout });
  }

  url(after, epoch) {
    const params = new URLSearchParams();
    if (this.token) params.set("token", this.token);
    if (after !== null && after !== undefined) {
      params.set("last_event_id", String(after));
      if (epoch) params.set("epoch", epoch);
    }
    const query = params.toString();
    return `${this.baseUrl}/api/games/${encodeURIComponent(this.gameCode)}/events${query ? `?${query}` : ""}`;
  }

  open({ after, epoch, deliver, closed }) {
    const source = new EventSource(this.url(after, epoch));
    this.#source = source;
    for (const name of SERVER_EVENTS) {
      source.addEventListener(name, (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return;
        }
        deliver(name, data);
      });
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        source.close();
        reject(new TransportError(this.name, "timed out opening the event stream"));
      }, this.openTimeout);
      source.onopen = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ok: true });
      };
      source.onerror = () => {
        const wasOpen = settled;
        source.close();
        if (!wasOpen) {
          settled = true;
          clearTimeout(timer);
          reject(new TransportError(this.name, "the event stream could not be opened"));
        } else if (!this.#closing) {
          closed("the event stream ended");
        }
      };
    });
  }

  send(event, payload) {
    return sendOverHttp(this.api, this.gameCode, event, payload);
  }

  close() {
    this.#closing = true;
    this.#source?.close();
  }
}
