// The events the server sends (docs/realtime.md, "Server -> client").

export const SERVER_EVENTS = Object.freeze([
  "player_joined", "player_left", "game_started", "player_ready", "class_assigned",
  "new_scenario", "whisper", "player_chose", "turn_resolution", "chat_message", "game_over",
  "player_connected", "player_disconnected", "presence_update", "player_typing", "pong",
  "reconnect_sync", "error",
  // The table's own (docs/realtime.md, "The game at the table"), the operator's, and shutdown's.
  "host_changed", "spectator_joined", "spectator_left", "skip_vote", "player_skipped", "turn_timed_out",
  "rematch", "game_ended", "player_removed", "replay_shared", "server_draining", "seat_closed",
]);
