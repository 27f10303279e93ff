//! The `judge` capability: a reward granted a judge (`judge = "NAME"`, the endpoint in
//! `[judges.NAME]`) asks a model for chat completions through the host
//! (`reward-plugins/wit/judge.wit`).
//!
//! A [`Judge`] is one endpoint and model, shared by every reward granted it: its HTTP client
//! (pooled connections), its API key (read at load, never logged), its limits (requests and tokens
//! per minute over a sliding window, calls in flight) and its answer cache. Calls run on one
//! process-wide I/O runtime ([`JUDGE_IO_THREADS`] threads): the plugin's thread blocks on the
//! answer, and the limits' waits and the retries' back-offs are timers there, so a thousand
//! waiting calls cost a thousand parked threads of the server's judge pool, never CPU workers
//! (the server runs rewards that grant a judge on their own pool).
//!
//! One call: the cache first (keyed by endpoint, model, messages and sampling; concurrent askers of
//! the same question wait for one model call), then the limits, then attempts: a 429, a 5xx, a
//! time-out or a refused connection is retried up to `max_retries` times after an exponential
//! back-off with jitter, or after the `Retry-After` the endpoint asked for when it is longer (one
//! past `max_retry_wait_ms` fails the call instead of holding it). A 4xx, an answer that is not a
//! chat completion, and a refusal are final.

mod http;
pub(crate) mod link;
mod rate;
mod spec;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

pub use http::MAX_RESPONSE_BYTES;
pub use rate::WINDOW as RATE_WINDOW;
pub use spec::*;

/// The versioned import a plugin asks a judge through (`reward:plugin/judge@0.1.x`).
pub const JUDGE_INTERFACE: &str = "reward:plugin/judge";
/// Threads of the process-wide runtime judge calls run on: 2. They only move bytes and wake
/// timers; the waiting is done by the plugin threads blocked on answers.
pub const JUDGE_IO_THREADS: usize = 2;
/// Bytes of answer text a judge's cache holds at most: 64 MiB.
pub const CACHE_BYTES: u64 = 64 << 20;
/// Default most judge calls one rollout may make: 16.
pub const DEFAULT_MAX_CALLS_PER_ROLLOUT: u32 = 16;
/// Prometheus: judge calls, by `judge` and `outcome` (`ok`, `cached`, or an error kind).
pub const METRIC_CALLS: &str = "reward_judge_calls_total";
/// Prometheus: retries, by `judge` and `after` (the error kind retried).
pub const METRIC_RETRIES: &str = "reward_judge_retries_total";
/// Prometheus: tokens the endpoint reported, by `judge` and `kind` (`prompt`, `completion`).
pub const METRIC_TOKENS: &str = "reward_judge_tokens_total";
/// Prometheus: time an attempt waited for the rate limits and a free slot, by `judge`.
pub const METRIC_WAIT: &str = "reward_judge_wait_seconds";
/// Prometheus: time of one HTTP attempt, by `judge`.
pub const METRIC_REQUEST: &str = "reward_judge_request_seconds";
/// First back-off before a retry: 500 ms, doubled each retry up to [`MAX_BACKOFF`], with jitter.
const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Longest back-off (before jitter): 20 s.
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// One turn of the conversation sent to the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

/// Sampling parameters; unset ones take the judge's defaults (temperature 0, its seed and
/// `max_tokens`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sampling {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    pub top_p: Option<f64>,
    /// Most tokens of the answer.
    pub max_tokens: Option<u32>,
    /// The sampling seed.
    pub seed: Option<u64>,
}

/// The model's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The first choice's text.
    pub text: String,
    /// The model id the endpoint reported.
    pub model: String,
    /// `stop`, `length`, ...
    pub finish_reason: String,
    /// Prompt tokens reported.
    pub prompt_tokens: u32,
    /// Answer tokens reported.
    pub completion_tokens: u32,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Embeddings from the judge's `embedding_model`, one vector per text asked, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Embeddings {
    /// The vectors.
    pub vectors: Vec<Vec<f32>>,
    /// The model id the endpoint reported.
    pub model: String,
    /// Input tokens reported.
    pub prompt_tokens: u32,
    /// Whether they came from the cache.
    pub cached: bool,
}

