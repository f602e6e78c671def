'use strict';
// The sharded adapter on a Redis Cluster of three primaries (support/redis-cluster.js): two Rust
// nodes (`conformance-server --redis-adapter sharded --redis redis+cluster://...`) and one Node.js
// node (node-server.js, `createShardedAdapter` over node-redis `createCluster`). Channels live on
// the shard that owns their slot, so a room's channel and the namespace's channel are usually on
// different shards: there is no order between them, and absence is checked after a pause.
// Then a shard primary is killed and restarted under traffic: the Rust nodes must reconnect to it,
// subscribe their channels there again, and delivery must resume in both directions.

const { describe, test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { sleep, until } = require('./support/helpers');
const { closeSioClients, nextEvent } = require('./support/socketio');
const { startNode, connectTo, drain, fresh, ACK_TIMEOUT } = require('./support/cluster');
const { startRedisCluster } = require('./support/redis-cluster');

const SHARDED = ['--redis-adapter', 'sharded'];
let rc;
const nodes = [];
const c = {};
let all = [];

/** Subscribers of `channel` on the primary that owns its slot. */
async function shardNumSub(channel) {
  const owner = await rc.slotOwner(channel);
  const reply = await rc.command(owner, ['PUBSUB', 'SHARDNUMSUB', channel]);
  return Number(/:(\d+)\r\n$/.exec(reply)[1]);
}

async function subscribers(channel, n) {
  let last;
  await until(async () => (last = await shardNumSub(channel).catch(() => -1)) === n,
    { timeout: 20000, what: `${n} subscribers of ${channel}` })
    .catch((err) => { err.message += ` (last: ${last})`; throw err; });
}

/** Waits until each of `receivers` got `payload` as its next `msg`. */
async function received(receivers, payload, timeout = ACK_TIMEOUT) {
  for (const s of receivers) {
    for (;;) {
      const [got] = await nextEvent(s, 'msg', timeout);
      if (got && got.seq === payload.seq && got.tag === payload.tag) break;
    }
  }
}

before(async () => {
  rc = await startRedisCluster(3);
  for (const [name, kind] of [['R1', 'rust'], ['R2', 'rust'], ['N1', 'node']]) {
    nodes.push(await startNode(kind, rc.url, SHARDED, name));
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
  closeSioClients();
  await Promise.allSettled(nodes.map((n) => n.stop()));
  if (rc) await rc.stop();
});

beforeEach(() => drain(all));

describe('sharded adapter on a Redis Cluster (3 primaries)', () => {
  test('every node counted (SHARDNUMSUB summed over the shards), broadcasts from every node', async () => {
    await subscribers('socket.io#/#', 3);
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
    const owners = new Set(await Promise.all(rooms.map((r) => rc.slotOwner(`socket.io#/#${r}#`))));
    assert.ok(owners.size >= 2, `room channels on ${owners.size} shard(s) only`);
    const members = {};
    for (const [i, r] of rooms.entries()) {
      // Two members on two different nodes, rotating.
      members[r] = [all[i % all.length], all[(i + 3) % all.length]];
      for (const s of members[r]) await s.timeout(ACK_TIMEOUT).emitWithAck('join', r);
      await subscribers(`socket.io#/#${r}#`, 2);
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

  test('a shard primary killed and restarted under traffic: the Rust nodes reconnect, delivery resumes', async () => {
    // The Node node leaves first: node-redis 4.7's cluster client does not always subscribe its
    // sharded channels again on a restarted primary (seen in about one run in three), which is
    // not what this test is about. Two Rust nodes stay, with their four clients.
    const node = nodes.find((n) => n.name === 'N1');
    await node.stop();
    const rust = [c.R1p, c.R1w, c.R2p, c.R2w];
    await subscribers('socket.io#/#', 2);
    const main = 'socket.io#/#';
    const owner = await rc.slotOwner(main);
    // Traffic from both nodes while the shard goes down and comes back.
    let n = 0;
    const senders = [c.R1w, c.R2w];
    const timer = setInterval(() => {
      for (const s of senders) s.emit('ping-all', 1, { tag: 'traffic', seq: ++n });
    }, 50);
    try {
      await sleep(300);
      await rc.restart(owner, { killed: true, downMs: 1000 });
      // Both nodes subscribe the namespace's channel on the restarted primary again.
      await subscribers(main, 2);
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
        }, { timeout: 30000, interval: 10, what: `delivery from ${from.label} after the restart` });
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
