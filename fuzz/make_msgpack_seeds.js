// Writes fuzz/corpus/socketio_msgpack/: packets as socket.io-client 4.8 builds them
// (key order type, data, options, id, nsp) and as the reference server answers (socket.ts / client.ts
// key orders: ack {id, type, data, nsp}, CONNECT_ERROR {type, nsp, data}), each encoded by
// socket.io-msgpack-parser 3.0's own Encoder (notepack.io 2.2), plus two hostile shapes.
// Run from the repository root after `cd conformance && npm ci`:
//   node fuzz/make_msgpack_seeds.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Encoder } = require(path.join(__dirname, '../conformance/node_modules/socket.io-msgpack-parser'));

const encoder = new Encoder();
const enc = (packet) => {
  const [bytes] = encoder.encode(packet);
  return bytes;
};
const event = (data, id, nsp = '/') => {
  const p = { type: 2, data, options: { compress: true } };
  if (id !== undefined) p.id = id;
  p.nsp = nsp;
  return enc(p);
};

const out = path.join(__dirname, 'corpus', 'socketio_msgpack');
fs.mkdirSync(out, { recursive: true });
const seeds = {
  'connect-no-auth': enc({ type: 0, data: undefined, nsp: '/' }),
  'connect-auth': enc({ type: 0, data: { token: 'abc', n: 1, deep: { a: [true, null] } }, nsp: '/' }),
  'connect-recovery': enc({ type: 0, data: { pid: 'WoHLtEAbCdEfGhIj', offset: 'MQ==-2', token: 'x' }, nsp: '/custom' }),
  'connect-reply': enc({ type: 0, data: { sid: 'abcdefghijklmnopqrst', pid: 'WoHLtEAbCdEfGhIj' }, nsp: '/' }),
  'connect-error': enc({ type: 4, nsp: '/nope', data: { message: 'Invalid namespace' } }),
  'disconnect': enc({ type: 1, nsp: '/custom' }),
  'event-json': event(['message', 1, -1, 300, -40000, 2 ** 40, 1.5, 'café 😀', null, true, [], {}]),
  'event-undefined': event(['message', 1, undefined, { a: undefined, b: 2 }]),
  'event-binary-nested': event(['upload', { name: 'f', parts: [Buffer.from([0, 1, 2, 255]), { inner: Buffer.alloc(300, 7) }] }]),
  'event-arraybuffer': event(['message', new Uint8Array([1, 2, 3]).buffer, new Uint16Array([1, 65535])]),
  'event-date': event(['when', new Date(1700000000123)]),
  'event-with-ack': event(['message-with-ack', 'hi', Buffer.from('x')], 12, '/custom'),
  'event-placeholder-lookalike': event(['message', { _placeholder: true, num: 0 }, Buffer.from([1])]),
  'ack-binary': enc({ id: 7, type: 3, data: ['answer', Buffer.from([9, 8])], nsp: '/' }),
  'ack-empty': enc({ id: 4294967296, type: 3, data: [], nsp: '/' }),
  'connect-reply-no-pid': enc({ type: 0, data: { sid: 'abcdefghijklmnopqrst', pid: undefined }, nsp: '/' }),
  'deep-data': Buffer.concat([Buffer.from([0x83, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x02, 0xa3, 0x6e, 0x73, 0x70, 0xa1, 0x2f, 0xa4, 0x64, 0x61, 0x74, 0x61, 0x92, 0xa1, 0x65]), Buffer.from(new Array(140).fill(0x91).concat([0xc0]))]),
  'huge-length': Buffer.from([0x83, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x02, 0xa3, 0x6e, 0x73, 0x70, 0xa1, 0x2f, 0xa4, 0x64, 0x61, 0x74, 0x61, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]),
};
for (const [name, bytes] of Object.entries(seeds)) fs.writeFileSync(path.join(out, name), bytes);
console.log(`${Object.keys(seeds).length} seeds in ${out}`);
