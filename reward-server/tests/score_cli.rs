//! `reward-server score` end to end: the real binary, a real file with good and bad lines.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{cache_dir, guest_config};
use serde_json::Value;

struct Run {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

fn config(dir: &std::path::Path, on_error: &str) -> std::path::PathBuf {
    guest_config(
        dir,
        "length",
        &format!(
            "on_error = \"{on_error}\"
limits = {{ fuel = 20_000_000 }}
"
        ),
    )
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
    input.extend_from_slice(
        br#"{"id":"nova-1","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"hello"}],"reference_answer":"x"}"#,
    );
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
    assert_eq!(out.status.code(), Some(74), "an unreadable input is an I/O error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("opening input /nonexistent.jsonl"));
}

/// `score` in `dir` with the `length` reward (config in `dir`), without input or output yet.
fn score_cmd(dir: &Path, on_error: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reward-server"));
    cmd.args(["score", "--reward", "length", "--no-progress", "--config"]).arg(config(dir, on_error)).arg("--cache-dir").arg(cache_dir());
    cmd
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The output with every `"latency_us":N` set to 0: the one field that is wall time.
fn without_latency(bytes: &[u8]) -> Vec<u8> {
    let key = b"\"latency_us\":";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(key) {
            out.extend_from_slice(key);
            out.push(b'0');
            i += key.len();
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

// See: issue 16 item 14 (`score -i f.jsonl -o f.jsonl` emptied the input and exited 0).
#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, mixed_input()).unwrap();
    let symlink = dir.path().join("symlink.jsonl");
    std::os::unix::fs::symlink(&input, &symlink).unwrap();
    let hardlink = dir.path().join("hardlink.jsonl");
    std::fs::hard_link(&input, &hardlink).unwrap();
    let dotted = dir.path().join(".").join("in.jsonl");
    for output in [&input, &symlink, &hardlink, &dotted] {
        let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).arg("-o").arg(output).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{}: {}", output.display(), stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("--output {} is the same file as --input {}", output.display(), input.display())), "{err}");
        assert_eq!(std::fs::read(&input).unwrap(), mixed_input(), "the input is untouched ({})", output.display());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4, "no partial file left (rewards.toml, in, 2 links)");
    }
    // Standard output appending to the input, and the input read from standard input.
    let appended = std::fs::OpenOptions::new().append(true).open(&input).unwrap();
    let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).stdout(appended).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("standard output is the same file as --input {}", input.display())), "{}", stderr(&out));
    let out =
        score_cmd(dir.path(), "zero").args(["-i", "-", "-o"]).arg(&hardlink).stdin(std::fs::File::open(&input).unwrap()).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert_eq!(std::fs::read(&input).unwrap(), mixed_input());
    // The input given as the partial file of the output.
    let output = dir.path().join("out.jsonl");
    let partial = dir.path().join("out.jsonl.partial");
    std::fs::copy(&input, &partial).unwrap();
    for resume in [false, true] {
        let mut cmd = score_cmd(dir.path(), "zero");
        cmd.arg("-i").arg(&partial).arg("-o").arg(&output);
        if resume {
            cmd.arg("--resume");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
        assert!(stderr(&out).contains("the partial file of --output"), "{}", stderr(&out));
        assert_eq!(std::fs::read(&partial).unwrap(), mixed_input());
    }
}

#[test]
fn the_output_is_replaced_only_once_every_line_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    let partial = dir.path().join("out.jsonl.partial");
    // A run that fails reading its input (a directory) leaves the old output as it was.
    std::fs::write(&output, b"the previous run\n").unwrap();
    let out = score_cmd(dir.path(), "zero").arg("-i").arg(dir.path()).arg("-o").arg(&output).output().unwrap();
    assert_eq!(std::fs::read(&output).unwrap(), b"the previous run\n", "not truncated: {}", stderr(&out));
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("the lines written so far are kept in {}", partial.display())), "{err}");
    assert!(err.contains("--resume"), "{err}");
    // ... and a second run does not overwrite the partial file without --resume.
    std::fs::write(&partial, b"six hours of work\n").unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, mixed_input()).unwrap();
    let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).arg("-o").arg(&output).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("{} exists", partial.display())), "{}", stderr(&out));
    assert_eq!(std::fs::read(&partial).unwrap(), b"six hours of work\n");
    assert_eq!(std::fs::read(&output).unwrap(), b"the previous run\n");
    std::fs::remove_file(&partial).unwrap();
    // A run that succeeds replaces the output and leaves no partial file.
    let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).arg("-o").arg(&output).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 9);
    assert!(!partial.exists());
    // Through a symbolic link, the file it points to is replaced, and the link stays a link.
    let link = dir.path().join("latest.jsonl");
    std::os::unix::fs::symlink(&output, &link).unwrap();
    std::fs::write(&output, b"stale\n").unwrap();
    let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).arg("-o").arg(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&output).unwrap().lines().count(), 9);
}

