//! The Redis Streams adapter's decoders: pub/sub messages, session records, stream entries.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio_redis::fuzzing::check_stream(data));
