'use strict';
// Server-side emits and broadcast acks across two Rust nodes (R1, R2) and one Node.js node (N1)
// on one Redis: `sse` (serverSideEmit: every OTHER node emits `sse-got` to its local sockets),
// `sse-ack` (serverSideEmit with an ack: one response per other node), `ask-all`
// (io.timeout().emit with an ack: the acks of every client of every node, aggregated; a client
// that does not answer makes it time out with the acks received so far), on `/` and `/custom`,
// from every node, with binary payloads and acks.

const { describe, test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { sleep } = require('./support/helpers');
const { closeSioClients, nextEvent } = require('./support/socketio');
const {
  startCluster, connectTo, connectAlso, closeClient, drain, fresh, ACK_TIMEOUT,
} = require('./support/cluster');

let cluster;
const c = {};
let main = [];
let custom = [];
const ALL = ['R1p', 'R1w', 'R2p', 'R2w', 'N1p', 'N1w'];
const ONE_PER_NODE = ['R1w', 'R2p', 'N1w'];

/**
 * Every client answers `ask` with {label, payload}, or with {label, bin: payload.ackWith} when
 * the question has `ackWith` (one Buffer per ack: socket.io-client refuses a packet with more
 * than 10 binary attachments, `maxAttachments`, closing its connection with "parse error").
 */
function answerAsks(socket) {
  socket.on('ask', (payload, ack) => {
    if (typeof ack !== 'function') return;
    if (payload && payload.ackWith !== undefined) ack({ label: socket.label, bin: payload.ackWith });
    else ack({ label: socket.label, payload });
  });
}

before(async () => {
  cluster = await startCluster({ R1: 'rust', R2: 'rust', N1: 'node' });
  for (const node of cluster.nodes) {
    for (const t of ['p', 'w']) {
      const label = `${node.name}${t}`;
      c[label] = await connectTo(node, { t, label, auth: { label } });
      c[`${label}/custom`] = await connectAlso(c[label], '/custom');
    }
  }
  main = ALL.map((l) => c[l]);
  custom = ALL.map((l) => c[`${l}/custom`]);
  for (const s of [...main, ...custom]) answerAsks(s);
});

after(async () => {
  closeSioClients();
  if (cluster) await cluster.stop();
});

beforeEach(() => drain([...main, ...custom], ['msg', 'sse-got', 'ask']));

const byPort = (a, b) => a.port - b.port;
const byLabel = (a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);

describe('cluster: serverSideEmit', () => {
  test('sse from every node reaches the local sockets of every OTHER node, on its namespace only', async () => {
    for (const [nsp, sockets] of [['/', main], ['/custom', custom]]) {
      const expected = new Map(sockets.map((s) => [s, []]));
      for (const from of ONE_PER_NODE) {
        const sender = nsp === '/' ? c[from] : c[`${from}/custom`];
        const p = fresh(`sse ${nsp} from ${from}`);
        assert.equal(await sender.timeout(ACK_TIMEOUT).emitWithAck('sse', p), undefined, 'sse acks ()');
        for (const s of sockets.filter((x) => x.node !== sender.node)) {
          assert.deepEqual(await nextEvent(s, 'sse-got'), [p], `${s.label}: sse-got ${nsp} from ${from}`);
        }
        for (const s of sockets.filter((x) => x.node !== sender.node)) expected.get(s).push(p);
      }
      await sleep(300); // absence: the sender's own node and the other namespace get nothing
      for (const s of [...main, ...custom]) {
        assert.deepEqual(s.queue('sse-got').items, [], `${s.label}: unexpected sse-got (after ${nsp})`);
      }
    }
  });

  test('sse-ack from every node: one response {port, payload} per other node', async () => {
    const ports = cluster.nodes.map((n) => n.port);
    for (const label of ALL) {
      for (const nsp of ['/', '/custom']) {
        const sender = nsp === '/' ? c[label] : c[`${label}/custom`];
        const p = fresh(`sse-ack ${nsp} from ${label}`, { list: [1, 'two', null, { x: true }] });
        const reply = await sender.timeout(ACK_TIMEOUT).emitWithAck('sse-ack', p);
        assert.ok(reply && Array.isArray(reply.responses), `sse-ack reply: ${JSON.stringify(reply)}`);
        assert.deepEqual(
          reply.responses.slice().sort(byPort),
          ports.filter((port) => port !== sender.node.port).map((port) => ({ port, payload: p })).sort(byPort),
          `sse-ack ${nsp} from ${label}`,
        );
        assert.deepEqual(Object.keys(reply), ['responses']);
      }
    }
  });
});

describe('cluster: broadcast with acks (ask-all)', () => {
  test('ask-all from every node aggregates the acks of every client of the namespace', async () => {
    for (const label of ALL) {
      for (const [nsp, sockets] of [['/', main], ['/custom', custom]]) {
        const sender = nsp === '/' ? c[label] : c[`${label}/custom`];
        const p = fresh(`ask ${nsp} from ${label}`);
        const reply = await sender.timeout(ACK_TIMEOUT).emitWithAck('ask-all', p, 8000);
        assert.equal(reply.error, null, `ask-all ${nsp} from ${label}: ${JSON.stringify(reply)}`);
        assert.deepEqual(reply.responses.slice().sort(byLabel),
          sockets.map((s) => ({ label: s.label, payload: p })).sort(byLabel), `ask-all ${nsp} from ${label}`);
        assert.deepEqual(Object.keys(reply).sort(), ['error', 'responses']);
      }
    }
  });

  test('ask-all with the default timeout (null) and binary payloads in the question and the acks', async () => {
    for (const label of ONE_PER_NODE) {
      const ackWith = Buffer.from([0, 0xff, label.charCodeAt(0), label.charCodeAt(1)]);
      const p = fresh(`binary ask from ${label}`, { bin: Buffer.from([9, 8, 7, 0, 255]), deep: [{ b: Buffer.from('ü') }], ackWith });
      const reply = await c[label].timeout(ACK_TIMEOUT).emitWithAck('ask-all', p, null);
      assert.equal(reply.error, null, JSON.stringify(reply));
      const responses = reply.responses.slice().sort(byLabel);
      assert.deepEqual(responses, main.map((s) => ({ label: s.label, bin: ackWith })).sort(byLabel));
      for (const r of responses) assert.ok(Buffer.isBuffer(r.bin), `${r.label}'s ack: bin is not a Buffer`);
      // Every client got the binary question as binary.
      for (const s of main) {
        const [q] = s.queue('ask').items.splice(0).at(-1);
        assert.deepEqual(q, p, `${s.label}: the question`);
        assert.ok(Buffer.isBuffer(q.bin) && Buffer.isBuffer(q.deep[0].b), `${s.label}: question bins are not Buffers`);
      }
    }
  });

  test('ask-all times out when a client of another node does not answer: error set, the other acks kept', async () => {
    // One mute client per node, and one ask-all from every node at once (each waits 2.5 s).
    const mutes = [];
    try {
      for (const node of cluster.nodes) mutes.push(await connectTo(node, { t: 'w', label: `mute-${node.name}` }));
      await Promise.all(['R1w', 'R2p', 'N1p'].map(async (asker) => {
        const p = fresh(`ask with mute clients from ${asker}`);
        const started = Date.now();
        const reply = await c[asker].timeout(ACK_TIMEOUT).emitWithAck('ask-all', p, 2500);
        const elapsed = Date.now() - started;
        assert.equal(reply.error, 'operation has timed out', `from ${asker}: ${JSON.stringify(reply)}`);
        assert.deepEqual(reply.responses.slice().sort(byLabel),
          main.map((s) => ({ label: s.label, payload: p })).sort(byLabel), `acks kept (from ${asker})`);
        assert.ok(elapsed >= 2400, `answered after ${elapsed} ms, before the 2500 ms timeout`);
      }));
      for (const mute of mutes) {
        const asked = mute.queue('ask').items.map((args) => args[0].tag).sort();
        assert.deepEqual(asked, ['R1w', 'R2p', 'N1p'].map((a) => `ask with mute clients from ${a}`).sort(),
          `${mute.label} was asked by every node`);
      }
    } finally {
      for (const mute of mutes) closeClient(mute);
    }
  });
});
