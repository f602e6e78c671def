'use strict';
// Connection state recovery across nodes with the Redis Streams adapter (`--redis-adapter
// streams --recovery`: 120 s, middlewares skipped), the official client reconnecting by itself:
//   - kill -9 the client's node behind the nginx recipe (ip_hash): it recovers on the other node,
//     a Rust one and a Node one (socket.io 4.8 + @socket.io/redis-streams-adapter 0.3), with the
//     same id and rooms, and the events sent to it while it was away, once and in order;
//   - recover three times in a row, the middle time without any new event (no replay twice);
//   - recover 30 s after connecting (after a transport close, and after its node was killed);
//   - recover after a fast reconnect (transport closed right after an event, ten times);
//   - a session stored by a Node node restored by a Rust node, and the other way round.
// The cases run concurrently (the 30 s ones set the pace), each on nodes of its own where it
// kills one.
//
// CLUSTER_RUST_AS_NODE=1 runs every node as a Node node (the reference cluster); what it does
// in each case is in conformance/README.md ("Redis Streams: recovery across nodes").

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { closeSioClients, createSio, waitConnect, nextEvent } = require('./support/socketio');
const {
  startRedis, startNode, startNginx, connectTo, fresh, msgsUntil, ACK_TIMEOUT,
} = require('./support/cluster');

const ARGS = ['--redis-adapter', 'streams', '--recovery'];
const RECONNECT = {
  transports: ['websocket'], reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 600,
};

let redis;
const nodes = {};
const proxies = [];
/** nginx fronts, by case. */
const via = {};

before(async () => {
  redis = await startRedis();
  // Victims (killed) and survivors.
  for (const [name, kind] of [['R1', 'rust'], ['R2', 'rust'], ['R3', 'rust'], ['R4', 'rust'],
    ['N1', 'node'], ['N2', 'node']]) {
    nodes[name] = await startNode(kind, redis.url, ARGS, name);
  }
  // Before any node is killed (the probe asks every node).
  via.k1 = await nginxWithHome(nodes.R1, nodes.R2);
  via.k2 = await nginxWithHome(nodes.R3, nodes.N1);
  via.t30 = await nginxWithHome(nodes.R4, nodes.R2);
});

after(async () => {
  closeSioClients();
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await Promise.allSettled(Object.values(nodes).map((n) => n.stop()));
  if (redis) await redis.stop();
});

/** The node a client behind nginx is on: the one that does not answer its sse-ack. */
async function homeOf(socket, pair) {
  const reply = await socket.timeout(ACK_TIMEOUT).emitWithAck('sse-ack', 'where');
  assert.ok(Array.isArray(reply.responses), `sse-ack: ${JSON.stringify(reply)}`);
  const ports = reply.responses.map((r) => r.port);
  return pair.find((n) => !ports.includes(n.port));
}

/** nginx over [home, other] such that clients land on `home` (ip_hash picks by position). */
async function nginxWithHome(home, other) {
  for (const order of [[home, other], [other, home]]) {
    const nginx = await startNginx(order);
    const proxy = { name: `nginx(${order.map((n) => n.name)})`, url: nginx.url, port: nginx.port };
    const probe = await connectTo(proxy, { t: 'w', label: 'probe' });
    const landed = await homeOf(probe, order);
    probe.disconnect();
    if (landed === home) {
      proxies.push(nginx);
      return proxy;
    }
    await nginx.stop();
  }
  throw new Error(`no nginx order puts clients on ${home.name}`);
}

/** An official client on `server` that reconnects by itself. */
async function recoveringClient(server, label) {
  const s = createSio(server, '/', RECONNECT);
  s.label = label;
  s.node = server;
  s.nsp = '/';
  await waitConnect(s);
  await nextEvent(s, 'auth');
  return s;
}

/** `socket` joins `room` (acked by its node). */
async function join(socket, room) {
  await socket.timeout(ACK_TIMEOUT).emitWithAck('join', room);
}

