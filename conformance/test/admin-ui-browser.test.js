'use strict';
// The official Socket.IO Admin UI (`@socket.io/admin-ui` 0.5, its built
// `ui/dist`), served by this test from an origin of its own and run in
// headless Chromium, against `conformance-server --admin` (ADMIN_UI_SERVER=node
// runs the same test against the Node.js reference, admin-ui/node-admin-server.js).
// Development mode, auth off: it connects; the dashboard counts sockets per
// namespace, clients per transport and servers; the Sockets, Rooms, socket
// details and Events pages show what the regular clients did; the disconnect
// buttons really disconnect that socket or its whole client. Basic auth: only
// the right user and password log in. Read-only: no disconnect buttons.
// Production mode: only the Dashboard and Servers pages.
// ADMIN_UI_SCREENSHOT=<file.png> saves the dashboard once the counts show.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const { io } = require('socket.io-client');
const ui = require('../admin-ui/support');
const { startRedis, startNode } = require('./support/cluster');

const ROOM = 'lobby';
const REGULAR = 3;
const PASSWORD = 'correct horse battery staple';

/** Connects an official client to `/` and waits until it runs over WebSocket. */
async function regularClient(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, ...opts });
  socket.reasons = [];
  socket.on('disconnect', (reason) => socket.reasons.push(reason));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (e) => {
      socket.close();
      reject(e);
    });
  });
  const engine = socket.io.engine;
  if (engine.transport.name !== 'websocket') {
    await new Promise((resolve) => engine.once('upgrade', resolve));
  }
  return socket;
}

/** Resolves with the reason of the client's next `disconnect`, or fails after `ms`. */
function nextDisconnect(socket, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(
      `client ${socket.id} got no disconnect within ${ms} ms`)), ms);
    socket.once('disconnect', (reason) => {
      clearTimeout(t);
      resolve(reason);
    });
  });
}

/**
 * The dashboard's Namespaces card (from server_stats) as [name, count] rows,
 * leaving out namespaces without sockets (the servers differ in which empty
 * namespaces they have created).
 */
async function readNamespaces(page) {
  const t = await ui.readCard(page, 'Namespaces');
  return t && t[0].filter((r) => r[1] !== '0');
}

/**
 * Like Promise.all, but when one fails the others are still awaited and
 * closed (browser, servers), so that nothing outlives the failed test file.
 */
async function allOrCleanup(promises) {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (!failed) return results.map((r) => r.value);
  await Promise.allSettled(results.filter((r) => r.status === 'fulfilled').map(({ value: v }) =>
    (typeof v.stop === 'function' ? v.stop() : v.close())));
  throw failed.reason;
}

/** rows → {first cell: second cell} */
const toMap = (rows) => Object.fromEntries(rows.map((r) => [r[0], r[1]]));

// One browser and one UI origin for the whole file; each suite starts its own
// Socket.IO server(s) and opens the UI in fresh browser contexts.
let uiServer;
let browser;

before(async () => {
  [uiServer, browser] = await allOrCleanup([ui.startUiServer(), ui.launchBrowser()]);
});

after(async () => {
  if (browser) await browser.close();
  if (uiServer) await uiServer.close();
});

