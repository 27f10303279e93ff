//! The `reward-server` binary: parse the command line, set up logging, run.

use clap::Parser;

// The server allocates and frees a few strings per rollout on many threads; mimalloc's
// thread-local free lists do that with less contention and fewer cycles than glibc's malloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // The log filter: REWARD_SERVER_LOG like every other setting, else RUST_LOG as users expect.
    let log_var = if std::env::var_os("REWARD_SERVER_LOG").is_some() { "REWARD_SERVER_LOG" } else { "RUST_LOG" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env(log_var).unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    reward_server::cli::run(reward_server::cli::Cli::parse())
}
