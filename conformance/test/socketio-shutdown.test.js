'use strict';
// Graceful shutdown under load (issue #12): on SIGTERM the server closes with
// `SocketIo::close` and exits. Every client, over every transport, gets a clean
// `io server disconnect`; acks pending on either side resolve with an error; the
// process exits within its --shutdown-timeout (even when a handler never returns)
// with no task of either server left running.

const { describe, test, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const { MODES, until } = require('./support/helpers');
const { connectSio, closeSioClients } = require('./support/socketio');

afterEach(() => closeSioClients());

/** Resolves with the reason of the client's next `disconnect`. */
function disconnectReason(socket) {
  return new Promise((resolve) => socket.once('disconnect', (reason) => resolve(reason)));
}

/** SIGTERM, then how long the process took to exit and what it printed. */
async function terminate(server) {
  const started = Date.now();
  server.child.kill('SIGTERM');
  const { code, signal } = await server.exited;
  const tookMs = Date.now() - started;
  await until(() => server.stdout.some((l) => l.startsWith('closed:')), {
    timeout: 5000, what: 'the server to print its closing line',
  });
  return { code, signal, tookMs };
}

/** Connects `perMode` clients over each transport mode, busy with traffic. */
async function connectAll(server, perMode) {
  const clients = [];
  for (const [mode, opts] of Object.entries(MODES)) {
    for (let i = 0; i < perMode; i++) {
      const socket = await connectSio(server, '/', { ...opts, reconnection: false });
      clients.push({ mode, socket });
    }
  }
  return clients;
}

describe('graceful shutdown (SIGTERM → io.close())', () => {
  test('every client gets io server disconnect, pending acks on both sides fail, the process exits promptly with no task left', async () => {
    const server = await startServer(['--shutdown-timeout', '8000', '--shutdown-mode', 'goodbye']);
    const clients = await connectAll(server, 4);
    // Load: each client has a stream of messages in flight to it and from it.
    for (const { socket } of clients) {
      socket.on('msg', () => {});
      socket.emit('join', 'load', () => {});
    }
    const loader = clients[0].socket;
    for (let i = 0; i < 20; i++) loader.emit('bcast', 'load', 'x'.repeat(2000));
    // A server-side ack awaiting each client: the client never answers `question`.
    const asked = clients.map(({ socket }) => new Promise((resolve) => socket.once('question', () => resolve())));
    for (const { socket } of clients) socket.emit('server-ack', 'question', { q: 1 }, 60000, () => {});
    await Promise.all(asked);
    // A client-side ack the server never answers (no handler for the event).
    const clientAcks = clients.map(({ socket }) =>
      socket.timeout(60000).emitWithAck('no-such-event', 1).then(() => 'answered', (e) => e.message));
    const reasons = clients.map(({ mode, socket }) => disconnectReason(socket).then((r) => [mode, r]));

    const { code, tookMs } = await terminate(server);
    assert.equal(code, 0, `exit code (stderr: ${server.stderrTail()})`);
    assert.ok(tookMs < 8000, `exited within the shutdown timeout (took ${tookMs} ms)`);
    for (const [mode, reason] of await Promise.all(reasons)) {
      assert.equal(reason, 'io server disconnect', `client over ${mode}`);
    }
    for (const outcome of await Promise.all(clientAcks)) {
      assert.notEqual(outcome, 'answered');
    }
    const serverAcks = server.stdout.filter((l) => l.startsWith('server-ack question:'));
    assert.equal(serverAcks.length, clients.length, `server-side acks resolved with an error: ${serverAcks}`);
    assert.ok(serverAcks.every((l) => /disconnected/i.test(l)), serverAcks.join('\n'));
    assert.ok(server.stdout.includes('closed: 0 engine tasks, 0 socket.io tasks left'), server.stdout.join('\n'));
  });

  test('a handler that never returns is cut at the deadline: the exit stays bounded', async () => {
    const server = await startServer(['--shutdown-timeout', '1500', '--shutdown-mode', 'goodbye']);
    const clients = await connectAll(server, 1);
    const reasons = clients.map(({ mode, socket }) => disconnectReason(socket).then((r) => [mode, r]));
    // The first client's connection is stuck in a handler that never returns.
    const stuck = clients[0].socket.timeout(60000).emitWithAck('hang', 1).then(() => 'answered', (e) => e.message);
    await until(() => server.stdout.includes('hang: handler started'), { what: 'the hanging handler to start' });

    const { code, tookMs } = await terminate(server);
    assert.equal(code, 0, `exit code (stderr: ${server.stderrTail()})`);
    assert.ok(tookMs >= 1000, `it waited for the stuck handler (took ${tookMs} ms)`);
    assert.ok(tookMs < 1500 + 4000, `and then exited (took ${tookMs} ms, bound 1.5 s + margin)`);
    for (const [mode, reason] of await Promise.all(reasons)) {
      assert.equal(reason, 'io server disconnect', `client over ${mode}`);
    }
    assert.notEqual(await stuck, 'answered');
    assert.ok(server.stdout.includes('closed: 0 engine tasks, 0 socket.io tasks left'), server.stdout.join('\n'));
  });
});
