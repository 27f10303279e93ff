//! The `rft-launch` command line: parse, validate the spec, build the plan, then print it
//! (`--dry-run`) or carry it out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::aws::Executor;
use crate::job;
use crate::plan::Plan;
use crate::spec::Spec;

/// Exit code of a bad command line or spec (`EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

/// Launch Nova RFT jobs wired to the reward server.
#[derive(Debug, Parser)]
#[command(name = "rft-launch", version)]
pub struct Cli {
    /// The job spec (TOML); see rft-launch/examples/.
    #[arg(long, global = true, env = "RFT_LAUNCH_SPEC")]
    pub spec: Option<PathBuf>,
    /// Print every request (JSON) instead of sending it.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Send every AWS call here (a local emulator, a VPC endpoint), as the AWS CLI's option does.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Append each request sent (as --dry-run shows it, secrets masked) to this JSON-lines file.
    #[arg(long, global = true, env = "RFT_LAUNCH_RECORD", hide = true)]
    pub record: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The reward-Lambda bridge.
    Bridge {
        /// What to do with it.
        #[command(subcommand)]
        action: BridgeAction,
    },
    /// Training jobs.
    Job {
        /// What to do.
        #[command(subcommand)]
        action: JobAction,
    },
    /// Print the flags or code that point an open-source trainer at the server directly.
    Snippet {
        /// openrlhf, verl or trl.
        trainer: String,
        /// The server's HTTP URL (default: the spec's server.url).
        #[arg(long)]
        server_url: Option<String>,
        /// The reward (default: the spec's server.reward).
        #[arg(long)]
        reward: Option<String>,
    },
}

/// `bridge ...`.
#[derive(Debug, Subcommand)]
pub enum BridgeAction {
    /// Package the bridge, create or update the function, wait until it is active.
    Deploy,
}

/// The kinds of job.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// SageMaker Training Job.
    Smtj,
    /// SageMaker HyperPod (through the `hyperpod` CLI).
    Hyperpod,
    /// Bedrock model customization.
    Bedrock,
}

/// `job ...`.
#[derive(Debug, Subcommand)]
pub enum JobAction {
    /// Create a SageMaker Training Job from the spec's recipe.
    Smtj,
    /// Start a HyperPod job (`hyperpod start-job`) from the spec's recipe.
    Hyperpod,
    /// Create a Bedrock RFT customization job.
    Bedrock,
    /// Show a job's status.
    Status {
        /// The kind of job.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The job's name (Bedrock: name or ARN); default: the spec's job.name.
        name: Option<String>,
    },
    /// Stop a job.
    Stop {
        /// The kind of job.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The job's name (Bedrock: name or ARN); default: the spec's job.name.
        name: Option<String>,
    },
}

/// A failure that is the user's input (exit 64), not the run's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

fn load(cli: &Cli) -> Result<Spec> {
    let path = cli.spec.as_ref().ok_or_else(|| usage("--spec FILE is required for this command"))?;
    Spec::load(path).map_err(usage)
}

fn region(spec: Option<&Spec>) -> Result<String> {
    match spec {
        Some(s) => s.region().map_err(usage),
        None => std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .ok()
            .or_else(crate::aws::profile_region)
            .ok_or_else(|| usage("no region: set aws.region in the spec, or AWS_REGION")),
    }
}

fn hyperpod_job_name(name: Option<String>) -> Result<String> {
    name.ok_or_else(|| {
        usage(format!(
            "give the HyperPod job's name as `job hyperpod` printed it (\"HyperPod job name: ...\"): the recipes launcher renames \
             every Nova run to NAME[:{}]-xxxxx, so the spec's job.name does not find it",
            job::hyperpod::NAME_PREFIX_LEN
        ))
    })
}

fn job_name(spec: Option<&Spec>, name: Option<String>) -> Result<String> {
    name.or_else(|| spec.and_then(|s| s.job.as_ref()).map(|j| j.name.clone()))
        .ok_or_else(|| usage("give the job's name, or a --spec with job.name"))
}

