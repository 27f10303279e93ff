//! Shared test helpers: the built guest plugins and a host with a shared artifact cache.
#![allow(dead_code)]

pub mod server;

use std::path::PathBuf;
use std::sync::OnceLock;

use reward_server::engine::{HostBuilder, Message, PluginHost, Rollout};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A built guest plugin, `target/plugins/NAME.wasm`.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = repo_root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run scripts/build-plugins.sh first", path.display());
    path
}

/// Compiled artifacts shared by every test process, so each plugin compiles once per build.
pub fn cache_dir() -> PathBuf {
    repo_root().join("target/test-artifact-cache")
}

/// `reward-server score --reward REWARD --config CONFIG --input INPUT` into a temporary output
/// file, with the shared artifact cache: the process's output and the answer lines (those written,
/// whatever the exit code).
pub fn score_file(config: &std::path::Path, reward: &str, input: &std::path::Path) -> (std::process::Output, Vec<serde_json::Value>) {
    score_file_with(config, reward, input, &[])
}

/// [`score_file`] with more flags.
pub fn score_file_with(
    config: &std::path::Path,
    reward: &str,
    input: &std::path::Path,
    extra: &[&str],
) -> (std::process::Output, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--reward", reward, "--no-progress", "--config"])
        .arg(config)
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(&output)
        .args(extra)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    (out, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect())
}

/// One host per test process.
pub fn host() -> &'static PluginHost {
    static HOST: OnceLock<PluginHost> = OnceLock::new();
    HOST.get_or_init(|| HostBuilder::new().max_instances(64).cache_dir(Some(cache_dir())).build().unwrap())
}

/// A rollout whose answer is `completion`.
pub fn rollout(id: &str, completion: &str) -> Rollout {
    Rollout {
        id: id.into(),
        messages: vec![
            Message { role: "user".into(), content: "question".into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        reference: "null".into(),
        metadata: "{}".into(),
        group: None,
    }
}

/// Limits for guest rewards that run slow rollouts: fuel and time to spare.
pub const SLOW_LIMITS: &str = "limits = { fuel = 20_000_000_000, timeout_ms = 60000 }\n";

/// A rewards config in `dir` with one reward `name` over the limits guest; `rest` is the rest of
/// the reward's table (limits, policy).
pub fn guest_config(dir: &std::path::Path, name: &str, rest: &str) -> PathBuf {
    let path = dir.join("rewards.toml");
    let plugin = plugin_path("limits-guest");
    std::fs::write(&path, format!("[rewards.{name}]\nplugin = \"{}\"\n{rest}", plugin.display())).unwrap();
    path
}

/// `VmHWM` (peak) or `VmRSS` (now) of a process, in bytes.
pub fn vm_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"));
    kib << 10
}
