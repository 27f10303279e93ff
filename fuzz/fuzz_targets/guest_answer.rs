#![no_main]
//! `reward_server::fuzz_targets::guest_answer` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| reward_fuzz::run("guest_answer", data));
