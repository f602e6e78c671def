'use strict';
// `@socket.io/redis-emitter` 5.1 (a process that is no Socket.IO server: uid "emitter", no
// requestId, JSON requests without uid) reaching the clients of two Rust nodes (R1, R2) and one
// Node.js node (N1): emit to all, to a room, except, to `/custom`, binary, socketsJoin /
// socketsLeave / disconnectSockets and serverSideEmit (which every node, as none is the sender,
// answers with `sse-got` to its local sockets). Markers go through the same emitter (one Redis
// connection: its publishes arrive in order).

const { describe, test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { until } = require('./support/helpers');
const { closeSioClients, nextEvent } = require('./support/socketio');
const {
  startCluster, connectTo, connectAlso, closeClient, drain, fresh, deliver, assertGot,
  createEmitter, runEmitterScript, ACK_TIMEOUT,
} = require('./support/cluster');

let cluster;
let emitterHandle;
let emitter;
const c = {};
let main = [];
let custom = [];
const ALL = ['R1p', 'R1w', 'R2p', 'R2w', 'N1p', 'N1w'];
const custom_ = (labels) => labels.map((l) => `${l}/custom`);

before(async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust', N1: 'node' });
  for (const node of cluster.nodes) {
    for (const t of ['p', 'w']) {
      const label = `${node.name}${t}`;
      c[label] = await connectTo(node, { t, label });
      c[`${label}/custom`] = await connectAlso(c[label], '/custom');
    }
  }
  main = ALL.map((l) => c[l]);
  custom = ALL.map((l) => c[`${l}/custom`]);
  for (const l of ['R1p', 'R2w', 'N1p']) await c[l].timeout(ACK_TIMEOUT).emitWithAck('join', 'red');
  for (const l of ['R2p', 'N1p']) await c[l].timeout(ACK_TIMEOUT).emitWithAck('join', 'blue');
  for (const l of ['R1w', 'N1w']) await c[`${l}/custom`].timeout(ACK_TIMEOUT).emitWithAck('join', 'red');
  emitterHandle = await createEmitter(cluster.redis.url);
  emitter = emitterHandle.emitter;
});

after(async () => {
  closeSioClients();
  if (emitterHandle) await emitterHandle.close();
  if (cluster) await cluster.stop();
});

beforeEach(() => drain([...main, ...custom]));

const RED = ['R1p', 'R2w', 'N1p'];

/** Delivery of `op()` through the emitter, the marker through the same emitter's `nsp`. */
function viaEmitter(nsp, op) {
  const [watchers, others] = nsp === '/' ? [main, custom] : [custom, main];
  return deliver({ op, sendMarker: (m) => emitter.of(nsp).emit('msg', m), watchers, others });
}

