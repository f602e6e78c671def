//! Engine.IO packet codec: text, polling item and binary frame round trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engineio::fuzzing::check_packet(data));
