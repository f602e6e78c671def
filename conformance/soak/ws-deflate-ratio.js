'use strict';
// Usage (from conformance/, after cargo build -p conformance-server):
//   node soak/ws-deflate-ratio.js [COUNT]
// Bytes on the wire for COUNT (default 1 000) similar 2 KiB JSON messages echoed by the
// Engine.IO endpoint, with Node's `ws` client (perMessageDeflate, threshold 0), against
// `--per-message-deflate 0` (no context takeover) and with `--deflate-context-takeover 1`.
// Prints one JSON line per server configuration.
const { spawn } = require('node:child_process');
const path = require('node:path');
const WebSocket = require('ws');

const COUNT = Number(process.argv[2] || 1000);
const bin = process.env.CONFORMANCE_SERVER || path.join(__dirname, '..', '..', 'target', 'debug', 'conformance-server');

/** The same generator as test/engineio-deflate.test.js: 48 items, a few fields change. */
function similarJson(i) {
  const items = [];
  for (let k = 0; k < 48; k++) {
    items.push({ sku: `SKU-${String(k * 37).padStart(5, '0')}`, qty: k === i % 48 ? i % 7 : (k % 5) + 1, price: 10 + k * 1.25 });
  }
  return JSON.stringify({ id: i, at: 1700000000000 + i * 1013, user: `user-${(i * 7) % 17}`, items });
}

async function run(args) {
  const child = spawn(bin, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise((resolve) => child.stdout.on('data', (d) => {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(String(d)); if (m) resolve(Number(m[1]));
  }));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`, { perMessageDeflate: { threshold: 0 } });
  let header = null;
  ws.on('upgrade', (res) => { header = res.headers['sec-websocket-extensions']; });
  const inbox = [];
  let wake = null;
  ws.on('message', (d) => { inbox.push(d.toString()); if (wake) wake(); });
  const next = async () => {
    while (inbox.length === 0) await new Promise((r) => { wake = r; });
    return inbox.shift();
  };
  await new Promise((r) => ws.once('open', r));
  await next(); // the open packet
  const before = { read: ws._socket.bytesRead, written: ws._socket.bytesWritten };
  let payload = 0;
  for (let i = 0; i < COUNT; i++) {
    const m = '4' + similarJson(i);
    payload += Buffer.byteLength(m);
    ws.send(m);
    if ((await next()) !== m) throw new Error(`message ${i} changed`);
  }
  const down = ws._socket.bytesRead - before.read;
  const up = ws._socket.bytesWritten - before.written;
  ws.close();
  child.kill('SIGKILL');
  return { args: args.join(' '), header, messages: COUNT, payloadBytes: payload, serverToClientBytes: down, clientToServerBytes: up, ratioDown: +(payload / down).toFixed(1), ratioUp: +(payload / up).toFixed(1) };
}

(async () => {
  for (const args of [['--per-message-deflate', '0'], ['--per-message-deflate', '0', '--deflate-context-takeover', '1']]) {
    console.log(JSON.stringify(await run(args)));
  }
  process.exit(0);
})();
