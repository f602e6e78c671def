#!/usr/bin/env node
'use strict';
// Reproduces the recovery race the soak test found (README, "Known issues"): a client recovered by
// connection state recovery misses, or gets out of order, the broadcasts made while the server
// restores it.
//
//   node soak/recovery-race.js [--clients 20] [--cycles 20] [--interval-ms 2]
//
// Starts conformance-server (or $CONFORMANCE_SERVER) with recovery on; a broadcaster (WebSocket)
// sends numbered broadcasts to room `r` every --interval-ms; --clients WebSocket clients join `r`
// and, --cycles times each, have their TCP connection reset (RST, no close frame), reconnect with
// their pid and offset, and must be recovered. Across each recovery the numbers of `r` must go on
// without a gap and without going back. Prints the counts; exits 1 when a recovered client lost or
// reordered a broadcast, 0 otherwise.

const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { io } = require('socket.io-client');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? Number(args[i + 1]) : dflt;
};
const CLIENTS = opt('--clients', 20);
const CYCLES = opt('--cycles', 20);
const INTERVAL_MS = opt('--interval-ms', 2);
const BINARY = process.env.CONFORMANCE_SERVER ||
  path.resolve(__dirname, '..', '..', 'target', 'debug', 'conformance-server');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const once = (emitter, event, ms) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
  emitter.once(event, (...a) => { clearTimeout(timer); resolve(a); });
});

class ResetAgent extends http.Agent {
  constructor() { super({ keepAlive: true }); this.conns = new Set(); }
  createConnection(options, cb) {
    const s = net.createConnection(options, cb);
    this.conns.add(s);
    s.once('close', () => this.conns.delete(s));
    return s;
  }
  reset() { for (const s of this.conns) s.resetAndDestroy(); this.conns.clear(); }
}

async function main() {
  const server = spawn(BINARY, ['--port', '0', '--recovery-duration', '30000', '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => server.kill('SIGKILL'));
  const url = await new Promise((resolve, reject) => {
    server.once('exit', (c) => reject(new Error(`server exited (${c})`)));
    readline.createInterface({ input: server.stdout }).on('line', (line) => {
      const m = /^listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
  });
  const opts = { forceNew: true, reconnection: false, transports: ['websocket'] };
  const bc = io(url, opts);
  await once(bc, 'connect', 10000);

  const counts = { recoveries: 0, notRecovered: 0, lost: 0, outOfOrder: 0, received: 0 };
  const examples = [];
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const agent = new ResetAgent();
    const socket = io(url, { ...opts, agent });
    const c = { socket, agent, last: 0, reconnecting: false, recoveredAt: 0 };
    // socket.io-client emits the events that arrived before the CONNECT reply before 'connect'.
    const reconnected = () => {
      if (!c.reconnecting || !socket.connected) return;
      c.reconnecting = false;
      if (socket.recovered) {
        counts.recoveries++;
        c.recoveredAt = Date.now();
      } else {
        counts.notRecovered++;
        c.last = 0; // a new socket, in no room
      }
    };
    socket.on('connect', reconnected);
    socket.on('msg', (p) => {
      reconnected();
      counts.received++;
      if (c.last && p.n !== c.last + 1) {
        if (p.n <= c.last) counts.outOfOrder++;
        else counts.lost += p.n - c.last - 1;
        if (examples.length < 5) examples.push(`client ${i}: #${p.n} after #${c.last}` +
          `${Date.now() - c.recoveredAt < 1000 ? ' (right after its recovery)' : ''}`);
      }
      if (p.n > c.last) c.last = p.n;
    });
    await once(socket, 'connect', 10000);
    await socket.timeout(10000).emitWithAck('join', 'r');
    clients.push(c);
  }

  let n = 0;
  let sending = true;
  (async () => {
    while (sending) {
      bc.emit('bcast', 'r', { n: ++n });
      await sleep(INTERVAL_MS);
    }
  })();
  await sleep(200);
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    await Promise.all(clients.map(async (c) => {
      await sleep(Math.random() * 50);
      const down = once(c.socket, 'disconnect', 10000);
      c.agent.reset();
      await down;
      await sleep(20);
      c.reconnecting = true;
      c.socket.connect();
      await once(c.socket, 'connect', 10000);
      if (!c.socket.recovered) await c.socket.timeout(10000).emitWithAck('join', 'r');
    }));
  }
  sending = false;
  const summary = { clients: CLIENTS, cycles: CYCLES, broadcasts: n, ...counts, examples };
  console.log(JSON.stringify(summary));
  process.exit(counts.lost || counts.outOfOrder ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(2); });
