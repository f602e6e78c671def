'use strict';
// The classic and the sharded adapters on a Redis Cluster of three primaries
// (support/redis-cluster.js), each with two Rust nodes (`conformance-server --redis-adapter
// classic|sharded --redis redis+cluster://...`) and one Node.js node (node-server.js, the same
// adapter over node-redis `createCluster`). Sharded channels live on the shard that owns their
// slot (a room's channel and the namespace's channel usually on different shards: no order
// between them, absence checked after a pause); classic PUBLISH reaches every node of the
// cluster. Then every primary in turn is killed and restarted under traffic: the Rust nodes must
// reconnect, subscribe again, and delivery must resume in both directions.

const { describe, test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { sleep, until } = require('./support/helpers');
const { closeSioClients, nextEvent } = require('./support/socketio');
const { startNode, connectTo, drain, fresh, ACK_TIMEOUT } = require('./support/cluster');
const { startRedisCluster } = require('./support/redis-cluster');

let rc;

before(async () => {
  rc = await startRedisCluster(3);
});

after(async () => {
  closeSioClients();
  if (rc) await rc.stop();
});

/** Subscribers of a sharded channel, on the primary that owns its slot. */
async function shardNumSub(channel) {
  const owner = await rc.slotOwner(channel);
  const reply = await rc.command(owner, ['PUBSUB', 'SHARDNUMSUB', channel]);
  return Number(/:(\d+)\r\n$/.exec(reply)[1]);
}

/** Subscribers of a classic channel, summed over the primaries. */
async function numSub(channel) {
  let sum = 0;
  for (const port of rc.ports) {
    const reply = await rc.command(port, ['PUBSUB', 'NUMSUB', channel]);
    sum += Number(/:(\d+)\r\n$/.exec(reply)[1]);
  }
  return sum;
}

async function subscribers(count, channel, n) {
  let last;
  await until(async () => (last = await count(channel).catch(() => -1)) === n,
    { timeout: 20000, what: `${n} subscribers of ${channel}` })
    .catch((err) => { err.message += ` (last: ${last})`; throw err; });
}

/** Waits until each of `receivers` got `payload` as a `msg` (earlier ones skipped). */
async function received(receivers, payload, timeout = ACK_TIMEOUT) {
  for (const s of receivers) {
    for (;;) {
      const [got] = await nextEvent(s, 'msg', timeout);
      if (got && got.seq === payload.seq && got.tag === payload.tag) break;
    }
  }
}

for (const mode of ['classic', 'sharded']) {
  const sharded = mode === 'sharded';
  // The channel every node of the namespace subscribes, and how Redis counts it.
  const [nodesChannel, count] = sharded
    ? ['socket.io#/#', shardNumSub] : ['socket.io-request#/#', numSub];
  const roomChannel = (r) => `socket.io#/#${r}#`;

  describe(`${mode} adapter on a Redis Cluster (3 primaries)`, () => {
    const nodes = [];
    const c = {};
    let all = [];

    before(async () => {
      for (const [name, kind] of [['R1', 'rust'], ['R2', 'rust'], ['N1', 'node']]) {
        nodes.push(await startNode(kind, rc.url, ['--redis-adapter', mode], name));
      }
      for (const node of nodes) {
        for (const t of ['p', 'w']) {
          const label = `${node.name}${t}`;
          c[label] = await connectTo(node, { t, label });
        }
      }
      all = Object.values(c);
    });

    after(async () => {
      for (const s of all) s.disconnect();
      await Promise.allSettled(nodes.map((n) => n.stop()));
    });

    beforeEach(() => drain(all));

    test('every node counted (serverCount summed over the primaries), broadcasts from every node', async () => {
      await subscribers(count, nodesChannel, 3);
      for (const s of [c.R1w, c.R2p, c.N1w]) {
        assert.equal((await s.timeout(ACK_TIMEOUT).emitWithAck('count')).servers, 3, `servers seen by ${s.label}`);
      }
      for (const from of Object.keys(c)) {
        const p = fresh(`ping-all from ${from}`);
        c[from].emit('ping-all', 1, p);
        await received(all, p);
      }
    });

    test('rooms whose channels sit on different shards reach their members on every node only', async () => {
      // Six rooms: their slots spread over the three primaries.
      const rooms = ['sun', 'moon', 'star', 'comet', 'nova', 'orbit'];
      const owners = new Set(await Promise.all(rooms.map((r) => rc.slotOwner(roomChannel(r)))));
      assert.ok(owners.size >= 2, `room channels on ${owners.size} shard(s) only`);
      const members = {};
      for (const [i, r] of rooms.entries()) {
        // Two members on two different nodes, rotating.
        members[r] = [all[i % all.length], all[(i + 3) % all.length]];
        for (const s of members[r]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
        if (sharded) await subscribers(count, roomChannel(r), 2);
      }
      for (const r of rooms) {
        for (const from of [c.R1p, c.R2w, c.N1p]) {
          const p = fresh(`${r} from ${from.label}`);
          from.emit('bcast', r, p);
          await received(members[r], p);
        }
      }
      await sleep(300); // absence: nothing for the non-members
      for (const s of all) assert.deepEqual(s.queue('msg').items, [], `${s.label} got something it should not`);
    });

    test('requests across shards: fetch, sjoin, sse-ack', async () => {
      const ids = all.map((s) => s.id).sort();
      for (const s of [c.R1w, c.R2p, c.N1w]) {
        assert.deepEqual(await s.timeout(ACK_TIMEOUT).emitWithAck('fetch', null), ids, `fetch null from ${s.label}`);
        const reply = await s.timeout(ACK_TIMEOUT).emitWithAck('sse-ack', 'hi');
        assert.equal(reply.responses.length, 2, `sse-ack from ${s.label}: ${JSON.stringify(reply)}`);
      }
      await c.N1p.timeout(ACK_TIMEOUT).emitWithAck('sjoin', null, 'everyone');
      await until(async () => JSON.stringify(await c.R1p.timeout(ACK_TIMEOUT).emitWithAck('fetch', 'everyone')) === JSON.stringify(ids),
        { what: 'sjoin null everyone' });
    });

    test('every primary killed and restarted in turn under traffic: the Rust nodes reconnect, delivery resumes', async () => {
      // The Node node leaves first: node-redis 4.7's cluster client does not always subscribe its
      // sharded channels again on a restarted primary (seen in about one run in three), which is
      // not what this test is about. Two Rust nodes stay, with their four clients.
      const node = nodes.find((n) => n.name === 'N1');
      await node.stop();
      const rust = [c.R1p, c.R1w, c.R2p, c.R2w];
      await subscribers(count, nodesChannel, 2);
      // Traffic from both nodes while the shard goes down and comes back.
      let n = 0;
      const senders = [c.R1w, c.R2w];
      const timer = setInterval(() => {
        for (const s of senders) s.emit('ping-all', 1, { tag: 'traffic', seq: ++n });
      }, 50);
      try {
        for (const port of rc.ports) {
          await sleep(300);
          await rc.restart(port, { killed: true, downMs: 1000 });
          // Both nodes are subscribed again (wherever their subscriptions live).
          await subscribers(count, nodesChannel, 2);
          // Delivery resumes from every node to every client: a fresh payload reaches all four.
          for (const from of senders) {
            await until(async () => {
              const p = fresh(`after restart from ${from.label}`);
              from.emit('ping-all', 1, p);
              try {
                await received(rust, p, 2000);
                return true;
              } catch {
                return false;
              }
            }, { timeout: 30000, interval: 10, what: `delivery from ${from.label} after the restart of ${port}` });
          }
        }
      } finally {
        clearInterval(timer);
      }
      // Requests work again too (the response channels of both nodes included).
      for (const s of [c.R1p, c.R2p]) {
        await until(async () => {
          const r = await s.timeout(ACK_TIMEOUT).emitWithAck('count');
          return r.servers === 2 && r.cluster === 4;
        }, { timeout: 20000, what: `count from ${s.label} after the restart` });
        const reply = await s.timeout(ACK_TIMEOUT).emitWithAck('sse-ack', 'again');
        assert.equal(reply.responses.length, 1, JSON.stringify(reply));
      }
    });
  });
}
