#![no_main]
//! `reward_server::fuzz_targets::grpc` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| reward_fuzz::run("grpc", data));
