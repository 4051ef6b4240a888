// The official JavaScript client joins a game and prints what it receives, one JSON line each.
// usage: node interop.mjs <url> <token> <game_code> <wait_for_chat_text>
import { createRequire } from "node:module";

const require = createRequire(process.env.SOCKET_IO_CLIENT_DIR + "/");
const { io } = require("socket.io-client");
const [url, token, gameCode, waitFor] = process.argv.slice(2);
const print = (kind, name, data) => console.log(JSON.stringify({ kind, name, data }));

const socket = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
const timer = setTimeout(() => { print("fail", "timeout", null); process.exit(2); }, 15000);

socket.onAny((name, data) => {
  print("event", name, data);
  if (name === "chat_message" && data.text === waitFor) {
    clearTimeout(timer);
    socket.close();
    process.exit(0);
  }
});
socket.on("connect_error", (err) => { print("fail", "connect_error", err.data ?? err.message); process.exit(3); });
socket.on("connect", () => {
  socket.emit("join_game_room", { game_code: gameCode }, (ack) => {
    print("ack", "join_game_room", ack);
    socket.emit("chat_message", { text: "hello from node" }, (chatAck) => print("ack", "chat_message", chatAck));
  });
});
