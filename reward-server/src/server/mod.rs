//! The network server: gRPC (tonic) and HTTP (axum) in front of one [`Scorer`].
//!
//! Start-up loads every reward (failing fast on a bad config), binds both listeners, and only then
//! reports serving (gRPC health, `/readyz`). SIGTERM or SIGINT starts a drain: new work is refused
//! with `UNAVAILABLE`/503, in-flight work finishes and is answered, then the listeners close.
//! The rewards reload without a restart when the config or a plugin file changes, or on
//! `POST /v1/admin/reload`: new requests use the new rewards, in-flight ones finish on the old.

mod auth;
mod cache;
mod conn;
mod error;
mod fair;
pub(crate) mod grpc;
pub(crate) mod grpc_count;
pub mod http;
pub mod metrics;
/// The Nova reward-Lambda contract (the engine's: the Lambda bridge writes the same answers).
pub use crate::engine::nova;
pub(crate) mod nemo_gym;
pub(crate) mod openai_graders;
pub(crate) mod openrlhf;
mod scorer;
pub(crate) mod slime;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::{Mutex, watch};

pub use crate::engine::Item;
pub use cache::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES, ScoreCache};
pub use conn::{
    ConnectionLimits, DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS,
};
pub use error::ScoreError;
pub use scorer::{
    Budget, DEFAULT_JUDGE_WORKERS, DEFAULT_MAX_INFLIGHT_JUDGE_ROLLOUTS, DEFAULT_MAX_INFLIGHT_ROLLOUTS, DEFAULT_MAX_ROLLOUTS_PER_REQUEST,
    Deadline, Scorer, ScorerOptions,
};

use crate::config::Rewards;
use crate::engine::graders::Graders;
use crate::engine::{PluginHost, Provenance, Reward, RewardKind};

/// Default gRPC address: loopback only.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";
/// Default HTTP address: loopback only.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Default request body cap: 64 MiB (a GRPO step of 512 x 16 rollouts of 2 KB is 16 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 << 20;
/// Default bound on the request bytes being read or held at once, over all HTTP requests:
/// 256 MiB (four bodies of the largest size). A body that does not fit now is refused with 429
/// without being kept (its bytes are read to nothing), never queued.
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: usize = 4 * DEFAULT_MAX_BODY_BYTES;
/// Default longest wait to hand a `ScoreStream` answer to a client that does not read: 10 s. Past
/// it the client is taken to have stopped reading: its stream's work is dropped and its
/// admission released, so a stalled client cannot keep every other caller out.
pub const DEFAULT_STREAM_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Default server-side request timeout: 60 s; a caller's shorter deadline wins.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default longest wait for in-flight work on shutdown: 30 s.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connections may take to close once the drain is over (every accepted request
/// answered, or `--drain-timeout-ms` passed): 1 s. Then the server exits with them open.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Default interval between checks of the config and plugin files for changes: 2 s.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Everything `serve` needs to know.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The rewards config file.
    pub config: PathBuf,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Scorer sizes.
    pub scorer: ScorerOptions,
    /// Request body cap in bytes (HTTP bodies and gRPC messages).
    pub max_body_bytes: usize,
    /// Bound on the HTTP request bytes read or held at once, over all requests.
    pub max_inflight_body_bytes: usize,
    /// Server-side cap on any request's time.
    pub request_timeout: Duration,
    /// Longest wait for in-flight work on shutdown.
    pub drain_timeout: Duration,
    /// Longest wait to hand a `ScoreStream` answer to a client before it counts as stalled.
    pub stream_send_timeout: Duration,
    /// Connection caps and timeouts of both listeners.
    pub connections: ConnectionLimits,
    /// How often to check files for changes; `None` disables watching.
    pub watch_interval: Option<Duration>,
    /// Where the bearer token required on scoring and admin calls comes from.
    pub auth: TokenSource,
    /// TLS for both listeners, when set.
    pub tls: Option<tls::TlsFiles>,
    /// The reward NeMo Gym's `/verify` at the root scores, when set.
    pub nemo_gym_reward: Option<String>,
}

pub use auth::TokenSource;
pub use tls::TlsFiles;

