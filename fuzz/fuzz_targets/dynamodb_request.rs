#![no_main]
//! `hostile::dynamodb_request` under libFuzzer: `make fuzz` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| hostile::dynamodb_request(data));
