// Benchmark peer: plain Node.js socket.io 4.x server; usage: node bench/peers/node/server.js PORT
"use strict";
const http = require("node:http");
const path = require("node:path");
const { createRequire } = require("node:module");

// socket.io is installed by bench/peers/setup.sh into bench/.peers/node (git-ignored), not next to this file.
// createRequire anchored at that folder's package.json resolves it from there whatever the cwd, with no
// NODE_PATH to set; PEER_NODE_DIR may name another folder holding package.json + node_modules.
const depsDir = process.env.PEER_NODE_DIR || path.resolve(__dirname, "../../.peers/node");
const { Server } = createRequire(path.join(depsDir, "package.json"))("socket.io");

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.js PORT");
  process.exit(2);
}

const httpServer = http.createServer();
const io = new Server(httpServer, { cors: { origin: "*" } });

io.on("connection", (socket) => {
  socket.on("join", (data, ack) => {
    socket.join(data.room);
    if (typeof ack === "function") ack({ ok: true });
  });
  socket.on("msg", (data) => {
    io.to(data.room).emit("msg", data);
  });
});

httpServer.listen(port, "127.0.0.1");
