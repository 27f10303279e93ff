//! The grader through the entry point the host's native baseline uses (`reward_sdk::score_batch`),
//! so config parsing and the load-time checks run too; then every metric against the pinned Python
//! oracles (`testing/graders/expected.jsonl`, written by `testing/graders/oracle.py`).

use reward_sdk::{Message, MetricKind, Rollout, RolloutError, Score};
use serde_json::{Value, json};

use crate::{OpenAiGrader, SimilarityMetric};

fn rollout(completion: &str, reference: Value, metadata: Value) -> Rollout {
    Rollout {
        id: "r1".into(),
        messages: vec![
            Message { role: "user".into(), content: "What is the answer?".into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: completion.into(),
        reference: reference.to_string(),
        metadata: metadata.to_string(),
    }
}

fn run(config: &Value, rollout: Rollout) -> Result<Score, RolloutError> {
    let mut results = reward_sdk::score_batch::<OpenAiGrader>(&config.to_string(), &[rollout]);
    assert_eq!(results.len(), 1);
    results.pop().unwrap()
}

#[track_caller]
fn scored(config: &Value, completion: &str, reference: Value, metadata: Value) -> Score {
    match run(config, rollout(completion, reference, metadata)) {
        Ok(s) => s,
        Err(e) => panic!("expected a score, got {e:?}"),
    }
}

#[track_caller]
fn value(config: &Value, completion: &str, reference: Value) -> f64 {
    scored(config, completion, reference, json!({})).value
}

#[track_caller]
fn invalid(config: &Value, completion: &str, reference: Value, metadata: Value) -> String {
    match run(config, rollout(completion, reference, metadata)) {
        Err(RolloutError::InvalidInput(msg)) => msg,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[track_caller]
fn config_error(config: &Value) -> String {
    match reward_sdk::check_config::<OpenAiGrader>(&config.to_string()) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(e) => e,
    }
}

fn string_check(operation: &str, input: &str, reference: &str) -> Value {
    json!({"type": "string_check", "name": "check", "input": input, "reference": reference, "operation": operation})
}

fn similarity(metric: &str) -> Value {
    json!({
        "type": "text_similarity",
        "name": "similarity",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference_answer}}",
        "evaluation_metric": metric,
    })
}

// ---- The examples of OpenAI's graders guide ----

/// The guide's string check grader: `{{sample.output_text}}` against a dataset field, `eq`.
#[test]
fn guide_string_check_example() {
    let grader = json!({
        "type": "string_check",
        "name": "Example string check grader",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference_answer}}",
        "operation": "eq",
    });
    let s = scored(&grader, "fuzzy wuzzy was a bear", json!("fuzzy wuzzy was a bear"), json!({}));
    assert_eq!(s.value, 1.0);
    assert_eq!(s.get("score"), Some(1.0));
    assert!(s.metrics.iter().any(|m| m.name == "score" && m.kind == MetricKind::Reward));
    assert_eq!(value(&grader, "fuzzy wuzzy was a bear.", json!("fuzzy wuzzy was a bear")), 0.0);
}

/// The guide's four operations: `eq` and `ne` compare whole strings, case-sensitive; `like`
/// tests containment, case-sensitive; `ilike` containment ignoring case.
#[test]
fn guide_string_check_operations() {
    let cases = [
        // (operation, input, reference, expected)
        ("eq", "Paris", "Paris", 1.0),
        ("eq", "paris", "Paris", 0.0),
        ("eq", "Paris ", "Paris", 0.0),
        ("ne", "paris", "Paris", 1.0),
        ("ne", "Paris", "Paris", 0.0),
        ("like", "The capital is Paris.", "Paris", 1.0),
        ("like", "The capital is paris.", "Paris", 0.0),
        ("like", "Paris", "The capital is Paris.", 0.0),
        ("ilike", "THE CAPITAL IS PARIS.", "paris", 1.0),
        ("ilike", "The capital is Lyon.", "paris", 0.0),
        ("like", "anything", "", 1.0),
    ];
    for (op, input, reference, expected) in cases {
        let grader = string_check(op, "{{sample.output_text}}", "{{item.reference_answer}}");
        assert_eq!(value(&grader, input, json!(reference)), expected, "{op} {input:?} {reference:?}");
    }
}

