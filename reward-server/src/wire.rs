//! The JSON form of a scored rollout, shared by the offline JSONL output and the native HTTP API.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{Provenance, Scored, Status};

/// How a [`Scored`] is written as JSON.
///
/// ```json
/// {"id": "a1", "score": 1.0, "status": "OK", "metrics": {"format_ok": 1.0},
///  "reason": "...", "instructions": 18235, "latency_us": 14,
///  "provenance": {"reward": "...", "plugin_sha256": "...", "config_hash": "..."}}
/// ```
/// A reward that asks a judge also has `"judge_models": [...]` in `provenance`. `score` is `null` when the rollout failed under the `abstain` or `fail` policy; `error` is
/// present only when `status` is not `OK`, `reason` only when the plugin gave one.
#[derive(Debug, Serialize)]
pub struct ScoredJson<'a> {
    /// The caller's id.
    pub id: &'a str,
    /// The reward, or null.
    pub score: Option<f64>,
    /// `OK`, `INVALID_INPUT`, `PLUGIN_ERROR`, `TIMEOUT`, `OUT_OF_MEMORY`, `INTERNAL`, `JUDGE_ERROR`.
    pub status: Status,
    /// Metric name to value.
    pub metrics: BTreeMap<&'a str, f64>,
    /// The plugin's explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    /// Fuel consumed.
    pub instructions: u64,
    /// Scoring wall time in microseconds.
    pub latency_us: u64,
    /// Reward, plugin and config hashes.
    pub provenance: &'a Provenance,
    /// Present (and true) when served from the score cache.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

impl<'a> From<&'a Scored> for ScoredJson<'a> {
    fn from(s: &'a Scored) -> Self {
        ScoredJson {
            id: &s.id,
            score: s.score,
            status: s.status,
            metrics: s.metrics.iter().map(|m| (m.name.as_str(), m.value)).collect(),
            reason: s.reason.as_deref(),
            error: s.error.as_deref(),
            instructions: s.instructions,
            latency_us: u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX),
            provenance: &s.provenance,
            cached: s.cached,
        }
    }
}
