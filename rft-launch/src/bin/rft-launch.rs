//! `rft-launch`: launches Nova RFT jobs wired to the reward server. See rft-launch/README.md.
use clap::Parser;

fn main() -> std::process::ExitCode {
    rft_launch::cli::main_with(rft_launch::cli::Cli::parse())
}
