//! The reward engine: the plugin host, rewards and scoring, the rewards config and the rollout
//! records callers write. Every door (the server's gRPC and HTTP, the offline scorer, the Lambda
//! bridge) goes through it and only translates its wire shape.
//!
//! Brief overview: a [`PluginHost`] owns the one wasmtime engine of the process and loads
//! [`Plugin`]s (compiled components with an instance pool). A [`Reward`] is a named use of a
//! plugin with a config, [`Limits`] and a failure policy, or a composite of other rewards with a
//! formula ([`config::Rewards`] loads them from TOML). Every transport converts its input into
//! [`Item`]s ([`Rollout::new`] owns the answer rule; [`input`] reads the JSON records, [`nova`]
//! the Lambda contract), scores them with [`Reward::score_items`] (the [`request`] step: reject in
//! place, score the rest, answer in order) and writes out [`Scored`]s.
#![deny(missing_docs)]

pub mod config;
pub mod group;
pub mod input;
pub mod nova;
pub mod request;

mod artifact_cache;
mod bindings;
mod fixtures;
pub mod formula;
pub mod graders;
mod host;
pub mod judge;
mod limiter;
mod limits;
mod meter;
mod plugin;
pub mod programs;
pub mod reward;
mod types;

pub use artifact_cache::{ENV_CACHE_DIR, default_cache_dir, sha256_hex};
pub use fixtures::{Fixtures, MAX_FIXTURE_BYTES};
pub use host::{DEFAULT_EPOCH_TICK, DEFAULT_MAX_INSTANCES, DEFAULT_MAX_MEMORY_BYTES, HostBuilder, PluginHost};
pub use limiter::TABLE_ELEMENT_BYTES;
pub use limits::*;
pub use meter::METER_INTERFACE;
pub use plugin::{
    CHUNK, CHUNK_FUEL, CONTRACT_INTERFACE, CONTRACT_VERSION, FIXTURES_INTERFACE, Grants, LoadError, Plugin, PluginInfo, PluginOutcome,
    PluginScore,
};
pub use request::Item;
pub use reward::{OnError, Reward, RewardKind, RolloutFailed};
pub use types::{ANSWER_ROLES, AnswerError, ERROR_METRIC, Failure, Message, Metric, MetricKind, Provenance, Rollout, Scored, Status};
