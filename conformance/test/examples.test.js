'use strict';
// The hyper, rooms and redis examples (examples/examples/*.rs) driven by the official
// socket.io-client 4.8: what each one's docs promise. (The axum example has axum.test.js.)

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { startServer, REPO_ROOT } = require('./support/server');
const { TIMEOUT } = require('./support/helpers');
const { connectSio, nextEvent, waitSioUpgrade, closeSioClients } = require('./support/socketio');
const { startRedis } = require('./support/cluster');

const example = (name) => path.join(REPO_ROOT, 'target', 'debug', 'examples', name);

function requireExample(name) {
  if (!fs.existsSync(example(name))) {
    throw new Error(`${example(name)} missing: run \`cargo build -p socketio-examples --examples\``);
  }
}

function startExample(name, args = []) {
  requireExample(name);
  process.env.CONFORMANCE_SERVER = example(name);
  return startServer(args);
}

afterEach(() => closeSioClients());

/** The next `count` `news` payloads of `socket`. */
async function news(socket, count) {
  const got = [];
  for (let i = 0; i < count; i++) got.push((await nextEvent(socket, 'news'))[0]);
  return got;
}

describe('hyper example', () => {
  let server;
  before(async () => { server = await startExample('hyper'); });
  after(async () => { closeSioClients(); await server.stop(); });

  for (const [name, opts] of [['polling', { transports: ['polling'] }], ['websocket', { transports: ['websocket'] }], ['upgrade', {}]]) {
    test(`echo with an ack over ${name}`, async () => {
      const socket = await connectSio(server, '/', opts);
      if (name === 'upgrade') await waitSioUpgrade(socket);
      assert.deepEqual(await socket.timeout(TIMEOUT).emitWithAck('echo', { n: [1, 2] }), { n: [1, 2] });
    });
  }

  test('other paths are the app\'s (404)', async () => {
    const status = await new Promise((resolve, reject) => {
      http.get(`${server.url}/other`, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
    });
    assert.equal(status, 404);
  });
});

describe('rooms example: the five emit forms', () => {
  let server;
  before(async () => { server = await startExample('rooms'); });
  after(async () => { closeSioClients(); await server.stop(); });

  test('each form reaches exactly whom the docs say', async () => {
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => connectSio(server)));
    // A and B join room r; a `to-self` after it proves the join was handled.
    for (const s of [a, b]) {
      s.emit('join', 'r');
      s.emit('to-self');
      assert.deepEqual(await news(s, 1), ['to you alone']);
    }
    a.emit('to-self');
    a.emit('to-all');
    a.emit('to-others');
    a.emit('to-room', 'r');
    a.emit('to-room-others', 'r');
    a.emit('to-all'); // end marker: everyone's last one
    assert.deepEqual(await news(a, 4), ['to you alone', 'to everyone', 'to all of r', 'to everyone']);
    assert.deepEqual(await news(b, 5),
      ['to everyone', 'to everyone else', 'to all of r', 'to the rest of r', 'to everyone']);
    assert.deepEqual(await news(c, 3), ['to everyone', 'to everyone else', 'to everyone']);
  });
});

describe('redis example: two nodes', () => {
  let redis;
  let child;
  const urls = [];
  before(async () => {
    requireExample('redis');
    redis = await startRedis();
    child = spawn(example('redis'), ['--redis', redis.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis example not listening:\n${stderr}`)), 20000);
      child.once('exit', (code) => reject(new Error(`redis example exited (${code}):\n${stderr}`)));
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /^node-[ab] listening on 127\.0\.0\.1:(\d+)$/.exec(line);
        if (!m) return;
        urls.push(`http://127.0.0.1:${m[1]}`);
        if (urls.length === 2) { clearTimeout(timer); resolve(); }
      });
    });
  });
  after(async () => {
    closeSioClients();
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    if (redis) await redis.stop();
  });

  test('a shout on one node reaches the lobby on both', async () => {
    const [one, two] = await Promise.all(urls.map((url) => connectSio({ url })));
    one.emit('shout', 'hello');
    const [fromOne] = await nextEvent(one, 'shout');
    const [atTwo] = await nextEvent(two, 'shout');
    assert.match(fromOne, /^node-[ab]: hello$/);
    assert.equal(atTwo, fromOne);
  });
});
