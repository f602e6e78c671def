'use strict';
// Disconnections and their reasons, on both sides. The server records the reason of
// every `/` socket it loses; another client reads them with the `reasons` event.
// Client-level cases run over polling, websocket and polling+upgrade; ping timeout and
// parse error use raw clients (ws / fetch).

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const {
  MODES, TIMEOUT, waitFor, until, wsClosed, closeClients, referenceDiffers, request,
} = require('./support/helpers');
const {
  connectSio, createSioOn, waitConnect, nextEvent, closeSioClients, rawSioConnect, nextNonPing,
  sioPollingHandshake, sioPoll, sioPost,
} = require('./support/socketio');

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

/** Waits until the server has recorded a disconnect reason for socket `id`; returns it. */
async function serverReason(srv, id, observer) {
  const obs = observer || await connectSio(srv, '/', MODES.websocket);
  let reason;
  await until(async () => {
    // With a timeout: an observer that lost its connection must fail the wait, not hang it.
    const list = await obs.timeout(TIMEOUT).emitWithAck('reasons');
    const hit = list.find(([sid]) => sid === id);
    reason = hit && hit[1];
    return hit !== undefined;
  }, { what: `the server to record why ${id} disconnected` });
  if (!observer) obs.disconnect();
  return reason;
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`disconnect over ${mode}`, () => {
    test(`${mode}: client socket.disconnect() → server reason 'client namespace disconnect'`, async () => {
      const socket = await connectSio(server, '/', opts);
      const id = socket.id;
      socket.disconnect();
      assert.equal(await socket.disconnects.next(), 'io client disconnect');
      assert.equal(await serverReason(server, id), 'client namespace disconnect');
    });

    test(`${mode}: leaving one namespace keeps the others on the same connection`, async () => {
      const main = await connectSio(server, '/', opts);
      const custom = await waitConnect(createSioOn(main, '/custom'));
      const engineId = main.io.engine.id;
      const id = main.id;
      main.disconnect();
      assert.equal(await main.disconnects.next(), 'io client disconnect');
      assert.ok(custom.connected);
      // Let the server see the `41` first (Node handles it a tick later, and a CONNECT
      // arriving before that counts as a second CONNECT).
      assert.equal(await serverReason(server, id), 'client namespace disconnect');
      // `/` again, on the same connection
      main.connect();
      await waitConnect(main);
      assert.equal(main.io.engine.id, engineId);
      custom.disconnect();
      main.emit('message', 'x');
      assert.deepEqual(await nextEvent(main, 'message-back'), ['x']);
    });

    test(`${mode}: client closes the transport (engine.close()) → server reason 'transport close'`, async () => {
      const socket = await connectSio(server, '/', opts);
      const id = socket.id;
      socket.io.engine.close();
      assert.equal(await socket.disconnects.next(), 'forced close'); // socket.io-client's name for it
      assert.equal(await serverReason(server, id), 'transport close');
    });

    test(`${mode}: disconnect-me(false) → client 'io server disconnect', server 'server namespace disconnect', the connection stays`, async () => {
      const main = await connectSio(server, '/', opts);
      const custom = await waitConnect(createSioOn(main, '/custom'));
      const id = main.id;
      const engine = main.io.engine;
      let engineClosed = false;
      engine.on('close', () => { engineClosed = true; });
      main.emit('disconnect-me', false);
      assert.equal(await main.disconnects.next(), 'io server disconnect');
      assert.equal(await serverReason(server, id), 'server namespace disconnect');
      assert.ok(custom.connected, 'the /custom socket on the same connection was disconnected');
      assert.equal(engineClosed, false);
      // `/custom` still answers over the same connection (an unknown event times out
      // client-side, a reconnect of `/` works on the same engine).
      main.connect();
      await waitConnect(main);
      assert.equal(main.io.engine, engine);
      main.emit('message', 'back');
      assert.deepEqual(await nextEvent(main, 'message-back'), ['back']);
    });

    test(`${mode}: disconnect-me(true) → every namespace gets 'io server disconnect' and the connection closes`, async () => {
      const main = await connectSio(server, '/', { ...opts, reconnection: true, reconnectionDelay: 50 });
      const custom = await waitConnect(createSioOn(main, '/custom'));
      const id = main.id;
      const engineClosed = waitFor(main.io.engine, 'close');
      let attempts = 0;
      main.io.on('reconnect_attempt', () => { attempts += 1; });
      main.emit('disconnect-me', true);
      // The server sends `41` (and `41/custom,`) before closing, so the client knows it
      // was a deliberate disconnect (PROTOCOL.md §2.5) and does not reconnect.
      assert.equal(await main.disconnects.next(), 'io server disconnect');
      assert.equal(await custom.disconnects.next(), 'io server disconnect');
      await engineClosed;
      assert.equal(await serverReason(server, id), 'server namespace disconnect');
      assert.equal(attempts, 0, 'the client tried to reconnect');
    });
  });
}

