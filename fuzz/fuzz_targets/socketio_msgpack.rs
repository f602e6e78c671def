//! msgpack-parser packet codec: decode, encode, decode keeps the packet; encoding is stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio::fuzzing::check_msgpack_packet(data));
