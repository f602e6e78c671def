'use strict';
// The msgpack parser: the official socket.io-client 4.8 built with
// socket.io-msgpack-parser 3.x (`io(url, { parser })`) against
// `conformance-server --parser msgpack`, over polling, WebSocket and upgrade:
// connect with auth, namespaces, every JSON shape of socketio-events.test.js
// (undefined included, which MessagePack keeps), binary at top level and nested
// (native `bin`, no attachments), acks both ways, rooms and broadcasts, volatile,
// and connection state recovery (a second server with --recovery-duration).
// Against Node's socket.io 4.8 with the same parser (CONFORMANCE_REFERENCE=1) everything
// passes but two documented differences: a Date and an ArrayBuffer are echoed as what they
// were by Node, as ISO text and as a Buffer by us (the JSON parser's shapes).

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const parser = require('socket.io-msgpack-parser');
const { startServer } = require('./support/server');
const { MODES, bytesOf, closeClients, referenceDiffers } = require('./support/helpers');
const {
  connectSio, createSio, waitConnect, nextEvent, closeSioClients, waitSioUpgrade,
} = require('./support/socketio');

let server;
let recoveryServer;
before(async () => {
  server = await startServer(['--parser', 'msgpack']);
  recoveryServer = await startServer(['--parser', 'msgpack', '--recovery-duration', '120000']);
});
after(async () => {
  closeSioClients();
  closeClients();
  await server.stop();
  await recoveryServer.stop();
});
afterEach(() => {
  closeSioClients();
  closeClients();
});

/** Echo through `message` → `message-back`; resolves with the echoed argument list. */
async function echo(socket, ...args) {
  socket.emit('message', ...args);
  return nextEvent(socket, 'message-back');
}

/** Emits `event` with `args` and resolves with the full argument list of the ack. */
function ackArgs(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(5000).emit(event, ...args, (err, ...reply) => (err ? reject(err) : resolve(reply)));
  });
}

/** Replaces every binary value by { bin: [...bytes] } so that deepEqual compares bytes. */
function normalise(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { bin: [...bytesOf(value)] };
  }
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  }
  return value;
}

/** Every binary value in `got` is a Buffer (what notepack hands out for `bin`). */
function assertBuffers(got) {
  if (got && typeof got === 'object') {
    if (ArrayBuffer.isView(got) || got instanceof ArrayBuffer) {
      assert.ok(Buffer.isBuffer(got), `binary came back as ${Object.prototype.toString.call(got)}`);
      return;
    }
    for (const v of Object.values(got)) assertBuffers(v);
  }
}

function assertSameBinary(got, sent) {
  assertBuffers(got);
  assert.deepEqual(normalise(got), normalise(sent));
}

/** Deterministic pseudo-random doubles (mulberry32 bytes) plus hard cases. */
function doubles() {
  const out = [0, -1, 0.1, 1 / 3, 5e-324, 1.1e-200, 2 ** 53 + 2, 2 ** 63, -(2 ** 63), 2.5e-308];
  let a = 42;
  const view = new DataView(new ArrayBuffer(8));
  while (out.length < 300) {
    for (let i = 0; i < 8; i++) {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      view.setUint8(i, ((t ^ (t >>> 14)) >>> 0) & 0xff);
    }
    const d = view.getFloat64(0);
    // notepack (client side) mis-encodes integral numbers beyond 64 bits: leave them out.
    if (Number.isFinite(d) && !(Number.isInteger(d) && Math.abs(d) > 2 ** 63)) out.push(d);
  }
  return out;
}

