//! Socket.IO binary reassembly: exact attachments, bounded buffering.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio::fuzzing::check_binary(data));
