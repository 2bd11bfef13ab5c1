#![no_main]
//! `hostile::expression` under libFuzzer: `make fuzz` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| hostile::expression(data));
