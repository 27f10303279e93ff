//! `loadtest`: load for the reward server, shaped like RFT traffic, measured with HDR histograms.
//!
//! # Brief overview
//!
//! - [`corpus`] makes seeded rollouts (format, SQL, citation tasks) with realistic lengths;
//! - [`door::Door`] encodes them once for one of the server's doors (gRPC unary or streaming,
//!   native JSON, Nova Lambda JSON, OpenRLHF JSON) and makes calls;
//! - [`drive`] shapes the load: closed loop, open loop (latency from the intended send time, so
//!   coordinated omission is corrected), or RFT step bursts;
//! - [`report::Recorder`] counts outcomes and latencies; [`report::Report`] prints a table and
//!   serialises to JSON.
//!
//! Every run stops by itself (`--duration`, `--requests`, `--steps`), and the target address is
//! loopback unless given.
#![deny(missing_docs)]

pub mod corpus;
pub mod door;
pub mod drive;
pub mod report;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::corpus::Kind;
use crate::door::{Door, DoorConfig, Target};
use crate::report::{Recorder, RftShape, RunInfo};

/// Default run length when neither `--duration` nor `--requests` is given.
pub const DEFAULT_DURATION_S: f64 = 10.0;
/// Longest run when only `--requests` bounds it.
pub const DEFAULT_MAX_DURATION_S: f64 = 300.0;

/// Load generator for the reward server.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Closed loop (`--concurrency N`) or open loop (`--rate R [--poisson]`) against one door.
    Run(RunArgs),
    /// Replays RFT training steps: bursts of global_batch_size x number_generation rollouts.
    Rft(RftArgs),
    /// Writes a corpus as Nova RFT JSONL (one rollout a line), e.g. for `reward-server score`.
    Corpus(CorpusArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// The door to call.
    #[arg(long, value_enum, default_value = "lambda")]
    target: Target,
    /// Server address, `host:port` or `http://host:port`. Defaults to 127.0.0.1:50051 for gRPC
    /// and 127.0.0.1:8080 for HTTP.
    #[arg(long)]
    addr: Option<String>,
    /// The reward to score with.
    #[arg(long, default_value = "math")]
    reward: String,
    /// Rollouts per call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Which tasks the rollouts are for.
    #[arg(long, value_enum, default_value = "format")]
    corpus: Kind,
    /// Corpus seed (the same seed, the same rollouts).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Distinct rollouts generated (cycled through). Defaults to 64 batches (run) or every step's
    /// rollouts up to 65,536 (rft).
    #[arg(long)]
    corpus_size: Option<usize>,
    /// Completions per prompt in the corpus (a GRPO group). In `rft`, --number-generation.
    #[arg(long, default_value_t = 8)]
    group: usize,
    /// Every rollout's completion is this text instead (for synthetic guests, e.g. the limits
    /// guest's `work N`).
    #[arg(long)]
    fixed_completion: Option<String>,
    /// Bearer token for a server started with --auth-token.
    #[arg(long, env = "LOADTEST_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Per-call timeout in milliseconds; also sent as x-timeout-ms / grpc-timeout.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// gRPC connections (calls are spread over them).
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,
    /// Load-generator threads. Defaults to the cores available.
    #[arg(long)]
    threads: Option<usize>,
    /// Write the report as JSON to this file (`-` for stdout, instead of the table).
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress line.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Closed loop: callers. Open loop: the most calls in flight (a due call waits for a slot).
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,
    /// Open loop: calls per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: Poisson arrivals (exponential gaps) instead of evenly spaced.
    #[arg(long, requires = "rate")]
    poisson: bool,
    /// Seconds to send for (default 10, or 300 as a cap when --requests is given).
    #[arg(long, short = 'd')]
    duration: Option<f64>,
    /// Stop after this many calls.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Open loop: seconds after the end that due calls may still wait for a slot.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
}

#[derive(Debug, Args)]
struct RftArgs {
    #[command(flatten)]
    common: Common,
    /// Prompts per training step.
    #[arg(long, default_value_t = 128)]
    global_batch_size: usize,
    /// Completions per prompt.
    #[arg(long, default_value_t = 8)]
    number_generation: usize,
    /// Rollout workers sending rewards calls.
    #[arg(long, short = 'k', default_value_t = 4)]
    workers: usize,
    /// Calls in flight per worker, at most.
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// Training steps to replay.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Milliseconds between a step's last answer and the next burst (the trainer's update).
    #[arg(long, default_value_t = 0)]
    step_gap_ms: u64,
    /// Stop starting steps after this many seconds.
    #[arg(long, default_value_t = DEFAULT_MAX_DURATION_S)]
    max_duration: f64,
}

#[derive(Debug, Args)]
struct CorpusArgs {
    /// Which tasks.
    #[arg(long, value_enum, default_value = "format")]
    corpus: Kind,
    /// Rollouts.
    #[arg(long, short = 'n', default_value_t = 1000)]
    count: usize,
    /// Completions per prompt.
    #[arg(long, default_value_t = 8)]
    group: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (default stdout).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// Runs the command; prints errors with their causes and returns the exit code.
pub fn run(cli: Cli) -> ExitCode {
    match run_inner(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Corpus(a) => write_corpus(a),
        Command::Run(a) => {
            let runtime = runtime(a.common.threads)?;
            runtime.block_on(run_load(a))
        }
        Command::Rft(a) => {
            let runtime = runtime(a.common.threads)?;
            runtime.block_on(run_rft(a))
        }
    }
}

fn runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().build().context("starting the async runtime")
}