/// The guide's text similarity grader, `fuzzy_match` (rapidfuzz), with the guide's sentence.
#[test]
fn guide_text_similarity_example() {
    let grader = json!({
        "type": "text_similarity",
        "name": "Example text similarity grader",
        "input": "{{sample.output_text}}",
        "reference": "{{item.reference_answer}}",
        "evaluation_metric": "fuzzy_match",
        "pass_threshold": 0.97,
    });
    let s = scored(&grader, "fuzzy wuzzy was a bear", json!("fuzzy wuzzy was a bear"), json!({}));
    assert_eq!((s.value, s.get("passed")), (1.0, Some(1.0)));
    // rapidfuzz 3.14.6: WRatio("fuzzy wuzzy was a bear", "wuzzy fuzzy was a bear",
    // processor=default_process) = 95.0 (token ratio, scaled by 0.95).
    let s = scored(&grader, "wuzzy fuzzy was a bear", json!("fuzzy wuzzy was a bear"), json!({}));
    assert!((s.value - 0.95).abs() < 1e-12, "{}", s.value);
    assert_eq!(s.get("passed"), Some(0.0));
    assert!(s.metrics.iter().any(|m| m.name == "passed" && m.kind == MetricKind::Metric));
    // Case and punctuation are removed by default_process first.
    assert_eq!(value(&grader, "Fuzzy Wuzzy was a bear!", json!("fuzzy wuzzy was a bear")), 1.0);
}

/// One known value per metric (from the pinned Python packages), through a whole config.
#[test]
fn every_metric_by_name() {
    let (input, reference) = ("the cat is on the mat", "the cat sat on the mat");
    let expected = [
        ("fuzzy_match", None),
        // 0 four-gram matches: nltk's unsmoothed BLEU is tiny but not 0.
        ("bleu", Some(7.262123179505913e-78)),
        ("rouge_1", Some(0.8333333333333334)),
        ("rouge_l", Some(0.8333333333333334)),
    ];
    for (metric, want) in expected {
        let v = value(&similarity(metric), input, json!(reference));
        assert!((0.0..=1.0).contains(&v), "{metric}: {v}");
        if let Some(want) = want {
            assert!((v - want).abs() <= 1e-12 * want.max(1e-300) + 1e-15, "{metric}: {v} != {want}");
        }
    }
    for metric in ["fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"] {
        assert_eq!(SimilarityMetric::parse(metric).map(SimilarityMetric::name).as_deref(), Some(metric));
    }
}

// ---- Templating ----

