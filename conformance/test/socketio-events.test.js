'use strict';
// Socket.IO events and acks through the official socket.io-client 4.8: JSON of every
// shape echoed by `message` → `message-back`, binary attachments (Buffer,
// ArrayBuffer, typed arrays, nested, several, mixed with JSON), acks both ways
// (`message-with-ack`, `server-ack`) and ack timeouts.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const { MODES, TIMEOUT, bytesOf, closeClients } = require('./support/helpers');
const { connectSio, nextEvent, closeSioClients } = require('./support/socketio');

let server;
before(async () => {
  server = await startServer([]);
});
after(async () => {
  closeSioClients();
  closeClients();
  await server.stop();
});
afterEach(() => {
  closeSioClients();
  closeClients();
});

/** Emits `event` with `args` and resolves with the full argument list of the ack. */
function ackArgs(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(TIMEOUT).emit(event, ...args, (err, ...reply) => (err ? reject(err) : resolve(reply)));
  });
}

/** Echo through `message` → `message-back`; resolves with the echoed argument list. */
async function echo(socket, ...args) {
  socket.emit('message', ...args);
  return nextEvent(socket, 'message-back');
}

/** Deterministic pseudo-random generator (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bytes(length, seed = 1) {
  const next = rng(seed);
  return Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
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

/** Asserts that every binary value in `got` is a Buffer (what the Node client hands out). */
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

const UNICODE = [
  '', 'plain ascii',
  'café ñandú Ünïcödé', '€ 中文 日本語 한국어', '😀🎉👍🏽 𝄞 𠜎', '👨‍👩‍👧‍👦 family, 🇫🇷 flag',
  'e\u0301 combining', '\u0000nul\ttab\nnewline\r\u007f\u2028\u2029', '"quoted" \\backslash\\ /slash/',
  '{"json":[1,2]}', '42["looks like a packet"]', '\ufeffBOM', '\uffff max BMP', '\u{10ffff} max code point',
];

