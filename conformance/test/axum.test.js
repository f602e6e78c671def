'use strict';
// The axum example (examples/examples/axum.rs: Socket.IO as a tower layer in an axum 0.8
// Router, beside plain routes, under tower-http trace / CORS / compression) driven by
// the official socket.io-client 4.8: polling, WebSocket and the upgrade; handler
// shapes; a per-event middleware accepting and refusing; serveClient (the npm bundle
// byte for byte, content types, ETag → 304); HTTP compression of polling responses
// (gzip when asked, plain otherwise, the official client reads both); CORS.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const zlib = require('node:zlib');
const { Fetch, NodeXHR } = require('engine.io-client');
const { startServer, REPO_ROOT } = require('./support/server');
const { TIMEOUT } = require('./support/helpers');
const {
  connectSio, nextEvent, waitSioUpgrade, closeSioClients, sioPollingHandshake, sioPost, sioUrl,
} = require('./support/socketio');

const EXAMPLE = path.join(REPO_ROOT, 'target', 'debug', 'examples', 'axum');
const CLIENT_DIST = path.join(__dirname, '..', 'node_modules', 'socket.io-client', 'dist');
const CLIENT_VERSION = require('socket.io-client/package.json').version;

let server;
before(async () => {
  if (!fs.existsSync(EXAMPLE)) {
    throw new Error(`${EXAMPLE} missing: run \`cargo build -p socketio-examples --examples\``);
  }
  process.env.CONFORMANCE_SERVER = EXAMPLE;
  server = await startServer(['--client-dir', CLIENT_DIST]);
});
after(async () => {
  closeSioClients();
  await server.stop();
});
afterEach(() => closeSioClients());

function ack(socket, event, ...args) {
  return socket.timeout(TIMEOUT).emitWithAck(event, ...args);
}

/** One HTTP GET with node:http (no automatic decompression); resolves { status, headers, body: Buffer }. */
function rawGet(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, timeout: TIMEOUT }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

describe('axum example: plain routes beside Socket.IO', () => {
  test('an axum route answers (shared state counts the sockets)', async () => {
    const before = JSON.parse((await rawGet(`${server.url}/api/stats`)).body.toString());
    const socket = await connectSio(server, '/', { auth: { nick: 'ann' } });
    await ack(socket, 'echo', 'sync');
    const res = await rawGet(`${server.url}/api/stats`);
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /application\/json/);
    assert.equal(JSON.parse(res.body.toString()).connected, before.connected + 1);
    assert.equal((await rawGet(`${server.url}/missing`)).status, 404);
  });

  for (const [name, opts] of [
    ['polling', { transports: ['polling'] }],
    ['websocket', { transports: ['websocket'] }],
    ['upgrade', {}],
  ]) {
    test(`official client over ${name}: handler shapes and typed per-socket state`, async () => {
      const socket = await connectSio(server, '/', { ...opts, auth: { nick: `nick-${name}` } });
      if (name === 'upgrade') await waitSioUpgrade(socket);
      assert.deepEqual(await ack(socket, 'echo', { a: [1, 'two'] }), { a: [1, 'two'] });
      socket.emit('whoami');
      assert.deepEqual(await nextEvent(socket, 'you-are'), [`nick-${name}`]);
      const other = await connectSio(server, '/', { auth: { nick: 'other' } });
      socket.emit('chat', `hi from ${name}`);
      assert.deepEqual(await nextEvent(other, 'chat'), [{ from: `nick-${name}`, text: `hi from ${name}` }]);
      assert.equal(socket.io.engine.transport.name, name === 'polling' ? 'polling' : 'websocket');
      // axum's peer address reaches the handshake through a map_request layer.
      assert.equal(await socket.timeout(TIMEOUT).emitWithAck('whereami'), '127.0.0.1');
    });
  }
});

describe('axum example: per-event middleware', () => {
  test('refused events reach the error listener; the ack gets the error; allowed ones pass', async () => {
    const user = await connectSio(server, '/', { auth: { nick: 'user' } });
    assert.deepEqual(await ack(user, 'admin:echo-raw', 1), { error: 'unauthorized event' });
    assert.deepEqual(await nextEvent(user, 'error-event'), [
      { event: 'admin:echo-raw', message: 'unauthorized event' },
    ]);
    const admin = await connectSio(server, '/', { auth: { nick: 'root', admin: true } });
    const bin = Buffer.from([1, 2, 3]);
    const reply = await admin.timeout(TIMEOUT).emitWithAck('admin:echo-raw', 'x', bin);
    assert.equal(reply, 'x');
    // Arguments that do not fit the handler's type: the ack says so.
    const bad = await ack(user, 'big', 'not a number');
    assert.match(bad.error, /^invalid arguments/);
  });
});

