//! Write reward plugins in Rust.
//!
//! A plugin is a type that implements [`Reward`]: it names itself, declares its JSON config type,
//! and scores one [`Rollout`] at a time. [`export_reward!`] turns it into a WebAssembly component
//! that speaks the contract in `reward-plugins/wit/reward.wit`; natively the same code runs as a
//! plain library (unit tests, and the host's native-baseline benchmarks), through [`score_batch`].
//!
//! A reward that scores a rollout against its GRPO group (majority vote, diversity, pass@k)
//! implements [`GroupReward`] instead and is exported with [`export_group_reward!`]: it gets the
//! whole batch at once, which the host makes exactly one group when the reward is declared
//! `groups = true`. Natively, [`score_group_batch`] runs it.
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

/// A reward that scores a whole group of rollouts in one call: the completions of one prompt in a
/// GRPO step, so that a rollout can be scored against its siblings (majority vote, diversity,
/// pass@k, length relative to the group).
///
/// The plugin treats each `score-batch` call as one group. The host guarantees that for a reward
/// declared `groups = true` in `rewards.toml`: every call holds every rollout of one group, in
/// request order, at least one, and a group is never split across calls. Without that
/// declaration a batch is whatever the host chunked together, and a group reward scores nonsense.
///
/// The config handling is the same as [`Reward`]'s (parsed once, cached while its text stays the
/// same, checked by `validate`). A group plugin does not import the host's `meter` interface: the
/// host meters the whole call as one budget, so a group's fuel is counted together.
pub trait GroupReward: 'static {
    /// The reward's configuration, deserialised from the JSON the host passes. Use
    /// `#[serde(deny_unknown_fields)]` so a misspelt key is an error at load time.
    type Config: DeserializeOwned + 'static;

    /// The plugin's metadata.
    fn info() -> PluginInfo;

    /// Checks a deserialised config beyond what its type says. The error names the field. By
    /// default every config that deserialises is accepted.
    fn validate(_config: &Self::Config) -> Result<(), String> {
        Ok(())
    }

    /// Scores one group: `rollouts` is the whole group in request order, never empty. Returns
    /// exactly one result per rollout, in the same order; a result vector of another length is
    /// turned into a `Failed` error for every rollout of the group (see [`score_group_batch`]).
    fn score_group(config: &Self::Config, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>>;
}

/// Parses and validates a config, as the host's load-time check does.
pub fn check_config<R: Reward>(config: &str) -> Result<R::Config, String> {
    parse_config(config, R::validate)
}

/// [`check_config`] for a [`GroupReward`].
pub fn check_group_config<G: GroupReward>(config: &str) -> Result<G::Config, String> {
    parse_config(config, G::validate)
}

/// Deserialises a config text (blank means `{}`), then runs the reward's `validate` on it.
fn parse_config<C: DeserializeOwned>(config: &str, validate: fn(&C) -> Result<(), String>) -> Result<C, String> {
    let text = if config.trim().is_empty() { "{}" } else { config };
    let parsed: C = serde_json::from_str(text).map_err(|e| format!("invalid config: {e}"))?;
    validate(&parsed)?;
    Ok(parsed)
}

thread_local! {
    /// The last config seen, parsed: the host passes the same config text on every call, so a
    /// reused instance parses (and compiles the regexes of) a config once.
    static CONFIG_CACHE: RefCell<Option<(String, Box<dyn std::any::Any>)>> = const { RefCell::new(None) };
}

