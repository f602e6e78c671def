'use strict';
// Two roles, used by underload.sh:
//  - as a node:test reporter (`--test-reporter=./underload-report.js`): one JSON line per
//    finished test: {file, name (the describe path joined with " > "), ok, todo, skip,
//    suite, at (ISO time), ms, error};
//  - as a program (`node underload-report.js DIR`): reads DIR/run-*.jsonl and prints the
//    summary: runs, tests per run, every test that failed at least once with its count and
//    its distinct failure messages. `--all` also lists the tests that never failed.

const fs = require('node:fs');
const path = require('node:path');

function errorText(err) {
  if (!err) return null;
  // node:test wraps the test's own error as `cause`; its message is the useful one.
  const inner = err.cause && typeof err.cause === 'object' && err.cause.message ? err.cause : err;
  return String(inner.message || inner).trim();
}

async function* reporter(source) {
  const stack = []; // names of the running tests by nesting level, per file
  for await (const ev of source) {
    const data = ev.data || {};
    if (ev.type === 'test:start') {
      stack.length = data.nesting;
      stack[data.nesting] = data.name;
      continue;
    }
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    stack.length = data.nesting;
    const names = [...stack.slice(0, data.nesting), data.name];
    const details = data.details || {};
    yield `${JSON.stringify({
      file: data.file ? path.basename(data.file) : null,
      name: names.join(' > '),
      ok: ev.type === 'test:pass',
      todo: Boolean(data.todo),
      skip: Boolean(data.skip),
      suite: details.type === 'suite',
      at: new Date().toISOString(),
      ms: details.duration_ms === undefined ? null : Math.round(details.duration_ms),
      error: ev.type === 'test:fail' ? errorText(details.error) : null,
    })}\n`;
  }
}

function summarize(dir, { all = false } = {}) {
  const runs = fs.readdirSync(dir).filter((f) => /^run-\d+\.jsonl$/.test(f))
    .sort((a, b) => Number(a.match(/\d+/)[0]) - Number(b.match(/\d+/)[0]));
  const tests = new Map(); // key -> {pass, fail, messages: Map(msg -> [run])}
  const perRun = [];
  for (const f of runs) {
    const run = f.match(/\d+/)[0];
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
    let total = 0;
    let failed = 0;
    for (const line of lines) {
      let r;
      try { r = JSON.parse(line); } catch { continue; }
      // A describe fails when one of its tests does: count leaves (and hooks reported on a
      // suite whose tests all passed, e.g. a failing `before`).
      if (r.suite && (r.ok || /subtests? failed/.test(r.error || ''))) continue;
      if (r.todo || r.skip) continue;
      total += 1;
      const key = `${r.file}: ${r.name}`;
      let t = tests.get(key);
      if (!t) { t = { pass: 0, fail: 0, messages: new Map() }; tests.set(key, t); }
      if (r.ok) { t.pass += 1; continue; }
      failed += 1;
      t.fail += 1;
      const msg = (r.error || '(no message)').split('\n').slice(0, 6).join(' | ');
      if (!t.messages.has(msg)) t.messages.set(msg, []);
      t.messages.get(msg).push(`run ${run} at ${r.at}`);
    }
    perRun.push({ run, total, failed });
  }
  const out = [];
  out.push(`runs: ${runs.length}`);
  for (const r of perRun) out.push(`  run ${r.run}: ${r.total} tests, ${r.failed} failed`);
  const clean = perRun.filter((r) => r.failed === 0 && r.total > 0).length;
  out.push(`clean runs: ${clean} of ${runs.length}; distinct tests: ${tests.size}`);
  const failing = [...tests].filter(([, t]) => t.fail > 0).sort((a, b) => b[1].fail - a[1].fail);
  out.push(failing.length ? 'failures (test: failed / passed):' : 'no test failed');
  for (const [key, t] of failing) {
    out.push(`  ${key}: ${t.fail} failed / ${t.pass} passed`);
    for (const [msg, where] of t.messages) out.push(`      ${msg}  [${where.join(', ')}]`);
  }
  if (all) {
    out.push('passed in every run:');
    for (const [key, t] of tests) if (t.fail === 0) out.push(`  ${key}: ${t.pass}`);
  }
  return out.join('\n');
}

module.exports = reporter;

if (require.main === module) {
  const args = process.argv.slice(2);
  const dir = args.find((a) => !a.startsWith('--'));
  if (!dir) {
    process.stderr.write('usage: node underload-report.js DIR [--all]\n');
    process.exit(2);
  }
  process.stdout.write(`${summarize(dir, { all: args.includes('--all') })}\n`);
}
