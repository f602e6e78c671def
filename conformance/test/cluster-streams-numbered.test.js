'use strict';
// The broadcast cases of cluster-broadcast.test.js on the Redis Streams adapter with connection
// state recovery on every node (`--redis-adapter streams --recovery`): every event then carries
// its stream entry id as its last argument, and a Rust node delivers even its own broadcasts
// when it reads them back from the stream (a Node node delivers its own at once). Rooms,
// except, namespaces and binary must behave exactly as without recovery, on 2 Rust + 1 Node.

process.env.CLUSTER_REDIS_ADAPTER = 'streams';
process.env.CLUSTER_RECOVERY = '1';
require('./cluster-broadcast.test.js');

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { closeSioClients } = require('./support/socketio');
const { startCluster, connectTo, fresh } = require('./support/cluster');

let cluster;
after(async () => {
  closeSioClients();
  if (cluster) await cluster.stop();
});

test('an event has one offset, its stream entry id, on every node (Rust and Node, both senders)', async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust', N1: 'node' });
  const clients = [];
  for (const node of cluster.nodes) clients.push(await connectTo(node, { t: 'w', label: `${node.name}w` }));
  for (const from of clients) {
    const payload = fresh(`from ${from.label}`);
    from.emit('ping-all', 1, payload);
    const got = await Promise.all(clients.map(async (c) => {
      for (;;) {
        const args = await c.queue('msg').next();
        if (args[0] && args[0].seq === payload.seq) return args;
      }
    }));
    for (const args of got) {
      assert.equal(args.length, 2, `payload + offset: ${JSON.stringify(args)}`);
      assert.match(args[1], /^\d+-\d+$/);
    }
    assert.equal(new Set(got.map((a) => a[1])).size, 1, `one offset on every node: ${JSON.stringify(got)}`);
  }
});
