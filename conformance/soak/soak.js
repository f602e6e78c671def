#!/usr/bin/env node
'use strict';
// Soak and churn test: the official socket.io-client 4.8 against `conformance-server`.
//
//   node soak/soak.js [--duration 60] [--url http://127.0.0.1:PORT] [options]   (see USAGE)
//
// What runs (all on 127.0.0.1):
// - the server: `target/debug/conformance-server` (or $CONFORMANCE_SERVER) on a free port, with short
//   heartbeats and connection state recovery (`--ping-interval 4000 --ping-timeout 4000
//   --recovery-duration 5000`), unless --url names a running one;
// - a steady core (this process): --core clients split over polling, websocket and polling+upgrade,
//   each in two of the rooms r0..r5, connected for the whole run, plus a broadcaster (websocket) that
//   sends numbered broadcasts round-robin over seven streams (the six rooms and `all`, the whole
//   namespace) through the server's `bcast` event. Each core client checks that it got every broadcast
//   of its streams exactly once, in order, and none of the others; meanwhile it emits with acks
//   (`echo`, `server-ack` round trips, checked) and without (`message`, answered by `message-back`);
// - churn (--workers child processes, --concurrency clients at once in all): clients over a random
//   transport that connect (some also to a dynamic namespace `/dyn-*`), join and leave rooms, emit
//   with and without acks, answer server acks, check the broadcasts they get (per stream: in order,
//   no duplicate, no gap while in the room, nothing from rooms they are not in), then leave:
//     clean    socket.disconnect();
//     abrupt   every TCP connection of the client is reset (`resetAndDestroy()`: SO_LINGER 0, a real
//              RST, no close packet, no close frame); its http.Agent then refuses new connections,
//              so the client cannot send anything afterwards (engine.io-client would otherwise POST
//              a close packet for a polling transport);
//     blip     the connections are reset, then the same client reconnects and must be recovered by
//              connection state recovery (same id, rooms, the missed broadcasts replayed: still no
//              gap); then clean or abrupt;
//   some first leave a server->client ack pending (`server-ack` on an event they never answer);
//   and every --kill-every seconds one worker process is SIGKILLed and replaced (its clients vanish
//   at once: the kernel closes their sockets).
// Phases: warm-up churn (20% of --duration, 10 s to 120 s), quiesce (churn stopped, broadcasts and
// core activity paused, /stats polled until it holds exactly the core: sessions, sockets, rooms 6,
// no pending ack, no recovery entry), RSS baseline; main churn (the rest of --duration); quiesce
// again, RSS after churn; then the core disconnects and every count must reach 0.
//
// Fails (exit 1) on: a lost, duplicated, out-of-order or misrouted broadcast, a failed or wrong
// ack, a core client disconnected, a churn client disconnected before it chose to leave, a
// connect failure, a count not back to its expected value within --settle seconds, or the RSS after
// the churn more than --rss-threshold-mb above the baseline, or a gap, an inversion or a duplicate
// right after a recovered reconnection (the recovery races, fixed; --lenient-recovery only counts
// them). One thing is counted apart and reported, not failed (README, "Known issues"): a broadcast
// of a room that reaches a churn client within 2 s after the ack of its leave (it chose its
// recipients before the leave). Prints progress on stderr and one summary JSON line on stdout. Everything is bounded in
// time; child processes are killed on exit (workers also exit when their parent goes).

const { spawn, fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');

const USAGE = `usage: node soak/soak.js [options]
  --duration S          churn time in seconds, warm-up included (default 60)
  --url URL             a running server (default: start conformance-server)
  --core N              steady core clients (default 48)
  --concurrency N       churn clients at once, over all workers (default 200)
  --workers N           churn worker processes (default 2)
  --rate N              broadcasts per second (default 20)
  --kill-every S        SIGKILL a worker every S seconds, 0 = never (default 25)
  --settle S            deadline for counts to settle after each phase (default 120)
  --rss-threshold-mb M  allowed RSS growth after the churn (default 8)
  --seed N              random seed (default: time)
  --transports LIST     churn transports, of polling,websocket,upgrade (default: all three)
  --lenient-recovery    count the recovery races (gap, inversion or duplicate right after a
                        recovered reconnection) instead of failing on them
  --strict-recovery     fail on them (the default; kept for old command lines)
  --verbose             server stderr and per-client errors as they happen`;

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const DEFAULT_BINARY = path.join(REPO_ROOT, 'target', 'debug', 'conformance-server');
const SERVER_ARGS = ['--ping-interval', '4000', '--ping-timeout', '4000', '--recovery-duration', '5000',
  '--log-level', 'warn'];
const ROOMS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
const STREAMS = [...ROOMS, 'all'];
const ACK_TIMEOUT_MS = 10000;
const CONNECT_TIMEOUT_MS = 15000;
/** After a recovered reconnection, gaps and inversions this soon are the known recovery race. */
const RECOVERY_RACE_MS = 1000;
/** How long after a leave's ack a broadcast of that room may still arrive (in sequence). */
const LATE_AFTER_LEAVE_MS = 2000;
/** A pending server->client ack nobody answers lasts this long (the client leaves before). */
const HANG_MS = 60000;

// ---------------------------------------------------------------------------
// Shared helpers

function parseArgs(argv) {
  const o = {
    duration: 60, url: null, core: 48, concurrency: 200, workers: 2, rate: 20, killEvery: 25,
    settle: 120, rssThresholdMb: 8, seed: Date.now() % 1e9, verbose: false, worker: false,
    transports: Object.keys(TRANSPORTS), strictRecovery: true,
  };
  const num = (flag, v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} needs a number, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--duration': o.duration = num(flag, next()); break;
      case '--url': o.url = next().replace(/\/+$/, ''); break;
      case '--core': o.core = Math.max(3, Math.floor(num(flag, next()))); break;
      case '--concurrency': o.concurrency = Math.floor(num(flag, next())); break;
      case '--workers': o.workers = Math.max(1, Math.floor(num(flag, next()))); break;
      case '--rate': o.rate = Math.max(1, num(flag, next())); break;
      case '--kill-every': o.killEvery = num(flag, next()); break;
      case '--settle': o.settle = num(flag, next()); break;
      case '--rss-threshold-mb': o.rssThresholdMb = num(flag, next()); break;
      case '--seed': o.seed = Math.floor(num(flag, next())); break;
      case '--verbose': o.verbose = true; break;
      case '--strict-recovery': o.strictRecovery = true; break;
      case '--lenient-recovery': o.strictRecovery = false; break;
      case '--transports': o.transports = next().split(',').filter((t) => TRANSPORTS[t]); break;
      case '--worker': o.worker = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${flag}\n${USAGE}`);
    }
  }
  if (o.url && !/^http:\/\/127\.0\.0\.1:\d+$/.test(o.url)) {
    throw new Error(`--url must be http://127.0.0.1:PORT (the soak talks to this machine only), got ${o.url}`);
  }
  return o;
}