/// What a judge's calls answer: cached, weighed and counted the same way.
trait Answer: Clone + Send + Sync + 'static {
    /// (prompt, completion) tokens reported.
    fn tokens(&self) -> (u32, u32);
    /// Bytes the cache holds for it.
    fn weight(&self) -> u64;
    /// Marks it as answered from the cache.
    fn set_cached(&mut self, cached: bool);
    /// Whether it was.
    fn cached(&self) -> bool;
}

impl Answer for Completion {
    fn tokens(&self) -> (u32, u32) {
        (self.prompt_tokens, self.completion_tokens)
    }
    fn weight(&self) -> u64 {
        (self.text.len() + self.model.len() + 64) as u64
    }
    fn set_cached(&mut self, cached: bool) {
        self.cached = cached;
    }
    fn cached(&self) -> bool {
        self.cached
    }
}

impl Answer for Embeddings {
    fn tokens(&self) -> (u32, u32) {
        (self.prompt_tokens, 0)
    }
    fn weight(&self) -> u64 {
        (self.vectors.iter().map(|v| v.len() * 4 + 24).sum::<usize>() + self.model.len() + 64) as u64
    }
    fn set_cached(&mut self, cached: bool) {
        self.cached = cached;
    }
    fn cached(&self) -> bool {
        self.cached
    }
}

/// Why a call has no answer (the WIT's `judge-error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// The reward grants no judge.
    #[error("{0}")]
    NotGranted(String),
    /// The model declined to answer.
    #[error("{0}")]
    Refused(String),
    /// Every attempt timed out.
    #[error("{0}")]
    Timeout(String),
    /// The endpoint was unreachable, or answered 429 / 5xx every time.
    #[error("{0}")]
    Unavailable(String),
    /// The endpoint answered something that is not a chat completion.
    #[error("{0}")]
    InvalidResponse(String),
    /// The call is over the grant's limits.
    #[error("{0}")]
    OverLimit(String),
}

impl JudgeError {
    /// A short name for metrics: `refused`, `timeout`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            JudgeError::NotGranted(_) => "not_granted",
            JudgeError::Refused(_) => "refused",
            JudgeError::Timeout(_) => "timeout",
            JudgeError::Unavailable(_) => "unavailable",
            JudgeError::InvalidResponse(_) => "invalid_response",
            JudgeError::OverLimit(_) => "over_limit",
        }
    }

    fn map(self, f: impl FnOnce(String) -> String) -> JudgeError {
        match self {
            JudgeError::NotGranted(m) => JudgeError::NotGranted(f(m)),
            JudgeError::Refused(m) => JudgeError::Refused(f(m)),
            JudgeError::Timeout(m) => JudgeError::Timeout(f(m)),
            JudgeError::Unavailable(m) => JudgeError::Unavailable(f(m)),
            JudgeError::InvalidResponse(m) => JudgeError::InvalidResponse(f(m)),
            JudgeError::OverLimit(m) => JudgeError::OverLimit(f(m)),
        }
    }
}

/// One endpoint and model, shared by every reward granted it. `Send + Sync`.
pub struct Judge {
    name: String,
    spec: JudgeSpec,
    endpoint: String,
    /// The embeddings endpoint (`{url}/embeddings`).
    embeddings_endpoint: String,
    key: Option<ApiKey>,
    client: reqwest::Client,
    limits: rate::RateLimits,
    in_flight: tokio::sync::Semaphore,
    cache: Option<Cache<Completion>>,
    embeddings_cache: Option<Cache<Embeddings>>,
}

/// A judge's cache of one kind of answer, bounded in entries and in [`CACHE_BYTES`].
type Cache<A> = quick_cache::sync::Cache<u128, A, AnswerWeight>;

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge").field("name", &self.name).field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// Weighs a cached answer by its bytes, so the cache stays under [`CACHE_BYTES`].
#[derive(Clone, Copy, Debug)]
struct AnswerWeight;

impl<A: Answer> quick_cache::Weighter<u128, A> for AnswerWeight {
    fn weight(&self, _key: &u128, answer: &A) -> u64 {
        answer.weight()
    }
}

