#!/usr/bin/env python3
"""Rewrites fuzz/corpus/ws_frame/: client frames (masked) as RFC 6455 and RFC 7692 give them,
one refusal class per seed, compressed with zlib's raw deflate and a sync flush (tail removed).
Byte 0 of each seed is the target's config byte (see fuzz/README.md)."""
import os
import struct
import zlib

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'ws_frame')
M = bytes([0x37, 0xfa, 0x21, 0x3d])


def frame(first, payload, mask=M):
    n = len(payload)
    if n < 126:
        h = bytes([first, 0x80 | n])
    elif n < 65536:
        h = bytes([first, 0x80 | 126]) + struct.pack('>H', n)
    else:
        h = bytes([first, 0x80 | 127]) + struct.pack('>Q', n)
    return h + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b'\x00\x00\xff\xff')
    return out[:-4]


def fragmented(c):
    return frame(0x41, c[:3]) + frame(0x8A, b'') + frame(0x80, c[3:])


KAPPA = '4κό'.encode()
SEEDS = {
    'text-hello': bytes([0x06]) + frame(0x81, b'4Hello'),
    'binary-200': bytes([0x04 | 0x08]) + frame(0x82, bytes(range(200))),
    'fragments-utf8-ping': bytes([0x02]) + frame(0x01, KAPPA[:3]) + frame(0x89, b'p') + frame(0x80, KAPPA[3:]),
    'close-1000-reason': bytes([0x02]) + frame(0x88, struct.pack('>H', 1000) + b'bye'),
    'close-bad-code': bytes([0x02]) + frame(0x88, struct.pack('>H', 1005)),
    'reserved-opcode': bytes([0x02]) + frame(0x83, b''),
    'rsv2': bytes([0x02]) + frame(0xA1, b'4x'),
    'ping-126': bytes([0x04]) + frame(0x89, bytes(126)),
    'unmasked': bytes([0x02]) + bytes([0x81, 0x02]) + b'4x',
    'invalid-utf8': bytes([0x02]) + frame(0x81, b'4\xc0\x80'),
    'too-big': bytes([0x00]) + frame(0x82, bytes(65)),
    'len16-text': bytes([0x04 | 0x30]) + frame(0x81, b'4' + b'a' * 300),
    'deflate-text': bytes([0x03]) + frame(0xC1, deflate(b'4Hello Hello Hello')),
    'deflate-fragmented': bytes([0x05 | 0x10]) + fragmented(deflate(b'4' + b'abc' * 100)),
    'deflate-bomb': bytes([0x03]) + frame(0xC2, deflate(bytes(5000))),
    'deflate-garbage': bytes([0x03]) + frame(0xC1, b'\xff\xff\xff'),
    'continuation-first': bytes([0x02]) + frame(0x80, b'x'),
    'len64-top-bit': bytes([0x06]) + bytes([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1]) + M,
}

os.makedirs(D, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(D, name), 'wb') as f:
        f.write(data)
print(f'{len(SEEDS)} seeds in {D}')
