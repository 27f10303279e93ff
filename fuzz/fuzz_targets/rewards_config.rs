#![no_main]
//! `reward_server::fuzz_targets::rewards_config` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| reward_fuzz::run("rewards_config", data));
