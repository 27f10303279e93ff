//! Write reward plugins in Rust.
//!
//! A plugin is a type that implements [`Reward`]: it names itself, declares its JSON config type,
//! and scores one [`Rollout`] at a time. [`export_reward!`] turns it into a WebAssembly component
//! that speaks the contract in `reward-plugins/wit/reward.wit`; natively the same code runs as a
//! plain library (unit tests, and the host's native-baseline benchmarks), through [`score_batch`].
//!
//! ```ignore
//! struct Length;
//! impl reward_sdk::Reward for Length {
//!     type Config = serde_json::Value;
//!     fn info() -> reward_sdk::PluginInfo { /* ... */ }
//!     fn score(_: &Self::Config, r: &reward_sdk::Rollout) -> Result<reward_sdk::Score, reward_sdk::RolloutError> {
//!         Ok(reward_sdk::Score::new((r.completion.len() as f64 / 1000.0).min(1.0)))
//!     }
//! }
//! reward_sdk::export_reward!(Length);
//! ```
#![deny(missing_docs)]

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub mod alloc;
pub mod extract;
pub mod fixtures;
pub mod judge;
pub mod programs;

use std::cell::RefCell;

use serde::de::DeserializeOwned;

/// One turn of the conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant`, `nova_assistant`, `tool`, ...
    pub role: String,
    /// The turn's text.
    pub content: String,
}

/// One generated answer to score, with the dataset's reference.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollout {
    /// The caller's id.
    pub id: String,
    /// The conversation, the generated answer last.
    pub messages: Vec<Message>,
    /// The generated answer's text.
    pub completion: String,
    /// The reference answer as JSON text (`null` when absent).
    pub reference: String,
    /// Other fields of the rollout as a JSON object text.
    pub metadata: String,
}

impl Rollout {
    /// The reference parsed as JSON; `Value::Null` when it is absent or empty.
    pub fn reference_json(&self) -> Result<serde_json::Value, RolloutError> {
        parse_json_field("reference", &self.reference)
    }

    /// The metadata parsed as JSON; `Value::Null` when it is absent or empty.
    pub fn metadata_json(&self) -> Result<serde_json::Value, RolloutError> {
        parse_json_field("metadata", &self.metadata)
    }

    /// The text of the first user turn, if any: where datasets put the question.
    pub fn prompt(&self) -> Option<&str> {
        self.messages.iter().find(|m| m.role == "user").map(|m| m.content.as_str())
    }
}

/// Keys tried, in order, in a JSON-object reference when a reward's `reference.field` is not
/// set: the names datasets give the gold answer (`expected_answer` is NeMo Gym's).
pub const REFERENCE_FIELDS: [&str; 5] = ["answer", "ground_truth", "solution", "label", "expected_answer"];

/// Takes the gold answer out of a JSON-object reference: the field `configured` names (a
/// reward's `reference.field`), else the first of [`REFERENCE_FIELDS`] present and not null.
/// Returns the value and its key; `INVALID_INPUT` naming what is missing otherwise.
pub fn take_reference_field(
    map: &mut serde_json::Map<String, serde_json::Value>,
    configured: Option<&str>,
) -> Result<(serde_json::Value, String), RolloutError> {
    let key = match configured {
        Some(f) if map.contains_key(f) => f.to_owned(),
        Some(f) => return Err(RolloutError::InvalidInput(format!("reference has no field `{f}` (reference.field)"))),
        None => REFERENCE_FIELDS.iter().find(|k| map.get(**k).is_some_and(|v| !v.is_null())).map(|k| (*k).to_owned()).ok_or_else(|| {
            RolloutError::InvalidInput(format!("reference has none of the fields {}; set reference.field", REFERENCE_FIELDS.join(", ")))
        })?,
    };
    Ok((map.remove(&key).unwrap_or(serde_json::Value::Null), key))
}

/// What kind of JSON value `v` is, as an error message names it ("a string", "an object", ...).
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn parse_json_field(what: &str, text: &str) -> Result<serde_json::Value, RolloutError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(text).map_err(|e| RolloutError::InvalidInput(format!("{what} is not valid JSON: {e}")))
}

/// Whether a metric is paid to the model or only reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Part of the reward.
    Reward,
    /// Diagnostic only.
    Metric,
}

/// A named number reported beside the score.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Stable `snake_case` name.
    pub name: String,
    /// The value; must be finite.
    pub value: f64,
    /// Reward or diagnostic.
    pub kind: MetricKind,
}