async function fetchUntil(asker, r, expected, what) {
  let last;
  await until(async () => {
    last = await asker.timeout(ACK_TIMEOUT).emitWithAck('fetch', r);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, { what }).catch((err) => { err.message += ` (last: ${JSON.stringify(last)}, expected ${JSON.stringify(expected)})`; throw err; });
}
const ids = (sockets) => sockets.map((s) => s.id).sort();

describe('cluster: @socket.io/redis-emitter', () => {
  test('emit to all reaches every client of `/` on every node, and no `/custom` client', async () => {
    const p = fresh('emitter all');
    assertGot(await viaEmitter('/', () => emitter.emit('msg', p)), ALL, p);
  });

  test('to(room), to([rooms]), except(room), to(socket id)', async () => {
    const p = fresh('emitter red');
    assertGot(await viaEmitter('/', () => emitter.to('red').emit('msg', p)), RED, p);
    const q = fresh('emitter red+blue');
    assertGot(await viaEmitter('/', () => emitter.to(['red', 'blue']).emit('msg', q)), ['R1p', 'R2w', 'N1p', 'R2p'], q);
    const r = fresh('emitter except red');
    assertGot(await viaEmitter('/', () => emitter.except('red').emit('msg', r)), ['R1w', 'R2p', 'N1w'], r);
    const s = fresh('emitter red except blue');
    assertGot(await viaEmitter('/', () => emitter.to('red').except('blue').emit('msg', s)), ['R1p', 'R2w'], s);
    for (const target of [c.R1w, c.R2p, c.N1w]) {
      const t = fresh(`emitter to ${target.label}`);
      assertGot(await viaEmitter('/', () => emitter.to(target.id).emit('msg', t)), [target], t);
    }
  });

  test('of(`/custom`) reaches `/custom` clients only, to a room too', async () => {
    const p = fresh('emitter /custom all');
    assertGot(await viaEmitter('/custom', () => emitter.of('/custom').emit('msg', p)), custom_(ALL), p);
    const q = fresh('emitter /custom red');
    assertGot(await viaEmitter('/custom', () => emitter.of('/custom').to('red').emit('msg', q)), custom_(['R1w', 'N1w']), q);
  });

  test('binary payloads from the emitter reach every node as binary', async () => {
    const p = fresh('emitter binary', { bin: Buffer.from([1, 2, 3, 0, 255]), more: [Buffer.alloc(0), Buffer.from('é')] });
    const got = await viaEmitter('/', () => emitter.emit('msg', p));
    assertGot(got, ALL, p);
    for (const s of main) assert.ok(Buffer.isBuffer(got[s.label][0].bin), `${s.label}: not a Buffer`);
    const q = fresh('emitter binary /custom red', { bin: Buffer.from([7]) });
    assertGot(await viaEmitter('/custom', () => emitter.of('/custom').to('red').emit('msg', q)), custom_(['R1w', 'N1w']), q);
  });

  test('socketsJoin / socketsLeave from the emitter act on every node', async () => {
    emitter.in('red').socketsJoin('from-emitter');
    await fetchUntil(c.R1w, 'from-emitter', ids([c.R1p, c.R2w, c.N1p]), 'emitter socketsJoin red -> from-emitter');
    emitter.in(c.R2p.id).socketsJoin(['from-emitter', 'other']);
    await fetchUntil(c.N1w, 'from-emitter', ids([c.R1p, c.R2w, c.N1p, c.R2p]), 'emitter socketsJoin by id');
    emitter.in('red').except(c.N1p.id).socketsLeave('from-emitter');
    await fetchUntil(c.R2p, 'from-emitter', ids([c.N1p, c.R2p]), 'emitter socketsLeave red except N1p');
    emitter.socketsLeave(['from-emitter', 'other']);
    await fetchUntil(c.R2p, 'from-emitter', [], 'emitter socketsLeave everyone');
    await fetchUntil(c.N1p, 'other', [], 'emitter socketsLeave everyone (other)');
  });

  test('serverSideEmit from the emitter reaches every node (all of them answer with sse-got)', async () => {
    const p = fresh('emitter sse');
    emitter.serverSideEmit('sse', p);
    for (const s of main) assert.deepEqual(await nextEvent(s, 'sse-got'), [p], s.label);
    const q = fresh('emitter sse /custom');
    emitter.of('/custom').serverSideEmit('sse', q);
    for (const s of custom) assert.deepEqual(await nextEvent(s, 'sse-got'), [q], s.label);
    for (const s of main) assert.deepEqual(s.queue('sse-got').items, [], `${s.label}: /custom sse leaked`);
  });

  test('disconnectSockets from the emitter disconnects the members on every node', async () => {
    const victims = [];
    try {
      for (const node of cluster.nodes) {
        const v = await connectTo(node, { t: 'p', label: `victim-${node.name}` });
        await v.timeout(ACK_TIMEOUT).emitWithAck('join', 'doomed');
        victims.push(v);
      }
      emitter.in('doomed').disconnectSockets(true);
      for (const v of victims) assert.equal(await v.disconnects.next(), 'io server disconnect', v.label);
      await fetchUntil(c.R1p, 'doomed', [], 'doomed empty');
      for (const s of main) assert.equal(await s.timeout(ACK_TIMEOUT).emitWithAck('echo', 'alive'), 'alive', s.label);
    } finally {
      for (const v of victims) closeClient(v);
    }
  });

  test('a one-shot emitter process (its own Redis connection, then QUIT)', async () => {
    const p = fresh('emitter script');
    const marker = fresh('script marker', { marker: true });
    const got = await deliver({
      op: () => runEmitterScript(cluster.redis.url, `
        emitter.to('red').emit('msg', ${JSON.stringify(p)});
        emitter.emit('msg', ${JSON.stringify(marker)});`),
      sendMarker: () => {}, // the script sent it after the broadcast, on the same connection
      marker,
      watchers: main,
      others: custom,
    });
    assertGot(got, RED, p);
  });
});
