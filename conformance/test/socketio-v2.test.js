'use strict';
// Socket.IO v2 clients (the official socket.io-client 2.5.0, Engine.IO v3) against
// `conformance-server --allow-eio3`, over polling, WebSocket and the upgrade: connect (`/`
// joined implicitly), namespaces (query as auth, `<nsp>#<sid>` ids, refusals), events and
// acks, binary, rooms, the client-driven heartbeat (pings every 300 ms), reconnection, and a v2
// and a v4 client sharing a room. In Node the v2 client polls with `b64=1`; what a browser
// sends instead (XHR2 binary payloads, no `b64`) and the raw v3 framing are checked with
// hand-written requests. Last, a server without the flag refuses v3 as the reference does.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const io2 = require('socket.io-client-v2');
const { startServer } = require('./support/server');
const {
  TIMEOUT, Queue, waitFor, request, rawWs, sleep, referenceDiffers,
} = require('./support/helpers');
const { connectSio, nextEvent, closeSioClients } = require('./support/socketio');

const MODES = {
  polling: { transports: ['polling'] },
  websocket: { transports: ['websocket'] },
  upgrade: { transports: ['polling', 'websocket'] },
};

let server; // --allow-eio3, default heartbeat
let fast; // --allow-eio3, pingInterval 300 / pingTimeout 200
// --allow-eio3, pingInterval 300 / pingTimeout 1000: the idle tests. At 300 / 200 each
// ping-pong round trip must take under 200 ms on both sides (the client closes 200 ms after
// its ping without a pong; the server 500 ms after a ping without the next, which the client
// sends 300 ms after the pong): a loaded machine breaks that for the reference server too.
let lenient;
let plain; // without the flag
before(async () => {
  [server, fast, lenient, plain] = await Promise.all([
    startServer(['--allow-eio3']),
    startServer(['--allow-eio3', '--ping-interval', '300', '--ping-timeout', '200']),
    startServer(['--allow-eio3', '--ping-interval', '300', '--ping-timeout', '1000']),
    startServer([]),
  ]);
});
after(async () => {
  closeV2();
  closeSioClients();
  await Promise.all([server, fast, lenient, plain].map((s) => s && s.stop()));
});
afterEach(() => {
  closeV2();
  closeSioClients();
});

// ---------------------------------------------------------------------------
// The v2 client, instrumented like support/socketio.js does the v4 one.

const v2Sockets = new Set();

/** Adds `socket.queue(name)` (argument lists of every `name` event) and `socket.errors`. */
function instrument(socket) {
  const queues = new Map();
  socket.queue = (name) => {
    if (!queues.has(name)) queues.set(name, new Queue(`'${name}' event (v2)`));
    return queues.get(name);
  };
  // The v2 client has no onAny: every EVENT packet goes through `onevent`.
  const onevent = socket.onevent;
  socket.onevent = function (packet) {
    const [name, ...args] = packet.data || [];
    socket.queue(name).push(args);
    return onevent.call(this, packet);
  };
  socket.errors = new Queue('error (v2)');
  socket.disconnects = new Queue('disconnect (v2)');
  socket.on('error', (e) => socket.errors.push(e));
  socket.on('disconnect', (reason) => socket.disconnects.push(reason));
  v2Sockets.add(socket);
  return socket;
}

function createV2(srv, nsp = '/', opts = {}) {
  return instrument(io2(srv.url + (nsp === '/' ? '' : nsp), {
    forceNew: true, reconnection: false, timeout: TIMEOUT, ...opts,
  }));
}

async function waitV2Connect(socket) {
  if (!socket.connected) {
    await waitFor(socket, 'connect', { failOn: ['error', 'connect_error', 'disconnect'] });
  }
  return socket;
}

async function connectV2(srv, nsp = '/', opts = {}) {
  return waitV2Connect(createV2(srv, nsp, opts));
}

