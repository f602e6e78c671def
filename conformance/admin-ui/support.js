'use strict';
// Helpers for test/admin-ui-browser.test.js: serve the official Admin UI's
// built `ui/dist` (from the `@socket.io/admin-ui` npm package) from an origin
// of its own, start the Socket.IO server under test with its admin flags (ours,
// or the Node.js reference with ADMIN_UI_SERVER=node), drive Debian's chromium
// through playwright-core, and read what the UI shows.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const assert = require('node:assert/strict');
const { chromium } = require('playwright-core');
const { startServer } = require('../test/support/server');

const ADMIN_UI_DIR = path.dirname(require.resolve('@socket.io/admin-ui/package.json'));
const UI_DIST = path.join(ADMIN_UI_DIR, 'ui', 'dist');
const NODE_SERVER = path.join(__dirname, 'node-admin-server.js');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
/** Default wait for anything the UI should show (a loaded 2-core machine). */
const WAIT = 20000;

/** `node` runs the Node.js reference (node-admin-server.js); anything else ours. */
const SERVER_KIND = process.env.ADMIN_UI_SERVER === 'node' ? 'node' : 'rust';

/** The bcryptjs that @socket.io/admin-ui itself uses to check passwords. */
const bcrypt = require(require.resolve('bcryptjs', { paths: [ADMIN_UI_DIR] }));

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.map': 'application/json',
};

/**
 * Serves `ui/dist` on 127.0.0.1 with an ephemeral port: another origin than
 * the Socket.IO server's, as when the UI is hosted elsewhere.
 * @returns {Promise<{url: string, close: () => Promise<void>}>}
 */