describe(`Admin UI in Chromium against the ${ui.SERVER_KIND} server`, () => {
  let server;
  let page;
  /** @type {import('socket.io-client').Socket[]} */
  let clients = [];
  /** The ids of the sockets disconnected from the UI. */
  const disconnectedIds = [];

  before(async () => {
    server = await ui.startAdminServer();
    clients = await Promise.all(Array.from({ length: REGULAR }, () => regularClient(server.url)));
    await Promise.all(clients.slice(0, 2).map((c) => c.timeout(ui.WAIT).emitWithAck('join', ROOM)));
    page = await ui.openUi(browser, uiServer.url, server.url);
  });

  after(async () => {
    for (const c of clients) c.close();
    if (page) await page.context().close();
    if (server) await server.stop();
  });

  it('connects from another origin and the dashboard counts the sockets and clients', async () => {
    assert.notEqual(new URL(uiServer.url).origin, new URL(server.url).origin);
    await ui.submitConnection(page, server.url);
    await ui.until('status connected', () => ui.connectionStatus(page), (s) => s === 'connected');

    // server_stats: sockets per namespace (the UI's own socket is in /admin).
    await ui.until(
      `namespaces with sockets: "/" ${REGULAR} and "/admin" 1`,
      () => readNamespaces(page),
      (n) => JSON.stringify(n) === JSON.stringify([['/', String(REGULAR)], ['/admin', '1']]),
    );
    // server_stats: Engine.IO clients by transport, all upgraded by now.
    await ui.until(
      `clients: ${REGULAR + 1} over WebSocket, 0 over polling`,
      async () => {
        const t = await ui.readCard(page, 'Clients');
        return t && t[0].slice(1).map((r) => [r[0], r[1].split('\n')[0]]);
      },
      (rows) => JSON.stringify(rows) ===
        JSON.stringify([['WebSocket', String(REGULAR + 1)], ['HTTP long-polling', '0']]),
    );
    // One server, healthy (it sent server_stats in the last 10 s).
    await ui.until(
      'one healthy server',
      async () => {
        const t = await ui.readCard(page, 'Servers');
        return t && t[0].slice(1).map((r) => [r[0], r[1].split('\n')[0]]);
      },
      (rows) => JSON.stringify(rows) === JSON.stringify([['HEALTHY', '1'], ['UNHEALTHY', '0']]),
    );
    if (process.env.ADMIN_UI_SCREENSHOT) {
      await page.waitForTimeout(1500); // let the charts' 1 s draw animation end
      await page.screenshot({ path: process.env.ADMIN_UI_SCREENSHOT });
    }
    assert.deepEqual(page.errors, []);
  });

  it('the Sockets page lists each socket of a namespace with its transport', async () => {
    await ui.navigate(page, 'sockets', 'Sockets');
    const ids = clients.map((c) => c.id).sort();
    const rows = await ui.until(
      `the ${REGULAR} regular sockets of "/"`,
      () => ui.readDataTable(page),
      (r) => r !== null && JSON.stringify(r.map((x) => x[0]).sort()) === JSON.stringify(ids),
    );
    for (const r of rows) {
      assert.deepEqual(r.slice(1, 3), ['127.0.0.1', 'WebSocket'], `row ${r[0]}`);
    }
    // The admin namespace holds the UI's own socket.
    await ui.selectNamespace(page, '/admin');
    const admin = await ui.until(
      'one socket in "/admin"',
      () => ui.readDataTable(page),
      (r) => r !== null && r.length === 1 && !ids.includes(r[0][0]),
    );
    assert.equal(admin[0][2], 'WebSocket');
    await ui.selectNamespace(page, '/');
    await ui.until('back to "/"', () => ui.readDataTable(page), (r) => r !== null && r.length === REGULAR);
  });

  it('the Rooms page shows the room the regular clients joined', async () => {
    await ui.navigate(page, 'rooms', 'Rooms');
    await ui.until(
      `room "${ROOM}", public, 2 sockets (private rooms hidden)`,
      () => ui.readDataTable(page),
      (r) => JSON.stringify(r && r.map((x) => x.slice(0, 3))) ===
        JSON.stringify([[ROOM, 'PUBLIC', '2']]),
    );
  });

  it("a socket's details page shows its id, client, transport, address, rooms and handshake", async () => {
    const target = clients[0];
    await ui.navigate(page, 'sockets', 'Sockets');
    await page.locator('main .v-data-table tbody tr td:first-child', { hasText: target.id }).click();
    await ui.until('the details page', () => ui.breadcrumbs(page), (b) => b === 'Sockets / Socket details');

    const details = await ui.until('the Details card', () => ui.readCard(page, 'Details'),
      (t) => t !== null && t.length === 2);
    const client = toMap(details[0]);
    const socket = toMap(details[1]);
    assert.equal(client.ID, target.io.engine.id.slice(0, 12), 'client id = first 12 chars of the Engine.IO id');
    assert.equal(client.Status, 'CONNECTED');
    assert.equal(client.Transport, 'WebSocket');
    assert.equal(client['IP address'], '127.0.0.1');
    assert.equal(socket.Namespace, '/');
    assert.equal(socket.ID, target.id);
    assert.equal(socket.Status, 'CONNECTED');
    assert.deepEqual(JSON.parse(socket.Data), {});
    const created = Date.parse(socket['Creation date']);
    assert.ok(Math.abs(Date.now() - created) < 5 * 60 * 1000,
      `creation date ${socket['Creation date']} is recent`);

    const rooms = await ui.until('the Rooms card', () => ui.readCard(page, 'Rooms'),
      (t) => t !== null && t.length === 1);
    assert.deepEqual(rooms[0].map((r) => r[0]), [target.id, ROOM].sort());

    const request = await ui.readCard(page, 'Initial HTTP request');
    assert.ok(request && request.length === 2, 'headers and query tables');
    const headers = toMap(request[0]);
    const query = toMap(request[1]);
    assert.equal(headers.host, new URL(server.url).host);
    assert.equal(query.EIO, '4');
    assert.equal(query.transport, 'polling');
  });

  it("the details page's join and leave, and the Rooms page's clear, change the client's rooms", async () => {
    const target = clients[1];
    const serverRooms = () => target.timeout(ui.WAIT).emitWithAck('rooms', null);
    assert.deepEqual(await serverRooms(), [target.id, ROOM].sort());
    await ui.navigate(page, 'sockets', 'Sockets');
    await page.locator('main .v-data-table tbody tr td:first-child', { hasText: target.id }).click();
    await ui.until('the details page', () => ui.breadcrumbs(page), (b) => b === 'Sockets / Socket details');
    const roomsCard = page.locator('main .v-card', { has: page.locator('.v-card__title', { hasText: /^Rooms$/ }) });

    // "Join a room": `join(nsp, room, socketId)`.
    await roomsCard.getByLabel('Join a room').fill('ui-room');
    await roomsCard.locator('button[type=submit]').click();
    await ui.until('the joined room in the Rooms card', async () => (await ui.readCard(page, 'Rooms'))?.[0].map((r) => r[0]),
      (r) => JSON.stringify(r) === JSON.stringify([target.id, ROOM, 'ui-room'].sort()));
    await ui.until('the client in the room on the server', serverRooms,
      (r) => JSON.stringify(r) === JSON.stringify([target.id, ROOM, 'ui-room'].sort()));

    // The row's leave button: `leave(nsp, room, socketId)` (the row also opens the room's page).
    await roomsCard.locator('tbody tr', { hasText: 'ui-room' }).locator('button').click();
    await ui.until('the client out of the room on the server', serverRooms,
      (r) => JSON.stringify(r) === JSON.stringify([target.id, ROOM].sort()));

    // The Rooms page's clear button: `leave(nsp, room)`, every socket leaves.
    await ui.navigate(page, 'rooms', 'Rooms');
    await ui.until(`room "${ROOM}" listed`, () => ui.readDataTable(page),
      (r) => r !== null && r.some((x) => x[0] === ROOM));
    await page.locator('main .v-data-table tbody tr', { hasText: ROOM }).locator('button').first().click();
    await ui.until('both clients out of the room on the server', async () => [
      await serverRooms(),
      await clients[0].timeout(ui.WAIT).emitWithAck('rooms', null),
    ], (r) => JSON.stringify(r) === JSON.stringify([[target.id], [clients[0].id]]));
    if (await ui.breadcrumbs(page) !== 'Rooms') await ui.navigate(page, 'rooms', 'Rooms');
    await ui.until('no public room left', () => ui.readDataTable(page), (r) => r !== null && r.length === 0);
    assert.deepEqual(page.errors, []);
  });

  it('the disconnect buttons disconnect that socket, or its whole client (io server disconnect)', async () => {
    const [kept, other, target] = clients;
    await ui.navigate(page, 'sockets', 'Sockets');
    await ui.until('all sockets listed', () => ui.readDataTable(page), (r) => r !== null && r.length === REGULAR);
    disconnectedIds.push(target.id, kept.id);
    const reason = nextDisconnect(target, ui.WAIT);
    // The button sits in a clickable row: the UI also opens the socket's details.
    await page.locator('main .v-data-table tbody tr', { hasText: target.id }).locator('button').click();
    assert.equal(await reason, 'io server disconnect');
    if (await ui.breadcrumbs(page) !== 'Sockets') await ui.navigate(page, 'sockets', 'Sockets');
    await ui.until(
      'the disconnected socket leaves the list',
      () => ui.readDataTable(page),
      (r) => r !== null && r.length === REGULAR - 1 && !r.some((x) => x[0] === target.id),
    );
    assert.ok(kept.connected && other.connected, 'the other clients stay connected');
    assert.deepEqual(kept.reasons, []);

    // The details page's client button: `_disconnect(nsp, true, id)` closes the
    // whole Engine.IO connection, the socket's other namespaces included.
    const custom = kept.io.socket('/custom');
    await new Promise((resolve, reject) => {
      custom.once('connect', resolve);
      custom.once('connect_error', reject);
    });
    await page.locator('main .v-data-table tbody tr td:first-child', { hasText: kept.id }).click();
    await ui.until('the details page', () => ui.breadcrumbs(page), (b) => b === 'Sockets / Socket details');
    const closed = nextDisconnect(kept, ui.WAIT);
    const customClosed = nextDisconnect(custom, ui.WAIT);
    const engineClosed = new Promise((resolve) => kept.io.engine.once('close', resolve));
    const clientStatusRow = page
      .locator('main .v-card', { has: page.locator('.v-card__title', { hasText: /^Details$/ }) })
      .locator('table').first().locator('tr', { hasText: 'Status' });
    await clientStatusRow.locator('button').click();
    assert.equal(await closed, 'io server disconnect');
    await customClosed;
    await engineClosed;
    await ui.until(
      'the details page shows the client and socket disconnected',
      () => ui.readCard(page, 'Details'),
      (t) => t !== null && t.length === 2 &&
        toMap(t[0]).Status === 'DISCONNECTED' && toMap(t[1]).Status === 'DISCONNECTED',
    );
    assert.ok(other.connected, 'the third client stays connected');

    await ui.navigate(page, '', 'Dashboard');
    await ui.until(
      `namespaces with sockets: "/" ${REGULAR - 2} and "/admin" 1 ("/custom" empty again)`,
      () => readNamespaces(page),
      (n) => JSON.stringify(n) === JSON.stringify([['/', String(REGULAR - 2)], ['/admin', '1']]),
    );
    assert.deepEqual(page.errors, []);
  });

  it('the Events page shows the live events of a socket (development mode)', async () => {
    await ui.navigate(page, 'events', 'Events');
    const late = await regularClient(server.url);
    clients.push(late);
    await late.timeout(ui.WAIT).emitWithAck('join', 'late-room');
    const back = new Promise((resolve) => late.once('message-back', resolve));
    late.emit('message', 'hello', 42);
    await back;
    const lateId = late.id; // the client forgets it on disconnect
    late.disconnect();
    // Columns: timestamp, socket id, type, details (+ the expand button).
    const expected = [
      ['Connection', ''],
      ['Room joined', `Room: ${lateId}`],
      ['Event sent', 'Event name: auth'],
      ['Event received', 'Event name: join'],
      ['Room joined', 'Room: late-room'],
      ['Event received', 'Event name: message'],
      ['Event sent', 'Event name: message-back'],
      ['Disconnection', 'Reason: client namespace disconnect'],
      ['Room left', `Room: ${lateId}`],
      ['Room left', 'Room: late-room'],
    ].map((e) => JSON.stringify(e)).sort();
    const eventsOf = async (id) => (await ui.readDataTable(page) || [])
      .filter((r) => r[1] === id);
    const rows = await ui.until(
      'the events of a client that connected, joined a room, sent and got an event, and left',
      () => eventsOf(lateId),
      (r) => JSON.stringify(r.map((x) => JSON.stringify(x.slice(2, 4))).sort()) ===
        JSON.stringify(expected),
    );
    for (const r of rows) {
      assert.match(r[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO timestamp');
    }
    const at = (type, details) => Date.parse(rows.find((r) => r[2] === type && r[3] === details)[0]);
    assert.ok(at('Connection', '') <= at('Event received', 'Event name: message'));
    assert.ok(at('Event received', 'Event name: message') <= at('Disconnection', 'Reason: client namespace disconnect'));

    // The sockets disconnected from the UI earlier, with the server side's reason.
    for (const id of disconnectedIds) {
      const mine = await eventsOf(id);
      assert.ok(mine.some((r) => r[2] === 'Disconnection' && r[3] === 'Reason: server namespace disconnect'),
        `${id}: ${JSON.stringify(mine)}`);
    }
    assert.deepEqual(page.errors, []);
  });
});

describe(`Admin UI basic auth against the ${ui.SERVER_KIND} server`, () => {
  let server;

  before(async () => {
    const hash = ui.bcrypt.hashSync(PASSWORD, 10);
    server = await ui.startAdminServer(['--admin-user', 'admin', '--admin-password-hash', hash]);
  });

  after(async () => {
    if (server) await server.stop();
  });

  it('a wrong user name shows "Invalid credentials"', async () => {
    const page = await ui.openUi(browser, uiServer.url, server.url);
    await ui.submitConnection(page, server.url, { username: 'nobody', password: PASSWORD });
    await ui.until('the invalid credentials error', () => ui.connectionError(page),
      (e) => e === 'Invalid credentials');
    assert.equal(await ui.connectionStatus(page), 'disconnected');
    await page.context().close();
  });

  it('a wrong password shows "Invalid credentials"; the right one connects', async () => {
    const page = await ui.openUi(browser, uiServer.url, server.url);
    await ui.submitConnection(page, server.url, { username: 'admin', password: 'wrong password' });
    await ui.until('the invalid credentials error', () => ui.connectionError(page),
      (e) => e === 'Invalid credentials');
    assert.equal(await ui.connectionStatus(page), 'disconnected');


    await ui.submitConnection(page, server.url, { username: 'admin', password: PASSWORD });
    await ui.until('status connected', () => ui.connectionStatus(page), (s) => s === 'connected');
    await ui.until(
      'the UI\'s own socket counted in "/admin"',
      () => readNamespaces(page),
      (n) => JSON.stringify(n) === JSON.stringify([['/admin', '1']]),
    );
    assert.deepEqual(page.errors, []);
  });
});

describe(`Admin UI read-only and production modes against the ${ui.SERVER_KIND} server`, () => {
  let readonly;
  let production;
  const clients = [];

  before(async () => {
    [readonly, production] = await allOrCleanup([
      ui.startAdminServer(['--admin-readonly', '--admin-server-id', 'ui-test-readonly']),
      ui.startAdminServer(['--admin-mode', 'production']),
    ]);
    clients.push(await regularClient(readonly.url), await regularClient(production.url));
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const s of [readonly, production]) if (s) await s.stop();
  });

  it('read-only: the sockets are listed without disconnect buttons; the Servers page shows the server id', async () => {
    const page = await ui.openUi(browser, uiServer.url, readonly.url);
    await ui.submitConnection(page, readonly.url);
    await ui.until('status connected', () => ui.connectionStatus(page), (s) => s === 'connected');
    await ui.navigate(page, 'sockets', 'Sockets');
    await ui.until('the regular socket listed', () => ui.readDataTable(page),
      (r) => r !== null && r.length === 1 && r[0][0] === clients[0].id);
    assert.equal(await page.locator('main .v-data-table tbody tr button').count(), 0,
      'no DISCONNECT feature: no disconnect button');

    await ui.navigate(page, 'servers', 'Servers');
    const rows = await ui.until('one healthy server', () => ui.readDataTable(page),
      (r) => r !== null && r.length === 1 && r[0][6] === 'HEALTHY');
    const [id, hostname, pid, uptime, clientsCount] = rows[0];
    assert.equal(id, 'ui-test-readonly');
    assert.equal(hostname, os.hostname());
    assert.equal(pid, String(readonly.child.pid));
    assert.match(uptime, /^(\d+m )?\d+s$/);
    assert.equal(clientsCount, '2', 'the regular client and the UI');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('production: only the Dashboard and Servers pages, with the counts of server_stats', async () => {
    const page = await ui.openUi(browser, uiServer.url, production.url);
    await ui.submitConnection(page, production.url);
    await ui.until('status connected', () => ui.connectionStatus(page), (s) => s === 'connected');
    await ui.until('no development pages', () => ui.navigationItems(page),
      (items) => JSON.stringify(items) === JSON.stringify(['Dashboard', 'Servers']));
    await ui.until(
      'namespaces with sockets: "/" 1 and "/admin" 1',
      () => readNamespaces(page),
      (n) => JSON.stringify(n) === JSON.stringify([['/', '1'], ['/admin', '1']]),
    );
    await ui.until(
      'clients: 2 over WebSocket',
      async () => {
        const t = await ui.readCard(page, 'Clients');
        return t && t[0].slice(1).map((r) => [r[0], r[1].split('\n')[0]]);
      },
      (rows) => JSON.stringify(rows) === JSON.stringify([['WebSocket', '2'], ['HTTP long-polling', '0']]),
    );
    await ui.navigate(page, 'servers', 'Servers');
    const rows = await ui.until('one healthy server', () => ui.readDataTable(page),
      (r) => r !== null && r.length === 1 && r[0][6] === 'HEALTHY');
    assert.equal(rows[0][0], os.hostname(), 'the server id defaults to the host name');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});

describe(`Admin UI advanced options (WebSocket only, MessagePack parser) against the ${ui.SERVER_KIND} server`, () => {
  let server;
  let client;

  before(async () => {
    server = await ui.startAdminServer(['--parser', 'msgpack']);
    client = await regularClient(server.url, { parser: require('socket.io-msgpack-parser') });
  });

  after(async () => {
    if (client) client.close();
    if (server) await server.stop();
  });

  it('the UI connects over WebSocket only with the MessagePack parser, lists and disconnects a socket', async () => {
    const page = await ui.openUi(browser, uiServer.url, server.url);
    const polls = [];
    page.on('request', (r) => { if (r.url().startsWith(server.url)) polls.push(r.url()); });
    await ui.submitConnection(page, server.url, { wsOnly: true, parser: 'msgpack' });
    await ui.until('status connected', () => ui.connectionStatus(page), (s) => s === 'connected');
    await ui.until(
      'namespaces with sockets: "/" 1 and "/admin" 1',
      () => readNamespaces(page),
      (n) => JSON.stringify(n) === JSON.stringify([['/', '1'], ['/admin', '1']]),
    );
    await ui.navigate(page, 'sockets', 'Sockets');
    await ui.until('the regular socket over WebSocket', () => ui.readDataTable(page),
      (r) => r !== null && r.length === 1 && r[0][0] === client.id && r[0][2] === 'WebSocket');
    await ui.selectNamespace(page, '/admin');
    await ui.until('the UI\'s socket over WebSocket from the start', () => ui.readDataTable(page),
      (r) => r !== null && r.length === 1 && r[0][2] === 'WebSocket');
    await ui.selectNamespace(page, '/');
    const reason = nextDisconnect(client, ui.WAIT);
    await page.locator('main .v-data-table tbody tr', { hasText: client.id }).locator('button').click();
    assert.equal(await reason, 'io server disconnect');
    assert.deepEqual(polls, [], 'no HTTP long-polling request');
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});

describe(`Admin UI on a Redis cluster of two ${ui.SERVER_KIND} nodes`, () => {
  let redis;
  const nodes = {};
  const clients = [];
  let page;

  before(async () => {
    redis = await startRedis();
    for (const name of ['A', 'B']) {
      // The Node reference node is conformance/cluster/node-server.js (`--admin SERVER_ID`).
      nodes[name] = ui.SERVER_KIND === 'node'
        ? await startNode('node', redis.url, ['--admin', name], name)
        : await startNode('rust', redis.url, ['--admin', '--admin-server-id', name], name);
    }
    clients.push(
      await regularClient(nodes.A.url),
      await regularClient(nodes.B.url),
      await regularClient(nodes.B.url),
    );
    await Promise.all(clients.slice(1).map((c) => c.timeout(ui.WAIT).emitWithAck('join', 'on-b')));
    page = await ui.openUi(browser, uiServer.url, nodes.A.url);
  });

  after(async () => {
    for (const c of clients) c.close();
    if (page) await page.context().close();
    await Promise.allSettled(Object.values(nodes).map((n) => n.stop()));
    if (redis) await redis.stop();
  });

  it('the UI on node A shows both servers, every socket and room, and disconnects a client of B', async () => {
    await ui.submitConnection(page, nodes.A.url);
    await ui.until('status connected', () => ui.connectionStatus(page), (s) => s === 'connected');
    await ui.until(
      'two healthy servers',
      async () => {
        const t = await ui.readCard(page, 'Servers');
        return t && t[0].slice(1).map((r) => [r[0], r[1].split('\n')[0]]);
      },
      (rows) => JSON.stringify(rows) === JSON.stringify([['HEALTHY', '2'], ['UNHEALTHY', '0']]),
    );
    // The dashboard sums the namespaces of every server's server_stats.
    await ui.until(
      'namespaces with sockets over the cluster: "/" 3 and "/admin" 1',
      () => readNamespaces(page),
      (n) => JSON.stringify(n) === JSON.stringify([['/', '3'], ['/admin', '1']]),
    );
    await ui.navigate(page, 'servers', 'Servers');
    await ui.until('servers A and B on the Servers page',
      async () => (await ui.readDataTable(page) || []).map((r) => [r[0], r[6]]).sort(),
      (r) => JSON.stringify(r) === JSON.stringify([['A', 'HEALTHY'], ['B', 'HEALTHY']]));

    // all_sockets is cluster-wide.
    await ui.navigate(page, 'sockets', 'Sockets');
    const ids = clients.map((c) => c.id).sort();
    await ui.until('the sockets of both nodes', () => ui.readDataTable(page),
      (r) => r !== null && JSON.stringify(r.map((x) => x[0]).sort()) === JSON.stringify(ids));
    await ui.navigate(page, 'rooms', 'Rooms');
    await ui.until('the room of the clients on B', () => ui.readDataTable(page),
      (r) => JSON.stringify(r && r.map((x) => x.slice(0, 3))) === JSON.stringify([['on-b', 'PUBLIC', '2']]));

    // `_disconnect` from A reaches the client on B.
    await ui.navigate(page, 'sockets', 'Sockets');
    const target = clients[2];
    const reason = nextDisconnect(target, ui.WAIT);
    await page.locator('main .v-data-table tbody tr', { hasText: target.id }).locator('button').click();
    assert.equal(await reason, 'io server disconnect');
    assert.ok(clients[0].connected && clients[1].connected, 'the other clients stay connected');
    if (await ui.breadcrumbs(page) !== 'Sockets') await ui.navigate(page, 'sockets', 'Sockets');
    await ui.until('the disconnected socket of B leaves the list', () => ui.readDataTable(page),
      (r) => r !== null && r.length === 2 && !r.some((x) => x[0] === target.id));
    assert.deepEqual(page.errors, []);
  });
});
