//! The `reward-server` command line: `serve` (gRPC + HTTP), `score` (offline batch scoring),
//! `validate` (hack probes and a determinism check), `list` (the configured rewards).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Rewards;
use crate::engine::{HostBuilder, PluginHost, RewardKind, default_cache_dir};
use crate::offline::{self, DEFAULT_BATCH_SIZE, DEFAULT_MAX_LINE_BYTES, RunError, ScoreJob};
use crate::server::{self, ScorerOptions, ServeError, ServeOptions, TlsFiles, TokenSource};
use crate::validate;

/// Exit code for a bad command line or config (BSD `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Exit code when a reward with `on_error = "fail"` saw a failed rollout.
pub const EXIT_FAILED_ROLLOUT: u8 = 1;
/// Exit code when `score --resume` finds a partial output that is not from this input and reward
/// (BSD `EX_DATAERR`).
pub const EXIT_DATA: u8 = 65;
/// Exit code when reading the input or writing the output fails, or the server cannot bind its
/// address (BSD `EX_IOERR`).
pub const EXIT_IO: u8 = 74;
/// Exit code when the running server fails (BSD `EX_SOFTWARE`).
pub const EXIT_RUNTIME: u8 = 70;
/// Exit code when `validate` flags the reward: a probe expected to score low scored above the
/// threshold, or a sample scored differently on its two runs.
pub const EXIT_FLAGGED: u8 = 3;

const VALIDATE_AFTER_HELP: &str = "\
Samples: the first --max-samples rollouts of --input (the JSONL shapes `score` reads), or without
--input the reward's built-in samples, examples/validate/NAME.jsonl next to the config file.

Probes (the answer replaced, the prompt and reference kept), `low` unless marked:
  empty, whitespace, empty-tags (<think></think><answer></answer>), empty-boxed (\\boxed{}),
  think-empty-answer (<think>x</think><answer></answer>), answer-placeholder (<answer>answer</answer>),
  empty-think-bare-answer (<think></think>a), prompt-echo (the last user message), random-text
  (seeded xorshift64 words), one-megabyte (a phrase repeated to 1 MiB),
  reference-json and reference-answer (the reference pasted: informational, never flagged; for a
  reward that compares with the reference it is the right answer).
A `low` probe is flagged when one of its OK rollouts scores above --threshold. A rollout that fails
is counted under its status, not as a 0. The samples are scored twice (two separate batches, the
probes between them); any sample whose score, status or metrics differ is flagged.

Exit codes:
  0   nothing flagged
  3   flagged: a probe scored above the threshold, or a sample scored differently twice
  2   a flag that does not parse
  64  bad config or option values; no samples (no --input and no built-in samples, a bad line)
  74  the input cannot be read";

const SCORE_AFTER_HELP: &str = "\
Output: an --output FILE is written to FILE.partial in the same directory, flushed as it goes, and
renamed over FILE once every line is written; until then FILE is untouched. A run that stops leaves
FILE.partial; --resume continues it. Standard output, pipes and devices (-o -, /dev/stdout) are
written as they go. An output that is the input (the same file, through any link) is refused.

Exit codes:
  0   every line scored and written
  1   a reward with on_error = \"fail\" saw a failed rollout (every line is still written)
  2   a flag that does not parse
  64  bad config or option values; the output is the input; FILE.partial exists without --resume
  65  --resume: FILE.partial is not from this input and reward (an id or provenance differs)
  74  I/O error: reading the input, or writing, syncing or renaming the output (FILE.partial stays)";

/// Scores LLM rollouts with sandboxed WebAssembly reward plugins.
#[derive(Debug, Parser)]
#[command(name = "reward-server", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once per process: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Serve rewards over gRPC and HTTP (native API, Nova RFT Lambda JSON, OpenRLHF).
    Serve(ServeArgs),
    /// Score a JSONL file of rollouts offline, on all cores.
    #[command(after_help = SCORE_AFTER_HELP)]
    Score(ScoreArgs),
    /// Probe a reward for reward hacking (empty, format-only, echoed, huge, random answers) and
    /// check that it scores the same rollout the same way twice.
    #[command(after_help = VALIDATE_AFTER_HELP)]
    Validate(ValidateArgs),
    /// List the rewards of a config (loading and checking every plugin).
    List(CommonArgs),
}

