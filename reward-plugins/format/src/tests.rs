//! The format reward through the same entry point the host's native baseline uses
//! (`reward_sdk::score_batch`), so config parsing, validation and caching are exercised too.

use std::time::{Duration, Instant};

use reward_sdk::{Message, MetricKind, Rollout, RolloutError, Score};

use crate::FormatReward;

const R1: &str = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer"}"#;
const R1_NUMERIC: &str = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer", "reference": {"mode": "numeric"}}"#;
const AUTO_NUMERIC: &str = r#"{"reference": {"mode": "numeric"}}"#;
const AUTO_EXACT: &str = r#"{"reference": {}}"#;

fn rollout(completion: &str, reference: &str) -> Rollout {
    Rollout {
        id: "r1".into(),
        messages: vec![
            Message { role: "user".into(), content: "What is the answer?".into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: completion.into(),
        reference: reference.into(),
        metadata: "{}".into(),
    }
}

fn run(config: &str, completion: &str, reference: &str) -> Result<Score, RolloutError> {
    run_rollout(config, rollout(completion, reference))
}

fn run_rollout(config: &str, rollout: Rollout) -> Result<Score, RolloutError> {
    let mut results = reward_sdk::score_batch::<FormatReward>(config, &[rollout]);
    assert_eq!(results.len(), 1);
    results.pop().unwrap()
}

#[track_caller]
fn scored(config: &str, completion: &str, reference: &str) -> Score {
    match run(config, completion, reference) {
        Ok(s) => s,
        Err(e) => panic!("expected a score, got {e:?}"),
    }
}

#[track_caller]
fn invalid(config: &str, completion: &str, reference: &str) -> String {
    match run(config, completion, reference) {
        Err(RolloutError::InvalidInput(msg)) => msg,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[track_caller]
fn config_error(config: &str) -> String {
    match reward_sdk::check_config::<FormatReward>(config) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(e) => e,
    }
}

fn reason(s: &Score) -> &str {
    s.reason.as_deref().unwrap_or("")
}

fn kind(s: &Score, name: &str) -> Option<MetricKind> {
    s.metrics.iter().find(|m| m.name == name).map(|m| m.kind)
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

#[test]
fn full_example_config_is_accepted() {
    let config = r#"{
        "required_tags": ["think", "answer"],
        "answer_tag": "answer",
        "json": {"required_keys": ["tool", "args"]},
        "must_match": ["^<think>"], "must_not_match": ["(?i)as an ai"],
        "min_chars": 1, "max_chars": 8000,
        "reference": {
            "mode": "numeric", "field": "answer",
            "abs_tol": 1e-6, "rel_tol": 1e-4, "percent_confusion": true,
            "credit": {"exact": 1.0, "absolute": 1.0, "relative": 1.0, "percent": 0.5}
        },
        "weights": {"format": 0.0, "answer": 1.0},
        "gate": true
    }"#;
    reward_sdk::check_config::<FormatReward>(config).unwrap();
    reward_sdk::check_config::<FormatReward>("{}").unwrap();
    reward_sdk::check_config::<FormatReward>("").unwrap();
    reward_sdk::check_config::<FormatReward>(r#"{"reference": {"mode": "exact", "case_sensitive": true}}"#).unwrap();
}

#[test]
fn config_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"required_tag": ["think"]}"#, "unknown field `required_tag`"),
        (r#"{"reference": {"credit": {"partial": 1}}}"#, "unknown field `partial`"),
        (r#"{"json": {"keys": ["a"]}}"#, "unknown field `keys`"),
        (r#"{"reference": {"mode": "fuzzy"}}"#, "unknown variant `fuzzy`"),
        (r#"{"must_match": ["ok", "(unclosed"]}"#, "must_match[1]: invalid regex \"(unclosed\""),
        (r#"{"must_not_match": ["["]}"#, "must_not_match[0]: invalid regex"),
        (r#"{"min_chars": -1}"#, "min_chars must not be negative, got -1"),
        (r#"{"min_chars": 10, "max_chars": 5}"#, "min_chars (10) must not exceed max_chars (5)"),
        (r#"{"max_chars": 0}"#, "min_chars (1, the default) must not exceed max_chars (0)"),
        (r#"{"required_tags": ["think", "<answer>"]}"#, "required_tags[1]: \"<answer>\" is not a tag name"),
        (r#"{"required_tags": ["a", "b", "a"]}"#, "required_tags[2]: \"a\" is listed twice"),
        (r#"{"answer_tag": "my answer"}"#, "answer_tag: \"my answer\" is not a tag name"),
        (r#"{"reference": {"mode": "numeric", "abs_tol": -1e-6}}"#, "reference.abs_tol must be a finite number >= 0"),
        (r#"{"reference": {"mode": "numeric", "rel_tol": -0.1}}"#, "reference.rel_tol must be a finite number >= 0"),
        (r#"{"reference": {"mode": "numeric", "credit": {"percent": 2}}}"#, "reference.credit.percent must be between 0 and 1"),
        (r#"{"reference": {"abs_tol": 0.1}}"#, "reference.abs_tol applies only to mode \"numeric\""),
        (r#"{"reference": {"credit": {"percent": 0.2}}}"#, "reference.credit.percent applies only to mode \"numeric\""),
        (r#"{"reference": {"mode": "numeric", "case_sensitive": true}}"#, "reference.case_sensitive applies only to mode \"exact\""),
        (r#"{"reference": {"field": ""}}"#, "reference.field must not be empty"),
        (r#"{"weights": {"answer": 1}}"#, "weights only apply with a reference"),
        (r#"{"gate": false}"#, "gate only applies with a reference"),
        (r#"{"reference": {}, "weights": {"format": 0, "answer": 0}}"#, "both 0"),
        (r#"{"reference": {}, "weights": {"format": -1}}"#, "weights.format must be a finite number >= 0, got -1"),
    ];
    for (config, want) in cases {
        let err = config_error(config);
        assert!(err.contains(want), "config {config}: error {err:?} does not contain {want:?}");
    }
}

#[test]
fn a_bad_config_fails_every_rollout_of_the_batch() {
    let results = reward_sdk::score_batch::<FormatReward>(r#"{"must_match": ["("]}"#, &[rollout("a", ""), rollout("b", "")]);
    assert_eq!(results.len(), 2);
    for r in results {
        assert!(matches!(r, Err(RolloutError::Failed(ref m)) if m.contains("must_match[0]")), "{r:?}");
    }
}

#[test]
fn info_lists_every_metric_emitted() {
    let info = <FormatReward as reward_sdk::Reward>::info();
    assert_eq!(info.name, "format");
    let config = r#"{"required_tags": ["answer"], "answer_tag": "answer", "json": {}, "must_match": ["a"],
        "must_not_match": ["b"], "reference": {"mode": "numeric"}}"#;
    let s = scored(config, "<answer>{\"a\": 1}</answer>", "42");
    let names: Vec<&str> = s.metrics.iter().map(|m| m.name.as_str()).collect();
    // With every check configured, every metric is emitted once, in the order info() lists them.
    assert_eq!(names, info.metrics);
}

// ---------------------------------------------------------------------------------------------
// Format checks
// ---------------------------------------------------------------------------------------------

#[test]
fn default_config_only_rejects_blank_completions() {
    for blank in ["", "   \n\t "] {
        let s = scored("{}", blank, "null");
        assert_eq!(s.value, 0.0, "{blank:?}");
        assert_eq!(s.get("length_ok"), Some(0.0));
        assert!(reason(&s).contains("min_chars is 1"), "{}", reason(&s));
    }
    let s = scored("{}", "anything", "null");
    assert_eq!((s.value, reason(&s)), (1.0, "format ok"));
    assert_eq!(kind(&s, "format_ok"), Some(MetricKind::Reward));
}

#[test]
fn length_counts_characters_not_bytes() {
    let config = r#"{"min_chars": 3, "max_chars": 4}"#;
    assert_eq!(scored(config, "ééé", "").value, 1.0); // 6 bytes, 3 chars
    assert_eq!(scored(config, "  éééé  ", "").value, 1.0); // surrounding whitespace not counted
    assert_eq!(scored(config, "éé", "").value, 0.0);
    let s = scored(config, "ééééé", "");
    assert_eq!(s.value, 0.0);
    assert!(reason(&s).contains("more than 4 chars"), "{}", reason(&s));
    assert_eq!(scored(r#"{"min_chars": 0}"#, "", "").value, 1.0);
    assert_eq!(scored(r#"{"max_chars": 9223372036854775807}"#, "x", "").value, 1.0);
}

#[test]
fn r1_style_completions() {
    let good = "<think>\nThe user asks for 6 * 7. 6 * 7 = 42.\n</think>\n<answer>42</answer>";
    let s = scored(R1_NUMERIC, good, "42");
    assert_eq!(s.value, 1.0, "{}", reason(&s));
    for (name, value) in [("tags_in_order", 1.0), ("answer_found", 1.0), ("format_ok", 1.0), ("answer_correct", 1.0), ("numeric_tier", 4.0)]
    {
        assert_eq!(s.get(name), Some(value), "{name}");
    }
    assert_eq!(reason(&s), "format ok, answer correct");

    // Wrong answer, good format.
    let s = scored(R1_NUMERIC, "<think>6 * 7 = 48</think><answer>48</answer>", "42");
    assert_eq!((s.value, s.get("format_ok"), s.get("numeric_tier")), (0.0, Some(1.0), Some(0.0)));
    assert!(reason(&s).contains("got \"48\", expected \"42\""), "{}", reason(&s));

    // The chat template opened <think> in the prompt: only the closing tag is in the completion.
    let config = r#"{"required_tags": ["answer"], "answer_tag": "answer", "reference": {"mode": "numeric"}}"#;
    let s = scored(config, "6 * 7 = 42, done.\n</think>\n\n<answer>42</answer>", "42");
    assert_eq!(s.value, 1.0, "{}", reason(&s));
    // Tags are checked on the whole completion: a draft answer tag in the reasoning repeats it.
    let s = scored(config, "6 * 7, so <answer>41</answer>? No.\n</think>\n\n<answer>42</answer>", "42");
    assert_eq!((s.value, s.get("answer_correct")), (0.0, Some(1.0)));
    assert!(reason(&s).contains("<answer> appears more than once"), "{}", reason(&s));
}

#[test]
fn tag_problems_fail_the_format() {
    let cases: &[(&str, &str)] = &[
        ("<answer>42</answer>", "<think> is missing"),
        ("<think>w</think>42", "<answer> is missing"),
        ("<think>w</think><answer>42", "<answer> is not well formed"),
        ("<answer>42</answer><think>w</think>", "<answer> is out of order"),
        ("<think>w</think><answer>41</answer><answer>42</answer>", "<answer> appears more than once"),
        ("<think></think><answer>42</answer>", "<think> is empty"),
    ];
    for (completion, want) in cases {
        let s = scored(R1_NUMERIC, completion, "42");
        assert_eq!(s.value, 0.0, "{completion}");
        assert_eq!(s.get("tags_in_order"), Some(0.0), "{completion}");
        assert!(reason(&s).contains(want), "{completion}: {}", reason(&s));
    }
    // Without a reference the score is format_ok.
    assert_eq!(scored(R1, "<think>w</think><answer>x</answer>", "null").value, 1.0);
    assert_eq!(scored(R1, "<think>w</think>x", "null").value, 0.0);
}

#[test]
fn answer_tag_alone_requires_the_answer() {
    let config = r#"{"answer_tag": "answer"}"#;
    assert_eq!(scored(config, "<answer>B</answer>", "null").value, 1.0);
    let s = scored(config, "B", "null");
    assert_eq!((s.value, s.get("answer_found")), (0.0, Some(0.0)));
    // An answer tag inside the reasoning is a draft, not the answer.
    assert_eq!(scored(config, "<think><answer>B</answer></think>C", "null").value, 0.0);
}

#[test]
fn json_answers() {
    let config = r#"{"answer_tag": "answer", "json": {"required_keys": ["tool", "args"]}}"#;
    let fenced = "<think>search</think>\n<answer>\n```json\n{\"tool\": \"search\", \"args\": {\"q\": \"rust\"}}\n```\n</answer>";
    assert_eq!(scored(config, fenced, "").get("json_valid"), Some(1.0));
    assert_eq!(scored(config, "<answer>{\"tool\": \"x\", \"args\": []}</answer>", "").value, 1.0);
    let cases: &[(&str, &str)] = &[
        ("<answer>{\"tool\": \"search\"}</answer>", "no key \"args\""),
        ("<answer>[\"tool\", \"args\"]</answer>", "not an object"),
        ("<answer>{tool: search}</answer>", "not JSON"),
        ("<answer>Sure! {\"tool\": \"a\", \"args\": {}}</answer>", "not JSON"),
    ];
    for (completion, want) in cases {
        let s = scored(config, completion, "");
        assert_eq!((s.value, s.get("json_valid")), (0.0, Some(0.0)), "{completion}");
        assert!(reason(&s).contains(want), "{completion}: {}", reason(&s));
    }
    // Strings inside the JSON are data, even when they look like answers.
    let tricky = "<answer>{\"tool\": \"latex\", \"args\": {\"src\": \"\\\\boxed{1}\"}}</answer>";
    assert_eq!(scored(config, tricky, "").value, 1.0, "{}", reason(&scored(config, tricky, "")));
    // Without a tag: the last fenced block is the answer.
    let auto = r#"{"json": {"required_keys": ["name"]}}"#;
    assert_eq!(scored(auto, "Here you go:\n```json\n{\"name\": \"x\"}\n```", "").value, 1.0);
}

#[test]
fn json_reference_compares_structure() {
    let config = r#"{"answer_tag": "answer", "json": {"required_keys": ["tool"]}, "reference": {"field": "call"}}"#;
    let reference = r#"{"call": {"tool": "search", "args": {"q": "rust", "n": 1}}}"#;
    let same = "<answer>```json\n{\"args\": {\"n\": 1.0, \"q\": \"rust\"}, \"tool\": \"search\"}\n```</answer>";
    assert_eq!(scored(config, same, reference).value, 1.0);
    let other = "<answer>{\"tool\": \"search\", \"args\": {\"q\": \"go\", \"n\": 1}}</answer>";
    let s = scored(config, other, reference);
    assert_eq!((s.value, s.get("json_valid"), s.get("answer_correct")), (0.0, Some(1.0), Some(0.0)));
}

#[test]
fn patterns() {
    let config = r#"{"must_match": ["(?s)^<think>.*</think>", "Answer:"], "must_not_match": ["(?i)as an ai", "\\?\\?\\?"]}"#;
    assert_eq!(scored(config, "<think>x</think>\nAnswer: 4", "").value, 1.0);
    let s = scored(config, "Answer: 4", "");
    assert_eq!((s.value, s.get("must_match"), s.get("must_not_match")), (0.0, Some(0.0), Some(1.0)));
    assert!(reason(&s).contains("must_match[0]"), "{}", reason(&s));
    let s = scored(config, "<think>x</think>As an AI, Answer: 4", "");
    assert_eq!((s.value, s.get("must_not_match")), (0.0, Some(0.0)));
    assert!(reason(&s).contains("must_not_match[0]"), "{}", reason(&s));
}

// ---------------------------------------------------------------------------------------------
// Extraction from realistic completions
// ---------------------------------------------------------------------------------------------

#[test]
fn begin_of_solution_wrappers() {
    let completion = "<|begin_of_thought|>\n\nThe probability is 1/2? Let me verify: \\boxed{1/3} no.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nThere are 2 outcomes, 1 favourable.\n\n\\[\n\\boxed{\\dfrac{1}{2}}\n\\]\n\n<|end_of_solution|>";
    assert_eq!(scored(AUTO_NUMERIC, completion, "0.5").value, 1.0);
    assert_eq!(scored(AUTO_EXACT, completion, r#""\\dfrac{1}{2}""#).value, 1.0);
    // The draft inside the thought does not count.
    assert_eq!(scored(AUTO_NUMERIC, completion, r#""1/3""#).value, 0.0);
}

#[test]
fn answer_lines_and_boxes() {
    let cases: &[(&str, &str, &str)] = &[
        // (config, completion, reference)
        (AUTO_EXACT, "Let me think step by step.\nThe capital is Paris.\n\nANSWER: B", r#""B""#),
        (AUTO_EXACT, "Reasoning...\n**Final Answer:** (b)", r#""B""#),
        (AUTO_EXACT, "So the capital is $\\boxed{\\text{Paris}}$.", r#""paris""#),
        (AUTO_EXACT, "<think>France...</think>\nFinal answer: \"Paris.\"", r#""Paris""#),
        (AUTO_NUMERIC, "Natalia sold 48 / 2 = 24 in May.\n48 + 24 = 72\n#### 72", "72"),
        (AUTO_NUMERIC, "So the answer is 72.", "72"),
        (AUTO_NUMERIC, "Answer: 70\nWait, I forgot May.\nAnswer: 72", "72"),
        (AUTO_NUMERIC, "```python\nprint(48 + 24)\n```\nAnswer: $72", "72"),
    ];
    for (config, completion, reference) in cases {
        let s = scored(config, completion, reference);
        assert_eq!(s.value, 1.0, "{completion:?}: {}", reason(&s));
    }
}

#[test]
fn references_are_extracted_too() {
    // GSM8K references are worked solutions ending in `#### 72`; MATH ones end in a box.
    let gsm8k = r#"{"answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"}"#;
    assert_eq!(scored(AUTO_NUMERIC, "\\boxed{72}", gsm8k).value, 1.0);
    assert_eq!(scored(AUTO_NUMERIC, "\\boxed{24}", gsm8k).value, 0.0);
    let math = r#"{"solution": "The sum is $\\frac{1}{2} + \\frac{1}{4} = \\boxed{\\frac{3}{4}}$."}"#;
    assert_eq!(scored(AUTO_NUMERIC, "Answer: 0.75", math).value, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Numeric references (FinQA style)
// ---------------------------------------------------------------------------------------------

/// `(completion's answer, reference JSON, numeric_tier, answer_correct)` with the default
/// tolerances (abs 1e-6, rel 1e-4) and credits (percent 0.5).
const NUMERIC_CASES: &[(&str, &str, f64, f64)] = &[
    // A percent sign is a unit: 12.5% is 0.125.
    ("12.5%", r#""12.5%""#, 4.0, 1.0),
    ("0.125", r#""12.5%""#, 4.0, 1.0),
    ("12.5%", "0.125", 4.0, 1.0),
    ("12.5 percent", "0.125", 4.0, 1.0),
    ("$12.5\\%$", "0.125", 4.0, 1.0),
    // The percent sign dropped (or added) around the right number: the unit, not the number.
    ("12.5", r#""12.5%""#, 4.0, 1.0),
    ("12.5%", "12.5", 4.0, 1.0),
    // Percent/decimal confusion, no sign anywhere (12.5 for 0.125): half credit.
    ("12.5", "0.125", 1.0, 0.5),
    ("0.125", "12.5", 1.0, 0.5),
    // Thousands separators, currency, trailing zeros.
    ("1234.0", r#""1,234""#, 4.0, 1.0),
    ("$1,234", "1234.0", 4.0, 1.0),
    ("1,234.50 dollars", "1234.5", 4.0, 1.0),
    // Accounting negatives and Unicode minus.
    ("(123)", "-123", 4.0, 1.0),
    ("−123", r#""(123)""#, 4.0, 1.0),
    // Rounding.
    ("1234.57", "1234.5678", 2.0, 1.0),
    ("0.1235", "0.12345", 0.0, 0.0),
    ("0", "0.0000005", 3.0, 1.0),
    ("3.1416", "3.14159265", 2.0, 1.0),
    // Scale words: the dataset states the unit, the model repeats it.
    ("1,234 million", "1234", 4.0, 1.0),
    ("1200000", r#""1.2 million""#, 4.0, 1.0),
    ("5 thousand", r#""5 million""#, 0.0, 0.0),
    // Wrong.
    ("41", "42", 0.0, 0.0),
    ("-42", "42", 0.0, 0.0),
    ("4.2", "42", 0.0, 0.0),
    // Alternatives in a list: the best match counts.
    ("7", "[6, 7]", 4.0, 1.0),
];

#[test]
fn numeric_tiers() {
    for &(answer, reference, tier, credit) in NUMERIC_CASES {
        let completion = format!("<think>compute</think>\n<answer>{answer}</answer>");
        let s = scored(R1_NUMERIC, &completion, reference);
        assert_eq!(
            (s.get("numeric_tier"), s.get("answer_correct"), s.value),
            (Some(tier), Some(credit), credit),
            "answer {answer:?} vs reference {reference}: {}",
            reason(&s)
        );
    }
}

#[test]
fn numeric_tolerances_and_credits_are_configurable() {
    let loose = r#"{"answer_tag": "answer", "reference": {"mode": "numeric", "rel_tol": 1e-3}}"#;
    let s = scored(loose, "<answer>0.1235</answer>", "0.12345");
    assert_eq!((s.get("numeric_tier"), s.value), (Some(2.0), 1.0));

    let strict = r#"{"answer_tag": "answer", "reference": {"mode": "numeric", "abs_tol": 0, "rel_tol": 0,
        "credit": {"percent": 0.0}}}"#;
    assert_eq!(scored(strict, "<answer>1234.57</answer>", "1234.5678").value, 0.0);
    assert_eq!(scored(strict, "<answer>12.5</answer>", "0.125").get("numeric_tier"), Some(1.0));
    assert_eq!(scored(strict, "<answer>12.5</answer>", "0.125").value, 0.0);

    let no_confusion = r#"{"answer_tag": "answer", "reference": {"mode": "numeric", "percent_confusion": false}}"#;
    assert_eq!(scored(no_confusion, "<answer>12.5</answer>", "0.125").get("numeric_tier"), Some(0.0));

    let partial_relative = r#"{"answer_tag": "answer", "reference": {"mode": "numeric", "credit": {"relative": 0.8}}}"#;
    let s = scored(partial_relative, "<answer>1234.57</answer>", "1234.5678");
    assert_eq!(s.value, 0.8);
    assert!(reason(&s).contains("relative match, credit 0.8"), "{}", reason(&s));
}

#[test]
fn exact_mode() {
    let config = r#"{"answer_tag": "answer", "reference": {"mode": "exact"}}"#;
    assert_eq!(scored(config, "<answer> **Paris.** </answer>", r#""paris""#).value, 1.0);
    assert_eq!(scored(config, "<answer>1,234</answer>", "1234").value, 1.0);
    assert_eq!(scored(config, "<answer>12.5%</answer>", r#""0.125""#).value, 1.0);
    assert_eq!(scored(config, "<answer>true</answer>", "true").value, 1.0);
    assert_eq!(scored(config, "<answer>Lyon</answer>", r#"["Paris", "Lyon"]"#).value, 1.0);
    assert_eq!(scored(config, "<answer>Paris, France</answer>", r#""Paris""#).value, 0.0);
    let cased = r#"{"answer_tag": "answer", "reference": {"case_sensitive": true}}"#;
    assert_eq!(scored(cased, "<answer>paris</answer>", r#""Paris""#).value, 0.0);
    assert_eq!(scored(cased, "<answer>Paris</answer>", r#""Paris""#).value, 1.0);
    // Nothing left after normalising matches nothing.
    assert_eq!(scored(config, "<answer>!!!</answer>", r#""...""#).value, 0.0);
    // Exact mode has only two tiers and no numeric_tier metric.
    assert_eq!(scored(config, "<answer>Paris</answer>", r#""Paris""#).get("numeric_tier"), None);
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

#[test]
fn reference_fields() {
    let default = r#"{"reference": {"mode": "numeric"}}"#;
    assert_eq!(scored(default, "42", r#"{"ground_truth": 42, "label": 0}"#).value, 1.0);
    // `answer` beats `ground_truth`, null values are skipped.
    assert_eq!(scored(default, "1", r#"{"ground_truth": 2, "answer": 1}"#).value, 1.0);
    assert_eq!(scored(default, "2", r#"{"answer": null, "ground_truth": 2}"#).value, 1.0);
    let field = r#"{"reference": {"mode": "numeric", "field": "exe_ans"}}"#;
    assert_eq!(scored(field, "0.125", r#"{"exe_ans": 0.125, "answer": "12.5%"}"#).get("numeric_tier"), Some(4.0));
    // A plain reference is used whatever `field` says.
    assert_eq!(scored(field, "0.125", "0.125").value, 1.0);
}

#[test]
fn unusable_references_are_invalid_input() {
    let cases: &[(&str, &str, &str)] = &[
        (AUTO_NUMERIC, "null", "reference is missing (null)"),
        (AUTO_NUMERIC, "", "reference is missing (null)"),
        (AUTO_NUMERIC, "{not json", "reference is not valid JSON"),
        (AUTO_NUMERIC, r#"{"question": "q"}"#, "none of the fields answer, ground_truth, solution, label"),
        (r#"{"reference": {"field": "exe_ans"}}"#, r#"{"answer": 1}"#, "reference has no field `exe_ans`"),
        (r#"{"reference": {"field": "exe_ans"}}"#, r#"{"exe_ans": null}"#, "reference field `exe_ans` is null"),
        (AUTO_NUMERIC, r#"{"answer": "n/a"}"#, "reference field `answer` is not a number: \"n/a\""),
        (AUTO_NUMERIC, r#""   ""#, "reference is empty"),
        (AUTO_NUMERIC, "[]", "reference is an empty list"),
        (AUTO_NUMERIC, "true", "reference is not a number"),
    ];
    for (config, reference, want) in cases {
        // Whatever the completion: a good one, an empty one.
        for completion in ["42", ""] {
            let msg = invalid(config, completion, reference);
            assert!(msg.contains(want), "reference {reference}: {msg:?} does not contain {want:?}");
        }
    }
    // Without a reference check the reference is not read at all.
    assert_eq!(scored("{}", "42", "{not json").value, 1.0);
}

// ---------------------------------------------------------------------------------------------
// Gate, weights, metric kinds
// ---------------------------------------------------------------------------------------------

#[test]
fn gate_and_weights() {
    let right_but_malformed = "<answer>42</answer>"; // no <think>
    let s = scored(R1_NUMERIC, right_but_malformed, "42");
    assert_eq!((s.value, s.get("format_ok"), s.get("answer_correct")), (0.0, Some(0.0), Some(1.0)));
    assert!(reason(&s).contains("gate: the answer is not paid"), "{}", reason(&s));

    let ungated = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer", "reference": {"mode": "numeric"}, "gate": false}"#;
    let s = scored(ungated, right_but_malformed, "42");
    assert_eq!(s.value, 1.0);
    assert_eq!(kind(&s, "format_ok"), Some(MetricKind::Metric), "format is not paid: weight 0, no gate");
    assert_eq!(kind(&s, "tags_in_order"), Some(MetricKind::Metric));
    assert_eq!(kind(&s, "answer_correct"), Some(MetricKind::Reward));
    assert_eq!(kind(&s, "numeric_tier"), Some(MetricKind::Metric));

    let weighted = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer", "reference": {"mode": "numeric"},
        "weights": {"format": 0.2, "answer": 0.8}}"#;
    let good = |a: &str| format!("<think>w</think><answer>{a}</answer>");
    assert!((scored(weighted, &good("42"), "42").value - 1.0).abs() < 1e-12);
    assert!((scored(weighted, &good("41"), "42").value - 0.2).abs() < 1e-12);
    assert!((scored(weighted, &good("12.5"), "0.125").value - (0.2 + 0.8 * 0.5)).abs() < 1e-12);
    assert_eq!(scored(weighted, right_but_malformed, "42").value, 0.0);
    let s = scored(weighted, &good("42"), "42");
    assert_eq!(kind(&s, "format_ok"), Some(MetricKind::Reward));

    // Format only paid through the gate: still reward-kind.
    assert_eq!(kind(&scored(R1_NUMERIC, &good("42"), "42"), "tags_in_order"), Some(MetricKind::Reward));
    // Diagnostics.
    assert_eq!(kind(&scored(AUTO_NUMERIC, "42", "42"), "answer_found"), Some(MetricKind::Metric));
}

// ---------------------------------------------------------------------------------------------
// Reward-hack probes: each must score 0 (or the configured partial credit at most)
// ---------------------------------------------------------------------------------------------

#[test]
fn hack_empty_completion() {
    for config in [R1_NUMERIC, AUTO_NUMERIC, AUTO_EXACT, R1] {
        let s = scored(config, "", "42");
        assert_eq!(s.value, 0.0, "{config}");
        assert_eq!(s.get("format_ok"), Some(0.0), "{config}");
    }
}

#[test]
fn hack_tags_with_nothing_inside() {
    for completion in ["<think></think><answer></answer>", "<think> </think>\n<answer>\n</answer>", "<think>.</think><answer> </answer>"] {
        let s = scored(R1_NUMERIC, completion, "42");
        assert_eq!(s.value, 0.0, "{completion:?}");
        assert_eq!(s.get("answer_found"), Some(0.0), "{completion:?}");
        assert_eq!(scored(R1, completion, "null").value, 0.0, "{completion:?}");
    }
}

#[test]
fn hack_reference_only_in_the_prompt() {
    let mut r = rollout("<think>The question says the answer.</think><answer>as stated above</answer>", "42");
    r.messages[0].content = "What is 6 * 7? The answer is 42. Answer: 42 \\boxed{42}".into();
    assert_eq!(run_rollout(R1_NUMERIC, r.clone()).unwrap().value, 0.0);
    assert_eq!(run_rollout(AUTO_EXACT, r.clone()).unwrap().value, 0.0);
    // Quoting the prompt inside the reasoning does not help either.
    r.completion = "<think>The prompt says Answer: 42</think>I am not sure.".into();
    assert_eq!(run_rollout(AUTO_NUMERIC, r).unwrap().value, 0.0);
}

#[test]
fn hack_hedging_with_several_values() {
    let hedges = [
        "<answer>12 or 13 or 14</answer>",
        "<answer>12, 13, 14</answer>",
        "<answer>12/13/14</answer>",
        "<answer>between 12 and 14</answer>",
        "<answer>12 13 14</answer>",
        "<answer>12-14</answer>",
    ];
    for hedge in hedges {
        let completion = format!("<think>unsure</think>{hedge}");
        for reference in ["12", "13", "14"] {
            let s = scored(R1_NUMERIC, &completion, reference);
            assert_eq!(s.value, 0.0, "{hedge} vs {reference}: {}", reason(&s));
        }
    }
    // Several answer tags: malformed, and only the last would count anyway.
    let many = "<think>unsure</think><answer>12</answer><answer>13</answer><answer>14</answer>";
    for reference in ["12", "13", "14"] {
        assert_eq!(scored(R1_NUMERIC, many, reference).value, 0.0, "{reference}");
    }
    // Several boxes or answer lines: only the last counts.
    for completion in ["\\boxed{12} \\boxed{13} \\boxed{14}", "Answer: 12\nAnswer: 13\nAnswer: 14"] {
        let paid: Vec<f64> = ["12", "13", "14"].iter().map(|r| scored(AUTO_NUMERIC, completion, r).value).collect();
        assert_eq!(paid, [0.0, 0.0, 1.0], "{completion:?}");
    }
    // Exact mode: a list of candidates is not the answer.
    assert_eq!(scored(AUTO_EXACT, "Answer: Paris or London", r#""Paris""#).value, 0.0);
}

#[test]
fn hack_answer_only_inside_reasoning() {
    for completion in ["<think>The answer is 42</think>", "<think>Answer: 42\n\\boxed{42}", "<think>42</think>  "] {
        let s = scored(AUTO_NUMERIC, completion, "42");
        assert_eq!((s.value, s.get("answer_found")), (0.0, Some(0.0)), "{completion:?}");
    }
}

/// A 1 MB completion: must finish quickly and be scored by what it says.
#[test]
fn hack_one_megabyte_completion() {
    let filler = "Let me reconsider the <problem> from the start: 6 * 7 {maybe} \\boxed{ or Answer: ".repeat(13_000);
    assert!(filler.len() > 1_000_000);
    let right = format!("<think>{filler}</think>\n<answer>42</answer>");
    let wrong = format!("<think>{filler}</think>\n<answer>41</answer>");
    let no_think_close = format!("<think>{filler}<answer>42</answer>");
    let rambling = format!("{filler} 42");
    let started = Instant::now();
    assert_eq!(scored(R1_NUMERIC, &right, "42").value, 1.0);
    assert_eq!(scored(R1_NUMERIC, &wrong, "42").value, 0.0);
    assert_eq!(scored(R1_NUMERIC, &no_think_close, "42").value, 0.0);
    assert_eq!(scored(AUTO_NUMERIC, &rambling, "42").value, 0.0);
    assert_eq!(scored(AUTO_EXACT, &rambling, "42").value, 0.0);
    let capped = r#"{"max_chars": 8000, "answer_tag": "answer", "reference": {"mode": "numeric"}}"#;
    let s = scored(capped, &right, "42");
    assert_eq!((s.value, s.get("length_ok"), s.get("answer_correct")), (0.0, Some(0.0), Some(1.0)));
    let json = r#"{"json": {"required_keys": ["a"]}, "must_match": ["\\d+$"], "must_not_match": ["(?i)as an ai"]}"#;
    assert_eq!(scored(json, &rambling, "").value, 0.0);
    let elapsed = started.elapsed();
    // Each scan is linear; a quadratic one would take hours here.
    let limit = Duration::from_secs(if cfg!(debug_assertions) { 30 } else { 2 });
    assert!(elapsed < limit, "eight 1 MB rollouts took {elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// Fixtures and speed
// ---------------------------------------------------------------------------------------------

/// Realistic completions with pinned scores, through one batch call: the batch keeps order and
/// each rollout is independent of its neighbours.
#[test]
fn fixture_batch() {
    let config = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer",
        "reference": {"mode": "numeric", "field": "answer"}, "weights": {"format": 0.1, "answer": 0.9}}"#;
    let fixtures: &[(&str, &str, f64)] = &[
        // (completion, reference, score)
        ("<think>Revenue grew from 80 to 90: 10/80 = 0.125.</think>\n<answer>12.5%</answer>", r#"{"answer": "12.5%"}"#, 1.0),
        ("<think>10/80</think>\n<answer>12.5</answer>", r#"{"answer": "0.125"}"#, 0.1 + 0.9 * 0.5),
        ("<think>10/80</think>\n<answer>0.13</answer>", r#"{"answer": 0.125}"#, 0.1),
        ("<answer>0.125</answer>", r#"{"answer": 0.125}"#, 0.0),
        ("<think>sum</think><answer>$1,234</answer>", r#"{"answer": "1234"}"#, 1.0),
        ("", r#"{"answer": 1}"#, 0.0),
    ];
    let rollouts: Vec<Rollout> = fixtures.iter().map(|(c, r, _)| rollout(c, r)).collect();
    for _ in 0..2 {
        // The second pass hits the cached parsed config.
        let results = reward_sdk::score_batch::<FormatReward>(config, &rollouts);
        for ((completion, _, want), got) in fixtures.iter().zip(results) {
            let got = got.unwrap();
            assert!((got.value - want).abs() < 1e-12, "{completion:?}: {} ({})", got.value, reason(&got));
        }
    }
}

/// A typical 2 KB completion should take microseconds. The bound is loose (shared CI cores,
/// debug builds); run with `--release --nocapture` to see the figure.
#[test]
fn two_kilobyte_completion_is_fast() {
    let think = "Revenue in 2019 was $1,234 million and in 2018 $1,097 million, so growth is 137/1097. ".repeat(23);
    let completion = format!("<think>\n{think}\n</think>\n<answer>12.5%</answer>");
    assert!((1800..2500).contains(&completion.len()), "{}", completion.len());
    let config = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer",
        "must_not_match": ["(?i)as an ai"], "max_chars": 8000, "reference": {"mode": "numeric"}}"#;
    let rollouts = vec![rollout(&completion, r#"{"answer": "12.5%"}"#); 1000];
    let results = reward_sdk::score_batch::<FormatReward>(config, &rollouts);
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|s| s.value == 1.0)));
    let started = Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        std::hint::black_box(reward_sdk::score_batch::<FormatReward>(config, &rollouts));
    }
    let per_rollout = started.elapsed() / (rounds * rollouts.len() as u32);
    eprintln!("format reward: {per_rollout:?} per 2 KB rollout");
    assert!(per_rollout < Duration::from_micros(if cfg!(debug_assertions) { 500 } else { 100 }), "{per_rollout:?}");
}

/// The table in README.md.
#[test]
fn readme_example() {
    let config = r#"{
        "required_tags": ["think", "answer"],
        "answer_tag": "answer",
        "max_chars": 8000,
        "reference": {"mode": "numeric", "rel_tol": 1e-3},
        "weights": {"format": 0.1, "answer": 0.9}
    }"#;
    let rows: &[(&str, &str, f64)] = &[
        ("<think>10/80 = 0.125</think><answer>12.5%</answer>", r#""12.5%""#, 1.0),
        ("<think>10/80</think><answer>0.125</answer>", r#""12.5%""#, 1.0),
        ("<think>10/80</think><answer>12.5</answer>", r#""12.5%""#, 1.0),
        ("<think>10/80</think><answer>12.5</answer>", r#""0.125""#, 0.55),
        ("<think>10/80</think><answer>0.13</answer>", r#""12.5%""#, 0.1),
        ("<answer>0.125</answer>", r#""12.5%""#, 0.0),
        ("<think>…</think><answer>12 or 13</answer>", "12", 0.1),
    ];
    for (completion, reference, want) in rows {
        let s = scored(config, completion, reference);
        assert!((s.value - want).abs() < 1e-12, "{completion}: {} ({})", s.value, reason(&s));
    }
    let format_only = r#"{"answer_tag": "answer", "json": {"required_keys": ["tool", "args"]}, "must_not_match": ["(?i)as an ai"]}"#;
    assert_eq!(scored(format_only, r#"<answer>{"tool": "t", "args": {}}</answer>"#, "").value, 1.0);
    assert_eq!(scored(format_only, r#"As an AI: <answer>{"tool": "t", "args": {}}</answer>"#, "").value, 0.0);
}