/**
 * A sender on `server` in rooms `rooms`: `send(room, payload)` broadcasts `msg` to `room` and
 * resolves once the sender itself got it, i.e. once the event is in the stream. (The cases run
 * concurrently on one namespace: each one uses rooms of its own.)
 */
async function sender(server, rooms, label) {
  const s = await connectTo(server, { t: 'w', label });
  for (const r of rooms) await join(s, r);
  s.send = async (room, payload, { confirm = true } = {}) => {
    s.emit('bcast', room, payload);
    // The next confirmed send proves this one is in the stream too (one node's XADDs are in order).
    if (confirm) await msgsUntil(s, { marker: payload.marker, seq: payload.seq });
  };
  return s;
}

/** A payload that is also its own marker (for msgsUntil). */
function ev(tag) {
  return fresh(tag, { marker: true });
}

/** Resolves on the next `connect` of `socket` (after a reconnection). */
function reconnected(socket) {
  socket.connects.items.splice(0);
  return socket.connects.next(4 * ACK_TIMEOUT);
}

/** Resolves on the next `disconnect` of `socket`. */
function disconnected(socket) {
  socket.disconnects.items.splice(0);
  return socket.disconnects.next(ACK_TIMEOUT);
}

/**
 * The common check after a recovery: same id, `recovered`, and exactly `missed` (in order)
 * before a fresh marker sent to `room` (which proves the room was restored).
 */
async function assertRecovered(client, oldId, snd, room, missed, context) {
  assert.equal(client.recovered, true, `${context}: socket.recovered`);
  assert.equal(client.id, oldId, `${context}: same id`);
  const marker = ev(`${context}: marker`);
  await snd.send(room, marker);
  const got = await msgsUntil(client, marker);
  assert.deepEqual(got, missed, `${context}: missed events, once and in order`);
}

/**
 * Kills the node of `client` (behind nginx) once it received an event, sends events while it
 * is away (to its room, to everyone, to a room it is not in), and checks its recovery.
 */
async function killAndRecover(client, victim, snd, context) {
  const [r, other] = client.rooms;
  const before = ev(`${context}: before`);
  await snd.send(r, before);
  await msgsUntil(client, before);
  const oldId = client.id;
  const gone = disconnected(client);
  const back = reconnected(client);
  victim.process.child.kill('SIGKILL');
  await gone;
  const m1 = ev(`${context}: m1 to its room`);
  const m2 = ev(`${context}: m2 to its id`);
  const m3 = ev(`${context}: m3 to another room`);
  const m4 = ev(`${context}: m4 to its room`);
  await snd.send(r, m1);
  await snd.send(oldId, m2, { confirm: false });
  await snd.send(other, m3);
  await snd.send(r, m4);
  await back;
  await assertRecovered(client, oldId, snd, r, [m1, m2, m4], context);
}

/** A recovering client in room `<tag>-r` (with `<tag>-other` as the room it is not in). */
async function inRooms(client, tag) {
  client.rooms = [`${tag}-r`, `${tag}-other`];
  await join(client, client.rooms[0]);
  return client;
}

