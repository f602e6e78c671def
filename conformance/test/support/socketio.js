'use strict';
// Socket.IO helpers for the socketio-*.test.js files: official socket.io-client
// sockets whose received events are queued per event name, and raw access to the
// `/socket.io/` endpoint (fetch() / ws). Every wait has a timeout.

const { io, Manager } = require('socket.io-client');
const { TIMEOUT, MODES, Queue, waitFor, request, rawWs, sleep } = require('./helpers');

const PATH = '/socket.io/';

// ---------------------------------------------------------------------------
// Official client

const sioSockets = new Set();
const managers = new Set();

/**
 * Adds per-event queues to a socket.io-client Socket: `socket.queue(name)` is a Queue
 * of the argument lists of every `name` event received (from creation on, including
 * events that arrived before anybody asked), `socket.disconnects` a Queue of
 * `disconnect` reasons, `socket.connectErrors` a Queue of `connect_error` errors.
 */
function instrument(socket) {
  const queues = new Map();
  socket.queue = (name) => {
    if (!queues.has(name)) {
      queues.set(name, new Queue(`'${name}' event`,
        () => (socket.connected ? '' : ' (the socket is not connected)')));
    }
    return queues.get(name);
  };
  socket.onAny((event, ...args) => socket.queue(event).push(args));
  socket.disconnects = new Queue('disconnect');
  socket.connectErrors = new Queue('connect_error');
  socket.connects = new Queue('connect');
  socket.on('disconnect', (reason, desc) => socket.disconnects.push(reason));
  socket.on('connect_error', (err) => socket.connectErrors.push(err));
  socket.on('connect', () => socket.connects.push(socket.id));
  sioSockets.add(socket);
  managers.add(socket.io);
  return socket;
}

/**
 * A new socket.io-client Socket on `nsp` (default `/`), with a Manager of its own
 * (forceNew) unless `opts.forceNew === false`. Reconnection is off unless asked for.
 * Does not wait for the connection.
 */
function createSio(server, nsp = '/', opts = {}) {
  const socket = io(server.url + (nsp === '/' ? '' : nsp), {
    forceNew: true,
    reconnection: false,
    timeout: TIMEOUT,
    ...opts,
  });
  return instrument(socket);
}

/** A socket on namespace `nsp` sharing `other`'s Manager (one Engine.IO connection). */
function createSioOn(other, nsp, opts = {}) {
  return instrument(other.io.socket(nsp, opts));
}

/** Waits for `socket`'s next `connect` (rejecting on connect_error / disconnect). */
async function waitConnect(socket, timeout = TIMEOUT) {
  if (socket.connected) return socket;
  await waitFor(socket, 'connect', { timeout, failOn: ['connect_error', 'disconnect'] });
  return socket;
}

/** createSio + wait for `connect`. */
async function connectSio(server, nsp = '/', opts = {}) {
  return waitConnect(createSio(server, nsp, opts));
}

/** Resolves with the next argument list of event `name` on `socket`. */
function nextEvent(socket, name, timeout = TIMEOUT) {
  return socket.queue(name).next(timeout);
}

/** Waits until the client runs on WebSocket (no-op if it already does). */
async function waitSioUpgrade(socket, timeout = TIMEOUT) {
  const engine = socket.io.engine;
  if (engine.transport && engine.transport.name === 'websocket' && !engine.upgrading) return;
  await waitFor(engine, 'upgrade', { timeout, failOn: ['close', 'upgradeError'] });
}

/** Disconnects every socket and closes every Manager created so far; call from afterEach. */
function closeSioClients() {
  for (const socket of sioSockets) {
    try { socket.disconnect(); } catch { /* ignore */ }
  }
  sioSockets.clear();
  for (const manager of managers) {
    try { manager.reconnection(false); manager._close(); } catch { /* ignore */ }
  }
  managers.clear();
}

// ---------------------------------------------------------------------------
// Raw access to /socket.io/

function sioUrl(server, query) {
  return `${server.url}${PATH}?${query}`;
}

