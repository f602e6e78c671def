'use strict';
// Connection state recovery with the official socket.io-client: after a forced
// transport close the client gets back its id, rooms and the events it missed
// (room and direct), in order; not after an explicit disconnect, not without an
// offset, not after maxDisconnectionDuration; across polling and WebSocket.
// Server: conformance-server --recovery [--recovery-duration ms].

const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { startServer } = require('./support/server');
const { MODES, TIMEOUT, sleep, until } = require('./support/helpers');
const {
  connectSio, createSio, waitConnect, nextEvent, closeSioClients,
} = require('./support/socketio');

/** Forces a transport close (a recoverable reason) and waits for the disconnect. */
async function dropTransport(socket) {
  const gone = socket.disconnects.next();
  socket.io.engine.close();
  return gone;
}

/**
 * Waits until the server has handled the disconnect of socket `id` (the app records the
 * reason after the socket left, its recovery session kept), asking through `observer`.
 * The client closes its transport without waiting for the server (over polling the close
 * packet is a POST nobody awaits): a reconnect sent at once can reach the server before
 * that close, and then there is nothing to recover yet, with the reference server too.
 */
async function serverSawDisconnect(observer, id) {
  await until(async () => {
    const list = await observer.timeout(TIMEOUT).emitWithAck('reasons');
    return list.some(([sid]) => sid === id);
  }, { what: `the server to handle the disconnect of ${id}` });
}

/** Reconnects a socket whose manager does not reconnect by itself. */
async function reconnect(socket, transports) {
  if (transports) socket.io.opts.transports = transports;
  socket.connect();
  await waitConnect(socket);
}

/** The first argument of each event, without the trailing offset. */
function payloads(list) {
  return list.map((args) => args[0]);
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`connection state recovery (${mode})`, () => {
    let server;
    before(async () => { server = await startServer(['--recovery-duration', '120000']); });
    after(async () => { await server.stop(); });
    afterEach(() => closeSioClients());

    it('restores id, rooms and missed room and direct events in order', async () => {
      const a = await connectSio(server, '/', opts);
      const b = await connectSio(server, '/', opts);
      await a.emitWithAck('join', 'r');
      const id = a.id;
      // One event received before the drop gives the client its offset.
      await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 0 });
      const first = await nextEvent(a, 'room');
      assert.equal(first[0], 0);
      assert.equal(typeof first[first.length - 1], 'string', 'offset appended as last argument');

      const reason = await dropTransport(a);
      assert.equal(reason, 'forced close'); // the client's own name for engine.close()
      await serverSawDisconnect(b, id);
      // Missed while away: two room events, one direct event, one to others only.
      await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 1 });
      await b.emitWithAck('op', { from: 'io', to: [id], event: 'direct', data: 'd' });
      await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 2 });
      await b.emitWithAck('op', { from: 'io', to: ['other'], event: 'room', data: 'not for a' });

      const order = [];
      // (The app greets every connection, recovered ones too, with 'auth'.)
      a.onAny((event, ...args) => { if (event !== 'auth') order.push([event, args[0]]); });
      await reconnect(a);
      assert.equal(a.id, id, 'same socket id');
      assert.equal(a.recovered, true);
      await nextEvent(a, 'room');
      await nextEvent(a, 'direct');
      await nextEvent(a, 'room');
      assert.deepEqual(order, [['room', 1], ['direct', 'd'], ['room', 2]]);
      const rooms = await a.emitWithAck('rooms', null);
      assert.deepEqual(rooms, [id, 'r'].sort());
    });

    it('does not recover after an explicit disconnect', async () => {
      const a = await connectSio(server, '/', opts);
      const b = await connectSio(server, '/', opts);
      await a.emitWithAck('join', 'r');
      await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 0 });
      await nextEvent(a, 'room');
      const id = a.id;
      a.disconnect();
      await reconnect(a);
      assert.notEqual(a.id, id);
      assert.equal(a.recovered, false);
    });

    it('gives a new id to a reconnect with a pid but no offset', async () => {
      const a = await connectSio(server, '/', opts);
      const id = a.id;
      // The app's greeting gave the client an offset; forget it, so that the
      // client comes back with its pid but no offset.
      await nextEvent(a, 'auth');
      assert.equal(typeof a._pid, 'string');
      a._lastOffset = undefined;
      await dropTransport(a);
      await reconnect(a);
      assert.notEqual(a.id, id);
      assert.equal(a.recovered, false);
    });
  });
}

describe('connection state recovery across transports and time', () => {
  let server;
  before(async () => { server = await startServer(['--recovery-duration', '1000']); });
  after(async () => { await server.stop(); });
  afterEach(() => closeSioClients());

  for (const [from, to] of [['polling', 'websocket'], ['websocket', 'polling']]) {
    it(`recovers a ${from} session over ${to}`, async () => {
      const a = await connectSio(server, '/', { transports: [from] });
      const b = await connectSio(server, '/', { transports: ['websocket'] });
      await a.emitWithAck('join', 'r');
      await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 0 });
      await nextEvent(a, 'room');
      const id = a.id;
      await dropTransport(a);
      await serverSawDisconnect(b, id);
      await b.emitWithAck('op', { from: 'io', to: ['r'], event: 'room', data: 1 });
      await reconnect(a, [to]);
      assert.equal(a.io.engine.transport.name, to);
      assert.equal(a.id, id);
      assert.equal(a.recovered, true);
      assert.deepEqual(payloads([await nextEvent(a, 'room')]), [1]);
    });
  }

  it('does not recover after maxDisconnectionDuration', async () => {
    const a = await connectSio(server, '/', { transports: ['websocket'] });
    const b = await connectSio(server, '/', { transports: ['websocket'] });
    await b.emitWithAck('op', { from: 'io', event: 'all', data: 0 });
    await nextEvent(a, 'all');
    const id = a.id;
    await dropTransport(a);
    // The protocol is about time here: wait past the 1000 ms duration.
    await sleep(1600);
    await reconnect(a);
    assert.notEqual(a.id, id);
    assert.equal(a.recovered, false);
  });

  it('the CONNECT reply carries a pid only when recovery is on', async () => {
    const a = createSio(server, '/', { transports: ['websocket'] });
    await waitConnect(a);
    assert.equal(typeof a._pid, 'string');
  });
});