describe('streams: recovery across nodes', { concurrency: true }, () => {
  test('kill -9 the node behind nginx: recovered on another Rust node, missed events once, in order', async () => {
    const proxy = via.k1;
    const snd = await sender(nodes.R2, ['k1-r', 'k1-other'], 'sender-k1');
    const c = await inRooms(await recoveringClient(proxy, 'kill-to-rust'), 'k1');
    await killAndRecover(c, nodes.R1, snd, 'R1 killed -> R2');
  });

  test('kill -9 the node behind nginx: recovered on a Node node', async () => {
    const proxy = via.k2;
    const snd = await sender(nodes.N1, ['k2-r', 'k2-other'], 'sender-k2');
    const c = await inRooms(await recoveringClient(proxy, 'kill-to-node'), 'k2');
    await killAndRecover(c, nodes.R3, snd, 'R3 killed -> N1');
  });

  test('recover three times in a row, the middle time with nothing missed (nothing replayed twice)', async () => {
    const snd = await sender(nodes.R2, ['tw-r'], 'sender-twice');
    const c = await inRooms(await recoveringClient(nodes.R2, 'twice'), 'tw');
    const oldId = c.id;
    const m0 = ev('twice: m0');
    await snd.send('tw-r', m0);
    await msgsUntil(c, m0);
    for (const [round, missed] of [[1, [ev('twice: m1')]], [2, []], [3, [ev('twice: m3')]]]) {
      const gone = disconnected(c);
      const back = reconnected(c);
      c.io.engine.close();
      await gone;
      for (const m of missed) await snd.send('tw-r', m);
      await back;
      await assertRecovered(c, oldId, snd, 'tw-r', missed, `twice: round ${round}`);
    }
  });

  test('recover 30 s after connecting: after a transport close, and after kill -9 of its node', async () => {
    const proxy = via.t30;
    const snd = await sender(nodes.R2, ['t30-r', 't30-other'], 'sender-30s');
    const closing = await inRooms(await recoveringClient(nodes.R2, '30s-close'), 't30');
    const killed = await inRooms(await recoveringClient(proxy, '30s-kill'), 't30');
    const first = ev('30s: first');
    await snd.send('t30-r', first);
    await msgsUntil(closing, first);
    await msgsUntil(killed, first);
    await new Promise((resolve) => setTimeout(resolve, 30000));
    // Transport closed by the client 30 s after connecting.
    const oldId = closing.id;
    const gone = disconnected(closing);
    const back = reconnected(closing);
    closing.io.engine.close();
    await gone;
    const m = ev('30s-close: missed');
    await snd.send('t30-r', m);
    await back;
    await assertRecovered(closing, oldId, snd, 't30-r', [m], '30s after connecting, transport close');
    // Its node killed 30 s after it connected (the other client, on R2, gets the same events).
    await killAndRecover(killed, nodes.R4, snd, '30s after connecting, R4 killed -> R2');
  });

  test('recover after a fast reconnect (transport closed right after an event), ten times', async () => {
    const snd = await sender(nodes.R2, ['fa-r'], 'sender-fast');
    const c = createSio(nodes.R2, '/', { ...RECONNECT, reconnectionDelay: 1, reconnectionDelayMax: 1 });
    c.label = 'fast';
    c.node = nodes.R2;
    c.nsp = '/';
    await waitConnect(c);
    await nextEvent(c, 'auth');
    await inRooms(c, 'fa');
    const oldId = c.id;
    const failures = [];
    for (let i = 0; i < 10; i++) {
      const m = ev(`fast ${i}`);
      await snd.send('fa-r', m);
      await msgsUntil(c, m);
      const back = reconnected(c);
      c.io.engine.close();
      await back;
      if (!c.recovered || c.id !== oldId) {
        // A new session: its room is gone, the next rounds would wait for nothing.
        failures.push(i);
        break;
      }
    }
    assert.deepEqual(failures, [], 'fast reconnects that were not recovered');
    await assertRecovered(c, oldId, snd, 'fa-r', [], 'fast: rooms kept');
  });

  test('a session stored by a Node node is restored by a Rust node, and the other way round', async () => {
    for (const [from, to, tag] of [[nodes.N2, nodes.R2, 'nr'], [nodes.R2, nodes.N2, 'rn']]) {
      const context = `${from.name}(${from.impl}) -> ${to.name}(${to.impl})`;
      const snd = await sender(to, [`${tag}-r`], `sender ${context}`);
      const c = await inRooms(await recoveringClient(from, context), tag);
      const m0 = ev(`${context}: m0`);
      await snd.send(`${tag}-r`, m0);
      await msgsUntil(c, m0);
      const oldId = c.id;
      // The next reconnection goes to the other node.
      c.io.uri = to.url;
      const gone = disconnected(c);
      const back = reconnected(c);
      c.io.engine.close();
      await gone;
      const m1 = ev(`${context}: m1`);
      await snd.send(`${tag}-r`, m1);
      await back;
      await assertRecovered(c, oldId, snd, `${tag}-r`, [m1], context);
    }
  });
});
