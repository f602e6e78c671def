'use strict';
// Cluster helpers for the cluster-*.test.js files: a private `redis-server`, cluster nodes (the
// Rust `conformance-server --redis URL`, or `cluster/node-server.js`, the Node reference), an
// in-process `@socket.io/redis-emitter`, nginx in front of nodes (sticky sessions), official
// socket.io-client sockets on chosen nodes, and `deliver()`, which tells exactly who received a
// broadcast.
//
// Environment:
//   CLUSTER_REDIS_ADAPTER    classic (default) or streams: the adapter of every node
//   CLUSTER_RECOVERY=1       connection state recovery on every node (`--recovery`)
//   CLUSTER_RUST_AS_NODE=1   nodes of kind `rust` run node-server.js too (an all-Node cluster,
//                            the reference: validates the suite itself)
//   CONFORMANCE_SERVER       the Rust binary (default target/debug/conformance-server)
//   CONFORMANCE_VERBOSE=1    node, redis and nginx output on stderr

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const assert = require('node:assert/strict');
const { REPO_ROOT, DEFAULT_BINARY } = require('./server');
const { TIMEOUT, sleep, until, request } = require('./helpers');
const { createSio, createSioOn, waitConnect, nextEvent } = require('./socketio');

const CLUSTER_DIR = path.resolve(__dirname, '..', '..', 'cluster');
const NODE_SERVER = path.join(CLUSTER_DIR, 'node-server.js');
const NGINX_TEMPLATE = path.join(CLUSTER_DIR, 'nginx.conf.template');
const START_TIMEOUT_MS = 20000;
/**
 * Time allowed for a test event's ack: twice the default wait, as cluster requests may wait for
 * the adapter's own 5 s request timeout before they answer.
 */
const ACK_TIMEOUT = 2 * TIMEOUT;
const STOP_GRACE_MS = 5000;
const LISTENING_RE = /^listening on 127\.0\.0\.1:(\d+)\s*$/;
const VERBOSE = Boolean(process.env.CONFORMANCE_VERBOSE);
const RUST_AS_NODE = Boolean(process.env.CLUSTER_RUST_AS_NODE);
/** `CLUSTER_REDIS_ADAPTER=streams`: every node runs that adapter (`--redis-adapter`). */
const REDIS_ADAPTER = process.env.CLUSTER_REDIS_ADAPTER || 'classic';
const ADAPTER_ARGS = [
  ...(REDIS_ADAPTER === 'classic' ? [] : ['--redis-adapter', REDIS_ADAPTER]),
  // `CLUSTER_RECOVERY=1`: connection state recovery on every node (`--recovery`).
  ...(process.env.CLUSTER_RECOVERY ? ['--recovery'] : []),
];

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// ---------------------------------------------------------------------------
// Processes

/** Absolute path of an installed program (searched in PATH, then the sbin directories). */
function findBinary(name, aptPackage = name) {
  const dirs = [...(process.env.PATH || '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  throw new Error(`\`${name}\` not found (PATH and /usr/sbin): the cluster tests need it; ` +
    `install it with \`apt-get install -y ${aptPackage}\``);
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when something accepts TCP connections on 127.0.0.1:port. */
function canConnect(port, timeout = 1000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(timeout, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * Spawns `cmd args` and tracks it (SIGKILLed when the test process exits). Resolves
 * `{child, stop, output(), exited}` once `ready(line)` returns a truthy value for a line of
 * stdout (that value is `readyValue`) or, with `readyCheck`, once that async check passes.
 * Rejects (after killing the process) if it exits first or after `timeout` ms.
 */
function spawnTracked({ label, cmd, args, ready, readyCheck, timeout = START_TIMEOUT_MS, cwd }) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  running.add(child);
  let tail = '';
  const keep = (stream, name) => {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      tail = (tail + chunk).slice(-6000);
      if (VERBOSE) process.stderr.write(chunk.replace(/^(?=.)/gm, `[${label} ${name}] `));
    });
  };
  keep(child.stderr, 'stderr');
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      running.delete(child);
      resolve(exitInfo);
    });
  });
  const stop = async () => {
    if (exitInfo) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => { if (!exitInfo) child.kill('SIGKILL'); }, STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  const handle = { label, child, stop, exited, output: () => tail, get exitInfo() { return exitInfo; } };

  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(`not ready within ${timeout} ms`), timeout);
    const fail = (msg) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop().finally(() => reject(new Error(
        `${label}: ${msg} (${cmd} ${args.join(' ')})` + (tail ? `\noutput:\n${tail}` : ''))));
    };
    const succeed = (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...handle, readyValue: value });
    };
    child.once('error', (err) => fail(`could not start: ${err.message}`));
    exited.then(({ code, signal }) => fail(`exited early (code ${code}, signal ${signal})`));
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      tail = (tail + line + '\n').slice(-6000);
      if (VERBOSE) process.stderr.write(`[${label} stdout] ${line}\n`);
      if (settled || !ready) return;
      const value = ready(line);
      if (value) succeed(value);
    });
    if (readyCheck) {
      (async () => {
        while (!settled) {
          if (await readyCheck().catch(() => false)) return succeed(true);
          await sleep(25);
        }
      })();
    }
  });
}

