'use strict';
// The server side of the Socket.IO Admin UI (`@socket.io/admin-ui` 0.5): the
// official socket.io-client on the admin namespace `/admin`, as the UI uses it
// (withCredentials, polling then WebSocket), against `conformance-server --admin`.
//
// Every expectation below was measured from the Node package (`instrument(io,
// {...})` on socket.io 4.8.x) and holds for it too: ADMIN_REFERENCE=1 runs this
// file against an in-process Node server with the same app events (see
// `startNode`). What the UI gets (see shared/ADMIN-UI.md):
// - on connect: `config({supportedFeatures})`: EMIT JOIN LEAVE DISCONNECT MJOIN
//   MLEAVE MDISCONNECT unless read-only, then AGGREGATED_EVENTS, then ALL_EVENTS in
//   development mode; in development mode `all_sockets([Socket])` too, the admin's
//   own socket included. With basic auth a `session(id)` comes first.
// - `Socket` = {id, clientId (12 first chars of the Engine.IO sid), transport, nsp,
//   data ({} when unset), handshake {address, headers, query, issued, secure, time,
//   url, xdomain} (no auth), rooms [own id, ...]}.
// - development mode, live: room_joined(nsp, own id, id, iso) then
//   socket_connected(Socket, iso) on connect; socket_updated({id, nsp, transport:
//   "websocket"}) on upgrade; event_received / event_sent (nsp, id, [event,
//   ...args], iso), binary kept, acks not reported; room_joined / room_left (nsp,
//   room, id, iso); socket_disconnected(nsp, id, reason, iso) then room_left for the
//   rooms it was in.
// - server_stats({serverId, hostname, pid, uptime, clientsCount,
//   pollingClientsCount, aggregatedEvents: [{timestamp, type, subType?, count}],
//   namespaces: [{name, socketsCount}]}) every interval (2 s in Node).
// - commands emit(nsp, filter, event, ...args), join(nsp, room, filter),
//   leave(nsp, room, filter), _disconnect(nsp, close, filter): no ack; ignored when
//   read-only.

