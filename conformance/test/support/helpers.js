'use strict';
// Small helpers shared by the conformance tests: waiting on events with timeouts,
// official-client sockets with a message queue, and raw fetch()/ws access.
// Every wait has a timeout; nothing synchronises by sleeping.

const { Socket } = require('engine.io-client');
const WebSocket = require('ws');

/** Default time to wait for one event (generous: the CI machine has 2 loaded cores). */
const TIMEOUT = Number(process.env.CONFORMANCE_TIMEOUT_MS) || 8000;

/** Client transport set-ups most tests run under. */
const MODES = {
  polling: { transports: ['polling'] },
  websocket: { transports: ['websocket'] },
  'polling+upgrade': {}, // the client's default: polling first, then upgrade to WebSocket
};

/**
 * Test options marking a behaviour where the Node reference server is documented
 * (shared/PROTOCOL.md) to differ from what we require. When the suite runs against
 * the reference (CONFORMANCE_REFERENCE=1) such a test is reported as "todo", so its
 * failure does not fail the run; against our server it is a normal test.
 */
function referenceDiffers(reason) {
  return process.env.CONFORMANCE_REFERENCE ? { todo: `reference differs: ${reason}` } : {};
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Resolves with the argument list of the next `event` on `emitter` (an
 * engine.io-client Socket or a ws WebSocket). Rejects after `timeout` ms, or when
 * one of the `failOn` events fires first.
 */
function waitFor(emitter, event, { timeout = TIMEOUT, failOn = [] } = {}) {
  return new Promise((resolve, reject) => {
    const handlers = new Map();
    const done = () => {
      clearTimeout(timer);
      for (const [ev, fn] of handlers) emitter.off(ev, fn);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeout} ms waiting for '${event}'`));
    }, timeout);
    const onEvent = (...args) => { done(); resolve(args); };
    handlers.set(event, onEvent);
    emitter.on(event, onEvent);
    for (const ev of failOn) {
      if (ev === event) continue;
      const fn = (...args) => {
        done();
        const detail = args.map((a) => (a instanceof Error ? a.message : JSON.stringify(a))).join(', ');
        reject(new Error(`got '${ev}' (${detail}) while waiting for '${event}'`));
      };
      handlers.set(ev, fn);
      emitter.on(ev, fn);
    }
  });
}

/** Resolves when `predicate()` is true, checking every `interval` ms; rejects after `timeout`. */
async function until(predicate, { timeout = TIMEOUT, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** FIFO of received items; `next()` waits (with a timeout) for the next one. */
class Queue {
  constructor(what = 'message', context = () => '') {
    this.what = what;
    this.context = context;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  get length() {
    return this.items.length;
  }

  next(timeout = TIMEOUT) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return new Promise((resolve, reject) => {
      const waiter = (item) => { clearTimeout(timer); resolve(item); };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeout} ms waiting for the next ${this.what}${this.context()}`));
      }, timeout);
      this.waiters.push(waiter);
    });
  }

  async take(n, timeout = TIMEOUT) {
    const out = [];
    const deadline = Date.now() + timeout;
    while (out.length < n) {
      try {
        out.push(await this.next(Math.max(1, deadline - Date.now())));
      } catch (err) {
        err.message += ` (got ${out.length} of ${n})`;
        throw err;
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------
// Official client

const clients = new Set();

/**
 * Creates an engine.io-client Socket on `/engine.io/` without waiting for it to open.
 * Every received message is queued on `socket.received` (a Queue); `socket.closeReason`
 * records why it closed.
 */
function createClient(server, opts = {}) {
  const socket = new Socket(server.url, { path: '/engine.io/', ...opts });
  socket.closeReason = null;
  socket.received = new Queue('message',
    () => (socket.closeReason ? ` (the socket closed: ${socket.closeReason})` : ''));
  socket.on('message', (data) => socket.received.push(data));
  socket.on('close', (reason, desc) => {
    const detail = desc && (desc.message || desc.description || (desc.context && desc.context.statusText));
    socket.closeReason = detail ? `${reason}: ${detail}` : reason;
  });
  socket.on('error', () => {}); // errors are asserted through 'close'
  clients.add(socket);
  return socket;
}

/** Creates a client and waits for its `open` event. */
async function openClient(server, opts = {}) {
  const socket = createClient(server, opts);
  await waitFor(socket, 'open', { failOn: ['close'] });
  return socket;
}

/** Waits for the client's `upgrade` event (unless it already runs on WebSocket). */
async function waitForUpgrade(socket) {
  if (socket.transport && socket.transport.name === 'websocket' && !socket.upgrading) return;
  await waitFor(socket, 'upgrade', { failOn: ['close', 'upgradeError'] });
}

/** Closes every client created by this file's tests; call from afterEach. */
function closeClients() {
  for (const socket of clients) {
    try { socket.close(); } catch { /* ignore */ }
  }
  clients.clear();
  for (const ws of rawSockets) {
    try { ws.terminate(); } catch { /* ignore */ }
  }
  rawSockets.clear();
}

// ---------------------------------------------------------------------------
// Raw protocol access

const RS = '\x1e';
const rawSockets = new Set();

function eioUrl(server, query) {
  return `${server.url}/engine.io/?${query}`;
}

function pollUrl(server, sid, extra = '') {
  return eioUrl(server, `EIO=4&transport=polling&sid=${encodeURIComponent(sid)}${extra}`);
}

/** fetch() with a timeout; resolves { status, headers, body } (body as text). */
async function request(url, { method = 'GET', body, headers, timeout = TIMEOUT } = {}) {
  const res = await fetch(url, { method, body, headers, signal: AbortSignal.timeout(timeout) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Opens a polling session by hand; resolves { sid, handshake }. */
async function rawPollingHandshake(server) {
  const res = await request(eioUrl(server, 'EIO=4&transport=polling'));
  if (res.status !== 200 || !res.body.startsWith('0')) {
    throw new Error(`polling handshake failed: ${res.status} ${res.body}`);
  }
  const handshake = JSON.parse(res.body.slice(1));
  return { sid: handshake.sid, handshake };
}

function poll(server, sid, opts) {
  return request(pollUrl(server, sid), opts);
}

function post(server, sid, body, opts = {}) {
  return request(pollUrl(server, sid), { ...opts, method: 'POST', body });
}

/**
 * Opens a raw ws WebSocket. Returns the ws object extended with:
 *   received: Queue of frames (text frames as strings, binary frames as Buffers)
 *   opened:   Promise resolved on 'open'
 *   closed:   Promise resolved with { code, reason, at } on 'close'
 *   isClosed, wasOpened: booleans; firstFrameAt: Date.now() when the first frame arrived
 *   createdAt: Date.now() just before the connection was started: a server timer started
 *             when the server opened the session began after it, whatever the delays
 *   refusedStatus: the HTTP status if the server answered the upgrade with something else than 101
 * With `autoPong`, server pings ('2') are answered with '3' and not queued.
 */
function rawWs(url, { autoPong = false } = {}) {
  const createdAt = Date.now();
  const ws = new WebSocket(url);
  ws.createdAt = createdAt;
  rawSockets.add(ws);
  ws.received = new Queue('WebSocket frame', () => (ws.isClosed ? ' (the WebSocket closed)' : ''));
  ws.isClosed = false;
  ws.wasOpened = false;
  ws.once('open', () => { ws.wasOpened = true; });
  ws.on('error', (err) => {
    ws.lastError = err;
    // ws refuses a non-101 answer with this error, then emits 'close'.
    const m = /Unexpected server response: (\d+)/.exec(err.message);
    if (m) ws.refusedStatus = Number(m[1]);
  });
  ws.opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', () => reject(new Error('WebSocket closed before opening')));
  });
  ws.opened.catch(() => {});
  ws.closed = new Promise((resolve) => {
    ws.once('close', (code, reason) => {
      ws.isClosed = true;
      resolve({ code, reason: reason.toString(), at: Date.now() });
    });
  });
  ws.on('message', (data, isBinary) => {
    if (ws.firstFrameAt === undefined) ws.firstFrameAt = Date.now();
    const frame = isBinary ? Buffer.from(data) : data.toString('utf8');
    if (autoPong && frame === '2') {
      ws.send('3');
      return;
    }
    ws.received.push(frame);
  });
  return ws;
}

/** Raw WebSocket session (no sid): resolves { ws, sid, handshake } after the open packet. */
async function rawWsHandshake(server, opts) {
  const ws = rawWs(`${server.wsUrl}/engine.io/?EIO=4&transport=websocket`, opts);
  const first = await ws.received.next();
  if (typeof first !== 'string' || !first.startsWith('0')) {
    throw new Error(`expected an open packet, got ${JSON.stringify(first)}`);
  }
  const handshake = JSON.parse(first.slice(1));
  return { ws, sid: handshake.sid, handshake };
}

/** Resolves { code, reason, at } when `ws` closes, rejecting after `timeout` ms. */
async function wsClosed(ws, timeout = TIMEOUT) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`WebSocket not closed within ${timeout} ms`)), timeout);
  });
  try {
    return await Promise.race([ws.closed, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls (GET) `sid` until the server answers 400 "Session ID unknown"; returns that reply. */
async function waitSessionGone(server, sid, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await poll(server, sid, { timeout: Math.max(1, deadline - Date.now()) }).catch((e) => ({ error: e }));
    if (last.status === 400 && /"code":1\b/.test(last.body)) return last;
    if (!last.error) await sleep(20);
  }
  throw new Error(`session ${sid} still known after ${timeout} ms (last reply: ` +
    `${last && (last.error ? last.error.message : `${last.status} ${last.body}`)})`);
}

/** Bytes of a Buffer / ArrayBuffer / typed array, as a Buffer (for comparisons). */
function bytesOf(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`not binary: ${Object.prototype.toString.call(data)}`);
}

module.exports = {
  TIMEOUT,
  MODES,
  RS,
  referenceDiffers,
  sleep,
  waitFor,
  until,
  Queue,
  createClient,
  openClient,
  waitForUpgrade,
  closeClients,
  eioUrl,
  pollUrl,
  request,
  rawPollingHandshake,
  poll,
  post,
  rawWs,
  rawWsHandshake,
  wsClosed,
  waitSessionGone,
  bytesOf,
};
