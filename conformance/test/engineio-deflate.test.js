'use strict';
// WebSocket permessage-deflate (RFC 7692) with the official clients: engine.io-client and
// socket.io-client over Node's `ws` with `perMessageDeflate` on, and Chromium (which offers
// permessage-deflate by default) running the official engine.io-client bundle. The server
// runs with `--per-message-deflate 0` (every message compressed) or the default threshold.
// Compression is checked on the wire: the bytes the TCP socket carried for a compressible
// message are a small fraction of its length, both ways.

const fs = require('node:fs');
const path = require('node:path');
const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const { openClient, waitForUpgrade, closeClients, bytesOf } = require('./support/helpers');
const { connectSio, createSio, waitConnect, nextEvent, waitSioUpgrade, closeSioClients } = require('./support/socketio');

const MAX_PAYLOAD = 1000000;
// What the server answers (Chromium exposes it whole as WebSocket.extensions; Node's ws
// keeps the accepted parameters in `_extensions['permessage-deflate'].params`).
const EXTENSION = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
const DEFLATE = { transportOptions: { websocket: { perMessageDeflate: { threshold: 0 } } } };
const MODES = {
  websocket: { transports: ['websocket'], ...DEFLATE },
  'polling+upgrade': { ...DEFLATE },
};

/** A deterministic pseudo-random (incompressible) byte pattern. */
function noise(length, seed = 7) {
  const buf = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    buf[i] = x >> 16;
  }
  return buf;
}

/** Compressible text of about `length` characters (never cut inside a surrogate pair). */
function prose(length, tag = '') {
  const words = `${tag} the quick brown fox jumps over the lazy dog ünïcödé € 😀 `;
  return Array.from(words.repeat(Math.ceil(length / words.length))).slice(0, length).join('');
}

/** The `ws` WebSocket under an engine.io-client socket, once on WebSocket. */
function wsOf(socket) {
  assert.equal(socket.transport.name, 'websocket');
  return socket.transport.ws;
}

/** Asserts that Node's ws client `ws` negotiated permessage-deflate with no context takeover. */
function assertDeflate(ws) {
  assert.equal(ws.extensions, 'permessage-deflate');
  const params = ws._extensions['permessage-deflate'].params;
  assert.equal(params.server_no_context_takeover, true);
  assert.equal(params.client_no_context_takeover, true);
}

/** Bytes the TCP socket under `ws` has read and written so far. */
function wire(ws) {
  return { read: ws._socket.bytesRead, written: ws._socket.bytesWritten };
}

