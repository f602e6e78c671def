// Writes fuzz/corpus/redis_stream/: what a Node node with @socket.io/redis-streams-adapter 0.3
// puts on Redis (its `encode()` and `persistSession()` forms, built with the same
// @msgpack/msgpack), in the input format of the `redis_stream` target: byte 0 = 0 pub/sub
// message, 1 session record, 2 stream entry (fields uid, nsp, type, data separated by 0x00).
// Run from the repository root after `cd conformance && npm ci`:
//   node fuzz/make_redis_stream_seeds.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { encode } = require(path.join(__dirname, '../conformance/node_modules/@msgpack/msgpack'));

const out = path.join(__dirname, 'corpus', 'redis_stream');
fs.mkdirSync(out, { recursive: true });
const uid = '0123456789abcdef';
const entry = (nsp, type, data, binary) => Buffer.concat([
  Buffer.from([2]),
  Buffer.from([uid, nsp, String(type), binary
    ? Buffer.from(encode(data)).toString('base64') : JSON.stringify(data)].join('\0')),
]);
const pubsub = (message) => Buffer.concat([Buffer.from([0]), Buffer.from(encode(message))]);
const opts = (rooms = [], except = [], flags = {}) => ({ rooms, except, flags });
const seeds = {
  'entry-broadcast': entry('/', 3, { packet: { type: 2, data: ['msg', { a: 1 }], nsp: '/' }, opts: opts(['r']) }),
  'entry-broadcast-binary': entry('/custom', 3, { packet: { type: 2, data: ['f', Buffer.from([0, 1, 255])] }, opts: opts([], ['x'], { volatile: true }) }, true),
  'entry-join': entry('/', 4, { opts: opts(['a']), rooms: ['b', 'c'] }),
  'entry-leave': entry('/', 5, { opts: opts([], ['a']), rooms: ['b'] }),
  'entry-disconnect': entry('/', 6, { opts: opts(['a']), close: true }),
  'entry-heartbeat': entry('/', 2),
  'pubsub-fetch': pubsub({ type: 7, data: { opts: opts(['r']), requestId: 'aaaaaaaaaaaaaaaa' }, uid, nsp: '/' }),
  'pubsub-fetch-response': pubsub({ type: 8, data: { requestId: 'aaaaaaaaaaaaaaaa', sockets: [{ id: 'abcdefghijklmnopqrst', handshake: { headers: {}, auth: {} }, rooms: ['abcdefghijklmnopqrst'], data: {} }] }, uid, nsp: '/' }),
  'pubsub-sse-ack': pubsub({ type: 9, data: { requestId: 'bbbbbbbbbbbbbbbb', packet: ['hello', Buffer.from('x')] }, uid, nsp: '/' }),
  'pubsub-sse-response': pubsub({ type: 10, data: { requestId: 'bbbbbbbbbbbbbbbb', packet: { port: 1 } }, uid, nsp: '/' }),
  'pubsub-broadcast-ack': pubsub({ type: 3, data: { packet: { type: 2, data: ['ask', 1] }, requestId: 'cccccccccccccccc', opts: opts([], [], { timeout: 3000 }) }, uid, nsp: '/' }),
  'pubsub-client-count': pubsub({ type: 11, data: { requestId: 'cccccccccccccccc', clientCount: 2 }, uid, nsp: '/' }),
  'pubsub-ack': pubsub({ type: 12, data: { requestId: 'cccccccccccccccc', packet: Buffer.from([9]) }, uid, nsp: '/' }),
  'session': Buffer.concat([Buffer.from([1]), Buffer.from(Buffer.from(encode({ sid: 'AAAAAAAAAAAAAAAAAAAA', pid: 'p', rooms: ['AAAAAAAAAAAAAAAAAAAA', 'r'], data: { n: 1, when: new Date(1700000000000) } })).toString('base64'))]),
};
for (const [name, bytes] of Object.entries(seeds)) fs.writeFileSync(path.join(out, name), bytes);
console.log(`${Object.keys(seeds).length} seeds in ${out}`);