const { test, describe, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const os = require('node:os');

const { startServer } = require('./support/server');
const { MODES, TIMEOUT, request, until } = require('./support/helpers');
const {
  createSio, waitConnect, connectSio, nextEvent, waitSioUpgrade, closeSioClients,
} = require('./support/socketio');

const REFERENCE = Boolean(process.env.ADMIN_REFERENCE);
const ORIGIN = 'https://admin.socket.io';
const USER = 'admin';
const PASSWORD = 's3cret!';
// bcryptjs.hashSync('s3cret!', 4): a hash as the reference's users make them.
const HASH = '$2a$04$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5my';
const ALL_FEATURES = ['EMIT', 'JOIN', 'LEAVE', 'DISCONNECT', 'MJOIN', 'MLEAVE', 'MDISCONNECT',
  'AGGREGATED_EVENTS', 'ALL_EVENTS'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const HANDSHAKE_KEYS = ['address', 'headers', 'query', 'issued', 'secure', 'time', 'url', 'xdomain'];
// Our server sends stats every 300 ms here; Node's interval is fixed (2 s).
const STATS_MS = REFERENCE ? 2000 : 300;
const STATS_TIMEOUT = TIMEOUT + STATS_MS;

/**
 * The in-process Node reference: socket.io 4.8 + instrument(), with the app events
 * of conformance-server that these tests use, and the same flags.
 */
async function startNode(args) {
  const { Server } = require('socket.io');
  const { instrument } = require('@socket.io/admin-ui');
  const flag = (name) => {
    const i = args.indexOf(name);
    return i === -1 ? undefined : args[i + 1];
  };
  const srv = http.createServer();
  const io = new Server(srv, { cors: { origin: true, credentials: true } });
  io.on('connection', (socket) => {
    socket.emit('auth', socket.handshake.auth);
    socket.on('join', (room, ack) => { socket.join(room); ack(); });
    socket.on('leave', (room, ack) => { socket.leave(room); ack(); });
    socket.on('rooms', (_x, ack) => ack([...socket.rooms].sort()));
    socket.on('echo', (...a) => { const ack = a.pop(); ack(...a); });
    socket.on('message', (...a) => socket.emit('message-back', ...a));
  });
  io.of('/custom').on('connection', (socket) => socket.emit('auth', socket.handshake.auth));
  const user = flag('--admin-user');
  instrument(io, {
    auth: user ? { type: 'basic', username: user, password: flag('--admin-password-hash') } : false,
    readonly: args.includes('--admin-readonly'),
    mode: flag('--admin-mode') || 'development',
    serverId: flag('--admin-server-id'),
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => { io.close(); srv.close(() => resolve()); }),
  };
}

const servers = [];
async function start(args = []) {
  const all = ['--admin', ...args];
  const server = REFERENCE
    ? await startNode(all)
    : await startServer([...all, '--admin-stats-interval', String(STATS_MS)]);
  servers.push(server);
  return server;
}

afterEach(async () => {
  closeSioClients();
  while (servers.length) await servers.pop().stop();
});

/** An admin socket as the UI makes it (polling, then WebSocket; credentials). */
function createAdmin(server, { auth, transports } = {}) {
  return createSio(server, '/admin', {
    withCredentials: true,
    extraHeaders: { origin: ORIGIN },
    ...(transports ? { transports } : {}),
    ...(auth ? { auth } : {}),
  });
}

async function connectAdmin(server, opts) {
  return waitConnect(createAdmin(server, opts));
}

/** Next `name` event on `admin` whose args satisfy `pred` (others of that name are skipped). */
async function nextMatching(admin, name, pred, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const args = await nextEvent(admin, name, Math.max(1, deadline - Date.now()));
    if (pred(...args)) return args;
  }
}

function assertSocketShape(s, { id, nsp, clientId, transport, rooms }) {
  assert.deepEqual(Object.keys(s), ['id', 'clientId', 'transport', 'nsp', 'data', 'handshake', 'rooms']);
  assert.equal(s.id, id);
  assert.equal(s.nsp, nsp);
  assert.equal(s.clientId, clientId);
  assert.equal(s.clientId.length, 12);
  if (transport) assert.equal(s.transport, transport);
  assert.ok(['polling', 'websocket'].includes(s.transport), s.transport);
  assert.deepEqual(s.data, {});
  assert.deepEqual(Object.keys(s.handshake), HANDSHAKE_KEYS);
  const h = s.handshake;
  assert.match(h.address, /127\.0\.0\.1$/);
  assert.equal(typeof h.headers, 'object');
  assert.match(h.headers.host, /^127\.0\.0\.1:\d+$/);
  assert.equal(h.query.EIO, '4');
  assert.equal(typeof h.issued, 'number');
  assert.equal(h.secure, false);
  assert.match(h.time, /GMT/);
  assert.match(h.url, /^\/socket\.io\/\?EIO=4&transport=/);
  assert.equal(typeof h.xdomain, 'boolean');
  assert.deepEqual(s.rooms, rooms || [id]);
}

function clientIdOf(sock) {
  return sock.io.engine.id.slice(0, 12);
}

describe('admin UI: connecting', () => {
  test('development mode, no auth: config then all_sockets, the admin socket included', async () => {
    const server = await start();
    const admin = await connectAdmin(server);
    const [config] = await nextEvent(admin, 'config');
    assert.deepEqual(config, { supportedFeatures: ALL_FEATURES });
    const [all] = await nextEvent(admin, 'all_sockets');
    assert.ok(Array.isArray(all));
    const mine = all.find((s) => s.id === admin.id);
    assert.ok(mine, `own socket in all_sockets: ${JSON.stringify(all)}`);
    assertSocketShape(mine, { id: admin.id, nsp: '/admin', clientId: clientIdOf(admin) });
    assert.equal(mine.handshake.headers.origin, ORIGIN);
    assert.equal(mine.handshake.xdomain, true);
    // Its own connect, its own room, and its upgrade are reported to it too.
    const [connected, at] = await nextMatching(admin, 'socket_connected', (s) => s.id === admin.id);
    assertSocketShape(connected, { id: admin.id, nsp: '/admin', clientId: clientIdOf(admin) });
    assert.match(at, ISO);
    const [nsp, room, id, at2] = await nextMatching(admin, 'room_joined', (n, r) => r === admin.id);
    assert.deepEqual([nsp, room, id], ['/admin', admin.id, admin.id]);
    assert.match(at2, ISO);
    await waitSioUpgrade(admin);
    const [updated] = await nextMatching(admin, 'socket_updated', (u) => u.id === admin.id);
    assert.deepEqual(updated, { id: admin.id, nsp: '/admin', transport: 'websocket' });
  });

  test('CORS: every polling answer reflects the origin, with credentials', async () => {
    const server = await start();
    const url = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const res = await request(url, { headers: { origin: ORIGIN } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN);
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
    const sid = JSON.parse(res.body.slice(1)).sid;
    const post = await request(`${url}&sid=${sid}`, {
      method: 'POST', body: '40/admin,', headers: { origin: 'http://localhost:8080' },
    });
    assert.equal(post.status, 200);
    assert.equal(post.headers.get('access-control-allow-origin'), 'http://localhost:8080');
    assert.equal(post.headers.get('access-control-allow-credentials'), 'true');
    const get = await request(`${url}&sid=${sid}`, { headers: { origin: ORIGIN } });
    assert.equal(get.status, 200);
    assert.match(get.body, /(^|\x1e)40\/admin,/);
    assert.equal(get.headers.get('access-control-allow-origin'), ORIGIN);
    assert.equal(get.headers.get('access-control-allow-credentials'), 'true');
  });
});

describe('admin UI: basic auth', () => {
  const args = ['--admin-user', USER, '--admin-password-hash', HASH];

  test('no or wrong credentials: connect_error "invalid credentials"', async () => {
    const server = await start(args);
    for (const auth of [undefined, { username: USER, password: 'nope' },
      { username: 'root', password: PASSWORD }, { sessionId: 'made-up' }]) {
      const admin = createAdmin(server, { auth });
      const err = await admin.connectErrors.next();
      assert.equal(err.message, 'invalid credentials', JSON.stringify(auth));
      admin.disconnect();
    }
  });

  test('right credentials: session id, then that id alone lets the UI back in', async () => {
    const server = await start(args);
    const admin = await connectAdmin(server, { auth: { username: USER, password: PASSWORD } });
    const [sessionId] = await nextEvent(admin, 'session');
    assert.equal(typeof sessionId, 'string');
    assert.ok(sessionId.length >= 16, sessionId);
    const [config] = await nextEvent(admin, 'config');
    assert.deepEqual(config.supportedFeatures, ALL_FEATURES);
    const again = await connectAdmin(server, { auth: { sessionId } });
    assert.deepEqual((await nextEvent(again, 'config'))[0].supportedFeatures, ALL_FEATURES);
    // No new session for a resumed one: the next event is the config.
    assert.equal(again.queue('session').length, 0);
  });
});

describe('admin UI: development mode, a regular client seen live', () => {
  for (const [mode, opts] of Object.entries(MODES)) {
    test(`connect, events, rooms, disconnect (${mode})`, async () => {
      const server = await start();
      const admin = await connectAdmin(server);
      await nextEvent(admin, 'all_sockets');
      const client = await connectSio(server, '/', opts);
      const id = client.id;
      const initial = opts.transports ? opts.transports[0] : 'polling';

      const [nsp, room, rid] = await nextMatching(admin, 'room_joined', (n, r, i) => i === id);
      assert.deepEqual([nsp, room, rid], ['/', id, id]);
      const [s, at] = await nextMatching(admin, 'socket_connected', (x) => x.id === id);
      assertSocketShape(s, { id, nsp: '/', clientId: clientIdOf(client), transport: initial });
      assert.equal(s.handshake.headers.origin, undefined);
      assert.match(at, ISO);
      // The app's `auth` event on connect is an event sent.
      const [sentNsp, sentId, sentArgs, sentAt] = await nextMatching(admin, 'event_sent', (n, i) => i === id);
      assert.deepEqual([sentNsp, sentId, sentArgs], ['/', id, ['auth', {}]]);
      assert.match(sentAt, ISO);
      if (mode === 'polling+upgrade') {
        await waitSioUpgrade(client);
        const [u] = await nextMatching(admin, 'socket_updated', (x) => x.id === id);
        assert.deepEqual(u, { id, nsp: '/', transport: 'websocket' });
      }

      await client.timeout(TIMEOUT).emitWithAck('join', 'r1');
      let [n2, i2, args2, at2] = await nextMatching(admin, 'event_received', (n, i) => i === id);
      assert.deepEqual([n2, i2, args2], ['/', id, ['join', 'r1']]);
      assert.match(at2, ISO);
      assert.deepEqual((await nextMatching(admin, 'room_joined', (n, r) => r === 'r1')).slice(0, 3),
        ['/', 'r1', id]);

      // Binary is kept; the ack is no event.
      const echoed = await new Promise((resolve, reject) => {
        client.timeout(TIMEOUT).emit('echo', 'hi', Buffer.from([1, 2, 3]),
          (err, ...a) => (err ? reject(err) : resolve(a)));
      });
      assert.deepEqual(echoed, ['hi', Buffer.from([1, 2, 3])]);
      [n2, i2, args2] = await nextMatching(admin, 'event_received', (n, i) => i === id);
      assert.deepEqual([n2, i2], ['/', id]);
      assert.equal(args2[0], 'echo');
      assert.equal(args2[1], 'hi');
      assert.deepEqual(Buffer.from(args2[2]), Buffer.from([1, 2, 3]));

      client.emit('message', 'x', 2);
      await nextEvent(client, 'message-back');
      assert.deepEqual((await nextMatching(admin, 'event_received', (n, i) => i === id))[2], ['message', 'x', 2]);
      assert.deepEqual((await nextMatching(admin, 'event_sent', (n, i) => i === id))[2], ['message-back', 'x', 2]);

      await client.timeout(TIMEOUT).emitWithAck('leave', 'r1');
      assert.deepEqual((await nextMatching(admin, 'room_left', (n, r) => r === 'r1')).slice(0, 3),
        ['/', 'r1', id]);

      client.disconnect();
      const [dn, did, reason, dat] = await nextMatching(admin, 'socket_disconnected', (n, i) => i === id);
      assert.deepEqual([dn, did, reason], ['/', id, 'client namespace disconnect']);
      assert.match(dat, ISO);
      assert.deepEqual((await nextMatching(admin, 'room_left', (n, r) => r === id)).slice(0, 3), ['/', id, id]);
    });
  }

  test('all_sockets lists the sockets of every namespace with their rooms', async () => {
    const server = await start();
    const a = await connectSio(server, '/', MODES.websocket);
    await a.timeout(TIMEOUT).emitWithAck('join', 'blue');
    const b = await connectSio(server, '/custom', MODES.polling);
    const admin = await connectAdmin(server);
    const [all] = await nextEvent(admin, 'all_sockets');
    const sa = all.find((s) => s.id === a.id);
    const sb = all.find((s) => s.id === b.id);
    assertSocketShape(sa, { id: a.id, nsp: '/', clientId: clientIdOf(a), transport: 'websocket', rooms: [a.id, 'blue'] });
    assertSocketShape(sb, { id: b.id, nsp: '/custom', clientId: clientIdOf(b), transport: 'polling' });
    assert.ok(all.find((s) => s.id === admin.id && s.nsp === '/admin'));
  });
});

describe('admin UI: server_stats', () => {
  test('shape, namespaces, and the aggregated events of a client that came and went', async () => {
    const server = await start(['--admin-server-id', 'node-a']);
    const admin = await connectAdmin(server);
    await waitSioUpgrade(admin);
    const client = await connectSio(server, '/', MODES.polling);
    await client.timeout(TIMEOUT).emitWithAck('echo', 'hello');
    // Every server_stats is kept: the aggregated events come once each.
    const seen = new Map();
    const take = (st) => {
      for (const e of st.aggregatedEvents) {
        const keys = Object.keys(e);
        assert.deepEqual(keys, e.type === 'rawDisconnection'
          ? ['timestamp', 'type', 'subType', 'count'] : ['timestamp', 'type', 'count']);
        assert.equal(e.timestamp % 1000, 0);
        assert.ok(Math.abs(e.timestamp - Date.now()) < 60000);
        assert.ok(Number.isInteger(e.count) && e.count > 0);
        const k = e.subType ? `${e.type}:${e.subType}` : e.type;
        seen.set(k, (seen.get(k) || 0) + e.count);
      }
      return st;
    };
    let stats;
    await until(async () => {
      stats = take((await nextEvent(admin, 'server_stats', STATS_TIMEOUT))[0]);
      return stats.namespaces.some((n) => n.name === '/' && n.socketsCount === 1);
    }, { timeout: STATS_TIMEOUT * 3, interval: 0, what: 'stats counting the client' });
    assert.deepEqual(Object.keys(stats), ['serverId', 'hostname', 'pid', 'uptime', 'clientsCount',
      'pollingClientsCount', 'aggregatedEvents', 'namespaces']);
    assert.equal(stats.serverId, 'node-a');
    assert.equal(stats.hostname, os.hostname());
    assert.equal(typeof stats.pid, 'number');
    assert.ok(stats.uptime > 0 && stats.uptime < 3600, String(stats.uptime));
    assert.equal(stats.clientsCount, 2);
    assert.equal(stats.pollingClientsCount, 1, 'the polling client (the admin upgraded)');
    assert.deepEqual(stats.namespaces.find((n) => n.name === '/admin'), { name: '/admin', socketsCount: 1 });
    client.disconnect();
    await until(async () => {
      take((await nextEvent(admin, 'server_stats', STATS_TIMEOUT))[0]);
      return seen.has('rawDisconnection:transport close');
    }, { timeout: STATS_TIMEOUT * 4, interval: 0, what: 'a rawDisconnection' });
    for (const k of ['rawConnection', 'packetsIn', 'bytesIn', 'packetsOut', 'bytesOut']) {
      assert.ok(seen.has(k), `${k} in ${JSON.stringify([...seen])}`);
    }
    assert.equal(seen.get('rawConnection'), 2);
  });
});

describe('admin UI: commands, seen from the regular client', () => {
  for (const [mode, opts] of Object.entries(MODES)) {
    test(`emit, join, leave, _disconnect (${mode})`, async () => {
      const server = await start();
      const admin = await connectAdmin(server);
      await nextEvent(admin, 'config');
      const client = await connectSio(server, '/', opts);
      const other = await connectSio(server, '/', opts);

      admin.emit('emit', '/', null, 'hello', 1, 'two');
      assert.deepEqual(await nextEvent(client, 'hello'), [1, 'two']);
      assert.deepEqual(await nextEvent(other, 'hello'), [1, 'two']);
      // A socket id is a room: only that client.
      admin.emit('emit', '/', client.id, 'only-you', { a: 1 });
      assert.deepEqual(await nextEvent(client, 'only-you'), [{ a: 1 }]);

      admin.emit('join', '/', 'room2', client.id);
      await until(async () => (await client.timeout(TIMEOUT).emitWithAck('rooms', null)).includes('room2'),
        { what: 'room2 joined' });
      admin.emit('emit', '/', 'room2', 'to-room2');
      assert.deepEqual(await nextEvent(client, 'to-room2'), []);
      admin.emit('join', '/', 'everyone');
      await until(async () => (await other.timeout(TIMEOUT).emitWithAck('rooms', null)).includes('everyone'),
        { what: 'everyone joined' });
      admin.emit('leave', '/', 'room2');
      await until(async () => !(await client.timeout(TIMEOUT).emitWithAck('rooms', null)).includes('room2'),
        { what: 'room2 left' });
      // Nothing else reached `other`: it got only the broadcast and no to-room2.
      assert.equal(other.queue('only-you').length, 0);
      assert.equal(other.queue('to-room2').length, 0);

      admin.emit('_disconnect', '/', false, client.id);
      assert.equal(await client.disconnects.next(), 'io server disconnect');
      assert.equal(other.connected, true);
      // close: the whole connection goes (its other namespace too).
      const custom = other.io.socket('/custom');
      await waitConnect(require('./support/socketio').instrument(custom));
      admin.emit('_disconnect', '/', true, other.id);
      assert.equal(await other.disconnects.next(), 'io server disconnect');
      assert.ok(['io server disconnect', 'transport close'].includes(await custom.disconnects.next()));
    });
  }
});

describe('admin UI: read-only', () => {
  test('config without commands, and commands are ignored', async () => {
    const server = await start(['--admin-readonly']);
    const watcher = await connectAdmin(server);
    const admin = await connectAdmin(server);
    assert.deepEqual((await nextEvent(admin, 'config'))[0], { supportedFeatures: ['AGGREGATED_EVENTS', 'ALL_EVENTS'] });
    const client = await connectSio(server, '/', MODES.websocket);
    admin.emit('emit', '/', null, 'hello', 1);
    admin.emit('join', '/', 'room2');
    admin.emit('_disconnect', '/', true);
    const adminId = admin.id;
    // The server handles one connection's packets in order: once it saw the admin
    // leave, it had handled (and ignored) the commands before.
    admin.disconnect();
    await nextMatching(watcher, 'socket_disconnected', (n, i) => i === adminId);
    // What was sent to the client before now would arrive before this ack.
    const rooms = await client.timeout(TIMEOUT).emitWithAck('rooms', null);
    assert.deepEqual(rooms, [client.id]);
    assert.equal(client.queue('hello').length, 0);
    assert.equal(client.connected, true);
  });
});

describe('admin UI: production mode', () => {
  test('aggregated stats only: no all_sockets, no per-socket events; commands obeyed', async () => {
    const server = await start(['--admin-mode', 'production']);
    const admin = await connectAdmin(server);
    assert.deepEqual((await nextEvent(admin, 'config'))[0],
      { supportedFeatures: ALL_FEATURES.filter((f) => f !== 'ALL_EVENTS') });
    const client = await connectSio(server, '/', MODES.websocket);
    await client.timeout(TIMEOUT).emitWithAck('join', 'r1');
    // A server_stats that counts the client comes after any report of its connect.
    const [stats] = await nextMatching(admin, 'server_stats',
      (st) => st.namespaces.some((n) => n.name === '/' && n.socketsCount === 1), STATS_TIMEOUT * 2);
    assert.ok(Array.isArray(stats.aggregatedEvents));
    for (const ev of ['all_sockets', 'socket_connected', 'room_joined', 'event_received', 'event_sent']) {
      assert.equal(admin.queue(ev).length, 0, ev);
    }
    admin.emit('emit', '/', null, 'hello', 'prod');
    assert.deepEqual(await nextEvent(client, 'hello'), ['prod']);
  });
});