let server;
let thresholdServer;
before(async () => {
  server = await startServer(['--max-payload', String(MAX_PAYLOAD), '--per-message-deflate', '0']);
  thresholdServer = await startServer(['--per-message-deflate', '1024']);
});
after(async () => {
  closeClients();
  closeSioClients();
  await server.stop();
  await thresholdServer.stop();
});
afterEach(() => {
  closeClients();
  closeSioClients();
});

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`permessage-deflate with engine.io-client over ${mode}`, () => {
    test(`${mode}: the extension is negotiated with no context takeover`, async () => {
      const socket = await openClient(server, opts);
      await waitForUpgrade(socket);
      assertDeflate(wsOf(socket));
    });

    test(`${mode}: a large compressible text goes compressed both ways`, async () => {
      const socket = await openClient(server, opts);
      await waitForUpgrade(socket);
      const ws = wsOf(socket);
      const text = prose(600 * 1024);
      const before = wire(ws);
      socket.send(text);
      assert.equal(await socket.received.next(), text);
      const after = wire(ws);
      const up = after.written - before.written;
      const down = after.read - before.read;
      assert.ok(up < text.length / 10, `client → server carried ${up} bytes for ${Buffer.byteLength(text)}`);
      assert.ok(down < text.length / 10, `server → client carried ${down} bytes for ${Buffer.byteLength(text)}`);
    });

    test(`${mode}: binary, compressible and not, large and empty, echoes intact`, async () => {
      const socket = await openClient(server, opts);
      await waitForUpgrade(socket);
      for (const data of [noise(700 * 1024), Buffer.alloc(500 * 1024, 0x41), noise(1), Buffer.alloc(0), noise(70000, 3)]) {
        socket.send(data);
        const got = await socket.received.next();
        assert.ok(Buffer.isBuffer(got), 'binary back');
        assert.ok(got.equals(bytesOf(data)), `bytes differ (got ${got.length}, want ${data.length})`);
      }
    });

    test(`${mode}: 600 mixed messages, in order`, async () => {
      const socket = await openClient(server, opts);
      await waitForUpgrade(socket);
      const sent = [];
      for (let i = 0; i < 600; i++) {
        const kind = i % 4;
        const m = kind === 0 ? `small ${i}`
          : kind === 1 ? prose(1000 + (i * 37) % 5000, String(i))
          : kind === 2 ? noise(10 + (i * 101) % 3000, i)
          : Buffer.from(prose(2000, `bin ${i}`));
        sent.push(m);
        socket.send(m);
      }
      const got = await socket.received.take(sent.length, 60000);
      got.forEach((m, i) => {
        if (typeof sent[i] === 'string') assert.equal(m, sent[i], `message ${i}`);
        else assert.ok(Buffer.isBuffer(m) && m.equals(sent[i]), `message ${i}`);
      });
    });
  });
}

describe('permessage-deflate threshold and opting out', () => {
  test('default threshold (1 024): small messages cost their length, large ones are compressed', async () => {
    const socket = await openClient(thresholdServer, { transports: ['websocket'], ...DEFLATE });
    const ws = wsOf(socket);
    let before = wire(ws);
    const small = prose(500);
    socket.send(small);
    assert.equal(await socket.received.next(), small);
    // Uncompressed on the way back: the frame carries at least the text.
    assert.ok(wire(ws).read - before.read >= Buffer.byteLength(small) + 1);
    before = wire(ws);
    const big = prose(100 * 1024);
    socket.send(big);
    assert.equal(await socket.received.next(), big);
    assert.ok(wire(ws).read - before.read < big.length / 10);
  });

  test('a client with perMessageDeflate off gets no extension and plain frames', async () => {
    const socket = await openClient(server, {
      transports: ['websocket'],
      transportOptions: { websocket: { perMessageDeflate: false } },
    });
    const ws = wsOf(socket);
    assert.equal(ws.extensions, '');
    const before = wire(ws);
    const text = prose(50 * 1024);
    socket.send(text);
    assert.equal(await socket.received.next(), text);
    assert.ok(wire(ws).read - before.read >= Buffer.byteLength(text));
  });
});

describe('permessage-deflate with socket.io-client', () => {
  test('events with large compressible and binary arguments, and a room broadcast compressed once for all', async () => {
    const opts = { transports: ['websocket'], ...DEFLATE };
    const a = await connectSio(server, '/', opts);
    assertDeflate(a.io.engine.transport.ws);
    const payload = { text: prose(200 * 1024), bin: noise(50 * 1024), n: 1 };
    a.emit('message', payload);
    const [back] = await nextEvent(a, 'message-back');
    assert.equal(back.text, payload.text);
    assert.ok(Buffer.from(back.bin).equals(payload.bin));
    // Five members of a room get one compressed broadcast.
    const members = [a];
    for (let i = 0; i < 4; i++) members.push(await connectSio(server, '/', opts));
    for (const s of members) await new Promise((resolve) => s.emit('join', 'deflate-room', resolve));
    const reads = members.map((s) => s.io.engine.transport.ws._socket.bytesRead);
    const big = prose(300 * 1024, 'bcast');
    a.emit('bcast', 'deflate-room', big);
    const got = await Promise.all(members.map((s) => nextEvent(s, 'msg')));
    got.forEach(([m]) => assert.equal(m, big));
    members.forEach((s, i) => {
      const carried = s.io.engine.transport.ws._socket.bytesRead - reads[i];
      assert.ok(carried < big.length / 10, `member ${i} read ${carried} bytes`);
    });
  });

  test('polling+upgrade: the upgraded WebSocket negotiates deflate and events flow', async () => {
    const socket = createSio(server, '/', { ...DEFLATE });
    await waitConnect(socket);
    await waitSioUpgrade(socket);
    assertDeflate(socket.io.engine.transport.ws);
    const text = prose(300 * 1024);
    socket.emit('message', text);
    assert.deepEqual(await nextEvent(socket, 'message-back'), [text]);
  });
});