/** mulberry32: a small seeded PRNG (reproducible choices for a given --seed). */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (list) => list[Math.floor(next() * list.length)],
    chance: (p) => next() < p,
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const TRANSPORTS = {
  polling: { transports: ['polling'] },
  websocket: { transports: ['websocket'] },
  upgrade: { transports: ['polling', 'websocket'] },
};

/**
 * An http.Agent that keeps the TCP connections it made, so that they can be reset (RST, no FIN,
 * nothing more written) with `reset()`; after `kill()` it also refuses new connections (they fail
 * locally, nothing reaches the server).
 */
class DropAgent extends http.Agent {
  constructor() {
    super({ keepAlive: true });
    this.conns = new Set();
    this.dead = false;
  }

  createConnection(options, cb) {
    if (this.dead) {
      const s = new net.Socket();
      process.nextTick(() => s.destroy(new Error('soak: client dropped')));
      return s;
    }
    const s = net.createConnection(options, cb);
    this.conns.add(s);
    s.once('close', () => this.conns.delete(s));
    return s;
  }

  reset() {
    for (const s of this.conns) {
      try { s.resetAndDestroy(); } catch { s.destroy(); }
    }
    this.conns.clear();
  }

  kill() {
    this.dead = true;
    this.reset();
    this.destroy();
  }
}

/**
 * Per-stream broadcast checker of one client. `member(stream)` says whether the client is (or is
 * joining) that room: messages of other streams are misrouted. Within a stream, each number must
 * be the previous one plus 1 once the first arrived (`strictFrom`: the first one expected, for the
 * core, which is in its rooms before the first broadcast).
 */
class StreamCheck {
  constructor() {
    this.last = new Map();
    this.received = 0;
    this.lost = 0;
    this.outOfOrder = 0;
    this.misrouted = 0;
    this.lateAfterLeave = 0;
    this.raceLost = 0;
    this.raceOutOfOrder = 0;
    this.errors = [];
    this.warnings = [];
  }

  expectFrom(stream, first) {
    this.last.set(stream, first - 1);
  }

  forget(stream) {
    this.last.delete(stream);
  }

  /**
   * `isMember(stream)`: true, false, or 'late' (just left: see LATE_AFTER_LEAVE_MS);
   * `inRecoveryRace()`: whether the client was recovered less than RECOVERY_RACE_MS ago (a gap or
   * an inversion then is the known recovery race, counted apart: see README, "Known issues").
   */
  take(payload, isMember, context = () => '', inRecoveryRace = () => false) {
    this.received++;
    const s = payload && payload.s;
    const n = payload && payload.n;
    if (typeof s !== 'string' || !Number.isInteger(n)) {
      this.error(`malformed broadcast ${JSON.stringify(payload)}`);
      return;
    }
    const member = isMember(s);
    const last = this.last.get(s);
    if (member === 'late' && (last === undefined || n === last + 1)) {
      // A broadcast that selected its recipients before the leave and reached this client
      // after the leave's ack: tolerated right after the leave, in sequence (see README).
      this.lateAfterLeave++;
      this.last.set(s, n);
      return;
    }
    if (member !== true) {
      this.misrouted++;
      this.error(`broadcast ${s}#${n} received outside the room${last !== undefined ? ` (last ${last})` : ''}${context()}`);
      return;
    }
    if (last !== undefined) {
      const race = inRecoveryRace();
      if (n <= last) {
        if (race) this.raceOutOfOrder++;
        else this.outOfOrder++;
        (race ? this.warn : this.error).call(this,
          `${s}#${n} after ${s}#${last} (duplicate or out of order)${context()}`);
        return;
      }
      if (n > last + 1) {
        if (race) this.raceLost += n - last - 1;
        else this.lost += n - last - 1;
        (race ? this.warn : this.error).call(this, `${s}: gap ${last + 1}..${n - 1}${context()}`);
      }
    }
    this.last.set(s, n);
  }

