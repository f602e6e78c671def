// Official socket.io 4.8 with the same events as conformance-server's
// namespace `/`, for bench/run.sh:
// - on connect: emit `auth` with the CONNECT auth payload (`{}` if none);
// - `echo` (args…): ack with the same args;
// - `join` (room): join, then ack with no args;
// - `bcast` (room, payload): emit `msg` with payload to the room, sender included;
// - `ping-all` (n, payload): n times emit `msg` with payload to all sockets of `/`.
// WebSocket transport only, perMessageDeflate off (the default, made explicit).
// `node server.js [--port 3000]` prints `listening on 127.0.0.1:PORT`.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

let port = 3000;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  if (argv[i] === "--port" && argv[i + 1] !== undefined) {
    port = Number(argv[i + 1]);
  } else {
    console.error(`server.js: unknown flag ${argv[i]}`);
    process.exit(2);
  }
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
});

io.on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth || {});
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(room);
    if (typeof ack === "function") ack();
  });
  socket.on("bcast", (room, payload) => {
    io.to(room).emit("msg", payload);
  });
  socket.on("ping-all", (n, payload) => {
    const count = Math.min(Number(n) || 0, 100000);
    for (let i = 0; i < count; i++) io.emit("msg", payload);
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  const addr = httpServer.address();
  console.log(`listening on 127.0.0.1:${addr.port}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
