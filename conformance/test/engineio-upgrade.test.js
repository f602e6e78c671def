'use strict';
// Upgrade from HTTP long-polling to WebSocket, with the official client and by hand.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const {
  MODES, waitFor, openClient, waitForUpgrade, closeClients, rawWs, rawPollingHandshake,
  poll, post, wsClosed, bytesOf,
} = require('./support/helpers');

let server;
before(async () => {
  // Default heartbeat (25 s / 20 s) so the hand-driven upgrades are not raced by pings.
  server = await startServer(['--max-payload', '1000000']);
});
after(async () => {
  closeClients();
  await server.stop();
});
afterEach(() => closeClients());

describe('official client', () => {
  test('polling+upgrade: "upgrading" then "upgrade" fire and the transport becomes websocket', async () => {
    const socket = await openClient(server, MODES['polling+upgrade']);
    assert.equal(socket.transport.name, 'polling');
    const events = [];
    socket.on('upgrading', (t) => events.push(`upgrading:${t.name}`));
    const [transport] = await waitFor(socket, 'upgrade', { failOn: ['close', 'upgradeError'] });
    events.push(`upgrade:${transport.name}`);
    assert.deepEqual(events, ['upgrading:websocket', 'upgrade:websocket']);
    assert.equal(socket.transport.name, 'websocket');
    assert.equal(socket.readyState, 'open');
  });

  test('polling+upgrade: text and binary messages echo after the upgrade', async () => {
    const socket = await openClient(server, MODES['polling+upgrade']);
    await waitForUpgrade(socket);
    socket.send('after-upgrade');
    socket.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    const [text, bin] = await socket.received.take(2);
    assert.equal(text, 'after-upgrade');
    assert.ok(bytesOf(bin).equals(Buffer.from([0xde, 0xad, 0xbe, 0xef])));
  });

  test('polling+upgrade: messages sent before, during and after the upgrade all echo, in order', async () => {
    const socket = await openClient(server, MODES['polling+upgrade']);
    const sent = [];
    let n = 0;
    const sendSome = (k) => {
      for (let i = 0; i < k; i++) {
        const m = n % 3 === 2 ? Buffer.from(`bin-${n}`) : `txt-${n}`;
        n += 1;
        sent.push(m);
        socket.send(m);
      }
    };
    sendSome(10);
    socket.once('upgrading', () => sendSome(10));
    await waitForUpgrade(socket);
    sendSome(10);
    const got = await socket.received.take(sent.length);
    got.forEach((g, i) => {
      if (typeof sent[i] === 'string') assert.equal(g, sent[i], `message ${i}`);
      else assert.ok(bytesOf(g).equals(sent[i]), `message ${i}`);
    });
  });

  test('polling+upgrade: after the upgrade, a polling GET with the sid is refused (400)', async () => {
    const socket = await openClient(server, MODES['polling+upgrade']);
    await waitForUpgrade(socket);
    const res = await poll(server, socket.id);
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body).code, 3);
    socket.send('still-here');
    assert.equal(await socket.received.next(), 'still-here');
  });

  test('upgrade: false keeps the session on polling and it still echoes', async () => {
    const socket = await openClient(server, { upgrade: false });
    let upgrading = false;
    socket.on('upgrading', () => { upgrading = true; });
    for (let i = 0; i < 5; i++) {
      socket.send(`p-${i}`);
      assert.equal(await socket.received.next(), `p-${i}`);
    }
    assert.equal(upgrading, false);
    assert.equal(socket.transport.name, 'polling');
  });

  test('polling+upgrade: 5 clients upgrade concurrently and each echoes its own messages', async () => {
    const sockets = await Promise.all(Array.from({ length: 5 }, () => openClient(server, MODES['polling+upgrade'])));
    await Promise.all(sockets.map((s) => waitForUpgrade(s)));
    await Promise.all(sockets.map(async (s, i) => {
      s.send(`client-${i}`);
      assert.equal(await s.received.next(), `client-${i}`);
    }));
  });
});

describe('raw upgrade', () => {
  function probeUrl(sid) {
    return `${server.wsUrl}/engine.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`;
  }

  test('raw: messages queued on polling before the upgrade are delivered (over GET or the new WebSocket)', async () => {
    const { sid } = await rawPollingHandshake(server);
    assert.equal((await post(server, sid, '4queued-1\x1e4queued-2')).status, 200);
    const ws = rawWs(probeUrl(sid));
    await ws.opened;
    ws.send('2probe');
    assert.equal(await ws.received.next(), '3probe');
    // The echoes are waiting on the polling side; a GET now drains them (possibly with a noop).
    const res = await poll(server, sid);
    assert.equal(res.status, 200);
    const packets = res.body.split('\x1e').filter((p) => p !== '6');
    ws.send('5');
    ws.send('4after');
    const rest = [];
    for (;;) {
      const frame = await ws.received.next();
      if (frame === '4after') break;
      rest.push(frame);
    }
    assert.deepEqual([...packets, ...rest], ['4queued-1', '4queued-2']);
  });

  test('raw: a packet other than "5" on the probe socket aborts the upgrade; the session stays on polling', async () => {
    const { sid } = await rawPollingHandshake(server);
    const ws = rawWs(probeUrl(sid));
    await ws.opened;
    ws.send('2probe');
    assert.equal(await ws.received.next(), '3probe');
    ws.send('4not-an-upgrade');
    await wsClosed(ws);
    // The session is still usable over polling.
    assert.equal((await post(server, sid, '4on-polling')).status, 200);
    let body = '';
    for (let i = 0; i < 3 && !body.split('\x1e').includes('4on-polling'); i++) {
      const res = await poll(server, sid);
      assert.equal(res.status, 200, `GET failed: ${res.status} ${res.body}`);
      body = res.body;
    }
    assert.ok(body.split('\x1e').includes('4on-polling'), JSON.stringify(body));
  });

  test('raw: a WebSocket for an unknown sid is refused', async () => {
    const ws = rawWs(probeUrl('AAAAAAAAAAAAAAAAAAAA'));
    await wsClosed(ws);
    if (ws.refusedStatus !== undefined) {
      assert.equal(ws.refusedStatus, 400);
    } else {
      // Accepted at the HTTP level, then closed without carrying any packet.
      assert.equal(ws.received.length, 0, 'the server sent frames on a WebSocket for an unknown sid');
    }
  });
});