/** Retries `start(port)` on fresh free ports (another process may grab a port in between). */
async function onFreePort(start, attempts = 5) {
  let lastErr;
  for (let i = 0; i < attempts; i++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr;
}

/**
 * Starts a private redis-server on a free 127.0.0.1 port (no persistence); resolves
 * `{port, url, stop}` once it accepts connections.
 */
async function startRedis() {
  const binary = findBinary('redis-server');
  return onFreePort(async (port) => {
    const proc = await spawnTracked({
      label: `redis:${port}`,
      cmd: binary,
      args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--dir', os.tmpdir()],
      ready: (line) => /Ready to accept connections/.test(line),
      readyCheck: () => redisPing(port),
    });
    return { port, url: `redis://127.0.0.1:${port}`, stop: proc.stop, process: proc };
  });
}

/** Resolves true when a redis server answers PING on 127.0.0.1:port. */
function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
    sock.once('error', () => done(false));
  });
}

let nodeSeq = 0;

/**
 * Starts a cluster node on `redisUrl`, port 0, and resolves once it printed
 * `listening on 127.0.0.1:PORT`:
 *   kind `rust`: target/debug/conformance-server --port 0 --redis URL ...extraArgs
 *                (node-server.js instead when CLUSTER_RUST_AS_NODE=1)
 *   kind `node`: node cluster/node-server.js --port 0 --redis URL ...extraArgs
 * @returns {Promise<{kind, impl, name, port, url, wsUrl, stop}>}  `impl` is what really runs
 */
async function startNode(kind, redisUrl, extraArgs = [], name = undefined) {
  if (kind !== 'rust' && kind !== 'node') throw new Error(`unknown node kind ${kind}`);
  const impl = kind === 'rust' && !RUST_AS_NODE ? 'rust' : 'node';
  let cmd;
  let args;
  if (impl === 'rust') {
    cmd = process.env.CONFORMANCE_SERVER || DEFAULT_BINARY;
    if (!fs.existsSync(cmd)) {
      throw new Error(`server binary not found at ${cmd}: run \`cargo build -p conformance-server\` ` +
        'at the repository root, set CONFORMANCE_SERVER, or CLUSTER_RUST_AS_NODE=1 to run ' +
        'node-server.js in its place');
    }
    args = ['--port', '0', '--redis', redisUrl, ...ADAPTER_ARGS, ...extraArgs];
  } else {
    cmd = process.execPath;
    args = [NODE_SERVER, '--port', '0', '--redis', redisUrl, ...ADAPTER_ARGS, ...extraArgs];
  }
  const label = name || `${kind}#${++nodeSeq}`;
  const proc = await spawnTracked({
    label: `${label}(${impl})`,
    cmd,
    args,
    cwd: REPO_ROOT,
    ready: (line) => {
      const m = LISTENING_RE.exec(line);
      return m && Number(m[1]);
    },
  });
  const port = proc.readyValue;
  return {
    kind,
    impl,
    name: label,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    stop: proc.stop,
    process: proc,
  };
}

/**
 * Starts one redis and the nodes `layout` asks for, e.g. {R1: 'rust', R2: 'rust', N1: 'node'}
 * (started one after the other, in that order). Resolves {redis, nodes: [...], byName, stop}.
 */