impl ServeOptions {
    /// Checks every limit of the server at once, naming the flag of the first that cannot work:
    /// the scorer's sizes ([`ScorerOptions::validate`]), the connection caps and timeouts
    /// ([`ConnectionLimits::validate`]), the body caps against each other, and the timeouts
    /// positive. [`serve`] and [`AppState::from_rewards`] call it before anything starts.
    pub fn validate(&self) -> Result<()> {
        self.scorer.validate()?;
        self.connections.validate()?;
        anyhow::ensure!(self.max_body_bytes > 0, "--max-body-bytes must be at least 1");
        anyhow::ensure!(
            self.max_inflight_body_bytes >= self.max_body_bytes,
            "max_inflight_body_bytes ({}) must be at least max_body_bytes ({}): a body of the largest size could never be read",
            self.max_inflight_body_bytes,
            self.max_body_bytes
        );
        for (value, flag) in [(self.request_timeout, "--request-timeout-ms"), (self.stream_send_timeout, "--stream-send-timeout-ms")] {
            anyhow::ensure!(!value.is_zero(), "{flag} must be at least 1");
        }
        Ok(())
    }

    /// The options `reward-server serve --config CONFIG` runs with when no other flag is given:
    /// loopback addresses, every limit at its documented default, no token, no TLS, no watching.
    /// (The command line sets each from its flag; this is the base for embedding and tests.)
    pub fn new(config: PathBuf) -> ServeOptions {
        ServeOptions {
            config,
            grpc_addr: DEFAULT_GRPC_ADDR.parse().expect("a valid address"),
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("a valid address"),
            scorer: ScorerOptions::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_inflight_body_bytes: DEFAULT_MAX_INFLIGHT_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            stream_send_timeout: DEFAULT_STREAM_SEND_TIMEOUT,
            connections: ConnectionLimits::default(),
            watch_interval: None,
            auth: TokenSource::None,
            tls: None,
            nemo_gym_reward: None,
        }
    }
}

/// State shared by both transports.
pub struct AppState {
    /// The scorer.
    pub scorer: Arc<Scorer>,
    /// The options the server runs with.
    pub options: ServeOptions,
    /// The token check.
    pub auth: auth::Auth,
    /// The plugin host (for reloads).
    host: PluginHost,
    /// Renders `/metrics`.
    metrics: PrometheusHandle,
    /// One reload at a time.
    reloading: Mutex<()>,
    /// The HTTP request bytes that may be read or held at once, in KiB.
    body_budget: Arc<tokio::sync::Semaphore>,
    /// Grader rewards being built at once (their config checks), at most `--workers`.
    grader_builds: tokio::sync::Semaphore,
}

impl AppState {
    /// Loads the rewards from `options.config` and builds the state.
    pub fn new(host: PluginHost, options: ServeOptions) -> Result<Arc<AppState>> {
        let rewards = Rewards::load(&host, &options.config)?;
        Self::from_rewards(host, rewards, options)
    }

    /// The state over rewards already loaded (by [`Rewards::from_toml`], say): what the routers
    /// ([`http::router`]) serve, so a test can call them in process. `options.config` is only read
    /// again by a reload and by `validate` without samples. The Prometheus recorder is the
    /// process's one ([`metrics::install`]).
    pub fn from_rewards(host: PluginHost, rewards: Rewards, options: ServeOptions) -> Result<Arc<AppState>> {
        options.validate()?;
        let auth = auth::Auth::new(options.auth.clone())?;
        let metrics = metrics::install();
        if let Some(name) = &options.nemo_gym_reward {
            rewards.get(name).with_context(|| format!("--nemo-gym-reward {name}"))?;
        }
        let scorer = Scorer::new(rewards, options.scorer.clone())?;
        let body_budget = Arc::new(tokio::sync::Semaphore::new(options.max_inflight_body_bytes.div_ceil(1024)));
        let grader_builds = tokio::sync::Semaphore::new(options.scorer.workers.max(1));
        Ok(Arc::new(AppState { scorer, options, auth, host, metrics, reloading: Mutex::new(()), body_budget, grader_builds }))
    }

