//! End to end: a script of transport events and clock ticks driving the Engine.IO session state machine, with the Socket.IO decoder above it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| socketio::fuzzing::check_session(data));
