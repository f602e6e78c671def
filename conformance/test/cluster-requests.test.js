'use strict';
// Cluster-wide requests across two Rust nodes (R1, R2) and one Node.js node (N1) on one Redis:
// fetchSockets (`fetch`, `fetch-detail`), allRooms (`all-rooms`), socketsJoin / socketsLeave
// (`sjoin` / `sleave`), disconnectSockets (`kick`) and serverCount (`count`), asked from every
// node about sockets of every node (Rust -> Node, Node -> Rust, Rust -> Rust), on `/` and
// `/custom`. socketsJoin / socketsLeave / disconnectSockets are fire-and-forget across nodes, so
// their effect is awaited (fetch until it shows, or the disconnect event), never slept on.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { until } = require('./support/helpers');
const { closeSioClients } = require('./support/socketio');
const {
  startCluster, connectTo, connectAlso, closeClient, fresh, deliver, markerFrom, assertGot,
  ACK_TIMEOUT, REDIS_ADAPTER,
} = require('./support/cluster');

let cluster;
const c = {};
let main = [];
let custom = [];
const ALL = ['R1p', 'R1w', 'R2p', 'R2w', 'N1p', 'N1w'];
const ONE_PER_NODE = ['R1w', 'R2p', 'N1w'];

before(async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust', N1: 'node' });
  for (const node of cluster.nodes) {
    for (const t of ['p', 'w']) {
      const label = `${node.name}${t}`;
      c[label] = await connectTo(node, { t, label, auth: { label } });
      c[`${label}/custom`] = await connectAlso(c[label], '/custom', { auth: { label: `${label}/custom` } });
    }
  }
  main = ALL.map((l) => c[l]);
  custom = ALL.map((l) => c[`${l}/custom`]);
});

after(async () => {
  closeSioClients();
  if (cluster) await cluster.stop();
});

const ids = (sockets) => sockets.map((s) => s.id).sort();
let roomSeq = 0;
const room = (tag) => `${tag}-${++roomSeq}`;

