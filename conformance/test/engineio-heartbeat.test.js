'use strict';
// Heartbeat: server pings keep idle sessions alive; a client that does not answer
// is dropped after roughly pingInterval + pingTimeout.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const {
  MODES, TIMEOUT, sleep, waitFor, openClient, closeClients, rawWsHandshake, rawPollingHandshake,
  poll, post, wsClosed,
} = require('./support/helpers');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const IDLE_MS = 2000;

// Raw tests: the official suite's tight values (a pong must come back within 200 ms).
let server;
// Official-client keep-alive tests: same interval, but 1 s for the pong, so that a
// loaded machine stalling the client's event loop does not end the session.
const LENIENT_PING_TIMEOUT = 1000;
let lenient;
before(async () => {
  [server, lenient] = await Promise.all([
    startServer([
      '--ping-interval', String(PING_INTERVAL),
      '--ping-timeout', String(PING_TIMEOUT),
      '--max-payload', '1000000',
    ]),
    startServer([
      '--ping-interval', String(PING_INTERVAL),
      '--ping-timeout', String(LENIENT_PING_TIMEOUT),
    ]),
  ]);
});
after(async () => {
  closeClients();
  await Promise.all([server.stop(), lenient.stop()]);
});
afterEach(() => closeClients());

for (const [mode, opts] of Object.entries(MODES)) {
  test(`${mode}: heartbeat keeps an idle session open for ${IDLE_MS} ms at pingInterval ${PING_INTERVAL} (pings counted, echo still works)`, async () => {
    const socket = await openClient(lenient, opts);
    let pings = 0;
    let closed = null;
    socket.on('ping', () => { pings += 1; });
    socket.on('close', (reason) => { closed = reason; });
    const sid = socket.id;
    // The protocol is about time here: stay idle well past several intervals.
    await sleep(IDLE_MS);
    assert.equal(closed, null, `session closed while idle: ${closed}`);
    assert.equal(socket.readyState, 'open');
    assert.equal(socket.id, sid);
    // 2000 ms / 300 ms ≈ 6 pings; allow for a slow machine.
    assert.ok(pings >= 3, `expected at least 3 pings in ${IDLE_MS} ms, got ${pings}`);
    socket.send('still-alive');
    assert.equal(await socket.received.next(), 'still-alive');
  });
}

describe('raw heartbeat', () => {
  test('websocket (raw ws): no pong → server sends a ping, then closes the socket after ~pingInterval+pingTimeout', async () => {
    const { ws } = await rawWsHandshake(server);
    // Measured from before the connection started: the server's clock for this session
    // starts later (when it opens the session), so the close cannot come earlier than
    // pingInterval+pingTimeout after this, however slowly the open packet travels. (The
    // open packet's arrival is no lower bound: on a loaded machine it can come late.)
    const start = ws.createdAt;
    const frames = [];
    ws.on('message', (d, isBinary) => frames.push(isBinary ? d : d.toString()));
    const { at } = await wsClosed(ws, TIMEOUT);
    const elapsed = at - start;
    assert.ok(frames.includes('2'), `expected a ping before the close, got ${JSON.stringify(frames)}`);
    // 2 ms: Date.now() counts whole milliseconds at both ends.
    assert.ok(elapsed >= PING_INTERVAL + PING_TIMEOUT - 2,
      `closed after ${elapsed} ms, before pingInterval+pingTimeout`);
    assert.ok(elapsed < 4000, `closed only after ${elapsed} ms`);
  });

  test('websocket (raw ws): answering pings with "3" keeps the session alive past several intervals', async () => {
    const { ws } = await rawWsHandshake(lenient);
    let pongs = 0;
    ws.on('message', (d, isBinary) => {
      if (!isBinary && d.toString() === '2') { ws.send('3'); pongs += 1; }
    });
    await sleep(IDLE_MS);
    assert.equal(ws.isClosed, false, 'server closed a session that answered every ping');
    assert.ok(pongs >= 3, `expected at least 3 pings, got ${pongs}`);
    ws.send('4ping-pong-ok');
    let frame;
    do { frame = await ws.received.next(); } while (frame === '2');
    assert.equal(frame, '4ping-pong-ok');
  });

  test('polling (raw): open, never poll → the session times out and a later GET gets 400 "Session ID unknown"', async () => {
    const { sid } = await rawPollingHandshake(server);
    // Sleep well past pingInterval + pingTimeout (500 ms): the protocol deadline is the point.
    await sleep(3 * (PING_INTERVAL + PING_TIMEOUT));
    const res = await poll(server, sid);
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
  });

  test('polling (raw): a pong-less session is gone even for POST (400 "Session ID unknown")', async () => {
    const { sid } = await rawPollingHandshake(server);
    // Poll once so the ping is actually delivered, then never answer it.
    const first = await poll(server, sid);
    assert.equal(first.status, 200);
    assert.equal(first.body, '2');
    await sleep(3 * PING_TIMEOUT + 200);
    const res = await post(server, sid, '4too-late');
    assert.equal(res.status, 400);
    assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
  });

  test('polling (raw): answering every ping keeps the session alive for several intervals', async () => {
    const { sid } = await rawPollingHandshake(lenient);
    const deadline = Date.now() + IDLE_MS;
    let pings = 0;
    while (Date.now() < deadline) {
      const res = await poll(lenient, sid);
      assert.equal(res.status, 200, `GET failed: ${res.status} ${res.body}`);
      assert.equal(res.body, '2');
      pings += 1;
      const pong = await post(lenient, sid, '3');
      assert.equal(pong.status, 200);
      assert.equal(pong.body, 'ok');
    }
    assert.ok(pings >= 3, `expected at least 3 pings, got ${pings}`);
    const echoed = post(lenient, sid, '4alive');
    const res = await poll(lenient, sid);
    assert.equal((await echoed).status, 200);
    assert.equal(res.status, 200);
    assert.ok(res.body === '4alive' || res.body.split('\x1e').includes('4alive'), res.body);
  });

  test('client side: the official client emits "close" when its session is dropped after missed pongs', async () => {
    // Block the client's pong by making its transport drop outgoing pong packets.
    const socket = await openClient(server, MODES.websocket);
    const origSend = socket.transport.send.bind(socket.transport);
    socket.transport.send = (packets) => origSend(packets.filter((p) => p.type !== 'pong'));
    const [reason] = await waitFor(socket, 'close');
    assert.ok(['transport close', 'ping timeout', 'transport error'].includes(reason), reason);
  });
});
