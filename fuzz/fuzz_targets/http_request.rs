#![no_main]
//! `hostile::http_request` under libFuzzer: `make fuzz` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| hostile::http_request(data));