#[test]
fn templates_reach_item_fields_and_the_sample() {
    let grader = string_check("eq", "{{ sample.output_json.answer }}", "{{item.reference_answer.answer}}");
    assert_eq!(scored(&grader, r#"{"answer": "42"}"#, json!({"answer": "42"}), json!({})).value, 1.0);
    // A number renders as JSON text: 42 and "42" are the same string.
    assert_eq!(scored(&grader, r#"{"answer": 42}"#, json!({"answer": "42"}), json!({})).value, 1.0);
    assert_eq!(scored(&grader, r#"{"answer": 41}"#, json!({"answer": "42"}), json!({})).value, 0.0);

    // The row's other fields (the rollout's metadata) are `item.NAME`, and the keys of an
    // object reference too (a Nova row nests its fields under reference_answer).
    let grader = string_check("eq", "{{sample.output_text}}", "{{item.city}}, {{item.country}}");
    let s = scored(&grader, "Paris, France", json!({"country": "France"}), json!({"city": "Paris"}));
    assert_eq!(s.value, 1.0);
    // The row's own field wins over a reference key of the same name.
    let s = scored(&grader, "Paris, France", json!({"city": "Lyon", "country": "France"}), json!({"city": "Paris"}));
    assert_eq!(s.value, 1.0);

    // Array indexing, both spellings; literal text around variables is kept.
    let grader = string_check("eq", "answer: {{sample.output_text}}", "answer: {{item.options[1]}}/{{item.options.0}}");
    assert_eq!(scored(&grader, "b/a", json!(null), json!({"options": ["a", "b"]})).value, 1.0);
}

#[test]
fn a_missing_variable_is_invalid_input_naming_it() {
    let grader = string_check("eq", "{{sample.output_text}}", "{{item.answer}}");
    let msg = invalid(&grader, "x", json!("x"), json!({"question": "q"}));
    assert!(msg.contains("`reference`") && msg.contains("item.answer") && msg.contains("question"), "{msg}");

    let grader = string_check("eq", "{{sample.output_json.answer}}", "x");
    let msg = invalid(&grader, "not json", json!(null), json!({}));
    assert!(msg.contains("`input`") && msg.contains("not JSON"), "{msg}");
    let msg = invalid(&grader, r#"{"other": 1}"#, json!(null), json!({}));
    assert!(msg.contains("no field `answer`"), "{msg}");
}

// ---- Refused configs: the error names the field ----

#[test]
fn refused_graders_say_why() {
    let msg = config_error(&json!({"type": "score_model", "name": "judge", "input": [], "model": "gpt-4o"}));
    assert!(msg.contains("`type`") && msg.contains("score_model") && msg.contains("judge capability"), "{msg}");
    let msg = config_error(&json!({"type": "label_model", "name": "judge"}));
    assert!(msg.contains("label_model") && msg.contains("judge capability"), "{msg}");
    let msg = config_error(&json!({"type": "python", "name": "py", "source": "def grade(s, i): return 1"}));
    assert!(msg.contains("python") && msg.contains("Python plugin kit"), "{msg}");
    let msg = config_error(&json!({"type": "multi", "graders": {}, "calculate_output": "a"}));
    assert!(msg.contains("multi") && msg.contains("composite"), "{msg}");
    let msg = config_error(&similarity("cosine"));
    assert!(msg.contains("`evaluation_metric`") && msg.contains("embeddings"), "{msg}");
}

#[test]
fn config_mistakes_name_the_field() {
    let msg = config_error(&string_check("contains", "{{sample.output_text}}", "x"));
    assert!(msg.contains("`operation`") && msg.contains("\"contains\"") && msg.contains("eq, ne, like, ilike"), "{msg}");
    let msg = config_error(&similarity("rouge_6"));
    assert!(msg.contains("`evaluation_metric`") && msg.contains("rouge_6"), "{msg}");
    let msg = config_error(&json!({"type": "string_check", "input": "{{sample.output_text}}", "reference": "x"}));
    assert!(msg.contains("`operation`"), "{msg}");
    let msg = config_error(&json!({"type": "string_check", "input": "a", "reference": "b", "operation": "eq", "pass_threshold": 1}));
    assert!(msg.contains("unknown field `pass_threshold`"), "{msg}");
    let msg = config_error(&json!({"type": "string_check", "input": 3, "reference": "b", "operation": "eq"}));
    assert!(msg.contains("`input` must be a string"), "{msg}");
    let msg = config_error(&json!({"name": "x"}));
    assert!(msg.contains("missing field `type`"), "{msg}");
    let msg = config_error(&json!({"type": "bleu"}));
    assert!(msg.contains("unknown grader type \"bleu\""), "{msg}");
    let mut g = similarity("bleu");
    g["pass_threshold"] = json!("high");
    assert!(config_error(&g).contains("`pass_threshold` must be a number"));
}

#[test]
fn template_mistakes_fail_at_load() {
    for (template, needle) in [
        ("{{sample.output_text", "unclosed"),
        ("{{}}", "empty"),
        ("{{output_text}}", "unknown namespace `output_text`"),
        ("{{item}}", "names no field"),
        ("{{sample.output_tools}}", "`sample.output_tools` is not available"),
        ("{{sample.choices[0]}}", "`sample.choices` is not available"),
        ("{{sample.output_text.x}}", "has no fields"),
        ("{{item.a[x]}}", "not an array index"),
    ] {
        let msg = config_error(&string_check("eq", template, "x"));
        assert!(msg.contains("`input`") && msg.contains(needle), "{template}: {msg}");
    }
}

// ---- Agreement with the Python oracles ----

/// Every metric on every pair of `testing/graders/expected.jsonl` (written by
/// `testing/graders/oracle.py` with nltk 3.10.4, rapidfuzz 3.14.6, rouge-score 0.1.2).
///
/// Tolerance: bit equality for every metric but BLEU. Every other metric is a ratio of integer
/// counts computed in the same order as the Python code, so it is exactly the same double. BLEU is
/// `exp` of a sum of logs, and Rust's and CPython's math libraries may round `ln` and `exp` apart in
/// the last bit; an error of a few ulps in the sum `s` becomes a relative error of about
/// `|s| * EPSILON` in `exp(s)`, and `s` is `ln(bleu)`. So BLEU may differ by
/// `4 * EPSILON * (1 + |ln bleu|)` relative (about 1e-15 for a BLEU near 1, 3e-13 for nltk's
/// unsmoothed near-zero scores such as 1e-155); a zero must be exactly zero. Any counting
/// difference (one token, one n-gram, one edit) would move a score by more than 1e-5 on this
/// corpus. The expected values are read with serde_json's `float_roundtrip` (a dev-dependency
/// feature), so reading them loses nothing. The measured figures are printed (`--nocapture`) and
/// stated in the README.
#[test]
fn agrees_with_the_python_oracles() {
    let tolerance = |name: &str, want: f64| {
        if name == "bleu" && want > 0.0 { 4.0 * f64::EPSILON * want * (1.0 + want.ln().abs()) } else { 0.0 }
    };
    let mut max_rel = 0.0f64;
    let expected = include_str!("../../../testing/graders/expected.jsonl");
    let metrics = ["fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_2", "rouge_3", "rouge_4", "rouge_5", "rouge_l"];
    let mut pairs = 0;
    let mut max_diff = [0.0f64; 10];
    let mut exact = [0usize; 10];
    let mut failures = Vec::new();
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).expect("expected.jsonl is JSON lines");
        let input = row["input"].as_str().expect("input");
        let reference = row["reference"].as_str().expect("reference");
        pairs += 1;
        for (k, name) in metrics.iter().enumerate() {
            let want = row[name].as_f64().unwrap_or_else(|| panic!("row {} has no {name}", row["id"]));
            let metric = SimilarityMetric::parse(name).expect("a metric name");
            // Through a whole grader config and the SDK entry point, as the host calls it.
            let got = value(&similarity(name), input, json!(reference));
            assert_eq!(got.to_bits(), metric.score(input, reference).to_bits(), "{name}: the config path and the metric differ");
            let diff = (got - want).abs();
            max_diff[k] = max_diff[k].max(diff);
            exact[k] += usize::from(got == want);
            if want > 0.0 {
                max_rel = max_rel.max(diff / want);
            }
            if diff > tolerance(name, want) {
                failures.push(format!("row {} {name}: got {got}, oracle {want} ({input:?} vs {reference:?})", row["id"]));
            }
        }
    }
    assert_eq!(pairs, 380, "the oracle corpus has 380 pairs");
    for (k, name) in metrics.iter().enumerate() {
        println!("oracle agreement: {name}: max abs diff {:e}, {} of {pairs} pairs bit-equal", max_diff[k], exact[k]);
    }
    println!("oracle agreement: largest relative difference {max_rel:e}");
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
}

/// The bit-parallel LCS behind `fuzzy_match` against the textbook table, on lengths around the
/// 64-bit word boundaries (where the carry between words matters) and small alphabets (many
/// matches).
#[test]
fn bit_parallel_lcs_equals_the_table() {
    fn table(a: &[char], b: &[char]) -> usize {
        let mut row = vec![0usize; b.len() + 1];
        for &x in a {
            let mut diag = 0;
            for (j, &y) in b.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = if x == y { diag + 1 } else { up.max(row[j]) };
                diag = up;
            }
        }
        row[b.len()]
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut checked = 0;
    for len_a in [0, 1, 2, 63, 64, 65, 127, 128, 129, 200] {
        for len_b in [0, 1, 64, 65, 130, 300] {
            for alphabet in [2, 4, 26] {
                let word = |n: usize, next: &mut dyn FnMut(u64) -> u64| -> Vec<char> {
                    (0..n).map(|_| char::from(b'a' + next(alphabet) as u8)).collect()
                };
                let a = word(len_a, &mut next);
                let b = word(len_b, &mut next);
                assert_eq!(crate::fuzzy::lcs(&a, &b), table(&a, &b), "{len_a} x {len_b}, alphabet {alphabet}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 180);
}
