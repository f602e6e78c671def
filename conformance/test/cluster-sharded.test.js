'use strict';
// The sharded adapter (Redis 7 SPUBLISH / SSUBSCRIBE) across two Rust nodes (R1, R2,
// `conformance-server --redis-adapter sharded`) and one Node.js node (N1, node-server.js with
// `createShardedAdapter`, default subscriptionMode `dynamic`) on one private Redis: the cases of
// the classic cluster tests (broadcast, rooms, except, binary, fetchSockets, socketsJoin / Leave,
// disconnectSockets, serverSideEmit with acks, broadcasts with acks, serverCount) from every
// node, plus what is particular to this mode: one channel per public room, subscribed by the
// nodes that have members (PUBSUB SHARDNUMSUB), dropped when the room empties.
//
// A broadcast to one room travels on the room's channel while the marker that ends `deliver()`
// travels on the namespace's channel: one publisher's SPUBLISHes still reach each subscriber
// connection in order (one Redis). A room's channel is subscribed when the room is created, so a
// test that broadcasts to a room right after a join first waits until every node with members
// is counted on it.

const { describe, test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { sleep, until } = require('./support/helpers');
const { closeSioClients, nextEvent } = require('./support/socketio');
const {
  startCluster, connectTo, connectAlso, closeClient, drain, fresh, deliver, markerFrom, assertGot,
  ACK_TIMEOUT,
} = require('./support/cluster');

const SHARDED = ['--redis-adapter', 'sharded'];
let cluster;
let redis; // a client of the test's own, for PUBSUB SHARDNUMSUB
const c = {};
let main = [];
let custom = [];
const ALL = ['R1p', 'R1w', 'R2p', 'R2w', 'N1p', 'N1w'];
const ONE_PER_NODE = ['R1w', 'R2p', 'N1w'];
const RED = ['R1p', 'R2w', 'N1p'];
const BLUE = ['R1w', 'N1p'];

async function shardNumSub(channel) {
  const reply = await redis.sendCommand(['PUBSUB', 'SHARDNUMSUB', channel]);
  return Number(reply[1]);
}

/** Waits until `n` nodes subscribe the channel of `room` on `nsp`. */
async function roomSubscribers(room, n, nsp = '/') {
  const channel = `socket.io#${nsp}#${room}#`;
  let last;
  await until(async () => (last = await shardNumSub(channel)) === n,
    { what: `${n} subscribers of ${channel}` })
    .catch((err) => { err.message += ` (last: ${last})`; throw err; });
}

function answerAsks(socket) {
  socket.on('ask', (payload, ack) => {
    if (typeof ack !== 'function') return;
    if (payload && payload.ackWith !== undefined) ack({ label: socket.label, bin: payload.ackWith });
    else ack({ label: socket.label, payload });
  });
}

before(async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust', N1: 'node' }, SHARDED);
  redis = createClient({ url: cluster.redis.url });
  redis.on('error', () => {});
  await redis.connect();
  for (const node of cluster.nodes) {
    for (const t of ['p', 'w']) {
      const label = `${node.name}${t}`;
      c[label] = await connectTo(node, { t, label, auth: { label } });
      c[`${label}/custom`] = await connectAlso(c[label], '/custom', { auth: { label: `${label}/custom` } });
    }
  }
  main = ALL.map((l) => c[l]);
  custom = ALL.map((l) => c[`${l}/custom`]);
  for (const s of [...main, ...custom]) answerAsks(s);
  for (const l of RED) await c[l].timeout(ACK_TIMEOUT).emitWithAck('join', 'red');
  for (const l of BLUE) await c[l].timeout(ACK_TIMEOUT).emitWithAck('join', 'blue');
  for (const l of ['R1w', 'R2p', 'N1w']) await c[`${l}/custom`].timeout(ACK_TIMEOUT).emitWithAck('join', 'red');
  await roomSubscribers('red', 3);
  await roomSubscribers('blue', 2);
  await roomSubscribers('red', 3, '/custom');
});

