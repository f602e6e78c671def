'use strict';
// Message echo through the official engine.io-client: text, binary, unicode, large
// messages, and bursts (batched into one payload over polling).

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const { MODES, createClient, openClient, waitForUpgrade, closeClients, bytesOf } = require('./support/helpers');

const MAX_PAYLOAD = 1000000;
const LARGE = 600 * 1024; // ≥ 500 KB; base64 over polling stays under MAX_PAYLOAD

let server;
before(async () => {
  // Default heartbeat (25 s / 20 s): these tests are about data, not timing.
  server = await startServer(['--max-payload', String(MAX_PAYLOAD)]);
});
after(async () => {
  closeClients();
  await server.stop();
});
afterEach(() => closeClients());

/** A deterministic pseudo-random byte pattern. */
function pattern(length, seed = 1) {
  const buf = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    buf[i] = x >> 16;
  }
  return buf;
}

function assertBuffer(received, expected) {
  assert.ok(Buffer.isBuffer(received), `expected a Buffer, got ${Object.prototype.toString.call(received)}`);
  assert.ok(received.equals(bytesOf(expected)), `bytes differ (got ${received.length}, want ${bytesOf(expected).length})`);
}

const UNICODE = [
  'café ñandú Ünïcödé',                      // 2-byte UTF-8
  '€ 中文 日本語 한국어',                       // 3-byte UTF-8
  '😀🎉👍🏽 𝄞 𠜎',                               // 4-byte UTF-8 / UTF-16 surrogate pairs
  '👨‍👩‍👧‍👦 family, 🇫🇷 flag',                      // ZWJ sequences, regional indicators
  'mixed: a€😀b\u00e9\u0301 combining',        // combining mark
  '\u0000nul\ttab\nnewline\u007f',              // control characters
  '"quoted" \\backslash\\ {"json":[1,2]}',      // JSON-looking text
  '4 starts with a digit', 'b64lookalike', '2', '3probe', '1', '6',
];

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`messages over ${mode}`, () => {
    test(`${mode}: echoes a text message`, async () => {
      const socket = await openClient(server, opts);
      socket.send('hello');
      assert.equal(await socket.received.next(), 'hello');
    });

    test(`${mode}: echoes unicode text (multibyte, emoji, surrogate pairs) and packet-lookalike text`, async () => {
      const socket = await openClient(server, opts);
      for (const s of UNICODE) socket.send(s);
      assert.deepEqual(await socket.received.take(UNICODE.length), UNICODE);
    });

    test(`${mode}: echoes a Buffer as a Buffer with identical bytes`, async () => {
      const socket = await openClient(server, opts);
      const data = Buffer.from([1, 2, 3, 4]);
      socket.send(data);
      assertBuffer(await socket.received.next(), data);
    });

    test(`${mode}: echoes an ArrayBuffer, a Uint8Array and an offset Uint8Array view (bytes compared)`, async () => {
      const socket = await openClient(server, opts);
      const ab = new Uint8Array([10, 20, 30, 40, 50]).buffer;
      const u8 = new Uint8Array([255, 0, 127, 128]);
      const big = new Uint8Array([9, 9, 1, 2, 3, 9, 9]);
      const view = big.subarray(2, 5); // bytes 1 2 3 only
      socket.send(ab);
      socket.send(u8);
      socket.send(view);
      const [a, b, c] = await socket.received.take(3);
      assertBuffer(a, ab);
      assertBuffer(b, u8);
      assertBuffer(c, Buffer.from([1, 2, 3]));
    });

    test(`${mode}: echoes all 256 byte values, and a binary message arrives as ArrayBuffer with binaryType 'arraybuffer'`, async () => {
      const socket = await openClient(server, opts);
      socket.binaryType = 'arraybuffer';
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      socket.send(all);
      const got = await socket.received.next();
      assert.ok(got instanceof ArrayBuffer, `expected an ArrayBuffer, got ${Object.prototype.toString.call(got)}`);
      assert.ok(Buffer.from(got).equals(all));
    });

    test(`${mode}: keeps text and binary apart ('4…' text vs binary bytes 0x34)`, async () => {
      const socket = await openClient(server, opts);
      socket.send('4');
      socket.send(Buffer.from('4'));
      socket.send('');
      socket.send(Buffer.alloc(0));
      const [t, b, e, eb] = await socket.received.take(4);
      assert.equal(t, '4');
      assertBuffer(b, Buffer.from('4'));
      // An empty text message is the bare packet "4"; engine.io-parser decodes it as
      // a message without data, so the client hands out undefined (or '').
      assert.ok(e === '' || e === undefined, `empty text came back as ${JSON.stringify(e)}`);
      assertBuffer(eb, Buffer.alloc(0));
    });

    test(`${mode}: echoes a ${LARGE / 1024} KB text message`, async () => {
      const socket = await openClient(server, opts);
      const text = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(LARGE / 36)).slice(0, LARGE);
      socket.send(text);
      const got = await socket.received.next(20000);
      assert.equal(typeof got, 'string');
      assert.equal(got.length, text.length);
      assert.ok(got === text, 'large text differs');
    });

    test(`${mode}: echoes a large multibyte text message (~600 KB of UTF-8)`, async () => {
      const socket = await openClient(server, opts);
      const text = 'é€😀'.repeat(Math.ceil(LARGE / 9)); // 9 UTF-8 bytes per repeat
      socket.send(text);
      const got = await socket.received.next(20000);
      assert.ok(got === text, 'large unicode text differs');
    });

    test(`${mode}: echoes a ${LARGE / 1024} KB binary message`, async () => {
      const socket = await openClient(server, opts);
      const data = pattern(LARGE, 7);
      socket.send(data);
      assertBuffer(await socket.received.next(20000), data);
    });

    test(`${mode}: echoes 100 messages sent in one tick, in order`, async () => {
      const socket = await openClient(server, opts);
      const sent = Array.from({ length: 100 }, (_, i) => `msg-${i}`);
      for (const m of sent) socket.send(m);
      assert.deepEqual(await socket.received.take(sent.length), sent);
    });

    test(`${mode}: echoes interleaved text and binary messages sent in one tick, in order`, async () => {
      const socket = await openClient(server, opts);
      const sent = [];
      for (let i = 0; i < 30; i++) sent.push(i % 2 ? Buffer.from([i, i + 1, 255 - i]) : `text-${i}`);
      for (const m of sent) socket.send(m);
      const got = await socket.received.take(sent.length);
      got.forEach((g, i) => {
        if (typeof sent[i] === 'string') assert.equal(g, sent[i], `message ${i}`);
        else assertBuffer(g, sent[i]);
      });
    });

    test(`${mode}: echoes a burst whose total exceeds maxPayload (12 × 100 KB), in order`, async () => {
      const socket = await openClient(server, opts);
      const sent = Array.from({ length: 12 }, (_, i) => String.fromCharCode(65 + i).repeat(100 * 1024));
      for (const m of sent) socket.send(m);
      const got = await socket.received.take(sent.length, 30000);
      got.forEach((g, i) => assert.ok(g === sent[i], `message ${i} differs`));
    });
  });
}