  error(msg) {
    if (this.errors.length < 20) this.errors.push(msg);
  }

  warn(msg) {
    if (this.warnings.length < 20) this.warnings.push(msg);
  }
}

// ---------------------------------------------------------------------------
// Worker: churn clients

function runWorker(opts) {
  const { io } = require('socket.io-client');
  let cfg = null;
  let stopping = false;
  let live = 0;
  const send = (msg) => { try { process.send(msg); } catch { /* parent gone */ } };

  process.on('disconnect', () => process.exit(0)); // the parent died: do not linger
  process.on('message', (msg) => {
    if (msg.t === 'start') {
      cfg = msg;
      for (let i = 0; i < cfg.slots; i++) slot(i);
    } else if (msg.t === 'stop') {
      stopping = true;
      const check = setInterval(() => {
        if (live === 0) {
          clearInterval(check);
          send({ t: 'stopped' });
          setTimeout(() => process.exit(0), 200);
        }
      }, 50);
    }
  });

  async function slot(i) {
    const r = rng(cfg.seed * 1000 + i);
    let n = 0;
    while (!stopping) {
      live++;
      const state = { connected: false, finished: false };
      try {
        await churnClient(r, `${cfg.name}-${i}-${n++}`, state);
      } catch (err) {
        if (!state.finished) {
          send({ t: 'end', how: 'error', connected: state.connected, errors: [`${err.stack || err.message}`], stats: {} });
        }
      }
      live--;
      if (!stopping) await sleep(r.int(0, 200));
    }
  }

  async function churnClient(r, label, state) {
    const transport = r.pick(cfg.transports);
    const agent = new DropAgent();
    const socket = io(cfg.url, {
      forceNew: true, reconnection: false, timeout: CONNECT_TIMEOUT_MS, agent, ...TRANSPORTS[transport],
    });
    const check = new StreamCheck();
    const st = { acksOk: 0, acksFailed: 0, emits: 0, recovered: 0, recoveryMissed: 0, unexpectedDisconnects: 0 };
    const errors = [];
    const err = (m) => { if (errors.length < 20) errors.push(`${label} (${transport}): ${m}`); };
    // Rooms: 'joining' from the emit on (broadcasts may precede the ack), 'left' after the leave ack
    // (then `leftAt` has the time of the ack).
    const rooms = new Map();
    const leftAt = new Map();
    const isMember = (s) => {
      if (s === 'all') return true;
      const state = rooms.get(s);
      if (state === 'joining' || state === 'joined' || state === 'leaving') return true;
      if (state === 'left' && Date.now() - leftAt.get(s) < LATE_AFTER_LEAVE_MS) return 'late';
      return false;
    };
    let ending = false;
    const waiters = new Map();
    const born = Date.now();
    let blipInfo = '';
    const notes = [];
    const trace = [];
    const note = (m) => { if (notes.length < 10) notes.push(`${m}@${Date.now() - born}`); };
    socket.io.on('open', () => {
      const engine = socket.io.engine;
      note(`sid:${engine.id}`);
      if (process.env.SOAK_TRACE) {
        engine.on('packet', (p) => {
          const d = typeof p.data === 'string' ? p.data.slice(0, 40) : '';
          trace.push(`${Date.now() - born}:${p.type}:${d}`);
          if (trace.length > 60) trace.shift();
        });
      }
      engine.on('upgrade', (t) => note(`upgrade:${t.name}`));
      engine.on('upgradeError', (e) => note(`upgradeError:${e.message}`));
    });
    const context = () => ` [at ${Date.now() - born} ms, on ${socket.io.engine && socket.io.engine.transport ? socket.io.engine.transport.name : '?'}${blipInfo}${notes.length ? `; ${notes.join(' ')}` : ''}]`;
    let recoveredAt = 0;
    let reconnecting = false;
    const inRecoveryRace = () => recoveredAt > 0 && Date.now() - recoveredAt < RECOVERY_RACE_MS;
    // After a reconnection: recovered, or a new socket in no room (tracking restarts). Done on the
    // first of 'connect' and the first event: socket.io-client emits the events that came before
    // the CONNECT reply (buffered) before it emits 'connect'.
    const reconnected = () => {
      if (!reconnecting || !socket.connected) return;
      reconnecting = false;
      if (socket.recovered) {
        recoveredAt = Date.now();
      } else {
        rooms.clear();
        check.last.clear();
      }
    };
    socket.on('msg', (payload) => {
      reconnected();
      check.take(payload, isMember, context, inRecoveryRace);
    });
    socket.on('message-back', (token) => {
      reconnected();
      const w = waiters.get(token);
      if (w) {
        waiters.delete(token);
        w();
      } else if (inRecoveryRace()) {
        // Replayed although it was delivered before the drop: the recovery log's order is not
        // the order this client got its events in (README, "Known issues").
        check.raceOutOfOrder++;
        check.warn(`message-back ${JSON.stringify(token)} again${context()}`);
      } else {
        err(`unexpected message-back ${JSON.stringify(token)}${context()}`);
      }
    });
    socket.on('q', (x, ack) => { if (typeof ack === 'function') ack(x * 2); });
    let disconnected = null;
    socket.on('disconnect', (reason) => {
      if (!ending) {
        st.unexpectedDisconnects++;
        err(`disconnected: ${reason}`);
      }
      if (disconnected) disconnected(reason);
    });
    const gone = () => new Promise((resolve) => { disconnected = resolve; });
    socket.on('connect', () => reconnected());

    const connect = () => withTimeout(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
    }), CONNECT_TIMEOUT_MS + 1000, 'connect');

    const finish = (how) => {
      state.finished = true;
      agent.kill();
      socket.removeAllListeners();
      check.errors.forEach((e) => err(e));
      if (process.env.SOAK_TRACE && check.errors.length) err(`trace ${trace.join(' | ')}`);
      st.received = check.received;
      st.lost = check.lost;
      st.outOfOrder = check.outOfOrder;
      st.misrouted = check.misrouted;
      st.lateAfterLeave = check.lateAfterLeave;
      st.raceLost = check.raceLost;
      st.raceOutOfOrder = check.raceOutOfOrder;
      send({ t: 'end', how, transport, connected: state.connected, stats: st, errors,
        warnings: check.warnings.map((w) => `${label} (${transport}): ${w}`) });
    };

    try {
      await connect();
    } catch (e) {
      ending = true;
      err(e.message);
      socket.disconnect();
      finish('connect-failed');
      return;
    }
    state.connected = true;
    send({ t: 'conn', transport });

    // A second namespace on the same connection, now and then (dynamic: removed when empty).
    let dyn = null;
    if (r.chance(0.2)) {
      dyn = socket.io.socket(`/dyn-${r.int(0, 4)}`);
      dyn.on('disconnect', (reason) => { if (!ending) err(`/dyn disconnected: ${reason}`); });
      try {
        await withTimeout(new Promise((resolve) => dyn.once('hello', resolve)), ACK_TIMEOUT_MS, '/dyn hello');
      } catch (e) { err(e.message); }
    }

    const ack = async (what, p, verify) => {
      st.emits++;
      try {
        const v = await p;
        if (verify(v)) st.acksOk++;
        else { st.acksFailed++; err(`${what}: wrong answer ${JSON.stringify(v)}`); }
      } catch (e) {
        if (!ending) { st.acksFailed++; err(`${what}: ${e.message}`); }
      }
    };
    const actions = {
      join: async () => {
        const free = ROOMS.filter((x) => !rooms.has(x));
        if (!free.length) return;
        const room = r.pick(free);
        rooms.set(room, 'joining');
        await ack('join', socket.timeout(ACK_TIMEOUT_MS).emitWithAck('join', room), () => true);
        if (rooms.get(room) === 'joining') rooms.set(room, 'joined');
      },
      leave: async () => {
        const joined = [...rooms].filter(([, v]) => v === 'joined').map(([k]) => k);
        if (!joined.length) return;
        const room = r.pick(joined);
        rooms.set(room, 'leaving');
        await ack('leave', socket.timeout(ACK_TIMEOUT_MS).emitWithAck('leave', room), () => true);
        rooms.set(room, 'left');
        leftAt.set(room, Date.now());
      },
      echo: async () => {
        const token = `${label}:${r.int(0, 1e9)}`;
        await ack('echo', socket.timeout(ACK_TIMEOUT_MS).emitWithAck('echo', token), (v) => v === token);
      },
      message: async () => {
        const token = `${label}:m${r.int(0, 1e9)}`;
        const back = new Promise((resolve) => waiters.set(token, resolve));
        st.emits++;
        socket.emit('message', token);
        try {
          await withTimeout(back, ACK_TIMEOUT_MS, 'message-back');
          st.acksOk++;
        } catch (e) {
          waiters.delete(token);
          if (!ending) { st.acksFailed++; err(e.message); }
        }
      },
      serverAck: async () => {
        const x = r.int(1, 1000);
        await ack('server-ack', socket.timeout(ACK_TIMEOUT_MS).emitWithAck('server-ack', 'q', x, ACK_TIMEOUT_MS),
          (v) => v && Array.isArray(v.ok) && v.ok[0] === x * 2);
      },
    };
    const names = ['join', 'join', 'leave', 'echo', 'message', 'serverAck'];

    const life = Date.now() + r.int(200, 8000);
    const blip = r.chance(0.1);
    let blipped = false;
    while (!stopping && Date.now() < life) {
      await actions[r.pick(names)]();
      await sleep(r.int(20, 400));
      if (blip && !blipped && Date.now() > life - 2000) {
        blipped = true;
        const blipAt = Date.now() - born;
        // Reset the connections; the same client comes back with its pid and last offset.
        ending = true;
        // The agent refuses new connections meanwhile: over polling, xmlhttprequest-ssl would
        // otherwise re-send a request whose reused keep-alive connection was reset, and the
        // client would not notice anything.
        const down = gone();
        agent.dead = true;
        agent.reset();
        await withTimeout(down, 10000, 'disconnect after reset').catch((e) => err(e.message));
        agent.dead = false;
        await sleep(300);
        ending = false;
        try {
          reconnecting = true;
          socket.connect();
          await connect();
        } catch (e) {
          ending = true;
          err(`reconnect after blip: ${e.message}`);
          finish('blip-failed');
          return;
        }
        blipInfo = `, blip at ${blipAt} ms, ${socket.recovered ? 'recovered' : 'not recovered'} at ${Date.now() - born} ms`;
        // Not recovered: the server had not seen the drop yet (polling: until the heartbeat
        // expires), or the client's last offset is older than the recovery window.
        if (socket.recovered) st.recovered++;
        else st.recoveryMissed++;
      }
    }

    // Leave: now and then a server->client ack left pending first (the server's handler awaits
    // it: nothing else of this client runs after it, so it comes last).
    const hang = r.chance(0.3);
    if (hang) socket.emit('server-ack', 'hang', 0, HANG_MS);
    const abrupt = r.chance(0.5);
    ending = true;
    if (abrupt) {
      if (hang) await sleep(r.int(0, 100));
      agent.kill();
      finish(`abrupt${blipped ? '-blip' : ''}${hang ? '-hang' : ''}`);
    } else {
      const down = gone();
      if (dyn) dyn.disconnect();
      socket.disconnect();
      await withTimeout(down, 5000, 'disconnect').catch(() => {});
      // The Manager closed the engine; the agent's keep-alive connections go too (FIN).
      await sleep(50);
      agent.destroy();
      finish(`clean${blipped ? '-blip' : ''}${hang ? '-hang' : ''}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Parent: server, core, broadcaster, workers, checks

const children = new Set();
function killChildren() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
}

function log(msg) {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function getStats(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/stats`, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        try { resolve(JSON.parse(body)); } catch (e) { reject(new Error(`/stats: ${e.message}: ${body}`)); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('/stats: timeout')));
    req.on('error', reject);
  });
}