function sioWsUrl(server, query = 'EIO=4&transport=websocket') {
  return `${server.wsUrl}${PATH}?${query}`;
}

function sioPollUrl(server, sid, extra = '') {
  return sioUrl(server, `EIO=4&transport=polling&sid=${encodeURIComponent(sid)}${extra}`);
}

/** Opens a polling session on /socket.io/ by hand; resolves { sid, handshake }. */
async function sioPollingHandshake(server) {
  const res = await request(sioUrl(server, 'EIO=4&transport=polling'));
  if (res.status !== 200 || !res.body.startsWith('0')) {
    throw new Error(`polling handshake failed: ${res.status} ${res.body}`);
  }
  const handshake = JSON.parse(res.body.slice(1));
  return { sid: handshake.sid, handshake };
}

function sioPoll(server, sid, opts) {
  return request(sioPollUrl(server, sid), opts);
}

function sioPost(server, sid, body, opts = {}) {
  return request(sioPollUrl(server, sid), { ...opts, method: 'POST', body });
}

/**
 * Raw WebSocket Engine.IO session on /socket.io/ (see helpers.rawWs: frames are read
 * through a queue, so none is lost); resolves { ws, sid, handshake } after the open packet.
 */
async function rawSioWs(server, opts = {}) {
  const ws = rawWs(sioWsUrl(server, opts.query), opts);
  const first = await ws.received.next();
  if (typeof first !== 'string' || !first.startsWith('0')) {
    throw new Error(`expected an open packet, got ${JSON.stringify(first)}`);
  }
  const handshake = JSON.parse(first.slice(1));
  return { ws, sid: handshake.sid, handshake };
}

/** Next frame on a raw ws that is not an Engine.IO ping. */
async function nextNonPing(ws, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const frame = await ws.received.next(Math.max(1, deadline - Date.now()));
    if (frame !== '2') return frame;
  }
}

/**
 * Raw WebSocket joined to `/` (sends `40` + auth); resolves
 * { ws, sid, handshake, socketId } after the CONNECT reply and the `auth` event.
 */
async function rawSioConnect(server, { auth, autoPong = true } = {}) {
  const session = await rawSioWs(server, { autoPong });
  session.ws.send(auth === undefined ? '40' : `40${JSON.stringify(auth)}`);
  const reply = await nextNonPing(session.ws);
  if (typeof reply !== 'string' || !reply.startsWith('40{')) {
    throw new Error(`expected a CONNECT reply, got ${JSON.stringify(reply)}`);
  }
  const socketId = JSON.parse(reply.slice(2)).sid;
  const authEvent = await nextNonPing(session.ws);
  if (typeof authEvent !== 'string' || !authEvent.startsWith('42["auth"')) {
    throw new Error(`expected the auth event, got ${JSON.stringify(authEvent)}`);
  }
  return { ...session, socketId };
}

/**
 * Polls (GET) Engine.IO `sid` on /socket.io/ until the server answers 400 code 1
 * ("Session ID unknown"): the connection is gone. Works for polling and WebSocket
 * sessions (the latter answer code 3 while they live).
 */
async function waitEngineGone(server, sid, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await sioPoll(server, sid, { timeout: Math.max(1, Math.min(1000, deadline - Date.now())) })
      .catch((e) => ({ error: e }));
    if (last.status === 400 && /"code":1\b/.test(last.body)) return last;
    await sleep(20);
  }
  throw new Error(`Engine.IO session ${sid} still known after ${timeout} ms (last reply: ` +
    `${last && (last.error ? last.error.message : `${last.status} ${last.body}`)})`);
}

module.exports = {
  PATH,
  MODES,
  Manager,
  instrument,
  createSio,
  createSioOn,
  waitConnect,
  connectSio,
  nextEvent,
  waitSioUpgrade,
  closeSioClients,
  sioUrl,
  sioWsUrl,
  sioPollUrl,
  sioPollingHandshake,
  sioPoll,
  sioPost,
  rawSioWs,
  nextNonPing,
  rawSioConnect,
  waitEngineGone,
};