/** A socket on `nsp` sharing `other`'s Manager (one Engine.IO connection). */
function v2On(other, nsp, opts = {}) {
  return instrument(other.io.socket(nsp, opts));
}

/** Emits with an ack callback (the v2 client has no emitWithAck); resolves with its args. */
function emitAck(socket, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for '${args[0]}' within ${TIMEOUT} ms`)), TIMEOUT);
    socket.emit(...args, (...res) => { clearTimeout(timer); resolve(res); });
  });
}

async function waitV2Upgrade(socket) {
  const engine = socket.io.engine;
  if (engine.transport.name === 'websocket' && !engine.upgrading) return;
  await waitFor(engine, 'upgrade', { failOn: ['close', 'upgradeError'] });
}

function closeV2() {
  for (const s of v2Sockets) {
    try { s.io.reconnection(false); s.close(); s.io.engine && s.io.engine.close(); } catch { /* gone */ }
  }
  v2Sockets.clear();
}

/** Connects on `/` in `mode` and checks the implicit connection; resolves the socket. */
async function v2Client(srv, mode, opts = {}) {
  const s = await connectV2(srv, '/', { ...MODES[mode], ...opts });
  assert.deepEqual(await s.queue('auth').next(), [{}]);
  if (mode === 'upgrade') await waitV2Upgrade(s);
  return s;
}

// ---------------------------------------------------------------------------

for (const mode of Object.keys(MODES)) {
  describe(`socket.io-client 2.5.0 over ${mode}`, () => {
    test('/ is joined without a CONNECT, with auth {} and the Engine.IO sid as id', async () => {
      const s = await v2Client(server, mode);
      assert.equal(s.id, s.io.engine.id);
      assert.equal(s.io.engine.transport.name, mode === 'polling' ? 'polling' : 'websocket');
      const [rooms] = await emitAck(s, 'rooms');
      assert.deepEqual(rooms, [s.id]);
    });

    test('events and acks, JSON and binary, both ways', async () => {
      const s = await v2Client(server, mode);
      const args = [1, '2', { 3: [true] }, 'é€😀', null];
      s.emit('message', ...args);
      assert.deepEqual(await s.queue('message-back').next(), args);
      assert.deepEqual(await emitAck(s, 'message-with-ack', ...args), args);
      const bin = [Buffer.from([1, 2, 3]), { nested: [Buffer.from([]), Buffer.from([255, 0])] }, 'x'];
      s.emit('message', ...bin);
      assert.deepEqual(await s.queue('message-back').next(), bin);
      assert.deepEqual(await emitAck(s, 'message-with-ack', ...bin), bin);
    });

    test('a custom namespace: its query is the auth, its id is <nsp>#<sid>; refusals', async () => {
      const s = await v2Client(server, mode);
      const c = v2On(s, '/custom', { query: { token: 'abc', n: 1 } });
      await waitV2Connect(c);
      assert.deepEqual(await c.queue('auth').next(), [{ token: 'abc', n: '1' }]);
      assert.equal(c.id, `/custom#${s.io.engine.id}`);
      // Unknown namespace: ERROR `{"message":"Invalid namespace"}`, the connection lives on.
      const nope = v2On(s, '/nope');
      assert.deepEqual(await nope.errors.next(), { message: 'Invalid namespace' });
      // Middleware refusal: a v2 client gets the error's data.
      const bad = v2On(s, '/mw', { query: { token: 'bad' } });
      assert.deepEqual(await bad.errors.next(), { reason: 'bad token' });
      // (The Manager keeps one socket per namespace: a fresh client for the good token.)
      await connectV2(server, '/mw', { ...MODES[mode], query: { token: 'ok' } });
      assert.deepEqual(await emitAck(s, 'message-with-ack', 'still', 'here'), ['still', 'here']);
    });

    test('rooms: join, broadcast, and the room of the client-side id', async () => {
      const [a, b] = await Promise.all([v2Client(server, mode), v2Client(server, mode)]);
      await emitAck(a, 'join', 'v2-room');
      await emitAck(b, 'join', 'v2-room');
      const [rooms] = await emitAck(a, 'rooms');
      assert.deepEqual(rooms, [a.id, 'v2-room'].sort());
      a.emit('bcast', 'v2-room', { from: 'a', bin: Buffer.from([7]) });
      for (const s of [a, b]) {
        assert.deepEqual(await s.queue('msg').next(), [{ from: 'a', bin: Buffer.from([7]) }]);
      }
      // A room addressed by the id a v2 client computed itself reaches it.
      const c = v2On(a, '/custom');
      await waitV2Connect(c);
      const d = await connectSio(server, '/custom');
      d.emit('bcast', c.id, 'to the v2 id');
      assert.deepEqual(await c.queue('msg').next(), ['to the v2 id']);
    });
  });
}