/// Runs `then` with `config` parsed by `parse`, or with the parse error. The parsed config is
/// taken from [`CONFIG_CACHE`] when the text is the one parsed last (for the same type), and is
/// left there afterwards. The cache is not borrowed while `then` runs, so a reward may score
/// through another reward's [`score_batch`] (that call caches its own config meanwhile; the outer
/// one is put back when `then` returns).
fn with_cached_config<C: 'static, T>(
    config: &str,
    parse: impl FnOnce(&str) -> Result<C, String>,
    then: impl FnOnce(Result<&C, String>) -> T,
) -> T {
    let put_back = |entry| CONFIG_CACHE.with(|cache| *cache.borrow_mut() = entry);
    let mut entry = CONFIG_CACHE.with(|cache| cache.borrow_mut().take());
    // `eq_bytes`, not `==`: on wasm32 `==` compares byte by byte, and this runs on every call.
    let cached = matches!(&entry, Some((text, parsed))
        if extract::eq_bytes(text.as_bytes(), config.as_bytes()) && parsed.is::<C>());
    if !cached {
        match parse(config) {
            Ok(parsed) => entry = Some((config.to_owned(), Box::new(parsed))),
            Err(e) => {
                // A bad config does not evict the good one cached before it.
                put_back(entry);
                return then(Err(e));
            }
        }
    }
    let parsed = entry.as_ref().and_then(|(_, p)| p.downcast_ref::<C>()).expect("config cached just above");
    let out = then(Ok(parsed));
    put_back(entry);
    out
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
    with_cached_config(config, check_config::<R>, |parsed| match parsed {
        Ok(parsed) => rollouts.iter().enumerate().map(|(i, r)| around(index(i), &mut || R::score(parsed, r))).collect(),
        Err(e) => {
            let failed = || Err(RolloutError::Failed(e.clone()));
            (0..rollouts.len()).map(|i| around(index(i), &mut failed.clone())).collect()
        }
    })
}