/// A rollout's score: the reward, its metrics and a reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The reward; must be finite.
    pub value: f64,
    /// Per-check numbers.
    pub metrics: Vec<Metric>,
    /// Why, for humans.
    pub reason: Option<String>,
}

impl Score {
    /// A score with no metrics and no reason.
    pub fn new(value: f64) -> Self {
        Score { value, metrics: Vec::new(), reason: None }
    }

    /// Adds a metric that is part of the reward.
    pub fn reward(mut self, name: &str, value: f64) -> Self {
        self.metrics.push(Metric { name: name.to_owned(), value, kind: MetricKind::Reward });
        self
    }

    /// Adds a diagnostic metric.
    pub fn metric(mut self, name: &str, value: f64) -> Self {
        self.metrics.push(Metric { name: name.to_owned(), value, kind: MetricKind::Metric });
        self
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The value of the named metric, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }
}

/// Why one rollout could not be scored.
#[derive(Clone, Debug, PartialEq)]
pub enum RolloutError {
    /// The rollout is unusable for this reward; the text names the problem.
    InvalidInput(String),
    /// The plugin failed on a usable rollout.
    Failed(String),
}

/// What a plugin says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginInfo {
    /// Short lowercase name.
    pub name: String,
    /// The plugin's semantic version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// The metrics it may emit.
    pub metrics: Vec<String>,
}

/// A reward: the one trait a plugin implements.
pub trait Reward: 'static {
    /// The reward's configuration, deserialised from the JSON the host passes. Use
    /// `#[serde(deny_unknown_fields)]` so a misspelt key is an error at load time.
    type Config: DeserializeOwned + 'static;

    /// The plugin's metadata.
    fn info() -> PluginInfo;

    /// Checks a deserialised config beyond what its type says (ranges, regexes that compile, ...).
    /// The error names the field. By default every config that deserialises is accepted.
    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Scores one rollout.
    fn score(config: &Self::Config, rollout: &Rollout) -> Result<Score, RolloutError>;
}

/// Parses and validates a config, as the host's load-time check does.
pub fn check_config<R: Reward>(config: &str) -> Result<R::Config, String> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    let parsed: R::Config = serde_json::from_str(text).map_err(|e| format!("invalid config: {e}"))?;
    R::validate(&parsed)?;
    Ok(parsed)
}

thread_local! {
    /// The last config seen, parsed: the host passes the same config text on every call, so a
    /// reused instance parses (and compiles the regexes of) a config once.
    static CONFIG_CACHE: RefCell<Option<(String, Box<dyn std::any::Any>)>> = const { RefCell::new(None) };
}

/// Scores a batch the way the exported component does: the config is parsed once (and cached
/// across calls while it stays the same), then each rollout is scored in order.
pub fn score_batch<R: Reward>(config: &str, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
    score_batch_metered::<R>(config, rollouts, |_, score| score())
}

/// [`score_batch`], with each rollout's scoring wrapped by `around(index, score)`: the component
/// brackets it with the host's `meter.begin` and `meter.end`.
fn score_batch_metered<R: Reward>(
    config: &str,
    rollouts: &[Rollout],
    mut around: impl FnMut(u32, &mut dyn FnMut() -> Result<Score, RolloutError>) -> Result<Score, RolloutError>,
) -> Vec<Result<Score, RolloutError>> {
    let index = |i: usize| u32::try_from(i).expect("the host passes fewer than 2^32 rollouts");
    CONFIG_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        // `eq_bytes`, not `==`: on wasm32 `==` compares byte by byte, and this runs on every call.
        let cached = matches!(cache.as_ref(), Some((text, parsed))
            if extract::eq_bytes(text.as_bytes(), config.as_bytes()) && parsed.is::<R::Config>());
        if !cached {
            match check_config::<R>(config) {
                Ok(parsed) => *cache = Some((config.to_owned(), Box::new(parsed))),
                Err(e) => {
                    let failed = || Err(RolloutError::Failed(e.clone()));
                    return (0..rollouts.len()).map(|i| around(index(i), &mut failed.clone())).collect();
                }
            }
        }
        let parsed = cache.as_ref().and_then(|(_, p)| p.downcast_ref::<R::Config>()).expect("config cached just above");
        rollouts.iter().enumerate().map(|(i, r)| around(index(i), &mut || R::score(parsed, r))).collect()
    })
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        // The world with the host's optional imports (`meter`, `fixtures`, `programs`, `judge`): a
        // plugin that never calls `fixtures::read`, a `programs` function or `judge::complete` does
        // not import them (unused imports are dropped at link time).
        world: "reward-plugin-full",
        pub_export_macro: true,
        default_bindings_module: "reward_sdk::bindings",
    });
}

