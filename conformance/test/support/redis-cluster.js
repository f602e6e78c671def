'use strict';
// A private Redis Cluster for the tests: `n` primaries (no replicas) from Debian's redis-server,
// each on a free 127.0.0.1 port with its cluster bus on another free port (`cluster-port`), each
// in its own folder of one temp dir (removed by stop()), joined with
// `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes`.
// `cluster-require-full-coverage no`: while one primary is down, the others keep serving their
// slots; `cluster-node-timeout 2000` ms.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { findBinary, freePort } = require('./cluster');
const { until } = require('./helpers');

const VERBOSE = Boolean(process.env.CONFORMANCE_VERBOSE);
const START_TIMEOUT_MS = 20000;

/** Sends one RESP command to 127.0.0.1:port; resolves the raw reply text. */
function command(port, args, timeout = 2000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (err) => { sock.destroy(); if (err) reject(err); else resolve(data); };
    sock.setTimeout(timeout, () => done(new Error(`no answer from ${port}`)));
    sock.once('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (chunk) => {
      data += chunk;
      // Replies used here are one line or one bulk string: complete once they end with CRLF and
      // a bulk string has its declared length.
      const m = /^\$(\d+)\r\n/.exec(data);
      if (m ? Buffer.byteLength(data) >= m[0].length + Number(m[1]) + 2 : data.endsWith('\r\n')) done();
    });
    sock.once('error', done);
  });
}

async function clusterOk(port) {
  try {
    return (await command(port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok');
  } catch {
    return false;
  }
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${out}`))));
  });
}

/**
 * Starts the cluster; resolves {ports, url ('redis+cluster://...'), nodeUrls, slotOwner(key),
 * restart(port, {killed}), stop()}.
 */
async function startRedisCluster(n = 3) {
  const binary = findBinary('redis-server');
  const cli = findBinary('redis-cli', 'redis-tools');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sio-redis-cluster-'));
  const nodes = new Map(); // port -> {args, child, exited}

  const spawnNode = (port) => {
    const node = nodes.get(port);
    const child = spawn(binary, node.args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: node.dir });
    node.child = child;
    node.exited = new Promise((resolve) => child.once('exit', resolve));
    if (VERBOSE) {
      for (const s of [child.stdout, child.stderr]) s.on('data', (c) => process.stderr.write(`[redis-cluster:${port}] ${c}`));
    } else {
      child.stdout.resume();
      child.stderr.resume();
    }
  };
  const stop = async () => {
    for (const node of nodes.values()) {
      if (node.child && node.child.exitCode === null) node.child.kill('SIGKILL');
    }
    await Promise.all([...nodes.values()].map((node) => node.exited));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => { for (const node of nodes.values()) try { node.child.kill('SIGKILL'); } catch { /* gone */ } });

  try {
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      const nodeDir = path.join(dir, String(port));
      fs.mkdirSync(nodeDir);
      nodes.set(port, {
        dir: nodeDir,
        args: ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
          '--cluster-port', String(busPort), '--cluster-config-file', path.join(nodeDir, 'nodes.conf'),
          '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no',
          '--save', '', '--appendonly', 'no', '--dir', nodeDir],
      });
      spawnNode(port);
    }
    const ports = [...nodes.keys()];
    for (const port of ports) {
      await until(async () => (await command(port, ['PING']).catch(() => '')).startsWith('+PONG'),
        { timeout: START_TIMEOUT_MS, what: `redis cluster node ${port} up` });
    }
    await run(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas', '0', '--cluster-yes']);
    for (const port of ports) {
      await until(() => clusterOk(port), { timeout: START_TIMEOUT_MS, what: `cluster_state:ok on ${port}` });
    }

    /** The port of the primary that owns `key`'s slot (e.g. a channel name). */
    const slotOwner = async (key) => {
      const slot = Number(/:(\d+)/.exec(await command(ports[0], ['CLUSTER', 'KEYSLOT', key]))[1]);
      for (const port of ports) {
        const reply = await command(port, ['CLUSTER', 'NODES']);
        const myself = reply.split('\n').find((l) => l.includes('myself'));
        const ranges = myself.split(' ').slice(8);
        for (const r of ranges) {
          const [a, b = a] = r.split('-').map(Number);
          if (slot >= a && slot <= b) return port;
        }
      }
      throw new Error(`no owner for slot ${slot}`);
    };

    /** Kills (SIGKILL) or stops the primary on `port`, starts it again, waits for cluster_state:ok. */
    const restart = async (port, { killed = true, downMs = 0 } = {}) => {
      const node = nodes.get(port);
      node.child.kill(killed ? 'SIGKILL' : 'SIGTERM');
      await node.exited;
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      spawnNode(port);
      for (const p of ports) {
        await until(() => clusterOk(p), { timeout: START_TIMEOUT_MS, what: `cluster_state:ok on ${p} after the restart of ${port}` });
      }
    };

    return {
      ports,
      url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
      nodeUrls: ports.map((p) => `redis://127.0.0.1:${p}`),
      command,
      slotOwner,
      restart,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

module.exports = { startRedisCluster };
