// The JSON HTTP API of DESIGN.md: identity by the session cookie, or a bearer token when given.

import { ArcaneError } from "./errors.js";

export class Api {
  constructor({ baseUrl = "", token = null } = {}) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  headers(extra = {}) {
    const headers = { Accept: "application/json", ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return headers;
  }

  // The parsed body of a 2xx answer; an ArcaneError otherwise (code "NETWORK" when no answer came).
  async request(method, path, body = undefined, { signal } = {}) {
    const init = { method, headers: this.headers(), credentials: "same-origin", cache: "no-store", signal };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.baseUrl + path, init);
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw new ArcaneError("NETWORK", "the server could not be reached");
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) throw ArcaneError.from(data ?? { code: "INTERNAL_ERROR", message: response.statusText },
      { status: response.status });
    return data;
  }

  game(code, path = "") {
    return `/api/games/${encodeURIComponent(code)}${path}`;
  }

  createGame(playerName, maxPlayers = undefined) {
    const body = { player_name: playerName };
    if (maxPlayers) body.max_players = maxPlayers;
    return this.request("POST", "/api/games", body);
  }

  joinGame(code, playerName) {
    return this.request("POST", this.game(code, "/players"), { player_name: playerName });
  }

  watchGame(code, name) {
    return this.request("POST", this.game(code, "/spectators"), { name });
  }

  view(code) {
    return this.request("GET", this.game(code));
  }

  start(code) {
    return this.request("POST", this.game(code, "/start"));
  }

  question(code) {
    return this.request("GET", this.game(code, "/interrogation"));
  }

  answer(code, answerId, questionId = undefined) {
    return this.request("POST", this.game(code, "/interrogation"), { answer_id: answerId, question_id: questionId });
  }

  choose(code, pick) {
    return this.request("POST", this.game(code, "/choices"), pick);
  }

  chat(code, text) {
    return this.request("POST", this.game(code, "/chat"), { text });
  }

  typing(code, isTyping) {
    return this.request("POST", this.game(code, "/typing"), { is_typing: isTyping });
  }

  leave(code) {
    return this.request("POST", this.game(code, "/leave"));
  }

  voteSkip(code, playerId) {
    return this.request("POST", this.game(code, "/skip"), { player_id: playerId });
  }

  recap(code) {
    return this.request("GET", this.game(code, "/recap"));
  }

  shareReplay(code, shown) {
    return this.request("POST", this.game(code, "/replay"), { public: shown });
  }

  rematch(code) {
    return this.request("POST", this.game(code, "/rematch"));
  }

  health() {
    return this.request("GET", "/healthz");
  }
}
