'use strict';
// WebSocket permessage-deflate (RFC 7692) with the official clients: engine.io-client and
// socket.io-client over Node's `ws` with `perMessageDeflate` on, and Chromium (which offers
// permessage-deflate by default) running the official engine.io-client bundle. The server
// runs with `--per-message-deflate 0` (every message compressed) or the default threshold.
// Compression is checked on the wire: the bytes the TCP socket carried for a compressible
// message are a small fraction of its length, both ways.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const { openClient, waitForUpgrade, closeClients, bytesOf } = require('./support/helpers');
const { connectSio, createSio, waitConnect, nextEvent, waitSioUpgrade, closeSioClients } = require('./support/socketio');

const WebSocket = require('ws');

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

/**
 * Reads WebSocket frame headers out of a byte stream fed in arbitrary chunks (RFC 6455 §5.2),
 * from a frame boundary on: `frames` gets `{ rsv1, opcode, fin, length }` per frame.
 */
class FrameSniffer {
  constructor() {
    this.buf = Buffer.alloc(0);
    this.frames = [];
  }

  feed(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let len = b1 & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (b1 & 0x80) at += 4;
      if (this.buf.length < at + len) return;
      this.frames.push({ fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, length: len });
      this.buf = this.buf.subarray(at + len);
    }
  }

  /** The data frames seen so far (first frames of messages: text, binary). */
  messages() {
    return this.frames.filter((f) => f.opcode === 1 || f.opcode === 2);
  }
}

/**
 * Opens Node's `ws` client straight on the Engine.IO endpoint with `perMessageDeflate`
 * options; resolves once the Engine.IO open packet has arrived, with the response's
 * `sec-websocket-extensions` header and sniffers of the frames each way from then on.
 */
async function openRaw(target, perMessageDeflate) {
  const ws = new WebSocket(`${target.wsUrl}/engine.io/?EIO=4&transport=websocket`, { perMessageDeflate });
  let header = null;
  ws.on('upgrade', (res) => { header = res.headers['sec-websocket-extensions'] ?? null; });
  const inbox = [];
  let wake = null;
  ws.on('message', (data, isBinary) => {
    inbox.push(isBinary ? Buffer.from(data) : data.toString());
    if (wake) wake();
  });
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  const next = async (timeout = 20000) => {
    const deadline = Date.now() + timeout;
    while (inbox.length === 0) {
      const left = deadline - Date.now();
      assert.ok(left > 0, 'no message in time');
      await Promise.race([
        new Promise((resolve) => { wake = resolve; }),
        closed.then((code) => { throw new Error(`closed (${code}) while waiting`); }),
        new Promise((resolve) => setTimeout(resolve, left)),
      ]);
    }
    return inbox.shift();
  };
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const open = await next();
  assert.equal(open[0], '0', 'the Engine.IO open packet');
  // The server sends nothing more until asked (the first ping is 25 s away): the next bytes
  // each way start a frame.
  const down = new FrameSniffer();
  ws._socket.on('data', (chunk) => down.feed(chunk));
  const up = new FrameSniffer();
  const write = ws._socket.write;
  ws._socket.write = function sniffed(chunk, ...rest) {
    if (chunk && typeof chunk !== 'string') up.feed(Buffer.from(chunk.buffer ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength) : chunk));
    return write.call(this, chunk, ...rest);
  };
  const close = async () => {
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    if (ws.readyState !== WebSocket.CLOSED) await closed;
  };
  return { ws, header, next, down, up, close };
}

