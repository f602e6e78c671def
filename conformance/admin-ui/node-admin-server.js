#!/usr/bin/env node
'use strict';
// The Node.js reference for the Admin UI browser test: a socket.io 4.8 server
// instrumented by the official `@socket.io/admin-ui` package, with the same
// command line as the Rust `conformance-server`'s admin flags, so the test can
// drive either one (ADMIN_UI_SERVER=node) and compare what the UI shows.
//
//   node node-admin-server.js --port 0 --admin [--admin-user NAME
//        --admin-password-hash BCRYPT] [--admin-readonly]
//        [--admin-mode production|development] [--admin-server-id ID]
//        [--parser json|msgpack]
//
// Prints `listening on 127.0.0.1:PORT` once it accepts connections.
// Namespaces `/` and `/custom` serve what the test's regular clients use from
// the Rust app (conformance/server/src/app.rs), so that both servers send the
// same events: on connect emit `auth` (the CONNECT auth payload); `message`
// (args...) → emit `message-back` (args...); `join` (room, ack) joins, acks;
// `rooms` (any, ack) acks the socket's sorted rooms.
// CORS reflects any origin with credentials, as `--admin` does on ours (the
// UI's client connects with `withCredentials: true`).

const http = require('node:http');
const { Server } = require('socket.io');
const { instrument } = require('@socket.io/admin-ui');

function parseArgs(argv) {
  const args = { port: 0, admin: false, readonly: false, mode: 'development' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--port': args.port = Number(value()); break;
      case '--admin': args.admin = true; break;
      case '--admin-user': args.user = value(); break;
      case '--admin-password-hash': args.hash = value(); break;
      case '--admin-readonly': args.readonly = true; break;
      case '--admin-mode': args.mode = value(); break;
      case '--admin-server-id': args.serverId = value(); break;
      case '--parser': args.parser = value(); break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  if ((args.user === undefined) !== (args.hash === undefined)) {
    throw new Error('--admin-user and --admin-password-hash go together');
  }
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    cors: { origin: true, credentials: true },
    ...(args.parser === 'msgpack' ? { parser: require('socket.io-msgpack-parser') } : {}),
  });

  const onConnection = (socket) => {
    socket.emit('auth', socket.handshake.auth);
    socket.on('message', (...args) => socket.emit('message-back', ...args));
    socket.on('join', (room, ack) => {
      socket.join(room);
      if (typeof ack === 'function') ack();
    });
    socket.on('rooms', (_arg, ack) => {
      if (typeof ack === 'function') ack([...socket.rooms].sort());
    });
  };
  io.on('connection', onConnection);
  io.of('/custom').on('connection', onConnection);

  if (args.admin) {
    instrument(io, {
      auth: args.user === undefined
        ? false
        : { type: 'basic', username: args.user, password: args.hash },
      readonly: args.readonly,
      mode: args.mode,
      ...(args.serverId === undefined ? {} : { serverId: args.serverId }),
    });
  }

  httpServer.listen(args.port, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
  });
  const stop = () => {
    io.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
