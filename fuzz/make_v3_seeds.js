// Writes fuzz/corpus/engineio_payload_v3/: Engine.IO v3 polling bodies captured from the
// official socket.io-client 2.5.0 talking to `conformance-server --allow-eio3` through a
// recording proxy (its POST bodies and the GET bodies it was answered with), plus the same
// packets in the XHR2 binary framing that browsers use, encoded by the client's own
// engine.io-parser 2.x (in Node the v2 client polls with b64=1 and sends no XHR2 bodies).
// Run from the repository root after `cargo build -p conformance-server` and
// `cd conformance && npm ci`:
//   node fuzz/make_v3_seeds.js
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');

const modules = path.join(__dirname, '../conformance/node_modules');
const io2 = require(path.join(modules, 'socket.io-client-v2'));
const parser = require(path.join(modules, 'socket.io-client-v2/node_modules/engine.io-parser'));
const binary = path.join(__dirname, '../target/debug/conformance-server');
const out = path.join(__dirname, 'corpus', 'engineio_payload_v3');

function startServer() {
  const child = spawn(binary, ['--port', '0', '--allow-eio3'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(String(d));
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', () => reject(new Error('server exited')));
  });
}

/** An HTTP proxy to `port` that records every polling body (POST requests, GET answers). */
function recordingProxy(port, bodies) {
  const proxy = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST') bodies.push(['post', body]);
      const up = http.request({ port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        const back = [];
        upRes.on('data', (c) => back.push(c));
        upRes.on('end', () => {
          const answer = Buffer.concat(back);
          if (req.method === 'GET' && upRes.statusCode === 200) bodies.push(['get', answer]);
          res.writeHead(upRes.statusCode, upRes.headers);
          res.end(answer);
        });
      });
      up.end(body);
    });
  });
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy)));
}

function ack(socket, ...args) {
  return new Promise((resolve) => socket.emit(...args, (...res) => resolve(res)));
}

async function main() {
  const server = await startServer();
  const bodies = [];
  const proxy = await recordingProxy(server.port, bodies);
  const url = `http://127.0.0.1:${proxy.address().port}`;
  const s = io2(url, { transports: ['polling'], forceNew: true, reconnection: false });
  await new Promise((r) => s.once('auth', r));
  await ack(s, 'message-with-ack', 1, '2', { 3: [true] }, 'é€😀');
  await ack(s, 'message-with-ack', Buffer.from([1, 2, 3]), { nested: Buffer.from([255, 0]) });
  s.emit('message', 'a', 'b');
  await new Promise((r) => s.once('message-back', r));
  await ack(s, 'join', 'room-1');
  const c = s.io.socket('/custom', { query: { token: 'abc', n: 1 } });
  await new Promise((r) => c.once('auth', r));
  c.emit('bcast', null, { bin: Buffer.from('xy') });
  await new Promise((r) => c.once('msg', r));
  c.close();
  await ack(s, 'rooms');
  s.close();
  await new Promise((r) => setTimeout(r, 200));
  proxy.close();
  server.child.kill();

  fs.mkdirSync(out, { recursive: true });
  for (const f of fs.readdirSync(out)) fs.rmSync(path.join(out, f));
  const seen = new Set();
  let n = 0;
  for (const [dir, body] of bodies) {
    const key = body.toString('latin1');
    if (!body.length || seen.has(key)) continue;
    seen.add(key);
    fs.writeFileSync(path.join(out, `client-${dir}-${String(n++).padStart(2, '0')}`), body);
    // The same packets in the XHR2 binary framing (what a browser sends and gets).
    const packets = [];
    parser.decodePayload(body.toString('utf8'), (p) => { packets.push(p); });
    if (packets.some((p) => p.type === 'error')) continue;
    await new Promise((resolve) => parser.encodePayloadAsBinary(packets, (xhr2) => {
      fs.writeFileSync(path.join(out, `xhr2-${dir}-${String(n++).padStart(2, '0')}`), xhr2);
      resolve();
    }));
  }
  console.log(`${fs.readdirSync(out).length} seeds in ${out}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
