// Helpers for the browser tests: start/stop the chat-demo binary, launch
// Debian's chromium through playwright-core, and wait on the page's DOM.
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

/** Opens the page in a fresh context (own sessionStorage) and picks `nick`. */
async function openPage(browser, baseUrl, { query = '' } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(baseUrl + '/' + query);
  return page;
}

async function login(page, nick) {
  await page.fill('#nick', nick);
  await page.click('#login-button');
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

function waitStatus(page, state) {
  return page.waitForSelector(`#status[data-state="${state}"]`, { timeout: WAIT });
}

function waitConnected(page) {
  return waitStatus(page, 'connected');
}

function waitActiveRoom(page, room) {
  return page.waitForFunction(
    (r) => document.getElementById('room-title').textContent === r &&
      !document.getElementById('text').disabled,
    room,
    { timeout: WAIT },
  );
}

/** Waits until `nick` is in the user list of the page's current room. */
function waitUser(page, nick) {
  return page.waitForFunction(
    (n) => [...document.querySelectorAll('#users li')].some((li) => li.textContent === n),
    nick,
    { timeout: WAIT },
  );
}

/** Sends a line through the form. */
async function send(page, text) {
  await page.fill('#text', text);
  await page.click('#send');
}

/** Waits for a message whose text is exactly `text`; `opts.from`, `opts.kind`, `opts.delivered`. */
function waitMessage(page, text, opts = {}) {
  return page.waitForFunction(
    ({ text, from, kind, delivered }) =>
      [...document.querySelectorAll('#messages li')].some((li) => {
        const t = li.querySelector('.text');
        if (!t || t.textContent !== text) return false;
        if (from !== undefined && li.dataset.from !== from) return false;
        if (kind !== undefined && li.dataset.kind !== kind) return false;
        if (delivered) {
          const s = li.querySelector('.status');
          return !!s && s.textContent === 'delivered';
        }
        return true;
      }),
    { text, ...opts },
    { timeout: WAIT },
  );
}

function waitError(page, selector, pattern) {
  return page.waitForFunction(
    ({ selector, source }) => new RegExp(source).test(document.querySelector(selector).textContent),
    { selector, source: pattern.source },
    { timeout: WAIT },
  );
}

/** Everything the page shows, as text. */
function pageText(page) {
  return page.evaluate(() => document.body.innerText);
}

module.exports = {
  WAIT,
  startServer,
  stopServer,
  launchBrowser,
  openPage,
  login,
  join,
  waitStatus,
  waitConnected,
  waitActiveRoom,
  waitUser,
  send,
  waitMessage,
  waitError,
  pageText,
};
