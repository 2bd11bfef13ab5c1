#![no_main]
//! `hostile::stored_bytes` under libFuzzer: `make fuzz` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| hostile::stored_bytes(data));
