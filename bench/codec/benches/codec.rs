//! Encode / decode throughput (MB/s) of the engineio and socketio codecs.
//!
//! `cd bench/codec && cargo bench` (criterion; reports under bench/target/criterion).
//! Throughput counts the encoded bytes on the wire.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engineio::{Message, Packet as EioPacket, Payload, encode_payload};
use serde_json::{Value, json};
use socketio::packet::{self, BinaryPacket, Decoder, Limits, Packet as SioPacket};

/// A JSON-friendly text of `len` bytes (no characters that need escaping).
fn text(len: usize) -> String {
    "lorem ipsum dolor sit amet "
        .chars()
        .cycle()
        .take(len)
        .collect()
}

fn sizes() -> [(&'static str, usize); 2] {
    [("100B", 100), ("16KiB", 16 * 1024)]
}

fn engineio_packet(c: &mut Criterion) {
    let mut g = c.benchmark_group("eio_packet");
    for (name, len) in sizes() {
        let wire = Bytes::from(format!("4{}", text(len)));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_with_input(BenchmarkId::new("decode_text", name), &wire, |b, w| {
            b.iter(|| EioPacket::decode_text(black_box(w.clone())))
        });
        let packet = EioPacket::Message(Message::from(text(len)));
        let mut buf = BytesMut::with_capacity(len + 8);
        g.bench_with_input(BenchmarkId::new("encode_text", name), &packet, |b, p| {
            b.iter(|| {
                buf.clear();
                black_box(p).encode_text(&mut buf);
                black_box(buf.len())
            })
        });
        // A binary message in polling is `b<base64>`.
        let bin = EioPacket::Message(Message::Binary(Bytes::from(vec![0xa5u8; len])));
        let mut b64 = BytesMut::new();
        bin.encode_text(&mut b64);
        let b64 = b64.freeze();
        g.throughput(Throughput::Bytes(b64.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("decode_polling_base64", name),
            &b64,
            |b, w| b.iter(|| EioPacket::decode_polling_item(black_box(w.clone()))),
        );
        g.bench_with_input(
            BenchmarkId::new("encode_polling_base64", name),
            &bin,
            |b, p| {
                b.iter(|| {
                    buf.clear();
                    black_box(p).encode_text(&mut buf);
                    black_box(buf.len())
                })
            },
        );
    }
    g.finish();
}

fn engineio_payload(c: &mut Criterion) {
    let mut g = c.benchmark_group("eio_payload");
    // 50 text messages of 100 B, 5 binary of 1 KiB, a ping: a busy polling response.
    let mut packets: Vec<EioPacket> = (0..50)
        .map(|_| EioPacket::Message(Message::from(text(100))))
        .collect();
    packets
        .extend((0..5).map(|_| EioPacket::Message(Message::Binary(Bytes::from(vec![7u8; 1024])))));
    packets.push(EioPacket::Ping { probe: false });
    let body = encode_payload(&packets);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("encode_payload/56_mixed", |b| {
        b.iter(|| encode_payload(black_box(&packets)))
    });
    g.bench_function("decode_payload/56_mixed", |b| {
        b.iter(|| {
            Payload::new(black_box(body.clone()))
                .map(|p| p.map(|_| ()))
                .collect::<Result<Vec<()>, _>>()
        })
    });
    g.finish();
}

fn event_data(len: usize) -> Value {
    json!(["chat message", { "user": "alice", "room": "lobby", "text": text(len), "n": [1, 2, 3] }])
}

fn socketio_text(c: &mut Criterion) {
    let mut g = c.benchmark_group("sio_text");
    let limits = Limits::default();
    for (name, len) in sizes() {
        let packet = SioPacket::event("/chat", event_data(len), Some(12));
        let wire = packet.encode();
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_with_input(BenchmarkId::new("decode_event", name), &wire, |b, w| {
            b.iter(|| packet::decode(black_box(w), &limits))
        });
        g.bench_with_input(BenchmarkId::new("encode_event", name), &packet, |b, p| {
            b.iter(|| black_box(p).encode())
        });
    }
    g.finish();
}

fn socketio_binary(c: &mut Criterion) {
    let mut g = c.benchmark_group("sio_binary");
    for (name, len) in sizes() {
        let blob = Bytes::from(vec![0x5au8; len]);
        let args = ("upload", packet::Binary(blob.clone()), "meta");
        let (data, attachments) = packet::to_value(&args).unwrap_or((Value::Null, vec![]));
        let header = BinaryPacket::event("/", data, attachments, Some(3)).encode();
        g.throughput(Throughput::Bytes((header.len() + len) as u64));
        g.bench_with_input(BenchmarkId::new("encode_event", name), &args, |b, a| {
            b.iter(|| {
                let (data, attachments) =
                    packet::to_value(black_box(a)).unwrap_or((Value::Null, vec![]));
                let p = BinaryPacket::event("/", data, attachments, Some(3));
                (p.encode(), p.attachments)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("decode_event", name),
            &(header, blob),
            |b, (h, blob)| {
                b.iter(|| {
                    let mut d = Decoder::new(Limits::default());
                    let _ = d.feed_text(black_box(h));
                    d.feed_binary(blob.clone())
                })
            },
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    engineio_packet,
    engineio_payload,
    socketio_text,
    socketio_binary
);
criterion_main!(benches);
