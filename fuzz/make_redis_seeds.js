// Writes fuzz/corpus/redis_frame/: messages as the Node redis adapter 8.3 and the
// redis emitter 5.1 put them on Redis, encoded with their own notepack.io.
// Run from the repository root after `cd conformance && npm ci`:
//   node fuzz/make_redis_seeds.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const msgpack = require(path.join(__dirname, '../conformance/node_modules/notepack.io'));

const out = path.join(__dirname, 'corpus', 'redis_frame');
fs.mkdirSync(out, { recursive: true });
const seeds = {
  'broadcast-all': msgpack.encode(['AbC123', { type: 2, data: ['msg', 'hi'], nsp: '/' }, { rooms: [], except: [], flags: {} }]),
  'broadcast-room-binary': msgpack.encode(['AbC123', { type: 2, data: ['msg', { bin: Buffer.from([0, 1, 2, 255]), n: 1.5 }], nsp: '/custom' }, { rooms: ['r1'], except: ['x'], flags: { volatile: true } }]),
  'broadcast-emitter': msgpack.encode(['emitter', { type: 2, data: ['news', [1, -1, 300, -40000, 2 ** 40]], nsp: '/' }, { rooms: ['a', 'b'], flags: {}, except: [] }]),
  'broadcast-date': msgpack.encode(['AbC123', { type: 2, data: ['d', new Date(1700000000123)], nsp: '/' }, { rooms: [], except: [], flags: {} }]),
  'request-sockets': Buffer.from(JSON.stringify({ uid: 'AbC123', requestId: 'Req001', type: 0, rooms: ['r1'] })),
  'request-all-rooms': Buffer.from(JSON.stringify({ uid: 'AbC123', requestId: 'Req002', type: 1 })),
  'request-join': Buffer.from(JSON.stringify({ uid: 'AbC123', type: 2, opts: { rooms: ['a'], except: [] }, rooms: ['b'] })),
  'request-leave-legacy': Buffer.from(JSON.stringify({ uid: 'AbC123', type: 3, sid: 'abcdefghijklmnopqrst', room: 'r', requestId: 'Req003' })),
  'request-disconnect': Buffer.from(JSON.stringify({ type: 4, opts: { rooms: [], except: ['x'] }, close: true })),
  'request-fetch': Buffer.from(JSON.stringify({ uid: 'AbC123', requestId: 'Req004', type: 5, opts: { rooms: ['r'], except: [] } })),
  'request-sse': Buffer.from(JSON.stringify({ uid: 'AbC123', requestId: 'Req005', type: 6, data: ['hello', { a: [1, 2] }] })),
  'request-broadcast-ack': msgpack.encode({ uid: 'AbC123', requestId: 'Req006', type: 7, packet: { type: 2, data: ['ask', Buffer.from('q')], nsp: '/' }, opts: { rooms: [], except: [], flags: { timeout: 3000 } } }),
  'response-fetch': Buffer.from(JSON.stringify({ requestId: 'Req004', sockets: [{ id: 'abcdefghijklmnopqrst', handshake: { headers: {}, time: 'x', address: '::1', xdomain: false, secure: false, issued: 1, url: '/', query: {}, auth: {} }, rooms: ['abcdefghijklmnopqrst'], data: {} }] })),
  'response-client-count': Buffer.from(JSON.stringify({ type: 8, requestId: 'Req006', clientCount: 3 })),
  'response-ack': msgpack.encode({ type: 9, requestId: 'Req006', packet: { ok: Buffer.from([1]) } }),
  'deep-array': Buffer.from(new Array(130).fill(0x91).concat([0xc0])),
  'huge-length': Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
};
for (const [name, bytes] of Object.entries(seeds)) fs.writeFileSync(path.join(out, name), bytes);
console.log(`${Object.keys(seeds).length} seeds in ${out}`);
