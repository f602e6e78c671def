'use strict';
// Broadcasting across a cluster: two Rust nodes (R1, R2) and one Node.js node (N1,
// cluster/node-server.js: socket.io 4.8 + @socket.io/redis-adapter 8.3) on one private Redis.
// On every node one polling-only client (p) and one WebSocket-only client (w) on `/`, each also
// joined to `/custom` over the same connection. `io.emit` (ping-all), `to(room)` (bcast),
// `to().except()` (bcast-except) and binary payloads, sent from every node: exactly the right
// clients of every node get them, the others nothing, and nothing leaks to the other namespace.
//
// Negative assertions do not sleep: after the broadcast under test, the sender's socket asks
// its node for a marker sent to the whole namespace; one node's publishes reach every other
// node in order, so once a client has the marker, anything the broadcast sent it has arrived.

const { describe, test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { sleep } = require('./support/helpers');
const { closeSioClients } = require('./support/socketio');
const {
  startCluster, connectTo, connectAlso, drain, fresh, deliver, markerFrom, assertGot,
  ACK_TIMEOUT,
} = require('./support/cluster');

let cluster;
const c = {}; // label -> socket: R1p R1w R2p R2w N1p N1w, and `${label}/custom`
let main = []; // the six sockets on `/`
let custom = []; // the six sockets on `/custom`

before(async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust', N1: 'node' });
  for (const node of cluster.nodes) {
    for (const t of ['p', 'w']) {
      const label = `${node.name}${t}`;
      c[label] = await connectTo(node, { t, label, auth: { label } });
      c[`${label}/custom`] = await connectAlso(c[label], '/custom', { auth: { label: `${label}/custom` } });
    }
  }
  main = Object.values(c).filter((s) => s.nsp === '/');
  custom = Object.values(c).filter((s) => s.nsp === '/custom');
  for (const s of main) {
    const want = s.label.endsWith('p') ? 'polling' : 'websocket';
    assert.equal(s.io.engine.transport.name, want, `${s.label} transport`);
  }
  // `/`: red = R1p R2w N1p; blue = R1w N1p; R2p and N1w in no room.
  for (const l of ['R1p', 'R2w', 'N1p']) await c[l].timeout(ACK_TIMEOUT).emitWithAck('join', 'red');
  for (const l of ['R1w', 'N1p']) await c[l].timeout(ACK_TIMEOUT).emitWithAck('join', 'blue');
  // `/custom`: red = R1w R2p N1w (the complement of `/`'s red).
  for (const l of ['R1w', 'R2p', 'N1w']) await c[`${l}/custom`].timeout(ACK_TIMEOUT).emitWithAck('join', 'red');
});

after(async () => {
  closeSioClients();
  if (cluster) await cluster.stop();
});

beforeEach(() => drain([...main, ...custom]));

const RED = ['R1p', 'R2w', 'N1p'];
const BLUE = ['R1w', 'N1p'];
const ALL = ['R1p', 'R1w', 'R2p', 'R2w', 'N1p', 'N1w'];
const ONE_PER_NODE = ['R1w', 'R2p', 'N1w']; // none of them in red

/** Delivery on `/` of `emit(sender)`; the `/custom` sockets watched for leaks. */
function onMain(sender, emit) {
  return deliver({ op: () => emit(sender), sendMarker: markerFrom(sender), watchers: main, others: custom });
}

/** Delivery on `/custom` from `${label}/custom`; the `/` sockets watched for leaks. */
function onCustom(label, emit) {
  const sender = c[`${label}/custom`];
  return deliver({ op: () => emit(sender), sendMarker: markerFrom(sender), watchers: custom, others: main });
}

const custom_ = (labels) => labels.map((l) => `${l}/custom`);

