'use strict';
// Socket.IO namespace connections through the official socket.io-client 4.8: `/`,
// `/custom`, auth payloads, multiplexing, middleware refusal (`/mw`), invalid and
// dynamic namespaces, connectTimeout (raw ws), and reconnection after a deliberate
// server disconnect and after a server restart.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { io } = require('socket.io-client');
const { startServer } = require('./support/server');
const { MODES, TIMEOUT, sleep, waitFor, closeClients, wsClosed } = require('./support/helpers');
const {
  createSio, createSioOn, connectSio, waitConnect, nextEvent, closeSioClients, instrument, waitSioUpgrade,
  rawSioWs, nextNonPing,
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

/** The connect_error a socket gets instead of connecting. */
async function connectError(socket) {
  const [err] = await waitFor(socket, 'connect_error', { failOn: ['connect'] });
  return err;
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`connect over ${mode}`, () => {
    test(`${mode}: connects to '/', gets 'auth' with {} and a socket id that is not the engine id`, async () => {
      const socket = await connectSio(server, '/', opts);
      assert.equal(typeof socket.id, 'string');
      assert.ok(socket.id.length > 0);
      assert.deepEqual(await nextEvent(socket, 'auth'), [{}]);
      assert.equal(typeof socket.io.engine.id, 'string');
      assert.notEqual(socket.id, socket.io.engine.id);
      // it works: an event round trip
      socket.emit('message', 'ping?');
      assert.deepEqual(await nextEvent(socket, 'message-back'), ['ping?']);
    });

    test(`${mode}: the auth payload on '/' is echoed by the 'auth' event`, async () => {
      const auth = { token: '123', n: 4.5, list: [1, 'two', null], nested: { ok: true, s: 'é€😀' } };
      const socket = await connectSio(server, '/', { ...opts, auth });
      assert.deepEqual(await nextEvent(socket, 'auth'), [auth]);
    });

    test(`${mode}: connects to '/custom' and gets its auth payload back`, async () => {
      const socket = await connectSio(server, '/custom', { ...opts, auth: { token: 'abc' } });
      assert.deepEqual(await nextEvent(socket, 'auth'), [{ token: 'abc' }]);
      const plain = await connectSio(server, '/custom', opts);
      assert.deepEqual(await nextEvent(plain, 'auth'), [{}]);
    });

    test(`${mode}: io(url) and io(url + '/custom') share one Engine.IO connection (multiplexing)`, async () => {
      // io() caches one Manager per host:port: use a server of our own so that the
      // cache entry is new (and carries this mode's transports).
      const own = await startServer([]);
      try {
        const main = instrument(io(own.url, { ...opts, reconnection: false, auth: { which: 'main' } }));
        const custom = instrument(io(`${own.url}/custom`, { ...opts, reconnection: false, auth: { which: 'custom' } }));
        const dyn = instrument(io(`${own.url}/dyn-multi`, { ...opts, reconnection: false }));
        await Promise.all([waitConnect(main), waitConnect(custom), waitConnect(dyn)]);
        assert.equal(main.io, custom.io, 'not the same Manager');
        assert.equal(main.io, dyn.io, 'not the same Manager');
        assert.equal(main.io.engine.id, custom.io.engine.id);
        assert.deepEqual(await nextEvent(main, 'auth'), [{ which: 'main' }]);
        assert.deepEqual(await nextEvent(custom, 'auth'), [{ which: 'custom' }]);
        assert.deepEqual(await nextEvent(dyn, 'hello'), ['/dyn-multi']);
        const ids = new Set([main.id, custom.id, dyn.id, main.io.engine.id]);
        assert.equal(ids.size, 4, `ids not distinct: ${[...ids]}`);
        // Leaving one namespace keeps the others (and the connection).
        const engineId = main.io.engine.id;
        custom.disconnect();
        main.emit('message', 'still here');
        assert.deepEqual(await nextEvent(main, 'message-back'), ['still here']);
        assert.equal(main.io.engine.id, engineId);
        assert.ok(dyn.connected);
        main.disconnect();
        dyn.disconnect();
      } finally {
        closeSioClients();
        await own.stop();
      }
    });

    test(`${mode}: several namespaces on one Manager (manager.socket()) and namespace isolation`, async () => {
      const main = await connectSio(server, '/', opts);
      const custom = await waitConnect(createSioOn(main, '/custom', { auth: { x: 1 } }));
      assert.equal(custom.io.engine.id, main.io.engine.id);
      assert.notEqual(custom.id, main.id);
      assert.deepEqual(await nextEvent(custom, 'auth'), [{ x: 1 }]);
      // `/custom` has no `message` handler: an event there gets no answer anywhere,
      // while the same event on `/` is answered on `/` only.
      custom.emit('message', 'to custom');
      main.emit('message', 'to main');
      assert.deepEqual(await nextEvent(main, 'message-back'), ['to main']);
      await assert.rejects(custom.timeout(300).emitWithAck('message-with-ack', 1), /timed out/);
      assert.equal(custom.queue('message-back').length, 0);
      assert.equal(main.queue('message-back').length, 0);
    });

    test(`${mode}: middleware on '/mw' refuses with message and data, accepts {token: 'ok'}`, async () => {
      const refused = createSio(server, '/mw', opts);
      const err = await connectError(refused);
      assert.equal(err.message, 'Not authorized');
      assert.deepEqual(err.data, { reason: 'bad token' });
      assert.equal(refused.connected, false);

      const wrong = createSio(server, '/mw', { ...opts, auth: { token: 'nope' } });
      const err2 = await connectError(wrong);
      assert.equal(err2.message, 'Not authorized');
      assert.deepEqual(err2.data, { reason: 'bad token' });

      const ok = await connectSio(server, '/mw', { ...opts, auth: { token: 'ok' } });
      assert.deepEqual(await nextEvent(ok, 'welcome'), ['mw']);
    });

    test(`${mode}: a refused namespace leaves the connection and the other namespaces alone`, async () => {
      const main = await connectSio(server, '/', opts);
      const mw = createSioOn(main, '/mw');
      const err = await connectError(mw);
      assert.equal(err.message, 'Not authorized');
      const random = createSioOn(main, '/random');
      assert.equal((await connectError(random)).message, 'Invalid namespace');
      assert.ok(main.connected);
      main.emit('message', 'after refusals');
      assert.deepEqual(await nextEvent(main, 'message-back'), ['after refusals']);
      // Refused, then retried with the right token on the same connection.
      mw.auth = { token: 'ok' };
      mw.connect();
      await waitConnect(mw);
      assert.equal(mw.io.engine.id, main.io.engine.id);
      assert.deepEqual(await nextEvent(mw, 'welcome'), ['mw']);
    });

    test(`${mode}: an unknown namespace gets connect_error 'Invalid namespace'`, async () => {
      const socket = createSio(server, '/random', opts);
      const err = await connectError(socket);
      assert.equal(err.message, 'Invalid namespace');
      assert.equal(socket.connected, false);
    });

    test(`${mode}: dynamic namespaces '/dyn-…' connect and get 'hello' with their name`, async () => {
      const abc = await connectSio(server, '/dyn-abc', opts);
      assert.deepEqual(await nextEvent(abc, 'hello'), ['/dyn-abc']);
      const other = await connectSio(server, '/dyn-other_42', opts);
      assert.deepEqual(await nextEvent(other, 'hello'), ['/dyn-other_42']);
      assert.notEqual(abc.id, abc.io.engine.id);
      // `/dyn` (no dash) matches no pattern
      assert.equal((await connectError(createSio(server, '/dyn', opts))).message, 'Invalid namespace');
    });

    test(`${mode}: 'disconnect-me' close=true → 'io server disconnect', no automatic reconnection, socket.connect() works again`, async () => {
      const socket = await connectSio(server, '/', { ...opts, reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
      await nextEvent(socket, 'auth');
      const firstId = socket.id;
      const firstEngine = socket.io.engine;
      const engineClosed = waitFor(firstEngine, 'close');
      let attempts = 0;
      socket.io.on('reconnect_attempt', () => { attempts += 1; });
      socket.emit('disconnect-me', true);
      assert.equal(await socket.disconnects.next(), 'io server disconnect');
      await engineClosed; // the whole Engine.IO connection is gone
      // A deliberate server disconnect is not retried (reconnectionDelay is 50 ms).
      await sleep(300);
      assert.equal(attempts, 0, 'the client tried to reconnect');
      assert.equal(socket.connected, false);
      socket.connect();
      await waitConnect(socket);
      assert.deepEqual(await nextEvent(socket, 'auth'), [{}]);
      assert.notEqual(socket.id, firstId);
      assert.notEqual(socket.io.engine, firstEngine);
      socket.emit('message', 'again');
      assert.deepEqual(await nextEvent(socket, 'message-back'), ['again']);
    });

    test(`${mode}: the client reconnects by itself after the server restarts on the same port`, async () => {
      let own = await startServer([]);
      const port = own.port;
      try {
        const socket = await connectSio(own, '/', {
          ...opts, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 300, auth: { r: 1 },
        });
        assert.deepEqual(await nextEvent(socket, 'auth'), [{ r: 1 }]);
        const firstId = socket.id;
        // Mid-upgrade (polling paused, probe not yet promoted) the client would only notice
        // the dead server by its ping timeout: let the upgrade finish first.
        if (mode === 'polling+upgrade') await waitSioUpgrade(socket);
        const reconnected = waitFor(socket.io, 'reconnect', { timeout: 20000 });
        await own.stop();
        const reason = await socket.disconnects.next();
        assert.ok(['transport close', 'transport error'].includes(reason), `disconnect reason ${reason}`);
        own = await startServer(['--port', String(port)]);
        await reconnected;
        await waitConnect(socket);
        assert.notEqual(socket.id, firstId);
        assert.deepEqual(await nextEvent(socket, 'auth'), [{ r: 1 }]);
        socket.emit('message', 'after restart');
        assert.deepEqual(await nextEvent(socket, 'message-back'), ['after restart']);
      } finally {
        closeSioClients();
        await own.stop();
      }
    });
  });
}

describe('connectTimeout', () => {
  // Long enough for a raw client on a loaded machine to get the open packet and answer
  // (join or be refused) well before it: the tests below need that exchange done in time.
  const CONNECT_TIMEOUT = 1000;
  let slow;
  before(async () => {
    slow = await startServer([
      '--connect-timeout', String(CONNECT_TIMEOUT), '--ping-interval', '20000', '--ping-timeout', '20000',
    ]);
  });
  after(async () => {
    closeClients();
    await slow.stop();
  });

  test('a connection that never joins a namespace is closed after connectTimeout; a joined one stays', async () => {
    const [idle, joined] = await Promise.all([rawSioWs(slow), rawSioWs(slow)]);
    joined.ws.send('40');
    assert.match(await nextNonPing(joined.ws), /^40\{"sid":"[^"]+"\}$/);
    assert.equal(await nextNonPing(joined.ws), '42["auth",{}]');
    const { at } = await wsClosed(idle.ws, TIMEOUT);
    // From before the connection started (the server's timer starts later, when it opens
    // the session; the open packet's arrival is no lower bound on a loaded machine);
    // 2 ms for Date.now()'s whole milliseconds.
    const elapsed = at - idle.ws.createdAt;
    assert.ok(elapsed >= CONNECT_TIMEOUT - 2, `closed after ${elapsed} ms, before connectTimeout`);
    assert.deepEqual(idle.ws.received.items, [], 'the idle connection got frames');
    // The joined connection outlives connectTimeout and keeps working.
    await sleep(CONNECT_TIMEOUT);
    assert.equal(joined.ws.isClosed, false, 'the joined connection was closed');
    joined.ws.send('42["message","alive"]');
    assert.equal(await nextNonPing(joined.ws), '42["message-back","alive"]');
  });

  test('once a namespace was joined the timer is gone, even after leaving it (41)', async () => {
    const { ws } = await rawSioWs(slow);
    ws.send('40');
    assert.match(await nextNonPing(ws), /^40\{"sid":/);
    assert.equal(await nextNonPing(ws), '42["auth",{}]');
    ws.send('41');
    await sleep(CONNECT_TIMEOUT * 2);
    assert.equal(ws.isClosed, false, 'closed after leaving the only namespace');
    ws.send('40/custom,');
    assert.match(await nextNonPing(ws), /^40\/custom,\{"sid":/);
  });

  test('a namespace refused (connect_error) does not count as joined', async () => {
    const { ws } = await rawSioWs(slow);
    ws.send('40/random,');
    assert.equal(await nextNonPing(ws), '44/random,{"message":"Invalid namespace"}');
    ws.send('40/mw,');
    const refusal = await nextNonPing(ws);
    assert.ok(refusal.startsWith('44/mw,{'), refusal);
    assert.deepEqual(JSON.parse(refusal.slice('44/mw,'.length)), { message: 'Not authorized', data: { reason: 'bad token' } });
    const { at } = await wsClosed(ws);
    // As above: from before the connection started, 2 ms for whole milliseconds.
    assert.ok(at - ws.createdAt >= CONNECT_TIMEOUT - 2, `closed after ${at - ws.createdAt} ms`);
  });
});
