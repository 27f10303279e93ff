//! `reward-server validate` end to end: the real binary on every built-in reward (each must pass
//! its own probes on its built-in samples) and on a deliberately hackable reward (flagged, exit 3).

mod common;

use std::process::{Command, Output};

use common::{cache_dir, plugin_path, repo_root};
use serde_json::Value;

fn validate(config: &std::path::Path, reward: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["validate", "--reward", reward, "--config"])
        .arg(config)
        .arg("--cache-dir")
        .arg(cache_dir())
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn every_builtin_reward_passes_its_own_validate() {
    let config = repo_root().join("rewards.toml");
    let file: toml::Table = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let rewards = file["rewards"].as_table().unwrap();
    assert!(rewards.len() >= 9);
    for name in rewards.keys() {
        let out = validate(&config, name, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("result: ok, nothing flagged"), "{name}:\n{stdout}");
    }
}

#[test]
fn a_reward_that_pays_any_answer_tag_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewards.toml");
    std::fs::write(
        &config,
        format!("[rewards.any_tag]\nplugin = \"{}\"\nconfig = {{ answer_tag = \"answer\" }}\n", plugin_path("format").display()),
    )
    .unwrap();
    let input = repo_root().join("examples/validate/exact_answer.jsonl");
    let out = validate(&config, "any_tag", &["--input", input.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("FLAG answer-placeholder"), "{stdout}");

    let out = validate(&config, "any_tag", &["--input", input.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["flagged"], true);
    let flagged: Vec<&str> =
        report["probes"].as_array().unwrap().iter().filter(|p| p["flagged"] == true).map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(flagged, ["answer-placeholder"]);
    assert!(report["nondeterministic"].as_array().unwrap().is_empty());

    // No built-in samples next to this config: a usage error naming the path.
    let out = validate(&config, "any_tag", &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("examples/validate/any_tag.jsonl"));
}
