//! The built-in `code` reward end to end: the real binary scores the labelled stdin/stdout and
//! call-based set (`testing/code/labelled.jsonl`, with correct, wrong, partial, time-out, memory,
//! output and recursion bombs, and isolation attacks that must score 0) as labelled, twice with
//! the same instruction counts; a reward without an interpreter grant, and components of the
//! wrong kind, fail with errors that name the problem. HumanEval runs from `tests/code`
//! (it needs the PyPI data set).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{plugin_path, repo_root, score_file};
use serde_json::Value;

/// A rewards config in `dir` with one reward `code`; `grant` is its `interpreter` line (or none).
fn config(dir: &Path, grant: &str) -> PathBuf {
    let path = dir.join("rewards.toml");
    let text =
        format!("[rewards.code]\nplugin = {:?}\nlimits = {{ timeout_ms = 120_000 }}\n{grant}\n", plugin_path("code").display().to_string());
    std::fs::write(&path, text).unwrap();
    path
}

/// The grant the labelled set's time-outs were written for: 2e9 instructions a run.
fn grant() -> String {
    format!(
        "interpreter = {{ plugin = {:?}, fuel = 2_000_000_000, timeout_ms = 30_000, memory_mib = 128, max_output_bytes = 65_536 }}",
        plugin_path("python-runner").display().to_string()
    )
}

struct Scored {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

fn score(config: &Path, input: &Path) -> Scored {
    let (out, lines) = score_file(config, "code", input);
    Scored { code: out.status.code().unwrap_or(-1), lines, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn by_id(lines: &[Value]) -> BTreeMap<String, Value> {
    lines.iter().map(|l| (l["id"].as_str().unwrap().to_owned(), l.clone())).collect()
}

#[test]
fn the_labelled_set_scores_as_labelled_and_the_same_twice() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &grant());
    let input = repo_root().join("testing/code/labelled.jsonl");
    let labels: BTreeMap<String, Value> = std::fs::read_to_string(repo_root().join("testing/code/labelled.labels.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    let first = score(&config, &input);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.lines.len(), labels.len());
    let mut off = Vec::new();
    for line in &first.lines {
        let id = line["id"].as_str().unwrap();
        let label = &labels[id];
        assert_eq!(line["status"], "OK", "{id}: {line}");
        let (got, want) = (line["score"].as_f64().unwrap(), label["expected_score"].as_f64().unwrap());
        if (got - want).abs() > 1e-9 {
            off.push(format!("{id} ({}): scored {got}, labelled {want}: {}", label["kind"], line["reason"]));
        }
    }
    assert!(off.is_empty(), "rollouts off their label:\n{}", off.join("\n"));

    // What each kind of failure looks like in the metrics.
    let first = by_id(&first.lines);
    let metric = |id: &str, name: &str| first[id]["metrics"][name].as_f64().unwrap();
    assert_eq!(metric("primes-infinite-loop", "timeouts"), 6.0);
    assert_eq!(metric("primes-memory-grow", "out_of_memory"), 6.0);
    assert_eq!(metric("maxsub-huge-output", "output_limits"), 5.0);
    assert_eq!(metric("sum-compile-error", "compile_error"), 1.0);
    assert_eq!(metric("rev-reversed-string", "first_failure"), 0.0);
    assert_eq!(metric("sum-correct", "first_failure"), -1.0);
    // The program runs are the rollout's instructions: five runs of CPython, not the plugin alone.
    assert!(first["sum-correct"]["instructions"].as_u64().unwrap() > 1_000_000, "{}", first["sum-correct"]);

    // Fresh instances and fuel: the same scores, reasons and instruction counts on a second run,
    // time-outs included.
    let second = by_id(&score(&config, &input).lines);
    for (id, a) in &first {
        let b = &second[id];
        assert_eq!((&a["score"], &a["reason"], &a["instructions"]), (&b["score"], &b["reason"], &b["instructions"]), "{id}");
    }
}

#[test]
fn a_reward_without_an_interpreter_grant_fails_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        r#"{"id":"a","messages":[{"role":"user","content":"q"},{"role":"assistant","content":"print(3)"}],"reference_answer":{"input_output":{"inputs":[""],"outputs":["3"]}}}"#,
    )
    .unwrap();
    let run = score(&config, &input);
    assert_eq!(run.lines.len(), 1, "{}", run.stderr);
    assert_eq!(run.lines[0]["status"], "PLUGIN_ERROR", "{}", run.lines[0]);
    let error = run.lines[0]["error"].as_str().unwrap();
    assert!(error.contains("this reward grants no interpreter"), "{error}");
}

#[test]
fn components_of_the_wrong_kind_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "").unwrap();
    let refused = |config: PathBuf| {
        let run = score(&config, &input);
        assert_ne!(run.code, 0);
        run.stderr
    };
    // A reward plugin granted as the interpreter.
    let format_as_interpreter = format!("interpreter = {{ plugin = {:?} }}", plugin_path("format").display().to_string());
    let stderr = refused(config(dir.path(), &format_as_interpreter));
    assert!(stderr.contains("not an interpreter component") && stderr.contains("reward:plugin/interpreter"), "{stderr}");
    // The interpreter loaded as a reward plugin: it imports `candidate`, which rewards are not granted.
    let path = dir.path().join("runner-as-reward.toml");
    std::fs::write(&path, format!("[rewards.code]\nplugin = {:?}\n", plugin_path("python-runner").display().to_string())).unwrap();
    let stderr = refused(path);
    assert!(stderr.contains("reward:plugin/candidate"), "{stderr}");
    // Budgets are checked, and named.
    let zero_fuel = grant().replace("fuel = 2_000_000_000", "fuel = 0");
    let stderr = refused(config(dir.path(), &zero_fuel));
    assert!(stderr.contains("`interpreter`") && stderr.contains("fuel must be at least 1"), "{stderr}");
    let typo = grant().replace("memory_mib", "memory_mb");
    let stderr = refused(config(dir.path(), &typo));
    assert!(stderr.contains("memory_mb"), "{stderr}");
}

#[test]
fn a_recursion_through_c_is_a_runtime_error_in_every_kind_of_run() {
    // `lru_cache` recurses through C: past the engine's wasm stack, not Python's recursion limit.
    let program = "import functools, sys\nsys.setrecursionlimit(10**7)\n@functools.lru_cache(maxsize=None)\ndef f(n):\n    return 0 if n == 0 else f(n - 1) + 1\n";
    let answer = |tail: &str| format!("```python\n{program}{tail}```");
    let lines = [
        serde_json::json!({"id": "script", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer("print(f(200000))\n")}],
            "reference_answer": {"input_output": {"inputs": [""], "outputs": ["200000"]}}}),
        serde_json::json!({"id": "check", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": answer("")}],
            "reference_answer": {"test_list": ["assert f(200000) == 200000", "assert f(3) == 3"]}}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let run = score(&config(dir.path(), &grant()), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = by_id(&run.lines);
    for id in ["script", "check"] {
        assert_eq!(out[id]["status"], "OK", "{}", out[id]);
        assert_eq!(out[id]["metrics"]["runtime_errors"], 1.0, "{}", out[id]);
    }
    for id in ["script", "check"] {
        assert!(out[id]["reason"].as_str().unwrap().contains("runtime error: stack overflow"), "{}", out[id]);
    }
    // The shallow test of the same program, in fresh instances, passes.
    assert_eq!(out["check"]["score"], 0.5, "{}", out["check"]);
}