#[test]
fn an_unwritable_output_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, mixed_input()).unwrap();
    // (Permission bits do not stop root, so the directories are missing or not directories.)
    for output in [dir.path().join("no/such/dir/out.jsonl"), input.join("out.jsonl"), "/dev/full".into()] {
        let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).arg("-o").arg(&output).output().unwrap();
        assert_eq!(out.status.code(), Some(74), "{}: {}", output.display(), stderr(&out));
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
        assert_eq!(std::fs::read(&input).unwrap(), mixed_input());
    }
}

#[test]
fn streams_are_written_as_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, mixed_input()).unwrap();
    for output in ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
        let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).args(["-o", output]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{output}: {}", stderr(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 9, "{output}");
    }
    // Standard output redirected to a file: `/dev/stdout` is that file, written in place.
    let file = dir.path().join("redirected.jsonl");
    let out = score_cmd(dir.path(), "zero")
        .arg("-i")
        .arg(&input)
        .args(["-o", "/dev/stdout"])
        .stdout(std::fs::File::create(&file).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 9);
    let out = score_cmd(dir.path(), "zero").arg("-i").arg(&input).args(["-o", "-", "--resume"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume needs an --output file"), "{}", stderr(&out));
}

/// Runs `score` on `input` to `dir/out.jsonl` with `flags`, returning the exit code, stderr and
/// the output's bytes.
fn score_to_file(dir: &Path, input: &Path, on_error: &str, flags: &[&str]) -> (i32, String, Vec<u8>) {
    let output = dir.join("out.jsonl");
    let out = score_cmd(dir, on_error).arg("-i").arg(input).arg("-o").arg(&output).args(flags).output().unwrap();
    (out.status.code().unwrap(), stderr(&out), std::fs::read(&output).unwrap_or_default())
}

#[test]
fn resume_after_a_cut_partial_gives_the_same_bytes() {
    let flags = ["--batch-size", "3", "--threads", "2"];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, mixed_input()).unwrap();
    let (code, err, full) = score_to_file(dir.path(), &input, "zero", &flags);
    assert_eq!(code, 0, "{err}");
    let ends: Vec<usize> = full.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1).collect();
    assert_eq!(ends.len(), 9);
    let partial = dir.path().join("out.jsonl.partial");
    let output = dir.path().join("out.jsonl");
    // Nothing, mid-line, on a line edge (not a batch edge), everything but the rename.
    for (cut, kept) in [(0, 0), (ends[1] + 7, 2), (ends[3], 4), (ends[7] - 1, 7), (full.len(), 9)] {
        std::fs::remove_file(&output).unwrap();
        std::fs::write(&partial, &full[..cut]).unwrap();
        let (code, err, resumed) = score_to_file(dir.path(), &input, "zero", &[&flags[..], &["--resume"][..]].concat());
        assert_eq!(code, 0, "cut at {cut}: {err}");
        assert_eq!(without_latency(&resumed), without_latency(&full), "cut at {cut}");
        let kept_bytes = if kept == 0 { 0 } else { ends[kept - 1] };
        assert_eq!(resumed[..kept_bytes], full[..kept_bytes], "the kept lines are kept byte for byte (cut at {cut})");
        assert!(!partial.exists(), "renamed");
        if kept > 0 {
            assert!(err.contains(&format!("9 rollouts ({kept} kept from the partial output, {} scored)", 9 - kept)), "{err}");
        }
        // The summary counts the kept lines too.
        assert!(err.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["INVALID_INPUT", "5"]), "{err}");
    }
    // --resume without a partial file scores from the first line.
    std::fs::remove_file(&output).unwrap();
    let (code, err, resumed) = score_to_file(dir.path(), &input, "zero", &[&flags[..], &["--resume"][..]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(without_latency(&resumed), without_latency(&full));
    // A kept line that failed a `fail` reward still fails the run.
    let (code, _, full) = score_to_file(dir.path(), &input, "fail", &flags);
    assert_eq!(code, 1);
    std::fs::write(&partial, &full[..ends[4]]).unwrap();
    let (code, err, resumed) = score_to_file(dir.path(), &input, "fail", &[&flags[..], &["--resume"][..]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("a rollout failed: line 3: not valid JSON"), "{err}");
    assert_eq!(without_latency(&resumed), without_latency(&full));
}

#[test]
fn resume_refuses_a_partial_from_another_input_or_reward() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, mixed_input()).unwrap();
    let (code, err, full) = score_to_file(dir.path(), &input, "zero", &[]);
    assert_eq!(code, 0, "{err}");
    let output = dir.path().join("out.jsonl");
    std::fs::remove_file(&output).unwrap();
    let partial = dir.path().join("out.jsonl.partial");
    let five_lines = full.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(4).unwrap().0 + 1;
    let resume = |input: &Path, on_error: &str, partial_bytes: &[u8]| {
        std::fs::write(&partial, partial_bytes).unwrap();
        let (code, err, _) = score_to_file(dir.path(), input, on_error, &["--resume"]);
        assert_eq!(code, 65, "{err}");
        assert_eq!(std::fs::read(&partial).unwrap(), partial_bytes, "the partial file is kept as it was");
        assert!(!output.exists());
        err
    };
    // Another input: line 2's id differs.
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, String::from_utf8_lossy(&mixed_input()).replace("plain-1", "plain-2")).unwrap();
    let err = resume(&other, "zero", &full[..five_lines]);
    assert!(
        err.contains(&format!(
            "line 2 of {} has id \"plain-1\" but line 2 of --input {} has id \"plain-2\"",
            partial.display(),
            other.display()
        )),
        "{err}"
    );
    // Ids are line numbers when the input has none: a shorter input is caught by the count.
    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, &mixed_input()[..mixed_input().iter().position(|b| *b == b'\n').unwrap() + 1]).unwrap();
    let err = resume(&short, "zero", &full[..five_lines]);
    assert!(err.contains("it has more lines than --input"), "{err}");
    // Another reward config (another config hash).
    let err = resume(&input, "abstain", &full[..five_lines]);
    assert!(err.contains("line 1 of") && err.contains("is not a scored line of this reward"), "{err}");
    // Not scored lines at all.
    let err = resume(&input, "zero", b"{\"id\":\"nova-1\"}\nnot json\n");
    assert!(err.contains("line 1 of") && err.contains("no `provenance`"), "{err}");
}