/// Scores one group the way the component exported by [`export_group_reward!`] does: the config
/// is parsed once (and cached across calls while it stays the same), then
/// [`GroupReward::score_group`] gets the whole batch. An empty batch returns no results without
/// calling it. A config error, or a plugin bug that returns a result vector of the wrong length,
/// is a `Failed` error on every rollout, naming the problem.
pub fn score_group_batch<G: GroupReward>(config: &str, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
    if rollouts.is_empty() {
        return Vec::new();
    }
    let fail_all = |e: String| vec![Err(RolloutError::Failed(e)); rollouts.len()];
    with_cached_config(config, check_group_config::<G>, |parsed| match parsed {
        Ok(parsed) => {
            let results = G::score_group(parsed, rollouts);
            if results.len() == rollouts.len() {
                results
            } else {
                let plugin = G::info();
                fail_all(format!(
                    "plugin \"{}\" version {}: score_group returned {} results for a group of {} rollouts",
                    plugin.name,
                    plugin.version,
                    results.len(),
                    rollouts.len()
                ))
            }
        }
        Err(e) => fail_all(e),
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

/// Glue between the generated bindings and [`Reward`] or [`GroupReward`]; used by
/// [`export_reward!`] and [`export_group_reward!`].
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod guest {
    use std::marker::PhantomData;

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

    /// The component's three entry points, in the generated bindings' types: what the
    /// `__export_plugin!` macro forwards to. One implementation per kind of plugin.
    pub trait Export {
        /// `info`.
        fn info() -> wit::PluginInfo;
        /// `check-config`.
        fn check_config(config: String) -> Result<(), String>;
        /// `score-batch`.
        fn score_batch(config: String, rollouts: Vec<wit::Rollout>) -> Vec<Result<wit::Score, wit::RolloutError>>;
    }

    /// A [`Reward`], scored one rollout at a time, each bracketed by the host's meter.
    pub struct PerRollout<R>(PhantomData<R>);

    /// A [`GroupReward`]: the batch is the group, scored in one go; no meter calls.
    pub struct Grouped<G>(PhantomData<G>);

    impl<R: Reward> Export for PerRollout<R> {
        fn info() -> wit::PluginInfo {
            info_to_wit(R::info())
        }

        fn check_config(config: String) -> Result<(), String> {
            super::check_config::<R>(&config).map(drop)
        }

        fn score_batch(config: String, rollouts: Vec<wit::Rollout>) -> Vec<Result<wit::Score, wit::RolloutError>> {
            let metered = |index, score: &mut dyn FnMut() -> _| {
                CURRENT_INDEX.with(|c| c.set(index));
                meter::begin(index);
                let result = score();
                meter::end(index);
                result
            };
            results_to_wit(super::score_batch_metered::<R>(&config, &rollouts_from_wit(rollouts), metered))
        }
    }

    impl<G: GroupReward> Export for Grouped<G> {
        fn info() -> wit::PluginInfo {
            info_to_wit(G::info())
        }

        fn check_config(config: String) -> Result<(), String> {
            super::check_group_config::<G>(&config).map(drop)
        }

        fn score_batch(config: String, rollouts: Vec<wit::Rollout>) -> Vec<Result<wit::Score, wit::RolloutError>> {
            results_to_wit(super::score_group_batch::<G>(&config, &rollouts_from_wit(rollouts)))
        }
    }

    fn info_to_wit(i: PluginInfo) -> wit::PluginInfo {
        wit::PluginInfo { name: i.name, version: i.version, description: i.description, metrics: i.metrics }
    }

    fn rollouts_from_wit(rollouts: Vec<wit::Rollout>) -> Vec<Rollout> {
        rollouts
            .into_iter()
            .map(|r| Rollout {
                id: r.id,
                messages: r.messages.into_iter().map(|m| Message { role: m.role, content: m.content }).collect(),
                completion: r.completion,
                reference: r.reference,
                metadata: r.metadata,
            })
            .collect()
    }

    fn results_to_wit(results: Vec<Result<Score, RolloutError>>) -> Vec<Result<wit::Score, wit::RolloutError>> {
        results
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
        $crate::__export_plugin!($crate::guest::PerRollout<$reward>);
    };
}

/// Exports a [`GroupReward`] as the plugin's component entry points: each `score-batch` call is
/// one group, handed whole to [`GroupReward::score_group`]. The component does not import the
/// host's `meter`. Installs the same allocator as [`export_reward!`]; on wasm32 only, natively it
/// expands to nothing.
#[macro_export]
macro_rules! export_group_reward {
    ($reward:ty) => {
        $crate::__export_plugin!($crate::guest::Grouped<$reward>);
    };
}

/// The body of [`export_reward!`] and [`export_group_reward!`]: `$export` implements
/// `guest::Export`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    ($export:ty) => {
        #[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
        #[global_allocator]
        static __REWARD_SDK_ALLOCATOR: $crate::alloc::SizeClasses = $crate::alloc::SizeClasses::new();

        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __RewardExport;
            impl $crate::bindings::exports::reward::plugin::reward::Guest for __RewardExport {
                fn info() -> $crate::bindings::exports::reward::plugin::reward::PluginInfo {
                    <$export as $crate::guest::Export>::info()
                }
                fn check_config(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    <$export as $crate::guest::Export>::check_config(config)
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
                    <$export as $crate::guest::Export>::score_batch(config, rollouts)
                }
            }
    $crate::bindings::export!(__RewardExport with_types_in $crate::bindings);
        };
    };
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// Counts the group it is given; config `{"len": N}` makes it return N results instead (a
    /// plugin bug), `{"inner": CONFIG}` scores each rollout through [`score_batch`] of [`Length`].
    struct GroupSize;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct GroupSizeConfig {
        #[serde(default)]
        len: Option<usize>,
        #[serde(default)]
        inner: Option<String>,
    }

    impl GroupReward for GroupSize {
        type Config = GroupSizeConfig;

        fn info() -> PluginInfo {
            PluginInfo { name: "group-size".into(), version: "9.9.9".into(), description: String::new(), metrics: vec![] }
        }

        fn validate(config: &GroupSizeConfig) -> Result<(), String> {
            match config.len {
                Some(0) => Err("len must be at least 1".into()),
                _ => Ok(()),
            }
        }

        fn score_group(config: &GroupSizeConfig, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
            if let Some(inner) = &config.inner {
                return score_batch::<Length>(inner, rollouts);
            }
            let n = config.len.unwrap_or(rollouts.len());
            (0..n).map(|i| Ok(Score::new(rollouts.len() as f64).metric("index", i as f64))).collect()
        }
    }

    /// The completion's length in bytes, times `scale`.
    struct Length;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LengthConfig {
        scale: f64,
    }

    impl Reward for Length {
        type Config = LengthConfig;

        fn info() -> PluginInfo {
            PluginInfo { name: "length".into(), version: "0.0.1".into(), description: String::new(), metrics: vec![] }
        }

        fn score(config: &LengthConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
            Ok(Score::new(rollout.completion.len() as f64 * config.scale))
        }
    }

    fn group(completions: &[&str]) -> Vec<Rollout> {
        completions.iter().map(|c| Rollout { completion: (*c).to_owned(), ..Rollout::default() }).collect()
    }

    #[test]
    fn score_group_batch_hands_the_whole_batch_over() {
        let results = score_group_batch::<GroupSize>("{}", &group(&["a", "b", "c"]));
        let values: Vec<(f64, Option<f64>)> = results.iter().map(|r| r.as_ref().map(|s| (s.value, s.get("index"))).unwrap()).collect();
        assert_eq!(values, [(3.0, Some(0.0)), (3.0, Some(1.0)), (3.0, Some(2.0))]);
        // Blank config text means `{}`.
        assert_eq!(score_group_batch::<GroupSize>(" ", &group(&["a"])), [Ok(Score::new(1.0).metric("index", 0.0))]);
        assert!(score_group_batch::<GroupSize>("{}", &[]).is_empty());
    }

    #[test]
    fn score_group_batch_fails_every_rollout_on_a_bad_config_or_a_wrong_length() {
        let rollouts = group(&["a", "b"]);
        for (config, want) in [
            (r#"{"len": 0}"#, "len must be at least 1"),
            (r#"{"lenn": 1}"#, "invalid config: unknown field `lenn`"),
            (r#"{"len": 1}"#, "plugin \"group-size\" version 9.9.9: score_group returned 1 results for a group of 2 rollouts"),
            (r#"{"len": 3}"#, "score_group returned 3 results for a group of 2 rollouts"),
        ] {
            let results = score_group_batch::<GroupSize>(config, &rollouts);
            assert_eq!(results.len(), 2, "{config}");
            for r in results {
                match r {
                    Err(RolloutError::Failed(e)) => assert!(e.contains(want), "{config}: {e}"),
                    other => panic!("{config}: {other:?}"),
                }
            }
        }
        assert_eq!(check_group_config::<GroupSize>(r#"{"len": 0}"#).err().as_deref(), Some("len must be at least 1"));
        assert!(check_group_config::<GroupSize>(r#"{"len": 2}"#).is_ok());
    }

    #[test]
    fn a_reward_may_score_through_another_rewards_score_batch() {
        // The inner call caches its own config while the outer one is out of the cache; both
        // stay right across calls, and a bad inner config is reported by the inner reward.
        let outer = r#"{"inner": "{\"scale\": 2}"}"#;
        for _ in 0..2 {
            let values: Vec<f64> =
                score_group_batch::<GroupSize>(outer, &group(&["ab", "abc"])).into_iter().map(|r| r.unwrap().value).collect();
            assert_eq!(values, [4.0, 6.0]);
            assert_eq!(score_batch::<Length>(r#"{"scale": 3}"#, &group(&["ab"]))[0].as_ref().unwrap().value, 6.0);
        }
        let bad = score_group_batch::<GroupSize>(r#"{"inner": "{}"}"#, &group(&["x"]));
        assert!(matches!(&bad[0], Err(RolloutError::Failed(e)) if e.contains("missing field `scale`")), "{bad:?}");
    }
}