/// Options every command shares.
#[derive(Debug, Args)]
struct CommonArgs {
    /// The rewards config (TOML).
    #[arg(long, short = 'c', env = "REWARD_SERVER_CONFIG", default_value = "rewards.toml")]
    config: PathBuf,
    /// Where compiled plugins are cached [default: ~/.cache/reward-server].
    #[arg(long, env = "REWARD_SERVER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Don't cache compiled plugins on disk.
    #[arg(long)]
    no_cache: bool,
    /// Ceiling on any plugin instance's memory, in MiB; per-reward limits must stay under it.
    #[arg(long, default_value_t = 4096)]
    max_memory_mib: u64,
    /// Write /tmp/perf-PID.map so `perf record` names the functions inside plugins.
    #[arg(long, env = "REWARD_SERVER_PERF_MAP")]
    perf_map: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// gRPC listen address.
    #[arg(long, env = "REWARD_SERVER_GRPC_ADDR", default_value = server::DEFAULT_GRPC_ADDR)]
    grpc_addr: SocketAddr,
    /// HTTP listen address.
    #[arg(long, env = "REWARD_SERVER_HTTP_ADDR", default_value = server::DEFAULT_HTTP_ADDR)]
    http_addr: SocketAddr,
    /// CPU threads that run plugins [default: one per core].
    #[arg(long, env = "REWARD_SERVER_WORKERS")]
    workers: Option<usize>,
    /// A fixed cap on the workers one reward may hold at once [default: all of them while no
    /// other reward is busy, all but one while another is]. Rewards share the workers fairly by
    /// worker time either way; the cap keeps an expensive or hostile reward from holding every
    /// worker while a cheap reward's request waits.
    #[arg(long, env = "REWARD_SERVER_MAX_WORKERS_PER_REWARD")]
    max_workers_per_reward: Option<usize>,
    /// Threads that run the rewards asking a judge (a model): they wait on answers, so they never
    /// take a CPU worker. Each holds one rollout's judge call at most; the judge's `max_concurrent`
    /// and rate limits decide how many reach the model.
    #[arg(long, env = "REWARD_SERVER_JUDGE_WORKERS", default_value_t = server::DEFAULT_JUDGE_WORKERS)]
    judge_workers: usize,
    /// Bound on rollouts in flight for rewards that ask no judge; past it their requests are
    /// refused at once (429 / RESOURCE_EXHAUSTED).
    #[arg(long, env = "REWARD_SERVER_MAX_INFLIGHT_ROLLOUTS", default_value_t = server::DEFAULT_MAX_INFLIGHT_ROLLOUTS)]
    max_inflight_rollouts: usize,
    /// Bound on rollouts in flight for rewards that ask a judge (a model), a budget apart from
    /// --max-inflight-rollouts: judge requests waiting on the model's rate limits cannot refuse
    /// the CPU rewards, nor the reverse. Must be at least --max-rollouts-per-request.
    #[arg(
        long,
        env = "REWARD_SERVER_MAX_INFLIGHT_JUDGE_ROLLOUTS",
        default_value_t = server::DEFAULT_MAX_INFLIGHT_JUDGE_ROLLOUTS
    )]
    max_inflight_judge_rollouts: usize,
    /// Cap on rollouts in one request.
    #[arg(long, env = "REWARD_SERVER_MAX_ROLLOUTS_PER_REQUEST", default_value_t = server::DEFAULT_MAX_ROLLOUTS_PER_REQUEST)]
    max_rollouts_per_request: usize,
    /// Cap on a request body or gRPC message, in bytes.
    #[arg(long, env = "REWARD_SERVER_MAX_BODY_BYTES", default_value_t = server::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Bound on the HTTP request bytes read or held at once, over all requests; a body that does
    /// not fit now is refused with 429 + Retry-After (its bytes are read to nothing, not kept).
    #[arg(long, env = "REWARD_SERVER_MAX_INFLIGHT_BODY_BYTES", default_value_t = server::DEFAULT_MAX_INFLIGHT_BODY_BYTES)]
    max_inflight_body_bytes: usize,
    /// Server-side cap on a request's time, in milliseconds (a caller's shorter deadline wins).
    #[arg(long, env = "REWARD_SERVER_REQUEST_TIMEOUT_MS", default_value_t = server::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64)]
    request_timeout_ms: u64,
    /// Longest wait for in-flight work on SIGTERM, in milliseconds.
    #[arg(long, env = "REWARD_SERVER_DRAIN_TIMEOUT_MS", default_value_t = server::DEFAULT_DRAIN_TIMEOUT.as_millis() as u64)]
    drain_timeout_ms: u64,
    /// Longest wait, in milliseconds, to hand a ScoreStream answer to a client that is not
    /// reading; past it the stream's work is dropped and its admission released.
    #[arg(long, env = "REWARD_SERVER_STREAM_SEND_TIMEOUT_MS", default_value_t = server::DEFAULT_STREAM_SEND_TIMEOUT.as_millis() as u64)]
    stream_send_timeout_ms: u64,
    /// Most connections open at once on each listener; a connection past it is closed at once.
    #[arg(long, env = "REWARD_SERVER_MAX_CONNECTIONS", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Longest wait, in milliseconds, for a request's headers, or for the next request on an idle
    /// HTTP/1 keep-alive connection; then the connection is closed (slowloris, idle floods).
    #[arg(long, env = "REWARD_SERVER_HEADER_READ_TIMEOUT_MS", default_value_t = server::DEFAULT_HEADER_READ_TIMEOUT.as_millis() as u64)]
    header_read_timeout_ms: u64,
    /// Longest wait, in milliseconds, for a request's body; then the request fails.
    #[arg(long, env = "REWARD_SERVER_BODY_READ_TIMEOUT_MS", default_value_t = server::DEFAULT_BODY_READ_TIMEOUT.as_millis() as u64)]
    body_read_timeout_ms: u64,
    /// Most concurrent HTTP/2 streams per connection, on both listeners.
    #[arg(long, env = "REWARD_SERVER_MAX_CONCURRENT_STREAMS", default_value_t = server::DEFAULT_MAX_CONCURRENT_STREAMS)]
    max_concurrent_streams: u32,
    /// Score-cache entries (0 disables the cache).
    #[arg(long, env = "REWARD_SERVER_CACHE_ENTRIES", default_value_t = server::DEFAULT_CACHE_ENTRIES)]
    cache_entries: usize,
    /// Bound on the bytes the score cache holds (metrics, reasons, bookkeeping); the oldest
    /// entries make room.
    #[arg(long, env = "REWARD_SERVER_CACHE_BYTES", default_value_t = server::DEFAULT_CACHE_BYTES)]
    cache_bytes: usize,
    /// How often to check the config and plugin files for changes, in milliseconds (0 disables).
    #[arg(long, env = "REWARD_SERVER_WATCH_INTERVAL_MS", default_value_t = server::DEFAULT_WATCH_INTERVAL.as_millis() as u64)]
    watch_interval_ms: u64,
    /// Require this bearer token on scoring and admin calls (prefer --auth-token-file).
    #[arg(long, env = "REWARD_SERVER_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Read the bearer token from this file (first line); re-read when it changes (checked every
    /// --watch-interval-ms), so the token rotates without a restart.
    #[arg(long, env = "REWARD_SERVER_AUTH_TOKEN_FILE", conflicts_with = "auth_token")]
    auth_token_file: Option<PathBuf>,
    /// Serve without a bearer token on an address other than loopback. Without a token and
    /// without this flag, the server refuses to listen beyond 127.0.0.1 / ::1: anyone who can
    /// reach the port could score and reload.
    #[arg(long, env = "REWARD_SERVER_ALLOW_UNAUTHENTICATED", conflicts_with_all = ["auth_token", "auth_token_file"])]
    allow_unauthenticated: bool,
    /// Answer NeMo Gym's `POST /verify` (and `/seed_session`) at the root of the HTTP listener
    /// with this reward, so a NeMo Gym resources server entry can point at this server's host and
    /// port. `POST /v1/rewards/NAME/verify` serves every reward without it.
    #[arg(long, env = "REWARD_SERVER_NEMO_GYM_REWARD", value_name = "NAME")]
    nemo_gym_reward: Option<String>,
    /// TLS certificate chain (PEM); enables TLS on both listeners, with --tls-key. The
    /// certificate, key and client CA are re-read when they change (checked every
    /// --watch-interval-ms), so they rotate without a restart.
    #[arg(long, env = "REWARD_SERVER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); re-read with the certificate.
    #[arg(long, env = "REWARD_SERVER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: enables mutual TLS; re-read with the
    /// certificate.
    #[arg(long, env = "REWARD_SERVER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ScoreArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The reward to score with (a name from the config).
    #[arg(long, short = 'r')]
    reward: String,
    /// Input JSONL: Nova RFT records ({id, messages, reference_answer}) or {prompt, completion, reference}; `-` for stdin.
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// Output JSONL, one scored line per input line; written to OUTPUT.partial, then renamed [default: stdout].
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Continue a run that stopped: keep the complete lines of OUTPUT.partial (checking their ids
    /// against the input's), then score the rest. Without OUTPUT.partial, start from the first line.
    #[arg(long)]
    resume: bool,
    /// Rollouts per plugin batch [default: 64; 1 for a reward that asks a judge, so its calls run
    /// side by side].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Worker threads [default: one per core; 64 for a reward that asks a judge, whose threads
    /// mostly wait on the model, within the judge's own `max_concurrent` and rate limits].
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// Longest accepted input line, in bytes; longer lines are INVALID_INPUT.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Don't draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The reward to validate (a name from the config).
    #[arg(long, short = 'r')]
    reward: String,
    /// Sample rollouts (JSONL, the shapes `score` reads) [default: the reward's built-in samples,
    /// examples/validate/REWARD.jsonl next to the config].
    #[arg(long, short = 'i')]
    input: Option<PathBuf>,
    /// A probe expected to score low is flagged when one of its rollouts scores above this.
    #[arg(long, default_value_t = validate::DEFAULT_THRESHOLD)]
    threshold: f64,
    /// How many samples (the first ones) to probe.
    #[arg(long, default_value_t = validate::DEFAULT_MAX_SAMPLES)]
    max_samples: usize,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
}