fn write_corpus(a: CorpusArgs) -> anyhow::Result<()> {
    let rollouts = corpus::generate(a.corpus, a.count, a.group, a.seed);
    let mut out: Box<dyn std::io::Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for r in &rollouts {
        serde_json::to_writer(&mut out, &r.to_nova())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn default_addr(target: Target) -> &'static str {
    if target.is_grpc() { "127.0.0.1:50051" } else { "127.0.0.1:8080" }
}

async fn door(c: &Common, corpus_size: usize, group: usize) -> anyhow::Result<(Arc<Door>, String)> {
    let addr = c.addr.clone().unwrap_or_else(|| default_addr(c.target).to_owned());
    let mut rollouts = corpus::generate(c.corpus, corpus_size.max(c.batch), group, c.seed);
    if let Some(text) = &c.fixed_completion {
        rollouts.iter_mut().for_each(|r| r.completion = text.clone());
    }
    let door = Door::new(DoorConfig {
        target: c.target,
        addr: &addr,
        reward: &c.reward,
        batch: c.batch,
        rollouts: &rollouts,
        auth_token: c.auth_token.as_deref(),
        timeout: Duration::from_millis(c.timeout_ms),
        grpc_connections: c.grpc_connections,
    })
    .await?;
    Ok((door, addr))
}

async fn run_load(a: RunArgs) -> anyhow::Result<()> {
    let c = &a.common;
    if let Some(rate) = a.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a positive number, got {rate}");
    }
    let duration = match (a.duration, a.requests) {
        (Some(d), _) => d,
        (None, Some(_)) => DEFAULT_MAX_DURATION_S,
        (None, None) => DEFAULT_DURATION_S,
    };
    anyhow::ensure!(duration.is_finite() && duration > 0.0, "--duration must be a positive number of seconds, got {duration}");
    let (door, addr) = door(c, c.corpus_size.unwrap_or(64 * c.batch), c.group).await?;
    let rec = Arc::new(Recorder::new(c.batch));
    let info = RunInfo {
        concurrency: Some(a.concurrency),
        rate: a.rate,
        poisson: a.poisson,
        ..c.run_info(if a.rate.is_some() { "open" } else { "closed" }, addr)
    };
    let start = Instant::now();
    let stop = drive::Stop { end: start + Duration::from_secs_f64(duration), max_requests: a.requests };
    let progress = progress(rec.clone(), c.quiet, Some(duration));
    match a.rate {
        Some(rate) => {
            let arrivals = drive::Arrivals {
                rate,
                poisson: a.poisson,
                seed: c.seed,
                max_in_flight: a.concurrency,
                drain: Duration::from_secs_f64(a.drain.max(0.0)),
            };
            drive::open(door, rec.clone(), arrivals, stop).await
        }
        None => drive::closed(door, rec.clone(), a.concurrency, stop).await,
    }
    let elapsed = start.elapsed();
    progress.abort();
    finish(c, rec.report(info, elapsed))
}

async fn run_rft(a: RftArgs) -> anyhow::Result<()> {
    let c = &a.common;
    let per_step = a.global_batch_size * a.number_generation;
    anyhow::ensure!(per_step > 0, "--global-batch-size and --number-generation must be at least 1");
    let size = c.corpus_size.unwrap_or((per_step * a.steps).min(65_536));
    let (door, addr) = door(c, size, a.number_generation).await?;
    let rec = Arc::new(Recorder::new(c.batch));
    let shape = RftShape {
        global_batch_size: a.global_batch_size,
        number_generation: a.number_generation,
        workers: a.workers,
        in_flight: a.in_flight,
        steps: a.steps,
    };
    let info = RunInfo { rft: Some(shape), ..c.run_info("rft", addr) };
    let start = Instant::now();
    let stop = drive::Stop { end: start + Duration::from_secs_f64(a.max_duration), max_requests: None };
    let progress = progress(rec.clone(), c.quiet, None);
    drive::rft(door, rec.clone(), shape, Duration::from_millis(a.step_gap_ms), stop).await;
    let elapsed = start.elapsed();
    progress.abort();
    finish(c, rec.report(info, elapsed))
}

impl Common {
    /// What the report says about a run in `mode` against `addr`; the mode's own fields unset.
    fn run_info(&self, mode: &'static str, addr: String) -> RunInfo {
        RunInfo {
            mode,
            target: self.target,
            addr,
            reward: self.reward.clone(),
            corpus: self.corpus,
            seed: self.seed,
            batch: self.batch,
            concurrency: None,
            rate: None,
            poisson: false,
            rft: None,
        }
    }
}

fn finish(c: &Common, report: report::Report) -> anyhow::Result<()> {
    match c.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{}", serde_json::to_string_pretty(&report)?),
        Some(p) => {
            print!("{}", report.table());
            std::fs::write(p, serde_json::to_vec_pretty(&report)?).with_context(|| format!("writing {}", p.display()))?;
        }
        None => print!("{}", report.table()),
    }
    Ok(())
}

/// A progress line on stderr (shown only on a terminal), updated four times a second.
fn progress(rec: Arc<Recorder>, quiet: bool, duration: Option<f64>) -> tokio::task::JoinHandle<()> {
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new_spinner() };
    tokio::spawn(async move {
        let start = Instant::now();
        let mut last = (start, 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let s = rec.snapshot();
            let now = Instant::now();
            let rate = (s.ok - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-3);
            if now - last.0 >= Duration::from_secs(1) {
                last = (now, s.ok);
            }
            let total = duration.map_or(String::new(), |d| format!("/{d:.0}s"));
            bar.set_message(format!(
                "{:.1}s{total}  sent {}  ok {}  errors {}  {:.0} calls/s  p99 {:.2} ms",
                start.elapsed().as_secs_f64(),
                s.sent,
                s.ok,
                s.errors,
                rate,
                s.p99_us as f64 / 1000.0
            ));
            bar.tick();
        }
    })
}
