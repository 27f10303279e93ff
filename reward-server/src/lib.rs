//! The reward server: scores LLM rollouts for reinforcement fine-tuning with reward logic in
//! sandboxed WebAssembly plugins, online (gRPC, HTTP) and offline (JSONL files).
#![deny(missing_docs)]

/// The engine (its own crate, `reward-engine`), under the name the server's modules use.
pub use reward_engine as engine;
pub use reward_engine::{config, input};
pub mod cli;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod offline;
pub mod server;
pub mod validate;
pub mod wire;
