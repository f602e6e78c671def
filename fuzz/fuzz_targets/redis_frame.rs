//! Messages from Redis (broadcast frames, requests, responses; MessagePack or JSON).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio_redis::fuzzing::check_frame(data));
