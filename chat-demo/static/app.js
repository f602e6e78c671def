// The chat page. Talks to the server with the official socket.io-client
// (loaded from /socket.io/socket.io.js). Every piece of user data reaches the
// page through textContent, never as HTML.
//
// The data-testid attributes (here and in index.html) are a contract for
// browser automation, documented in chat-demo/README.md and used by the e2e
// test: keep them when changing the page.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const ACK_TIMEOUT_MS = 10000;
  const TYPING_IDLE_MS = 2000; // quiet time after which we say we stopped
  const TYPING_REPEAT_MS = 1500; // typing notices are volatile: repeat them
  const TYPING_SHOWN_MS = 4000; // how long a notice is shown without a repeat
  const DEFAULT_ROOM = '#general';
  const MAX_LOG = 500;

  const params = new URLSearchParams(location.search);
  const pollingOnly = params.get('transport') === 'polling';

  const state = {
    nick: null,
    socket: null,
    everConnected: false,
    epoch: null,
    joined: [DEFAULT_ROOM], // kept across reconnects, re-joined on each connect
    active: DEFAULT_ROOM,
    logs: new Map(), // room -> [entry]
    seen: new Map(), // room -> Set of "epoch:id"
    users: new Map(), // room -> [nick]
    unread: new Set(),
    rooms: [], // [{name, count}]
    typing: new Map(), // room -> Map(nick -> timer)
    typingSent: null, // room we told the server we are typing in
    typingSentAt: 0,
    typingTimer: null,
  };

  // A secret per browser tab: lets a reconnect take its own nickname back
  // before the server noticed that the old connection dropped.
  function tabKey() {
    let key = sessionStorage.getItem('chat-key');
    if (!key) {
      const bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      key = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      sessionStorage.setItem('chat-key', key);
    }
    return key;
  }

  // ----- small DOM helpers ---------------------------------------------------

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function showError(message) {
    $('error').textContent = message || '';
  }

  function setStatus(s) {
    const status = $('status');
    status.dataset.state = s;
    status.textContent = s;
    if (s !== 'connected') $('transport').textContent = '';
  }

  function showTransport() {
    const engine = state.socket && state.socket.io.engine;
    $('transport').textContent = engine && engine.transport ? engine.transport.name : '';
  }

  function timeOf(ts) {
    const d = ts ? new Date(ts) : new Date();
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  // ----- log entries -----------------------------------------------------------

  function log(room) {
    if (!state.logs.has(room)) state.logs.set(room, []);
    return state.logs.get(room);
  }

  function seen(room) {
    if (!state.seen.has(room)) state.seen.set(room, new Set());
    return state.seen.get(room);
  }

  function renderEntry(entry) {
    const li = el('li');
    li.dataset.kind = entry.kind;
    if (entry.mine) li.classList.add('mine');
    if (entry.kind === 'notice') {
      li.append(el('span', 'time', timeOf(entry.ts)), el('span', 'text', entry.text));
    } else {
      let from = entry.from;
      if (entry.kind === 'dm') {
        from = entry.mine ? `you → ${entry.to}` : `${entry.from} → you`;
        li.dataset.to = entry.to || '';
      }
      li.dataset.testid = 'message';
      li.dataset.author = entry.from || '';
      li.dataset.room = entry.room;
      li.dataset.from = entry.from || '';
      const text = el('span', 'text', entry.text);
      text.dataset.testid = 'message-text';
      li.append(el('span', 'time', timeOf(entry.ts)), el('span', 'from', from), text);
      if (entry.mine) {
        const status = el('span', 'status');
        li.append(status);
      }
    }
    entry.li = li;
    updateEntryStatus(entry);
    return li;
  }

  // data-delivered="true" once the server acked our own message; messages
  // of others come from the server, so they are delivered from the start.
  function updateEntryStatus(entry) {
    if (!entry.li || entry.kind === 'notice') return;
    const st = entry.mine ? entry.status : 'delivered';
    entry.li.dataset.delivered = String(st === 'delivered');
    entry.li.dataset.status = st;
    const status = entry.li.querySelector('.status');
    if (!status) return;
    status.classList.toggle('failed', entry.status === 'failed');
    status.textContent =
      entry.status === 'delivered' ? 'delivered'
        : entry.status === 'failed' ? `not sent: ${entry.error}`
          : 'sending…';
  }

  function addEntry(room, entry) {
    entry.room = room;
    const entries = log(room);
    entries.push(entry);
    if (entries.length > MAX_LOG) entries.splice(0, entries.length - MAX_LOG);
    if (room === state.active) {
      const list = $('messages');
      const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 30;
      list.append(renderEntry(entry));
      while (list.childElementCount > MAX_LOG) list.firstElementChild.remove();
      if (atBottom || entry.mine) list.scrollTop = list.scrollHeight;
    } else if (entry.kind !== 'notice') {
      state.unread.add(room);
      renderRooms();
    }
  }

  function addMessage(m, epoch) {
    const key = `${epoch}:${m.id}`;
    const s = seen(m.room);
    if (s.has(key)) return;
    s.add(key);
    addEntry(m.room, { kind: 'message', from: m.from, text: m.text, ts: m.ts, mine: false });
  }

  // ----- views -------------------------------------------------------------------

  function renderRooms() {
    const list = $('rooms');
    const names = new Set(state.rooms.map((r) => r.name));
    // Rooms we are in but the list does not know yet (e.g. while reconnecting).
    const rooms = state.rooms.concat(
      state.joined.filter((r) => !names.has(r)).map((name) => ({ name, count: null })),
    );
    list.replaceChildren(
      ...rooms.map((r) => {
        const li = el('li');
        const joined = state.joined.includes(r.name);
        li.dataset.testid = 'room';
        li.dataset.room = r.name;
        li.dataset.joined = String(joined);
        li.dataset.active = String(joined && r.name === state.active);
        li.dataset.count = r.count === null ? '' : String(r.count);
        li.classList.toggle('joined', joined);
        li.classList.toggle('active', r.name === state.active);
        li.classList.toggle('unread', state.unread.has(r.name));
        const button = el('button');
        button.type = 'button';
        button.append(
          el('span', 'name', r.name),
          el('span', 'count', r.count === null ? '' : String(r.count)),
        );
        button.addEventListener('click', () => openRoom(r.name));
        li.append(button);
        return li;
      }),
    );
  }

  function renderUsers() {
    const room = state.active;
    $('users-room').textContent = room || '';
    const users = (room && state.users.get(room)) || [];
    $('users').replaceChildren(
      ...users.map((n) => {
        const li = el('li', n === state.nick ? 'me' : '', n);
        li.dataset.testid = 'user';
        li.dataset.nick = n;
        return li;
      }),
    );
  }

  function renderTyping() {
    const typers = state.active && state.typing.get(state.active);
    const names = typers ? [...typers.keys()] : [];
    $('typing').textContent =
      names.length === 0 ? ''
        : names.length === 1 ? `${names[0]} is typing…`
          : `${names.join(', ')} are typing…`;
  }

  function renderActive() {
    const room = state.active;
    const inRoom = room && state.joined.includes(room);
    $('room-title').textContent = inRoom ? room : 'No room: pick or create one';
    $('leave').hidden = !inRoom;
    $('text').disabled = !inRoom;
    $('send').disabled = !inRoom;
    const list = $('messages');
    list.replaceChildren(...(inRoom ? log(room).map(renderEntry) : []));
    list.scrollTop = list.scrollHeight;
    state.unread.delete(room);
    renderRooms();
    renderUsers();
    renderTyping();
  }

  // ----- talking to the server ----------------------------------------------

  async function request(event, payload) {
    if (!state.socket) return { ok: false, error: 'Not connected' };
    try {
      const res = await state.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
      return res && typeof res === 'object' ? res : { ok: false, error: 'Bad answer' };
    } catch (e) {
      return { ok: false, error: 'No answer from the server (timed out)' };
    }
  }

  async function joinRoom(room, create) {
    const res = await request('join', { room, create });
    if (!res.ok) return res;
    if (!state.joined.includes(room)) state.joined.push(room);
    state.users.set(room, res.users || []);
    log(room);
    for (const m of res.history || []) addMessage(m, res.epoch);
    return res;
  }

  async function openRoom(room) {
    showError('');
    if (!state.joined.includes(room)) {
      const res = await joinRoom(room, false);
      if (!res.ok) return showError(res.error);
    }
    state.active = room;
    renderActive();
    $('text').focus();
  }

  async function rejoinAll() {
    // After a reconnect (or a server restart) the server has forgotten our
    // rooms: join them again, creating the ones that are gone.
    const rooms = state.joined.slice();
    const results = await Promise.all(rooms.map((r) => joinRoom(r, true)));
    results.forEach((res, i) => {
      if (!res.ok) {
        state.joined = state.joined.filter((r) => r !== rooms[i]);
        showError(`${rooms[i]}: ${res.error}`);
      }
    });
    if (!state.joined.includes(state.active)) state.active = state.joined[0] || null;
    renderActive();
  }

  function parseDm(text) {
    const m = /^\s*\/msg\s+(\S+)\s+([\s\S]*\S)\s*$/.exec(text);
    return m ? { to: m[1], text: m[2] } : null;
  }

  async function send(text) {
    const room = state.active;
    if (!room) return;
    showError('');
    stopTyping();
    const dm = parseDm(text);
    const entry = dm
      ? { kind: 'dm', from: state.nick, to: dm.to, text: dm.text, mine: true, status: 'pending' }
      : { kind: 'message', from: state.nick, text: text.trim(), mine: true, status: 'pending' };
    if (entry.text) addEntry(room, entry);
    const res = await request('message', { room, text });
    if (res.ok) {
      entry.status = 'delivered';
      const m = res.message || res.dm;
      if (m) entry.ts = m.ts;
      if (res.message) seen(room).add(`${state.epoch}:${res.message.id}`);
    } else {
      entry.status = 'failed';
      entry.error = res.error;
      showError(res.error);
    }
    updateEntryStatus(entry);
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent && state.socket) {
      state.socket.volatile.emit('typing', { room: state.typingSent, typing: false });
    }
    state.typingSent = null;
  }

  function onInput() {
    const room = state.active;
    if (!room || !state.socket || !state.socket.connected) return;
    if (state.typingSent !== room || Date.now() - state.typingSentAt > TYPING_REPEAT_MS) {
      if (state.typingSent !== room) stopTyping();
      state.socket.volatile.emit('typing', { room, typing: true });
      state.typingSent = room;
      state.typingSentAt = Date.now();
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function onTyping({ room, nick, typing }) {
    if (nick === state.nick) return;
    if (!state.typing.has(room)) state.typing.set(room, new Map());
    const typers = state.typing.get(room);
    clearTimeout(typers.get(nick));
    if (typing) {
      typers.set(nick, setTimeout(() => onTyping({ room, nick, typing: false }), TYPING_SHOWN_MS));
    } else {
      typers.delete(nick);
    }
    if (room === state.active) renderTyping();
  }

  function connect(nick) {
    state.nick = nick;
    const options = {
      auth: (cb) => cb({ nick: state.nick, key: tabKey() }),
    };
    if (pollingOnly) options.transports = ['polling'];
    const socket = io(options);
    state.socket = socket;

    socket.on('connect', () => {
      setStatus('connected');
      showTransport();
      socket.io.engine.on('upgrade', showTransport);
      if (!state.everConnected) {
        state.everConnected = true;
        $('login').hidden = true;
        $('chat').hidden = false;
        $('me').textContent = state.nick;
      }
      rejoinAll();
    });

    socket.on('connect_error', (err) => {
      if (socket.active) {
        // A transport failure: the client keeps trying.
        setStatus('reconnecting');
        return;
      }
      // Refused by the server's middleware (e.g. nickname taken).
      setStatus('disconnected');
      socket.close();
      state.socket = null;
      showError(err.message);
      if (state.everConnected) {
        $('chat').hidden = true;
        $('login').hidden = false;
        state.everConnected = false;
      }
      $('login-button').disabled = false;
    });

    socket.on('disconnect', (reason) => {
      setStatus(socket.active ? 'reconnecting' : 'disconnected');
      state.typing.clear();
      state.typingSent = null;
      renderTyping();
      if (!socket.active) showError(`Disconnected (${reason})`);
    });

    socket.io.on('reconnect_attempt', () => setStatus('reconnecting'));
    socket.io.on('reconnect_failed', () => setStatus('disconnected'));

    socket.on('welcome', ({ nick, epoch }) => {
      state.nick = nick;
      state.epoch = epoch;
      $('me').textContent = nick;
    });
    socket.on('fatal', (message) => showError(message));
    socket.on('rooms', (rooms) => {
      state.rooms = Array.isArray(rooms) ? rooms : [];
      renderRooms();
    });
    socket.on('users', ({ room, users }) => {
      state.users.set(room, users);
      if (room === state.active) renderUsers();
    });
    socket.on('message', (m) => {
      if (state.joined.includes(m.room)) addMessage(m, state.epoch);
    });
    socket.on('dm', (m) => {
      const room = state.active || state.joined[0];
      if (room) addEntry(room, { kind: 'dm', from: m.from, to: m.to, text: m.text, ts: m.ts, mine: false });
    });
    socket.on('notice', ({ room, text }) => {
      if (state.joined.includes(room)) addEntry(room, { kind: 'notice', text });
    });
    socket.on('typing', onTyping);
  }

  // ----- wiring ------------------------------------------------------------------

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const nick = $('nick').value.trim();
    showError('');
    if (typeof io !== 'function') {
      showError('The socket.io client did not load: run `npm ci` in chat-demo/ and restart the server.');
      return;
    }
    if (state.socket) {
      state.socket.close();
      state.socket = null;
    }
    $('login-button').disabled = true;
    connect(nick);
  });

  $('send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('text');
    const text = input.value;
    input.value = '';
    send(text);
  });
  $('text').addEventListener('input', onInput);

  $('create-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    let room = $('new-room').value.trim().toLowerCase();
    if (room && !room.startsWith('#')) room = `#${room}`;
    showError('');
    const res = await joinRoom(room, true);
    if (!res.ok) return showError(res.error);
    $('new-room').value = '';
    state.active = room;
    renderActive();
  });

  $('leave').addEventListener('click', async () => {
    const room = state.active;
    if (!room) return;
    showError('');
    const res = await request('leave', room);
    if (!res.ok) return showError(res.error);
    state.joined = state.joined.filter((r) => r !== room);
    state.logs.delete(room);
    state.seen.delete(room);
    state.users.delete(room);
    state.active = state.joined[0] || null;
    renderActive();
  });

  if (typeof io !== 'function') {
    showError('The socket.io client did not load: run `npm ci` in chat-demo/ and restart the server.');
  }
  setStatus('disconnected');
})();
