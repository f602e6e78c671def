'use strict';
// Starts the server under test (the Rust `conformance-server`, or any program with
// the same command line, see README.md) on an ephemeral port.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const DEFAULT_BINARY = path.join(REPO_ROOT, 'target', 'debug', 'conformance-server');
const START_TIMEOUT_MS = 20000;
const STOP_GRACE_MS = 5000;
const LISTENING_RE = /^listening on 127\.0\.0\.1:(\d+)\s*$/;

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/**
 * Extra flags for every server of a run, before each test's own (which win):
 * `CONFORMANCE_SERVER_ARGS='--per-message-deflate 0' npm test` runs the suites with
 * WebSocket compression on.
 */
const EXTRA_ARGS = (process.env.CONFORMANCE_SERVER_ARGS || '').split(/\s+/).filter(Boolean);

/**
 * Spawns the server with `--port 0` plus `args` and resolves once it printed
 * `listening on 127.0.0.1:PORT`.
 * @param {string[]} args e.g. ['--ping-interval', '300', '--ping-timeout', '200']
 * @returns {Promise<{port: number, url: string, wsUrl: string, stop: () => Promise<void>}>}
 */
function startServer(args = []) {
  const binary = process.env.CONFORMANCE_SERVER || DEFAULT_BINARY;
  if (!fs.existsSync(binary)) {
    return Promise.reject(new Error(
      `server binary not found at ${binary}: run \`cargo build -p conformance-server\` ` +
      'at the repository root, or set CONFORMANCE_SERVER'));
  }
  const verbose = Boolean(process.env.CONFORMANCE_VERBOSE);
  const child = spawn(binary, ['--port', '0', ...EXTRA_ARGS, ...args], {
    stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'],
  });
  running.add(child);

  let stderrTail = '';
  if (!verbose) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => { stderrTail = (stderrTail + chunk).slice(-4000); });
  }
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      running.delete(child);
      resolve({ code, signal });
    });
  });

  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, STOP_GRACE_MS);
    await exitPromise;
    clearTimeout(timer);
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (msg) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop().finally(() => reject(new Error(
        `${msg} (${binary} ${args.join(' ')})` + (stderrTail ? `\nstderr:\n${stderrTail}` : ''))));
    };
    const timer = setTimeout(
      () => fail(`server did not print "listening on 127.0.0.1:PORT" within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS);
    child.once('error', (err) => fail(`could not start server: ${err.message}`));
    exitPromise.then(({ code, signal }) => fail(`server exited early (code ${code}, signal ${signal})`));

    const lines = readline.createInterface({ input: child.stdout });
    const stdout = [];
    lines.on('line', (line) => {
      if (stdout.length < 10000) stdout.push(line);
      if (verbose) process.stderr.write(`[server stdout] ${line}\n`);
      const m = LISTENING_RE.exec(line);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        wsUrl: `ws://127.0.0.1:${port}`,
        stop,
        // For shutdown tests: signal it yourself, then await how it exited.
        child,
        exited: exitPromise,
        stdout,
        stderrTail: () => stderrTail,
      });
    });
  });
}

module.exports = { startServer, REPO_ROOT, DEFAULT_BINARY };
