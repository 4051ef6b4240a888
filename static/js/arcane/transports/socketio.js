// Socket.IO over websocket only: when the websocket cannot open, the client's ladder moves on to SSE.

import { io } from "../../../vendor/socket.io-client/socket.io.esm.min.js";
import { ArcaneError, TransportError } from "../errors.js";

export class SocketIoTransport {
  name = "socketio";
  pushesPresence = true; // request_presence is answered with a presence_update event too
  #socket = null;
  #closing = false;

  constructor({ baseUrl = "", token = null, gameCode, openTimeout = 8000, ackTimeout = 10000 }) {
    Object.assign(this, { baseUrl, token, gameCode, openTimeout, ackTimeout });
  }

  open({ after, epoch, deliver, closed }) {
    const options = {
      transports: ["websocket"], reconnection: false, forceNew: true, timeout: this.openTimeout,
      auth: this.token ? { token: this.token } : {},
    };
    const socket = this.baseUrl ? io(this.baseUrl, options) : io(options);
    this.#socket = socket;
    socket.onAny((name, data) => deliver(name, data));
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.close();
        reject(error);
      };
      const timer = setTimeout(() => fail(new TransportError(this.name, "timed out opening the websocket")),
        this.openTimeout);
      socket.on("connect_error", (error) => {
        // A refusal by the server carries the contract's {code, message}; anything else is the path.
        const refusal = error?.data?.code ? ArcaneError.from(error.data) : null;
        fail(refusal ?? new TransportError(this.name, error?.message ?? "cannot connect"));
      });
      // A websocket closed before it opened (a proxy refusing it) only surfaces as a
      // connect_error after the whole timeout: watch the engine to move on at once.
      socket.io.engine?.on("close", (reason) => {
        if (!settled) fail(new TransportError(this.name, `the websocket closed before opening (${reason})`));
      });
      socket.on("disconnect", (reason) => {
        if (!settled) fail(new TransportError(this.name, `closed while joining (${reason})`));
        else if (!this.#closing) closed(reason);
      });
      socket.on("connect", async () => {
        const body = { game_code: this.gameCode };
        if (after !== null && after !== undefined) {
          body.last_seq = after;
          if (epoch) body.epoch = epoch;
        }
        let ack;
        try {
          ack = await socket.timeout(this.openTimeout).emitWithAck("join_game_room", body);
        } catch {
          fail(new TransportError(this.name, "no answer to join_game_room"));
          return;
        }
        if (ack?.error) {
          fail(ArcaneError.from(ack, { event: "join_game_room" }));
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(ack);
      });
    });
  }

  get connected() {
    return !!this.#socket?.connected;
  }

  async send(event, payload) {
    if (!this.connected) throw new ArcaneError("OFFLINE", "the socket is not connected", { event });
    let result;
    try {
      result = await this.#socket.timeout(this.ackTimeout).emitWithAck(event, payload ?? null);
    } catch {
      throw new ArcaneError("TIMEOUT", `no answer to ${event}`, { event });
    }
    if (result?.error) throw ArcaneError.from(result, { event });
    return result;
  }

  close() {
    this.#closing = true;
    const socket = this.#socket;
    if (socket) {
      socket.offAny();
      socket.disconnect();
    }
  }
}
