'use strict';
// The Admin UI's server side across a Redis cluster of two Rust nodes (A, B), as
// `@socket.io/admin-ui` does it for Node: every node's reports are emitted on the
// admin namespace through the adapter (so an admin on A hears B's), `all_sockets`
// is a cluster-wide fetchSockets (a remote socket's clientId and transport travel
// in its data's `_admin`), and the commands act through the adapter on every node.
// A Node node (N: socket.io 4.8 + @socket.io/redis-adapter + the package's own
// instrument(), conformance/cluster/node-server.js --admin N) shares the cluster:
// admins on either kind of node see the other kind's server, sockets and events.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { TIMEOUT, until } = require('./support/helpers');
const {
  createSio, waitConnect, connectSio, nextEvent, waitSioUpgrade, closeSioClients,
} = require('./support/socketio');
const { startRedis, startNode, ACK_TIMEOUT } = require('./support/cluster');

const ORIGIN = 'https://admin.socket.io';
const WAIT = ACK_TIMEOUT;

let redis;
const nodes = {};

before(async () => {
  redis = await startRedis();
  for (const name of ['A', 'B']) {
    nodes[name] = await startNode('rust', redis.url,
      ['--admin', '--admin-server-id', name, '--admin-stats-interval', '300'], name);
  }
  nodes.N = await startNode('node', redis.url, ['--admin', 'N'], 'N');
});

after(async () => {
  closeSioClients();
  await Promise.allSettled(Object.values(nodes).map((n) => n.stop()));
  if (redis) await redis.stop();
});

function connectAdmin(node) {
  return waitConnect(createSio(node, '/admin', { withCredentials: true, extraHeaders: { origin: ORIGIN } }));
}

async function nextMatching(sock, name, pred, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const args = await nextEvent(sock, name, Math.max(1, deadline - Date.now()));
    if (pred(...args)) return args;
  }
}

describe('admin UI on a Redis cluster of Rust nodes', () => {
  test('an admin on A sees B: stats, sockets, events; its commands reach B\'s clients', async () => {
    const admin = await connectAdmin(nodes.A);
    await nextEvent(admin, 'all_sockets', WAIT);
    // Both servers report, each under its own id.
    const servers = new Set();
    await until(async () => {
      const [st] = await nextEvent(admin, 'server_stats', WAIT);
      assert.ok(Array.isArray(st.namespaces) && Array.isArray(st.aggregatedEvents));
      servers.add(st.serverId);
      return servers.has('A') && servers.has('B');
    }, { timeout: WAIT * 2, interval: 0, what: 'server_stats of A and B' });

    const client = await connectSio(nodes.B, '/', {});
    const id = client.id;
    const clientId = client.io.engine.id.slice(0, 12);
    const [s] = await nextMatching(admin, 'socket_connected', (x) => x.id === id);
    assert.equal(s.nsp, '/');
    assert.equal(s.clientId, clientId);
    await waitSioUpgrade(client);
    assert.deepEqual((await nextMatching(admin, 'socket_updated', (u) => u.id === id))[0],
      { id, nsp: '/', transport: 'websocket' });

    client.emit('message', 'from B');
    assert.deepEqual((await nextMatching(admin, 'event_received', (n, i) => i === id)).slice(0, 3),
      ['/', id, ['message', 'from B']]);

    // A second admin on A lists B's socket, with the details B gave.
    const admin2 = await connectAdmin(nodes.A);
    const [all] = await nextEvent(admin2, 'all_sockets', WAIT);
    const remote = all.find((x) => x.id === id);
    assert.ok(remote, JSON.stringify(all.map((x) => [x.id, x.nsp])));
    assert.deepEqual(Object.keys(remote), ['id', 'clientId', 'transport', 'nsp', 'data', 'handshake', 'rooms']);
    assert.equal(remote.clientId, clientId);
    assert.equal(remote.transport, 'websocket');
    assert.deepEqual(remote.data, {});
    assert.deepEqual(remote.rooms, [id]);
    assert.equal(remote.handshake.query.EIO, '4');
    assert.ok(all.find((x) => x.id === admin.id), 'the admins of A are listed too');

    // Commands from A act on B's client.
    admin.emit('emit', '/', null, 'hello', 'cluster');
    assert.deepEqual(await nextEvent(client, 'hello', WAIT), ['cluster']);
    admin.emit('join', '/', 'blue', id);
    await until(async () => (await client.timeout(TIMEOUT).emitWithAck('rooms', null)).includes('blue'),
      { timeout: WAIT, what: 'blue joined on B' });
    assert.deepEqual((await nextMatching(admin, 'room_joined', (n, r) => r === 'blue')).slice(0, 3),
      ['/', 'blue', id]);
    admin.emit('_disconnect', '/', false, id);
    assert.equal(await client.disconnects.next(WAIT), 'io server disconnect');
    assert.deepEqual((await nextMatching(admin, 'socket_disconnected', (n, i) => i === id)).slice(0, 3),
      ['/', id, 'server namespace disconnect']);
  });

  test('Rust and Node nodes mix: each kind\'s admin sees the other\'s server, sockets, events', async () => {
    const admin = await connectAdmin(nodes.A);
    await nextEvent(admin, 'all_sockets', WAIT);
    // Node's server_stats (every 2 s) reach an admin on a Rust node.
    const [st] = await nextMatching(admin, 'server_stats', (x) => x.serverId === 'N', WAIT * 2);
    assert.ok(st.namespaces.some((n) => n.name === '/admin'));

    const onNode = await connectSio(nodes.N, '/', { transports: ['websocket'] });
    const [s] = await nextMatching(admin, 'socket_connected', (x) => x.id === onNode.id);
    assert.equal(s.clientId, onNode.io.engine.id.slice(0, 12));
    onNode.emit('echo', 'n', () => {});
    assert.deepEqual((await nextMatching(admin, 'event_received', (n, i) => i === onNode.id))[2], ['echo', 'n']);

    const onRust = await connectSio(nodes.A, '/', { transports: ['websocket'] });
    // The Node package's admin lists the Rust node's socket with the details we gave
    // in its data's _admin (and hides them from data).
    const nodeAdmin = await connectAdmin(nodes.N);
    const [all] = await nextEvent(nodeAdmin, 'all_sockets', WAIT);
    const r = all.find((x) => x.id === onRust.id);
    assert.ok(r, JSON.stringify(all.map((x) => [x.id, x.nsp])));
    assert.equal(r.clientId, onRust.io.engine.id.slice(0, 12));
    assert.equal(r.transport, 'websocket');
    assert.deepEqual(r.data, {});
    // And ours lists the Node node's socket with Node's details.
    const admin2 = await connectAdmin(nodes.A);
    const [all2] = await nextEvent(admin2, 'all_sockets', WAIT);
    const n = all2.find((x) => x.id === onNode.id);
    assert.ok(n, JSON.stringify(all2.map((x) => [x.id, x.nsp])));
    assert.equal(n.clientId, onNode.io.engine.id.slice(0, 12));
    assert.equal(n.transport, 'websocket');
    assert.deepEqual(n.data, {});

    // Commands from the Node admin reach the Rust node's client, and back.
    nodeAdmin.emit('emit', '/', onRust.id, 'from-node-admin', 1);
    assert.deepEqual(await nextEvent(onRust, 'from-node-admin', WAIT), [1]);
    admin.emit('emit', '/', onNode.id, 'from-rust-admin', 2);
    assert.deepEqual(await nextEvent(onNode, 'from-rust-admin', WAIT), [2]);
  });
});
