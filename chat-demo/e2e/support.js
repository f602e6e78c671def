// Helpers for the browser tests: start/stop the chat-demo binary, launch
// Debian's chromium through playwright-core, and drive and read the page
// through its data-testid contract only (see chat-demo/README.md), so the
// contract cannot drift from what the test checks.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN =
  process.env.CHAT_DEMO_BIN ||
  path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'chat-demo');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 20000;

/** Starts the server (port 0 = a free one); resolves once it printed its URL. */
function startServer(port = 0) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`${BIN} is missing: run \`cargo build -p chat-demo\` first`);
  }
  const proc = spawn(BIN, ['--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
    if (process.env.E2E_VERBOSE) process.stderr.write(d);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in time; stderr:\n${stderr}`));
    }, WAIT);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /chat-demo listening on (http:\/\/[^\s]+:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1], port: Number(m[2]) });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening; stderr:\n${stderr}`));
    });
  });
}

/** Kills the server and waits until it is gone. */
function stopServer(server, signal = 'SIGKILL') {
  if (!server || server.proc.exitCode !== null || server.proc.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    server.proc.once('exit', () => resolve());
    server.proc.kill(signal);
  });
}

function launchBrowser() {
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

/** The selector of a `data-testid` of the page's automation contract (README.md). */
function tid(id) {
  return `[data-testid="${id}"]`;
}

/** Opens the page in a fresh context (own sessionStorage); `query` e.g. `?transport=polling`. */
async function openPage(browser, baseUrl, { query = '', initScript } = {}) {
  const context = await browser.newContext();
  if (initScript) await context.addInitScript(initScript.fn, initScript.arg);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(baseUrl + '/' + query);
  return page;
}

async function login(page, nick) {
  await page.fill(tid('nick-input'), nick);
  await page.click(tid('nick-submit'));
}

/** Logs in and waits until connected and in #general. */
async function join(browser, baseUrl, nick, opts) {
  const page = await openPage(browser, baseUrl, opts);
  await login(page, nick);
  await waitConnected(page);
  await waitActiveRoom(page, '#general');
  await waitUser(page, nick);
  return page;
}

/** Waits until the text of `connection-state` is exactly `state`. */
function waitStatus(page, state) {
  return page.waitForFunction(
    (s) => document.querySelector('[data-testid="connection-state"]').textContent === s,
    state,
    { timeout: WAIT },
  );
}

function waitConnected(page) {
  return waitStatus(page, 'connected');
}

function connectionState(page) {
  return page.textContent(tid('connection-state'));
}

/** Waits until `room` is the room shown (and the message input is usable). */
function waitActiveRoom(page, room) {
  return page.waitForFunction(
    (r) => {
      const li = [...document.querySelectorAll('[data-testid="room-list"] [data-testid="room"]')]
        .find((e) => e.dataset.room === r);
      return !!li && li.dataset.active === 'true' &&
        !document.querySelector('[data-testid="message-input"]').disabled;
    },
    room,
    { timeout: WAIT },
  );
}

/** Clicks `room` in the room list. */
function clickRoom(page, room) {
  return page.click(`${tid('room-list')} ${tid('room')}[data-room="${room}"]`);
}

/** Creates (or joins) `room` through the create form. */
async function createRoom(page, room) {
  await page.fill(tid('room-create-input'), room);
  await page.click(tid('room-create-submit'));
}

/** The `data-count` of each room of the list: {name: count}. */
function roomCounts(page) {
  return page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('[data-testid="room-list"] [data-testid="room"]')]
      .map((li) => [li.dataset.room, li.dataset.count]),
  ));
}

/** The nicknames in `users`, in order. */
function users(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="users"] [data-testid="user"]')]
      .map((li) => li.textContent));
}

/** Waits until `nick` is (or, with `present` false, is not) in `users`. */
function waitUser(page, nick, present = true) {
  return page.waitForFunction(
    ({ n, present }) =>
      [...document.querySelectorAll('[data-testid="users"] [data-testid="user"]')]
        .some((li) => li.textContent === n) === present,
    { n: nick, present },
    { timeout: WAIT },
  );
}

