//! Rewards built on demand from grader objects a caller sends: what OpenAI's
//! `POST /v1/fine_tuning/alpha/graders/run` does, for people who write their rewards as OpenAI
//! grader JSON and want to try one before they put it in a rewards.toml.
//!
//! A caller's grader is a config for one plugin (the `openai-grader` plugin unless `[graders]`
//! names another), checked by that plugin as a `[rewards.NAME]` table's config is, and run under
//! the limits, grants and failure policy of the config's `[graders]` table: the server's operator
//! decides which judge a model grader asks and which interpreter a `python` grader runs in, the
//! caller decides only the grader. Without a `[graders]` table there is no door.
//!
//! Built rewards are kept (at most [`MAX_CACHED_GRADERS`], by the grader's canonical JSON), so a
//! caller running one grader over a data set pays its config check once; a reload drops them.

use std::sync::Arc;

use crate::config::PluginParts;
use crate::{Grants, Limits, OnError, Plugin, Reward, sha256_hex};

/// The plugin a `[graders]` table runs when it names none: `openai-grader`.
pub const DEFAULT_GRADER_PLUGIN: &str = "openai-grader";
/// The name of every reward built from a caller's grader (in its provenance and in the server's
/// metrics). One fixed name: a caller's grader names must not become metric labels.
pub const GRADER_REWARD: &str = "graders/run";
/// Largest grader accepted, as compact JSON: 512 KiB (OpenAI caps a `python` grader's source at
/// 256 KB). With [`MAX_CACHED_GRADERS`] it bounds what the kept graders hold, 64 MiB.
pub const MAX_GRADER_BYTES: usize = 512 << 10;
/// Most built graders kept at once: 128. A caller sending a new grader each time only evicts.
pub const MAX_CACHED_GRADERS: usize = 128;

/// Builds (and keeps) rewards from grader objects, under one `[graders]` table's plugin,
/// limits, grants and failure policy.
pub struct Graders {
    plugin: Arc<Plugin>,
    limits: Limits,
    grants: Grants,
    on_error: OnError,
    /// Built rewards by the sha256 of their grader's canonical JSON.
    built: quick_cache::sync::Cache<String, Arc<Reward>>,
}

impl std::fmt::Debug for Graders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graders")
            .field("plugin", &self.plugin.info().name)
            .field("limits", &self.limits)
            .field("on_error", &self.on_error)
            .field("built", &self.built.len())
            .finish_non_exhaustive()
    }
}

impl Graders {
    /// Graders run by `plugin` under `limits` (already validated), `grants` and `on_error`.
    pub(crate) fn new(plugin: Arc<Plugin>, limits: Limits, grants: Grants, on_error: OnError) -> Graders {
        Graders { plugin, limits, grants, on_error, built: quick_cache::sync::Cache::new(MAX_CACHED_GRADERS) }
    }

    /// The reward that runs `grader`: kept from an earlier call with the same grader (the same
    /// JSON, whatever its key order), else built, which runs the plugin's config check (call it
    /// off the I/O threads; [`Graders::kept`] is the cheap look-up alone). An error says why the
    /// grader cannot run: too large, not an object, or refused by the plugin (its text names the
    /// field, as at config load).
    pub fn reward(&self, grader: &serde_json::Value) -> Result<Arc<Reward>, String> {
        let key = key(grader)?;
        self.built.get_or_insert_with(&key, || {
            PluginParts {
                name: GRADER_REWARD,
                description: Some(describe(grader)),
                plugin: self.plugin.clone(),
                config: grader.clone(),
                limits: self.limits.clone(),
                grants: self.grants.clone(),
                on_error: self.on_error,
                groups: false,
            }
            .build()
            .map(Arc::new)
        })
    }

    /// The reward built earlier for `grader`, if it is still kept; never runs a plugin.
    pub fn kept(&self, grader: &serde_json::Value) -> Option<Arc<Reward>> {
        self.built.get(&key(grader).ok()?)
    }

    /// The plugin every grader runs in (its file is watched for reloads like a reward's).
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// How many built graders are kept now.
    pub fn kept_count(&self) -> usize {
        self.built.len()
    }
}

/// The key a grader is kept under: the sha256 of its canonical JSON, once it is known to be an
/// object of at most [`MAX_GRADER_BYTES`].
fn key(grader: &serde_json::Value) -> Result<String, String> {
    if !grader.is_object() {
        return Err("the grader must be a JSON object (a grader's `type` and its fields)".to_owned());
    }
    // serde_json's maps are sorted (no `preserve_order`): this text is canonical.
    let text = grader.to_string();
    if text.len() > MAX_GRADER_BYTES {
        return Err(format!("the grader is {} bytes of JSON, more than the {MAX_GRADER_BYTES} allowed", text.len()));
    }
    Ok(sha256_hex(text.as_bytes()))
}

/// A grader's description: `TYPE grader "NAME"` (OpenAI's `name` defaults to the type).
fn describe(grader: &serde_json::Value) -> String {
    let field = |key: &str| grader.get(key).and_then(serde_json::Value::as_str);
    let kind = field("type").unwrap_or("untyped");
    format!("{kind} grader \"{}\" sent to graders/run", field("name").unwrap_or(kind))
}
