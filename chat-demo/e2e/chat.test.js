// End-to-end: real browsers (Debian chromium via playwright-core) on the
// chat-demo page, against the real server binary, through the page's
// data-testid contract only (README.md). The whole suite runs twice: once with
// the default transports (polling, upgraded to WebSocket) and once with every
// page on `?transport=polling`. Within a run the steps share one server and
// one set of pages, so they run in order.
//
// The first run writes a screenshot of alice's page after alice and bob
// chatted in #general: to e2e/target/screenshot.png (ignored by git), or to
// chat-demo/screenshot.png (the README's picture) with UPDATE_SCREENSHOT=1.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const s = require('./support');

const { tid } = s;

const SCREENSHOT = process.env.UPDATE_SCREENSHOT === '1'
  ? path.join(__dirname, '..', 'screenshot.png')
  : path.join(__dirname, 'target', 'screenshot.png');

const MODES = [
  // `other` is the query of the one page (dave) that uses the other mode.
  { name: 'WebSocket (default)', query: '', transport: 'websocket', other: '?transport=polling', screenshot: true },
  { name: '?transport=polling', query: '?transport=polling', transport: 'polling', other: '' },
];

for (const mode of MODES) {
  describe(`chat-demo in the browser, ${mode.name}`, () => {
    const opts = { query: mode.query };
    const otherTransport = mode.other ? 'polling' : 'websocket';
    let server;
    let browser;
    let alice;
    let bob;
    let carol;
    let dave;

    before(async () => {
      server = await s.startServer(0);
      browser = await s.launchBrowser();
    });

    after(async () => {
      // E2E_SCREENSHOTS=<dir> keeps a picture of each page for a look.
      const dir = process.env.E2E_SCREENSHOTS;
      if (dir) {
        const pages = { alice, bob, carol, dave };
        const tag = mode.transport;
        for (const [name, page] of Object.entries(pages)) {
          if (page) await page.screenshot({ path: `${dir}/${tag}-${name}.png` }).catch(() => {});
        }
      }
      if (browser) await browser.close();
      await s.stopServer(server, 'SIGTERM');
    });

    it('shows the contract before login: disconnected, nick form', async () => {
      const page = await s.openPage(browser, server.url, opts);
      assert.equal(await s.connectionState(page), 'disconnected');
      for (const id of ['nick-input', 'nick-submit']) {
        assert.ok(await page.isVisible(tid(id)), id);
      }
      assert.equal(await page.isVisible(tid('message-input')), false);
      assert.equal((await page.textContent(tid('error'))), '');
      await page.context().close();
    });

    it('two users in #general exchange messages, each marked delivered on its ack', async () => {
      alice = await s.join(browser, server.url, 'alice', opts);
      bob = await s.join(browser, server.url, 'bob', opts);
      await s.waitUser(alice, 'bob');
      assert.deepEqual(await s.users(bob), ['alice', 'bob']);
      assert.equal(await s.connectionState(alice), 'connected');
      for (const id of ['room-list', 'room-create-input', 'room-create-submit', 'message-input',
        'message-send', 'messages', 'users', 'typing', 'connection-state']) {
        assert.ok(await alice.isVisible(tid(id)), id);
      }

      await s.send(alice, 'hello from alice');
      await s.waitMessage(bob, 'hello from alice', { author: 'alice', room: '#general', kind: 'message', delivered: true });
      await s.waitMessage(alice, 'hello from alice', { author: 'alice', room: '#general', delivered: true });

      await s.send(bob, 'hi alice, bob here');
      await s.waitMessage(alice, 'hi alice, bob here', { author: 'bob', room: '#general', delivered: true });
      await s.waitMessage(bob, 'hi alice, bob here', { author: 'bob', delivered: true });

      await s.send(alice, 'the demo runs on the socketio crate');
      await s.waitMessage(bob, 'the demo runs on the socketio crate', { author: 'alice' });
      await s.waitMessage(alice, 'the demo runs on the socketio crate', { delivered: true });
      await s.send(bob, 'nice, and no page reloads');
      await s.waitMessage(alice, 'nice, and no page reloads', { author: 'bob' });
      await s.waitMessage(bob, 'nice, and no page reloads', { delivered: true });

      // Join notice (not a message) and live room counts.
      await alice.waitForFunction(() =>
        [...document.querySelectorAll('[data-testid="messages"] li[data-kind="notice"]')]
          .some((li) => li.textContent.includes('bob joined')));
      await alice.waitForFunction(() =>
        document.querySelector('[data-testid="room"][data-room="#general"]').dataset.count === '2');
      assert.equal(
        await alice.$$eval('[data-testid="messages"] [data-testid="message"]', (l) => l.length), 4);

      if (mode.screenshot) {
        await s.typeUntilShown(bob, 'typing', [alice], 'bob is typing…');
        fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
        await alice.setViewportSize({ width: 960, height: 540 });
        await alice.screenshot({ path: SCREENSHOT });
        await alice.setViewportSize({ width: 1280, height: 720 });
        await bob.fill(tid('message-input'), '');
        await s.waitTyping(alice, '');
      }
    });

    it('data-delivered is "true" only once the server acked', async () => {
      // The server is stopped (SIGSTOP): the page is still connected, the
      // message shows at once, but no ack can come until it continues.
      server.proc.kill('SIGSTOP');
      try {
        await s.send(alice, 'held back');
        await s.waitMessage(alice, 'held back', { author: 'alice', delivered: false });
        assert.deepEqual((await s.messages(alice, 'held back')).map((m) => m.delivered), ['false']);
      } finally {
        server.proc.kill('SIGCONT');
      }
      await s.waitMessage(alice, 'held back', { author: 'alice', delivered: true });
      await s.waitMessage(bob, 'held back', { author: 'alice', delivered: true });
    });

    it('a user in another room does not see #general messages', async () => {
      carol = await s.join(browser, server.url, 'carol', opts);
      await s.createRoom(carol, 'random');
      await s.waitActiveRoom(carol, '#random');
      // Leave #general: switch to it, then leave.
      await s.clickRoom(carol, '#general');
      await s.waitActiveRoom(carol, '#general');
      await carol.click(tid('room-leave'));
      await s.waitActiveRoom(carol, '#random');
      assert.deepEqual(await s.users(carol), ['carol']);
      // Everyone sees the room list change live.
      await alice.waitForFunction(() => {
        const count = (r) =>
          document.querySelector(`[data-testid="room"][data-room="${r}"]`)?.dataset.count;
        return count('#general') === '2' && count('#random') === '1';
      });
      assert.equal((await s.roomCounts(bob))['#random'], '1');

      await s.send(alice, 'only for general');
      await s.waitMessage(bob, 'only for general', { author: 'alice', room: '#general' });
      await s.waitMessage(alice, 'only for general', { delivered: true });
      await s.send(carol, 'random chatter');
      await s.waitMessage(carol, 'random chatter', { author: 'carol', room: '#random', delivered: true });

      assert.ok(!(await s.pageText(carol)).includes('only for general'));
      assert.ok(!(await s.pageText(alice)).includes('random chatter'));
      assert.ok(!(await s.pageText(bob)).includes('random chatter'));
    });

    it('a nickname already online is refused: error visible, disconnected', async () => {
      const page = await s.openPage(browser, server.url, opts);
      await s.login(page, 'Alice');
      // The message names the nickname as its holder spells it.
      await s.waitError(page, /^Nickname alice is already taken$/);
      assert.equal(await page.isVisible(tid('message-input')), false);
      assert.equal(await s.connectionState(page), 'disconnected');
      // An invalid one too; the error shows the last refusal.
      await s.login(page, 'x'.repeat(33));
      await s.waitError(page, /^Nickname must be 1 to 32 characters long$/);
      await page.context().close();
    });

    it('/msg reaches only its target and is echoed to the sender', async () => {
      await s.send(alice, '/msg carol psst-secret');
      await s.waitMessage(carol, 'psst-secret', { kind: 'dm', author: 'alice', room: '#random', delivered: true });
      await s.waitMessage(alice, 'psst-secret', { kind: 'dm', author: 'alice', delivered: true });
      assert.deepEqual((await s.messages(alice, 'psst-secret')).map((m) => m.to), ['carol']);
      assert.ok(!(await s.pageText(bob)).includes('psst-secret'));

      await s.send(alice, '/msg nobody-here hello');
      await s.waitError(alice, /^Nobody named nobody-here is online$/);
      await s.send(alice, 'errors clear on the next action');
      await s.waitMessage(alice, 'errors clear on the next action', { delivered: true });
      assert.equal(await alice.isVisible(tid('error')), false);
    });

    it('HTML in a message is shown as text', async () => {
      const html = '<img src=x onerror="window.__pwned=1"><b id="injected">bold</b>';
      await s.send(bob, html);
      await s.waitMessage(alice, html, { author: 'bob' });
      await s.waitMessage(bob, html, { delivered: true });
      for (const page of [alice, bob]) {
        assert.equal(await page.evaluate(() => document.getElementById('injected')), null);
        assert.equal(await page.evaluate(() => window.__pwned), undefined);
      }
    });

    it('bad input is refused with a visible error', async () => {
      await s.send(bob, 'y'.repeat(2001));
      await s.waitError(bob, /too long/);
      await s.send(bob, '   ');
      await s.waitError(bob, /^Message is empty$/);
      await s.send(bob, '/shout hi');
      await s.waitError(bob, /Unknown command \/shout/);
      // A bad room name.
      await s.createRoom(bob, '#Not Valid!');
      await s.waitError(bob, /^Room names are #/);
      // Flooding: 15 at once against a bucket of 10.
      await bob.evaluate(() => {
        const input = document.querySelector('[data-testid="message-input"]');
        const form = input.form;
        for (let i = 0; i < 15; i++) {
          input.value = `flood ${i}`;
          form.requestSubmit();
        }
      });
      await s.waitError(bob, /slow down/);
      await bob.waitForFunction(() => {
        const flood = [...document.querySelectorAll('[data-testid="message"]')]
          .filter((li) => li.textContent.includes('flood '));
        return flood.length === 15 && flood.every((li) => li.dataset.status !== 'pending');
      });
      const flood = [];
      for (let i = 0; i < 15; i++) flood.push(...(await s.messages(bob, `flood ${i}`)));
      const delivered = flood.filter((m) => m.delivered === 'true').length;
      assert.ok(delivered >= 1 && delivered < 15, `${delivered} of 15 delivered`);
      assert.ok(flood.filter((m) => m.delivered === 'false').every((m) => m.status === 'failed'));
      assert.ok(!(await s.pageText(alice)).includes('y'.repeat(2001)));
    });

    it(`a page on ${otherTransport} talks with the others`, async () => {
      dave = await s.join(browser, server.url, 'dave', { query: mode.other });
      await s.waitTransport(dave, otherTransport);
      await s.send(dave, 'dave is here');
      await s.waitMessage(alice, 'dave is here', { author: 'dave' });
      await s.waitMessage(dave, 'dave is here', { delivered: true });
      await s.send(alice, 'hello dave');
      await s.waitMessage(dave, 'hello dave', { author: 'alice', delivered: true });
      // History on join: dave got the earlier #general messages.
      await s.waitMessage(dave, 'hello from alice', { author: 'alice', delivered: true });
      // Each page is on its transport (polling-only pages never upgrade).
      await s.waitTransport(alice, mode.transport);
      await s.waitTransport(bob, mode.transport);
      assert.equal(await alice.textContent(tid('transport')), mode.transport);
      assert.equal(await dave.textContent(tid('transport')), otherTransport);
    });

    it('shows who is typing, in their room only', async () => {
      // dave is in #general too, on the other transport.
      await s.typeUntilShown(bob, 'typing something', [alice, dave], 'bob is typing…');
      assert.equal(await carol.textContent(tid('typing')), '');
      await bob.click(tid('message-send'));
      await s.waitTyping(alice, '');
      await s.waitMessage(alice, 'typing something', { author: 'bob' });
    });

    it('a reconnect the server has not noticed yet takes its nickname back', async () => {
      // Same tab key, new connection, while the old one is still online: what a
      // tab whose network silently dropped sees when it comes back.
      const first = await s.join(browser, server.url, 'erin', opts);
      const key = await first.evaluate(() => sessionStorage.getItem('chat-key'));
      const second = await s.openPage(browser, server.url, {
        query: mode.query,
        initScript: { fn: (k) => sessionStorage.setItem('chat-key', k), arg: key },
      });
      await s.login(second, 'erin');
      await s.waitConnected(second);
      await s.waitActiveRoom(second, '#general');
      await s.waitStatus(first, 'disconnected');
      await s.send(second, 'erin again');
      await s.waitMessage(alice, 'erin again', { author: 'erin' });
      assert.equal((await s.users(alice)).filter((n) => n === 'erin').length, 1);
      // A stranger still cannot take the name.
      const stranger = await s.openPage(browser, server.url, opts);
      await s.login(stranger, 'erin');
      await s.waitError(stranger, /already taken/);
      await Promise.all([first, second, stranger].map((p) => p.context().close()));
      // A closed WebSocket is noticed at once; a polling-only tab that is
      // closed is noticed by the heartbeat timeout (25 s + 20 s), too slow here.
      if (!mode.query) await s.waitUser(alice, 'erin', false);
    });

    for (const signal of ['SIGTERM', 'SIGKILL']) {
      it(`shows reconnecting, then reconnects and rejoins its rooms after a server restart (${signal})`, async () => {
        const { port } = server;
        const pages = [alice, bob, carol, dave];
        await s.stopServer(server, signal);
        await Promise.all(pages.map((p) => s.waitStatus(p, 'reconnecting')));
        server = await s.startServer(port);
        await Promise.all(pages.map((p) => s.waitConnected(p)));

        await Promise.all([alice, bob, dave].map((p) => s.waitActiveRoom(p, '#general')));
        await s.waitActiveRoom(carol, '#random');
        await s.waitUser(alice, 'bob');
        await s.waitUser(alice, 'dave');
        await s.waitUser(carol, 'carol');

        const text = `after the ${signal} restart`;
        await s.send(alice, text);
        await s.waitMessage(bob, text, { author: 'alice' });
        await s.waitMessage(dave, text, { author: 'alice' });
        await s.waitMessage(alice, text, { delivered: true });
        await s.send(carol, `random is back (${signal})`);
        await s.waitMessage(carol, `random is back (${signal})`, { delivered: true });
        assert.ok(!(await s.pageText(carol)).includes(text));
        await s.waitTransport(alice, mode.transport);
        await s.waitTransport(dave, otherTransport);
      });
    }

    it('no page threw', () => {
      for (const page of [alice, bob, carol, dave]) {
        assert.deepEqual(page ? page.errors : [], []);
      }
    });
  });
}
