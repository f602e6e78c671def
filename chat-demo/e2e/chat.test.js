// End-to-end: real browsers (Debian chromium via playwright-core) on the
// chat-demo page, against the real server binary. The steps share one
// server and one set of pages, so they run in order.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const s = require('./support');

describe('chat-demo in the browser', () => {
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
      for (const [name, page] of Object.entries(pages)) {
        if (page) await page.screenshot({ path: `${dir}/${name}.png` }).catch(() => {});
      }
    }
    if (browser) await browser.close();
    await s.stopServer(server, 'SIGTERM');
  });

  it('two users in #general exchange messages, each marked delivered', async () => {
    alice = await s.join(browser, server.url, 'alice');
    bob = await s.join(browser, server.url, 'bob');
    await s.waitUser(alice, 'bob');

    await s.send(alice, 'hello from alice');
    await s.waitMessage(bob, 'hello from alice', { from: 'alice' });
    await s.waitMessage(alice, 'hello from alice', { from: 'alice', delivered: true });

    await s.send(bob, 'hi alice, bob here');
    await s.waitMessage(alice, 'hi alice, bob here', { from: 'bob' });
    await s.waitMessage(bob, 'hi alice, bob here', { from: 'bob', delivered: true });

    // Join notice and live room counts.
    await alice.waitForFunction(() =>
      [...document.querySelectorAll('#messages li[data-kind="notice"]')]
        .some((li) => li.textContent.includes('bob joined')));
    await alice.waitForFunction(() =>
      document.querySelector('#rooms li[data-room="#general"] .count').textContent === '2');
  });

  it('a user in another room does not see #general messages', async () => {
    carol = await s.join(browser, server.url, 'carol');
    await carol.fill('#new-room', 'random');
    await carol.click('#create-button');
    await s.waitActiveRoom(carol, '#random');
    // Leave #general: switch to it, then leave.
    await carol.click('#rooms li[data-room="#general"] button');
    await s.waitActiveRoom(carol, '#general');
    await carol.click('#leave');
    await s.waitActiveRoom(carol, '#random');
    // Everyone sees the room list change live.
    await alice.waitForFunction(() => {
      const count = (r) => document.querySelector(`#rooms li[data-room="${r}"] .count`)?.textContent;
      return count('#general') === '2' && count('#random') === '1';
    });

    await s.send(alice, 'only for general');
    await s.waitMessage(bob, 'only for general', { from: 'alice' });
    await s.waitMessage(alice, 'only for general', { delivered: true });
    await s.send(carol, 'random chatter');
    await s.waitMessage(carol, 'random chatter', { delivered: true });

    assert.ok(!(await s.pageText(carol)).includes('only for general'));
    assert.ok(!(await s.pageText(alice)).includes('random chatter'));
    assert.ok(!(await s.pageText(bob)).includes('random chatter'));
  });

  it('a nickname already online is refused with a visible message', async () => {
    const page = await s.openPage(browser, server.url);
    await s.login(page, 'Alice');
    await s.waitError(page, '#login-error', /Nickname Alice is already taken|Nickname alice is already taken/);
    assert.equal(await page.isVisible('#chat'), false);
    assert.equal(await page.getAttribute('#status', 'data-state'), 'disconnected');
    // An invalid one too.
    await s.login(page, 'x'.repeat(33));
    await s.waitError(page, '#login-error', /1 to 32 characters/);
    await page.context().close();
  });

  it('/msg reaches only its target and is echoed to the sender', async () => {
    await s.send(alice, '/msg carol psst-secret');
    await s.waitMessage(carol, 'psst-secret', { kind: 'dm', from: 'alice' });
    await s.waitMessage(alice, 'psst-secret', { kind: 'dm', delivered: true });
    assert.ok(!(await s.pageText(bob)).includes('psst-secret'));

    await s.send(alice, '/msg nobody-here hello');
    await s.waitError(alice, '#error', /Nobody named nobody-here is online/);
  });

  it('HTML in a message is shown as text', async () => {
    const html = '<img src=x onerror="window.__pwned=1"><b id="injected">bold</b>';
    await s.send(bob, html);
    await s.waitMessage(alice, html, { from: 'bob' });
    await s.waitMessage(bob, html, { delivered: true });
    for (const page of [alice, bob]) {
      assert.equal(await page.evaluate(() => document.getElementById('injected')), null);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
    }
  });

  it('bad input is refused with a visible error', async () => {
    await s.send(bob, 'y'.repeat(2001));
    await s.waitError(bob, '#error', /too long/);
    await s.send(bob, '   ');
    await s.waitError(bob, '#error', /Message is empty/);
    await s.send(bob, '/shout hi');
    await s.waitError(bob, '#error', /Unknown command \/shout/);
    // Unknown room.
    await bob.fill('#new-room', '#Not Valid!');
    await bob.click('#create-button');
    await s.waitError(bob, '#error', /Room names are #/);
    // Flooding: 15 at once against a bucket of 10.
    await bob.evaluate(() => {
      const input = document.getElementById('text');
      const form = document.getElementById('send-form');
      for (let i = 0; i < 15; i++) {
        input.value = `flood ${i}`;
        form.requestSubmit();
      }
    });
    await s.waitError(bob, '#error', /slow down/);
    await bob.waitForFunction(() =>
      [...document.querySelectorAll('#messages .status.failed')]
        .some((e) => e.textContent.includes('slow down')));
    assert.ok(!(await s.pageText(alice)).includes('y'.repeat(2001)));
  });

  it('works over long-polling only', async () => {
    dave = await s.join(browser, server.url, 'dave', { query: '?transport=polling' });
    assert.equal(await dave.textContent('#transport'), 'polling');
    await s.send(dave, 'dave polls');
    await s.waitMessage(alice, 'dave polls', { from: 'dave' });
    await s.waitMessage(dave, 'dave polls', { delivered: true });
    await s.send(alice, 'hello dave');
    await s.waitMessage(dave, 'hello dave', { from: 'alice' });
    // History on join: dave got the earlier #general messages.
    await s.waitMessage(dave, 'hello from alice', { from: 'alice' });
    // The others upgraded to WebSocket.
    await alice.waitForFunction(() => document.getElementById('transport').textContent === 'websocket');
    assert.equal(await dave.textContent('#transport'), 'polling');
  });

  it('shows who is typing, in their room only', async () => {
    await bob.waitForFunction(() => document.getElementById('transport').textContent === 'websocket');
    await bob.type('#text', 'typing something');
    await alice.waitForFunction(() => document.getElementById('typing').textContent === 'bob is typing…');
    await s.waitMessage(dave, 'hello dave'); // dave sees #general too
    assert.equal(await carol.textContent('#typing'), '');
    await bob.click('#send');
    await alice.waitForFunction(() => document.getElementById('typing').textContent === '');
    await s.waitMessage(alice, 'typing something', { from: 'bob' });
  });

  it('a reconnect the server has not noticed yet takes its nickname back', async () => {
    // Same tab key, new connection, while the old one is still online: what a
    // tab whose network silently dropped sees when it comes back.
    const first = await s.join(browser, server.url, 'erin');
    const key = await first.evaluate(() => sessionStorage.getItem('chat-key'));
    const context = await browser.newContext();
    await context.addInitScript((k) => sessionStorage.setItem('chat-key', k), key);
    const second = await context.newPage();
    second.setDefaultTimeout(s.WAIT);
    await second.goto(server.url + '/');
    await s.login(second, 'erin');
    await s.waitConnected(second);
    await s.waitActiveRoom(second, '#general');
    await s.waitStatus(first, 'disconnected');
    await s.send(second, 'erin again');
    await s.waitMessage(alice, 'erin again', { from: 'erin' });
    const erins = await alice.evaluate(() =>
      [...document.querySelectorAll('#users li')].filter((li) => li.textContent === 'erin').length);
    assert.equal(erins, 1);
    // A stranger still cannot take the name.
    const stranger = await s.openPage(browser, server.url);
    await s.login(stranger, 'erin');
    await s.waitError(stranger, '#login-error', /already taken/);
    await Promise.all([first, second, stranger].map((p) => p.context().close()));
    await alice.waitForFunction(() =>
      ![...document.querySelectorAll('#users li')].some((li) => li.textContent === 'erin'));
  });

  for (const signal of ['SIGTERM', 'SIGKILL']) {
    it(`reconnects and rejoins its rooms after a server restart (${signal})`, async () => {
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
      await s.waitMessage(bob, text, { from: 'alice' });
      await s.waitMessage(dave, text, { from: 'alice' });
      await s.waitMessage(alice, text, { delivered: true });
      await s.send(carol, `random is back (${signal})`);
      await s.waitMessage(carol, `random is back (${signal})`, { delivered: true });
      assert.ok(!(await s.pageText(carol)).includes(text));
      assert.equal(await dave.textContent('#transport'), 'polling');
    });
  }

  it('no page threw', () => {
    for (const page of [alice, bob, carol, dave]) {
      assert.deepEqual(page ? page.errors : [], []);
    }
  });
});
