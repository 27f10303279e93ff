//! The `loadtest` binary: parse the command line, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    loadtest::run(loadtest::Cli::parse())
}