/** `length` bytes with no repeats at any distance (SHA-256 in counter mode). */
function hashNoise(length, seed) {
  const parts = [];
  for (let i = 0; parts.length * 32 < length; i++) parts.push(crypto.createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(parts).subarray(0, length);
}

/**
 * `n` ASCII bytes in chunks of `period`: half of each chunk is a short repeated phrase
 * (compressible with any window), half is the same random base64 text in every chunk, so
 * that its repeats lie `period` bytes back: a compressor whose window reaches that far makes
 * back-references an inflater with a smaller window refuses.
 */
function windowed(n, period, seed) {
  const phrase = 'the quick brown fox ';
  const far = hashNoise(period, seed).toString('base64').slice(0, period - Math.floor(period / 2));
  const chunk = Buffer.from(phrase.repeat(Math.ceil(period / 2 / phrase.length)).slice(0, Math.floor(period / 2)) + far);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += period) chunk.copy(out, i, 0, Math.min(period, n - i));
  return out;
}

/**
 * Sends 64 KiB of compressible text and binary (see `windowed`, repeats `period` bytes apart)
 * and 64 KiB of random binary through the Engine.IO echo, and checks each comes back intact,
 * with RSV1 set on the wire both ways. `bits` are the windows each side compresses with
 * (`server`, `client`): zlib refers at most 2^bits - 262 bytes back, so a side whose reach
 * is under `period` sends the compressible messages at between a quarter and 60 % of their
 * size (the far repeats missed: its window was respected), one that reaches it under 1/8.
 */
async function roundTrip(c, period, bits) {
  const n = 64 * 1024;
  const messages = [
    ['4' + windowed(n - 1, period, 5).toString(), 'text'],
    [windowed(n, period, 9), 'compressible binary'],
    [noise(n, 11), 'random binary'],
  ];
  for (const [m, what] of messages) {
    c.ws.send(m, { binary: typeof m !== 'string' });
    const back = await c.next();
    if (typeof m === 'string') assert.equal(back, m, what);
    else assert.ok(Buffer.isBuffer(back) && back.equals(m), `${what} came back changed`);
  }
  const sides = { client: c.up.messages(), server: c.down.messages() };
  for (const [side, frames] of Object.entries(sides)) {
    assert.equal(frames.length, 3, `${side} frames: ${JSON.stringify(frames)}`);
    for (const f of frames) assert.ok(f.rsv1, `${side} frame has RSV1: ${JSON.stringify(f)}`);
    const far = period > 2 ** bits[side] - 262;
    for (const f of frames.slice(0, 2)) {
      const ok = far ? f.length > n / 4 && f.length < n * 0.6 : f.length < n / 8;
      assert.ok(ok, `${side} (${bits[side]} bits, repeats ${period} apart) sent ${f.length} bytes for ${n}`);
    }
  }
}

