//! Socket.IO packet codec: decode, encode, decode is stable; limits hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio::fuzzing::check_packet(data));
