//! Engine.IO v3 polling payloads (text and XHR2 binary framings): lazy decoding and
//! re-encoding of the decoded prefix.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engineio::fuzzing::check_payload_v3(data));