describe('permessage-deflate with Chromium', () => {
  let browser;
  let chromium;
  const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
  before(async () => {
    ({ chromium } = require('playwright-core'));
    assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  after(async () => {
    if (browser) await browser.close();
  });

  test('the official engine.io-client bundle in Chromium: negotiated, large text and binary both ways', async () => {
    const page = await browser.newPage();
    try {
      await page.addScriptTag({ path: path.join(__dirname, '..', 'node_modules', 'engine.io-client', 'dist', 'engine.io.min.js') });
      const result = await page.evaluate(async ({ url }) => {
        // The bundle's global `eio(uri, opts)` makes a Socket.
        const socket = eio(url, { path: '/engine.io/', transports: ['websocket'] });
        await new Promise((resolve, reject) => {
          socket.on('open', resolve);
          socket.on('close', (r) => reject(new Error(`closed: ${r}`)));
        });
        const received = [];
        let wake = null;
        socket.on('message', (m) => { received.push(m); if (wake) wake(); });
        const next = async () => {
          while (received.length === 0) await new Promise((r) => { wake = r; });
          return received.shift();
        };
        const text = 'Chromium deflate ünïcödé € 😀 '.repeat(20000);
        socket.send(text);
        const textBack = await next();
        const bytes = new Uint8Array(300000);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
        socket.send(bytes);
        const binBack = new Uint8Array(await next());
        let sameBin = binBack.length === bytes.length;
        for (let i = 0; sameBin && i < bytes.length; i++) sameBin = binBack[i] === bytes[i];
        const many = [];
        for (let i = 0; i < 200; i++) { const m = `m${i} `.repeat(1 + (i % 500)); many.push(m); socket.send(m); }
        let inOrder = true;
        for (const m of many) inOrder = inOrder && (await next()) === m;
        const extensions = socket.transport.ws.extensions;
        socket.close();
        return { extensions, sameText: textBack === text, sameBin, inOrder };
      }, { url: server.url });
      assert.deepEqual(result, { extensions: EXTENSION, sameText: true, sameBin: true, inOrder: true });
    } finally {
      await page.close();
    }
  });

  test('a raw WebSocket in Chromium with the default threshold: negotiated and echoed', async () => {
    const page = await browser.newPage();
    try {
      const result = await page.evaluate(async ({ wsUrl }) => {
        const ws = new WebSocket(`${wsUrl}/engine.io/?EIO=4&transport=websocket`);
        const frames = [];
        let wake = null;
        ws.onmessage = (e) => { frames.push(e.data); if (wake) wake(); };
        await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
        const next = async () => {
          while (frames.length === 0) await new Promise((r) => { wake = r; });
          return frames.shift();
        };
        const open = await next();
        const big = '4' + 'abc'.repeat(100000);
        ws.send(big);
        const back = await next();
        const closed = new Promise((r) => { ws.onclose = (e) => r(e.code); });
        ws.close(1000);
        return { open: open[0], extensions: ws.extensions, same: back === big, code: await closed };
      }, { wsUrl: thresholdServer.wsUrl });
      assert.deepEqual(result, { open: '0', extensions: EXTENSION, same: true, code: 1000 });
    } finally {
      await page.close();
    }
  });
});