/** Sends a line through `message-input` and `message-send`. */
async function send(page, text) {
  await page.fill(tid('message-input'), text);
  await page.click(tid('message-send'));
}

/**
 * The messages of `messages` whose text is exactly `text`, as
 * {author, room, delivered, kind, to, status}.
 */
function messages(page, text) {
  return page.evaluate(
    (text) => [...document.querySelectorAll('[data-testid="messages"] [data-testid="message"]')]
      .filter((li) => li.querySelector('[data-testid="message-text"]').textContent === text)
      .map((li) => ({
        author: li.dataset.author,
        room: li.dataset.room,
        delivered: li.dataset.delivered,
        kind: li.dataset.kind,
        to: li.dataset.to,
        status: li.dataset.status,
      })),
    text,
  );
}

/**
 * Waits for a message whose text is exactly `text`; `opts.author`, `opts.room`,
 * `opts.kind` (`message` or `dm`), `opts.delivered` (true: `data-delivered="true"`).
 */
function waitMessage(page, text, opts = {}) {
  return page.waitForFunction(
    ({ text, author, room, kind, delivered }) =>
      [...document.querySelectorAll('[data-testid="messages"] [data-testid="message"]')].some((li) => {
        const t = li.querySelector('[data-testid="message-text"]');
        if (!t || t.textContent !== text) return false;
        if (author !== undefined && li.dataset.author !== author) return false;
        if (room !== undefined && li.dataset.room !== room) return false;
        if (kind !== undefined && li.dataset.kind !== kind) return false;
        if (delivered !== undefined && (li.dataset.delivered === 'true') !== delivered) return false;
        return true;
      }),
    { text, ...opts },
    { timeout: WAIT },
  );
}

/** Waits until `error` is visible and its text matches `pattern`. */
function waitError(page, pattern) {
  return page.waitForFunction(
    (source) => {
      const e = document.querySelector('[data-testid="error"]');
      return e.checkVisibility() && new RegExp(source).test(e.innerText);
    },
    pattern.source,
    { timeout: WAIT },
  );
}

/** Waits until the text of `typing` is exactly `text`. */
function waitTyping(page, text) {
  return page.waitForFunction(
    (t) => document.querySelector('[data-testid="typing"]').textContent === t,
    text,
    { timeout: WAIT },
  );
}

/**
 * Types `text` into `typist`'s `message-input`, then keeps typing (a key and
 * Backspace: the text stays) until every page of `watchers` shows `shown` in
 * `typing`. A person who keeps typing is shown as typing: the page repeats its
 * notice every 1.5 s while there is input, because typing notices are volatile
 * (the server drops one for a polling client that has no GET pending just then).
 */
async function typeUntilShown(typist, text, watchers, shown) {
  const input = tid('message-input');
  await typist.type(input, text);
  for (let round = 0; ; round++) {
    const seen = await Promise.all(watchers.map((w) =>
      w.waitForFunction(
        (t) => document.querySelector('[data-testid="typing"]').textContent === t,
        shown,
        { timeout: 2500 },
      ).then(() => true, () => false)));
    if (seen.every(Boolean)) return;
    if (round >= 8) throw new Error(`typing never showed ${JSON.stringify(shown)} on every page`);
    await typist.press(input, 'x');
    await typist.press(input, 'Backspace');
  }
}

/** Waits until the page's transport (`transport`) is `name`. */
function waitTransport(page, name) {
  return page.waitForFunction(
    (n) => document.querySelector('[data-testid="transport"]').textContent === n,
    name,
    { timeout: WAIT },
  );
}

/** Everything the page shows, as text. */
function pageText(page) {
  return page.evaluate(() => document.body.innerText);
}

module.exports = {
  WAIT,
  ROOT,
  tid,
  startServer,
  stopServer,
  launchBrowser,
  openPage,
  login,
  join,
  waitStatus,
  waitConnected,
  connectionState,
  waitActiveRoom,
  clickRoom,
  createRoom,
  roomCounts,
  users,
  waitUser,
  send,
  messages,
  waitMessage,
  waitError,
  waitTyping,
  typeUntilShown,
  waitTransport,
  pageText,
};
