//! The `reward-server` command line: `score` (offline batch scoring), `list` (the configured
//! rewards). `serve` joins when the network server lands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::Rewards;
use crate::engine::{HostBuilder, PluginHost, RewardKind, default_cache_dir};
use crate::offline::{self, DEFAULT_BATCH_SIZE, DEFAULT_MAX_LINE_BYTES, ScoreJob};

/// Exit code for a bad command line or config (BSD `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// Exit code when a reward with `on_error = "fail"` saw a failed rollout.
pub const EXIT_FAILED_ROLLOUT: u8 = 1;

/// Scores LLM rollouts with sandboxed WebAssembly reward plugins.
#[derive(Debug, Parser)]
#[command(name = "reward-server", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score a JSONL file of rollouts offline, on all cores.
    Score(ScoreArgs),
    /// List the rewards of a config (loading and checking every plugin).
    List(CommonArgs),
}

/// Options every command shares.
#[derive(Debug, Args)]
struct CommonArgs {
    /// The rewards config (TOML).
    #[arg(long, short = 'c', env = "REWARD_SERVER_CONFIG", default_value = "rewards.toml")]
    config: PathBuf,
    /// Where compiled plugins are cached [default: $REWARD_SERVER_CACHE_DIR, else ~/.cache/reward-server].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Don't cache compiled plugins on disk.
    #[arg(long)]
    no_cache: bool,
    /// Ceiling on any plugin instance's memory, in MiB; per-reward limits must stay under it.
    #[arg(long, default_value_t = 4096)]
    max_memory_mib: u64,
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
    /// Output JSONL, one scored line per input line [default: stdout].
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Rollouts per plugin batch.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Worker threads [default: one per core].
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// Longest accepted input line, in bytes; longer lines are INVALID_INPUT.
    #[arg(long, default_value_t = DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Don't draw the progress bar.
    #[arg(long)]
    no_progress: bool,
}

impl CommonArgs {
    fn host(&self) -> Result<PluginHost> {
        let cache = if self.no_cache { None } else { Some(self.cache_dir.clone().unwrap_or_else(default_cache_dir)) };
        HostBuilder::new().cache_dir(cache).max_memory_bytes(self.max_memory_mib << 20).build()
    }

    fn rewards(&self, host: &PluginHost) -> Result<Rewards> {
        Rewards::load(host, &self.config)
    }
}

/// Runs the command line; returns the process exit code. Errors are printed once, with their chain.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Score(args) => score(args),
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
        batch_size: args.batch_size,
        max_line_bytes: args.max_line_bytes,
        progress: !args.no_progress,
    };
    let summary = offline::run(reward, &job)?;
    eprint!("{}", summary.table());
    if let Some(fatal) = &summary.fatal {
        eprintln!("error: reward `{}` has on_error = \"fail\" and a rollout failed: {fatal}", reward.name);
        return Ok(ExitCode::from(EXIT_FAILED_ROLLOUT));
    }
    Ok(ExitCode::SUCCESS)
}

fn list(args: CommonArgs) -> Result<ExitCode> {
    let host = args.host()?;
    let rewards = args.rewards(&host)?;
    for reward in rewards.iter() {
        let what = match &reward.kind {
            RewardKind::Plugin(p) => format!("plugin {} {}", p.plugin.info().name, p.plugin.info().version),
            RewardKind::Composite(c) => format!(
                "composite of {}",
                c.components.iter().map(|(a, r)| format!("{a}={}", r.name)).collect::<Vec<_>>().join(", ")
            ),
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