#[test]
fn a_killed_run_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = guest_config(dir.path(), "length", "on_error = \"zero\"\nlimits = { fuel = 10_000_000_000, timeout_ms = 60000 }\n");
    let input = dir.path().join("in.jsonl");
    let lines: String = (0..KILL_LINES).map(|i| format!("{{\"id\":\"r{i}\",\"completion\":\"work {KILL_WORK}\"}}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let run = |output: &Path, resume: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reward-server"));
        cmd.args(["score", "--reward", "length", "--no-progress", "--batch-size", "2", "--threads", "1", "--config"])
            .arg(&cfg)
            .arg("--cache-dir")
            .arg(cache_dir())
            .arg("-i")
            .arg(&input)
            .arg("-o")
            .arg(output)
            .stderr(Stdio::piped());
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let full_path = dir.path().join("full.jsonl");
    let out = run(&full_path, false).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let full = std::fs::read(&full_path).unwrap();

    let output = dir.path().join("out.jsonl");
    let partial = dir.path().join("out.jsonl.partial");
    let mut child = run(&output, false).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let written = std::fs::read(&partial).unwrap_or_default().iter().filter(|b| **b == b'\n').count();
        if written >= 10 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the run ended before 10 lines were in its partial file");
        assert!(std::time::Instant::now() < deadline, "no progress in the partial file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!output.exists(), "a killed run leaves no output");
    let kept = std::fs::read(&partial).unwrap();
    let kept_lines = kept.iter().filter(|b| **b == b'\n').count();
    assert!(kept_lines < KILL_LINES, "killed before the end");
    let complete = |bytes: &[u8], n: usize| bytes.split_inclusive(|b| *b == b'\n').take(n).flatten().copied().collect::<Vec<u8>>();
    assert_eq!(without_latency(&complete(&kept, kept_lines)), without_latency(&complete(&full, kept_lines)), "the run's first lines");

    let out = run(&output, true).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("kept from the partial output"), "{}", stderr(&out));
    assert_eq!(without_latency(&std::fs::read(&output).unwrap()), without_latency(&full));
    assert!(!partial.exists());
}

/// The killed run's input: enough slow lines (a few ms each) that it is still running after its
/// first windows (8 lines each).
const KILL_LINES: usize = 400;
const KILL_WORK: usize = 2000;
