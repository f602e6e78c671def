'use strict';
// Rooms and broadcasting through the official socket.io-client 4.8, with four clients
// A B C D: join / leave / rooms, every operator chain of the `op` test event (who
// receives and, as precisely, who does not), volatile emits, broadcast acks
// (`bcast-ack`), `fetch`, `sockets-join` / `sockets-leave`, `disconnect-sockets`.
//
// Negative assertions ("C got nothing") do not sleep: after the emit under test the
// sender asks for a marker event sent to everybody; every client gets its packets in
// order, so once a client has the marker, anything the emit sent it has arrived.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const { MODES, RS, waitFor, until, closeClients } = require('./support/helpers');
const {
  connectSio, createSioOn, waitConnect, nextEvent, closeSioClients, waitSioUpgrade,
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

const NAMES = ['A', 'B', 'C', 'D'];

/** Connects A B C D (each on its own connection); resolves { A, B, C, D, all }. */
async function fourClients(opts) {
  const sockets = await Promise.all(NAMES.map(() => connectSio(server, '/', opts)));
  const c = {};
  sockets.forEach((s, i) => { s.label = NAMES[i]; c[NAMES[i]] = s; });
  await Promise.all(sockets.map((s) => nextEvent(s, 'auth')));
  c.all = sockets;
  return c;
}

async function join(socket, ...rooms) {
  for (const r of rooms) await socket.emitWithAck('join', r);
}

let markerSeq = 0;

/**
 * Runs `op` from `sender` (event `ev`), then a marker to everybody; resolves with
 * { A: [data…], B: [...], ... }: the `ev` payloads each client got before the marker.
 */
async function deliver(sender, clients, op) {
  await sender.emitWithAck('op', { event: 'ev', ...op });
  const marker = ++markerSeq;
  await sender.emitWithAck('op', { from: 'io', event: 'marker', data: marker });
  const got = {};
  await Promise.all(clients.map(async (s) => {
    const [m] = await nextEvent(s, 'marker');
    assert.equal(m, marker, `${s.label}: unexpected marker`);
    got[s.label] = s.queue('ev').items.splice(0).map((args) => args[0]);
  }));
  return got;
}

/** Asserts that exactly `receivers` got `data` once and the others nothing. */
function assertReceivers(got, receivers, data) {
  const expected = {};
  for (const name of Object.keys(got)) expected[name] = receivers.includes(name) ? [data] : [];
  assert.deepEqual(got, expected);
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`rooms over ${mode}`, () => {
    test(`${mode}: join, leave and rooms (sorted, with the socket's own id)`, async () => {
      const { A } = await fourClients(opts);
      assert.deepEqual(await A.emitWithAck('rooms'), [A.id]);
      await join(A, 'zeta', 'alpha', 'mid');
      assert.deepEqual(await A.emitWithAck('rooms'), ['alpha', 'mid', 'zeta', A.id].sort());
      await join(A, 'alpha'); // joining twice changes nothing
      assert.deepEqual(await A.emitWithAck('rooms'), ['alpha', 'mid', 'zeta', A.id].sort());
      await A.emitWithAck('leave', 'mid');
      await A.emitWithAck('leave', 'never-joined');
      assert.deepEqual(await A.emitWithAck('rooms'), ['alpha', 'zeta', A.id].sort());
    });

    describe(`${mode}: operator chains (A,B in r1; B,C in r2; D in none)`, () => {
      let c;
      const setup = async () => {
        c = await fourClients(opts);
        await join(c.A, 'r1');
        await join(c.B, 'r1', 'r2');
        await join(c.C, 'r2');
        return c;
      };

      test(`${mode}: io.to(r1) reaches the members of r1, sender included`, async () => {
        await setup();
        assertReceivers(await deliver(c.A, c.all, { from: 'io', to: ['r1'], data: 1 }), ['A', 'B'], 1);
        assertReceivers(await deliver(c.D, c.all, { from: 'io', to: ['r1'], data: 2 }), ['A', 'B'], 2);
      });

      test(`${mode}: io.to([r1, r2]) is a union: every member exactly once`, async () => {
        await setup();
        assertReceivers(await deliver(c.D, c.all, { from: 'io', to: ['r1', 'r2'], data: 'u' }), ['A', 'B', 'C'], 'u');
      });

      test(`${mode}: io.except(r1), io.to(r1).except(r2), io (everybody)`, async () => {
        await setup();
        assertReceivers(await deliver(c.A, c.all, { from: 'io', except: ['r1'], data: 'x' }), ['C', 'D'], 'x');
        assertReceivers(await deliver(c.A, c.all, { from: 'io', to: ['r1'], except: ['r2'], data: 'y' }), ['A'], 'y');
        assertReceivers(await deliver(c.A, c.all, { from: 'io', data: 'z' }), ['A', 'B', 'C', 'D'], 'z');
        assertReceivers(await deliver(c.A, c.all, { from: 'io', to: ['nobody-here'], data: 'n' }), [], 'n');
      });

      test(`${mode}: socket.broadcast reaches everybody but the sender`, async () => {
        await setup();
        assertReceivers(await deliver(c.A, c.all, { from: 'socket', broadcast: true, data: 'b' }), ['B', 'C', 'D'], 'b');
        assertReceivers(await deliver(c.D, c.all, { from: 'socket', broadcast: true, data: 'b2' }), ['A', 'B', 'C'], 'b2');
      });

      test(`${mode}: socket.to(r1) reaches the members of r1 except the sender`, async () => {
        await setup();
        assertReceivers(await deliver(c.A, c.all, { from: 'socket', to: ['r1'], data: 't' }), ['B'], 't');
        assertReceivers(await deliver(c.B, c.all, { from: 'socket', to: ['r1', 'r2'], data: 't2' }), ['A', 'C'], 't2');
        assertReceivers(await deliver(c.D, c.all, { from: 'socket', to: ['r2'], data: 't3' }), ['B', 'C'], 't3');
      });

      test(`${mode}: socket.broadcast.except(r2), and except a socket id`, async () => {
        await setup();
        assertReceivers(await deliver(c.A, c.all, { from: 'socket', broadcast: true, except: ['r2'], data: 'e' }), ['D'], 'e');
        assertReceivers(await deliver(c.A, c.all, { from: 'socket', broadcast: true, except: [c.C.id], data: 'e2' }), ['B', 'D'], 'e2');
      });

      test(`${mode}: every socket is in the room of its own id (private messages)`, async () => {
        await setup();
        assertReceivers(await deliver(c.A, c.all, { from: 'io', to: [c.C.id], data: 'p' }), ['C'], 'p');
        assertReceivers(await deliver(c.A, c.all, { from: 'socket', to: [c.A.id, c.D.id], data: 'p2' }), ['D'], 'p2');
      });

      test(`${mode}: binary payloads are broadcast intact`, async () => {
        await setup();
        await c.A.emitWithAck('op', { from: 'io', to: ['r2'], event: 'bin', data: { b: Buffer.from([1, 2, 3]) } });
        for (const s of [c.B, c.C]) {
          const [d] = await nextEvent(s, 'bin');
          assert.ok(Buffer.isBuffer(d.b) && d.b.equals(Buffer.from([1, 2, 3])), `${s.label}: ${JSON.stringify(d)}`);
        }
      });

      test(`${mode}: a socket leaves its rooms when it disconnects`, async () => {
        await setup();
        assert.deepEqual(await c.D.emitWithAck('fetch', 'r1'), [c.A.id, c.B.id].sort());
        const gone = c.A.id;
        c.A.disconnect();
        const others = [c.B, c.C, c.D];
        // the disconnect is handled asynchronously: ask until the room is updated
        let ids;
        await until(async () => {
          ids = await c.D.emitWithAck('fetch', 'r1');
          return !ids.includes(gone);
        }, { what: 'A to leave r1' });
        assert.deepEqual(ids, [c.B.id]);
        assertReceivers(await deliver(c.D, others, { from: 'io', to: ['r1'], data: 'l' }), ['B'], 'l');
      });
    });

    test(`${mode}: volatile: delivered to idle clients (one at a time), never duplicated or reordered`, async () => {
      const c = await fourClients(opts);
      if (mode === 'polling+upgrade') {
        // The client's 'upgrade' comes when it sends `5`; a round trip over the new
        // transport makes sure the server has switched too (else it may still be on a
        // polling transport without a pending GET, which drops volatile packets).
        await Promise.all(c.all.map(async (s) => { await waitSioUpgrade(s); await s.emitWithAck('rooms'); }));
      }
      for (let i = 0; i < 5; i++) {
        const got = await deliver(c.A, c.all, { from: 'io', volatile: true, data: i });
        if (mode === 'polling') {
          // An idle polling client normally has a GET pending (then the packet goes out),
          // but it may be between two GETs (then it is dropped): at most once.
          for (const name of NAMES) assert.ok(got[name].length === 0 || (got[name].length === 1 && got[name][0] === i), `${name}: ${JSON.stringify(got[name])}`);
        } else {
          assertReceivers(got, NAMES, i); // an idle WebSocket takes it at once
        }
      }
      // A burst may be thinned out, but what arrives arrives once and in order.
      for (let i = 0; i < 30; i++) c.A.emit('op', { from: 'socket', broadcast: true, volatile: true, event: 'ev', data: i });
      const got = await deliver(c.A, c.all, { from: 'io', to: ['nobody'], data: 'end' });
      for (const name of ['B', 'C', 'D']) {
        const seq = got[name];
        assert.deepEqual(seq, [...seq].sort((x, y) => x - y), `${name}: out of order ${seq}`);
        assert.equal(new Set(seq).size, seq.length, `${name}: duplicates ${seq}`);
      }
      assert.deepEqual(got.A, []);
    });

    describe(`${mode}: broadcast with acks (bcast-ack)`, () => {
      test(`${mode}: every receiver answers → one response per socket, none missing`, async () => {
        const c = await fourClients(opts);
        await join(c.B, 'r');
        await join(c.C, 'r');
        await join(c.D, 'r');
        for (const s of c.all) s.on('q', (data, cb) => cb(s.label, data));
        const res = await c.A.emitWithAck('bcast-ack', { to: ['r'], event: 'q', data: { n: 1 }, timeoutMs: 3000 });
        const expected = [c.B, c.C, c.D].map((s) => [s.id, [s.label, { n: 1 }]]).sort((x, y) => (x[0] < y[0] ? -1 : 1));
        assert.deepEqual(res, { responses: expected, missing: [] });
        // from io, sender included
        const all = await c.A.emitWithAck('bcast-ack', { from: 'io', event: 'q', data: 2, timeoutMs: 3000 });
        assert.deepEqual(all.responses.map((r) => r[0]), c.all.map((s) => s.id).sort());
        assert.deepEqual(all.missing, []);
        // from the socket: the sender is left out
        const others = await c.A.emitWithAck('bcast-ack', { from: 'socket', broadcast: true, event: 'q', data: 3, timeoutMs: 3000 });
        assert.deepEqual(others.responses.map((r) => r[0]), [c.B.id, c.C.id, c.D.id].sort());
      });

      test(`${mode}: a receiver that does not answer is reported in 'missing' after timeoutMs`, async () => {
        const c = await fourClients(opts);
        for (const s of [c.B, c.C, c.D]) await join(s, 'r');
        let silentAsked = 0;
        c.B.on('q', (d, cb) => cb('B'));
        c.C.on('q', () => { silentAsked += 1; }); // never answers
        c.D.on('q', (d, cb) => cb('D'));
        const t0 = Date.now();
        const res = await c.A.emitWithAck('bcast-ack', { to: ['r'], event: 'q', data: null, timeoutMs: 400 });
        const elapsed = Date.now() - t0;
        assert.deepEqual(res.responses, [[c.B.id, ['B']], [c.D.id, ['D']]].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
        assert.deepEqual(res.missing, [c.C.id]);
        assert.equal(silentAsked, 1);
        assert.ok(elapsed >= 350, `answered after ${elapsed} ms`);
      });

      test(`${mode}: an empty room answers at once with nothing`, async () => {
        const c = await fourClients(opts);
        const res = await c.A.emitWithAck('bcast-ack', { to: ['empty'], event: 'q', data: 1, timeoutMs: 5000 });
        assert.deepEqual(res, { responses: [], missing: [] });
      });
    });

    test(`${mode}: fetch, sockets-join and sockets-leave`, async () => {
      const c = await fourClients(opts);
      await join(c.A, 'r1');
      await join(c.B, 'r1');
      const byId = (...s) => s.map((x) => x.id).sort();
      assert.deepEqual(await c.C.emitWithAck('fetch', 'r1'), byId(c.A, c.B));
      assert.deepEqual(await c.C.emitWithAck('fetch', 'nothing'), []);
      const everyone = await c.C.emitWithAck('fetch', null);
      for (const id of byId(...c.all)) assert.ok(everyone.includes(id), `fetch(null) misses ${id}`);
      // sockets-join: the members of r1 join r9
      await c.C.emitWithAck('sockets-join', 'r1', 'r9');
      assert.deepEqual(await c.A.emitWithAck('rooms'), ['r1', 'r9', c.A.id].sort());
      assert.deepEqual(await c.B.emitWithAck('rooms'), ['r1', 'r9', c.B.id].sort());
      assert.deepEqual(await c.C.emitWithAck('rooms'), [c.C.id]);
      assert.deepEqual(await c.D.emitWithAck('fetch', 'r9'), byId(c.A, c.B));
      // targeting one socket by its id room
      await c.A.emitWithAck('sockets-join', c.D.id, 'r9');
      assert.deepEqual(await c.D.emitWithAck('fetch', 'r9'), byId(c.A, c.B, c.D));
      assertReceivers(await deliver(c.C, c.all, { from: 'io', to: ['r9'], data: 9 }), ['A', 'B', 'D'], 9);
      // sockets-leave: the members of r9 leave r1
      await c.C.emitWithAck('sockets-leave', 'r9', 'r1');
      assert.deepEqual(await c.C.emitWithAck('fetch', 'r1'), []);
      assert.deepEqual(await c.A.emitWithAck('rooms'), ['r9', c.A.id].sort());
      // null = every socket of the namespace
      await c.C.emitWithAck('sockets-join', null, 'everyone');
      const inEveryone = await c.C.emitWithAck('fetch', 'everyone');
      for (const id of byId(...c.all)) assert.ok(inEveryone.includes(id));
      await c.C.emitWithAck('sockets-leave', null, 'everyone');
      assert.deepEqual(await c.C.emitWithAck('fetch', 'everyone'), []);
    });

    test(`${mode}: disconnect-sockets(room, close=false): members get 'io server disconnect', their connection stays`, async () => {
      const c = await fourClients(opts);
      await join(c.A, 'r1');
      await join(c.B, 'r1');
      const aCustom = await waitConnect(createSioOn(c.A, '/custom'));
      const engineA = c.A.io.engine;
      const engineId = engineA.id;
      let engineClosed = false;
      engineA.on('close', () => { engineClosed = true; });
      await c.C.emitWithAck('disconnect-sockets', 'r1', false);
      assert.equal(await c.A.disconnects.next(), 'io server disconnect');
      assert.equal(await c.B.disconnects.next(), 'io server disconnect');
      // C and D are untouched and get a marker; A's /custom socket and connection stay.
      assertReceivers(await deliver(c.C, [c.C, c.D], { from: 'io', data: 'after' }), ['C', 'D'], 'after');
      assert.ok(aCustom.connected, 'the /custom socket of A was disconnected');
      assert.equal(engineClosed, false);
      // A reconnects its `/` socket on the same Engine.IO connection.
      c.A.connect();
      await waitConnect(c.A);
      assert.equal(c.A.io.engine.id, engineId);
      assert.deepEqual(await c.A.emitWithAck('rooms'), [c.A.id]);
    });

    test(`${mode}: disconnect-sockets(room, close=true): members get 'io server disconnect' and their connection closes`, async () => {
      const c = await fourClients(opts);
      await join(c.A, 'r1');
      await join(c.B, 'r1');
      const aCustom = await waitConnect(createSioOn(c.A, '/custom'));
      const closedA = waitFor(c.A.io.engine, 'close');
      const closedB = waitFor(c.B.io.engine, 'close');
      await c.C.emitWithAck('disconnect-sockets', 'r1', true);
      assert.equal(await c.A.disconnects.next(), 'io server disconnect');
      assert.equal(await c.B.disconnects.next(), 'io server disconnect');
      await closedA;
      await closedB;
      // The whole connection went: A's /custom socket is disconnected as well.
      assert.equal(await aCustom.disconnects.next(), 'io server disconnect');
      assertReceivers(await deliver(c.D, [c.C, c.D], { from: 'io', data: 'after' }), ['C', 'D'], 'after');
      assert.deepEqual(await c.D.emitWithAck('fetch', 'r1'), []);
    });
  });
}

describe('volatile over raw polling', () => {
  test('a volatile packet for a polling session with no pending GET is dropped; a normal one waits', async () => {
    const sender = await connectSio(server, '/', MODES.websocket);
    const { sid } = await sioPollingHandshake(server);
    await sioPost(server, sid, '40');
    const first = await sioPoll(server, sid);
    assert.match(first.body, /^40\{"sid":"[^"]+"\}\x1e42\["auth",\{\}\]$/);
    // no GET pending now
    await sender.emitWithAck('op', { from: 'io', volatile: true, event: 'ev', data: 'dropped' });
    await sender.emitWithAck('op', { from: 'io', event: 'marker', data: 'kept' });
    const second = await sioPoll(server, sid);
    assert.equal(second.body, '42["marker","kept"]');
    // With a GET pending, a volatile packet goes out on it. The GET's arrival at the
    // server is not observable, so emit volatile packets until the GET returns: it must
    // return with some of them (and nothing else), in order.
    let returned = false;
    const pending = sioPoll(server, sid).then((r) => { returned = true; return r; });
    for (let i = 0; !returned && i < 400; i++) {
      await sender.emitWithAck('op', { from: 'io', volatile: true, event: 'ev', data: i });
    }
    const third = await pending;
    const packets = third.body.split(RS).filter((p) => p !== '2');
    assert.ok(packets.length >= 1, JSON.stringify(third.body));
    const values = packets.map((p) => {
      const m = /^42\["ev",(\d+)\]$/.exec(p);
      assert.ok(m, `unexpected packet ${JSON.stringify(p)}`);
      return Number(m[1]);
    });
    values.forEach((v, i) => { if (i) assert.ok(v > values[i - 1], `out of order: ${values}`); });
  });
});