async function startUiServer() {
  if (!fs.existsSync(path.join(UI_DIST, 'index.html'))) {
    throw new Error(`${UI_DIST}/index.html is missing: run \`npm ci\` in conformance/`);
  }
  const server = http.createServer((req, res) => {
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.join(UI_DIST, path.normalize(rel));
    if (!file.startsWith(UI_DIST + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      const type = CONTENT_TYPES[path.extname(file)] || 'application/octet-stream';
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  server.keepAliveTimeout = 1000;
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Spawns the Node.js reference server; same result shape as support/server.js. */
function startNodeServer(args) {
  const child = spawn(process.execPath, [NODE_SERVER, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let gone = false;
  exited.then(() => { gone = true; });
  const stop = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop().finally(() => reject(new Error(`node reference server did not start; stderr:\n${stderr}`)));
    }, WAIT);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node reference server exited (${code}); stderr:\n${stderr}`));
    });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^listening on 127\.0\.0\.1:(\d+)$/.exec(line.trim());
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({ port, url: `http://127.0.0.1:${port}`, stop, child });
    });
  });
}

/**
 * Starts the server under test with `--admin` plus `args` (e.g.
 * ['--admin-user', 'admin', '--admin-password-hash', hash]).
 */
function startAdminServer(args = []) {
  const all = ['--admin', ...args];
  return SERVER_KIND === 'node' ? startNodeServer(all) : startServer(all);
}

function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    return Promise.reject(new Error(
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) or set CHROMIUM`));
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Opens the UI in a fresh context (empty localStorage, so the connection modal
 * shows). The page's only other origin is the Socket.IO server: requests
 * elsewhere (the web fonts and icon font index.html links from CDNs) are
 * aborted at once, as this machine has no internet.
 */
async function openUi(browser, uiUrl, serverUrl) {
  // lg breakpoint: the app bar shows the server URL and the connection status.
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route(
    (u) => u.origin !== uiUrl && u.origin !== serverUrl,
    (route) => route.abort(),
  );
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(uiUrl + '/');
  return page;
}

/**
 * Turns a Vuetify switch on by clicking its label until its input is checked
 * (a click during the modal's expand transition can be lost).
 */
async function switchOn(scope, label) {
  const input = scope.getByLabel(label);
  await until(`switch "${label}" on`, async () => {
    if (!(await input.isChecked())) {
      await scope.locator('label', { hasText: label }).click();
    }
    return input.isChecked();
  }, (checked) => checked === true);
}

/**
 * Fills the connection modal and submits it; `wsOnly` and `parser` ('msgpack')
 * are set through its "Advanced options".
 */
async function submitConnection(page, serverUrl, { username = '', password = '', wsOnly, parser } = {}) {
  const dialog = page.locator('.v-dialog--active');
  await dialog.getByLabel('Server URL').fill(serverUrl);
  await dialog.getByLabel('Username').fill(username);
  await dialog.getByLabel('Password').fill(password);
  if (wsOnly || parser) {
    await switchOn(dialog, 'Advanced options');
    if (wsOnly) await switchOn(dialog, 'WebSocket only?');
    if (parser === 'msgpack') {
      await dialog.locator('.v-select').filter({ hasText: 'Parser' }).locator('.v-input__slot').click();
      await page.locator('.v-menu__content.menuable__content__active .v-list-item',
        { hasText: 'MessagePack parser' }).click();
    }
  }
  await dialog.locator('button[type=submit]').click();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `read()` until `ok(value)`; fails with what the UI last showed.
 * @template T
 * @param {string} what the expectation, for the failure message
 * @param {() => Promise<T>} read
 * @param {(v: T) => boolean} ok
 * @returns {Promise<T>}
 */
async function until(what, read, ok, timeout = WAIT) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (e) {
      last = `(read failed: ${e.message})`;
    }
    if (Date.now() > deadline) {
      throw new assert.AssertionError({
        message: `${what}: after ${timeout} ms the UI shows ${JSON.stringify(last)}`,
      });
    }
    await sleep(150);
  }
}

/** The app bar's connection status chip ("connected" / "disconnected"). */
function connectionStatus(page) {
  return page.evaluate(() => {
    const chip = document.querySelector('header .d-lg-flex .v-chip');
    return chip ? chip.textContent.trim() : null;
  });
}

/** The error line of the open connection modal, or null. */
function connectionError(page) {
  return page.evaluate(() => {
    const e = document.querySelector('.v-dialog--active .red--text');
    return e ? e.textContent.trim() : null;
  });
}

/**
 * The tables of the visible card titled `title`: for each table, its body
 * rows as arrays of cell texts. null when no such card is shown.
 */
function readCard(page, title) {
  return page.evaluate((t) => {
    const card = [...document.querySelectorAll('main .v-card')].find((c) => {
      const h = c.querySelector('.v-card__title');
      return h && h.textContent.trim() === t && c.offsetParent !== null;
    });
    if (!card) return null;
    return [...card.querySelectorAll('table')].map((table) =>
      [...table.querySelectorAll('tbody tr')].map((tr) =>
        [...tr.cells].map((td) => td.innerText.trim())));
  }, title);
}

/** The body rows (cell texts) of the visible data table of the page. */
function readDataTable(page) {
  return page.evaluate(() => {
    const table = [...document.querySelectorAll('main .v-data-table')]
      .find((t) => t.offsetParent !== null);
    if (!table) return null;
    return [...table.querySelectorAll('tbody tr')]
      .filter((tr) => !tr.classList.contains('v-data-table__empty-wrapper')) // "No data available"
      .map((tr) => [...tr.cells].map((td) => td.innerText.trim()));
  });
}

/** The titles of the navigation drawer's entries. */
function navigationItems(page) {
  return page.evaluate(() => [...document.querySelectorAll('nav .v-list-item__title')]
    .map((e) => e.textContent.trim()));
}

/** The visible breadcrumb trail, e.g. "Sockets / Socket details". */
function breadcrumbs(page) {
  return page.evaluate(() => {
    const b = [...document.querySelectorAll('main .v-breadcrumbs')].find((e) => e.offsetParent !== null);
    return b ? [...b.querySelectorAll('li .v-breadcrumbs__item')].map((i) => i.textContent.trim()).join(' / ') : null;
  });
}

/** Clicks a navigation drawer entry (`sockets`, `rooms`, ...) and waits for its page. */
async function navigate(page, route, crumb) {
  await page.click(`nav a[href="#/${route}"]`);
  await until(`the ${route} page`, () => breadcrumbs(page), (b) => b === crumb);
}

/** Picks `name` in the page's namespace selector. */
async function selectNamespace(page, name) {
  await page.locator('main .v-select').filter({ hasText: 'Select namespace' })
    .locator('.v-input__slot').click();
  await page.locator('.v-menu__content.menuable__content__active .v-list-item')
    .filter({ has: page.locator('.v-list-item__title', { hasText: new RegExp(`^${name}$`) }) })
    .click();
}

module.exports = {
  SERVER_KIND,
  WAIT,
  bcrypt,
  startUiServer,
  startAdminServer,
  launchBrowser,
  openUi,
  submitConnection,
  until,
  connectionStatus,
  connectionError,
  readCard,
  readDataTable,
  breadcrumbs,
  navigationItems,
  navigate,
  selectNamespace,
};