async function startCluster(layout = { R1: 'rust', R2: 'rust', N1: 'node' }, extraArgs = []) {
  const redis = await startRedis();
  const nodes = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.stop()));
    await redis.stop();
  };
  try {
    for (const [name, kind] of Object.entries(layout)) {
      nodes.push(await startNode(kind, redis.url, extraArgs, name));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const byName = Object.fromEntries(nodes.map((n) => [n.name, n]));
  return { redis, nodes, byName, stop };
}

// ---------------------------------------------------------------------------
// @socket.io/redis-emitter

/**
 * An in-process `@socket.io/redis-emitter` Emitter on its own node-redis client (`opts` go to the
 * Emitter: key, parser). Resolves {emitter, client, close}; `close()` flushes the pending
 * publishes (QUIT) before it resolves.
 */
async function createEmitter(redisUrl, opts = undefined) {
  const { createClient } = require('redis');
  const { Emitter } = require('@socket.io/redis-emitter');
  const client = createClient({ url: redisUrl });
  client.on('error', (err) => { if (VERBOSE) process.stderr.write(`[emitter] ${err.message}\n`); });
  await client.connect();
  const emitter = new Emitter(client, opts);
  return { emitter, client, close: () => client.quit().catch(() => {}) };
}

/**
 * Runs a one-shot emitter script in a child process: `body` is the text of an async function
 * body with `emitter` (an Emitter on `redisUrl`) in scope; resolves when it finished and its
 * Redis client quit (everything published).
 */
async function runEmitterScript(redisUrl, body) {
  const script = `
    const { createClient } = require('redis');
    const { Emitter } = require('@socket.io/redis-emitter');
    (async () => {
      const client = createClient({ url: process.env.REDIS_URL });
      await client.connect();
      const emitter = new Emitter(client);
      await (async () => { ${body} })();
      await client.quit();
    })().catch((err) => { console.error(err); process.exit(1); });`;
  const child = spawn(process.execPath, ['-e', script], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: { ...process.env, REDIS_URL: redisUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  child.stderr.on('data', (c) => { out += c; });
  const { code } = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`emitter script did not finish in ${TIMEOUT} ms\n${out}`)); }, TIMEOUT);
    child.once('exit', (c) => { clearTimeout(timer); running.delete(child); resolve({ code: c }); });
  });
  if (code !== 0) throw new Error(`emitter script failed (code ${code}):\n${out}`);
  return out;
}

// ---------------------------------------------------------------------------
// nginx (sticky sessions)

/**
 * Starts nginx (unprivileged foreground process, private prefix in a temp folder) from
 * cluster/nginx.conf.template with `ip_hash` over `nodes`; resolves {port, url, wsUrl, stop,
 * errorLog()} once it proxies a polling handshake.
 */
async function startNginx(nodes) {
  const binary = findBinary('nginx');
  const template = fs.readFileSync(NGINX_TEMPLATE, 'utf8');
  return onFreePort(async (port) => {
    const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'sio-nginx-'));
    fs.mkdirSync(path.join(prefix, 'logs'));
    const conf = template
      .replaceAll('{{LISTEN}}', `127.0.0.1:${port}`)
      .replaceAll('{{TEMP_DIR}}', prefix)
      .replaceAll('{{UPSTREAM_SERVERS}}',
        nodes.map((n) => `server 127.0.0.1:${n.port};`).join('\n        '));
    const unreplaced = /\{\{[A-Z_]+\}\}/.exec(conf);
    if (unreplaced) throw new Error(`nginx template: unknown placeholder ${unreplaced[0]}`);
    const confPath = path.join(prefix, 'nginx.conf');
    fs.writeFileSync(confPath, conf);
    const errorLog = path.join(prefix, 'error.log');
    const url = `http://127.0.0.1:${port}`;
    const proc = await spawnTracked({
      label: `nginx:${port}`,
      cmd: binary,
      args: ['-p', prefix, '-c', confPath, '-e', errorLog,
        '-g', `daemon off; master_process off; pid ${prefix}/nginx.pid; error_log ${errorLog} warn;`],
      readyCheck: async () => {
        if (!(await canConnect(port))) return false;
        const res = await request(`${url}/socket.io/?EIO=4&transport=polling`, { timeout: 2000 });
        return res.status === 200;
      },
    }).catch((err) => {
      let log = '';
      try { log = fs.readFileSync(errorLog, 'utf8'); } catch { /* none */ }
      err.message += log ? `\nnginx error.log:\n${log}` : '';
      throw err;
    });
    const stop = async () => {
      await proc.stop();
      fs.rmSync(prefix, { recursive: true, force: true });
    };
    return {
      port,
      url,
      wsUrl: `ws://127.0.0.1:${port}`,
      stop,
      errorLog: () => { try { return fs.readFileSync(errorLog, 'utf8'); } catch { return ''; } },
    };
  });
}

// ---------------------------------------------------------------------------
// Clients

const TRANSPORTS = {
  p: { name: 'polling', opts: { transports: ['polling'] } },
  w: { name: 'websocket', opts: { transports: ['websocket'] } },
};

/**
 * An official client connected to `node` (anything with `.url`) on `nsp`, over transport `t`
 * ('p' polling only, 'w' WebSocket only, or a client options object), with `auth`. Resolves
 * once connected and its `auth` event arrived; `socket.label` = label, `socket.node` = node.
 */