/// Glue between the generated bindings and [`Reward`]; used by [`export_reward!`].
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest {
    use super::bindings::exports::reward::plugin::reward as wit;
    use super::bindings::reward::plugin::meter;
    use super::*;

    thread_local! {
        /// The index in the current call of the rollout being scored.
        static CURRENT_INDEX: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// The index, in the host's current `score-batch` call, of the rollout being scored: what the
    /// SDK passed to `meter.begin`. For the host's tests of guests that break the meter protocol;
    /// a reward has no use for it.
    pub fn current_index() -> u32 {
        CURRENT_INDEX.with(|c| c.get())
    }

    pub fn info<R: Reward>() -> wit::PluginInfo {
        let i = R::info();
        wit::PluginInfo { name: i.name, version: i.version, description: i.description, metrics: i.metrics }
    }

    pub fn check_config<R: Reward>(config: String) -> Result<(), String> {
        super::check_config::<R>(&config).map(drop)
    }

    pub fn score<R: Reward>(config: String, rollouts: Vec<wit::Rollout>) -> Vec<Result<wit::Score, wit::RolloutError>> {
        let rollouts: Vec<Rollout> = rollouts
            .into_iter()
            .map(|r| Rollout {
                id: r.id,
                messages: r.messages.into_iter().map(|m| Message { role: m.role, content: m.content }).collect(),
                completion: r.completion,
                reference: r.reference,
                metadata: r.metadata,
            })
            .collect();
        let metered = |index, score: &mut dyn FnMut() -> _| {
            CURRENT_INDEX.with(|c| c.set(index));
            meter::begin(index);
            let result = score();
            meter::end(index);
            result
        };
        super::score_batch_metered::<R>(&config, &rollouts, metered)
            .into_iter()
            .map(|result| match result {
                Ok(s) => Ok(wit::Score {
                    value: s.value,
                    metrics: s
                        .metrics
                        .into_iter()
                        .map(|m| wit::Metric {
                            name: m.name,
                            value: m.value,
                            kind: match m.kind {
                                MetricKind::Reward => wit::MetricKind::Reward,
                                MetricKind::Metric => wit::MetricKind::Metric,
                            },
                        })
                        .collect(),
                    reason: s.reason,
                }),
                Err(RolloutError::InvalidInput(e)) => Err(wit::RolloutError::InvalidInput(e)),
                Err(RolloutError::Failed(e)) => Err(wit::RolloutError::Failed(e)),
            })
            .collect()
    }
}

/// Exports a [`Reward`] as the plugin's component entry points, and installs the SDK's
/// size-class allocator (`alloc::SizeClasses`, wasm32 only: every rollout allocates and frees the same few
/// dozen small blocks, which dlmalloc makes cost hundreds of metered instructions each). On wasm32
/// only; natively it expands to nothing.
#[macro_export]
macro_rules! export_reward {
    ($reward:ty) => {
        #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
        #[global_allocator]
        static __REWARD_SDK_ALLOCATOR: $crate::alloc::SizeClasses = $crate::alloc::SizeClasses::new();

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __RewardExport;
            impl $crate::bindings::exports::reward::plugin::reward::Guest for __RewardExport {
                fn info() -> $crate::bindings::exports::reward::plugin::reward::PluginInfo {
                    $crate::guest::info::<$reward>()
                }
                fn check_config(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::guest::check_config::<$reward>(config)
                }
                fn score_batch(
                    config: ::std::string::String,
                    rollouts: ::std::vec::Vec<$crate::bindings::exports::reward::plugin::reward::Rollout>,
                ) -> ::std::vec::Vec<
                    ::std::result::Result<
                        $crate::bindings::exports::reward::plugin::reward::Score,
                        $crate::bindings::exports::reward::plugin::reward::RolloutError,
                    >,
                > {
                    $crate::guest::score::<$reward>(config, rollouts)
                }
            }
    $crate::bindings::export!(__RewardExport with_types_in $crate::bindings);
        };
    };
}