/** Waits until `fetch(room)` asked through `asker` acks `expected` (sorted ids). */
async function fetchUntil(asker, r, expected, what) {
  let last;
  await until(async () => {
    last = await asker.timeout(ACK_TIMEOUT).emitWithAck('fetch', r);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, { what: `${what}: fetch ${JSON.stringify(r)} from ${asker.label} = ${JSON.stringify(expected)}` })
    .catch((err) => { err.message += ` (last: ${JSON.stringify(last)})`; throw err; });
}

describe('cluster: fetchSockets', () => {
  test('fetch(room) from every node lists the members of every node', async () => {
    const r = room('f');
    const members = [c.R1p, c.R2w, c.N1p, c.N1w];
    for (const s of members) await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
    for (const asker of ALL) {
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', r), ids(members), `fetch ${r} from ${asker}`);
    }
  });

  test('fetch(null) is the whole namespace, fetch([a, b]) a union, fetch(unknown) empty', async () => {
    const a = room('fa');
    const b = room('fb');
    await c.R1w.timeout(ACK_TIMEOUT).emitWithAck('join', a);
    await c.N1w.timeout(ACK_TIMEOUT).emitWithAck('join', a);
    await c.N1w.timeout(ACK_TIMEOUT).emitWithAck('join', b);
    await c.R2p.timeout(ACK_TIMEOUT).emitWithAck('join', b);
    for (const asker of ONE_PER_NODE) {
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', null), ids(main), `fetch null on / from ${asker}`);
      assert.deepEqual(await c[`${asker}/custom`].timeout(ACK_TIMEOUT).emitWithAck('fetch', null), ids(custom),
        `fetch null on /custom from ${asker}`);
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', [a, b]), ids([c.R1w, c.N1w, c.R2p]), `fetch [a, b] from ${asker}`);
      assert.deepEqual(await c[`${asker}/custom`].timeout(ACK_TIMEOUT).emitWithAck('fetch', [a, b]), [],
        `/custom sockets are not in /'s rooms (from ${asker})`);
      assert.deepEqual(await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch', 'no-such-room'), [], `fetch unknown from ${asker}`);
    }
  });

  test('fetch-detail: id, sorted rooms (own id included) and handshake auth of remote sockets', async () => {
    const r = room('fd');
    const extra = room('fdx');
    // Fresh sockets, so that their rooms are known exactly; one per node, both transports.
    const fresh1 = await connectTo(cluster.byName.R1, { t: 'p', label: 'fdR1', auth: { who: 'fdR1', n: 1 } });
    const fresh2 = await connectTo(cluster.byName.R2, { t: 'w', label: 'fdR2', auth: { who: 'fdR2', nested: { a: [1, 'x'] } } });
    const fresh3 = await connectTo(cluster.byName.N1, { t: 'w', label: 'fdN1' }); // no auth: {}
    try {
      for (const s of [fresh1, fresh2, fresh3]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
      await fresh2.timeout(ACK_TIMEOUT).emitWithAck('join', extra);
      const expected = [
        { id: fresh1.id, rooms: [fresh1.id, r].sort(), auth: { who: 'fdR1', n: 1 } },
        { id: fresh2.id, rooms: [fresh2.id, r, extra].sort(), auth: { who: 'fdR2', nested: { a: [1, 'x'] } } },
        { id: fresh3.id, rooms: [fresh3.id, r].sort(), auth: {} },
      ].sort((x, y) => (x.id < y.id ? -1 : 1));
      for (const asker of [...ONE_PER_NODE, 'fdR1', 'fdN1']) {
        const s = c[asker] || [fresh1, fresh2, fresh3].find((f) => f.label === asker);
        assert.deepEqual(await s.timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', r), expected, `fetch-detail ${r} from ${asker}`);
      }
      // Room of one socket: the detail of that one only.
      assert.deepEqual(await c.N1p.timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', fresh2.id), [expected.find((e) => e.id === fresh2.id)]);
      assert.deepEqual(await c.R1p.timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', fresh3.id), [expected.find((e) => e.id === fresh3.id)]);
    } finally {
      for (const s of [fresh1, fresh2, fresh3]) closeClient(s);
    }
  });
});

// allRooms across nodes is a request of the classic adapter only (the cluster adapter of
// `@socket.io/redis-streams-adapter` has none): cluster-streams.test.js runs this file without it.
(REDIS_ADAPTER === 'classic' ? describe : () => {})('cluster: allRooms', () => {
  test('all-rooms from every node: the rooms of every node, socket-id rooms included, per namespace', async () => {
    const r1 = room('ar');
    const r2 = room('ar');
    await c.R1p.timeout(ACK_TIMEOUT).emitWithAck('join', r1);
    await c.N1w.timeout(ACK_TIMEOUT).emitWithAck('join', r2);
    await c['R2w/custom'].timeout(ACK_TIMEOUT).emitWithAck('join', r2);
    for (const asker of ONE_PER_NODE) {
      const rooms = await c[asker].timeout(ACK_TIMEOUT).emitWithAck('all-rooms');
      assert.ok(Array.isArray(rooms), `all-rooms from ${asker}: ${JSON.stringify(rooms)}`);
      assert.deepEqual(rooms, [...rooms].sort(), 'sorted');
      assert.equal(new Set(rooms).size, rooms.length, `no duplicates: ${JSON.stringify(rooms)}`);
      for (const s of main) assert.ok(rooms.includes(s.id), `${s.label}'s id room missing from ${asker}'s all-rooms`);
      assert.ok(rooms.includes(r1) && rooms.includes(r2), `${r1}, ${r2} in ${JSON.stringify(rooms)}`);
      for (const s of custom) assert.ok(!rooms.includes(s.id), `/custom socket ${s.label} in /'s all-rooms`);
      // Exactly the union of every socket's rooms (empty rooms do not exist).
      const detail = await c[asker].timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', null);
      const union = [...new Set(detail.flatMap((d) => d.rooms))].sort();
      assert.deepEqual(rooms, union, `all-rooms from ${asker} = union of every socket's rooms`);

      const customRooms = await c[`${asker}/custom`].timeout(ACK_TIMEOUT).emitWithAck('all-rooms');
      const customDetail = await c[`${asker}/custom`].timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', null);
      assert.deepEqual(customRooms, [...new Set(customDetail.flatMap((d) => d.rooms))].sort(),
        `/custom all-rooms from ${asker} = union of its sockets' rooms`);
      for (const s of custom) assert.ok(customRooms.includes(s.id), `${s.label}'s id room in /custom's all-rooms`);
      assert.ok(customRooms.includes(r2), `${r2} in /custom's all-rooms`);
      assert.ok(!customRooms.includes(r1), `${r1} (a / room) in /custom's all-rooms`);
    }
  });
});

describe('cluster: socketsJoin / socketsLeave', () => {
  test('sjoin by socket id, Rust -> Node and Node -> Rust, then the room works cluster-wide', async () => {
    const r = room('sj');
    await c.R1p.timeout(ACK_TIMEOUT).emitWithAck('sjoin', c.N1w.id, r); // Rust asks, a Node socket joins
    await fetchUntil(c.R2w, r, ids([c.N1w]), 'R1 -> N1 sjoin');
    await c.N1p.timeout(ACK_TIMEOUT).emitWithAck('sjoin', c.R2p.id, r); // Node asks, a Rust socket joins
    await fetchUntil(c.R1w, r, ids([c.N1w, c.R2p]), 'N1 -> R2 sjoin');
    await c.R2w.timeout(ACK_TIMEOUT).emitWithAck('sjoin', c.R1w.id, r); // Rust -> other Rust
    await fetchUntil(c.N1p, r, ids([c.N1w, c.R2p, c.R1w]), 'R2 -> R1 sjoin');
    const p = fresh('to sjoined');
    const got = await deliver({ op: () => c.N1p.emit('bcast', r, p), sendMarker: markerFrom(c.N1p), watchers: main });
    assertGot(got, ['N1w', 'R2p', 'R1w'], p);
  });

  test('sjoin / sleave by room and for the whole namespace, from every node', async () => {
    for (const asker of ONE_PER_NODE) {
      const src = room('src');
      const dst = room('dst');
      const dst2 = room('dst');
      for (const s of [c.R1p, c.R2w, c.N1p]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', src);
      await c[asker].timeout(ACK_TIMEOUT).emitWithAck('sjoin', src, [dst, dst2]);
      await fetchUntil(c[asker], dst, ids([c.R1p, c.R2w, c.N1p]), `sjoin ${src} -> ${dst} from ${asker}`);
      await fetchUntil(c[asker], dst2, ids([c.R1p, c.R2w, c.N1p]), `sjoin ${src} -> ${dst2} from ${asker}`);
      await c[asker].timeout(ACK_TIMEOUT).emitWithAck('sleave', src, dst);
      await fetchUntil(c[asker], dst, [], `sleave ${src} ${dst} from ${asker}`);
      await fetchUntil(c[asker], dst2, ids([c.R1p, c.R2w, c.N1p]), `${dst2} kept (${asker})`);
      // Whole namespace.
      const everyone = room('everyone');
      await c[asker].timeout(ACK_TIMEOUT).emitWithAck('sjoin', null, everyone);
      await fetchUntil(c[asker], everyone, ids(main), `sjoin null -> ${everyone} from ${asker}`);
      assert.deepEqual(await c[`${asker}/custom`].timeout(ACK_TIMEOUT).emitWithAck('fetch', everyone), [], 'not on /custom');
      await c[asker].timeout(ACK_TIMEOUT).emitWithAck('sleave', null, [everyone, dst2]);
      await fetchUntil(c[asker], everyone, [], `sleave null from ${asker}`);
      await fetchUntil(c[asker], dst2, [], `sleave null ${dst2} from ${asker}`);
    }
  });

  test('sjoin on `/custom` only affects `/custom` sockets', async () => {
    const r = room('csj');
    await c['N1p/custom'].timeout(ACK_TIMEOUT).emitWithAck('sjoin', null, r);
    await fetchUntil(c['R1w/custom'], r, ids(custom), 'sjoin null on /custom');
    assert.deepEqual(await c.R1w.timeout(ACK_TIMEOUT).emitWithAck('fetch', r), [], 'no / socket joined');
    await c['R2p/custom'].timeout(ACK_TIMEOUT).emitWithAck('sleave', c['N1w/custom'].id, r);
    await fetchUntil(c['N1p/custom'], r, ids(custom.filter((s) => s !== c['N1w/custom'])), 'sleave by id on /custom');
  });
});

describe('cluster: disconnectSockets', () => {
  /** Three fresh victims in room `r` (one per node) plus a bystander per node. */
  async function victims(r) {
    const v = [];
    for (const [i, node] of cluster.nodes.entries()) {
      const s = await connectTo(node, { t: i % 2 ? 'p' : 'w', label: `victim-${node.name}` });
      await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
      v.push(s);
    }
    return v;
  }

  test('kick(room) from a Node node and from a Rust node disconnects the members on every node', async () => {
    for (const asker of ['N1p', 'R1w']) {
      const r = room('doomed');
      const v = await victims(r);
      try {
        await c[asker].timeout(ACK_TIMEOUT).emitWithAck('kick', r);
        for (const s of v) {
          const reason = await s.disconnects.next();
          assert.equal(reason, 'io server disconnect', `${s.label} (kick from ${asker})`);
        }
        await fetchUntil(c[asker], r, [], `members of ${r} gone`);
        // Bystanders still connected and answering.
        for (const s of main) assert.equal(await s.timeout(ACK_TIMEOUT).emitWithAck('echo', 'alive'), 'alive', s.label);
      } finally {
        for (const s of v) closeClient(s);
      }
    }
  });

  test('kick(socket id) across nodes: Rust -> Node, Node -> Rust; close=true closes the connection', async () => {
    for (const [asker, targetNode] of [['R2p', 'N1'], ['N1w', 'R1'], ['R1p', 'R2']]) {
      const v = await connectTo(cluster.byName[targetNode], { t: 'w', label: `kick-${targetNode}` });
      const vc = await connectAlso(v, '/custom');
      try {
        await c[asker].timeout(ACK_TIMEOUT).emitWithAck('kick', v.id);
        const reason = await v.disconnects.next();
        assert.equal(reason, 'io server disconnect', `kick from ${asker}`);
        // disconnectSockets(true) closes the whole Engine.IO connection: the socket on /custom
        // goes too, and Node first sends it a DISCONNECT packet (client._disconnect()).
        const reasonC = await vc.disconnects.next();
        assert.equal(reasonC, 'io server disconnect', `the connection's /custom socket (kick from ${asker})`);
        // And the node no longer counts the connection (its two main clients remain).
        const home = main.find((s) => s.node === v.node);
        await until(async () => (await home.timeout(ACK_TIMEOUT).emitWithAck('count')).local === 2,
          { what: `${targetNode} back to 2 connections (kick from ${asker})` });
      } finally {
        closeClient(v);
      }
    }
  });
});

describe('cluster: serverCount and counts', () => {
  test('count: servers = 3 on both namespaces, cluster = sockets of the namespace, local = connections of the node', async () => {
    for (const label of ALL) {
      for (const s of [c[label], c[`${label}/custom`]]) {
        let last;
        await until(async () => {
          last = await s.timeout(ACK_TIMEOUT).emitWithAck('count');
          // Every node has the two main connections (the /custom sockets share them); sockets
          // of earlier tests may still be closing.
          return last.servers === 3 && last.cluster === 6 && last.local === 2;
        }, { what: `count from ${s.label}` }).catch((err) => {
          err.message += `: expected {local: 2, cluster: 6, servers: 3}, last ${JSON.stringify(last)}`;
          throw err;
        });
        assert.deepEqual(last, { local: 2, cluster: 6, servers: 3 });
      }
    }
  });
});
