#![no_main]
//! `hostile::sigv4` under libFuzzer: `make fuzz` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| hostile::sigv4(data));