/// A cache of `entries` answers (none for 0).
fn cache<A: Answer>(entries: usize) -> Option<Cache<A>> {
    (entries > 0).then(|| Cache::with_weighter(entries, CACHE_BYTES, AnswerWeight))
}

/// The process-wide runtime judge calls run on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(JUDGE_IO_THREADS)
            .thread_name("reward-judge-io")
            .enable_all()
            .build()
            .expect("starting the judge I/O runtime")
    })
}

impl Judge {
    /// The judge of table `[judges.NAME]`; the key file, if any, is relative to `base`. Fails
    /// naming the field (a missing key variable names the variable, never a key).
    pub fn new(name: &str, spec: JudgeSpec, base: &Path) -> Result<Judge> {
        spec.validate()?;
        let key = spec.api_key(base)?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(spec.max_concurrent as usize)
            .connect_timeout(spec.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("reward-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the judge's HTTP client")?;
        Ok(Judge {
            name: name.to_owned(),
            endpoint: spec.endpoint(),
            embeddings_endpoint: format!("{}/embeddings", spec.url.trim_end_matches('/')),
            cache: cache(spec.cache_entries),
            embeddings_cache: cache(spec.cache_entries),
            limits: rate::RateLimits::new(spec.requests_per_minute, spec.tokens_per_minute),
            in_flight: tokio::sync::Semaphore::new(spec.max_concurrent as usize),
            spec,
            key,
            client,
        })
    }

    /// The judge's name in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its table.
    pub fn spec(&self) -> &JudgeSpec {
        &self.spec
    }

    /// Asks for one completion and waits for it on the calling thread (a plugin's): the work runs
    /// on the judge I/O runtime. Callable from any thread that is not itself running async tasks.
    pub fn complete_blocking(self: &Arc<Self>, messages: Vec<ChatMessage>, sampling: Sampling) -> Result<Completion, JudgeError> {
        self.blocking(|judge| async move { judge.complete(messages, sampling).await })
    }

    /// [`Judge::embed`], waited for on the calling thread like [`Judge::complete_blocking`].
    pub fn embed_blocking(self: &Arc<Self>, texts: Vec<String>) -> Result<Embeddings, JudgeError> {
        self.blocking(|judge| async move { judge.embed(texts).await })
    }

    /// Runs `call` on the judge I/O runtime and waits for its answer.
    fn blocking<A, F>(self: &Arc<Self>, call: impl FnOnce(Arc<Judge>) -> F) -> Result<A, JudgeError>
    where
        A: Send + 'static,
        F: std::future::Future<Output = Result<A, JudgeError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let task = call(self.clone());
        runtime().spawn(async move {
            let _ = tx.send(task.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(JudgeError::Unavailable(format!("judge `{}`: the call's task ended without an answer", self.name))))
    }

    /// Asks for one completion: the cache, then the limits and the attempts (see the module doc).
    /// Every error names the judge.
    pub async fn complete(&self, messages: Vec<ChatMessage>, sampling: Sampling) -> Result<Completion, JudgeError> {
        let request = Request::new(&self.spec, messages, sampling);
        let body = serde_json::to_vec(&request).expect("a request serialises");
        self.ask(self.cache.as_ref(), &self.endpoint, &body, request.estimate(), &self.spec.model, http::parse).await
    }

    /// Embeddings of `texts` from the judge's `embedding_model` (the cache, the limits and the
    /// attempts as for a completion). A judge without an `embedding_model` answers `not-granted`.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Embeddings, JudgeError> {
        let Some(model) = &self.spec.embedding_model else {
            return Err(JudgeError::NotGranted(format!(
                "judge `{}` has no `embedding_model`: set one in [judges.{}] to ask for embeddings",
                self.name, self.name
            )));
        };
        let n = texts.len();
        let estimate = texts.iter().map(|t| t.len().div_ceil(4) as u64 + 1).sum();
        let body = serde_json::to_vec(&serde_json::json!({ "model": model, "input": texts })).expect("a request serialises");
        let answer =
            self.ask(self.embeddings_cache.as_ref(), &self.embeddings_endpoint, &body, estimate, model, http::parse_embeddings).await?;
        if answer.vectors.len() != n {
            return Err(JudgeError::InvalidResponse(format!(
                "judge `{}` ({model} at {}): answered {} embeddings for {n} texts",
                self.name,
                self.spec.url,
                answer.vectors.len()
            )));
        }
        Ok(answer)
    }

    /// One call: the cache (concurrent askers of the same body wait for one call), then the model;
    /// counted in Prometheus; every error names the judge and `model`.
    async fn ask<A: Answer>(
        &self,
        cache: Option<&Cache<A>>,
        endpoint: &str,
        body: &[u8],
        estimate: u64,
        model: &str,
        parse: fn(&[u8]) -> Result<A, JudgeError>,
    ) -> Result<A, JudgeError> {
        let answer = match cache {
            None => self.call(endpoint, body, estimate, parse).await,
            Some(cache) => {
                let key = xxhash_rust::xxh3::xxh3_128(&[endpoint.as_bytes(), b"\0", body].concat());
                let mut asked = false;
                let answer = cache
                    .get_or_insert_async(&key, async {
                        asked = true;
                        self.call(endpoint, body, estimate, parse).await
                    })
                    .await;
                answer.map(|mut a| {
                    a.set_cached(!asked);
                    a
                })
            }
        };
        let outcome = match &answer {
            Ok(a) if a.cached() => "cached",
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        metrics::counter!(METRIC_CALLS, "judge" => self.name.clone(), "outcome" => outcome).increment(1);
        answer.map_err(|e| e.map(|m| format!("judge `{}` ({model} at {}): {m}", self.name, self.spec.url)))
    }

    /// The model call behind a cache miss: the limits, then attempts with retries.
    async fn call<A: Answer>(
        &self,
        endpoint: &str,
        body: &[u8],
        estimate: u64,
        parse: fn(&[u8]) -> Result<A, JudgeError>,
    ) -> Result<A, JudgeError> {
        if !self.limits.fits(estimate) {
            return Err(JudgeError::OverLimit(format!(
                "the call needs about {estimate} tokens (prompt estimate plus max_tokens), more than tokens_per_minute ({})",
                self.spec.tokens_per_minute.unwrap_or_default()
            )));
        }
        let mut retries = 0;
        loop {
            let waiting = Instant::now();
            let ticket = self.limits.take(estimate).await;
            let permit = self.in_flight.acquire().await.expect("the semaphore is never closed");
            metrics::histogram!(METRIC_WAIT, "judge" => self.name.clone()).record(waiting.elapsed().as_secs_f64());
            let started = Instant::now();
            let attempt =
                http::attempt(&self.client, endpoint, self.key.as_ref().map(ApiKey::expose), body, self.spec.timeout, parse).await;
            drop(permit);
            metrics::histogram!(METRIC_REQUEST, "judge" => self.name.clone()).record(started.elapsed().as_secs_f64());
            let failed = match attempt {
                Ok(answer) => {
                    let (prompt, completion) = answer.tokens();
                    self.limits.settle(ticket, u64::from(prompt) + u64::from(completion));
                    metrics::counter!(METRIC_TOKENS, "judge" => self.name.clone(), "kind" => "prompt").increment(prompt.into());
                    metrics::counter!(METRIC_TOKENS, "judge" => self.name.clone(), "kind" => "completion").increment(completion.into());
                    return Ok(answer);
                }
                Err(http::Failed::Final(e)) => return Err(e),
                Err(http::Failed::Retry(e, asked)) => (e, asked),
            };
            let (error, asked) = failed;
            if retries >= self.spec.max_retries {
                let attempts = retries + 1;
                return Err(error.map(|m| format!("{m} (after {attempts} attempt{})", if attempts == 1 { "" } else { "s" })));
            }
            let wait = backoff(retries).max(asked.unwrap_or_default());
            if wait > self.spec.max_retry_wait {
                return Err(error.map(|m| {
                    format!(
                        "{m}; it asked to retry after {} ms, more than max_retry_wait_ms ({} ms)",
                        wait.as_millis(),
                        self.spec.max_retry_wait.as_millis()
                    )
                }));
            }
            metrics::counter!(METRIC_RETRIES, "judge" => self.name.clone(), "after" => error.kind()).increment(1);
            tracing::debug!(judge = %self.name, retry = retries + 1, wait_ms = wait.as_millis() as u64, error = %error, "judge call retried");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }
}

/// The back-off before retry `n + 1`: [`BASE_BACKOFF`] doubled `n` times, at most [`MAX_BACKOFF`],
/// then jittered to between half and all of it, so that calls that failed together do not retry
/// together.
fn backoff(n: u32) -> Duration {
    let full = BASE_BACKOFF.saturating_mul(1u32 << n.min(16)).min(MAX_BACKOFF);
    full.mul_f64(0.5 + 0.5 * jitter())
}

/// A number in [0, 1) that differs from call to call (not a score input: only spreads retries).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The body sent: the judge's model, the messages, and the sampling with the defaults filled in.
#[derive(Debug, Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: Vec<ChatMessage>,
    temperature: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    max_tokens: u32,
    seed: u64,
}

impl<'a> Request<'a> {
    fn new(spec: &'a JudgeSpec, messages: Vec<ChatMessage>, sampling: Sampling) -> Request<'a> {
        Request {
            model: &spec.model,
            messages,
            temperature: sampling.temperature.unwrap_or(0.0),
            top_p: sampling.top_p,
            max_tokens: sampling.max_tokens.unwrap_or(spec.max_tokens),
            seed: sampling.seed.unwrap_or(spec.seed),
        }
    }

    /// Tokens charged to the limits before the answer reports them: a byte-based estimate of the
    /// prompt (4 bytes a token, plus a few per message) and the whole `max_tokens`.
    fn estimate(&self) -> u64 {
        let prompt: usize = self.messages.iter().map(|m| (m.content.len() + m.role.len()).div_ceil(4) + 4).sum();
        prompt as u64 + u64::from(self.max_tokens)
    }
}

/// A judge as one reward grants it.
#[derive(Clone, Debug)]
pub struct JudgeGrant {
    /// The judge.
    pub judge: Arc<Judge>,
    /// Most calls one rollout may make.
    pub max_calls_per_rollout: u32,
}

/// What one rollout's judge calls cost: reported as its `judge_*` metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JudgeUsage {
    /// Calls made (cached ones included).
    pub calls: u32,
    /// Calls answered from the cache.
    pub cache_hits: u32,
    /// Prompt tokens of the calls that reached the model.
    pub prompt_tokens: u64,
    /// Answer tokens of the calls that reached the model.
    pub completion_tokens: u64,
    /// Time waited for answers.
    pub latency: Duration,
    /// The first failed call's error: the rollout fails with it.
    pub failure: Option<JudgeError>,
}

/// The names of the metrics the host adds to a rollout that asked a judge
/// ([`JudgeUsage::metrics`], in that order).
pub const USAGE_METRICS: [&str; 5] =
    ["judge_calls", "judge_cache_hits", "judge_prompt_tokens", "judge_completion_tokens", "judge_latency_ms"];

impl JudgeUsage {
    /// The `judge_*` metrics of a rollout that made calls (diagnostic, never part of the reward):
    /// [`USAGE_METRICS`], each with its value.
    pub fn metrics(&self) -> Vec<crate::Metric> {
        let values = [
            self.calls.into(),
            self.cache_hits.into(),
            self.prompt_tokens as f64,
            self.completion_tokens as f64,
            self.latency.as_secs_f64() * 1000.0,
        ];
        USAGE_METRICS
            .iter()
            .zip(values)
            .map(|(name, value)| crate::Metric { name: (*name).into(), value, kind: crate::MetricKind::Metric })
            .collect()
    }

    /// Counts one call's answer (a completion, embeddings, or an error).
    fn record<A: Answer>(&mut self, answer: &Result<A, JudgeError>, latency: Duration) {
        self.calls += 1;
        self.latency += latency;
        match answer {
            Ok(a) if a.cached() => self.cache_hits += 1,
            Ok(a) => {
                let (prompt, completion) = a.tokens();
                self.prompt_tokens += u64::from(prompt);
                self.completion_tokens += u64::from(completion);
            }
            Err(e) => self.fail(e),
        }
    }

    /// Counts a call that was refused before it was made (no grant).
    pub fn refused(&mut self, error: &JudgeError) {
        self.calls += 1;
        self.fail(error);
    }

    fn fail(&mut self, error: &JudgeError) {
        self.failure.get_or_insert_with(|| error.clone());
    }
}

impl JudgeGrant {
    /// A completion on behalf of a rollout whose calls so far are `usage` (see [`JudgeGrant::counted`]).
    pub fn complete(&self, usage: &mut JudgeUsage, messages: Vec<ChatMessage>, sampling: Sampling) -> Result<Completion, JudgeError> {
        self.counted(usage, || self.judge.complete_blocking(messages, sampling))
    }

    /// Embeddings on behalf of a rollout whose calls so far are `usage` (see [`JudgeGrant::counted`]).
    pub fn embed(&self, usage: &mut JudgeUsage, texts: Vec<String>) -> Result<Embeddings, JudgeError> {
        self.counted(usage, || self.judge.embed_blocking(texts))
    }

    /// Makes one call unless the rollout already made `max_calls_per_rollout`; counted either way.
    fn counted<A: Answer>(&self, usage: &mut JudgeUsage, call: impl FnOnce() -> Result<A, JudgeError>) -> Result<A, JudgeError> {
        let started = Instant::now();
        let answer = if usage.calls >= self.max_calls_per_rollout {
            Err(JudgeError::OverLimit(format!(
                "judge `{}`: the rollout already made {} calls, max_calls_per_rollout",
                self.judge.name, self.max_calls_per_rollout
            )))
        } else {
            call()
        };
        usage.record(&answer, started.elapsed());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for n in 0..6 {
            let full = BASE_BACKOFF * (1 << n);
            let b = backoff(n);
            assert!(b >= full / 2 && b <= full, "retry {n}: {b:?} not within [{:?}, {full:?}]", full / 2);
        }
        assert!(backoff(30) <= MAX_BACKOFF);
        let spread: std::collections::HashSet<u128> = (0..20).map(|_| backoff(3).as_nanos()).collect();
        assert!(spread.len() > 1, "jitter spreads retries");
    }

    #[test]
    fn unset_sampling_is_temperature_zero_with_the_judges_seed() {
        let spec: JudgeSpec = toml::from_str("url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\nseed = 7\nmax_tokens = 64").unwrap();
        let r = Request::new(&spec, vec![ChatMessage { role: "user".into(), content: "x".repeat(40) }], Sampling::default());
        let body: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(40)}], "temperature": 0.0, "max_tokens": 64, "seed": 7})
        );
        assert_eq!(r.estimate(), (40 + 4usize).div_ceil(4) as u64 + 4 + 64);
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        // SAFETY: tests of this crate do not read this variable concurrently.
        unsafe { std::env::set_var("REWARD_TEST_JUDGE_KEY", "sk-secret-123") };
        let spec: JudgeSpec =
            toml::from_str("url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\napi_key_env = \"REWARD_TEST_JUDGE_KEY\"").unwrap();
        let judge = Judge::new("j", spec, Path::new(".")).unwrap();
        assert_eq!(judge.key.as_ref().unwrap().expose(), "sk-secret-123");
        let shown = format!("{judge:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        let missing: JudgeSpec =
            toml::from_str("url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\napi_key_env = \"REWARD_TEST_NO_SUCH_VAR\"").unwrap();
        let err = format!("{:#}", Judge::new("j", missing, Path::new(".")).unwrap_err());
        assert!(err.contains("REWARD_TEST_NO_SUCH_VAR is not set"), "{err}");
    }

    #[test]
    fn bad_tables_name_the_field() {
        let bad = |extra: &str| {
            let spec: JudgeSpec = toml::from_str(&format!("url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n{extra}")).unwrap();
            spec.validate().unwrap_err().to_string()
        };
        assert!(bad("max_concurrent = 0").contains("`max_concurrent`"));
        assert!(bad("requests_per_minute = 0").contains("`requests_per_minute`"));
        assert!(bad("tokens_per_minute = 100\nmax_tokens = 200").contains("no call could ever fit"));
        let url: JudgeSpec = toml::from_str("url = \"127.0.0.1:8080\"\nmodel = \"m\"").unwrap();
        assert!(url.validate().unwrap_err().to_string().contains("`url`"));
    }
}
