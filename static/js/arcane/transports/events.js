// The events the server sends (docs/realtime.md, "Server -> client").

export const SERVER_EVENTS = Object.freeze([
  "player_joined", "player_left", "game_started", "player_ready", "class_assigned",
  "new_scenario", "whisper", "player_chose", "turn_resolution", "chat_message", "game_over",
  "player_connected", "player_disconnected", "presence_update", "player_typing", "pong",
  "reconnect_sync", "error",
]);