describe('cluster: broadcast on `/` from every node', () => {
  test('ping-all (io.emit) reaches every client of `/` on every node, n times, no `/custom` one', async () => {
    for (const label of ALL) {
      const p = fresh(`ping-all from ${label}`);
      const got = await onMain(c[label], (s) => s.emit('ping-all', 2, p));
      assertGot(got, ALL, [p, p], `ping-all from ${label}`);
    }
  });

  test('bcast to a room reaches its members on every node (sender included) and nobody else', async () => {
    for (const label of ALL) {
      const p = fresh(`red from ${label}`);
      const got = await onMain(c[label], (s) => s.emit('bcast', 'red', p));
      assertGot(got, RED, p, `bcast red from ${label}`);
    }
  });

  test('bcast to several rooms is a union: every member once', async () => {
    for (const label of ONE_PER_NODE) {
      const p = fresh(`red+blue from ${label}`);
      const got = await onMain(c[label], (s) => s.emit('bcast', ['red', 'blue'], p));
      assertGot(got, [...new Set([...RED, ...BLUE])], p, `bcast [red, blue] from ${label}`);
    }
  });

  test('bcast to null is the whole namespace, to an unknown room nobody', async () => {
    for (const label of ONE_PER_NODE) {
      const p = fresh(`null from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', null, p)), ALL, p, `bcast null from ${label}`);
      const q = fresh(`nobody from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', 'no-such-room', q)), [], q, `bcast no-such-room from ${label}`);
    }
  });

  test("bcast to a socket's id reaches that socket only, on another node", async () => {
    for (const from of ONE_PER_NODE) {
      const sender = c[from];
      for (const target of main.filter((s) => s.node !== sender.node)) {
        const p = fresh(`to ${target.label} from ${from}`);
        const got = await onMain(sender, (s) => s.emit('bcast', target.id, p));
        assertGot(got, [target], p, `bcast to ${target.label}'s id from ${from}`);
      }
    }
  });

  test('bcast-except: to(room).except(room / [rooms] / socket id) on every node', async () => {
    for (const from of ONE_PER_NODE) {
      const sender = c[from];
      const cases = [
        [null, 'red', ['R1w', 'R2p', 'N1w']],
        ['blue', 'red', ['R1w']],
        [['red', 'blue'], [c.R2w.id, 'nothing'], ['R1p', 'N1p', 'R1w']],
        [null, ['red', 'blue'], ['R2p', 'N1w']],
        [null, null, ALL],
        ['red', c.N1p.id, ['R1p', 'R2w']],
      ];
      for (const [room, except, receivers] of cases) {
        const p = fresh(`except from ${from}`);
        const got = await onMain(sender, (s) => s.emit('bcast-except', room, except, p));
        assertGot(got, receivers, p, `bcast-except ${JSON.stringify([room, except])} from ${from}`);
      }
    }
  });
});

describe('cluster: namespaces', () => {
  test('ping-all, bcast and bcast-except on `/custom` reach `/custom` clients of every node only', async () => {
    for (const label of ONE_PER_NODE) {
      const p = fresh(`custom ping-all from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('ping-all', 1, p)), custom_(ALL), p, `/custom ping-all from ${label}`);
      const q = fresh(`custom red from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('bcast', 'red', q)),
        custom_(['R1w', 'R2p', 'N1w']), q, `/custom bcast red from ${label}`);
      const r = fresh(`custom except from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('bcast-except', null, 'red', r)),
        custom_(['R1p', 'R2w', 'N1p']), r, `/custom bcast-except red from ${label}`);
    }
  });

  test('nothing leaks to the other namespace (checked again after 300 ms)', async () => {
    const sent = [];
    for (const label of ONE_PER_NODE) {
      const p = fresh(`/ red from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', 'red', p)), RED, p);
      const q = fresh(`/custom red from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('bcast', 'red', q)), custom_(['R1w', 'R2p', 'N1w']), q);
      sent.push(p, q);
    }
    await sleep(300); // absence: a late, misrouted copy would show up by now
    for (const s of [...main, ...custom]) {
      assert.deepEqual(s.queue('msg').items.map((a) => a[0]), [], `${s.label} got something late`);
    }
  });
});

describe('cluster: binary payloads', () => {
  const binaryPayload = (tag) => {
    const p = fresh(tag);
    return { ...p, bin: Buffer.from([0, 1, 2, 0xfe, 0xff, p.seq & 0xff]), nested: { list: ['x', Buffer.from(`héllo ${tag}`)] } };
  };

  test('a Buffer inside a broadcast crosses the cluster from every node, both transports', async () => {
    for (const label of ALL) {
      const p = binaryPayload(`bin from ${label}`);
      const got = await onMain(c[label], (s) => s.emit('bcast', null, p));
      assertGot(got, ALL, p, `binary bcast from ${label}`);
      for (const s of main) {
        assert.ok(Buffer.isBuffer(got[s.label][0].bin), `${s.label}: bin is not a Buffer`);
        assert.ok(Buffer.isBuffer(got[s.label][0].nested.list[1]), `${s.label}: nested bin is not a Buffer`);
      }
    }
  });

  test('binary to a room on `/custom` and through except', async () => {
    for (const label of ONE_PER_NODE) {
      const p = binaryPayload(`custom bin from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('bcast', 'red', p)), custom_(['R1w', 'R2p', 'N1w']), p);
      const q = binaryPayload(`bin except from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast-except', 'red', 'blue', q)), ['R1p', 'R2w'], q);
    }
  });
});