    /// Reloads the rewards config and plugins; on error the old rewards stay. Returns the names.
    pub async fn reload(&self) -> Result<Vec<String>> {
        let _one_at_a_time = self.reloading.lock().await;
        let host = self.host.clone();
        let path = self.options.config.clone();
        let loaded = tokio::task::spawn_blocking(move || Rewards::load(&host, &path)).await?;
        metrics::reload(loaded.is_ok());
        let rewards = loaded?;
        let names = rewards.iter().map(|r| r.name.clone()).collect();
        self.scorer.swap_rewards(rewards);
        tracing::info!("rewards reloaded");
        Ok(names)
    }

    /// The files whose change triggers a reload, with their modification times and sizes.
    fn watched_files(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        let mut paths = vec![self.options.config.clone()];
        let rewards = self.scorer.rewards();
        for reward in rewards.iter() {
            if let RewardKind::Plugin(p) = &reward.kind {
                paths.push(PathBuf::from(p.plugin.origin()));
            }
        }
        if let Some(graders) = rewards.graders() {
            paths.push(PathBuf::from(graders.plugin().origin()));
        }
        paths.extend(rewards.sources().iter().cloned());
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .map(|p| {
                let stamp = std::fs::metadata(&p).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
                (p, stamp)
            })
            .collect()
    }
}

/// What a client sees of a reward.
#[derive(Clone, Debug, Serialize)]
pub struct RewardSummary {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `plugin` or `composite`.
    pub kind: &'static str,
    /// Plugin name, for plugin rewards.
    pub plugin_name: Option<String>,
    /// Plugin version, for plugin rewards.
    pub plugin_version: Option<String>,
    /// Metrics the reward may report.
    pub metrics: Vec<String>,
    /// Failure policy.
    pub on_error: &'static str,
    /// Whether it scores whole GRPO groups (`groups = true`, or a component that does): a caller
    /// must send each group in one request.
    pub groups: bool,
    /// Hashes.
    pub provenance: Provenance,
}

impl RewardSummary {
    /// The summary of a reward.
    pub fn of(r: &Reward) -> Self {
        let (kind, plugin_name, plugin_version, metrics) = match &r.kind {
            RewardKind::Plugin(p) => {
                let info = p.plugin.info();
                ("plugin", Some(info.name.clone()), Some(info.version.clone()), info.metrics.clone())
            }
            RewardKind::Composite(c) => {
                let mut metrics = Vec::new();
                for (alias, component) in &c.components {
                    metrics.push(alias.clone());
                    metrics.extend(RewardSummary::of(component).metrics.into_iter().map(|m| format!("{alias}.{m}")));
                }
                ("composite", None, None, metrics)
            }
        };
        RewardSummary {
            name: r.name.clone(),
            description: r.description.clone(),
            kind,
            plugin_name,
            plugin_version,
            metrics,
            on_error: match r.on_error {
                crate::engine::OnError::Zero => "zero",
                crate::engine::OnError::Abstain => "abstain",
                crate::engine::OnError::Fail => "fail",
            },
            groups: r.groups(),
            provenance: (*r.provenance).clone(),
        }
    }
}

impl AppState {
    /// The pipeline of every scoring request, whatever its door: look up the reward, take the
    /// caller's deadline (already read from the request, so a bad header is answered only after
    /// an unknown reward), admit the items, score them in order, record the request's metrics.
    /// The doors around it only translate their wire shapes into [`Item`]s and the scores back.
    pub(crate) async fn score_request(
        &self,
        reward_name: &str,
        transport: &'static str,
        deadline: Result<Deadline, ScoreError>,
        items: Vec<Item>,
    ) -> Result<Vec<crate::engine::Scored>, ScoreError> {
        self.score_reward(reward_name, self.scorer.reward(reward_name), transport, deadline, items).await
    }