function startServer() {
  const binary = process.env.CONFORMANCE_SERVER || DEFAULT_BINARY;
  if (!fs.existsSync(binary)) {
    throw new Error(`server binary not found at ${binary}: run \`cargo build -p conformance-server\` at the ` +
      'repository root, or set CONFORMANCE_SERVER');
  }
  const child = spawn(binary, ['--port', '0', ...SERVER_ARGS], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const server = { child, stderrTail: '', warnings: 0, exited: null };
  child.stderr.setEncoding('utf8');
  const logFile = process.env.SOAK_SERVER_LOG ? fs.createWriteStream(process.env.SOAK_SERVER_LOG) : null;
  child.stderr.on('data', (chunk) => {
    if (logFile) logFile.write(chunk);
    server.stderrTail = (server.stderrTail + chunk).slice(-6000);
    server.warnings += (chunk.match(/\b(WARN|ERROR)\b/g) || []).length;
  });
  child.once('exit', (code, signal) => { server.exited = { code, signal }; children.delete(child); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server not listening within 20 s')), 20000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (code ${code}, signal ${signal})\n${server.stderrTail}`));
    });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^listening on 127\.0\.0\.1:(\d+)\s*$/.exec(line);
      if (m) {
        clearTimeout(timer);
        server.url = `http://127.0.0.1:${m[1]}`;
        resolve(server);
      }
    });
  });
}