describe('socket.io-client 2.5.0 and 4.8 together', () => {
  for (const [v2mode, v4mode] of [['polling', 'websocket'], ['websocket', 'polling']]) {
    test(`a v2 (${v2mode}) and a v4 (${v4mode}) client in one room get each other's broadcasts`, async () => {
      const v2 = await v2Client(server, v2mode);
      const v4 = await connectSio(server, '/', MODES[v4mode]);
      assert.deepEqual(await nextEvent(v4, 'auth'), [{}]);
      await emitAck(v2, 'join', 'mixed');
      await v4.emitWithAck('join', 'mixed');
      v2.emit('bcast', 'mixed', { from: 'v2', bin: Buffer.from([1]) });
      v4.emit('bcast', 'mixed', { from: 'v4', bin: Buffer.from([2]) });
      for (const s of [v2, v4]) {
        const got = (await s.queue('msg').take(2)).map(([m]) => m);
        got.sort((x, y) => x.from.localeCompare(y.from));
        assert.deepEqual(got, [{ from: 'v2', bin: Buffer.from([1]) }, { from: 'v4', bin: Buffer.from([2]) }]);
      }
    });
  }
});

describe('socket.io-client 2.5.0: heartbeat and reconnection', () => {
  for (const mode of ['polling', 'websocket']) {
    test(`idle at pingInterval 300 / pingTimeout 1000 over ${mode}: the client pings, no disconnect`, async () => {
      const s = await v2Client(lenient, mode);
      let pongs = 0;
      s.io.engine.on('pong', () => { pongs += 1; });
      // Idle for several heartbeat periods (the time is what is under test).
      await sleep(1600);
      assert.equal(s.disconnects.length, 0, 'disconnected while idle');
      assert.ok(pongs >= 2, `only ${pongs} pongs in 1600 ms`);
      assert.deepEqual(await emitAck(s, 'message-with-ack', 'alive'), ['alive']);
    });
  }

  test('without pings the server closes the session after pingInterval + pingTimeout', async () => {
    const hs = await v3Handshake(fast);
    const first = await request(v3PollUrl(fast, hs.sid));
    assert.equal(first.status, 200);
    // No ping: the session is gone after 300 + 200 ms (allow for a loaded machine).
    const deadline = Date.now() + TIMEOUT;
    let res;
    do {
      await sleep(100);
      res = await request(v3PollUrl(fast, hs.sid), { timeout: TIMEOUT });
    } while (res.status === 200 && Date.now() < deadline);
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
  });

  for (const mode of ['polling', 'websocket']) {
    test(`reconnects over ${mode} after the connection drops`, async () => {
      const s = await v2Client(server, mode, { reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
      const firstId = s.id;
      const reconnected = waitFor(s, 'reconnect');
      s.io.engine.close();
      await reconnected;
      assert.deepEqual(await s.queue('auth').next(), [{}]);
      assert.notEqual(s.id, firstId);
      assert.equal(s.id, s.io.engine.id);
      assert.deepEqual(await emitAck(s, 'message-with-ack', 'back'), ['back']);
    });
  }
});

// ---------------------------------------------------------------------------
// Raw Engine.IO v3 on /socket.io/

function v3Url(srv, query) {
  return `${srv.url}/socket.io/?EIO=3&${query}`;
}

function v3PollUrl(srv, sid, extra = '') {
  return v3Url(srv, `transport=polling&sid=${encodeURIComponent(sid)}${extra}`);
}

/** Splits a v3 text payload into packets, checking each UTF-16 length prefix. */
function parseText(body) {
  const out = [];
  let i = 0;
  while (i < body.length) {
    const colon = body.indexOf(':', i);
    assert.ok(colon > i, `no length prefix at ${i} in ${JSON.stringify(body)}`);
    const n = Number(body.slice(i, colon));
    out.push(body.substr(colon + 1, n));
    i = colon + 1 + n;
  }
  assert.equal(i, body.length, `lengths do not add up in ${JSON.stringify(body)}`);
  return out;
}

/** A v3 text payload (lengths in UTF-16 code units, JavaScript's string.length). */
function textPayload(...packets) {
  return packets.map((p) => `${p.length}:${p}`).join('');
}

/** Parses an XHR2 binary payload into strings and Buffers (binary items keep their type byte). */
function parseBinary(buf) {
  const out = [];
  let i = 0;
  while (i < buf.length) {
    const isString = buf[i] === 0;
    let len = '';
    for (i += 1; buf[i] !== 255; i += 1) {
      assert.ok(buf[i] <= 9 && len.length < 11, 'bad length byte');
      len += buf[i];
    }
    i += 1;
    const data = buf.subarray(i, i + Number(len));
    assert.equal(data.length, Number(len), 'item shorter than its length');
    out.push(isString ? data.toString('utf8') : Buffer.from(data));
    i += Number(len);
  }
  return out;
}

/** An XHR2 binary payload of strings and Buffers (Buffers given with their type byte). */
function binaryPayload(...items) {
  const parts = [];
  for (const item of items) {
    const data = typeof item === 'string' ? Buffer.from(item, 'utf8') : item;
    const digits = String(data.length).split('').map(Number);
    parts.push(Buffer.from([typeof item === 'string' ? 0 : 1, ...digits, 255]), data);
  }
  return Buffer.concat(parts);
}

async function v3Handshake(srv, extra = '') {
  const res = await request(v3Url(srv, `transport=polling${extra}`));
  assert.equal(res.status, 200, res.body);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const [open] = parseText(res.body);
  assert.equal(open[0], '0');
  const hs = JSON.parse(open.slice(1));
  assert.deepEqual(Object.keys(hs), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
  return hs;
}

/** GETs until `count` packets (text payloads) arrived; resolves them. */
async function pollPackets(srv, sid, count, extra = '') {
  const got = [];
  while (got.length < count) {
    const res = await request(v3PollUrl(srv, sid, extra));
    assert.equal(res.status, 200, res.body);
    got.push(...parseText(res.body).filter((p) => p !== '6'));
  }
  return got;
}

async function rawPost(srv, sid, body, headers = {}, extra = '') {
  return fetch(v3PollUrl(srv, sid, extra), { method: 'POST', body, headers, signal: AbortSignal.timeout(TIMEOUT) });
}

describe('raw Engine.IO v3 framing', () => {
  test('text payloads: the implicit 40, client ping → pong, UTF-16 lengths', async () => {
    const { sid } = await v3Handshake(server);
    assert.deepEqual(await pollPackets(server, sid, 2), ['40', '42["auth",{}]']);
    const text = 'é€😀'; // 4 code points, 5 UTF-16 units, 11 UTF-8 bytes
    const res = await rawPost(server, sid, textPayload('2', `42["message","${text}"]`));
    assert.equal(res.status, 200);
    const back = `42["message-back","${text}"]`;
    const poll = await request(v3PollUrl(server, sid));
    assert.equal(poll.body, textPayload('3', back));
    assert.ok(poll.body.startsWith('1:3') && poll.body.includes(`${back.length}:42`));
  });

  test('XHR2 binary payloads both ways (a browser: no b64)', async () => {
    const { sid } = await v3Handshake(server);
    await pollPackets(server, sid, 2);
    const header = '451-["message",{"_placeholder":true,"num":0},"€"]';
    const res = await rawPost(server, sid, binaryPayload(header, Buffer.from([4, 1, 2, 255])),
      { 'content-type': 'application/octet-stream' });
    assert.equal(res.status, 200);
    const poll = await fetch(v3PollUrl(server, sid), { signal: AbortSignal.timeout(TIMEOUT) });
    assert.equal(poll.headers.get('content-type'), 'application/octet-stream');
    const items = parseBinary(Buffer.from(await poll.arrayBuffer()));
    assert.deepEqual(items, [
      '451-["message-back",{"_placeholder":true,"num":0},"€"]',
      Buffer.from([4, 1, 2, 255]),
    ]);
  });

  test('b64=1: binary goes both ways as b4<base64> in text payloads', async () => {
    const { sid } = await v3Handshake(server, '&b64=1');
    await pollPackets(server, sid, 2, '&b64=1');
    const res = await rawPost(server, sid,
      textPayload('451-["message",{"_placeholder":true,"num":0}]', 'b4AQID'), {}, '&b64=1');
    assert.equal(res.status, 200);
    assert.deepEqual(await pollPackets(server, sid, 2, '&b64=1'),
      ['451-["message-back",{"_placeholder":true,"num":0}]', 'b4AQID']);
  });

  test('WebSocket: binary frames carry the 0x04 type byte; ping → pong', async () => {
    const ws = rawWs(`${server.wsUrl}/socket.io/?EIO=3&transport=websocket`);
    const open = await ws.received.next();
    assert.equal(open[0], '0');
    assert.equal(await ws.received.next(), '40');
    assert.equal(await ws.received.next(), '42["auth",{}]');
    ws.send('2');
    assert.equal(await ws.received.next(), '3');
    ws.send('451-["message",{"_placeholder":true,"num":0}]');
    ws.send(Buffer.from([4, 9, 8]));
    assert.equal(await ws.received.next(), '451-["message-back",{"_placeholder":true,"num":0}]');
    const frame = await ws.received.next();
    assert.deepEqual(Buffer.from(frame), Buffer.from([4, 9, 8]));
    ws.close();
  });

  test('a length that lies closes the session (400); others are unaffected',
    referenceDiffers('Node answers a bad v3 POST 200 "ok", then closes the session'), async () => {
    const [victim, other] = await Promise.all([v3Handshake(server), v3Handshake(server)]);
    await pollPackets(server, victim.sid, 2);
    await pollPackets(server, other.sid, 2);
    const res = await rawPost(server, victim.sid, '9:42["x"]');
    assert.equal(res.status, 400);
    const after = await request(v3PollUrl(server, victim.sid));
    assert.equal(after.status, 400);
    const ok = await rawPost(server, other.sid, textPayload('2'));
    assert.equal(ok.status, 200);
    assert.deepEqual(await pollPackets(server, other.sid, 1), ['3']);
  });
});

describe('without --allow-eio3', () => {
  test('a v3 handshake is refused with code 5, as the reference', async () => {
    for (const query of ['EIO=3&transport=polling', 'transport=polling']) {
      const res = await request(`${plain.url}/socket.io/?${query}`);
      assert.equal(res.status, 400);
      assert.deepEqual(JSON.parse(res.body), { code: 5, message: 'Unsupported protocol version' });
    }
    const res = await request(`${plain.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(res.status, 200);
  });
});
