#![no_main]
//! `hostile::expression_differential` under libFuzzer: `make fuzz` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| hostile::expression_differential(data));