    /// [`AppState::score_request`] for a reward already looked up or built (the graders door's),
    /// its metrics under `label`.
    pub(crate) async fn score_reward(
        &self,
        label: &str,
        reward: Result<Arc<Reward>, ScoreError>,
        transport: &'static str,
        deadline: Result<Deadline, ScoreError>,
        items: Vec<Item>,
    ) -> Result<Vec<crate::engine::Scored>, ScoreError> {
        let started = std::time::Instant::now();
        let result = async {
            let reward = reward?;
            let deadline = deadline?;
            let _admission = self.scorer.admit(&reward, items.len())?;
            self.scorer.score(reward, items, Some(deadline)).await
        }
        .await;
        metrics::request(label, transport, result.as_ref().err(), started.elapsed());
        result
    }

    /// The config's `[graders]` (the graders door's rewards-on-demand), or the door's 404 when
    /// the config has no such table.
    pub(crate) fn graders(&self) -> Result<Arc<Graders>, ScoreError> {
        self.scorer.rewards().graders().cloned().ok_or(ScoreError::NotConfigured(
            "this server runs OpenAI graders only when its rewards config has a [graders] table (see the README's \"OpenAI graders\")",
        ))
    }

    /// The reward that runs a grader object sent to the graders door: kept from an earlier
    /// request, or built (the plugin's config check) on a blocking thread, at most
    /// `--workers` builds at once so a flood of new graders cannot take every blocking thread.
    /// Refused (400, naming the field) when the plugin refuses the grader. Waits for a build
    /// slot no longer than `deadline`.
    pub(crate) async fn grader_reward(
        &self,
        graders: Arc<Graders>,
        grader: &serde_json::Value,
        deadline: &Deadline,
    ) -> Result<Arc<Reward>, ScoreError> {
        if let Some(reward) = graders.kept(grader) {
            return Ok(reward);
        }
        let slot = tokio::time::timeout_at(deadline.at.into(), self.grader_builds.acquire())
            .await
            .map_err(|_| ScoreError::DeadlineExceeded(deadline.allowed))?
            .map_err(|e| ScoreError::Internal(format!("grader build slots: {e}")))?;
        let grader = grader.clone();
        let built = tokio::task::spawn_blocking(move || graders.reward(&grader))
            .await
            .map_err(|e| ScoreError::Internal(format!("grader build task: {e}")))?;
        drop(slot);
        built.map_err(|e| ScoreError::BadRequest(format!("grader: {e}")))
    }
}

/// A validate request, whatever its door.
pub(crate) struct ValidateAsk {
    /// The reward to validate, by name.
    pub reward: String,
    /// The caller's samples; `None` for the reward's built-in ones (next to the server's config).
    pub samples: Option<Vec<Item>>,
    /// The flagging threshold; `None` for [`crate::validate::DEFAULT_THRESHOLD`].
    pub threshold: Option<f64>,
    /// How many samples to use; `None` for [`crate::validate::DEFAULT_MAX_SAMPLES`].
    pub max_samples: Option<usize>,
}