/// How `validate` prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// A table for humans.
    Table,
    /// One JSON object.
    Json,
}

impl CommonArgs {
    fn host(&self) -> Result<PluginHost> {
        let cache = if self.no_cache { None } else { Some(self.cache_dir.clone().unwrap_or_else(default_cache_dir)) };
        HostBuilder::new().cache_dir(cache).max_memory_bytes(self.max_memory_mib << 20).perf_map(self.perf_map).build()
    }

    fn rewards(&self, host: &PluginHost) -> Result<Rewards> {
        Rewards::load(host, &self.config)
    }
}

/// Runs the command line; returns the process exit code. Errors are printed once, with their chain.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Score(args) => score(args),
        Command::Validate(args) => validate(args),
        Command::List(args) => list(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let auth = match (args.auth_token, args.auth_token_file) {
        (Some(token), _) => TokenSource::Fixed(token),
        (None, Some(path)) => TokenSource::File(path),
        (None, None) => TokenSource::None,
    };
    if matches!(auth, TokenSource::None) && !args.allow_unauthenticated {
        let open: Vec<String> =
            [args.grpc_addr, args.http_addr].iter().filter(|a| !a.ip().is_loopback()).map(ToString::to_string).collect();
        if !open.is_empty() {
            eprintln!(
                "reward-server: refusing to listen on {} without a bearer token: anyone who can reach it could score and reload. \
                 Set --auth-token-file (REWARD_SERVER_AUTH_TOKEN_FILE), or pass --allow-unauthenticated \
                 (REWARD_SERVER_ALLOW_UNAUTHENTICATED=true) to serve it open",
                open.join(" and ")
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    let defaults = ScorerOptions::default();
    let options = ServeOptions {
        config: args.common.config.clone(),
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        scorer: ScorerOptions {
            workers: args.workers.unwrap_or(defaults.workers),
            judge_workers: args.judge_workers,
            max_inflight_rollouts: args.max_inflight_rollouts,
            max_inflight_judge_rollouts: args.max_inflight_judge_rollouts,
            max_rollouts_per_request: args.max_rollouts_per_request,
            cache_entries: args.cache_entries,
            cache_bytes: args.cache_bytes,
            max_workers_per_reward: args.max_workers_per_reward,
        },
        max_body_bytes: args.max_body_bytes,
        max_inflight_body_bytes: args.max_inflight_body_bytes,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        drain_timeout: Duration::from_millis(args.drain_timeout_ms),
        stream_send_timeout: Duration::from_millis(args.stream_send_timeout_ms),
        connections: server::ConnectionLimits {
            max_connections: args.max_connections,
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(args.body_read_timeout_ms),
            max_concurrent_streams: args.max_concurrent_streams,
        },
        watch_interval: (args.watch_interval_ms > 0).then(|| Duration::from_millis(args.watch_interval_ms)),
        auth,
        tls: args.tls_cert.map(|cert| TlsFiles { cert, key: args.tls_key.expect("clap requires it"), client_ca: args.tls_client_ca }),
        nemo_gym_reward: args.nemo_gym_reward,
    };
    let host = args.common.host()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("reward-io").build()?;
    let Err(e) = runtime.block_on(server::serve(host, options)) else {
        return Ok(ExitCode::SUCCESS);
    };
    eprintln!("error: {e}");
    Ok(ExitCode::from(match e {
        ServeError::Setup(_) => EXIT_USAGE,
        ServeError::Bind(_) => EXIT_IO,
        ServeError::Runtime(_) => EXIT_RUNTIME,
    }))
}

fn score(args: ScoreArgs) -> Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("--threads")?;
    }
    let host = args.common.host()?;
    let rewards = args.common.rewards(&host)?;
    let reward = rewards.get(&args.reward)?;
    let job = ScoreJob {
        input: args.input,
        output: args.output,
        resume: args.resume,
        batch_size: args.batch_size.unwrap_or(if reward.uses_judge() { 1 } else { DEFAULT_BATCH_SIZE }),
        max_line_bytes: args.max_line_bytes,
        progress: !args.no_progress,
    };
    // A judge reward's batches wait on the model: run more of them at once than there are cores.
    let judge_pool = match args.threads {
        None if reward.uses_judge() => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(server::DEFAULT_JUDGE_WORKERS)
                .thread_name(|i| format!("reward-judge-{i}"))
                .build()
                .context("starting the judge threads")?,
        ),
        _ => None,
    };
    let outcome = match &judge_pool {
        Some(pool) => pool.install(|| offline::run(reward, &job)),
        None => offline::run(reward, &job),
    };
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(match e {
                RunError::Usage(_) => EXIT_USAGE,
                RunError::Data(_) => EXIT_DATA,
                RunError::Io { .. } => EXIT_IO,
            }));
        }
    };
    eprint!("{}", summary.table());
    if let Some(fatal) = &summary.fatal {
        eprintln!("error: reward `{}` has on_error = \"fail\" and a rollout failed: {fatal}", reward.name);
        return Ok(ExitCode::from(EXIT_FAILED_ROLLOUT));
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(args: ValidateArgs) -> Result<ExitCode> {
    anyhow::ensure!(args.threshold.is_finite(), "--threshold must be a finite number, not {}", args.threshold);
    anyhow::ensure!(args.max_samples > 0, "--max-samples must be at least 1");
    let host = args.common.host()?;
    let rewards = args.common.rewards(&host)?;
    let reward = rewards.get(&args.reward)?;
    let samples = match &args.input {
        Some(path) => {
            if let Err(e) = std::fs::File::open(path) {
                eprintln!("error: opening --input {}: {e}", path.display());
                return Ok(ExitCode::from(EXIT_IO));
            }
            validate::load_samples(path, args.max_samples)?
        }
        None => validate::builtin_samples(&args.common.config, &reward.name, args.max_samples)?,
    };
    let options = validate::Options { threshold: args.threshold, parallel: true };
    let report = validate::run(reward, &samples, &options, &|| false);
    match args.format {
        ReportFormat::Table => print!("{}", report.table()),
        ReportFormat::Json => println!("{}", serde_json::to_string(&report).context("writing the report")?),
    }
    Ok(if report.flagged { ExitCode::from(EXIT_FLAGGED) } else { ExitCode::SUCCESS })
}

fn list(args: CommonArgs) -> Result<ExitCode> {
    let host = args.host()?;
    let rewards = args.rewards(&host)?;
    for reward in rewards.iter() {
        let what = match &reward.kind {
            RewardKind::Plugin(p) => format!("plugin {} {}", p.plugin.info().name, p.plugin.info().version),
            RewardKind::Composite(c) => {
                format!("composite of {}", c.components.iter().map(|(a, r)| format!("{a}={}", r.name)).collect::<Vec<_>>().join(", "))
            }
        };
        println!(
            "{}\t{what}\ton_error={:?}\tplugin_sha256={}\tconfig_hash={}\t{}",
            reward.name,
            reward.on_error,
            &reward.provenance.plugin_sha256[..12],
            &reward.provenance.config_hash[..12],
            reward.description
        );
    }
    Ok(ExitCode::SUCCESS)
}
