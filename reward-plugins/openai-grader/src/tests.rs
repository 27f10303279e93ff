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
fn unknown_grader_types_list_the_supported_ones() {
    let msg = config_error(&json!({"type": "regex_check", "input": "x"}));
    assert!(msg.contains("unknown grader type \"regex_check\""), "{msg}");
    for t in ["string_check", "text_similarity", "score_model", "label_model", "python", "multi", "pairwise"] {
        assert!(msg.contains(t), "{t} missing from {msg}");
    }
}

#[test]
fn cosine_compares_the_judges_embeddings() {
    // The only test that sets the process-wide stand-in embedder.
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    reward_sdk::judge::set_native_embedder(Some(Box::new(move |texts: &[String]| {
        seen.lock().unwrap().push(texts.to_vec());
        Ok(texts.iter().map(|t| if t.contains("cat") { vec![1.0, 0.0] } else { vec![1.0, 1.0] }).collect())
    })));
    let config = similarity("cosine");
    let grade = |completion: &str, reference: &str| run(&config, rollout(completion, json!(reference), json!({})));
    let same = grade("the cat", "a cat").unwrap();
    assert!((same.value - 1.0).abs() < 1e-12, "{same:?}");
    let apart = grade("the cat", "a dog").unwrap();
    assert!((apart.value - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9, "{apart:?}");
    assert_eq!(asked.lock().unwrap()[0], ["the cat", "a cat"], "input, then reference, in one call");
    reward_sdk::judge::set_native_embedder(Some(Box::new(|_: &[String]| Err(reward_sdk::judge::JudgeError::Timeout("slow".into())))));
    let failed = grade("the cat", "a cat").unwrap_err();
    assert!(format!("{failed:?}").contains("the judge failed (timeout)"), "{failed:?}");
    reward_sdk::judge::set_native_embedder(None);
    assert!(format!("{:?}", grade("x", "y").unwrap_err()).contains("not-granted"));
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

// ---- python graders, through a scripted stand-in for the granted interpreter ----

mod python_graders {
    use std::sync::{Arc, Mutex};

    use reward_sdk::programs::{Ending, Request, Run, set_native_runner};
    use reward_sdk::{RolloutError, Score};
    use serde_json::{Value, json};

    use super::{config_error, rollout, run};

    /// One test at a time owns the process-wide stand-in interpreter.
    pub(super) static RUNNER: Mutex<()> = Mutex::new(());

    pub(super) const SOURCE: &str = "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['answer'] else 0.0\n";

    pub(super) fn python(source: &str) -> Value {
        json!({"type": "python", "name": "py", "source": source, "image_tag": "2025-05-08"})
    }

    /// A run that ended `ending` with `value`.
    pub(super) fn ended(ending: Ending, value: Option<&str>) -> Result<Run, String> {
        Ok(Run { ending, stdout: String::new(), value: value.map(str::to_owned), instructions: 1234 })
    }

    /// What the stand-in interpreter was asked: (program, function, args parsed).
    pub(super) type Calls = Vec<(String, String, Value)>;

    /// Scores one rollout with a stand-in interpreter answering `respond` to every call; returns
    /// the result and the calls it received. Any request but `call-function` fails the test.
    pub(super) fn with_runner(
        config: &Value,
        completion: &str,
        reference: Value,
        metadata: Value,
        respond: impl Fn(&str, &Value) -> Result<Run, String> + Send + 'static,
    ) -> (Result<Score, RolloutError>, Calls) {
        let _one = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let log = calls.clone();
        set_native_runner(Some(Box::new(move |request| match request {
            Request::Call { program, function, args } => {
                let args: Value = serde_json::from_str(args).expect("call-function's args are JSON");
                log.lock().unwrap().push((program.to_owned(), function.to_owned(), args.clone()));
                respond(program, &args)
            }
            other => panic!("the python grader asked for {other:?}, not call-function"),
        })));
        let result = run(config, rollout(completion, reference, metadata));
        set_native_runner(None);
        let calls = calls.lock().unwrap().clone();
        (result, calls)
    }

    #[track_caller]
    fn failed(result: Result<Score, RolloutError>) -> String {
        match result {
            Err(RolloutError::Failed(msg)) => msg,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    /// The grader calls `grade` of the configured source once, with `[sample, item]`: the sample
    /// namespace (`output_text`, `output_json`) and the item namespace as templates read it (the
    /// row's own fields, `reference_answer`, and the keys of an object reference).
    #[test]
    fn calls_grade_with_the_sample_and_the_item() {
        let config = python(SOURCE);
        // A stand-in that computes what SOURCE computes, from the arguments it was given.
        let (result, calls) = with_runner(&config, "42", json!({"answer": "42"}), json!({"topic": "arithmetic"}), |_, args| {
            let right = args[0]["output_text"] == args[1]["answer"];
            ended(Ending::Ok, Some(if right { "1.0" } else { "0.0" }))
        });
        let s = result.unwrap();
        assert_eq!((s.value, s.get("score")), (1.0, Some(1.0)));
        assert_eq!(s.reason.as_deref(), Some("py: grade(sample, item) returned 1"));
        assert_eq!(calls.len(), 1);
        let (program, function, args) = &calls[0];
        assert_eq!((program.as_str(), function.as_str()), (SOURCE, "grade"));
        assert_eq!(
            args,
            &json!([
                {"output_text": "42", "output_json": 42},
                {"reference_answer": {"answer": "42"}, "answer": "42", "topic": "arithmetic"},
            ])
        );
        // A completion that is not JSON has `output_json` None; a plain-text reference is
        // `reference_answer` alone.
        let (result, calls) = with_runner(&config, "forty-two", json!("42"), json!({}), |_, _| ended(Ending::Ok, Some("0.0")));
        assert_eq!(result.unwrap().value, 0.0);
        assert_eq!(calls[0].2, json!([{"output_text": "forty-two", "output_json": null}, {"reference_answer": "42"}]));
    }

    /// The item dict and `{{item.NAME}}` agree when a name is in both the row and the reference:
    /// the row's own field wins in both.
    #[test]
    fn the_item_dict_is_what_templates_read() {
        let (_, calls) = with_runner(&python(SOURCE), "x", json!({"city": "Lyon", "answer": "a"}), json!({"city": "Paris"}), |_, _| {
            ended(Ending::Ok, Some("1"))
        });
        assert_eq!(calls[0].2[1]["city"], "Paris");
        let check = json!({"type": "string_check", "input": "{{item.city}}", "reference": "Paris", "operation": "eq"});
        let s = run(&check, rollout("x", json!({"city": "Lyon", "answer": "a"}), json!({"city": "Paris"}))).unwrap();
        assert_eq!(s.value, 1.0);
    }

    /// Numbers of any JSON form are the score, unclamped; a boolean is 1 or 0.
    #[test]
    fn numbers_and_booleans_are_scores() {
        for (returned, want) in [("0.25", 0.25), ("1", 1.0), ("-3.5", -3.5), ("7", 7.0), ("1e-3", 0.001), ("true", 1.0), ("false", 0.0)] {
            let returned = returned.to_owned();
            let (result, _) = with_runner(&python(SOURCE), "x", json!("x"), json!({}), move |_, _| ended(Ending::Ok, Some(&returned)));
            assert_eq!(result.unwrap().value, want);
        }
    }

    /// Every way a run can go wrong fails the rollout, naming the grader and what happened.
    #[test]
    fn every_failure_fails_the_rollout_naming_the_grader() {
        let cases: Vec<(Result<Run, String>, &str)> = vec![
            (
                ended(Ending::CompileError("SyntaxError: invalid syntax (line 2)".into()), None),
                "py: the python grader's source does not compile: SyntaxError: invalid syntax (line 2)",
            ),
            (ended(Ending::RuntimeError("KeyError: 'answer'".into()), None), "py: grade(sample, item) raised KeyError: 'answer'"),
            (
                ended(Ending::RuntimeError("NameError: name 'grade' is not defined".into()), None),
                "py: grade(sample, item) raised NameError: name 'grade' is not defined",
            ),
            (
                ended(Ending::Timeout("used its 2000000000 instructions".into()), None),
                "py: grade(sample, item) timed out: used its 2000000000 instructions",
            ),
            (
                ended(Ending::OutOfMemory("memory budget of 128 MiB".into()), None),
                "py: grade(sample, item) ran out of memory: memory budget of 128 MiB",
            ),
            (ended(Ending::OutputLimit, None), "py: grade(sample, item) printed more than the interpreter grant's output bound"),
            (ended(Ending::Failed("assert x".into()), None), "py: grade(sample, item) failed: assert x"),
            (ended(Ending::Ok, None), "py: grade(sample, item) returned no value"),
            (ended(Ending::Ok, Some("\"0.5\"")), "py: grade(sample, item) must return a number (a float), returned a string: \"0.5\""),
            (ended(Ending::Ok, Some("null")), "py: grade(sample, item) must return a number (a float), returned None"),
            (ended(Ending::Ok, Some("[1, 2]")), "py: grade(sample, item) must return a number (a float), returned a list: [1, 2]"),
            (ended(Ending::Ok, Some("{\"a\": 1}")), "py: grade(sample, item) must return a number (a float), returned a dict: {\"a\": 1}"),
            (ended(Ending::Ok, Some("1e999")), "py: grade(sample, item) returned 1e999, which is not a finite number"),
            (ended(Ending::Ok, Some("NaN")), "py: grade(sample, item) returned NaN, which is not a finite number"),
            (
                Err("this reward grants no interpreter (set `interpreter` on the reward)".into()),
                "py: the python grader could not run: this reward grants no interpreter (set `interpreter` on the reward)",
            ),
        ];
        for (answer, want) in cases {
            let answer = Mutex::new(Some(answer));
            let (result, calls) =
                with_runner(&python(SOURCE), "x", json!("x"), json!({}), move |_, _| answer.lock().unwrap().take().expect("one call"));
            let msg = failed(result);
            assert!(msg.starts_with(want), "{msg:?} does not start with {want:?}");
            assert_eq!(calls.len(), 1);
        }
        // Natively with no runner set, as on a host without a grant: the host's text is kept.
        let _one = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
        let msg = failed(run(&python(SOURCE), rollout("x", json!("x"), json!({}))));
        assert!(msg.starts_with("py: the python grader could not run: cannot run a program"), "{msg}");
    }

    #[test]
    fn python_config_mistakes_name_the_field() {
        let cases = [
            (json!({"type": "python", "name": "py"}), "missing field `source` (a python grader needs `source`)"),
            (json!({"type": "python", "source": 3}), "`source` must be a string, found a number"),
            (json!({"type": "python", "source": "  \n"}), "`source` is empty"),
            (json!({"type": "python", "source": SOURCE, "image_tag": 5}), "`image_tag` must be a string"),
            (json!({"type": "python", "source": SOURCE, "pass_threshold": 0.5}), "unknown field `pass_threshold` for a python grader"),
            (json!({"type": "python", "source": "#".repeat(crate::python::MAX_SOURCE_BYTES)}), "`source` is 262144 bytes"),
        ];
        for (config, needle) in cases {
            let msg = config_error(&config);
            assert!(msg.contains(needle), "{config}: {msg}");
        }
        // `name` and `image_tag` are optional.
        reward_sdk::check_config::<crate::OpenAiGrader>(&json!({"type": "python", "source": SOURCE}).to_string()).unwrap();
    }
}

// ---- multi graders: sub-graders combined by calculate_output ----

mod multi_graders {
    use reward_sdk::MetricKind;
    use reward_sdk::programs::Ending;
    use serde_json::{Value, json};

    use super::python_graders::{SOURCE, ended, python, with_runner};
    use super::{config_error, rollout, run, scored};
    use crate::formula::Formula;

    fn exact() -> Value {
        json!({"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}", "operation": "eq"})
    }

    fn rouge() -> Value {
        json!({"type": "text_similarity", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}", "evaluation_metric": "rouge_1"})
    }

    fn multi(graders: Value, formula: &str) -> Value {
        json!({"type": "multi", "name": "combined", "graders": graders, "calculate_output": formula})
    }

    #[track_caller]
    fn formula(text: &str, names: &[&str], values: &[f64]) -> f64 {
        Formula::parse(text, names).unwrap_or_else(|e| panic!("{text}: {e}")).eval(values).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// The guide's operators and functions, with their precedence.
    #[test]
    fn the_formula_language() {
        let names = ["a", "b", "c_2"];
        let values = [0.5, 0.25, 4.0];
        let cases = [
            ("a + b", 0.75),
            ("a - b - b", 0.0),
            ("a * b + c_2", 4.125),
            ("a + b * c_2", 1.5),
            ("(a + b) * c_2", 3.0),
            ("c_2 / 2 / 2", 1.0),
            ("2 ^ 3 ^ 2", 512.0),
            ("-2 ^ 2", -4.0),
            ("2 ^ -1", 0.5),
            ("-a + +b", -0.25),
            ("--a", 0.5),
            ("c_2 ^ a", 2.0),
            ("min(a, b)", 0.25),
            ("max(a, b, c_2)", 4.0),
            ("min(a)", 0.5),
            ("abs(b - a)", 0.25),
            ("floor(2.7) + ceil(2.1)", 5.0),
            ("floor(-0.5)", -1.0),
            ("sqrt(c_2)", 2.0),
            ("exp(0) + log(1)", 1.0),
            ("log(exp(2))", 2.0),
            ("(100 - abs(c_2 - 2 * a)) / 100", 0.97),
            ("0.9 * a + 0.1 * b", 0.475),
            (".5 + 1e-1 + 2E1", 20.6),
            ("  a\t+\nb  ", 0.75),
        ];
        for (text, want) in cases {
            let got = formula(text, &names, &values);
            assert!((got - want).abs() < 1e-12, "{text}: {got} != {want}");
        }
    }

    /// Parse errors point at the column and say what was expected there.
    #[test]
    fn formula_errors_point_at_the_column() {
        let names = ["name", "price"];
        let cases = [
            ("", "column 1: the formula is empty"),
            ("name +", "column 7: expected a number, a grader's name, a function call or `(`, found the end of the formula"),
            ("(name + price", "column 14: expected `)` to close the `(` at column 1, found the end of the formula"),
            ("name + price)", "column 13: expected an operator or the end of the formula, found `)`"),
            ("name price", "column 6: expected an operator or the end of the formula, found `price`"),
            ("name + cost", "column 8: unknown name `cost`; the graders are name, price (and the functions min, max"),
            ("round(name)", "column 1: unknown function `round`; the functions are min, max, abs, floor, ceil, exp, sqrt, log"),
            ("sqrt + name", "column 1: `sqrt` is a function: call it as `sqrt(...)`"),
            ("abs(name, price)", "column 1: `abs` takes one argument, got 2"),
            ("max()", "column 1: `max` takes one or more arguments, got 0"),
            ("min(name, price", "column 16: expected `)` to close the `(` at column 4 of `min(`, found the end of the formula"),
            ("name % price", "column 6: unexpected character '%'"),
            ("name ** 2", "column 7: expected a number, a grader's name, a function call or `(`, found `*`"),
            ("1.2.3 * name", "column 1: `1.2.3` is not a number"),
            ("1e999 * name", "column 1: the number `1e999` is too large"),
            ("name == price", "column 6: unexpected character '='"),
            ("é + name", "column 1: unexpected character 'é'"),
            ("naïve", "column 3: unexpected character 'ï'"),
        ];
        for (text, want) in cases {
            let msg = Formula::parse(text, &names).map(|_| ()).unwrap_err().to_string();
            assert!(msg.starts_with(want), "{text:?}: {msg:?} does not start with {want:?}");
        }
    }

    /// Division by zero, and steps without a finite result, fail the rollout naming the column.
    #[test]
    fn formula_failures_at_run_time() {
        let names = ["a", "b"];
        let cases = [
            ("a / b", [1.0, 0.0], "column 3: division by zero (1 / 0)"),
            ("a / (b - b)", [0.0, 1.0], "column 3: division by zero (0 / 0)"),
            ("sqrt(a - b)", [0.0, 1.0], "column 1: sqrt(-1) is not a finite number"),
            ("log(a)", [0.0, 1.0], "column 1: log(0) is not a finite number"),
            ("exp(a)", [1000.0, 0.0], "column 1: exp(1000) is not a finite number"),
            ("a ^ b", [0.0, -1.0], "column 3: 0 ^ -1 is not a finite number"),
            ("a * b * b", [1e200, 1e200], "column 3: 1e200 * 1e200 is not a finite number"),
        ];
        for (text, values, want) in cases {
            let msg = Formula::parse(text, &names).unwrap().eval(&values).unwrap_err().to_string();
            assert!(msg.starts_with(want), "{text}: {msg:?} does not start with {want:?}");
        }
        // Through a grader: the rollout fails, naming the grader and the formula; never a 0.
        let grader = multi(json!({"exact": exact(), "rouge": rouge()}), "rouge / exact");
        let msg = match run(&grader, rollout("the cat", json!("a cat"), json!({}))) {
            Err(reward_sdk::RolloutError::Failed(msg)) => msg,
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!(msg, "combined: calculate_output \"rouge / exact\": column 7: division by zero (0.5 / 0)");
    }

    /// string_check and text_similarity combined: the formula's value is the score, each
    /// sub-grader's score a metric named after its key.
    #[test]
    fn sub_scores_are_metrics_and_the_formula_is_the_score() {
        let grader = multi(json!({"exact": exact(), "rouge": rouge()}), "0.5 * exact + 0.5 * rouge");
        let s = scored(&grader, "the cat sat", json!("the cat sat"), json!({}));
        assert_eq!((s.value, s.get("score"), s.get("exact"), s.get("rouge")), (1.0, Some(1.0), Some(1.0), Some(1.0)));
        let kinds: Vec<(&str, MetricKind)> = s.metrics.iter().map(|m| (m.name.as_str(), m.kind)).collect();
        assert_eq!(kinds, [("score", MetricKind::Reward), ("exact", MetricKind::Metric), ("rouge", MetricKind::Metric)]);
        // rouge_1 of "the cat" against "a cat": one common unigram of two each side, F = 0.5.
        let s = scored(&grader, "the cat", json!("a cat"), json!({}));
        assert_eq!((s.value, s.get("exact"), s.get("rouge")), (0.25, Some(0.0), Some(0.5)));
        assert_eq!(s.reason.as_deref(), Some("combined: 0.5 * exact + 0.5 * rouge = 0.25 with exact = 0, rouge = 0.5"));
    }

    /// A failed sub-grader fails the rollout naming its key, with its own kind of failure.
    #[test]
    fn a_failed_sub_grader_fails_the_rollout_naming_the_key() {
        let missing = json!({"type": "string_check", "input": "{{item.city}}", "reference": "x", "operation": "eq"});
        let grader = multi(json!({"exact": exact(), "city": missing}), "exact + city");
        let msg = match run(&grader, rollout("x", json!("x"), json!({}))) {
            Err(reward_sdk::RolloutError::InvalidInput(msg)) => msg,
            other => panic!("expected invalid input, got {other:?}"),
        };
        assert!(msg.starts_with("combined: grader `city`: `input`: {{item.city}}: the rollout has no field `city`"), "{msg}");
    }

    /// string_check + text_similarity + python: the python grader gets the same sample and item
    /// as on its own, and its score joins the formula.
    #[test]
    fn python_inside_a_multi_grader() {
        let grader = multi(json!({"exact": exact(), "rouge": rouge(), "py": python(SOURCE)}), "(exact + rouge + 2 * py) / 4");
        let (result, calls) = with_runner(&grader, "the cat", json!({"answer": "the cat"}), json!({}), |_, args| {
            ended(Ending::Ok, Some(if args[0]["output_text"] == args[1]["answer"] { "1.0" } else { "0.0" }))
        });
        let s = result.unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].2[1]["answer"], "the cat");
        // The reference is an object: its JSON text is what the text graders compare with.
        assert_eq!((s.get("exact"), s.get("py")), (Some(0.0), Some(1.0)));
        let rouge = s.get("rouge").unwrap();
        assert!((s.value - (rouge + 2.0) / 4.0).abs() < 1e-12, "{s:?}");
        let (result, _) = with_runner(&grader, "the cat", json!("the cat"), json!({}), |_, _| {
            ended(Ending::RuntimeError("KeyError: 'answer'".into()), None)
        });
        let msg = match result {
            Err(reward_sdk::RolloutError::Failed(msg)) => msg,
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!(msg, "combined: grader `py`: py: grade(sample, item) raised KeyError: 'answer'");
    }

    #[test]
    fn multi_config_mistakes_fail_at_load() {
        let cases = [
            (json!({"type": "multi", "calculate_output": "a"}), "missing field `graders`"),
            (multi(json!({}), "1"), "`graders` is empty"),
            (multi(json!([exact()]), "1"), "`graders` must be an object of graders by key"),
            (multi(json!("exact"), "1"), "`graders` must be an object of graders by key, found a string"),
            (json!({"type": "multi", "graders": {"a": exact()}}), "missing field `calculate_output`"),
            (json!({"type": "multi", "graders": {"a": exact()}, "calculate_output": 1}), "`calculate_output` must be a string"),
            (multi(json!({"a": exact()}), "a + b"), "`calculate_output` \"a + b\": column 5: unknown name `b`; the graders are a"),
            (multi(json!({"a": exact()}), "a +"), "`calculate_output` \"a +\": column 4: expected a number"),
            (multi(json!({"a b": exact()}), "1"), "`graders`: bad key \"a b\": a key must be a name the formula can use"),
            (multi(json!({"1a": exact()}), "1"), "`graders`: bad key \"1a\""),
            (multi(json!({"max": exact()}), "1"), "`graders`: bad key \"max\": `max` is one of calculate_output's functions"),
            (multi(json!({"score": exact()}), "score"), "`graders`: bad key \"score\": `score` is the metric of the combined score"),
            (multi(json!({"a": {"type": "string_check", "input": "x"}}), "a"), "`graders.a`: missing field `reference`"),
            (multi(json!({"a": {"type": "nope"}}), "a"), "`graders.a`: `type`: unknown grader type \"nope\""),
            (multi(json!({"a": {"type": "python", "source": ""}}), "a"), "`graders.a`: `source` is empty"),
            (
                multi(json!({"a": multi(json!({"b": exact()}), "b")}), "a"),
                "`graders.a`: a multi grader cannot contain another multi grader",
            ),
            (
                json!({"type": "multi", "graders": {"a": exact()}, "calculate_output": "a", "pass_threshold": 1}),
                "unknown field `pass_threshold`",
            ),
        ];
        for (config, needle) in cases {
            let msg = config_error(&config);
            assert!(msg.contains(needle), "{config}: {msg}");
        }
        // A key the formula does not use is still run and reported.
        let s = scored(&multi(json!({"exact": exact(), "rouge": rouge()}), "exact"), "a b", json!("a b"), json!({}));
        assert_eq!((s.value, s.get("rouge")), (1.0, Some(1.0)));
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

// ---- Model graders (score_model, label_model), with a stand-in judge ----

mod model_graders {
    use std::sync::{Arc, Mutex};

    use reward_sdk::judge::{ChatMessage, Completion, JudgeError, Sampling, set_native_judge};
    use reward_sdk::{RolloutError, Score};
    use serde_json::{Value, json};

    use super::{config_error, rollout, run};
    use crate::model::score_format_instruction;

    /// One test at a time owns the process-wide stand-in judge.
    static JUDGE: Mutex<()> = Mutex::new(());

    type Seen = Vec<(Vec<ChatMessage>, Sampling)>;

    fn answer(text: &str) -> Result<Completion, JudgeError> {
        Ok(Completion { text: text.into(), model: "stand-in".into(), finish_reason: "stop".into(), ..Completion::default() })
    }

    /// Scores one rollout with a stand-in judge answering `respond`; returns the result and what
    /// the judge received.
    fn judged(
        config: &Value,
        completion: &str,
        reference: Value,
        metadata: Value,
        respond: impl Fn(&[ChatMessage]) -> Result<Completion, JudgeError> + Send + 'static,
    ) -> (Result<Score, RolloutError>, Seen) {
        let _one = JUDGE.lock().unwrap_or_else(|e| e.into_inner());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        set_native_judge(Some(Box::new(move |messages, sampling| {
            log.lock().unwrap().push((messages.to_vec(), *sampling));
            respond(messages)
        })));
        let result = run(config, rollout(completion, reference, metadata));
        set_native_judge(None);
        let seen = seen.lock().unwrap().clone();
        (result, seen)
    }

    /// The judge answers `text` to any question.
    fn answering(config: &Value, text: &str) -> Result<Score, RolloutError> {
        let text = text.to_owned();
        judged(config, "the answer", json!("gold"), json!({}), move |_| answer(&text)).0
    }

    #[track_caller]
    fn failed(result: Result<Score, RolloutError>) -> String {
        match result {
            Err(RolloutError::Failed(msg)) => msg,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn score_model() -> Value {
        json!({
            "type": "score_model",
            "name": "judge",
            "model": "gpt-4.1-2025-04-14",
            "input": [{"role": "user", "content": "Grade {{sample.output_text}} against {{item.reference_answer}}."}],
        })
    }

    fn label_model() -> Value {
        json!({
            "type": "label_model",
            "name": "sentiment",
            "model": "gpt-4o-2024-08-06",
            "input": [
                {"role": "developer", "content": "Classify the sentiment of the text. Answer with one word: positive, neutral or negative."},
                {"role": "user", "content": "{{sample.output_text}}"},
            ],
            "labels": ["positive", "neutral", "negative"],
            "passing_labels": ["positive", "neutral"],
        })
    }

    /// The score model grader of OpenAI's graders guide ("Score model graders"), run on the guide's
    /// own test (`item.reference_answer` 1.0, model sample "0.9"): the messages are the guide's,
    /// rendered, with the response-format instruction the guide says OpenAI requests added to its
    /// system message; its sampling_params reach the judge (reasoning_effort is not a judge knob).
    #[test]
    fn guide_score_model_example() {
        let grader = json!({
            "type": "score_model",
            "name": "my_score_model",
            "input": [
                {
                    "role": "system",
                    "content": "You are an expert grader. If the reference and model answer are exact matches, output a score of 1. If they are somewhat similar in meaning, output a score in 0.5. Otherwise, give a score of 0."
                },
                {"role": "user", "content": "Reference: {{ item.reference_answer }}. Model answer: {{ sample.output_text }}"}
            ],
            "pass_threshold": 0.5,
            "model": "o4-mini-2025-04-16",
            "range": [0, 1],
            "sampling_params": {"max_completions_tokens": 32768, "top_p": 1, "reasoning_effort": "medium"},
        });
        let reply = r#"{"result": 0.5, "steps": [{"description": "compare 0.9 with 1.0", "conclusion": "close, not equal"}]}"#;
        let (result, seen) = judged(&grader, "0.9", json!(1.0), json!({}), move |_| answer(reply));
        let score = result.unwrap();
        assert_eq!(
            (score.value, score.get("score"), score.get("passed"), score.get("judge_score_raw")),
            (0.5, Some(0.5), Some(1.0), Some(0.5))
        );
        assert_eq!(seen.len(), 1);
        let system = format!(
            "You are an expert grader. If the reference and model answer are exact matches, output a score of 1. If they are somewhat similar in meaning, output a score in 0.5. Otherwise, give a score of 0.\n\n{}",
            score_format_instruction(0.0, 1.0)
        );
        assert_eq!(seen[0].0, vec![ChatMessage::new("system", system), ChatMessage::new("user", "Reference: 1.0. Model answer: 0.9")]);
        assert_eq!(seen[0].1, Sampling { temperature: None, top_p: Some(1.0), max_tokens: Some(32768), seed: None });
        assert!(score.reason.as_deref().unwrap().contains("passes pass_threshold 0.5"), "{:?}", score.reason);
    }

    /// The instruction names the guide's fields and the grader's range.
    #[test]
    fn score_format_instruction_names_result_steps_and_range() {
        let text = score_format_instruction(1.0, 10.0);
        assert!(text.contains(r#""result": <your score, a number from 1 to 10>"#), "{text}");
        assert!(text.contains(r#""steps""#) && text.contains("description") && text.contains("conclusion"), "{text}");
    }

    /// Without a system message first, the instruction is a new first message; the configured
    /// messages follow, rendered, in order.
    #[test]
    fn score_model_prompt_as_configured() {
        let (result, seen) = judged(&score_model(), "Lyon", json!("Paris"), json!({}), |_| answer("0"));
        assert_eq!(result.unwrap().value, 0.0);
        assert_eq!(
            seen[0].0,
            vec![ChatMessage::new("system", score_format_instruction(0.0, 1.0)), ChatMessage::new("user", "Grade Lyon against Paris.")]
        );
        // No sampling_params: every knob is left to the grant (temperature 0, its seed, its max_tokens).
        assert_eq!(seen[0].1, Sampling::default());
    }

    #[test]
    fn score_model_answers_parsed() {
        for (text, want) in [
            ("0.75", 0.75),
            (" 1 \n", 1.0),
            ("0", 0.0),
            (r#"{"result": 0.25}"#, 0.25),
            (r#"{"steps": [], "result": 1}"#, 1.0),
            ("```json\n{\"result\": 0.5, \"steps\": []}\n```", 0.5),
            ("```\n0.125\n```", 0.125),
        ] {
            let s = answering(&score_model(), text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            assert_eq!((s.value, s.get("judge_score_raw")), (want, Some(want)), "{text:?}");
        }
    }

    /// The guide: "The output of the grader will be truncated to the given `range`". The number the
    /// model gave stays visible as `judge_score_raw` and in the reason.
    #[test]
    fn score_model_out_of_range_is_clamped_to_range() {
        let s = answering(&score_model(), "1.5").unwrap();
        assert_eq!((s.value, s.get("judge_score_raw")), (1.0, Some(1.5)));
        assert!(s.reason.as_deref().unwrap().contains("its answer 1.5 clamped"), "{:?}", s.reason);
        let s = answering(&score_model(), r#"{"result": -1.0}"#).unwrap();
        assert_eq!((s.value, s.get("judge_score_raw")), (0.0, Some(-1.0)));

        let mut grader = score_model();
        grader["range"] = json!([1, 10]);
        assert_eq!(answering(&grader, "7").unwrap().value, 7.0);
        assert_eq!(answering(&grader, "0").unwrap().value, 1.0);
        assert_eq!(answering(&grader, "11").unwrap().value, 10.0);
    }

    /// `samples` (ours): that many calls, seeds `seed + i`, the mean of the clamped numbers, their
    /// spread; a sample that fails fails the rollout, never a partial mean.
    #[test]
    fn score_model_samples_are_averaged_on_distinct_seeds() {
        let mut grader = score_model();
        grader["samples"] = json!(3);
        grader["sampling_params"] = json!({"temperature": 0.7, "seed": 40});
        // The stand-in answers by the seed it is sent: 40 -> 0.2, 41 -> 0.5, 42 -> 1.4 (clamped to 1).
        let by_seed = Arc::new(Mutex::new(Vec::new()));
        let (result, seen) = judged(&grader, "x", json!("y"), json!({}), {
            let by_seed = by_seed.clone();
            move |_| {
                let n = by_seed.lock().unwrap().len();
                by_seed.lock().unwrap().push(n);
                answer(["0.2", "0.5", "1.4"][n])
            }
        });
        let s = result.unwrap();
        let seeds: Vec<Option<u64>> = seen.iter().map(|(_, sampling)| sampling.seed).collect();
        assert_eq!(seeds, [Some(40), Some(41), Some(42)]);
        assert!(
            seen.iter().all(|(m, sampling)| *m == seen[0].0 && sampling.temperature == Some(0.7)),
            "one question, the config's sampling"
        );
        let mean = (0.2 + 0.5 + 1.0) / 3.0;
        assert!((s.value - mean).abs() < 1e-12, "{s:?}");
        assert_eq!(s.get("judge_score_samples"), Some(3.0));
        assert!((s.get("judge_score_raw").unwrap() - (0.2 + 0.5 + 1.4) / 3.0).abs() < 1e-12, "{s:?}");
        let stdev = (((0.2f64 - mean).powi(2) + (0.5 - mean).powi(2) + (1.0 - mean).powi(2)) / 3.0).sqrt();
        assert!((s.get("judge_score_stdev").unwrap() - stdev).abs() < 1e-12, "{s:?}");
        assert!(s.reason.as_deref().unwrap().contains("3 samples in [0, 1]: 0.2, 0.5, 1"), "{:?}", s.reason);

        // Without a seed the samples take 0, 1, ...; the second answer is junk: the rollout fails
        // naming that sample, after two calls.
        let mut grader = score_model();
        grader["samples"] = json!(3);
        let calls = Arc::new(Mutex::new(0));
        let (result, seen) = judged(&grader, "x", json!("y"), json!({}), {
            let calls = calls.clone();
            move |_| {
                let mut n = calls.lock().unwrap();
                *n += 1;
                answer(if *n == 2 { "no idea" } else { "0.5" })
            }
        });
        let msg = failed(result);
        assert!(msg.starts_with("judge (sample 2 of 3): the judge's answer \"no idea\""), "{msg}");
        assert_eq!(seen.iter().map(|(_, s)| s.seed).collect::<Vec<_>>(), [Some(0), Some(1)]);

        // One sample is the plain grader (the grant's seed, no sample metrics).
        let mut grader = score_model();
        grader["samples"] = json!(1);
        let (result, seen) = judged(&grader, "x", json!("y"), json!({}), |_| answer("0.5"));
        assert_eq!((result.unwrap().get("judge_score_samples"), seen[0].1.seed), (None, None));
        for bad in [json!(0), json!(17), json!(2.5), json!("3")] {
            let mut grader = score_model();
            grader["samples"] = bad.clone();
            let err = config_error(&grader);
            assert!(err.contains("`samples` must be a whole number from 1 to 16"), "{bad}: {err}");
        }
    }

    /// OpenAI scores non-numeric answers 0; here they fail the rollout, naming the answer, so a
    /// broken judge never reads as a bad completion.
    #[test]
    fn score_model_junk_answers_fail_not_zero() {
        for (text, needle) in [
            ("great answer", "not a number or a JSON object"),
            ("", "not a number"),
            ("0.5 because it is close", "not a number"),
            ("Score: 0.5", "not a number"),
            (r#"{"score": 0.5}"#, "without a `result` field"),
            (r#"{"result": "0.5"}"#, "`result` a string, not a number"),
            ("[0.5]", "is an array"),
            ("true", "is a boolean"),
            ("```json\n{\"result\": 0.5}", "not a number"),
        ] {
            let msg = failed(answering(&score_model(), text));
            assert!(msg.starts_with("judge: the judge's answer") && msg.contains(needle), "{text:?}: {msg}");
        }
        // A truncated answer says so.
        let (result, _) = judged(&score_model(), "x", json!("y"), json!({}), |_| {
            Ok(Completion { text: r#"{"result": 0."#.into(), finish_reason: "length".into(), ..Completion::default() })
        });
        let msg = failed(result);
        assert!(msg.contains("finish_reason length"), "{msg}");
    }

    #[test]
    fn label_model_passing_failing_and_unknown_labels() {
        let grader = label_model();
        let (result, seen) = judged(&grader, "I love it", json!(null), json!({}), |_| answer("positive"));
        let s = result.unwrap();
        assert_eq!((s.value, s.get("score"), s.get("judge_label_index")), (1.0, Some(1.0), Some(0.0)));
        // As configured: no instruction added, `developer` sent as `system`, sampling left to the grant.
        assert_eq!(
            seen[0].0,
            vec![
                ChatMessage::new("system", "Classify the sentiment of the text. Answer with one word: positive, neutral or negative."),
                ChatMessage::new("user", "I love it"),
            ]
        );
        assert_eq!(seen[0].1, Sampling::default());

        for (text, value, index) in [(" neutral\n", 1.0, 1.0), ("negative", 0.0, 2.0), (r#"{"label": "negative"}"#, 0.0, 2.0)] {
            let s = answering(&grader, text).unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            assert_eq!((s.value, s.get("judge_label_index")), (value, Some(index)), "{text:?}");
        }
        let s = answering(&grader, "negative").unwrap();
        assert!(s.reason.as_deref().unwrap().contains("\"negative\" (not a passing label)"), "{:?}", s.reason);

        for (text, needle) in [
            ("Positive", "not one of the labels (positive, neutral, negative)"),
            ("mixed", "not one of the labels"),
            ("The sentiment is positive.", "not one of the labels"),
            (r#"{"label": "mixed"}"#, "`label` \"mixed\", which is not one of the labels"),
            (r#"{"result": "positive"}"#, "without a `label` field"),
            ("", "not one of the labels"),
        ] {
            let msg = failed(answering(&grader, text));
            assert!(msg.starts_with("sentiment: the judge's answer") && msg.contains(needle), "{text:?}: {msg}");
        }
    }

    /// A judge error fails the rollout naming the error's kind and text (the host scores it
    /// JUDGE_ERROR anyway); without a judge the call is `not-granted`.
    #[test]
    fn judge_errors_fail_the_rollout_naming_the_error() {
        for (error, kind) in [
            (JudgeError::Timeout("judge `grader`: 3 attempts passed 30000 ms".into()), "timeout"),
            (JudgeError::NotGranted("reward `r` grants no judge".into()), "not-granted"),
            (JudgeError::Refused("judge `grader`: the model refused".into()), "refused"),
            (JudgeError::Unavailable("judge `grader`: 503 on every attempt".into()), "unavailable"),
            (JudgeError::InvalidResponse("judge `grader`: no choices".into()), "invalid-response"),
            (JudgeError::OverLimit("judge `grader`: more than 4 calls".into()), "over-limit"),
        ] {
            for grader in [score_model(), label_model()] {
                let e = error.clone();
                let (result, _) = judged(&grader, "x", json!("y"), json!({}), move |_| Err(e.clone()));
                let msg = failed(result);
                assert!(msg.contains(&format!("the judge failed ({kind})")) && msg.contains(error.text()), "{msg}");
            }
        }
        let _one = JUDGE.lock().unwrap_or_else(|e| e.into_inner());
        set_native_judge(None);
        let msg = failed(run(&score_model(), rollout("x", json!("y"), json!({}))));
        assert!(msg.contains("(not-granted)"), "{msg}");
    }

    /// A variable that names nothing is the rollout's fault: invalid input naming the message, and
    /// no judge call.
    #[test]
    fn a_missing_variable_in_a_message_is_invalid_input() {
        let mut grader = score_model();
        grader["input"] = json!([{"role": "system", "content": "Grade."}, {"role": "user", "content": "{{item.question}}"}]);
        let (result, seen) = judged(&grader, "x", json!("y"), json!({}), |_| answer("1"));
        match result {
            Err(RolloutError::InvalidInput(msg)) => assert!(msg.contains("`input[1].content`") && msg.contains("item.question"), "{msg}"),
            other => panic!("expected invalid input, got {other:?}"),
        }
        assert!(seen.is_empty());
    }

    #[test]
    fn sampling_params_map_onto_the_judge() {
        let mut grader = score_model();
        grader["sampling_params"] =
            json!({"temperature": 0.7, "top_p": 0.9, "seed": 42, "max_completions_tokens": 256, "reasoning_effort": "low"});
        let (_, seen) = judged(&grader, "x", json!("y"), json!({}), |_| answer("1"));
        assert_eq!(seen[0].1, Sampling { temperature: Some(0.7), top_p: Some(0.9), max_tokens: Some(256), seed: Some(42) });
        // Nulls are unset, like absent keys.
        grader["sampling_params"] = json!({"temperature": null, "seed": 3});
        let (_, seen) = judged(&grader, "x", json!("y"), json!({}), |_| answer("1"));
        assert_eq!(seen[0].1, Sampling { seed: Some(3), ..Sampling::default() });
    }

    #[test]
    fn model_config_mistakes_name_the_field() {
        let with = |base: Value, key: &str, value: Value| {
            let mut g = base;
            g[key] = value;
            g
        };
        let without = |base: Value, key: &str| {
            let mut g = base;
            g.as_object_mut().unwrap().remove(key);
            g
        };
        let cases = [
            (without(score_model(), "input"), "missing field `input`"),
            (with(score_model(), "input", json!([])), "`input` is empty"),
            (with(score_model(), "input", json!("Grade it")), "`input` must be an array"),
            (with(score_model(), "input", json!([{"role": "judge", "content": "x"}])), "`input[0].role`: unknown role \"judge\""),
            (with(score_model(), "input", json!([{"content": "x"}])), "missing field `input[0].role`"),
            (with(score_model(), "input", json!([{"role": "user"}])), "missing field `input[0].content`"),
            (with(score_model(), "input", json!([{"role": "user", "content": "x", "name": "n"}])), "unknown field `input[0].name`"),
            (
                with(score_model(), "input", json!([{"role": "user", "content": {"type": "input_image", "image_url": "u"}}])),
                "`input[0].content`: input_image content is not supported",
            ),
            (
                with(score_model(), "input", json!([{"role": "user", "content": "a"}, {"role": "user", "content": "{{sample.output}}"}])),
                "`input[1].content`",
            ),
            (with(score_model(), "range", json!([1, 0])), "`range` must be increasing"),
            (with(score_model(), "range", json!([0.5, 0.5])), "`range` must be increasing"),
            (with(score_model(), "range", json!([0])), "`range` must be two numbers"),
            (with(score_model(), "range", json!(["0", 1])), "`range[0]` must be a number"),
            (with(score_model(), "pass_threshold", json!("high")), "`pass_threshold` must be a number"),
            (with(score_model(), "model", json!(4)), "`model` must be a string"),
            (with(score_model(), "sampling_params", json!({"max_tokens": 10})), "unknown field `sampling_params.max_tokens`"),
            (with(score_model(), "sampling_params", json!({"temperature": -1})), "`sampling_params.temperature` must be at least 0"),
            (with(score_model(), "sampling_params", json!({"top_p": 0})), "`sampling_params.top_p` must be in (0, 1]"),
            (with(score_model(), "sampling_params", json!({"seed": -1})), "`sampling_params.seed` must be a non-negative integer"),
            (
                with(score_model(), "sampling_params", json!({"max_completions_tokens": 0})),
                "`sampling_params.max_completions_tokens` must be a positive integer",
            ),
            (with(score_model(), "sampling_params", json!({"reasoning_effort": 2})), "`sampling_params.reasoning_effort` must be a string"),
            (with(score_model(), "labels", json!(["a"])), "unknown field `labels` for a score_model grader"),
            (without(label_model(), "labels"), "missing field `labels`"),
            (without(label_model(), "passing_labels"), "missing field `passing_labels`"),
            (with(label_model(), "labels", json!([])), "`labels` is empty"),
            (with(label_model(), "passing_labels", json!([])), "`passing_labels` is empty"),
            (with(label_model(), "passing_labels", json!(["great"])), "`passing_labels`: \"great\" is not one of `labels`"),
            (with(label_model(), "labels", json!(["positive", "positive"])), "`labels` has \"positive\" twice"),
            (with(label_model(), "labels", json!(["positive", 3])), "`labels[1]` must be a string"),
            (with(label_model(), "labels", json!(["positive "])), "`labels[0]` \"positive \" has surrounding whitespace"),
            (with(label_model(), "range", json!([0, 1])), "unknown field `range` for a label_model grader"),
            (with(label_model(), "sampling_params", json!({})), "unknown field `sampling_params` for a label_model grader"),
        ];
        for (config, needle) in cases {
            let msg = config_error(&config);
            assert!(msg.contains(needle), "{config}: {msg}");
        }
        // A model grader inside a multi grader is checked as one: its mistakes fail the multi
        // grader at load, under its key.
        let msg = config_error(&json!({"type": "multi", "graders": {"a": without(score_model(), "input")}, "calculate_output": "a"}));
        assert!(msg.contains("`graders.a`: missing field `input`"), "{msg}");
        // The configs above are otherwise good.
        reward_sdk::check_config::<crate::OpenAiGrader>(&score_model().to_string()).unwrap();
        reward_sdk::check_config::<crate::OpenAiGrader>(&label_model().to_string()).unwrap();
        // `model` is optional here (the grant decides), an input_text content object is text.
        let mut g = without(score_model(), "model");
        g["input"] = json!([{"type": "message", "role": "user", "content": {"type": "input_text", "text": "{{sample.output_text}}"}}]);
        reward_sdk::check_config::<crate::OpenAiGrader>(&g.to_string()).unwrap();
    }

    /// A multi grader runs its judged sub-graders through the same judge grant: a score_model
    /// grader and a string_check combined, each reported under its key; a judge failure in the
    /// score_model grader fails the rollout naming the key.
    #[test]
    fn multi_combines_a_judged_grader_with_a_string_check() {
        let grader = json!({
            "type": "multi",
            "name": "judged and exact",
            "graders": {
                "judged": score_model(),
                "exact": {"type": "string_check", "input": "{{sample.output_text}}", "reference": "{{item.reference_answer}}", "operation": "eq"},
            },
            "calculate_output": "0.75 * judged + 0.25 * exact",
        });
        let (result, seen) = judged(&grader, "gold", json!("gold"), json!({}), |_| answer(r#"{"result": 0.6, "steps": []}"#));
        let s = result.unwrap();
        assert_eq!(seen.len(), 1, "one judge call for the one score_model grader");
        assert!((s.value - (0.75 * 0.6 + 0.25)).abs() < 1e-12, "{s:?}");
        assert_eq!((s.get("judged"), s.get("exact"), s.get("score")), (Some(0.6), Some(1.0), Some(s.value)));
        let (result, _) = judged(&grader, "gold", json!("gold"), json!({}), |_| Err(JudgeError::Timeout("no answer in 30 s".into())));
        let msg = failed(result);
        assert!(msg.starts_with("judged and exact: grader `judged`: "), "{msg}");
        assert!(msg.contains("timeout") && msg.contains("no answer in 30 s"), "{msg}");
    }

    // ---- pairwise (our extension): the completion against the reference, in both orders ----

    fn pairwise() -> Value {
        json!({
            "type": "pairwise",
            "name": "pair",
            "input": [
                {"role": "developer", "content": "Which answer to the question is better? Answer with exactly one of: A, B, tie."},
                {"role": "user", "content": "Question: {{item.question}}\nAnswer A: {{pair.first}}\nAnswer B: {{pair.second}}"},
            ],
        })
    }

    /// The two answers the judge was shown, (A, B), read off the user message of `pairwise()`.
    fn shown(messages: &[ChatMessage]) -> (String, String) {
        let user = &messages.last().unwrap().content;
        let (_, rest) = user.split_once("\nAnswer A: ").unwrap();
        let (a, b) = rest.split_once("\nAnswer B: ").unwrap();
        (a.to_owned(), b.to_owned())
    }

    /// A judge that prefers the answer `better` wherever it is shown (and answers `tie` when
    /// neither is it).
    fn preferring(better: &'static str) -> impl Fn(&[ChatMessage]) -> Result<Completion, JudgeError> + Send + 'static {
        move |messages| {
            let (a, b) = shown(messages);
            answer(if a == better {
                "A"
            } else if b == better {
                "B"
            } else {
                "tie"
            })
        }
    }

    fn pairwise_judged(
        config: &Value,
        respond: impl Fn(&[ChatMessage]) -> Result<Completion, JudgeError> + Send + 'static,
    ) -> (Result<Score, RolloutError>, Seen) {
        judged(config, "Paris", json!("Lyon"), json!({"question": "What is the capital of France?"}), respond)
    }

    #[track_caller]
    fn outcomes(s: &Score) -> (f64, Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
        (s.value, s.get("score"), s.get("pairwise_order1"), s.get("pairwise_order2"), s.get("pairwise_agreement"))
    }

    /// Order 1 shows the completion first and the reference second, order 2 the other way round;
    /// the messages are otherwise as configured (`developer` sent as `system`, nothing added), and
    /// sampling_params reach both calls.
    #[test]
    fn pairwise_prompts_rendered_in_both_orders() {
        let mut grader = pairwise();
        grader["sampling_params"] = json!({"temperature": 0, "seed": 11, "max_completions_tokens": 8});
        let (result, seen) = pairwise_judged(&grader, preferring("Paris"));
        result.unwrap();
        let system = ChatMessage::new("system", "Which answer to the question is better? Answer with exactly one of: A, B, tie.");
        let order1 =
            vec![system.clone(), ChatMessage::new("user", "Question: What is the capital of France?\nAnswer A: Paris\nAnswer B: Lyon")];
        let order2 = vec![system, ChatMessage::new("user", "Question: What is the capital of France?\nAnswer A: Lyon\nAnswer B: Paris")];
        let sampling = Sampling { temperature: Some(0.0), top_p: None, max_tokens: Some(8), seed: Some(11) };
        assert_eq!(seen, vec![(order1, sampling), (order2, sampling)]);
    }

    #[test]
    fn pairwise_consistent_win() {
        let (result, seen) = pairwise_judged(&pairwise(), preferring("Paris"));
        let s = result.unwrap();
        assert_eq!(outcomes(&s), (1.0, Some(1.0), Some(1.0), Some(1.0), Some(1.0)));
        assert_eq!(s.get("passed"), None);
        assert_eq!(seen.len(), 2);
        let reason = s.reason.as_deref().unwrap();
        assert_eq!(
            reason,
            "pair: the judge (stand-in) answered \"A\" with the completion first (completion wins) and \"B\" with the reference \
             first (completion wins): the orders agree; score 1"
        );
    }

    #[test]
    fn pairwise_consistent_loss() {
        let (result, _) = pairwise_judged(&pairwise(), preferring("Lyon"));
        let s = result.unwrap();
        assert_eq!(outcomes(&s), (0.0, Some(0.0), Some(0.0), Some(0.0), Some(1.0)));
        assert!(s.reason.as_deref().unwrap().contains("(reference wins)") && !s.reason.as_deref().unwrap().contains("bias"));
    }

    #[test]
    fn pairwise_tie() {
        let (result, _) = pairwise_judged(&pairwise(), |_| answer(" tie\n"));
        let s = result.unwrap();
        assert_eq!(outcomes(&s), (0.5, Some(0.5), Some(0.5), Some(0.5), Some(1.0)));
        assert!(s.reason.as_deref().unwrap().contains("(tie)"), "{:?}", s.reason);
    }

    /// A judge that always answers "A" says "completion wins" in order 1 and "reference wins" in
    /// order 2: the swap cancels it to 0.5, and the disagreement is reported as position bias.
    #[test]
    fn pairwise_position_biased_judge_scores_half_with_no_agreement() {
        let (result, seen) = pairwise_judged(&pairwise(), |_| answer("A"));
        let s = result.unwrap();
        assert_eq!(outcomes(&s), (0.5, Some(0.5), Some(1.0), Some(0.0), Some(0.0)));
        assert_eq!(seen.len(), 2);
        let reason = s.reason.as_deref().unwrap();
        assert!(reason.contains("(completion wins)") && reason.contains("(reference wins)"), "{reason}");
        assert!(reason.contains("the orders disagree (position bias)"), "{reason}");
        // A tie one way and a win the other disagree too: 0.75.
        let (result, _) = pairwise_judged(&pairwise(), |m: &[ChatMessage]| answer(if shown(m).0 == "Paris" { "A" } else { "tie" }));
        assert_eq!(outcomes(&result.unwrap()), (0.75, Some(0.75), Some(1.0), Some(0.5), Some(0.0)));
    }

    /// Labels of the config's own, answered bare or as a JSON object's `label` (as label_model
    /// reads them); `reference` a template of its own; `passed` against pass_threshold.
    #[test]
    fn pairwise_custom_labels_reference_and_pass_threshold() {
        let mut grader = pairwise();
        grader["labels"] = json!({"first": "1", "second": "2", "tie": "same"});
        grader["reference"] = json!("{{item.gold}}");
        grader["pass_threshold"] = json!(0.75);
        let respond = |m: &[ChatMessage]| answer(if shown(m).0 == "Rome" { r#"{"label": "1"}"# } else { "```\n2\n```" });
        let (result, seen) = judged(&grader, "Paris", json!("unused"), json!({"question": "q", "gold": "Rome"}), respond);
        let s = result.unwrap();
        assert_eq!(outcomes(&s), (0.0, Some(0.0), Some(0.0), Some(0.0), Some(1.0)));
        assert_eq!(s.get("passed"), Some(0.0));
        assert!(s.reason.as_deref().unwrap().ends_with("score 0 (below pass_threshold 0.75)"), "{:?}", s.reason);
        assert_eq!(shown(&seen[0].0), ("Paris".into(), "Rome".into()));
        assert_eq!(shown(&seen[1].0), ("Rome".into(), "Paris".into()));

        grader["labels"] = json!({"tie": "draw"});
        let (result, _) = pairwise_judged(&without_reference(grader.clone()), |_| answer("draw"));
        let s = result.unwrap();
        assert_eq!((s.value, s.get("passed")), (0.5, Some(0.0)));
        let (result, _) = pairwise_judged(&without_reference(grader), preferring("Paris"));
        assert_eq!(result.unwrap().get("passed"), Some(1.0));
    }

    fn without_reference(mut grader: Value) -> Value {
        grader.as_object_mut().unwrap().remove("reference");
        grader
    }

    /// An answer that is not exactly one label fails the rollout naming the order and the answer;
    /// never a 0. Junk in order 2 fails too, after both calls.
    #[test]
    fn pairwise_junk_answers_fail() {
        for (text, needle) in [
            ("a", "is not one of the labels (A, B, tie)"),
            ("A.", "is not one of the labels"),
            ("Answer A", "is not one of the labels"),
            ("", "is not one of the labels"),
            ("Tie", "is not one of the labels"),
            (r#"{"label": "C"}"#, "`label` \"C\", which is not one of the labels"),
            (r#"{"winner": "A"}"#, "without a `label` field"),
        ] {
            let owned = text.to_owned();
            let (result, seen) = pairwise_judged(&pairwise(), move |_| answer(&owned));
            let msg = failed(result);
            assert!(msg.starts_with("pair (order 1, completion first): the judge's answer") && msg.contains(needle), "{text:?}: {msg}");
            assert_eq!(seen.len(), 1, "{text:?}");
        }
        let (result, seen) = pairwise_judged(&pairwise(), |m: &[ChatMessage]| answer(if shown(m).0 == "Paris" { "A" } else { "maybe" }));
        let msg = failed(result);
        assert!(msg.starts_with("pair (order 2, reference first): the judge's answer \"maybe\""), "{msg}");
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn pairwise_judge_errors_fail() {
        let (result, seen) =
            pairwise_judged(&pairwise(), |_| Err(JudgeError::Timeout("judge `grader`: 3 attempts passed 30000 ms".into())));
        let msg = failed(result);
        assert_eq!(msg, "pair (order 1, completion first): the judge failed (timeout): judge `grader`: 3 attempts passed 30000 ms");
        assert_eq!(seen.len(), 1);
        let (result, seen) = pairwise_judged(&pairwise(), |m: &[ChatMessage]| {
            if shown(m).0 == "Paris" { answer("A") } else { Err(JudgeError::OverLimit("judge `grader`: more than 1 call".into())) }
        });
        let msg = failed(result);
        assert!(msg.starts_with("pair (order 2, reference first): the judge failed (over-limit)"), "{msg}");
        assert_eq!(seen.len(), 2);
        let _one = JUDGE.lock().unwrap_or_else(|e| e.into_inner());
        set_native_judge(None);
        let msg = failed(run(&pairwise(), rollout("x", json!("y"), json!({"question": "q"}))));
        assert!(msg.contains("(not-granted)"), "{msg}");
    }

    /// A variable that names nothing (in the messages or the reference) is invalid input, and the
    /// judge is not asked.
    #[test]
    fn pairwise_missing_variable_is_invalid_input() {
        let (result, seen) = judged(&pairwise(), "Paris", json!("Lyon"), json!({}), |_| answer("A"));
        match result {
            Err(RolloutError::InvalidInput(msg)) => assert!(msg.contains("`input[1].content`") && msg.contains("item.question"), "{msg}"),
            other => panic!("expected invalid input, got {other:?}"),
        }
        assert!(seen.is_empty());
        let mut grader = pairwise();
        grader["reference"] = json!("{{item.gold}}");
        let (result, seen) = pairwise_judged(&grader, |_| answer("A"));
        match result {
            Err(RolloutError::InvalidInput(msg)) => assert!(msg.contains("`reference`") && msg.contains("item.gold"), "{msg}"),
            other => panic!("expected invalid input, got {other:?}"),
        }
        assert!(seen.is_empty());
    }

    #[test]
    fn pairwise_config_mistakes_name_the_field() {
        let with = |key: &str, value: Value| {
            let mut g = pairwise();
            g[key] = value;
            g
        };
        let input = |user: &str| with("input", json!([{"role": "user", "content": user}]));
        let cases = [
            (input("{{pair.first}} vs {{item.reference_answer}}"), "`input` does not use {{pair.second}}"),
            (input("{{sample.output_text}} vs {{pair.second}}"), "`input` does not use {{pair.first}}"),
            (input("Grade {{sample.output_text}}"), "`input` does not use {{pair.first}}"),
            (
                input("{{pair.first}} {{pair.second}} {{pair.third}}"),
                "`input[0].content`: template variable {{pair.third}}: unknown pair variable `third`",
            ),
            (input("{{pair}} {{pair.first}} {{pair.second}}"), "`input[0].content`: template variable {{pair}}: names no answer"),
            (input("{{pair.first.x}} {{pair.second}}"), "have no fields"),
            (input("{{pairs.first}} {{pair.second}}"), "unknown namespace `pairs`; the namespaces are `item`, `sample` and `pair`"),
            (with("input", json!([])), "`input` is empty"),
            (with("reference", json!(3)), "`reference` must be a string"),
            (with("reference", json!("{{pair.first}}")), "`reference`: template variable {{pair.first}}: `pair`"),
            (with("labels", json!(["A", "B", "tie"])), "`labels` must be an object"),
            (with("labels", json!({"first": "A", "second": "A"})), "`labels` has \"A\" twice"),
            (with("labels", json!({"tie": "B"})), "`labels` has \"B\" twice"),
            (with("labels", json!({"first": ""})), "`labels.first` is empty"),
            (with("labels", json!({"second": "  "})), "`labels.second` is empty"),
            (with("labels", json!({"tie": " tie"})), "`labels.tie` \" tie\" has surrounding whitespace"),
            (with("labels", json!({"tie": 0})), "`labels.tie` must be a string"),
            (with("labels", json!({"both": "C"})), "unknown field `labels.both`"),
            (with("pass_threshold", json!("half")), "`pass_threshold` must be a number"),
            (with("sampling_params", json!({"top_p": 2})), "`sampling_params.top_p` must be in (0, 1]"),
            (with("range", json!([0, 1])), "unknown field `range` for a pairwise grader"),
        ];
        for (config, needle) in cases {
            let msg = config_error(&config);
            assert!(msg.contains(needle), "{config}: {msg}");
        }
        // `pair` belongs to pairwise messages only.
        let mut g = score_model();
        g["input"] = json!([{"role": "user", "content": "{{pair.first}}"}]);
        let msg = config_error(&g);
        assert!(msg.contains("`input[0].content`") && msg.contains("only available in the `input` messages of a pairwise grader"), "{msg}");
        let msg = config_error(&json!({"type": "string_check", "input": "{{pair.first}}", "reference": "x", "operation": "eq"}));
        assert!(msg.contains("`input`") && msg.contains("pairwise"), "{msg}");
        let msg = config_error(&json!({"type": "pair_wise"}));
        assert!(msg.contains("pairwise (ours)"), "{msg}");
        // Good configs: the defaults, `model` accepted as by the other model graders, nulls unset.
        reward_sdk::check_config::<crate::OpenAiGrader>(&pairwise().to_string()).unwrap();
        let mut g = pairwise();
        g["model"] = json!("gpt-4.1");
        g["labels"] = json!({"first": "1", "second": "2", "tie": null});
        g["pass_threshold"] = json!(null);
        reward_sdk::check_config::<crate::OpenAiGrader>(&g.to_string()).unwrap();
    }
}