impl AppState {
    /// The pipeline of every validate request: look up the reward, check the threshold and the
    /// sample count, take the samples (a rejected one fails the request: a probe of a broken
    /// sample says nothing), admit every probe rollout they make, and validate on a blocking
    /// thread (never on the I/O threads) that stops at the caller's deadline. The admission is
    /// held until the work stops, even when the deadline answered first.
    pub(crate) async fn validate(
        &self,
        ask: ValidateAsk,
        transport: &'static str,
        deadline: Result<Deadline, ScoreError>,
    ) -> Result<crate::validate::Report, ScoreError> {
        use crate::validate;
        let ValidateAsk { reward: name, samples, threshold, max_samples } = ask;
        let started = std::time::Instant::now();
        let result = async {
            let reward = self.scorer.reward(&name)?;
            let deadline = deadline?;
            let threshold = threshold.unwrap_or(validate::DEFAULT_THRESHOLD);
            if !threshold.is_finite() {
                return Err(ScoreError::BadRequest(format!("threshold must be a finite number, not {threshold}")));
            }
            let max = max_samples.unwrap_or(validate::DEFAULT_MAX_SAMPLES);
            if max == 0 || max > validate::MAX_SAMPLES {
                return Err(ScoreError::BadRequest(format!("max_samples is {max}; it must be 1 to {}", validate::MAX_SAMPLES)));
            }
            let internal = |e: tokio::task::JoinError| ScoreError::Internal(format!("validate task: {e}"));
            let samples: Vec<crate::engine::Rollout> = match samples {
                None => {
                    let (config, name) = (self.options.config.clone(), reward.name.clone());
                    tokio::task::spawn_blocking(move || validate::builtin_samples(&config, &name, max))
                        .await
                        .map_err(internal)?
                        .map_err(|e| ScoreError::BadRequest(format!("no rollouts given, and {e:#}")))?
                }
                Some(items) => items
                    .into_iter()
                    .take(max)
                    .map(|item| match item {
                        Item::Rollout(r) => Ok(r),
                        Item::Rejected { failure, .. } => Err(ScoreError::BadRequest(format!("sample {}", failure.message))),
                    })
                    .collect::<Result<_, _>>()?,
            };
            let admission = self.scorer.admit(&reward, validate::rollout_count(&samples))?;
            let at = deadline.at;
            let work = tokio::task::spawn_blocking(move || {
                let _admission = admission;
                let cancelled = || std::time::Instant::now() >= at;
                validate::run(&reward, &samples, &validate::Options { threshold, parallel: false }, &cancelled)
            });
            let expired = || ScoreError::DeadlineExceeded(deadline.allowed);
            let report = tokio::time::timeout_at(at.into(), work).await.map_err(|_| expired())?.map_err(internal)?;
            if std::time::Instant::now() >= at {
                return Err(expired()); // rollouts past the deadline answered TIMEOUT: not a report
            }
            Ok(report)
        }
        .await;
        metrics::request(&name, transport, result.as_ref().err(), started.elapsed());
        result
    }
}

/// The caller's deadline, read the same way at every door from the request's headers (HTTP) or
/// metadata (gRPC): `x-timeout-ms` (whole milliseconds) if sent, else `grpc-timeout`, capped by
/// `cap` (`--request-timeout-ms`), which is also the deadline when neither is sent. A value that
/// does not parse is the caller's error, named.
pub(crate) fn caller_deadline(x_timeout_ms: Option<&[u8]>, grpc_timeout: Option<&[u8]>, cap: Duration) -> Result<Deadline, ScoreError> {
    let text = |v: &[u8]| std::str::from_utf8(v).unwrap_or("").trim().to_owned();
    let timeout = match (x_timeout_ms, grpc_timeout) {
        (Some(v), _) => Duration::from_millis(
            text(v).parse().map_err(|_| ScoreError::BadRequest("x-timeout-ms must be a whole number of milliseconds".into()))?,
        ),
        (None, Some(v)) => parse_grpc_timeout(&text(v))
            .ok_or_else(|| ScoreError::BadRequest(format!("invalid grpc-timeout {:?}", String::from_utf8_lossy(v))))?,
        (None, None) => cap,
    };
    Ok(Deadline::after(timeout.min(cap)))
}

/// Parses a `grpc-timeout` header value (`100m`, `5S`, `250000u`, ...).
pub(crate) fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if !v.is_ascii() {
        return None;
    }
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Why [`serve`] stopped with an error; each kind has its own exit code at the command line.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration could not be used: the rewards config, the TLS material. Fix the input.
    #[error("{0:#}")]
    Setup(anyhow::Error),
    /// A listening address could not be bound (in use, not local, not permitted).
    #[error("{0:#}")]
    Bind(anyhow::Error),
    /// The running server failed.
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

