//! Engine.IO polling payloads: lazy decoding and re-encoding of the decoded prefix.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engineio::fuzzing::check_payload(data));
