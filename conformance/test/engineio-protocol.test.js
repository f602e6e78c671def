'use strict';
// The 24 raw-protocol cases of the official Engine.IO test suite (shared/PROTOCOL.md
// §3.1), driven with fetch() and ws against a server started with pingInterval 300,
// pingTimeout 200, maxPayload 1000000. Where the official suite is loose (cases 6
// and 7 never await the close) these tests are a little stricter; where a case is
// racy by nature (concurrent requests), the assertions accept both orders.

const { describe, test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { startServer } = require('./support/server');
const {
  RS, sleep, closeClients, eioUrl, request, rawPollingHandshake, poll, post, rawWs,
  rawWsHandshake, wsClosed, pollUrl,
} = require('./support/helpers');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;

// Two more servers, for robustness on a loaded machine (a raw client here is a Node
// process that may not run for a few hundred ms):
// - `relaxed`, pingTimeout 2000: the ping/pong cases (16, 18) check that pings come every
//   pingInterval and that pongs keep the session; at 200 ms each pong must also be back
//   within 200 ms of its ping, which a starved client misses (the reference would close
//   too). The timeout cases (17, 19) stay on `server`.
// - `quiet`, pingInterval 60000: cases 12 and 20 are about overlapping GETs and the close
//   packet; a ping due 300 ms after the open could answer the pending GET first.
let server;
let relaxed;
let quiet;
before(async () => {
  const common = [
    '--ping-interval', String(PING_INTERVAL),
    '--ping-timeout', String(PING_TIMEOUT),
    '--max-payload', String(MAX_PAYLOAD),
    '--connect-timeout', '1000',
  ];
  [server, relaxed, quiet] = await Promise.all([
    startServer(common),
    startServer([...common, '--ping-timeout', '2000']),
    startServer([...common, '--ping-interval', '60000', '--ping-timeout', '60000']),
  ]);
});
after(async () => {
  closeClients();
  await Promise.all([server.stop(), relaxed.stop(), quiet.stop()]);
});
afterEach(() => closeClients());

const wsUrl = (query) => `${server.wsUrl}/engine.io/?${query}`;

function assertOpenPayload(value, upgrades) {
  assert.deepEqual(Object.keys(value).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
  assert.equal(typeof value.sid, 'string');
  assert.ok(value.sid.length > 0);
  assert.deepEqual(value.upgrades, upgrades);
  assert.equal(value.pingInterval, PING_INTERVAL);
  assert.equal(value.pingTimeout, PING_TIMEOUT);
  assert.equal(value.maxPayload, MAX_PAYLOAD);
}

function assertError(res, code, message) {
  assert.equal(res.status, 400, `status ${res.status}, body ${res.body}`);
  assert.deepEqual(JSON.parse(res.body), { code, message });
}

/**
 * Payload with the server's pings removed: on a loaded machine a ping (sent every
 * 300 ms) may share a GET response with the packet under test.
 */
function withoutPings(body) {
  return body.split(RS).filter((p) => p !== '2').join(RS);
}

/** Next WebSocket frame that is not a ping. */
async function nextNonPing(ws) {
  for (;;) {
    const frame = await ws.received.next();
    if (frame !== '2') return frame;
  }
}

/** A WebSocket that must be refused / closed without ever carrying an open packet. */
async function assertWsRejected(url) {
  const ws = rawWs(url);
  await wsClosed(ws);
  if (ws.refusedStatus !== undefined) assert.equal(ws.refusedStatus, 400);
  const opens = ws.received.items.filter((f) => typeof f === 'string' && f.startsWith('0'));
  assert.deepEqual(opens, [], 'the server opened a session');
}

describe('handshake', () => {
  describe('HTTP long-polling', () => {
    test('1. successfully opens a session', async () => {
      const res = await request(eioUrl(server, 'EIO=4&transport=polling'));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') || '', /^text\/plain/);
      assert.ok(res.body.startsWith('0'), res.body);
      assertOpenPayload(JSON.parse(res.body.slice(1)), ['websocket']);
    });

    test("2. fails with an invalid 'EIO' query parameter (missing, abc, 3)", async () => {
      assertError(await request(eioUrl(server, 'transport=polling')), 5, 'Unsupported protocol version');
      assertError(await request(eioUrl(server, 'EIO=abc&transport=polling')), 5, 'Unsupported protocol version');
      assertError(await request(eioUrl(server, 'EIO=3&transport=polling')), 5, 'Unsupported protocol version');
    });

    test("3. fails with an invalid 'transport' query parameter (missing, abc)", async () => {
      assertError(await request(eioUrl(server, 'EIO=4')), 0, 'Transport unknown');
      assertError(await request(eioUrl(server, 'EIO=4&transport=abc')), 0, 'Transport unknown');
    });

    test('4. fails with an invalid request method (POST, PUT)', async () => {
      assertError(await request(eioUrl(server, 'EIO=4&transport=polling'), { method: 'POST', body: '' }), 2, 'Bad handshake method');
      assertError(await request(eioUrl(server, 'EIO=4&transport=polling'), { method: 'PUT', body: '' }), 2, 'Bad handshake method');
    });
  });

  describe('WebSocket', () => {
    test('5. successfully opens a session', async () => {
      const { ws, handshake } = await rawWsHandshake(server);
      assertOpenPayload(handshake, []);
      ws.close();
    });

    test("6. fails with an invalid 'EIO' query parameter (missing, abc)", async () => {
      await Promise.all([
        assertWsRejected(wsUrl('transport=websocket')),
        assertWsRejected(wsUrl('EIO=abc&transport=websocket')),
      ]);
    });

    test("7. fails with an invalid 'transport' query parameter (missing, abc)", async () => {
      await Promise.all([
        assertWsRejected(wsUrl('EIO=4')),
        assertWsRejected(wsUrl('EIO=4&transport=abc')),
      ]);
    });
  });
});

describe('message', () => {
  describe('HTTP long-polling', () => {
    test('8. sends and receives a payload containing one plain text packet', async () => {
      const { sid } = await rawPollingHandshake(server);
      const push = await post(server, sid, '4hello');
      assert.equal(push.status, 200);
      assert.equal(push.body, 'ok');
      const res = await poll(server, sid);
      assert.equal(res.status, 200);
      assert.equal(withoutPings(res.body), '4hello');
    });

    test('9. sends and receives a payload containing several plain text packets', async () => {
      const { sid } = await rawPollingHandshake(server);
      const payload = `4test1${RS}4test2${RS}4test3`;
      const push = await post(server, sid, payload);
      assert.equal(push.status, 200);
      assert.equal(push.body, 'ok');
      const res = await poll(server, sid);
      assert.equal(res.status, 200);
      assert.equal(withoutPings(res.body), payload);
    });

    test('10. sends and receives a payload containing plain text and binary packets', async () => {
      const { sid } = await rawPollingHandshake(server);
      const payload = `4hello${RS}bAQIDBA==`;
      const push = await post(server, sid, payload);
      assert.equal(push.status, 200);
      assert.equal(push.body, 'ok');
      const res = await poll(server, sid);
      assert.equal(res.status, 200);
      assert.equal(withoutPings(res.body), payload);
    });

    test('11. closes the session upon invalid packet format', async () => {
      const { sid } = await rawPollingHandshake(server);
      // The official suite expects 400 but its try/catch also swallows that assertion:
      // Node answers 200 "ok" and closes the session. 400 or a dropped connection is fine too.
      const push = await post(server, sid, 'abc').catch(() => null);
      if (push) assert.ok([200, 400].includes(push.status), `status ${push.status}`);
      assertError(await poll(server, sid), 1, 'Session ID unknown');
    });

    test('12. closes the session upon duplicate poll requests', async () => {
      const { sid } = await rawPollingHandshake(quiet);
      const first = poll(quiet, sid);
      await sleep(5); // as in the official suite; the assertions accept either arrival order
      const second = request(pollUrl(quiet, sid, '&t=burst'));
      const responses = await Promise.all([first, second]);
      const closing = responses.filter((r) => r.status === 200);
      const refused = responses.filter((r) => r.status !== 200);
      assert.equal(closing.length, 1, `statuses ${responses.map((r) => r.status)}`);
      assert.equal(closing[0].body.split(RS).pop(), '1');
      assert.equal(withoutPings(closing[0].body), '1');
      assert.ok([400, 500].includes(refused[0].status), `status ${refused[0].status}`);
      const later = await poll(quiet, sid);
      assert.equal(later.status, 400);
    });
  });

  describe('WebSocket', () => {
    test('13. sends and receives a plain text packet', async () => {
      const { ws } = await rawWsHandshake(server, { autoPong: true });
      ws.send('4hello');
      assert.equal(await ws.received.next(), '4hello');
      ws.close();
    });

    test('14. sends and receives a binary packet', async () => {
      const { ws } = await rawWsHandshake(server, { autoPong: true });
      ws.send(Uint8Array.from([1, 2, 3, 4]));
      const frame = await ws.received.next();
      assert.ok(Buffer.isBuffer(frame), `expected a binary frame, got ${JSON.stringify(frame)}`);
      assert.deepEqual([...frame], [1, 2, 3, 4]);
      ws.close();
    });

    test('15. closes the session upon invalid packet format', async () => {
      const { ws } = await rawWsHandshake(server, { autoPong: true });
      ws.send('abc');
      await wsClosed(ws);
    });
  });
});

describe('heartbeat', () => {
  describe('HTTP long-polling', () => {
    test('16. sends ping/pong packets', async () => {
      const { sid } = await rawPollingHandshake(relaxed);
      for (let i = 0; i < 3; i++) {
        const res = await poll(relaxed, sid);
        assert.equal(res.status, 200);
        assert.equal(res.body, '2');
        const pong = await post(relaxed, sid, '3');
        assert.equal(pong.status, 200);
        assert.equal(pong.body, 'ok');
      }
    });

    test('17. closes the session upon ping timeout', async () => {
      const { sid } = await rawPollingHandshake(server);
      // The official suite sleeps exactly pingInterval + pingTimeout; keep a margin.
      await sleep(PING_INTERVAL + PING_TIMEOUT + 500);
      const res = await poll(server, sid);
      assertError(res, 1, 'Session ID unknown');
    });
  });

  describe('WebSocket', () => {
    test('18. sends ping/pong packets', async () => {
      const { ws } = await rawWsHandshake(relaxed);
      for (let i = 0; i < 3; i++) {
        assert.equal(await ws.received.next(), '2');
        ws.send('3');
      }
      ws.close();
    });

    test('19. closes the session upon ping timeout', async () => {
      const { ws } = await rawWsHandshake(server);
      await wsClosed(ws);
      assert.ok(ws.received.items.includes('2'), 'no ping was sent before the close');
    });
  });
});

describe('close', () => {
  describe('HTTP long-polling', () => {
    test('20. forcefully closes the session', async () => {
      const { sid } = await rawPollingHandshake(quiet);
      const pending = poll(quiet, sid);
      // Head start so the GET is the pending poll when the close arrives (nothing else can
      // end it: no ping for 60 s); the only fixed delay of this kind in the file.
      await sleep(300);
      const closeRes = await post(quiet, sid, '1');
      assert.equal(closeRes.status, 200);
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal(res.body, '6');
      assertError(await poll(quiet, sid), 1, 'Session ID unknown');
    });
  });

  describe('WebSocket', () => {
    test('21. forcefully closes the session', async () => {
      // Node ignores the "1" and only closes on ping timeout (PROTOCOL.md §1.9); both pass
      // here. engineio-close.test.js checks that the close is immediate.
      const { ws } = await rawWsHandshake(server);
      ws.send('1');
      await wsClosed(ws);
    });
  });
});

describe('upgrade', () => {
  const probeUrl = (sid) => wsUrl(`EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`);

  /** Polling session + probe WebSocket, upgraded; resolves { sid, ws }. */
  async function upgradedSession({ checkNoop = false } = {}) {
    const { sid } = await rawPollingHandshake(server);
    const ws = rawWs(probeUrl(sid), { autoPong: true });
    await ws.opened;
    ws.send('2probe');
    assert.equal(await ws.received.next(), '3probe');
    if (checkNoop) {
      // The pending/next GET is ended with a noop. A ping due before it (every 300 ms) may
      // come first, in the same payload or alone in an earlier one on a slow machine (as
      // with the reference, which flushes its buffer to the waiting GET): answer it and
      // poll again. Nothing but pings may come before the noop.
      for (let polls = 1; ; polls++) {
        const res = await poll(server, sid);
        assert.equal(res.status, 200);
        const packets = res.body.split(RS);
        assert.equal(withoutPings(res.body), packets.includes('6') ? '6' : '', JSON.stringify(res.body));
        if (packets.includes('2')) await post(server, sid, '3');
        if (packets.includes('6')) {
          assert.equal(packets.pop(), '6', JSON.stringify(res.body));
          break;
        }
        assert.ok(polls < 10, `no noop in ${polls} polls`);
      }
    }
    ws.send('5');
    return { sid, ws };
  }

  test('22. successfully upgrades from HTTP long-polling to WebSocket', async () => {
    const { ws } = await upgradedSession({ checkNoop: true });
    ws.send('4hello');
    assert.equal(await nextNonPing(ws), '4hello');
  });

  test('23. ignores HTTP requests with same sid after upgrade', async () => {
    const { sid, ws } = await upgradedSession();
    ws.send('4upgraded');
    assert.equal(await nextNonPing(ws), '4upgraded'); // the upgrade is done
    const res = await poll(server, sid);
    assertError(res, 3, 'Bad request');
    ws.send('4hello');
    assert.equal(await nextNonPing(ws), '4hello');
  });

  test('24. ignores WebSocket connection with same sid after upgrade', async () => {
    const { sid, ws } = await upgradedSession();
    ws.send('4upgraded');
    assert.equal(await nextNonPing(ws), '4upgraded'); // the upgrade is done
    const ws2 = rawWs(probeUrl(sid));
    await wsClosed(ws2);
    ws.send('4hello');
    assert.equal(await nextNonPing(ws), '4hello');
  });
});
