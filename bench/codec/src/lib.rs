//! Empty: the benchmarks live in `benches/codec.rs`.
