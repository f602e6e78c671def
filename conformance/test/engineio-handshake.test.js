'use strict';
// Engine.IO handshake with the official engine.io-client, plus CORS on the raw endpoint.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const {
  MODES, waitFor, createClient, openClient, waitForUpgrade, closeClients, eioUrl, request,
} = require('./support/helpers');

const PING_INTERVAL = 10000;
const PING_TIMEOUT = 5000;
const MAX_PAYLOAD = 1000000;
const SID_RE = /^[A-Za-z0-9_-]{20}$/;

let server;
before(async () => {
  server = await startServer([
    '--ping-interval', String(PING_INTERVAL),
    '--ping-timeout', String(PING_TIMEOUT),
    '--max-payload', String(MAX_PAYLOAD),
  ]);
});
after(async () => {
  closeClients();
  await server.stop();
});
afterEach(() => closeClients());

const expectedFirstTransport = { polling: 'polling', websocket: 'websocket', 'polling+upgrade': 'polling' };
const expectedUpgrades = { polling: ['websocket'], websocket: [], 'polling+upgrade': ['websocket'] };

for (const [mode, opts] of Object.entries(MODES)) {
  describe(`handshake over ${mode}`, () => {
    test(`${mode}: opens a session (open event, 20-char sid, transport ${expectedFirstTransport[mode]})`, async () => {
      const socket = createClient(server, opts);
      const handshake = waitFor(socket, 'handshake', { failOn: ['close'] });
      await waitFor(socket, 'open', { failOn: ['close'] });
      await handshake; // emitted just before 'open'
      assert.equal(socket.readyState, 'open');
      assert.equal(typeof socket.id, 'string');
      assert.match(socket.id, SID_RE);
      assert.equal(socket.transport.name, expectedFirstTransport[mode]);
    });

    test(`${mode}: handshake data has exactly sid, upgrades, pingInterval, pingTimeout, maxPayload`, async () => {
      const socket = createClient(server, opts);
      const opened = waitFor(socket, 'open', { failOn: ['close'] });
      const [data] = await waitFor(socket, 'handshake', { failOn: ['close'] });
      assert.deepEqual(Object.keys(data).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
      assert.match(data.sid, SID_RE);
      assert.deepEqual(data.upgrades, expectedUpgrades[mode]);
      assert.equal(data.pingInterval, PING_INTERVAL);
      assert.equal(data.pingTimeout, PING_TIMEOUT);
      assert.equal(data.maxPayload, MAX_PAYLOAD);
      await opened;
      assert.equal(socket.id, data.sid);
    });

    test(`${mode}: a fresh message round-trips right after open`, async () => {
      const socket = await openClient(server, opts);
      socket.send('first');
      assert.equal(await socket.received.next(), 'first');
    });

    test(`${mode}: extra query parameters are accepted`, async () => {
      const socket = await openClient(server, { ...opts, query: { foo: 'bar', token: 'a b&c' } });
      socket.send('with-query');
      assert.equal(await socket.received.next(), 'with-query');
    });

    test(`${mode}: concurrent handshakes get distinct sids`, async () => {
      const sockets = await Promise.all(Array.from({ length: 10 }, () => openClient(server, opts)));
      const ids = new Set(sockets.map((s) => s.id));
      assert.equal(ids.size, sockets.length);
      for (const id of ids) assert.match(id, SID_RE);
    });
  });
}

describe('upgrade during handshake', () => {
  test('polling+upgrade: the session keeps its sid after upgrading to websocket', async () => {
    const socket = await openClient(server, MODES['polling+upgrade']);
    const sid = socket.id;
    await waitForUpgrade(socket);
    assert.equal(socket.transport.name, 'websocket');
    assert.equal(socket.id, sid);
  });
});

describe('CORS', () => {
  test('polling handshake answers with Access-Control-Allow-Origin for any Origin', async () => {
    const res = await request(eioUrl(server, 'EIO=4&transport=polling'), {
      headers: { Origin: 'http://example.test:1234' },
    });
    assert.equal(res.status, 200);
    assert.ok(res.body.startsWith('0{'), res.body);
    const allow = res.headers.get('access-control-allow-origin');
    assert.ok(allow === '*' || allow === 'http://example.test:1234', `allow-origin: ${allow}`);
  });

  test('CORS preflight (OPTIONS) is answered successfully with allow headers', async () => {
    const res = await request(eioUrl(server, 'EIO=4&transport=polling'), {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://example.test:1234',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
    });
    assert.ok(res.status === 204 || res.status === 200, `status ${res.status}`);
    assert.ok(res.headers.get('access-control-allow-origin'), 'missing access-control-allow-origin');
    const methods = (res.headers.get('access-control-allow-methods') || '').toUpperCase();
    assert.match(methods, /POST/);
    assert.match(methods, /GET/);
    assert.match((res.headers.get('access-control-allow-headers') || '').toLowerCase(), /content-type/);
  });
});