after(async () => {
  closeSioClients();
  if (redis) await redis.quit().catch(() => {});
  if (cluster) await cluster.stop();
});

beforeEach(() => drain([...main, ...custom], ['msg', 'sse-got', 'ask']));

const ids = (sockets) => sockets.map((s) => s.id).sort();
const custom_ = (labels) => labels.map((l) => `${l}/custom`);
let roomSeq = 0;
const room = (tag) => `${tag}-${++roomSeq}`;

function onMain(sender, emit) {
  return deliver({ op: () => emit(sender), sendMarker: markerFrom(sender), watchers: main, others: custom });
}

function onCustom(label, emit) {
  const sender = c[`${label}/custom`];
  return deliver({ op: () => emit(sender), sendMarker: markerFrom(sender), watchers: custom, others: main });
}

async function fetchUntil(asker, r, expected, what) {
  let last;
  await until(async () => {
    last = await asker.timeout(ACK_TIMEOUT).emitWithAck('fetch', r);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, { what: `${what}: fetch ${JSON.stringify(r)} from ${asker.label} = ${JSON.stringify(expected)}` })
    .catch((err) => { err.message += ` (last: ${JSON.stringify(last)})`; throw err; });
}

describe('sharded: room channels', () => {
  test('a node subscribes a public room while it has members there, and no socket-id room', async () => {
    // `red` has members on the three nodes, `blue` on R1 and N1.
    assert.equal(await shardNumSub('socket.io#/#red#'), 3);
    assert.equal(await shardNumSub('socket.io#/#blue#'), 2);
    for (const s of main) assert.equal(await shardNumSub(`socket.io#/#${s.id}#`), 0, `${s.label}'s id room`);
    // The namespaces' channels: every node, each namespace.
    assert.equal(await shardNumSub('socket.io#/#'), 3);
    assert.equal(await shardNumSub('socket.io#/custom#'), 3);
    // A room created and emptied on a Rust node, then on the Node node.
    for (const label of ['R2p', 'N1w']) {
      const r = room('sub');
      await c[label].timeout(ACK_TIMEOUT).emitWithAck('join', r);
      await roomSubscribers(r, 1);
      await c[label].timeout(ACK_TIMEOUT).emitWithAck('leave', r);
      await roomSubscribers(r, 0);
    }
  });

  test('a room channel is dropped when its last local member disconnects', async () => {
    const r = room('gone');
    const s = await connectTo(cluster.byName.R1, { t: 'w', label: 'leaver' });
    await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
    await roomSubscribers(r, 1);
    closeClient(s);
    await roomSubscribers(r, 0);
  });
});

describe('sharded: broadcast', () => {
  test('ping-all (io.emit) from every node reaches every client of `/`, n times', async () => {
    for (const label of ALL) {
      const p = fresh(`ping-all from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('ping-all', 2, p)), ALL, [p, p], `ping-all from ${label}`);
    }
  });

  test('bcast to one room (its own channel) from every node reaches its members only', async () => {
    for (const label of ALL) {
      const p = fresh(`red from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', 'red', p)), RED, p, `bcast red from ${label}`);
    }
  });

  test('bcast to several rooms, to null, to an unknown room, to a socket id on another node', async () => {
    for (const label of ONE_PER_NODE) {
      const p = fresh(`red+blue from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', ['red', 'blue'], p)),
        [...new Set([...RED, ...BLUE])], p, `bcast [red, blue] from ${label}`);
      const q = fresh(`null from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', null, q)), ALL, q, `bcast null from ${label}`);
      const r = fresh(`nobody from ${label}`);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', 'no-such-room', r)), [], r);
      for (const target of main.filter((s) => s.node !== c[label].node)) {
        const t = fresh(`to ${target.label} from ${label}`);
        assertGot(await onMain(c[label], (s) => s.emit('bcast', target.id, t)), [target], t,
          `bcast to ${target.label}'s id from ${label}`);
      }
    }
  });

  test('bcast-except from every node', async () => {
    for (const from of ONE_PER_NODE) {
      const cases = [
        [null, 'red', ['R1w', 'R2p', 'N1w']],
        ['blue', 'red', ['R1w']],
        [['red', 'blue'], [c.R2w.id, 'nothing'], ['R1p', 'N1p', 'R1w']],
        ['red', c.N1p.id, ['R1p', 'R2w']],
      ];
      for (const [r, except, receivers] of cases) {
        const p = fresh(`except from ${from}`);
        assertGot(await onMain(c[from], (s) => s.emit('bcast-except', r, except, p)), receivers, p,
          `bcast-except ${JSON.stringify([r, except])} from ${from}`);
      }
    }
  });

  test('`/custom` is separate: its own rooms and channels, nothing leaks', async () => {
    for (const label of ONE_PER_NODE) {
      const p = fresh(`custom red from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('bcast', 'red', p)), custom_(['R1w', 'R2p', 'N1w']), p);
      const q = fresh(`custom all from ${label}`);
      assertGot(await onCustom(label, (s) => s.emit('ping-all', 1, q)), custom_(ALL), q);
    }
    await sleep(300); // absence: a misrouted copy would show up by now
    for (const s of [...main, ...custom]) assert.deepEqual(s.queue('msg').items, [], `${s.label} got something late`);
  });

  test('binary payloads from every node (MessagePack envelopes), to all and to a room', async () => {
    for (const label of ALL) {
      const p = fresh(`bin from ${label}`);
      p.bin = Buffer.from([0, 1, 2, 0xfe, 0xff, p.seq & 0xff]);
      p.nested = { list: ['x', Buffer.from(`héllo ${label}`)] };
      const got = await onMain(c[label], (s) => s.emit('bcast', null, p));
      assertGot(got, ALL, p, `binary bcast from ${label}`);
      for (const s of main) assert.ok(Buffer.isBuffer(got[s.label][0].bin), `${s.label}: bin is not a Buffer`);
      const q = fresh(`bin red from ${label}`);
      q.bin = Buffer.from([7, 7]);
      assertGot(await onMain(c[label], (s) => s.emit('bcast', 'red', q)), RED, q);
    }
  });
});

describe('sharded: requests', () => {
  test('fetch(room), fetch(null), fetch([a, b]), fetch(unknown) from every node', async () => {
    const a = room('fa');
    const b = room('fb');
    for (const s of [c.R1w, c.N1w]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', a);
    for (const s of [c.N1w, c.R2p]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', b);
    for (const asker of ALL) {
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', a), ids([c.R1w, c.N1w]), `fetch a from ${asker}`);
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', null), ids(main), `fetch null from ${asker}`);
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', [a, b]), ids([c.R1w, c.N1w, c.R2p]));
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', 'no-such-room'), []);
      assert.deepEqual(await c[`${asker}/custom`].timeout(ACK_TIMEOUT).emitWithAck('fetch', null), ids(custom));
    }
  });

  test('fetch-detail: id, rooms and handshake auth of remote sockets, both directions', async () => {
    const r = room('fd');
    const f1 = await connectTo(cluster.byName.R1, { t: 'p', label: 'fdR1', auth: { who: 'fdR1', n: 1 } });
    const f3 = await connectTo(cluster.byName.N1, { t: 'w', label: 'fdN1' });
    try {
      for (const s of [f1, f3]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
      const expected = [
        { id: f1.id, rooms: [f1.id, r].sort(), auth: { who: 'fdR1', n: 1 } },
        { id: f3.id, rooms: [f3.id, r].sort(), auth: {} },
      ].sort((x, y) => (x.id < y.id ? -1 : 1));
      for (const asker of [...ONE_PER_NODE, 'fdR1', 'fdN1']) {
        const s = c[asker] || [f1, f3].find((f) => f.label === asker);
        assert.deepEqual(await s.timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', r), expected, `fetch-detail from ${asker}`);
      }
    } finally {
      closeClient(f1);
      closeClient(f3);
    }
  });

  test('all-rooms is not part of the sharded protocol: an error on Rust and Node nodes alike', async () => {
    for (const asker of ONE_PER_NODE) {
      const reply = await c[asker].timeout(ACK_TIMEOUT).emitWithAck('all-rooms');
      assert.ok(reply && typeof reply.error === 'string', `all-rooms from ${asker}: ${JSON.stringify(reply)}`);
    }
  });

  test('sjoin / sleave by socket id and by room, Rust -> Node, Node -> Rust, Rust -> Rust', async () => {
    const r = room('sj');
    await c.R1p.timeout(ACK_TIMEOUT).emitWithAck('sjoin', c.N1w.id, r);
    await fetchUntil(c.R2w, r, ids([c.N1w]), 'R1 -> N1 sjoin');
    await c.N1p.timeout(ACK_TIMEOUT).emitWithAck('sjoin', c.R2p.id, r);
    await fetchUntil(c.R1w, r, ids([c.N1w, c.R2p]), 'N1 -> R2 sjoin');
    await c.R2w.timeout(ACK_TIMEOUT).emitWithAck('sjoin', c.R1w.id, r);
    await fetchUntil(c.N1p, r, ids([c.N1w, c.R2p, c.R1w]), 'R2 -> R1 sjoin');
    await roomSubscribers(r, 3);
    const p = fresh('to sjoined');
    assertGot(await deliver({ op: () => c.N1p.emit('bcast', r, p), sendMarker: markerFrom(c.N1p), watchers: main }),
      ['N1w', 'R2p', 'R1w'], p);
    for (const asker of ONE_PER_NODE) {
      const dst = room('dst');
      await c[asker].timeout(ACK_TIMEOUT).emitWithAck('sjoin', 'red', dst);
      await fetchUntil(c[asker], dst, ids(RED.map((l) => c[l])), `sjoin red -> ${dst} from ${asker}`);
      await c[asker].timeout(ACK_TIMEOUT).emitWithAck('sleave', null, dst);
      await fetchUntil(c[asker], dst, [], `sleave null ${dst} from ${asker}`);
      await roomSubscribers(dst, 0);
    }
  });

  test('kick(room) and kick(socket id) across nodes disconnect the sockets on every node', async () => {
    for (const asker of ['N1p', 'R1w']) {
      const r = room('doomed');
      const v = [];
      try {
        for (const node of cluster.nodes) {
          const s = await connectTo(node, { t: 'w', label: `victim-${node.name}` });
          await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
          v.push(s);
        }
        await c[asker].timeout(ACK_TIMEOUT).emitWithAck('kick', r);
        for (const s of v) assert.equal(await s.disconnects.next(), 'io server disconnect', `${s.label} (from ${asker})`);
      } finally {
        for (const s of v) closeClient(s);
      }
    }
    for (const [asker, targetNode] of [['R2p', 'N1'], ['N1w', 'R1']]) {
      const v = await connectTo(cluster.byName[targetNode], { t: 'w', label: `kick-${targetNode}` });
      try {
        await c[asker].timeout(ACK_TIMEOUT).emitWithAck('kick', v.id);
        assert.equal(await v.disconnects.next(), 'io server disconnect', `kick from ${asker}`);
      } finally {
        closeClient(v);
      }
    }
  });

  test('count: servers = 3 (SHARDNUMSUB) on both namespaces from every node', async () => {
    for (const label of ALL) {
      for (const s of [c[label], c[`${label}/custom`]]) {
        let last;
        await until(async () => {
          last = await s.timeout(ACK_TIMEOUT).emitWithAck('count');
          return last.servers === 3 && last.cluster === 6 && last.local === 2;
        }, { what: `count from ${s.label}` }).catch((err) => {
          err.message += `: last ${JSON.stringify(last)}`;
          throw err;
        });
      }
    }
  });
});

describe('sharded: server-side emits and broadcasts with acks', () => {
  test('sse from every node reaches the local sockets of every other node', async () => {
    for (const from of ONE_PER_NODE) {
      const p = fresh(`sse from ${from}`);
      assert.equal(await c[from].timeout(ACK_TIMEOUT).emitWithAck('sse', p), undefined);
      for (const s of main.filter((x) => x.node !== c[from].node)) {
        assert.deepEqual(await nextEvent(s, 'sse-got'), [p], `${s.label}: sse-got from ${from}`);
      }
    }
    await sleep(300); // absence: the sender's own node gets nothing
    for (const s of [...main, ...custom]) assert.deepEqual(s.queue('sse-got').items, [], `${s.label}: unexpected sse-got`);
  });

  test('sse-ack from every node: one response {port, payload} per other node', async () => {
    const ports = cluster.nodes.map((n) => n.port);
    for (const label of ALL) {
      for (const nsp of ['/', '/custom']) {
        const sender = nsp === '/' ? c[label] : c[`${label}/custom`];
        const p = fresh(`sse-ack ${nsp} from ${label}`, { list: [1, 'two', null, { x: true }] });
        const reply = await sender.timeout(ACK_TIMEOUT).emitWithAck('sse-ack', p);
        assert.ok(reply && Array.isArray(reply.responses), `sse-ack reply: ${JSON.stringify(reply)}`);
        assert.deepEqual(reply.responses.slice().sort((a, b) => a.port - b.port),
          ports.filter((port) => port !== sender.node.port).map((port) => ({ port, payload: p })).sort((a, b) => a.port - b.port),
          `sse-ack ${nsp} from ${label}`);
      }
    }
  });

  test('ask-all from every node aggregates the acks of every client, binary both ways', async () => {
    const byLabel = (a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    for (const label of ALL) {
      const p = fresh(`ask from ${label}`);
      const reply = await c[label].timeout(ACK_TIMEOUT).emitWithAck('ask-all', p, 8000);
      assert.equal(reply.error, null, `ask-all from ${label}: ${JSON.stringify(reply)}`);
      assert.deepEqual(reply.responses.slice().sort(byLabel), main.map((s) => ({ label: s.label, payload: p })).sort(byLabel));
    }
    for (const label of ONE_PER_NODE) {
      const ackWith = Buffer.from([0, 0xff, label.charCodeAt(0), label.charCodeAt(1)]);
      const p = fresh(`binary ask from ${label}`, { bin: Buffer.from([9, 8, 7]), ackWith });
      const reply = await c[`${label}/custom`].timeout(ACK_TIMEOUT).emitWithAck('ask-all', p, null);
      assert.equal(reply.error, null, JSON.stringify(reply));
      const responses = reply.responses.slice().sort(byLabel);
      assert.deepEqual(responses, custom.map((s) => ({ label: s.label, bin: ackWith })).sort(byLabel));
      for (const r of responses) assert.ok(Buffer.isBuffer(r.bin), `${r.label}'s ack: bin is not a Buffer`);
    }
  });

  test('ask-all times out when a client of another node does not answer, the other acks kept', async () => {
    const byLabel = (a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    const mutes = [];
    try {
      for (const node of cluster.nodes) mutes.push(await connectTo(node, { t: 'w', label: `mute-${node.name}` }));
      await Promise.all(['R1w', 'N1p'].map(async (asker) => {
        const p = fresh(`ask with mutes from ${asker}`);
        const reply = await c[asker].timeout(ACK_TIMEOUT).emitWithAck('ask-all', p, 2500);
        assert.equal(reply.error, 'operation has timed out', `from ${asker}: ${JSON.stringify(reply)}`);
        assert.deepEqual(reply.responses.slice().sort(byLabel), main.map((s) => ({ label: s.label, payload: p })).sort(byLabel));
      }));
    } finally {
      for (const m of mutes) closeClient(m);
    }
  });
});