describe('polling batching', () => {
  test('polling: messages sent in one tick are batched into few POSTs and all echoed in order', async () => {
    const socket = await openClient(server, MODES.polling);
    let flushes = 0;
    socket.on('flush', () => { flushes += 1; });
    const sent = Array.from({ length: 50 }, (_, i) => (i % 5 === 4 ? Buffer.from([i]) : `batched-${i}`));
    for (const m of sent) socket.send(m);
    const got = await socket.received.take(sent.length);
    got.forEach((g, i) => {
      if (typeof sent[i] === 'string') assert.equal(g, sent[i]);
      else assertBuffer(g, sent[i]);
    });
    // The first send goes out alone; the other 49 wait for it and leave as one payload.
    assert.ok(flushes <= 3, `expected the burst to be batched, got ${flushes} POSTs`);
  });

  test('polling: messages sent before open are delivered once the session opens', async () => {
    const socket = createClient(server, MODES.polling);
    const sent = ['early-1', 'early-2', Buffer.from([7, 7, 7])];
    for (const m of sent) socket.send(m);
    const got = await socket.received.take(3);
    assert.equal(got[0], 'early-1');
    assert.equal(got[1], 'early-2');
    assertBuffer(got[2], sent[2]);
  });

  test('polling+upgrade: messages keep echoing in order across the upgrade', async () => {
    const socket = await openClient(server, MODES['polling+upgrade']);
    const sent = [];
    let n = 0;
    const sendSome = (k) => { for (let i = 0; i < k; i++) { const m = `u-${n++}`; sent.push(m); socket.send(m); } };
    sendSome(10);
    socket.once('upgrading', () => sendSome(10));
    await waitForUpgrade(socket);
    sendSome(10);
    assert.equal(socket.transport.name, 'websocket');
    assert.deepEqual(await socket.received.take(sent.length), sent);
  });
});