/// Runs the server until SIGTERM/SIGINT, then drains and returns.
pub async fn serve(host: PluginHost, options: ServeOptions) -> Result<(), ServeError> {
    options.validate().map_err(ServeError::Setup)?;
    let state = AppState::new(host, options.clone()).map_err(ServeError::Setup)?;
    let tls = options.tls.clone().map(tls::Tls::load).transpose().map_err(ServeError::Setup)?;
    let bind = |addr: SocketAddr, door: &'static str| async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {door} on {addr}"))?;
        let local = listener.local_addr().with_context(|| format!("reading the address {door} is bound to"))?;
        Ok::<_, anyhow::Error>((listener, local))
    };
    let (grpc_listener, grpc_addr) = bind(options.grpc_addr, "gRPC").await.map_err(ServeError::Bind)?;
    let (http_listener, http_addr) = bind(options.http_addr, "HTTP").await.map_err(ServeError::Bind)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    // gRPC: the reward service (behind the token check), health, reflection.
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // Reflection in both protocol versions: v1, and v1alpha for older tools.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(reward_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1().context("building gRPC reflection").map_err(ServeError::Runtime)?;
    let reflection_alpha = reflection_builder().build_v1alpha().context("building gRPC reflection").map_err(ServeError::Runtime)?;
    let checker = state.clone();
    // Rollouts are counted on the wire before prost decodes a message (grpc_count).
    let reward_service = grpc_count::CountRollouts::new(
        tonic::service::interceptor::InterceptedService::new(
            reward_proto::v1::reward_service_server::RewardServiceServer::new(grpc::RewardGrpc::new(state.clone()))
                .max_decoding_message_size(options.max_body_bytes)
                .max_encoding_message_size(options.max_body_bytes),
            move |request: tonic::Request<()>| check_grpc_token(&checker.auth, request),
        ),
        options.scorer.max_rollouts_per_request,
    );
    let limits = options.connections.clone();
    let grpc_router = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .http2_keepalive_interval(Some(conn::HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(conn::HTTP2_KEEPALIVE_TIMEOUT))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(reward_service);
    let (grpc_stop, grpc_tls) = (stopped(stop_rx.clone()), tls.clone());
    let grpc_permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let grpc_server = async move {
        match grpc_tls {
            // TLS through the same accept loop as HTTP: its config reloads (tonic's TLS cannot).
            Some(tls) => {
                let incoming = conn::capped(tls.grpc_incoming(grpc_listener), grpc_permits, limits.header_read_timeout);
                grpc_router.serve_with_incoming_shutdown(incoming, grpc_stop).await
            }
            // TCP_NODELAY: without it a unary answer waits for the client's delayed ACK (about 40 ms).
            None => {
                let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true));
                grpc_router.serve_with_incoming_shutdown(conn::capped(incoming, grpc_permits, limits.header_read_timeout), grpc_stop).await
            }
        }
    };

    // HTTP.
    let router = http::router(state.clone());
    let http_rx = stop_rx.clone();
    let http_tls = tls.clone();
    let limits = options.connections.clone();
    let http_server = async move {
        match &http_tls {
            Some(tls) => {
                let listener = tls.http_listener(http_listener);
                conn::serve_http(listener, router, &limits, stopped(http_rx)).await?;
            }
            None => {
                let listener = http_listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::warn!("TCP_NODELAY: {e}");
                    }
                });
                conn::serve_http(listener, router, &limits, stopped(http_rx)).await?
            }
        }
        anyhow::Ok(())
    };

    health_reporter.set_serving::<reward_proto::v1::reward_service_server::RewardServiceServer<grpc::RewardGrpc>>().await;
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to find the ports.
    println!("reward-server listening: grpc={grpc_addr} http={scheme}://{http_addr}");
    tracing::info!(%grpc_addr, %http_addr, "serving");

    if let Some(interval) = options.watch_interval {
        tokio::spawn(watch_files(state.clone(), interval));
        if let Some(tls) = &tls {
            tokio::spawn(tls::watch(Arc::downgrade(tls), interval));
        }
    }
    let drain = {
        let state = state.clone();
        async move {
            shutdown_signal().await;
            tracing::info!(inflight = state.scorer.inflight(), "draining");
            state.scorer.start_draining();
            health_reporter.set_not_serving::<reward_proto::v1::reward_service_server::RewardServiceServer<grpc::RewardGrpc>>().await;
            let give_up = tokio::time::Instant::now() + state.options.drain_timeout;
            while state.scorer.inflight() > 0 && tokio::time::Instant::now() < give_up {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if state.scorer.inflight() > 0 {
                tracing::warn!(inflight = state.scorer.inflight(), "drain timeout passed with work in flight");
            }
            let _ = stop_tx.send(true);
        }
    };
    let servers = async { tokio::join!(grpc_server, http_server) };
    tokio::pin!(servers);
    let (grpc_result, http_result) = tokio::select! {
        results = &mut servers => results,
        () = drain => match tokio::time::timeout(CLOSE_GRACE, &mut servers).await {
            Ok(results) => results,
            // A client holding a connection (an idle stream, a keep-alive it never closes) must
            // not keep the process: its connection is dropped with the server.
            Err(_) => {
                tracing::warn!(grace = ?CLOSE_GRACE, "connections still open after the drain; closing them");
                (Ok(()), Ok(()))
            }
        },
    };
    grpc_result.context("gRPC server").map_err(ServeError::Runtime)?;
    http_result.context("HTTP server").map_err(ServeError::Runtime)?;
    tracing::info!("stopped");
    Ok(())
}

