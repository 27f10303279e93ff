//! `reward-server score` end to end: the real binary, a real file with good and bad lines.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{cache_dir, guest_config};
use serde_json::Value;

struct Run {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

fn config(dir: &std::path::Path, on_error: &str) -> std::path::PathBuf {
    guest_config(dir, "length", &format!("on_error = \"{on_error}\"
limits = {{ fuel = 20_000_000 }}
"))
}

fn score(input: &[u8], on_error: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("in.jsonl");
    std::fs::write(&input_path, input).unwrap();
    let output_path = dir.path().join("out.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--reward", "length", "--no-progress", "--config"])
        .arg(config(dir.path(), on_error))
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("--input")
        .arg(&input_path)
        .arg("--output")
        .arg(&output_path)
        .args(extra)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    Run {
        code: out.status.code().unwrap(),
        lines: text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Good lines in both shapes, and every kind of bad line, in one file.
fn mixed_input() -> Vec<u8> {
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"id":"nova-1","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"hello"}],"reference_answer":"x"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"id":"plain-1","prompt":"q","completion":"abc"}"#);
    input.push(b'\n');
    input.extend_from_slice(b"{\"id\":\"truncated\",\"messages\":[{\"role\":\"us\n");
    input.extend_from_slice(b"\xff\xfe not utf-8\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(br#"{"id":"wrong-shape","text":"hi"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"id":"user-last","messages":[{"role":"user","content":"q"}]}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"id":"spins","completion":"loop"}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"completion":"no id here"}"#); // no trailing newline
    input
}

#[test]
fn every_line_is_answered_in_order_with_typed_statuses() {
    let run = score(&mixed_input(), "zero", &["--batch-size", "3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ids: Vec<&str> = run.lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["nova-1", "plain-1", "line-3", "line-4", "line-5", "wrong-shape", "user-last", "spins", "line-9"]);
    let statuses: Vec<&str> = run.lines.iter().map(|l| l["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["OK", "OK", "INVALID_INPUT", "INVALID_INPUT", "INVALID_INPUT", "INVALID_INPUT", "INVALID_INPUT", "TIMEOUT", "OK"]
    );
    let scores: Vec<f64> = run.lines.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    assert_eq!(scores, [5.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0]);
    let error = |i: usize| run.lines[i]["error"].as_str().unwrap().to_owned();
    assert!(error(2).starts_with("line 3: not valid JSON: EOF while parsing"), "{}", error(2));
    assert!(error(3).starts_with("line 4: not valid UTF-8"), "{}", error(3));
    assert_eq!(error(4), "line 5: empty line");
    assert!(error(5).contains("line 6: expected `messages`"), "{}", error(5));
    assert!(error(6).contains("line 7: the last message has role `user`"), "{}", error(6));
    assert!(error(7).contains("ran out of fuel after 20000000 instructions"), "{}", error(7));
    assert_eq!(run.lines[7]["instructions"], 20_000_000);
    assert!(run.lines[0].get("error").is_none());
    assert_eq!(run.lines[0]["metrics"]["length"], 5.0);
    assert_eq!(run.lines[0]["provenance"]["reward"], "length");

    // The summary: throughput, metric table, status counts.
    assert!(run.stderr.contains("reward `length`: 9 rollouts in"), "{}", run.stderr);
    assert!(run.stderr.contains("rollouts/s"), "{}", run.stderr);
    let score_row = run.stderr.lines().find(|l| l.starts_with("score ")).expect("score row");
    assert!(score_row.split_whitespace().nth(1) == Some("9"), "{score_row}");
    assert!(run.stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["INVALID_INPUT", "5"]), "{}", run.stderr);
    assert!(run.stderr.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["TIMEOUT", "1"]), "{}", run.stderr);
}

/// The output without what may legitimately vary: wall time always, and (with `keep_instructions`
/// false) the instruction counts, which depend on the instance's history (its allocator state).
fn comparable(run: Run, keep_instructions: bool) -> Vec<Value> {
    run.lines
        .into_iter()
        .map(|mut l| {
            let obj = l.as_object_mut().unwrap();
            obj.remove("latency_us");
            if !keep_instructions {
                obj.remove("instructions");
            }
            l
        })
        .collect()
}

#[test]
fn results_do_not_depend_on_batching_or_threads() {
    let a = comparable(score(&mixed_input(), "zero", &["--batch-size", "1", "--threads", "1"]), false);
    let b = comparable(score(&mixed_input(), "zero", &["--batch-size", "64", "--threads", "2"]), false);
    assert_eq!(a, b);
}

#[test]
fn a_rerun_reports_the_same_instructions() {
    // Fresh instance per batch (instance_reuse = 1): every count is reproducible, threads or not.
    let flags = ["--batch-size", "3", "--threads", "2"];
    let a = comparable(score(&mixed_input(), "zero", &flags), true);
    let b = comparable(score(&mixed_input(), "zero", &flags), true);
    assert_eq!(a, b);
    // The guest's own work on the rollout (the glue between rollouts is charged to none).
    assert!(a[0]["instructions"].as_u64().unwrap() > 100, "{}", a[0]);
}

#[test]
fn abstain_writes_null_scores() {
    let run = score(&mixed_input(), "abstain", &[]);
    assert_eq!(run.code, 0);
    assert!(run.lines[2]["score"].is_null());
    assert_eq!(run.lines[0]["score"], 5.0);
}

#[test]
fn fail_policy_writes_everything_then_exits_nonzero() {
    let run = score(&mixed_input(), "fail", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.lines.len(), 9, "nothing lost");
    assert!(run.stderr.contains("has on_error = \"fail\" and a rollout failed: line 3: not valid JSON"), "{}", run.stderr);
}

#[test]
fn a_one_megabyte_line_and_an_oversized_line() {
    let big = format!("{{\"id\":\"big\",\"completion\":\"{}\"}}\n", "x".repeat(1 << 20));
    let mut input = big.clone().into_bytes();
    input.extend_from_slice(b"{\"id\":\"after\",\"completion\":\"ok\"}\n");
    let run = score(&input, "zero", &[]);
    assert_eq!(run.lines[0]["score"], (1 << 20) as f64);
    let run = score(&input, "zero", &["--max-line-bytes", "1000"]);
    assert_eq!(run.lines[0]["status"], "INVALID_INPUT");
    assert!(run.lines[0]["error"].as_str().unwrap().contains("more than --max-line-bytes (1000)"));
    assert_eq!(run.lines[1]["id"], "after");
    assert_eq!(run.lines[1]["score"], 2.0);
}

#[test]
fn reads_stdin_and_writes_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--reward", "length", "--input", "-", "--config"])
        .arg(config(dir.path(), "zero"))
        .arg("--cache-dir")
        .arg(cache_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{\"id\":\"s\",\"completion\":\"four\"}\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((line["id"].as_str(), line["score"].as_f64()), (Some("s"), Some(4.0)));
}

#[test]
fn usage_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "zero");
    let out = Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--reward", "nosuch", "--input", "x.jsonl", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown reward `nosuch` (known: length)"));
    let out = Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--reward", "length", "--input", "/nonexistent.jsonl", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("opening input /nonexistent.jsonl"));
}