/// Builds the plan and the region it runs in; every check happens here, before any call.
pub fn build(cli: &Cli) -> Result<(Plan, Option<String>, Option<String>)> {
    let spec = match (&cli.command, &cli.spec) {
        (Command::Snippet { .. } | Command::Job { action: JobAction::Status { .. } | JobAction::Stop { .. } }, None) => None,
        _ => Some(load(cli)?),
    };
    let spec_ref = spec.as_ref();
    let endpoint = cli.endpoint_url.clone().or_else(|| spec_ref.and_then(|s| s.aws.endpoint_url.clone()));
    let plan = match &cli.command {
        Command::Bridge { action: BridgeAction::Deploy } => {
            let s = spec_ref.expect("loaded");
            let b = s.require_bridge().map_err(usage)?;
            s.require_server().map_err(usage)?;
            job::bridge::check_binary(&b.binary).map_err(usage)?;
            let plan = job::bridge::plan(s).map_err(usage)?;
            if let Some(w) = job::bridge::plain_text_warning(s, !plan.secrets.is_empty()) {
                eprintln!("{w}");
            }
            plan
        }
        Command::Job { action: JobAction::Smtj } => job::smtj::plan(spec_ref.expect("loaded")).map_err(usage)?,
        Command::Job { action: JobAction::Hyperpod } => job::hyperpod::plan(spec_ref.expect("loaded")).map_err(usage)?,
        Command::Job { action: JobAction::Bedrock } => job::bedrock::plan(spec_ref.expect("loaded")).map_err(usage)?,
        Command::Job { action: JobAction::Status { kind, name } } => match kind {
            Kind::Smtj => job::smtj::status(&job_name(spec_ref, name.clone())?),
            Kind::Bedrock => job::bedrock::status(&job_name(spec_ref, name.clone())?),
            Kind::Hyperpod => job::hyperpod::status(&hyperpod_cli(spec_ref), spec_ref, &hyperpod_job_name(name.clone())?),
        },
        Command::Job { action: JobAction::Stop { kind, name } } => match kind {
            Kind::Smtj => job::smtj::stop(&job_name(spec_ref, name.clone())?),
            Kind::Bedrock => job::bedrock::stop(&job_name(spec_ref, name.clone())?),
            Kind::Hyperpod => job::hyperpod::stop(&hyperpod_cli(spec_ref), spec_ref, &hyperpod_job_name(name.clone())?),
        },
        Command::Snippet { trainer, server_url, reward } => {
            let server = spec_ref.and_then(|s| s.server.as_ref());
            let url = server_url.clone().or_else(|| server.map(|s| s.url.clone())).ok_or_else(|| usage("--server-url is required"))?;
            let reward = reward.clone().or_else(|| server.map(|s| s.reward.clone())).ok_or_else(|| usage("--reward is required"))?;
            let text = job::oss::snippet(trainer, &url, &reward)
                .ok_or_else(|| usage(format!("unknown trainer {trainer:?}: one of {}", job::oss::TRAINERS.join(", "))))?;
            Plan { steps: vec![crate::plan::Step::Print(text)], secrets: vec![] }
        }
    };
    let needs_aws = plan.steps.iter().any(|s| !matches!(s, crate::plan::Step::Run { .. } | crate::plan::Step::Print(_)));
    let region = if needs_aws { Some(region(spec_ref)?) } else { None };
    Ok((plan, region, endpoint))
}

fn hyperpod_cli(spec: Option<&Spec>) -> String {
    spec.and_then(|s| s.hyperpod.as_ref()).map(|h| h.cli.clone()).unwrap_or_else(|| "hyperpod".into())
}

/// Runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    let (plan, region, endpoint) = build(&cli)?;
    if cli.dry_run {
        println!("{}", serde_json::to_string_pretty(&plan.describe())?);
        return Ok(());
    }
    let mut executor = match region {
        Some(region) => Some(Executor::new(region, endpoint, cli.record.clone()).await?),
        None => None,
    };
    let answers = match &mut executor {
        Some(e) => e.run(&plan).await?,
        None => no_aws(&plan).await?,
    };
    // Lambda answers hold the function's environment, the token with it: never printed.
    for a in answers.iter().filter(|a| !a.is_null()) {
        println!("{}", serde_json::to_string_pretty(&crate::plan::redact(&job::bridge::mask_environment(a), &plan.secrets))?);
    }
    Ok(())
}

async fn no_aws(plan: &Plan) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    for step in &plan.steps {
        match step {
            crate::plan::Step::Print(t) => println!("{t}"),
            crate::plan::Step::Run { program, args, find_job_name } => {
                crate::plan::run_program(program, args, find_job_name.as_deref())
                    .with_context(|| format!("{program} (the HyperPod CLI)"))?;
            }
            _ => unreachable!("plans without AWS calls"),
        }
    }
    Ok(std::mem::take(&mut out))
}

/// `main` of the `rft-launch` binary: prints the error chain once; 64 for usage errors.
pub fn main_with(cli: Cli) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rft-launch: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() { ExitCode::from(EXIT_USAGE) } else { ExitCode::FAILURE }
        }
    }
}
