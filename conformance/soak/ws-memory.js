'use strict';
// Usage (from conformance/, after cargo build -p conformance-server):
//   node soak/ws-memory.js 3000 [server flags, e.g. --per-message-deflate 0]
// Prints one JSON line: the server's RSS (GET /stats) before and after N clients.
// RSS of conformance-server with N idle Socket.IO WebSocket clients (official client, which
// offers permessage-deflate by default), deflate on or off on the server; after each client
// sent and received one 4 KiB compressible message.
const { spawn } = require('node:child_process');
const { io } = require('socket.io-client');
const N = Number(process.argv[2] || 1000);
const args = process.argv.slice(3);
const bin = process.env.CONFORMANCE_SERVER || require('node:path').join(__dirname, '..', '..', 'target', 'debug', 'conformance-server');
(async () => {
  const child = spawn(bin, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise((resolve) => child.stdout.on('data', (d) => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(String(d)); if (m) resolve(Number(m[1]));
  }));
  const url = `http://127.0.0.1:${port}`;
  const stats = async () => (await (await fetch(`${url}/stats`)).json());
  await new Promise((r) => setTimeout(r, 300));
  const before = (await stats()).rssBytes;
  const sockets = [];
  const text = 'abcdefgh '.repeat(455);
  for (let i = 0; i < N; i++) {
    const s = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
    sockets.push(s);
    await new Promise((r) => s.once('connect', r));
    s.emit('message', text);
    await new Promise((r) => s.once('message-back', r));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const st = await stats();
  console.log(JSON.stringify({ args: args.join(' '), clients: N, websockets: st.websockets, rssBeforeMiB: +(before / 2 ** 20).toFixed(1), rssAfterMiB: +(st.rssBytes / 2 ** 20).toFixed(1), perConnKiB: +((st.rssBytes - before) / N / 1024).toFixed(1) }));
  for (const s of sockets) s.close();
  child.kill('SIGKILL');
  process.exit(0);
})();
