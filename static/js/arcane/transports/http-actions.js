// Actions over plain HTTP: what the SSE and long-poll transports (and a socket that is down) use.

import { ArcaneError } from "../errors.js";

export function presenceFromView(view) {
  const players = (view.players ?? []).map((p) => ({
    player_id: p.player_id, player_name: p.player_name, online: !!p.online,
  }));
  return { online_players: players.filter((p) => p.online).length, total_players: players.length, players };
}

export async function sendOverHttp(api, code, event, payload = {}) {
  switch (event) {
    case "make_choice":
      return api.choose(code, payload);
    case "chat_message":
      return api.chat(code, payload?.text);
    case "typing":
      return api.typing(code, payload?.is_typing);
    case "request_presence":
      return { ok: true, ...presenceFromView(await api.view(code)) };
    case "ping":
      await api.health();
      return { ok: true, timestamp: Date.now() / 1000 };
    default:
      throw new ArcaneError("UNSUPPORTED", `${event} has no HTTP equivalent: it needs Socket.IO`, { event });
  }
}