describe('raw clients', () => {
  let fast;
  before(async () => {
    fast = await startServer(['--ping-interval', '300', '--ping-timeout', '200']);
  });
  after(async () => {
    closeSioClients();
    closeClients();
    await fast.stop();
  });

  test('WebSocket client that stops answering pings → ping timeout', async () => {
    const { ws, socketId } = await rawSioConnect(fast, { autoPong: false });
    assert.equal(await ws.received.next(), '2');
    await wsClosed(ws);
    // Observer connects after the close: it need not survive the 300/200 heartbeat long.
    assert.equal(await serverReason(fast, socketId), 'ping timeout');
  });

  test('polling client that stops polling → ping timeout', async () => {
    const { sid } = await sioPollingHandshake(fast);
    await sioPost(fast, sid, '40');
    const res = await sioPoll(fast, sid);
    const socketId = JSON.parse(/^40(\{[^}]*\})/.exec(res.body)[1]).sid;
    // Wait for the session to be gone first, as the WebSocket case waits for the close:
    // the observer then need not outlive the 300/200 heartbeat while the timeout runs (its
    // own pongs may be late on a loaded machine). Read from /stats, not by polling the
    // session (this client stops polling). This file's other clients of `fast` are gone.
    await until(async () => JSON.parse((await request(`${fast.url}/stats`)).body).sessions === 0,
      { what: `the server to drop session ${sid}` });
    assert.equal(await serverReason(fast, socketId), 'ping timeout');
  });

  test('invalid packet (42{}) → parse error, the connection closes, other clients keep working',
    referenceDiffers("Node 4.8 reports 'forced close' for Socket.IO decode errors"), async () => {
      const other = await connectSio(server, '/', MODES.websocket);
      const { ws, socketId } = await rawSioConnect(server);
      ws.send('42{}');
      await wsClosed(ws);
      assert.equal(await serverReason(server, socketId, other), 'parse error');
      other.emit('message', 'fine');
      assert.deepEqual(await nextEvent(other, 'message-back'), ['fine']);
    });

  test('protocol violations close the connection with parse error (§2.6)',
    referenceDiffers("Node 4.8 reports 'forced close' and ignores a second CONNECT to /custom"), async () => {
      const other = await connectSio(server, '/', MODES.websocket);
      const violations = [
        ['4abc'], ['42abc["message",1]'], ['40"x"'], ['42[]'], ['42["disconnect"]'],
        ['42/custom,["message"]'], ['40'], ['40/custom,', '40/custom,'], ['44{"message":"x"}'],
        ['451-["message",{"_placeholder":true,"num":0}]', '42["message"]'], [Buffer.from([1, 2])],
      ];
      for (const frames of violations) {
        const { ws, socketId } = await rawSioConnect(server);
        for (const f of frames) ws.send(f);
        if (frames[0] === '40/custom,') {
          // the first CONNECT is answered; the second is the violation
          assert.match(await nextNonPing(ws), /^40\/custom,\{"sid":/);
        }
        await wsClosed(ws).catch((e) => { throw new Error(`${JSON.stringify(String(frames))}: ${e.message}`); });
        assert.equal(await serverReason(server, socketId, other), 'parse error', JSON.stringify(String(frames)));
      }
      other.emit('message', 'fine');
      assert.deepEqual(await nextEvent(other, 'message-back'), ['fine']);
    });

  test('a numeric event name is valid and an ACK with an unknown id is ignored', async () => {
    const { ws } = await rawSioConnect(server);
    ws.send('42[1,"x"]');
    ws.send('43999["nobody asked"]');
    ws.send('42["message","still open"]');
    assert.equal(await nextNonPing(ws), '42["message-back","still open"]');
    assert.equal(ws.isClosed, false);
  });
});