let server;
let thresholdServer;
let windowServer;
let takeoverServer;
before(async () => {
  takeoverServer = await startServer(['--per-message-deflate', '0', '--deflate-context-takeover', '2']);
  server = await startServer(['--max-payload', String(MAX_PAYLOAD), '--per-message-deflate', '0']);
  thresholdServer = await startServer(['--per-message-deflate', '1024']);
  windowServer = await startServer([
    '--per-message-deflate', '0', '--deflate-window-bits', '11', '--deflate-client-window-bits', '9',
  ]);
});
after(async () => {
  closeClients();
  closeSioClients();
  await server.stop();
  await thresholdServer.stop();
  await windowServer.stop();
  await takeoverServer.stop();
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

describe('permessage-deflate window bits with Node ws on the Engine.IO endpoint', () => {
  const raw = [];
  afterEach(async () => {
    await Promise.all(raw.splice(0).map((c) => c.close()));
  });
  const open = async (target, opts) => {
    const c = await openRaw(target, { threshold: 0, ...opts });
    raw.push(c);
    return c;
  };

  test('serverMaxWindowBits 10, clientMaxWindowBits 10, both no-context-takeover asked', async () => {
    const c = await open(server, {
      serverMaxWindowBits: 10, clientMaxWindowBits: 10, serverNoContextTakeover: true, clientNoContextTakeover: true,
    });
    assert.equal(c.header, `${EXTENSION}; server_max_window_bits=10; client_max_window_bits=10`);
    assert.deepEqual({ ...c.ws._extensions['permessage-deflate'].params }, {
      server_no_context_takeover: true, client_no_context_takeover: true,
      server_max_window_bits: 10, client_max_window_bits: 10,
    });
    await roundTrip(c, 4096, { server: 10, client: 10 });
  });

  test('serverMaxWindowBits 10, clientMaxWindowBits 10, takeover not refused by the client', async () => {
    const c = await open(server, { serverMaxWindowBits: 10, clientMaxWindowBits: 10 });
    assert.equal(c.header, `${EXTENSION}; server_max_window_bits=10; client_max_window_bits=10`);
    await roundTrip(c, 4096, { server: 10, client: 10 });
  });

  test('an offer asking for 8: answered 8, compressed so that a 256-byte inflater reads it', async () => {
    const c = await open(server, { serverMaxWindowBits: 8 });
    assert.equal(c.header, `${EXTENSION}; server_max_window_bits=8`);
    assert.equal(c.ws._extensions['permessage-deflate'].params.server_max_window_bits, 8);
    // Node's inflater has a 256-byte window; ours compresses with 9 bits (250 bytes back at
    // most). The client keeps its 15 bits (it offered client_max_window_bits with no value).
    await roundTrip(c, 600, { server: 9, client: 15 });
  });

  test('the client compresses with an 8-bit window (Node makes it 9): inflated intact', async () => {
    const c = await open(server, { clientMaxWindowBits: 8 });
    assert.equal(c.header, `${EXTENSION}; client_max_window_bits=8`);
    await roundTrip(c, 300, { server: 15, client: 9 });
  });

  test('the server\'s own limits (11 and 9) answer a default ws offer; a smaller ask still wins', async () => {
    let c = await open(windowServer, {});
    assert.equal(c.header, `${EXTENSION}; server_max_window_bits=11; client_max_window_bits=9`);
    await roundTrip(c, 4096, { server: 11, client: 9 });
    c = await open(windowServer, { serverMaxWindowBits: 9, clientMaxWindowBits: 12 });
    assert.equal(c.header, `${EXTENSION}; server_max_window_bits=9; client_max_window_bits=9`);
    await roundTrip(c, 1000, { server: 9, client: 9 });
  });

  test('a ws client that offers nothing gets no extension and uncompressed frames', async () => {
    const c = await openRaw(server, false);
    raw.push(c);
    assert.equal(c.header, null);
    c.ws.send('4' + 'x'.repeat(5000));
    assert.equal(await c.next(), '4' + 'x'.repeat(5000));
    assert.ok(c.down.messages().every((f) => !f.rsv1) && c.up.messages().every((f) => !f.rsv1));
  });
});

/**
 * A 2 KiB JSON text (48 items) that differs from its neighbours in a few
 * fields (its id, time, user and one item's quantity), as a stream of state updates does.
 */
function similarJson(i) {
  const items = [];
  for (let k = 0; k < 48; k++) {
    items.push({ sku: `SKU-${String(k * 37).padStart(5, '0')}`, qty: k === i % 48 ? i % 7 : (k % 5) + 1, price: 10 + k * 1.25 });
  }
  return JSON.stringify({ id: i, at: 1700000000000 + i * 1013, user: `user-${(i * 7) % 17}`, items });
}

/** Echoes `count` similar JSON messages; the bytes each way on the wire. */
async function similarRun(c, count) {
  const before = { read: c.ws._socket.bytesRead, written: c.ws._socket.bytesWritten };
  for (let i = 0; i < count; i++) {
    const m = '4' + similarJson(i);
    c.ws.send(m);
    assert.equal(await c.next(), m, `message ${i}`);
  }
  return { down: c.ws._socket.bytesRead - before.read, up: c.ws._socket.bytesWritten - before.written };
}

describe('permessage-deflate context takeover (--deflate-context-takeover 2)', () => {
  const raw = [];
  let bcastServer;
  after(async () => {
    if (bcastServer) await bcastServer.stop();
  });
  afterEach(async () => {
    await Promise.all(raw.splice(0).map((c) => c.close()));
  });
  const open = async (target, opts) => {
    const c = await openRaw(target, { threshold: 0, ...opts });
    raw.push(c);
    return c;
  };
  // A connection with takeover: a slot frees when the server's side of a closed connection
  // ends, so one may still be held just after an earlier test; wait for it.
  const openTakeover = async () => {
    const deadline = Date.now() + 15000;
    for (;;) {
      const c = await open(takeoverServer, {});
      if (c.header === 'permessage-deflate') return c;
      await c.close();
      assert.ok(Date.now() < deadline, 'no takeover slot freed in time');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  test('a default ws offer gets takeover both ways: a run of similar messages costs far less', async () => {
    const c = await openTakeover();
    const takeover = await similarRun(c, 200);
    await c.close();
    const plain = await open(server, {});
    assert.equal(plain.header, EXTENSION);
    const alone = await similarRun(plain, 200);
    assert.ok(takeover.down * 2 < alone.down, `server → client: ${takeover.down} with takeover, ${alone.down} without`);
    assert.ok(takeover.up * 2 < alone.up, `client → server: ${takeover.up} with takeover, ${alone.up} without`);
    // RSV1 on every message both ways, and large and random data still round-trip.
    await roundTrip(await openTakeover(), 600, { server: 15, client: 15 });
  });

  test('what the client asks for is kept: server_no_context_takeover, client_no_context_takeover, window bits', async () => {
    let c = await open(takeoverServer, { serverNoContextTakeover: true });
    assert.equal(c.header, 'permessage-deflate; server_no_context_takeover');
    await roundTrip(c, 600, { server: 15, client: 15 });
    c = await open(takeoverServer, { clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 });
    assert.equal(c.header, 'permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10');
    await roundTrip(c, 4096, { server: 10, client: 10 });
    const run = await similarRun(c, 50);
    assert.ok(run.down > 0 && run.up > 0);
  });

  test('at most 2 connections at once hold takeover state; a closed one frees its slot', async () => {
    const a = await openTakeover();
    await openTakeover();
    const third = await open(takeoverServer, {});
    assert.equal(third.header, EXTENSION, 'over the bound: no context takeover');
    await roundTrip(third, 600, { server: 15, client: 15 });
    await a.close();
    await similarRun(await openTakeover(), 20);
  });

  test('a room broadcast reaches takeover and no-takeover members intact', async () => {
    const opts = { transports: ['websocket'], ...DEFLATE };
    const members = [];
    // A server of its own, so that its 2 slots are free.
    bcastServer = await startServer(['--per-message-deflate', '0', '--deflate-context-takeover', '2']);
    for (let i = 0; i < 4; i++) members.push(await connectSio(bcastServer, '/', opts));
    const params = members.map((s) => s.io.engine.transport.ws._extensions['permessage-deflate'].params);
    assert.equal(params.filter((p) => !p.server_no_context_takeover).length, 2, JSON.stringify(params));
    for (const s of members) await new Promise((resolve) => s.emit('join', 'takeover-room', resolve));
    for (let round = 0; round < 3; round++) {
      const big = prose(100 * 1024, `bcast ${round}`);
      const reads = members.map((s) => s.io.engine.transport.ws._socket.bytesRead);
      members[0].emit('bcast', 'takeover-room', big);
      const got = await Promise.all(members.map((s) => nextEvent(s, 'msg')));
      got.forEach(([m]) => assert.equal(m, big));
      members.forEach((s, i) => {
        const carried = s.io.engine.transport.ws._socket.bytesRead - reads[i];
        assert.ok(carried < big.length / 10, `member ${i} read ${carried} bytes`);
      });
    }
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