/** Doubles that need exact (correctly rounded) parsing to survive a JSON round trip. */
function hardDoubles() {
  const out = [
    0, -1, 1, 0.1, 0.2, 0.30000000000000004, 1 / 3, 3.14, -2.5e-10, 1e21, 1e300, 5e-324, 2.2250738585072014e-308,
    1.7976931348623157e308, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 2 ** 63, -(2 ** 63),
    2 ** 64, 123456789012345680000, 1.2962574186305739e+165, -6.0606809686696975e+209, -2.34112721731482e+263,
    1.1540189085631377e-41, 4.647893594823713e-181,
  ];
  const next = rng(42);
  const view = new DataView(new ArrayBuffer(8));
  while (out.length < 500) {
    for (let i = 0; i < 8; i++) view.setUint8(i, Math.floor(next() * 256));
    const d = view.getFloat64(0);
    if (Number.isFinite(d)) out.push(d);
  }
  return out;
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`events over ${mode}`, () => {
    let socket;
    const connect = async () => {
      socket = await connectSio(server, '/', opts);
      await nextEvent(socket, 'auth');
      return socket;
    };

    describe('JSON', () => {
      test(`${mode}: numbers (integers, floats, extremes) come back unchanged`, async () => {
        await connect();
        const nums = [0, 1, -1, 42, 3.14, -2.5e-10, 1e300, -1e-300, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, 1e21];
        assert.deepEqual(await echo(socket, ...nums), nums);
      });

      test(`${mode}: doubles round-trip bit-exactly (500 values needing correctly rounded parsing)`, async () => {
        await connect();
        const nums = hardDoubles();
        const [got] = await echo(socket, nums);
        const diffs = [];
        got.forEach((x, i) => { if (x !== nums[i]) diffs.push(`${JSON.stringify(nums[i])} → ${JSON.stringify(x)}`); });
        assert.equal(got.length, nums.length);
        assert.deepEqual(diffs, [], `${diffs.length} of ${nums.length} doubles changed, e.g. ${diffs.slice(0, 3).join(', ')}`);
      });

      test(`${mode}: strings with unicode, escapes, control characters and packet lookalikes`, async () => {
        await connect();
        assert.deepEqual(await echo(socket, ...UNICODE), UNICODE);
        for (const s of UNICODE) assert.deepEqual(await echo(socket, { [s]: s }), [{ [s]: s }]);
      });

      test(`${mode}: a 300 KB string`, async () => {
        await connect();
        const s = 'é€😀abc'.repeat(30 * 1024);
        const [got] = await echo(socket, s);
        assert.ok(got === s, 'large string differs');
      });

      test(`${mode}: null, booleans, empty containers, undefined (→ null)`, async () => {
        await connect();
        assert.deepEqual(await echo(socket, null, true, false, [], {}, '', 0), [null, true, false, [], {}, '', 0]);
        // JSON has no undefined: inside the argument array it is sent as null.
        assert.deepEqual(await echo(socket, 1, undefined, 2), [1, null, 2]);
        assert.deepEqual(await echo(socket, { a: undefined, b: 1 }), [{ b: 1 }]);
      });

      test(`${mode}: nested objects and arrays (depth 100, wide objects)`, async () => {
        await connect();
        let deep = 'leaf';
        for (let i = 0; i < 100; i++) deep = i % 2 ? [deep, i] : { k: deep, i };
        assert.deepEqual(await echo(socket, deep), [deep]);
        const wide = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`key-${i}`, { i, s: String(i), a: [i, [i]] }]));
        assert.deepEqual(await echo(socket, wide), [wide]);
        const mixed = { a: [1, { b: [null, { c: 'd' }, [[[]]]] }], '': 'empty key', 'k"ey': "v'al", '😀': '🎉' };
        assert.deepEqual(await echo(socket, mixed), [mixed]);
      });

      test(`${mode}: many arguments (50) and no arguments at all`, async () => {
        await connect();
        const many = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? `s${i}` : { i }));
        assert.deepEqual(await echo(socket, ...many), many);
        assert.deepEqual(await echo(socket), []);
      });

      test(`${mode}: JSON that looks like a binary placeholder stays JSON in a plain event`, async () => {
        await connect();
        const fake = { _placeholder: true, num: 0 };
        assert.deepEqual(await echo(socket, fake, [fake]), [fake, [fake]]);
      });

      test(`${mode}: 100 events sent in one tick come back in order`, async () => {
        await connect();
        for (let i = 0; i < 100; i++) socket.emit('message', i, `m${i}`);
        const got = await socket.queue('message-back').take(100);
        assert.deepEqual(got, Array.from({ length: 100 }, (_, i) => [i, `m${i}`]));
      });
    });

    describe('binary', () => {
      test(`${mode}: a Buffer comes back as a Buffer with the same bytes`, async () => {
        await connect();
        const data = Buffer.from([1, 2, 3, 4]);
        const [got] = await echo(socket, data);
        assertSameBinary(got, data);
      });

      test(`${mode}: ArrayBuffer, Uint8Array, offset views, other typed arrays, empty buffer`, async () => {
        await connect();
        const ab = new Uint8Array([10, 20, 30]).buffer;
        const u8 = new Uint8Array([255, 0, 127, 128]);
        const view = new Uint8Array([9, 9, 1, 2, 3, 9]).subarray(2, 5);
        const u16 = new Uint16Array([1, 0xffff]);
        const empty = Buffer.alloc(0);
        const got = await echo(socket, ab, u8, view, u16, empty);
        assert.equal(got.length, 5);
        assertSameBinary(got, [ab, u8, Buffer.from([1, 2, 3]), bytesOf(u16), empty]);
      });

      test(`${mode}: binary nested in objects and arrays, several attachments, mixed with JSON`, async () => {
        await connect();
        const payload = {
          name: 'file.bin',
          size: 3,
          parts: [Buffer.from([1]), { inner: Buffer.from([2, 2]), label: 'x' }, [Buffer.from([3, 3, 3]), null]],
          meta: { created: '2024', flags: [true, false], thumb: Buffer.from([0xff, 0xd8]) },
        };
        const got = await echo(socket, 'before', payload, 7, Buffer.from('tail'), ['a', Buffer.from([0])]);
        assertSameBinary(got, ['before', payload, 7, Buffer.from('tail'), ['a', Buffer.from([0])]]);
      });

      test(`${mode}: 10 attachments, the same Buffer twice, all 256 byte values`, async () => {
        await connect();
        const ten = Array.from({ length: 10 }, (_, i) => bytes(i * 7 + 1, i + 1));
        assertSameBinary(await echo(socket, ...ten), ten);
        const same = Buffer.from([5, 6, 7]);
        assertSameBinary(await echo(socket, same, { again: same }), [same, { again: same }]);
        const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        assertSameBinary(await echo(socket, all), [all]);
      });

      test(`${mode}: a 300 KB binary attachment`, async () => {
        await connect();
        const big = bytes(300 * 1024, 9);
        assertSameBinary(await echo(socket, { big }), [{ big }]);
      });

      test(`${mode}: binary and text events interleaved in one tick keep their order`, async () => {
        await connect();
        const sent = Array.from({ length: 30 }, (_, i) => (i % 2 ? [i, Buffer.from([i, 255 - i])] : [i, `t${i}`]));
        for (const args of sent) socket.emit('message', ...args);
        const got = await socket.queue('message-back').take(sent.length);
        assertSameBinary(got, sent);
      });
    });

    describe('acks', () => {
      test(`${mode}: client → server ack with JSON values (emitWithAck and callbacks with several args)`, async () => {
        await connect();
        assert.deepEqual(await socket.emitWithAck('message-with-ack', { a: [1, '2', { 3: false }] }), { a: [1, '2', { 3: false }] });
        assert.deepEqual(await ackArgs(socket, 'message-with-ack', 1, '2', { 3: [false] }, null, '😀'), [1, '2', { 3: [false] }, null, '😀']);
        assert.deepEqual(await ackArgs(socket, 'message-with-ack'), []);
      });

      test(`${mode}: client → server ack with binary`, async () => {
        await connect();
        const args = [Buffer.from([1, 2, 3]), { nested: [Buffer.from([4, 5, 6])] }, 'text', new Uint8Array([7]).buffer];
        assertSameBinary(await ackArgs(socket, 'message-with-ack', ...args), args);
      });

      test(`${mode}: 100 concurrent acks each get their own answer`, async () => {
        await connect();
        const replies = await Promise.all(Array.from({ length: 100 }, (_, i) =>
          (i % 10 === 0 ? ackArgs(socket, 'message-with-ack', i, Buffer.from([i])) : ackArgs(socket, 'message-with-ack', i, `v${i}`))));
        replies.forEach((r, i) => {
          if (i % 10 === 0) assertSameBinary(r, [i, Buffer.from([i])]);
          else assert.deepEqual(r, [i, `v${i}`]);
        });
      });

      test(`${mode}: server → client ack: the client's answer reaches the server ({ok: [...args]})`, async () => {
        await connect();
        const seen = [];
        socket.on('question', (data, cb) => { seen.push(data); cb('answer', { n: data.n + 1 }, [true]); });
        const res = await socket.emitWithAck('server-ack', 'question', { n: 41 }, 3000);
        assert.deepEqual(seen, [{ n: 41 }]);
        assert.deepEqual(res, { ok: ['answer', { n: 42 }, [true]] });
        socket.on('question-1', (data, cb) => cb(data));
        assert.deepEqual(await socket.emitWithAck('server-ack', 'question-1', 'é😀', 3000), { ok: ['é😀'] });
      });

      test(`${mode}: server → client ack: no answer → {error: 'operation has timed out'} after timeoutMs`, async () => {
        await connect();
        let asked = 0;
        socket.on('silent', () => { asked += 1; }); // receives the event, never acks
        const t0 = Date.now();
        const res = await socket.emitWithAck('server-ack', 'silent', 'x', 300);
        const elapsed = Date.now() - t0;
        assert.deepEqual(res, { error: 'operation has timed out' });
        assert.equal(asked, 1);
        assert.ok(elapsed >= 250, `answered after ${elapsed} ms, before the 300 ms timeout`);
        // A late answer is ignored and the connection keeps working.
        let lateSent;
        const lateDone = new Promise((resolve) => { lateSent = resolve; });
        socket.on('late', (d, cb) => setTimeout(() => { cb('too late'); lateSent(); }, 400));
        assert.deepEqual(await socket.emitWithAck('server-ack', 'late', 1, 100), { error: 'operation has timed out' });
        await lateDone;
        assert.deepEqual(await socket.emitWithAck('message-with-ack', 'after'), 'after');
      });

      test(`${mode}: client-side ack timeout: timeout(100).emitWithAck of an unhandled event rejects`, async () => {
        await connect();
        const t0 = Date.now();
        await assert.rejects(socket.timeout(100).emitWithAck('no-such-event', 1), /operation has timed out/);
        assert.ok(Date.now() - t0 >= 90);
        const err = await new Promise((resolve) => socket.timeout(100).emit('no-such-event', (e) => resolve(e)));
        assert.ok(err instanceof Error);
        assert.equal(socket.connected, true);
        assert.deepEqual(await socket.emitWithAck('message-with-ack', 'still fine'), 'still fine');
      });
    });
  });
}

describe('edge cases', () => {
  test('a string with a lone UTF-16 surrogate is echoed (Node) without closing the connection', async () => {
    // JavaScript strings may hold unpaired surrogates; JSON.stringify escapes them
    // (`"\ud800"`). Node echoes them as is. A server that cannot represent them may
    // substitute U+FFFD, but must not drop the client.
    const socket = await connectSio(server, '/', MODES.websocket);
    await nextEvent(socket, 'auth');
    socket.emit('message', 'x\ud800y', '\udfff');
    const got = await nextEvent(socket, 'message-back');
    assert.ok(got[0] === 'x\ud800y' || got[0] === 'x\ufffdy', JSON.stringify(got));
    assert.ok(got[1] === '\udfff' || got[1] === '\ufffd', JSON.stringify(got));
    assert.equal(socket.connected, true);
  });
});
