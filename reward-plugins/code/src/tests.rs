//! Native tests of everything but the sandbox: extraction, the suites, the verdicts and the
//! tally, with a scripted stand-in for the host's `programs` capability. The real runs (the
//! Python interpreter in fresh instances, the isolation attacks) are tested through the server
//! binary in `reward-server/tests/code_reward.rs`.

use std::sync::{Arc, Mutex};

use reward_sdk::programs::{Ending, Request, Run, set_native_runner};
use reward_sdk::{Reward, Rollout, RolloutError};
use serde_json::json;

use super::*;

/// One test at a time owns the process-wide stand-in.
static RUNNER: Mutex<()> = Mutex::new(());

fn ok(stdout: &str) -> Run {
    Run { ending: Ending::Ok, stdout: stdout.into(), value: None, instructions: 10 }
}

fn ended(ending: Ending) -> Run {
    Run { ending, stdout: String::new(), value: None, instructions: 10 }
}

/// Scores `answer` against `reference` with a stand-in that answers each request with
/// `respond`; returns the score and the requests it saw, as text.
fn score_with(
    config: serde_json::Value,
    answer: &str,
    reference: serde_json::Value,
    respond: impl Fn(&Request<'_>) -> Result<Run, String> + Send + 'static,
) -> (Result<reward_sdk::Score, RolloutError>, Vec<String>) {
    let _one = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    set_native_runner(Some(Box::new(move |request| {
        log.lock().unwrap().push(format!("{request:?}"));
        respond(&request)
    })));
    let config: Config = reward_sdk::check_config::<CodeReward>(&config.to_string()).unwrap();
    let rollout = Rollout { completion: answer.into(), reference: reference.to_string(), ..Rollout::default() };
    let score = CodeReward::score(&config, &rollout);
    set_native_runner(None);
    let seen = seen.lock().unwrap().clone();
    (score, seen)
}

fn io(tests: &[(&str, &str)]) -> serde_json::Value {
    json!({"input_output": {"inputs": tests.iter().map(|t| t.0).collect::<Vec<_>>(), "outputs": tests.iter().map(|t| t.1).collect::<Vec<_>>()}})
}

#[test]
fn extraction_takes_the_last_python_block() {
    let answer = "try this:\n```python\nprint(1)\n```\nor better:\n```py\nprint(2)\n```\n```text\nout\n```";
    assert_eq!(program_of(answer, Extract::Auto).as_deref(), Some("print(2)"));
    assert_eq!(program_of("```\nprint(3)\n```", Extract::LastBlock).as_deref(), Some("print(3)"));
    assert_eq!(program_of("print(4)", Extract::Auto).as_deref(), Some("print(4)"));
    assert_eq!(program_of("print(4)", Extract::LastBlock), None);
    assert_eq!(program_of("<think>```python\nx\n```</think>print(5)", Extract::Auto).as_deref(), Some("print(5)"));
}

#[test]
fn the_score_is_the_fraction_of_tests_passed() {
    let reference = io(&[("1 2\n", "3\n"), ("2 2\n", "4\n"), ("5 5\n", "10\n")]);
    let (score, seen) = score_with(json!({}), "```python\nx\n```", reference, |r| match r {
        Request::Script { stdin, .. } if stdin.starts_with('5') => Ok(ok("11\n")),
        Request::Script { stdin, .. } => Ok(ok(&format!("{} \n", stdin.split(' ').map(|n| n.trim().parse::<i32>().unwrap()).sum::<i32>()))),
        _ => unreachable!(),
    });
    let score = score.unwrap();
    assert!((score.value - 2.0 / 3.0).abs() < 1e-12, "{score:?}");
    assert_eq!(score.get("tests_passed"), Some(2.0));
    assert_eq!(score.get("wrong_answers"), Some(1.0));
    assert_eq!(score.get("first_failure"), Some(2.0));
    let reason = score.reason.unwrap();
    assert!(reason.contains("test 3 of 3: wrong answer; input \"5 5\\n\", expected \"10\\n\", got \"11\\n\""), "{reason}");
    assert_eq!(seen.len(), 3, "each test its own run");
}

#[test]
fn a_compile_error_stops_the_suite_and_all_stops_at_the_first_failure() {
    let reference = io(&[("1\n", "1\n"), ("2\n", "2\n"), ("3\n", "3\n")]);
    let (score, seen) =
        score_with(json!({}), "x", reference.clone(), |_| Ok(ended(Ending::CompileError("SyntaxError: invalid syntax (line 1)".into()))));
    let score = score.unwrap();
    assert_eq!((score.value, score.get("compile_error"), seen.len()), (0.0, Some(1.0), 1));
    assert!(score.reason.unwrap().contains("compile error: SyntaxError"));

    let (score, seen) = score_with(json!({"scoring": "all"}), "x", reference, |r| match r {
        Request::Script { stdin: "1\n", .. } => Ok(ok("1\n")),
        _ => Ok(ended(Ending::Timeout("fuel".into()))),
    });
    let score = score.unwrap();
    assert_eq!((score.value, score.get("timeouts"), seen.len()), (0.0, Some(1.0), 2));
    assert_eq!(score.get("pass_rate"), Some(1.0 / 3.0));
}

#[test]
fn call_based_tests_compare_returned_values() {
    let reference = json!({"input_output": {"fn_name": "add", "inputs": [[1, 2], [2, 2]], "outputs": [[3], [5]]}});
    let (score, seen) = score_with(json!({}), "def add(a, b): return a + b", reference, |r| match r {
        Request::Call { args, function: "add", .. } => {
            let v: Vec<i64> = serde_json::from_str(args).unwrap();
            Ok(Run { value: Some((v[0] + v[1]).to_string()), ..ok("") })
        }
        _ => unreachable!(),
    });
    let score = score.unwrap();
    assert_eq!(score.value, 0.5);
    assert!(score.reason.unwrap().contains("add(*[2,2]) expected [5], got 4"));
    assert!(seen[0].contains("args: \"[1,2]\""), "{seen:?}");
}

#[test]
fn humaneval_checks_the_entry_point_after_the_prompt() {
    let reference = json!({"prompt": "import math\ndef f(x):\n    \"\"\"doc\"\"\"\n", "test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "f"});
    let (score, seen) = score_with(json!({}), "```python\ndef f(x):\n    return x + 1\n```", reference.clone(), |r| match r {
        Request::Check { names, .. } if **names == ["f".to_owned()] => Ok(ok("")),
        _ => unreachable!(),
    });
    assert_eq!(score.unwrap().value, 1.0);
    assert!(seen[0].contains("program: \"import math\\ndef f(x):\\n    \\\"\\\"\\\"doc\\\"\\\"\\\"\\n\\ndef f(x):"), "{seen:?}");
    // A body-only answer continues the prompt's signature.
    let (score, seen) =
        score_with(json!({}), "    return x + 2\n", reference, |_| Ok(ended(Ending::Failed("assert candidate(1) == 2".into()))));
    let score = score.unwrap();
    assert_eq!((score.value, score.get("wrong_answers")), (0.0, Some(1.0)));
    assert!(score.reason.unwrap().contains("assertion failed: assert candidate(1) == 2"));
    assert!(seen[0].contains("\\\"\\\"\\\"doc\\\"\\\"\\\"\\n    return x + 2"), "{seen:?}");
}

#[test]
fn mbpp_binds_every_top_level_function() {
    let reference = json!({"test_list": ["assert g(1) == 1", "assert g(2) == 4"]});
    let (score, seen) = score_with(json!({}), "def helper(x): return x\ndef g(x): return helper(x) ** 2", reference, |r| match r {
        Request::Check { test: "assert g(1) == 1", .. } => Ok(ok("")),
        _ => Ok(ended(Ending::RuntimeError("ZeroDivisionError: division by zero".into()))),
    });
    let score = score.unwrap();
    assert_eq!((score.value, score.get("runtime_errors")), (0.5, Some(1.0)));
    assert!(seen[0].contains("names: [\"helper\", \"g\"]"), "{seen:?}");
    assert!(score.reason.unwrap().contains("runtime error: ZeroDivisionError: division by zero; test \"assert g(2) == 4\""));
}

#[test]
fn bad_references_are_invalid_input_and_a_missing_grant_is_a_plugin_failure() {
    let (score, _) = score_with(json!({}), "x", json!({"answer": 3}), |_| unreachable!());
    assert!(matches!(score, Err(RolloutError::InvalidInput(e)) if e.contains("no tests")));
    let (score, _) = score_with(json!({}), "x", io(&[]), |_| unreachable!());
    assert!(matches!(score, Err(RolloutError::InvalidInput(e)) if e.contains("empty")));
    let (score, _) = score_with(json!({}), "x", io(&[("1", "1")]), |_| Err("this reward grants no interpreter".into()));
    assert!(matches!(score, Err(RolloutError::Failed(e)) if e.contains("grants no interpreter")));
}

#[test]
fn no_block_and_oversized_programs_score_zero_without_running() {
    let (score, seen) = score_with(json!({"extract": "last_block"}), "print(1)", io(&[("", "1")]), |_| unreachable!());
    let score = score.unwrap();
    assert_eq!((score.value, seen.len()), (0.0, 0));
    assert!(score.reason.unwrap().contains("no fenced Python block"));
    let (score, seen) = score_with(json!({"max_program_bytes": 4}), "print(1)", io(&[("", "1")]), |_| unreachable!());
    assert_eq!((score.unwrap().value, seen.len()), (0.0, 0));
}

#[test]
fn configs_are_checked() {
    for (config, needle) in [
        (json!({"float_tol": -1.0}), "float_tol"),
        (json!({"max_tests": 0}), "max_tests"),
        (json!({"compare": "fuzzy"}), "unknown variant"),
        (json!({"extrakt": "whole"}), "unknown field"),
    ] {
        let err = reward_sdk::check_config::<CodeReward>(&config.to_string()).err().unwrap();
        assert!(err.contains(needle), "{config}: {err}");
    }
}
