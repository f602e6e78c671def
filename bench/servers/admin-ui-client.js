'use strict';
// Stands in for an open Admin UI tab during `bench/run.sh --servers ours-admin-ui`: the official
// socket.io-client on the admin namespace, connected as the UI connects (polling, then WebSocket,
// with credentials), reading everything the server reports. Needs socket.io-client (run.sh points
// NODE_PATH at conformance/node_modules).
//
//   node admin-ui-client.js http://127.0.0.1:PORT
//
// Prints `admin connected` once connected, and `admin events N` on SIGTERM.

const { io } = require('socket.io-client');

const url = process.argv[2];
let events = 0;
const socket = io(`${url}/admin`, { withCredentials: true, reconnection: false });
socket.onAny(() => { events += 1; });
socket.on('connect', () => console.log('admin connected'));
socket.on('connect_error', (err) => console.log(`admin connect_error ${err.message}`));
process.on('SIGTERM', () => {
  console.log(`admin events ${events}`);
  process.exit(0);
});