async function connectTo(node, { nsp = '/', t = 'w', auth, label } = {}) {
  const opts = typeof t === 'string' ? TRANSPORTS[t].opts : t;
  const socket = createSio(node, nsp, { ...opts, ...(auth ? { auth } : {}) });
  socket.label = label || `${node.name}${typeof t === 'string' ? t : ''}${nsp === '/' ? '' : nsp}`;
  socket.node = node;
  socket.nsp = nsp;
  await waitConnect(socket);
  await nextEvent(socket, 'auth');
  return socket;
}

/** A socket on `nsp` over `main`'s connection (same node, same Manager). */
async function connectAlso(main, nsp, { auth, label } = {}) {
  const socket = createSioOn(main, nsp, auth ? { auth } : {});
  socket.label = label || `${main.label}${nsp}`;
  socket.node = main.node;
  socket.nsp = nsp;
  await waitConnect(socket);
  await nextEvent(socket, 'auth');
  return socket;
}

/** Closes the Engine.IO connection of `socket` (all its namespaces). */
function closeClient(socket) {
  try { socket.disconnect(); } catch { /* ignore */ }
  try { socket.io.reconnection(false); socket.io._close(); } catch { /* ignore */ }
}

/** Drops every queued `event` item of these sockets (start of a test). */
function drain(sockets, events = ['msg', 'sse-got']) {
  for (const s of sockets) for (const ev of events) s.queue(ev).items.splice(0);
}

// ---------------------------------------------------------------------------
// Who received what

let seq = 0;
/** A payload nobody saw before (the `tag` helps reading failures). */
function fresh(tag = 'p', extra = {}) {
  seq += 1;
  return { tag, seq, ...extra };
}

/**
 * Reads `socket`'s `msg` events up to the one whose payload is `marker` (deep-equal);
 * resolves with the payloads before it. Rejects after `timeout`.
 */
async function msgsUntil(socket, marker, timeout = TIMEOUT) {
  const got = [];
  const deadline = Date.now() + timeout;
  const queue = socket.queue('msg');
  for (;;) {
    let args;
    try {
      args = await queue.next(Math.max(1, deadline - Date.now()));
    } catch (err) {
      err.message = `${socket.label} (on ${socket.node && socket.node.name}${socket.nsp}): ` +
        `${err.message}, before it: ${JSON.stringify(got)}`;
      throw err;
    }
    const [payload] = args;
    if (payload && payload.marker === marker.marker && payload.seq === marker.seq) return got;
    got.push(payload);
  }
}

/**
 * Runs `op()` (broadcasts of `msg`), then `sendMarker(marker)` (a `msg` to every `watcher`
 * sent after op's broadcasts, through the same node or emitter: Redis keeps one publisher's
 * messages in order and a node delivers them in order). Resolves `{label: [payloads]}` with
 * what each watcher got before the marker, and what each of `others` (sockets of another
 * namespace, which never get the marker) has received so far. `marker` may be given (then
 * `sendMarker` may do nothing, `op` having sent it).
 */
async function deliver({ op, sendMarker, watchers, others = [], marker = fresh('marker', { marker: true }) }) {
  await op();
  await sendMarker(marker);
  const got = {};
  await Promise.all(watchers.map(async (s) => { got[s.label] = await msgsUntil(s, marker); }));
  for (const s of others) got[s.label] = s.queue('msg').items.splice(0).map((args) => args[0]);
  return got;
}

/** A marker sender: `ping-all 1 marker` from `socket` (same namespace as the watchers). */
function markerFrom(socket) {
  return (marker) => { socket.emit('ping-all', 1, marker); };
}

/**
 * Asserts that exactly `receivers` (sockets or labels) got `payloads` (one payload, or the list
 * each receiver must get, in order) and everybody else in `got` nothing.
 */
function assertGot(got, receivers, payloads, context = '') {
  const list = Array.isArray(payloads) ? payloads : [payloads];
  const names = receivers.map((r) => (typeof r === 'string' ? r : r.label));
  for (const n of names) assert.ok(n in got, `${n} is not watched`);
  const expected = {};
  for (const name of Object.keys(got)) expected[name] = names.includes(name) ? list : [];
  assert.deepStrictEqual(got, expected, context);
}

module.exports = {
  ACK_TIMEOUT,
  CLUSTER_DIR,
  NODE_SERVER,
  RUST_AS_NODE,
  REDIS_ADAPTER,
  findBinary,
  freePort,
  startRedis,
  startNode,
  startCluster,
  createEmitter,
  runEmitterScript,
  startNginx,
  TRANSPORTS,
  connectTo,
  connectAlso,
  closeClient,
  drain,
  fresh,
  msgsUntil,
  deliver,
  markerFrom,
  assertGot,
  until,
};