describe('axum example: serveClient', () => {
  const files = [
    'socket.io.js', 'socket.io.min.js', 'socket.io.esm.min.js', 'socket.io.msgpack.min.js',
  ].flatMap((f) => [f, `${f}.map`]);

  for (const file of files) {
    test(`/socket.io/${file} is the npm bundle's file`, async () => {
      const res = await rawGet(`${server.url}/socket.io/${file}`);
      assert.equal(res.status, 200);
      assert.ok(res.body.equals(fs.readFileSync(path.join(CLIENT_DIST, file))), 'bytes differ');
      const type = file.endsWith('.map') ? 'application/json' : 'application/javascript';
      assert.equal(res.headers['content-type'], `${type}; charset=utf-8`);
      assert.equal(res.headers.etag, `"${CLIENT_VERSION}"`);
      assert.equal(res.headers['cache-control'], 'public, max-age=0');
    });
  }

  test('compressed when the request accepts it (the official bundle, gzip)', async () => {
    const res = await rawGet(`${server.url}/socket.io/socket.io.min.js`, { 'accept-encoding': 'gzip' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.ok(zlib.gunzipSync(res.body).equals(fs.readFileSync(path.join(CLIENT_DIST, 'socket.io.min.js'))));
  });

  test('a matching If-None-Match gets 304', async () => {
    for (const tag of [`"${CLIENT_VERSION}"`, `W/"${CLIENT_VERSION}"`]) {
      const res = await rawGet(`${server.url}/socket.io/socket.io.min.js`, { 'if-none-match': tag });
      assert.equal(res.status, 304, tag);
      assert.equal(res.body.length, 0);
    }
    const res = await rawGet(`${server.url}/socket.io/socket.io.min.js`, { 'if-none-match': '"0.0.0"' });
    assert.equal(res.status, 200);
  });
});

describe('axum example: HTTP compression of polling responses', () => {
  const BIG = 20000;

  /** A raw Socket.IO session over polling that asked for `big`; the GET carrying the ack, with `headers`. */
  async function bigPoll(headers) {
    const { sid } = await sioPollingHandshake(server);
    await sioPost(server, sid, '40');
    const connected = await rawGet(`${sioUrl(server, `EIO=4&transport=polling&sid=${sid}`)}`);
    assert.match(connected.body.toString(), /^40/);
    await sioPost(server, sid, `421["big",${BIG}]`);
    return rawGet(sioUrl(server, `EIO=4&transport=polling&sid=${sid}`), headers);
  }

  test('gzip or deflate when Accept-Encoding asks, plain otherwise', async () => {
    const expected = `431["${'x'.repeat(BIG)}"]`;
    const gz = await bigPoll({ 'accept-encoding': 'gzip, deflate' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.ok(gz.body.length < 1000, `compressed to ${gz.body.length} bytes`);
    assert.equal(zlib.gunzipSync(gz.body).toString(), expected);
    const deflated = await bigPoll({ 'accept-encoding': 'deflate' });
    assert.equal(deflated.headers['content-encoding'], 'deflate');
    assert.equal(zlib.inflateSync(deflated.body).toString(), expected);
    const plain = await bigPoll({});
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.toString(), expected);
  });

  for (const [name, transport] of [['fetch (asks for gzip)', Fetch], ['XHR (does not ask)', NodeXHR]]) {
    test(`the official client reads a large payload over polling with ${name}`, async () => {
      const socket = await connectSio(server, '/', { transports: [transport] });
      const reply = await ack(socket, 'big', BIG);
      assert.equal(reply, 'x'.repeat(BIG));
      assert.equal(socket.io.engine.transport.name, 'polling');
    });
  }

  test('the same payload over WebSocket (frames: no HTTP compression there)', async () => {
    const socket = await connectSio(server, '/', { transports: ['websocket'] });
    assert.equal(await ack(socket, 'big', BIG), 'x'.repeat(BIG));
  });
});

describe('axum example: tower-http CORS in the stack', () => {
  test('preflight and credentialed requests from the named origin', async () => {
    const url = sioUrl(server, 'EIO=4&transport=polling');
    const pre = await fetch(url, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST' },
      signal: AbortSignal.timeout(TIMEOUT),
    });
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    const res = await rawGet(url, { origin: 'http://localhost:5173', cookie: 'a=1' });
    assert.equal(res.status, 200);
    assert.match(res.body.toString(), /^0\{"sid"/);
    assert.equal(res.headers['access-control-allow-origin'], 'http://localhost:5173');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    const other = await rawGet(url, { origin: 'http://evil.example' });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });
});
