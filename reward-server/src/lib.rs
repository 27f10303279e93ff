//! The reward server: scores LLM rollouts for reinforcement fine-tuning with reward logic in
//! sandboxed WebAssembly plugins, online (gRPC, HTTP) and offline (JSONL files).
#![deny(missing_docs)]

pub mod engine;
#[doc(hidden)] pub mod fuzz_targets;
pub mod cli;
pub mod config;
pub mod input;
pub mod offline;
pub mod server;
pub mod wire;
