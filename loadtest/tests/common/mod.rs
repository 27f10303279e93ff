//! The real `reward-server` binary on loopback and the real `loadtest` binary against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use reward_server_harness::ServerProcess;
use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The `reward-server` binary of this build profile: `$REWARD_SERVER_BIN`, else the one next to
/// this test's profile directory (`cargo test --workspace` builds it, in the same profile).
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REWARD_SERVER_BIN") {
        return p.into();
    }
    // target/<profile>/deps/<this test> -> target/<profile>/reward-server
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("reward-server");
    assert!(
        path.exists(),
        "{} is missing: build it in this profile first (`cargo build [--release] -p reward-server`), \
         run the tests with `cargo test [--release] --workspace`, or set REWARD_SERVER_BIN",
        path.display()
    );
    path
}

/// A built guest plugin, `target/plugins/NAME.wasm`.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = repo_root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run scripts/build-plugins.sh first", path.display());
    path
}

/// A running `reward-server serve` on ephemeral loopback ports (config watching off); killed on drop.
pub struct Server {
    _process: ServerProcess,
    /// `127.0.0.1:port` of the gRPC listener.
    pub grpc: String,
    /// `127.0.0.1:port` of the HTTP listener.
    pub http: String,
}

impl Server {
    /// Starts the server with `config` and extra flags; returns once it listens.
    pub fn start(config: &Path, extra: &[&str]) -> Server {
        let flags: Vec<&str> = ["--watch-interval-ms", "0"].into_iter().chain(extra.iter().copied()).collect();
        let process = ServerProcess::start(&server_bin(), config, &repo_root().join("target/test-artifact-cache"), &flags);
        Server { grpc: process.grpc_addr.clone(), http: process.http_url.trim_start_matches("http://").to_owned(), _process: process }
    }

    /// The address for a door: gRPC or HTTP.
    pub fn addr(&self, target: &str) -> &str {
        if target.starts_with("grpc") { &self.grpc } else { &self.http }
    }
}

/// Runs `loadtest ARGS --json -` and returns the report; panics (with its stderr) if it fails.
pub fn loadtest(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest")).args(args).args(["--json", "-", "--quiet"]).output().expect("running loadtest");
    assert!(out.status.success(), "loadtest {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("loadtest printed no JSON report ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// `report[a][b]` as u64.
pub fn n(report: &Value, a: &str, b: &str) -> u64 {
    report[a][b].as_u64().unwrap_or_else(|| panic!("report has no {a}.{b}: {report:#}"))
}

/// `report[a][b]` as f64.
pub fn f(report: &Value, a: &str, b: &str) -> f64 {
    report[a][b].as_f64().unwrap_or_else(|| panic!("report has no {a}.{b}: {report:#}"))
}

/// A rewards config in `dir` with one reward `slow` over the limits guest, whose `work N`
/// completions burn CPU in proportion to N.
pub fn slow_guest_config(dir: &Path) -> PathBuf {
    let path = dir.join("rewards.toml");
    let plugin = plugin_path("limits-guest");
    std::fs::write(
        &path,
        format!(
            "[rewards.slow]\nplugin = \"{}\"\nlimits = {{ fuel = 20_000_000_000, timeout_ms = 60000, instance_reuse = 1000 }}\n",
            plugin.display()
        ),
    )
    .unwrap();
    path
}
