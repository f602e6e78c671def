'use strict';
// Closing a session: server-initiated (`server-close` message), client-initiated
// (socket.close()), and a message over maxPayload.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const {
  MODES, referenceDiffers, waitFor, openClient, waitForUpgrade, closeClients, rawWsHandshake,
  rawPollingHandshake, poll, post, wsClosed, waitSessionGone,
} = require('./support/helpers');

const SMALL_MAX_PAYLOAD = 1000;

let server; // default heartbeat, maxPayload 1e6
let small; // maxPayload 1000
before(async () => {
  [server, small] = await Promise.all([
    startServer(['--max-payload', '1000000']),
    startServer(['--max-payload', String(SMALL_MAX_PAYLOAD)]),
  ]);
});
after(async () => {
  closeClients();
  await Promise.all([server.stop(), small.stop()]);
});
afterEach(() => closeClients());

/** Opens a client in `mode`; for polling+upgrade, waits until it runs on WebSocket. */
async function openIn(srv, mode) {
  const socket = await openClient(srv, MODES[mode]);
  if (mode === 'polling+upgrade') await waitForUpgrade(socket);
  // make sure the session is fully usable before the close under test
  socket.send('ready?');
  assert.equal(await socket.received.next(), 'ready?');
  return socket;
}

describe('server-initiated close', () => {
  for (const mode of Object.keys(MODES)) {
    test(`${mode}: 'server-close' makes the server close the session → client 'close' event`, async () => {
      const socket = await openIn(server, mode);
      const sid = socket.id;
      const closed = waitFor(socket, 'close');
      socket.send('server-close');
      const [reason] = await closed;
      assert.equal(reason, 'transport close');
      assert.equal(socket.readyState, 'closed');
      await waitSessionGone(server, sid);
    });
  }

  test('polling (raw): \'server-close\' → the pending GET returns the close packet "1"', async () => {
    const { sid } = await rawPollingHandshake(server);
    const pending = poll(server, sid);
    const sent = await post(server, sid, '4server-close');
    assert.equal(sent.status, 200);
    const res = await pending;
    assert.equal(res.status, 200);
    // "1", or "6\x1e1" if the GET had not reached the server before the close.
    assert.ok(res.body === '1' || res.body.split('\x1e').pop() === '1', JSON.stringify(res.body));
    await waitSessionGone(server, sid);
  });

  test('websocket (raw): \'server-close\' → the server closes the WebSocket', async () => {
    const { ws, sid } = await rawWsHandshake(server);
    ws.send('4server-close');
    await wsClosed(ws);
    await waitSessionGone(server, sid);
  });
});

describe('client-initiated close', () => {
  for (const mode of Object.keys(MODES)) {
    test(`${mode}: socket.close() → the server forgets the session (GET with its sid → 400 "Session ID unknown")`, async () => {
      const socket = await openIn(server, mode);
      const sid = socket.id;
      // Let any POST still in flight finish, so that close() writes the close packet at once.
      if (socket.writeBuffer.length) await waitFor(socket, 'drain', { failOn: ['close'] });
      const transport = socket.transport;
      const closed = waitFor(socket, 'close');
      socket.close();
      // For polling, close() has just POSTed the close packet; the transport's 'drain' is
      // that POST's reply, i.e. the server has processed it. Listen only now: close()
      // removes the transport's listeners.
      const closeAcked = transport.name === 'polling' ? waitFor(transport, 'drain') : null;
      const [reason] = await closed;
      assert.equal(reason, 'forced close');
      if (closeAcked) await closeAcked;
      const res = await waitSessionGone(server, sid);
      assert.deepEqual(JSON.parse(res.body), { code: 1, message: 'Session ID unknown' });
    });
  }

  test('websocket (raw): a close frame from the client ends the session', async () => {
    const { ws, sid } = await rawWsHandshake(server);
    ws.close(1000);
    await wsClosed(ws);
    await waitSessionGone(server, sid);
  });

  test(
    'websocket (raw): a "1" packet makes the server close the socket at once (before the first ping)',
    referenceDiffers('PROTOCOL.md §1.9: Node ignores a client "1" over WebSocket and only drops the session on ping timeout'),
    async () => {
      // Short ping interval so that a server ignoring "1" is caught by a ping first.
      const quick = await startServer(['--ping-interval', '1000', '--ping-timeout', '5000']);
      try {
        const { ws } = await rawWsHandshake(quick);
        ws.send('1');
        const frames = [];
        ws.on('message', (d, isBinary) => frames.push(isBinary ? '<binary>' : d.toString()));
        await wsClosed(ws, 3000);
        assert.deepEqual(frames.filter((f) => f === '2'), [], 'server kept the session until it pinged');
      } finally {
        await quick.stop();
      }
    });
});

describe('maxPayload', () => {
  test(`websocket: a ${2 * SMALL_MAX_PAYLOAD}-byte message over maxPayload ${SMALL_MAX_PAYLOAD} closes the session`, async () => {
    const socket = await openIn(small, 'websocket');
    const closed = waitFor(socket, 'close');
    socket.send('x'.repeat(2 * SMALL_MAX_PAYLOAD));
    const [reason] = await closed;
    assert.ok(['transport close', 'transport error'].includes(reason), reason);
  });

  test('websocket (raw): a frame over maxPayload gets close code 1009', async () => {
    const { ws, handshake } = await rawWsHandshake(small);
    assert.equal(handshake.maxPayload, SMALL_MAX_PAYLOAD);
    ws.send('4' + 'x'.repeat(2 * SMALL_MAX_PAYLOAD));
    const { code } = await wsClosed(ws);
    assert.equal(code, 1009);
  });

  test(`polling: a ${2 * SMALL_MAX_PAYLOAD}-byte message over maxPayload ${SMALL_MAX_PAYLOAD} → client 'close' (transport error)`, async () => {
    const socket = await openIn(small, 'polling');
    const closed = waitFor(socket, 'close');
    socket.send('x'.repeat(2 * SMALL_MAX_PAYLOAD));
    const [reason] = await closed;
    // The POST is refused (413 → 'transport error'). A server that also closes the session
    // answers the pending GET with "1", which may reach the client first ('transport close').
    assert.ok(['transport error', 'transport close'].includes(reason), reason);
  });

  test('polling (raw): a POST body over maxPayload is refused (4xx)', async () => {
    const { sid } = await rawPollingHandshake(small);
    const res = await post(small, sid, '4' + 'x'.repeat(2 * SMALL_MAX_PAYLOAD)).catch(() => ({ status: 'connection dropped' }));
    assert.ok(res.status === 'connection dropped' || (res.status >= 400 && res.status < 500), `status ${res.status}`);
  });

  test('polling (raw): a POST body of exactly maxPayload bytes is accepted and echoed', async () => {
    const { sid } = await rawPollingHandshake(small);
    const body = '4' + 'y'.repeat(SMALL_MAX_PAYLOAD - 1);
    const res = await post(small, sid, body);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'ok');
    const echoed = await poll(small, sid);
    assert.equal(echoed.status, 200);
    assert.equal(echoed.body, body);
  });

  test('websocket (raw): a frame of exactly maxPayload bytes is accepted and echoed', async () => {
    const { ws } = await rawWsHandshake(small, { autoPong: true });
    const frame = '4' + 'z'.repeat(SMALL_MAX_PAYLOAD - 1);
    ws.send(frame);
    assert.equal(await ws.received.next(), frame);
  });
});