async function main(opts) {
  const t0 = Date.now();
  const warmup = Math.min(120, Math.max(10, opts.duration * 0.2), opts.duration);
  const mainChurn = Math.max(0, opts.duration - warmup);
  // Hard bound on the whole run: churn, up to three settles, start-up and slack.
  const hardDeadline = setTimeout(() => {
    log(`FAILED: the run exceeded its hard deadline`);
    killChildren();
    process.exit(1);
  }, (opts.duration + 3 * opts.settle + 120) * 1000);
  hardDeadline.unref();

  const { io } = require('socket.io-client');
  let server = null;
  let url = opts.url;
  if (!url) {
    server = await startServer();
    url = server.url;
    if (opts.verbose) server.child.stderr.on('data', (c) => process.stderr.write(c));
  }
  log(`server ${url}${server ? ` (${SERVER_ARGS.join(' ')})` : ''}; seed ${opts.seed}; ` +
    `warm-up ${warmup} s + churn ${mainChurn} s, ${opts.concurrency} churn clients at once`);
  const failures = [];
  const warnings = [];
  const fail = (m) => { if (failures.length < 50) failures.push(m); log(`FAIL: ${m}`); };
  const r = rng(opts.seed);
  const initial = await getStats(url);
  if (initial.sessions || initial.sockets || initial.rooms || initial.pendingAcks) {
    throw new Error(`the server is not idle: ${JSON.stringify(initial)}`);
  }

  // ---- core ---------------------------------------------------------------
  let paused = false;
  let stopped = false;
  const core = [];
  const modes = ['polling', 'websocket', 'upgrade'];
  const coreStats = { acksOk: 0, acksFailed: 0, disconnects: 0 };
  const makeCore = async (i, mode, rooms, label) => {
    const socket = io(url, { forceNew: true, reconnection: false, timeout: CONNECT_TIMEOUT_MS, ...TRANSPORTS[mode] });
    const c = { i, mode, rooms: new Set(rooms), socket, label, check: new StreamCheck(), got: new Map() };
    const members = new Set([...rooms, 'all']);
    for (const s of STREAMS) c.got.set(s, []);
    socket.on('msg', (p) => {
      c.check.take(p, (s) => members.has(s));
      if (p && c.got.has(p.s)) c.got.get(p.s).push(p.n);
    });
    c.waiters = new Map();
    socket.on('message-back', (token) => {
      const w = c.waiters.get(token);
      if (w) { c.waiters.delete(token); w(); } else fail(`${label}: unexpected message-back ${token}`);
    });
    socket.on('q', (x, ack) => ack(x * 2));
    socket.on('disconnect', (reason) => {
      if (!stopped) {
        coreStats.disconnects++;
        fail(`${label} (${mode}) disconnected: ${reason}`);
      }
    });
    await withTimeout(new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', (e) => reject(new Error(`${label}: connect_error ${e.message}`)));
    }), CONNECT_TIMEOUT_MS, `${label} connect`);
    for (const room of rooms) await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('join', room);
    for (const s of members) c.check.expectFrom(s, 1);
    return c;
  };
  for (let i = 0; i < opts.core; i++) {
    const mode = modes[i % 3];
    const rooms = [ROOMS[i % ROOMS.length], ROOMS[(i + 1 + Math.floor(i / ROOMS.length)) % ROOMS.length]];
    core.push(makeCore(i, mode, [...new Set(rooms)], `core${i}`));
  }
  const bc = await makeCore(-1, 'websocket', [], 'broadcaster');
  const coreClients = [...(await Promise.all(core)), bc];
  // Wait for the upgrades, so that the websocket count is exact.
  const upgradeDeadline = Date.now() + 20000;
  while (coreClients.some((c) => c.mode === 'upgrade' && c.socket.io.engine.transport.name !== 'websocket')) {
    if (Date.now() > upgradeDeadline) throw new Error('core clients not upgraded within 20 s');
    await sleep(100);
  }
  const coreWs = coreClients.filter((c) => c.mode !== 'polling').length;
  const coreRooms = new Set(coreClients.flatMap((c) => [...c.rooms])).size;
  log(`core: ${coreClients.length} clients (${opts.core} + broadcaster), ${coreWs} on websocket`);

  // Core activity: each client, every 0.5-3 s, one emit with or without ack, checked.
  const coreActivity = async (c) => {
    const cr = rng(opts.seed + 7 + c.i);
    while (!stopped) {
      await sleep(cr.int(500, 3000));
      if (paused || stopped) continue;
      const what = cr.pick(['echo', 'message', 'serverAck']);
      try {
        if (what === 'echo') {
          const token = `${c.label}:${cr.int(0, 1e9)}`;
          const v = await c.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('echo', token);
          if (v !== token) throw new Error(`echo answered ${JSON.stringify(v)}`);
        } else if (what === 'message') {
          const token = `${c.label}:m${cr.int(0, 1e9)}`;
          const back = new Promise((resolve) => c.waiters.set(token, resolve));
          c.socket.emit('message', token);
          await withTimeout(back, ACK_TIMEOUT_MS, 'message-back');
        } else {
          const x = cr.int(1, 1000);
          const v = await c.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('server-ack', 'q', x, ACK_TIMEOUT_MS);
          if (!v || !Array.isArray(v.ok) || v.ok[0] !== x * 2) throw new Error(`server-ack answered ${JSON.stringify(v)}`);
        }
        coreStats.acksOk++;
      } catch (e) {
        if (stopped) return;
        coreStats.acksFailed++;
        fail(`${c.label} ${what}: ${e.message}`);
      }
    }
  };
  const activity = coreClients.map((c) => coreActivity(c));

  // Broadcaster: round-robin over the streams, numbered per stream.
  const sent = new Map(STREAMS.map((s) => [s, 0]));
  let k = 0;
  const bcTimer = setInterval(() => {
    if (paused || stopped) return;
    const s = STREAMS[k++ % STREAMS.length];
    const n = sent.get(s) + 1;
    sent.set(s, n);
    bc.socket.emit('bcast', s === 'all' ? null : s, { s, n });
  }, 1000 / opts.rate);

  // ---- workers ------------------------------------------------------------
  const tot = {
    connected: 0, ended: 0, byHow: {}, byTransport: {}, acksOk: 0, acksFailed: 0, received: 0, lost: 0,
    outOfOrder: 0, misrouted: 0, lateAfterLeave: 0, raceLost: 0, raceOutOfOrder: 0, unexpectedDisconnects: 0, recovered: 0, recoveryMissed: 0, killed: 0,
    workerKills: 0, errors: 0,
  };
  const workers = new Set();
  let workerSeq = 0;
  const spawnWorker = (slots) => {
    const w = fork(__filename, ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(w);
    w.live = 0;
    w.slots = slots;
    w.name = `w${workerSeq++}`;
    w.stoppedP = new Promise((resolve) => { w.onStopped = resolve; });
    w.exitedP = new Promise((resolve) => w.once('exit', resolve));
    w.on('message', (m) => {
      if (m.t === 'conn') {
        w.live++;
        tot.connected++;
        tot.byTransport[m.transport] = (tot.byTransport[m.transport] || 0) + 1;
      } else if (m.t === 'end') {
        if (m.connected) w.live--;
        tot.ended++;
        tot.byHow[m.how] = (tot.byHow[m.how] || 0) + 1;
        const s = m.stats || {};
        for (const key of ['acksOk', 'acksFailed', 'received', 'lost', 'outOfOrder', 'misrouted',
          'unexpectedDisconnects', 'recovered', 'recoveryMissed', 'lateAfterLeave', 'raceLost',
          'raceOutOfOrder']) tot[key] += s[key] || 0;
        for (const w of m.warnings || []) {
          if (warnings.length < 50) warnings.push(w);
          log(`recovery race (known issue): churn ${w}`);
        }
        if (m.errors && m.errors.length) {
          tot.errors += m.errors.length;
          for (const e of m.errors) fail(`churn ${e}`);
        }
      } else if (m.t === 'stopped') {
        w.onStopped();
      }
    });
    w.once('exit', () => { children.delete(w); workers.delete(w); w.onStopped(); });
    w.send({ t: 'start', url, slots, seed: opts.seed + 1000 * workerSeq, name: w.name, transports: opts.transports });
    workers.add(w);
    return w;
  };
  const slotsPer = Math.max(1, Math.floor(opts.concurrency / opts.workers));

  // Stats sampling.
  const samples = { rssPeak: 0, sessionsPeak: 0, socketsPeak: 0 };
  let sampling = true;
  const sampler = (async () => {
    let lastLog = 0;
    while (sampling) {
      try {
        const s = await getStats(url);
        samples.rssPeak = Math.max(samples.rssPeak, s.rssBytes || 0);
        samples.sessionsPeak = Math.max(samples.sessionsPeak, s.sessions);
        samples.socketsPeak = Math.max(samples.socketsPeak, s.sockets);
        if (Date.now() - lastLog > 10000) {
          lastLog = Date.now();
          log(`stats ${JSON.stringify(s)}; churn connected ${tot.connected}, ended ${tot.ended}, ` +
            `killed ${tot.killed}; broadcasts ${[...sent.values()].reduce((a, b) => a + b, 0)}`);
        }
      } catch (e) {
        fail(`stats: ${e.message}`);
      }
      await sleep(1000);
    }
  })();

  const churn = async (seconds, phase) => {
    log(`${phase}: churn for ${seconds} s`);
    for (let i = 0; i < opts.workers; i++) spawnWorker(slotsPer);
    const end = Date.now() + seconds * 1000;
    let nextKill = opts.killEvery > 0 ? Date.now() + opts.killEvery * 1000 : Infinity;
    while (Date.now() < end) {
      await sleep(Math.min(250, Math.max(1, end - Date.now())));
      if (Date.now() >= nextKill && end - Date.now() > 3000) {
        nextKill += opts.killEvery * 1000;
        const victim = [...workers][r.int(0, workers.size - 1)];
        if (victim) {
          tot.killed += victim.live;
          tot.workerKills++;
          log(`SIGKILL worker ${victim.name} (${victim.live} clients)`);
          workers.delete(victim);
          victim.kill('SIGKILL');
          spawnWorker(victim.slots);
        }
      }
    }
    const ws = [...workers];
    for (const w of ws) w.send({ t: 'stop' });
    await withTimeout(Promise.all(ws.map((w) => w.stoppedP)), 30000, 'workers stopping')
      .catch((e) => fail(e.message));
    await withTimeout(Promise.all(ws.map((w) => w.exitedP)), 5000, 'workers exiting').catch(() => {});
    for (const w of ws) w.kill('SIGKILL');
    log(`${phase}: churn stopped (${tot.connected} churn clients connected so far)`);
  };

  // Polls /stats until `want(s)` holds; returns the stats (fails with the last one at the deadline).
  const settle = async (what, want) => {
    const deadline = Date.now() + opts.settle * 1000;
    let s;
    for (;;) {
      s = await getStats(url);
      if (want(s)) return s;
      if (Date.now() > deadline) {
        fail(`${what}: not reached within ${opts.settle} s: ${JSON.stringify(s)}`);
        return s;
      }
      await sleep(500);
    }
  };
  const rssMedian = async () => {
    const v = [];
    for (let i = 0; i < 3; i++) {
      v.push((await getStats(url)).rssBytes);
      await sleep(1000);
    }
    return v.sort((a, b) => a - b)[1];
  };
  const coreOnly = (s) => s.sessions === coreClients.length && s.sockets === coreClients.length &&
    s.websockets === coreWs && s.rooms === coreRooms && s.pendingAcks === 0 && s.recoverySessions === 0 &&
    s.recoveryPackets === 0 && s.namespaces === initial.namespaces;
  const quiesce = async (phase) => {
    paused = true;
    const t = Date.now();
    const s = await settle(`${phase}: only the core left`, coreOnly);
    log(`${phase}: settled in ${((Date.now() - t) / 1000).toFixed(1)} s: ${JSON.stringify(s)}`);
    return s;
  };

  // ---- phases ---------------------------------------------------------------
  await churn(warmup, 'warm-up');
  await quiesce('warm-up');
  const rssBaseline = await rssMedian();
  log(`RSS baseline ${(rssBaseline / 1048576).toFixed(2)} MB`);
  paused = false;
  await churn(mainChurn, 'main');
  await quiesce('main');
  const rssAfterChurn = await rssMedian();

  // Every broadcast of the core's streams must have arrived: fence through the broadcaster's own
  // connection (its events run in order), then wait for the last numbers.
  stopped = true;
  clearInterval(bcTimer);
  await bc.socket.timeout(ACK_TIMEOUT_MS).emitWithAck('echo', 'fence').catch((e) => fail(`fence: ${e.message}`));
  const deliveredBy = Date.now() + 20000;
  const complete = (c) => [...c.rooms, 'all'].every((s) => {
    const got = c.got.get(s);
    return sent.get(s) === 0 || (got.length && got[got.length - 1] >= sent.get(s));
  });
  while (coreClients.some((c) => !complete(c)) && Date.now() < deliveredBy) await sleep(100);
  await Promise.all(activity);
  const coreTot = { expected: 0, received: 0, lost: 0, outOfOrder: 0, misrouted: 0 };
  for (const c of coreClients) {
    for (const s of STREAMS) {
      const got = c.got.get(s);
      coreTot.received += got.length;
      if (!c.rooms.has(s) && s !== 'all') continue;
      coreTot.expected += sent.get(s);
      const seen = new Set(got);
      let missing = 0;
      for (let n = 1; n <= sent.get(s); n++) if (!seen.has(n)) missing++;
      if (missing) fail(`${c.label} (${c.mode}): ${missing} of ${sent.get(s)} broadcasts of ${s} missing`);
      coreTot.lost += missing;
    }
    coreTot.outOfOrder += c.check.outOfOrder;
    coreTot.misrouted += c.check.misrouted;
    for (const e of c.check.errors) fail(`${c.label} (${c.mode}): ${e}`);
  }

  // Everybody leaves: every count back to 0.
  for (const c of coreClients) c.socket.disconnect();
  const zero = await settle('all clients gone: every count 0', (s) => s.sessions === 0 && s.websockets === 0 &&
    s.sockets === 0 && s.rooms === 0 && s.pendingAcks === 0 && s.recoverySessions === 0 &&
    s.recoveryPackets === 0 && s.namespaces === initial.namespaces);
  const rssEnd = await rssMedian();
  sampling = false;
  await sampler;

  const mb = (b) => Math.round((b / 1048576) * 100) / 100;
  const growth = rssAfterChurn - rssBaseline;
  if (growth > opts.rssThresholdMb * 1048576) {
    fail(`RSS after the churn ${mb(rssAfterChurn)} MB is ${mb(growth)} MB above the baseline ${mb(rssBaseline)} MB ` +
      `(threshold ${opts.rssThresholdMb} MB)`);
  }
  if (coreTot.lost || coreTot.outOfOrder || coreTot.misrouted) {
    fail(`core broadcasts: lost ${coreTot.lost}, out of order ${coreTot.outOfOrder}, misrouted ${coreTot.misrouted}`);
  }
  if (tot.connected < 1) fail('no churn client connected');
  if (opts.strictRecovery && (tot.raceLost || tot.raceOutOfOrder)) {
    fail(`recovery race: ${tot.raceLost} lost, ${tot.raceOutOfOrder} out of order right after a recovery`);
  }
  if (server && server.exited) fail(`the server exited: ${JSON.stringify(server.exited)}`);

  const abrupt = Object.entries(tot.byHow).filter(([h]) => h.startsWith('abrupt')).reduce((a, [, n]) => a + n, 0);
  const clean = Object.entries(tot.byHow).filter(([h]) => h.startsWith('clean')).reduce((a, [, n]) => a + n, 0);
  const summary = {
    ok: failures.length === 0,
    seed: opts.seed,
    durationS: opts.duration,
    warmupS: warmup,
    wallS: Math.round((Date.now() - t0) / 1000),
    core: coreClients.length,
    churnConcurrency: opts.concurrency,
    clientsConnected: tot.connected + coreClients.length,
    churnByTransport: tot.byTransport,
    drops: { clean, abrupt, killedWithWorker: tot.killed, workerKills: tot.workerKills, byHow: tot.byHow },
    recovery: {
      recovered: tot.recovered, missed: tot.recoveryMissed,
      raceLost: tot.raceLost, raceOutOfOrder: tot.raceOutOfOrder, strict: opts.strictRecovery,
    },
    broadcastsSent: [...sent.values()].reduce((a, b) => a + b, 0),
    coreBroadcasts: coreTot,
    churnBroadcasts: {
      received: tot.received, lost: tot.lost, outOfOrder: tot.outOfOrder, misrouted: tot.misrouted,
      lateAfterLeave: tot.lateAfterLeave,
    },
    acksOk: coreStats.acksOk + tot.acksOk,
    acksFailed: coreStats.acksFailed + tot.acksFailed,
    unexpectedDisconnects: coreStats.disconnects + tot.unexpectedDisconnects,
    peaks: { sessions: samples.sessionsPeak, sockets: samples.socketsPeak },
    rssMb: { baseline: mb(rssBaseline), peak: mb(samples.rssPeak), afterChurn: mb(rssAfterChurn), end: mb(rssEnd),
      growth: mb(growth), threshold: opts.rssThresholdMb },
    endStats: zero,
    serverWarnings: server ? server.warnings : null,
    failures: failures.slice(0, 10),
    warnings: warnings.slice(0, 5),
  };
  console.log(JSON.stringify(summary));
  if (server) {
    server.child.kill('SIGTERM');
    await withTimeout(new Promise((resolve) => {
      if (server.exited) resolve(); else server.child.once('exit', resolve);
    }), 5000, 'server exit').catch(() => server.child.kill('SIGKILL'));
    if (failures.length && server.stderrTail) log(`server stderr (tail):\n${server.stderrTail}`);
  }
  clearTimeout(hardDeadline);
  return failures.length === 0;
}

// ---------------------------------------------------------------------------

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}
if (opts.worker) {
  runWorker(opts);
} else {
  process.on('exit', killChildren);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => { killChildren(); process.exit(130); });
  }
  main(opts).then((ok) => {
    killChildren();
    log(ok ? 'PASSED' : 'FAILED');
    process.exit(ok ? 0 : 1);
  }, (err) => {
    killChildren();
    log(`FAILED: ${err.stack || err.message}`);
    process.exit(1);
  });
}
