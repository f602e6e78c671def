'use strict';
// Sticky sessions: the recipe of cluster/nginx.conf.template (nginx, `ip_hash` over two Rust
// nodes on one Redis, WebSocket upgrade headers proxied), run as an unprivileged foreground
// nginx with a private prefix. The official client connects through nginx over polling only,
// WebSocket only and the default polling -> WebSocket upgrade (each needs every request of its
// session to reach the same node), echoes with acks, and broadcasts to and from clients
// connected directly to the nodes, the one behind nginx and the other one.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { MODES } = require('./support/helpers');
const { closeSioClients, waitSioUpgrade } = require('./support/socketio');
const {
  startCluster, startNginx, connectTo, fresh, deliver, markerFrom, assertGot, ACK_TIMEOUT,
} = require('./support/cluster');

let cluster;
let nginx;
let proxy; // the nginx front, as a "node" for connectTo

before(async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust' });
  nginx = await startNginx(cluster.nodes);
  proxy = { name: 'nginx', url: nginx.url, wsUrl: nginx.wsUrl, port: nginx.port };
});

after(async () => {
  closeSioClients();
  if (nginx) await nginx.stop();
  if (cluster) await cluster.stop();
});

afterEach(() => closeSioClients());

/** Every argument of the ack of `event` (emitWithAck keeps the first one only). */
function callAll(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    socket.timeout(ACK_TIMEOUT).emit(event, ...args, (err, ...reply) => (err ? reject(err) : resolve(reply)));
  });
}

/**
 * The node a client connected through nginx landed on: its `sse-ack` is answered by every
 * OTHER node (here the single other one), so the home node is the one missing from the answer.
 */
async function homeOf(socket) {
  const reply = await socket.timeout(ACK_TIMEOUT).emitWithAck('sse-ack', 'where am I');
  assert.ok(reply && Array.isArray(reply.responses) && reply.responses.length === 1,
    `sse-ack through nginx: ${JSON.stringify(reply)}`);
  const others = reply.responses.map((r) => r.port);
  const home = cluster.nodes.filter((n) => !others.includes(n.port));
  assert.equal(home.length, 1, `home node of ${socket.label}: ports ${JSON.stringify(others)}`);
  return home[0];
}

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`nginx (ip_hash) over ${mode}`, () => {
    test(`${mode}: connect through nginx, echo with acks, stay on one node`, async () => {
      const s = await connectTo(proxy, { t: opts, label: `nginx-${mode}`, auth: { via: 'nginx' } });
      if (mode === 'polling+upgrade') await waitSioUpgrade(s);
      const want = mode === 'polling' ? 'polling' : 'websocket';
      assert.equal(s.io.engine.transport.name, want, 'transport');
      const bin = Buffer.from([1, 2, 3, 250]);
      assert.deepEqual(await callAll(s, 'echo', 'hello', { n: 1, bin }, [null, true]), ['hello', { n: 1, bin }, [null, true]]);
      // Several round trips (each polling request through nginx must reach the same node).
      for (let i = 0; i < 5; i++) assert.equal(await s.timeout(ACK_TIMEOUT).emitWithAck('echo', i), i);
      const home = await homeOf(s);
      assert.equal((await homeOf(s)).port, home.port, 'same node on a second request');
      // A second client from the same address lands on the same node (ip_hash).
      const s2 = await connectTo(proxy, { t: opts, label: `nginx-${mode}-2` });
      assert.equal((await homeOf(s2)).port, home.port, 'ip_hash: same address, same node');
      // The socket is seen cluster-wide with its handshake.
      const detail = await s2.timeout(ACK_TIMEOUT).emitWithAck('fetch-detail', s.id);
      assert.deepEqual(detail, [{ id: s.id, rooms: [s.id], auth: { via: 'nginx' } }]);
    });

    test(`${mode}: broadcasts between nginx clients and clients connected directly to each node`, async () => {
      const viaNginx = await connectTo(proxy, { t: opts, label: 'via-nginx' });
      if (mode === 'polling+upgrade') await waitSioUpgrade(viaNginx);
      const home = await homeOf(viaNginx);
      const other = cluster.nodes.find((n) => n !== home);
      const directOther = await connectTo(other, { t: 'p', label: `direct-other(${other.name})` });
      const directHome = await connectTo(home, { t: 'w', label: `direct-home(${home.name})` });
      const everyone = [viaNginx, directOther, directHome];
      await viaNginx.timeout(ACK_TIMEOUT).emitWithAck('join', 'room-n');
      await directOther.timeout(ACK_TIMEOUT).emitWithAck('join', 'room-n');

      // From the other node (directly) to the nginx client, and to everybody.
      const p = fresh(`${mode}: other -> room-n`, { bin: Buffer.from([7, 7]) });
      assertGot(await deliver({
        op: () => directOther.emit('bcast', 'room-n', p), sendMarker: markerFrom(directOther), watchers: everyone,
      }), [viaNginx, directOther], p);
      const q = fresh(`${mode}: other -> all`);
      assertGot(await deliver({
        op: () => directOther.emit('ping-all', 1, q), sendMarker: markerFrom(directOther), watchers: everyone,
      }), everyone, q);
      // And back: from the nginx client to the direct client of the other node.
      const r = fresh(`${mode}: nginx -> room-n`, { bin: Buffer.from([8]) });
      assertGot(await deliver({
        op: () => viaNginx.emit('bcast', 'room-n', r), sendMarker: markerFrom(viaNginx), watchers: everyone,
      }), [viaNginx, directOther], r);
      const t = fresh(`${mode}: nginx -> other's id`);
      assertGot(await deliver({
        op: () => viaNginx.emit('bcast', directOther.id, t), sendMarker: markerFrom(viaNginx), watchers: everyone,
      }), [directOther], t);
    });
  });
}
