#![no_main]
//! `reward_server::fuzz_targets::formula` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| reward_fuzz::run("formula", data));
