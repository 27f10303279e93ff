#![no_main]
//! `reward_server::fuzz_targets::timeout_header` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| reward_fuzz::run("timeout_header", data));
