//! Prometheus metrics: names, labels and buckets in one place.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `reward_requests_total` | counter | `reward`, `transport`, `outcome` (`ok` or an error kind) |
//! | `reward_rollouts_total` | counter | `reward`, `status` |
//! | `reward_request_duration_seconds` | histogram | `reward`, `transport` |
//! | `reward_rollout_instructions` | histogram | `reward` |
//! | `reward_inflight_rollouts` | gauge | `budget` (`cpu`: rewards that ask no judge, `--max-inflight-rollouts`; `judge`: rewards that ask one, `--max-inflight-judge-rollouts`) |
//! | `reward_rejected_total` | counter | `reason` (`overloaded`, `shutting_down`, `too_many_rollouts`, ...) |
//! | `reward_cache_hits_total`, `reward_cache_misses_total` | counter | `reward` |
//! | `reward_reloads_total` | counter | `outcome` |
//! | `reward_work_unit_seconds` | histogram | `reward` (worker time per chunk; `_sum` is the reward's share of the workers) |
//! | `reward_queue_wait_seconds` | histogram | `reward` (a chunk's wait for a worker) |
//! | `reward_judge_calls_total` | counter | `judge`, `outcome` (`ok`, `cached`, `timeout`, `refused`, `unavailable`, `invalid_response`, `over_limit`) |
//! | `reward_judge_retries_total` | counter | `judge`, `after` (the error kind retried) |
//! | `reward_judge_tokens_total` | counter | `judge`, `kind` (`prompt`, `completion`, as the endpoint reported) |
//! | `reward_judge_wait_seconds` | histogram | `judge` (an attempt's wait for the rate limits and a free slot) |
//! | `reward_judge_request_seconds` | histogram | `judge` (one HTTP attempt) |
//!
//! The judge series come from the engine (`reward_engine::judge`); their `judge` label is a
//! `[judges.NAME]` of the config.
//!
//! The `reward` label only ever holds a loaded reward's name, or [`UNKNOWN_REWARD`] for requests
//! that named none: a caller cannot create series by inventing names. Histogram samples are folded
//! into their buckets by [`UPKEEP_INTERVAL`] upkeep whether or not anyone scrapes `/metrics`, so
//! the recorder's memory stays bounded on a server nobody watches.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::error::ScoreError;
use crate::engine::Scored;

/// Requests, by reward, transport and outcome.
pub const REQUESTS: &str = "reward_requests_total";
/// Scored rollouts, by reward and status.
pub const ROLLOUTS: &str = "reward_rollouts_total";
/// Request latency, by reward and transport.
pub const REQUEST_DURATION: &str = "reward_request_duration_seconds";
/// Instructions per rollout, by reward.
pub const INSTRUCTIONS: &str = "reward_rollout_instructions";
/// Rollouts admitted and not yet answered, by admission budget (`cpu`, `judge`).
pub const INFLIGHT: &str = "reward_inflight_rollouts";
/// Requests refused before scoring, by reason.
pub const REJECTED: &str = "reward_rejected_total";
/// Score-cache hits, by reward.
pub const CACHE_HITS: &str = "reward_cache_hits_total";
/// Score-cache misses, by reward.
pub const CACHE_MISSES: &str = "reward_cache_misses_total";
/// Config reloads, by outcome.
pub const RELOADS: &str = "reward_reloads_total";

/// Worker time per unit of work (a chunk of a request), by reward; its `_sum` is the reward's total.
pub const WORK_UNIT: &str = "reward_work_unit_seconds";
/// How long a unit of work waited for a worker, by reward.
pub const QUEUE_WAIT: &str = "reward_queue_wait_seconds";

/// The `reward` label of a request whose reward is not loaded: one series for every unknown name.
pub const UNKNOWN_REWARD: &str = "(unknown)";
/// How often histogram samples are folded into buckets when nobody scrapes: 5 s. Between two
/// upkeeps the recorder holds the raw samples (8 bytes each).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the process-wide Prometheus recorder (once), starts its upkeep thread, and returns
/// the handle that renders it.
pub fn install() -> PrometheusHandle {
    install_with_upkeep(UPKEEP_INTERVAL)
}

/// [`install`] with another upkeep interval (tests). The first call decides.
pub fn install_with_upkeep(interval: Duration) -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = recorder();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("reward-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(interval);
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawning the metrics upkeep thread");
            handle
        })
        .clone()
}

/// Buckets of the latency histograms, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The recorder with the server's buckets, installed as the global one.
fn recorder() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(QUEUE_WAIT.into()), &LATENCY_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(WORK_UNIT.into()), &LATENCY_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(crate::engine::judge::METRIC_WAIT.into()), &LATENCY_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(crate::engine::judge::METRIC_REQUEST.into()), &LATENCY_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(INSTRUCTIONS.into()), &[1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]))
        .expect("valid buckets")
        .install_recorder()
        .expect("no other metrics recorder is installed")
}

/// Records a request's outcome and duration. `error` is why it failed, if it did; a request for a
/// reward that is not loaded is counted under [`UNKNOWN_REWARD`], never under the name it gave.
pub fn request(reward: &str, transport: &'static str, error: Option<&ScoreError>, elapsed: Duration) {
    let reward = if matches!(error, Some(ScoreError::UnknownReward(_))) { UNKNOWN_REWARD } else { reward };
    let outcome = error.map_or("ok", ScoreError::kind);
    metrics::counter!(REQUESTS, "reward" => reward.to_owned(), "transport" => transport, "outcome" => outcome).increment(1);
    metrics::histogram!(REQUEST_DURATION, "reward" => reward.to_owned(), "transport" => transport).record(elapsed.as_secs_f64());
}

/// Records scored rollouts: statuses and instruction counts (cache hits excluded from the latter).
pub fn scored<'a>(reward: &str, scored: impl IntoIterator<Item = &'a Scored>) {
    for s in scored {
        metrics::counter!(ROLLOUTS, "reward" => reward.to_owned(), "status" => s.status.as_str()).increment(1);
        if !s.cached {
            metrics::histogram!(INSTRUCTIONS, "reward" => reward.to_owned()).record(s.instructions as f64);
        }
    }
}

/// Records a refused request.
pub fn rejected(reason: &'static str) {
    metrics::counter!(REJECTED, "reason" => reason).increment(1);
}

/// Records cache hits and misses for a request.
pub fn cache(reward: &str, hits: usize, misses: usize) {
    if hits > 0 {
        metrics::counter!(CACHE_HITS, "reward" => reward.to_owned()).increment(hits as u64);
    }
    if misses > 0 {
        metrics::counter!(CACHE_MISSES, "reward" => reward.to_owned()).increment(misses as u64);
    }
}

/// Sets the in-flight gauge of one admission budget (`budget` is its label: `cpu` or `judge`).
pub fn inflight(budget: &'static str, n: usize) {
    metrics::gauge!(INFLIGHT, "budget" => budget).set(n as f64);
}

/// Records a config reload.
pub fn reload(ok: bool) {
    metrics::counter!(RELOADS, "outcome" => if ok { "ok" } else { "error" }).increment(1);
}

/// Records the worker time one unit of a reward's work took.
pub fn worker_time(reward: &str, spent: Duration) {
    metrics::histogram!(WORK_UNIT, "reward" => reward.to_owned()).record(spent.as_secs_f64());
}

/// Records how long a unit of a reward's work waited for a worker.
pub fn queue_wait(reward: &str, waited: Duration) {
    metrics::histogram!(QUEUE_WAIT, "reward" => reward.to_owned()).record(waited.as_secs_f64());
}
