//! The real `reward-server` binary on loopback and the real `loadtest` binary against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A running `reward-server serve`; killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:port` of the gRPC listener.
    pub grpc: String,
    /// `127.0.0.1:port` of the HTTP listener.
    pub http: String,
}

impl Server {
    /// Starts the server with `config` and extra flags on ephemeral ports; returns once it listens.
    pub fn start(config: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(server_bin())
            .args(["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--watch-interval-ms", "0", "--config"])
            .arg(config)
            .arg("--cache-dir")
            .arg(repo_root().join("target/test-artifact-cache"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting reward-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                let _ = child.kill();
                panic!("reward-server did not report listening within 120 s (exit: {:?})", child.try_wait());
            };
            if let Some(rest) = line.strip_prefix("reward-server listening: ") {
                let mut grpc = String::new();
                let mut http = String::new();
                for part in rest.split_whitespace() {
                    if let Some(v) = part.strip_prefix("grpc=") {
                        grpc = v.to_owned();
                    } else if let Some(v) = part.strip_prefix("http=") {
                        http = v.trim_start_matches("http://").to_owned();
                    }
                }
                return Server { child, grpc, http };
            }
        }
    }

    /// The address for a door: gRPC or HTTP.
    pub fn addr(&self, target: &str) -> &str {
        if target.starts_with("grpc") { &self.grpc } else { &self.http }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `loadtest ARGS --json -` and returns the report; panics (with its stderr) if it fails.
pub fn loadtest(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .args(["--json", "-", "--quiet"])
        .output()
        .expect("running loadtest");
    assert!(out.status.success(), "loadtest {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("loadtest printed no JSON report ({e}): {}", String::from_utf8_lossy(&out.stdout)))
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