for (const [mode, transportOpts] of Object.entries(MODES)) {
  const opts = { ...transportOpts, parser };

  describe(`msgpack parser over ${mode}`, () => {
    let socket;
    const connect = async (extra = {}) => {
      socket = await connectSio(server, '/', { ...opts, ...extra });
      await nextEvent(socket, 'auth');
      return socket;
    };

    describe('connect', () => {
      test(`${mode}: auth reaches the server; no auth (notepack's undefined) is {}`, async () => {
        const a = await connectSio(server, '/', { ...opts, auth: { token: 'abc', n: 1, nested: { ok: true } } });
        assert.deepEqual(await nextEvent(a, 'auth'), [{ token: 'abc', n: 1, nested: { ok: true } }]);
        const b = await connectSio(server, '/', opts);
        assert.deepEqual(await nextEvent(b, 'auth'), [{}]);
        assert.notEqual(a.id, b.id);
      });

      test(`${mode}: every message on the wire is binary (one MessagePack map per packet)`, async () => {
        const s = createSio(server, '/', { ...opts, auth: { t: 1 } });
        const kinds = [];
        s.io.on('open', () => {
          s.io.engine.on('packet', (p) => { if (p.type === 'message') kinds.push(typeof p.data); });
        });
        await waitConnect(s);
        await nextEvent(s, 'auth');
        assert.deepEqual(await echo(s, 'x', 1), ['x', 1]);
        assert.ok(kinds.length >= 3, `saw ${kinds.length} messages`);
        assert.ok(kinds.every((k) => k === 'object'), `message kinds: ${kinds}`);
      });

      test(`${mode}: custom namespace with auth; unknown namespace → "Invalid namespace"; middleware refusal`, async () => {
        const c = await connectSio(server, '/custom', { ...opts, auth: { room: 'x' } });
        assert.deepEqual(await nextEvent(c, 'auth'), [{ room: 'x' }]);
        assert.ok(c.connected);

        const nope = createSio(server, '/nope', opts);
        const err = await nope.connectErrors.next();
        assert.equal(err.message, 'Invalid namespace');

        const mw = createSio(server, '/mw', { ...opts, auth: { token: 'bad' } });
        const refused = await mw.connectErrors.next();
        assert.equal(refused.message, 'Not authorized');
        assert.deepEqual(refused.data, { reason: 'bad token' });
        const ok = await connectSio(server, '/mw', { ...opts, auth: { token: 'ok' } });
        assert.ok(ok.connected);
      });
    });

    describe('JSON shapes', () => {
      test(`${mode}: numbers (integers, floats, extremes) and 300 doubles bit-exactly`, async () => {
        await connect();
        const nums = [0, 1, -1, 42, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, 2 ** 32, -(2 ** 31) - 1,
          3.14, -2.5e-10, 1.5e-300, -1e-300, 123.456, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 2 ** 63];
        assert.deepEqual(await echo(socket, ...nums), nums);
        const ds = doubles();
        const [got] = await echo(socket, ds);
        const diffs = ds.filter((x, i) => got[i] !== x);
        assert.deepEqual(diffs, []);
      });

      test(`${mode}: strings with unicode, control characters and packet lookalikes; a 300 KB string`, async () => {
        await connect();
        const strs = ['', 'plain', 'café ñandú', '€ 中文 日本語', '😀🎉👍🏽 𝄞', '\u0000nul\ttab\n\u2028', '"q" \\b',
          '42["looks like a packet"]', '\ufeffBOM', '\u{10ffff}', 'x'.repeat(40), 'y'.repeat(300)];
        assert.deepEqual(await echo(socket, ...strs), strs);
        assert.deepEqual(await echo(socket, Object.fromEntries(strs.map((s) => [s, s]))), [Object.fromEntries(strs.map((s) => [s, s]))]);
        const big = 'é€😀abc'.repeat(30 * 1024);
        const [back] = await echo(socket, big);
        assert.ok(back === big, 'large string differs');
      });

      test(`${mode}: null, booleans, empty containers; undefined stays undefined (MessagePack keeps it)`, async () => {
        await connect();
        assert.deepEqual(await echo(socket, null, true, false, [], {}, '', 0), [null, true, false, [], {}, '', 0]);
        assert.deepEqual(await echo(socket, 1, undefined, 2), [1, undefined, 2]);
        assert.deepEqual(await echo(socket, { a: undefined, b: 1 }, [undefined]), [{ a: undefined, b: 1 }, [undefined]]);
      });

      test(`${mode}: a Date (notepack 2: fixext 8 type 0) arrives as its ISO text, as JSON.stringify makes it`,
        referenceDiffers('Node keeps a Date object and echoes it as a Date'), async () => {
          await connect();
          assert.deepEqual(await echo(socket, new Date(1700000000123)), ['2023-11-14T22:13:20.123Z']);
        });

      test(`${mode}: nested objects and arrays (depth 100, wide objects), 50 arguments, none`, async () => {
        await connect();
        let deep = 'leaf';
        for (let i = 0; i < 100; i++) deep = i % 2 ? [deep, i] : { k: deep, i };
        assert.deepEqual(await echo(socket, deep), [deep]);
        const wide = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`key-${i}`, { i, s: String(i), a: [i, [i]] }]));
        assert.deepEqual(await echo(socket, wide), [wide]);
        const many = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? `s${i}` : { i }));
        assert.deepEqual(await echo(socket, ...many), many);
        assert.deepEqual(await echo(socket), []);
      });

      test(`${mode}: JSON that looks like a placeholder stays JSON; 100 events in one tick stay in order`, async () => {
        await connect();
        const fake = { _placeholder: true, num: 0 };
        assert.deepEqual(await echo(socket, fake, [fake]), [fake, [fake]]);
        for (let i = 0; i < 100; i++) socket.emit('message', i, `m${i}`);
        const got = await socket.queue('message-back').take(100);
        assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => [i, `m${i}`]));
      });
    });

    describe('binary', () => {
      test(`${mode}: a Buffer at top level comes back as a Buffer (MessagePack bin)`, async () => {
        await connect();
        const data = Buffer.from([1, 2, 3, 4]);
        assertSameBinary(await echo(socket, data), [data]);
      });

      test(`${mode}: ArrayBuffer and typed arrays (ext 0) come back with their bytes, as Buffers (bin)`,
        referenceDiffers('Node keeps an ArrayBuffer and echoes it as ext 0, so the client gets an ArrayBuffer'), async () => {
          await connect();
          const ab = new Uint8Array([10, 20, 30]).buffer;
          const u8 = new Uint8Array([255, 0, 127, 128]);
          const u16 = new Uint16Array([1, 0xffff]);
          const empty = Buffer.alloc(0);
          assertSameBinary(await echo(socket, ab, u8, u16, empty), [ab, u8, bytesOf(u16), empty]);
        });

      test(`${mode}: binary nested in objects and arrays, many values, mixed with JSON; 300 KB`, async () => {
        await connect();
        const payload = {
          name: 'file.bin',
          parts: [Buffer.from([1]), { inner: Buffer.from([2, 2]), label: 'x' }, [Buffer.from([3, 3, 3]), null]],
          meta: { flags: [true, false], thumb: Buffer.from([0xff, 0xd8]) },
        };
        const sent = ['before', payload, 7, Buffer.from('tail'), ['a', Buffer.from([0])]];
        assertSameBinary(await echo(socket, ...sent), sent);
        const twenty = Array.from({ length: 20 }, (_, i) => Buffer.from([i, 255 - i]));
        assertSameBinary(await echo(socket, ...twenty), twenty);
        const big = Buffer.alloc(300 * 1024, 7);
        assertSameBinary(await echo(socket, { big }), [{ big }]);
      });

      test(`${mode}: binary and text events interleaved in one tick keep their order`, async () => {
        await connect();
        const sent = Array.from({ length: 30 }, (_, i) => (i % 2 ? [i, Buffer.from([i, 255 - i])] : [i, `t${i}`]));
        for (const args of sent) socket.emit('message', ...args);
        assertSameBinary(await socket.queue('message-back').take(sent.length), sent);
      });
    });

    describe('acks', () => {
      test(`${mode}: client → server acks with JSON, undefined and binary; 50 concurrent`, async () => {
        await connect();
        assert.deepEqual(await socket.emitWithAck('message-with-ack', { a: [1, '2', { 3: false }] }), { a: [1, '2', { 3: false }] });
        assert.deepEqual(await ackArgs(socket, 'message-with-ack', 1, undefined, null), [1, undefined, null]);
        assert.deepEqual(await ackArgs(socket, 'message-with-ack'), []);
        const bin = [Buffer.from([1, 2, 3]), { nested: [Buffer.from([4, 5, 6])] }, 'text'];
        assertSameBinary(await ackArgs(socket, 'message-with-ack', ...bin), bin);
        const replies = await Promise.all(Array.from({ length: 50 }, (_, i) =>
          ackArgs(socket, 'message-with-ack', i, Buffer.from([i]))));
        replies.forEach((r, i) => assertSameBinary(r, [i, Buffer.from([i])]));
      });

      test(`${mode}: server → client acks: JSON and binary answers reach the server; a timeout`, async () => {
        await connect();
        socket.on('question', (data, cb) => cb('answer', { n: data.n + 1 }, [true, null]));
        const res = await socket.emitWithAck('server-ack', 'question', { n: 41 }, 3000);
        assert.deepEqual(res, { ok: ['answer', { n: 42 }, [true, null]] });
        // Binary both ways: in the server's event, and in the client's answer.
        socket.on('bin-question', (data, cb) => { assertBuffers(data); cb(data.file, Buffer.from([7])); });
        const bres = await socket.emitWithAck('server-ack-bin', 'bin-question', { file: Buffer.from([9, 8]) }, 3000);
        assertSameBinary(bres, { ok: [Buffer.from([9, 8]), Buffer.from([7])] });
        socket.on('silent', () => {});
        assert.deepEqual(await socket.emitWithAck('server-ack', 'silent', 'x', 200), { error: 'operation has timed out' });
      });
    });

    describe('rooms and broadcasts', () => {
      test(`${mode}: a room broadcast (with binary) reaches its members only; from a socket, not the sender`, async () => {
        const [a, b, c] = await Promise.all([1, 2, 3].map(() => connectSio(server, '/', opts)));
        await a.emitWithAck('join', 'r');
        await b.emitWithAck('join', 'r');
        assert.deepEqual(await c.emitWithAck('rooms'), [c.id]);
        await c.emitWithAck('op', { from: 'io', to: ['r'], event: 'ev', data: { file: Buffer.from([1, 2]) } });
        // Then a marker to everyone: once c has it, c would have had the room event.
        await a.emitWithAck('op', { from: 'io', event: 'marker', data: 1 });
        for (const s of [a, b]) assertSameBinary(await nextEvent(s, 'ev'), [{ file: Buffer.from([1, 2]) }]);
        await nextEvent(c, 'marker');
        assert.equal(c.queue('ev').length, 0, 'c is not in the room');

        await a.emitWithAck('op', { from: 'socket', broadcast: true, event: 'others', data: 'x' });
        await a.emitWithAck('op', { from: 'io', event: 'marker', data: 2 });
        assert.deepEqual(await nextEvent(b, 'others'), ['x']);
        assert.deepEqual(await nextEvent(c, 'others'), ['x']);
        await nextEvent(a, 'marker');
        await nextEvent(a, 'marker');
        assert.equal(a.queue('others').length, 0, 'the sender is left out');
      });

      test(`${mode}: volatile: what arrives arrives once and in order`, async () => {
        const [a, b] = await Promise.all([1, 2].map(() => connectSio(server, '/', opts)));
        if (mode === 'polling+upgrade') {
          await Promise.all([a, b].map(async (s) => { await waitSioUpgrade(s); await s.emitWithAck('rooms'); }));
        }
        await a.emitWithAck('op', { from: 'io', volatile: true, event: 'v', data: 'first' });
        for (let i = 0; i < 20; i++) a.emit('op', { from: 'io', volatile: true, event: 'v', data: i });
        await a.emitWithAck('op', { from: 'io', event: 'end', data: 0 });
        await nextEvent(b, 'end');
        const seq = b.queue('v').items.splice(0).map((args) => args[0]).filter((x) => x !== 'first');
        assert.deepEqual(seq, [...seq].sort((x, y) => x - y), `out of order ${seq}`);
        assert.equal(new Set(seq).size, seq.length, `duplicates ${seq}`);
        if (mode !== 'polling') assert.ok(seq.length > 0, 'an idle WebSocket client receives volatile events');
      });
    });

    describe('connection state recovery', () => {
      test(`${mode}: restores id, rooms and the missed events (binary included) in order`, async () => {
        const a = await connectSio(recoveryServer, '/', opts);
        const b = await connectSio(recoveryServer, '/', opts);
        await a.emitWithAck('join', 'r');
        const id = a.id;
        await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 0 });
        const first = await nextEvent(a, 'room');
        assert.equal(typeof first[first.length - 1], 'string', 'offset appended as last argument');

        const gone = a.disconnects.next();
        a.io.engine.close();
        assert.equal(await gone, 'forced close');
        await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: { bin: Buffer.from([1]) } });
        await b.emitWithAck('op', { from: 'io', to: [id], event: 'direct', data: 'd' });
        await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 2 });

        const order = [];
        a.onAny((event, ...args) => { if (event !== 'auth') order.push([event, args[0]]); });
        a.connect();
        await waitConnect(a);
        assert.equal(a.id, id, 'same socket id');
        assert.equal(a.recovered, true);
        await nextEvent(a, 'room');
        await nextEvent(a, 'direct');
        await nextEvent(a, 'room');
        assertSameBinary(order, [['room', { bin: Buffer.from([1]) }], ['direct', 'd'], ['room', 2]]);
        assert.deepEqual(await a.emitWithAck('rooms', null), [id, 'r'].sort());
      });
    });
  });
}