fn check_grpc_token(auth: &auth::Auth, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    auth.check(request.metadata().get("authorization").map(|v| v.as_bytes()))?;
    Ok(request)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// How long watched files must stay unchanged before a reload reads them: 200 ms.
const SETTLE: Duration = Duration::from_millis(200);

/// Reloads when the config or a plugin file changes, and re-reads a changed auth token file
/// (polling, so it works on every filesystem, Kubernetes Secret and ConfigMap mounts included).
async fn watch_files(state: Arc<AppState>, interval: Duration) {
    let mut seen = state.watched_files();
    loop {
        tokio::time::sleep(interval).await;
        if state.scorer.is_draining() {
            return;
        }
        match state.auth.refresh() {
            Ok(true) => tracing::info!("auth token file changed; the new token is in force"),
            Ok(false) => {}
            Err(e) => tracing::error!("keeping the previous auth token: {e:#}"),
        }
        let now = state.watched_files();
        if now != seen {
            // Let a writer finish: reload only once the files have stopped changing.
            tokio::time::sleep(SETTLE).await;
            if state.watched_files() != now {
                continue;
            }
            tracing::info!("config or plugin files changed; reloading");
            if let Err(e) = state.reload().await {
                tracing::error!("reload failed, keeping the previous rewards: {e:#}");
            }
            seen = state.watched_files();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_validate_checks_every_server_limit_and_names_the_flag() {
        let base = || ServeOptions::new(PathBuf::from("rewards.toml"));
        base().validate().unwrap();
        let refused = |adjust: &dyn Fn(&mut ServeOptions), names: &str| {
            let mut options = base();
            adjust(&mut options);
            let e = format!("{:#}", options.validate().unwrap_err());
            assert!(e.contains(names), "{names}: {e}");
        };
        refused(&|o| o.request_timeout = Duration::ZERO, "--request-timeout-ms");
        refused(&|o| o.stream_send_timeout = Duration::ZERO, "--stream-send-timeout-ms");
        refused(&|o| o.max_inflight_body_bytes = o.max_body_bytes - 1, "max_inflight_body_bytes");
        refused(&|o| o.scorer.workers = 0, "--workers");
        refused(&|o| o.scorer.max_inflight_judge_rollouts = o.scorer.max_rollouts_per_request - 1, "max_inflight_judge_rollouts");
        refused(&|o| o.connections.max_connections = 0, "max_connections");
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(parse_grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        for bad in ["", "m", "10", "10x", "123456789S", "-1S", "1é", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn caller_deadlines_prefer_x_timeout_ms_and_are_capped() {
        let cap = Duration::from_secs(60);
        let allowed = |x: Option<&str>, g: Option<&str>| {
            caller_deadline(x.map(str::as_bytes), g.map(str::as_bytes), cap).map(|d| d.allowed).map_err(|e| e.to_string())
        };
        assert_eq!(allowed(None, None), Ok(cap));
        assert_eq!(allowed(Some(" 250 "), Some("1S")), Ok(Duration::from_millis(250)));
        assert_eq!(allowed(None, Some("1S")), Ok(Duration::from_secs(1)));
        assert_eq!(allowed(Some("3600000"), None), Ok(cap));
        assert_eq!(allowed(None, Some("2H")), Ok(cap));
        assert!(allowed(Some("1.5"), None).unwrap_err().contains("x-timeout-ms must be a whole number"));
        assert!(allowed(None, Some("soon")).unwrap_err().contains("invalid grpc-timeout \"soon\""));
    }
}
