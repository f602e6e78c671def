//! WebSocket frame decoder (RFC 6455, with permessage-deflate's RSV1): chunking-independent
//! results, bounds, inflate bounded, re-encoding round trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| engineio::fuzzing::check_ws_frame(data));
