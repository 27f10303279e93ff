//! The math reward through the entry point the host's native baseline uses
//! (`reward_sdk::score_batch`), so config parsing, validation and the gold cache are exercised
//! too. One test per rule, plus extraction, references, config and the guard rails.

use std::time::Instant;

use reward_sdk::{Message, Rollout, RolloutError, Score};

use crate::MathReward;

fn rollout(completion: &str, reference: &str) -> Rollout {
    Rollout {
        id: "r1".into(),
        messages: vec![
            Message { role: "user".into(), content: "Solve it.".into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: completion.into(),
        reference: reference.into(),
        metadata: "{}".into(),
    }
}

fn run(config: &str, completion: &str, reference: &str) -> Result<Score, RolloutError> {
    let mut results = reward_sdk::score_batch::<MathReward>(config, &[rollout(completion, reference)]);
    results.pop().unwrap()
}

#[track_caller]
fn scored(config: &str, completion: &str, reference: &str) -> Score {
    match run(config, completion, reference) {
        Ok(s) => s,
        Err(e) => panic!("{completion:?} against {reference}: expected a score, got {e:?}"),
    }
}

/// The verdict and rule on a boxed prediction against a gold answer string.
#[track_caller]
fn verdict(gold: &str, pred: &str) -> (bool, &'static str) {
    let reference = serde_json::to_string(gold).unwrap();
    let s = scored("{}", &format!("So the answer is \\boxed{{{pred}}}."), &reference);
    let rule = match s.get("rule").unwrap() as u8 {
        0 => "none",
        1 => "same_text",
        2 => "exact",
        3 => "decimal",
        4 => "numeric",
        5 => "identity",
        6 => "text",
        7 => "structure",
        8 => "unit",
        9 => "unparsed",
        10 => "refused",
        other => panic!("rule code {other}"),
    };
    (s.value == 1.0, rule)
}

#[track_caller]
fn equal(gold: &str, pred: &str, rule: &str) {
    let (eq, r) = verdict(gold, pred);
    assert!(eq, "{pred:?} should equal {gold:?} (rule {r})");
    assert_eq!(r, rule, "{pred:?} against {gold:?}");
}

#[track_caller]
fn differ(gold: &str, pred: &str) {
    let (eq, r) = verdict(gold, pred);
    assert!(!eq, "{pred:?} should not equal {gold:?} (decided by {r})");
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
    match reward_sdk::check_config::<MathReward>(config) {
        Ok(_) => panic!("config {config} was accepted"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// The known failures of the numeric reward
// ---------------------------------------------------------------------------------------------

#[test]
fn known_failures_of_the_numeric_reward() {
    equal("\\sqrt{12}", "2\\sqrt{3}", "exact");
    equal("x^2+2x+1", "(x+1)^2", "identity");
    equal("\\{1,2,3\\}", "\\{3,2,1\\}", "exact");
    equal("(-\\infty, 2]", "\\left(-\\infty, 2\\right]", "same_text");
    equal("[1, 5)", "[1,5)", "exact");
    equal("(-\\infty, -1) \\cup (1, \\infty)", "(1, \\infty) \\cup (-\\infty, -1)", "exact");
    equal("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\-2\\end{pmatrix}", "same_text");
    equal("\\begin{pmatrix} 2 \\\\ 4 \\end{pmatrix}", "\\begin{pmatrix} \\frac{4}{2} \\\\ 2^2 \\end{pmatrix}", "exact");
    equal("3", "\\log_2 8", "exact");
    equal("\\infty", "\\infty", "same_text");
    equal("\\infty", "+\\infty", "exact");
    differ("\\frac{1}{3}", "0.333");
    differ("\\frac13", "0.33");
}

// ---------------------------------------------------------------------------------------------
// One test per rule
// ---------------------------------------------------------------------------------------------

#[test]
fn same_text_needs_no_parsing() {
    equal("\\text{(C)}", "\\text{(C)}", "same_text");
    equal("\\frac{1}{2}", "\\dfrac{1}{2}", "same_text");
    // A gold the checker cannot read still matches itself.
    equal("\\operatorname{lcm}(a,b)", "\\operatorname{lcm}\\left(a,b\\right)", "same_text");
    // Failing that, as text.
    equal("\\operatorname{lcm}(a,b)", "\\operatorname{lcm}(a, b)", "text");
    // Whitespace between digits is kept: a mixed number is not a bigger numerator.
    differ("2 1/2", "21/2");
    // And after a comma: a list is not a number with a thousands separator.
    differ("1,000", "1, 000");
}

#[test]
fn exact_rule_numbers() {
    equal("0.5", "\\frac{1}{2}", "exact");
    equal("\\frac{1}{2}", "0.50", "exact");
    equal("1000", "1,000", "exact");
    equal("1000000", "1{,}000{,}000", "exact");
    equal("2.5", "2\\frac{1}{2}", "exact");
    equal("\\frac{1}{3}", "33\\frac{1}{3}\\%", "exact");
    equal("-2.5", "-2\\frac12", "exact");
    equal("\\frac{1}{3}", "0.\\overline{3}", "exact");
    equal("\\frac{1}{6}", "0.1\\overline{6}", "exact");
    equal("1500", "1.5 \\times 10^3", "exact");
    equal("1500", "1.5e3", "exact");
    equal("\\frac{3}{4}", "3/4", "exact");
    equal("\\frac{3}{4}", "\\tfrac34", "exact");
    equal("-\\frac{3}{4}", "\\frac{-3}{4}", "exact");
    equal("120", "5!", "exact");
    equal("10", "\\binom{5}{2}", "exact");
    differ("5", "-5");
    differ("5", "6");
    differ("\\frac{3}{4}", "\\frac{4}{3}");
    differ("2.5", "2\\cdot\\frac12");
}

#[test]
fn exact_rule_surds_and_complex_numbers() {
    equal("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "exact");
    equal("3+2\\sqrt{2}", "(1+\\sqrt{2})^2", "exact");
    equal("\\sqrt{3}-\\sqrt{2}", "\\frac{1}{\\sqrt{2}+\\sqrt{3}}", "exact");
    equal("6\\sqrt{2}", "\\sqrt{72}", "exact");
    equal("2", "\\sqrt[3]{8}", "exact");
    equal("4", "8^{2/3}", "exact");
    equal("3+4i", "4i+3", "exact");
    equal("\\frac{1}{2}-\\frac{1}{2}i", "\\frac{1}{1+i}", "exact");
    equal("2i", "\\sqrt{-4}", "exact");
    differ("2\\sqrt{3}", "3\\sqrt{2}");
    differ("3+4i", "3-4i");
    differ("\\sqrt{2}", "2");
}

#[test]
fn decimal_rule_default_tolerance() {
    // A decimal equals an exact value it does not equal exactly only when it is that value
    // rounded (or truncated) to its own places and within 1e-6 relative.
    equal("\\frac{1}{3}", "0.333333", "decimal");
    equal("\\frac{2}{3}", "0.6666667", "decimal");
    equal("\\frac{2}{3}", "0.6666666", "decimal");
    equal("\\sqrt{2}", "1.414214", "decimal");
    equal("\\pi", "3.1415927", "decimal");
    differ("\\frac{1}{3}", "0.333");
    differ("\\frac{1}{3}", "0.3333");
    differ("\\frac{2}{3}", "0.666668");
    differ("\\pi", "3.14");
    differ("\\pi", "3.1416");
    // The gold's decimal at its precision: both decimals compare exactly.
    differ("0.33", "0.333");
    differ("1.33", "\\frac{4}{3}");
}

#[test]
fn decimal_rule_is_configurable() {
    let loose = r#"{"rel_tol": 0.01}"#;
    let s = scored(loose, "\\boxed{0.333}", "\"\\\\frac{1}{3}\"");
    assert_eq!(s.value, 1.0);
    // Rounding is still required: 0.334 is not 1/3 to three places.
    assert_eq!(scored(loose, "\\boxed{0.334}", "\"\\\\frac{1}{3}\"").value, 0.0);
    let no_rounding = r#"{"rel_tol": 0.01, "decimal_rounding": false}"#;
    assert_eq!(scored(no_rounding, "\\boxed{0.334}", "\"\\\\frac{1}{3}\"").value, 1.0);
    let strict = r#"{"rel_tol": 0}"#;
    assert_eq!(scored(strict, "\\boxed{0.333333}", "\"\\\\frac{1}{3}\"").value, 0.0);
    assert_eq!(scored(strict, "\\boxed{0.5}", "\"\\\\frac{1}{2}\"").value, 1.0);
}

#[test]
fn numeric_rule_constants() {
    equal("2\\pi", "\\pi+\\pi", "numeric");
    equal("\\frac{\\pi}{3}", "60^\\circ \\cdot 1", "numeric");
    equal("\\frac{1}{2}", "\\sin 30^\\circ", "numeric");
    equal("\\frac{\\sqrt{3}}{2}", "\\cos\\frac{\\pi}{6}", "numeric");
    equal("e^2", "e \\cdot e", "numeric");
    equal("\\ln 6", "\\ln 2 + \\ln 3", "numeric");
    equal("1", "\\sin^2 1 + \\cos^2 1", "numeric");
    equal("\\frac{\\pi}{4}", "\\arctan 1", "numeric");
    equal("\\frac{\\pi}{6}", "\\sin^{-1}\\frac{1}{2}", "numeric");
    equal("1+\\sqrt{2}", "\\sqrt{3+2\\sqrt{2}}", "numeric");
    equal("-1", "e^{i\\pi}", "numeric");
    differ("2\\pi", "\\pi");
    differ("\\frac{\\pi}{3}", "\\frac{\\pi}{6}");
    differ("e", "\\pi");
    differ("0", "10^{-20}");
}

#[test]
fn identity_rule_expressions() {
    equal("x^2-1", "(x-1)(x+1)", "identity");
    equal("\\frac{x+1}{x-1}", "\\frac{x^2+2x+1}{x^2-1}", "identity");
    equal("2x+3y", "3y+2x", "identity");
    equal("\\frac{1}{2}x", "x/2", "identity");
    equal("\\frac{\\sqrt{x}}{x}", "\\frac{1}{\\sqrt{x}}", "identity");
    equal("\\sin^2 x + \\cos^2 x", "1", "identity");
    equal("2\\sin x\\cos x", "\\sin 2x", "identity");
    equal("\\binom{n}{2}", "\\frac{n(n-1)}{2}", "identity");
    equal("a^2 b", "b a^2", "identity");
    differ("x^2+2x+1", "x^2+2x-1");
    differ("x^2", "|x|^2 + 1");
    differ("|x|", "x");
    differ("\\sqrt{x^2}", "x");
    differ("x^2", "t^2");
    differ("2x", "x^2");
}

#[test]
fn identity_rule_equations_and_inequalities() {
    equal("y = 2x + 3", "y = 3 + 2x", "identity");
    equal("y = 2x + 3", "2x + 3", "identity");
    equal("y=2x+3", "2x - y + 3 = 0", "identity");
    equal("x + y = 1", "2x + 2y = 2", "identity");
    equal("y > 2x", "2x < y", "identity");
    differ("y > 2x", "y < 2x");
    differ("y > 2x", "y \\ge 2x");
    differ("x + y = 1", "x - y = 1");
}

#[test]
fn assignments_compare_by_value() {
    equal("2", "x = 2", "exact");
    equal("x = 2", "2", "exact");
    equal("k=5", "k = 5", "same_text");
    equal("1, 2", "x = 1 \\text{ or } x = 2", "exact");
    equal("-1, 4", "x=4, x=-1", "exact");
    differ("x = 2", "x = -2");
}

#[test]
fn structures_sets_tuples_intervals() {
    equal("(1, 2)", "(1, 2)", "same_text");
    equal("(1, 2)", "(1,2)", "exact");
    equal("(3, -1)", "\\left( 3, -1 \\right)", "same_text");
    equal("\\left(\\frac12, 2\\right)", "(0.5, 2)", "exact");
    equal("1, 2, 3", "3, 1, 2", "exact");
    equal("\\{1, 2\\}", "2, 1", "exact");
    equal("3", "\\{3\\}", "exact");
    equal("2", "2, 2", "exact");
    equal("\\text{no solution}", "\\emptyset", "exact");
    equal("\\text{all real numbers}", "(-\\infty, \\infty)", "exact");
    equal("\\emptyset", "\\{\\}", "exact");
    equal("(2, 5)", "2 < x < 5", "exact");
    equal("[2, \\infty)", "x \\ge 2", "exact");
    equal("(-\\infty, 3)", "x < 3", "exact");
    equal("(-1, 2]", "-1 < x \\le 2", "exact");
    equal("x<1 \\text{ or } x>2", "(-\\infty,1)\\cup(2,\\infty)", "exact");
    equal("(-\\infty, \\infty)", "\\mathbb{R}", "exact");
    equal("(1, 2, 3)", "\\langle 1, 2, 3 \\rangle", "exact");
    equal("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)", "exact");
    equal("1 \\pm \\sqrt{2}", "1+\\sqrt{2}, 1-\\sqrt{2}", "exact");
    equal("\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1+\\sqrt5}{2}, \\frac{-1-\\sqrt5}{2}", "exact");
    // Near misses: order in tuples, ends of intervals, missing or extra items.
    differ("(1, 2)", "(2, 1)");
    differ("[1, 2]", "(1, 2)");
    differ("[1, 2)", "[1, 2]");
    differ("(2, 5)", "2 \\le x < 5");
    differ("\\{1, 2, 3\\}", "\\{1, 2\\}");
    differ("\\{1, 2\\}", "\\{1, 2, 3\\}");
    differ("(1, 2)", "\\{1, 2\\}");
    differ("(1, 2, 3)", "(1, 2)");
    differ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}");
    differ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}");
    differ("1 \\pm \\sqrt{2}", "1+\\sqrt{2}");
}

#[test]
fn units_percent_degrees_currency() {
    equal("50\\%", "50", "exact");
    equal("50\\%", "0.5", "exact");
    equal("12.5\\%", "0.125", "exact");
    equal("30^\\circ", "30", "exact");
    equal("30^\\circ", "30 degrees", "exact");
    equal("\\$18.90", "18.90", "exact");
    equal("\\$1,000", "1000 dollars", "exact");
    equal("5 \\text{ cm}", "5", "exact");
    equal("5\\text{ cm}", "5 \\text{ centimeters}", "exact");
    equal("20\\text{ square units}", "20", "exact");
    differ("5\\text{ cm}", "5\\text{ m}");
    // A one-letter unit written the way units are (`\text{ m}`) is a unit, not a variable.
    equal("145\\text{ m}", "145\\text{ meters}", "exact");
    equal("5\\text{ g}", "5\\text{ grams}", "exact");
    differ("145\\text{ m}", "145\\text{ km}");
    differ("5\\text{ cm}^2", "5\\text{ cm}");
    differ("50\\%", "5");
    // A percent sign on one side only reads as the number it stands for; dropped only on a
    // whole number (gold 50, prediction 50%), never on a fraction (0.5 is not 0.5%).
    equal("50", "50\\%", "exact");
    equal("0.5", "50\\%", "exact");
    equal("1", "1\\%", "exact");
    differ("0.5", "0.5\\%");
    differ("0.5\\%", "0.5");
    differ("12.5", "12.5\\%");
    differ("50", "0.5");
    differ("30^\\circ", "60");
}

#[test]
fn text_answers() {
    equal("\\text{(C)}", "C", "text");
    equal("\\text{Monday}", "monday", "text");
    equal("\\text{odd}", "\\textbf{odd}", "text");
    differ("\\text{odd}", "\\text{even}");
    differ("\\text{(C)}", "\\text{(D)}");
}

// ---------------------------------------------------------------------------------------------
// Extraction
// ---------------------------------------------------------------------------------------------

#[test]
fn extraction_sources() {
    let gold = "\"\\\\frac{1}{2}\"";
    for completion in [
        "work... \\boxed{\\frac{1}{2}}",
        "work... \\fbox{\\frac{1}{2}}",
        "<think>\\boxed{7}</think> so \\boxed{\\dfrac{1}{2}}",
        "<answer>\\frac12</answer>",
        "<answer>so \\boxed{0.5}</answer>",
        "Steps\nFinal Answer: $\\frac{1}{2}$",
        "The answer is 1/2.",
        "steps\n#### 0.5",
        "1/2",
    ] {
        let s = scored("{}", completion, gold);
        assert_eq!(s.value, 1.0, "{completion:?}: {:?}", s.reason);
        assert_eq!(s.get("answer_found"), Some(1.0));
    }
    // Nested braces inside the box.
    assert_eq!(scored("{}", "\\boxed{\\frac{\\sqrt{3}}{2}}", "\"\\\\frac{\\\\sqrt3}{2}\"").value, 1.0);
    // Only the configured sources.
    let tags_only = r#"{"sources": ["answer_tag"]}"#;
    let s = scored(tags_only, "\\boxed{0.5}", gold);
    assert_eq!((s.value, s.get("answer_found")), (0.0, Some(0.0)));
    assert!(s.reason.as_deref().unwrap().contains("no answer found"), "{:?}", s.reason);
    let custom = r#"{"sources": ["answer_tag"], "answer_tag": "final"}"#;
    assert_eq!(scored(custom, "<final>0.5</final>", gold).value, 1.0);
    // The last box wins.
    assert_eq!(scored("{}", "\\boxed{3} no wait \\boxed{0.5}", gold).value, 1.0);
    assert_eq!(scored("{}", "\\boxed{0.5} no wait \\boxed{3}", gold).value, 0.0);
}

#[test]
fn references_strings_objects_solutions_lists() {
    let c = "\\boxed{72}";
    assert_eq!(scored("{}", c, "72").value, 1.0);
    assert_eq!(scored("{}", c, "\"72\"").value, 1.0);
    assert_eq!(scored("{}", c, r#"{"answer": "72"}"#).value, 1.0);
    assert_eq!(scored("{}", c, r#"{"solution": "So 8 \\cdot 9 = \\boxed{72}."}"#).value, 1.0);
    assert_eq!(scored("{}", c, r#"{"solution": "He has 8*9 = 72 apples.\n#### 72"}"#).value, 1.0);
    assert_eq!(scored("{}", c, r#"["70", "72"]"#).value, 1.0);
    assert_eq!(scored(r#"{"reference": {"field": "gold"}}"#, c, r#"{"gold": "72", "answer": "1"}"#).value, 1.0);
    // `none`: the whole text, unextracted.
    let whole = r#"{"reference": {"extract": "none"}}"#;
    assert_eq!(scored(whole, "\\boxed{5}", "\"\\\\boxed{5}\"").value, 1.0);
}

#[test]
fn unusable_references_are_invalid_input() {
    let c = "\\boxed{1}";
    assert!(invalid("{}", c, "null").contains("missing"));
    assert!(invalid("{}", c, r#"{"question": "q"}"#).contains("none of the fields"));
    assert!(invalid(r#"{"reference": {"field": "x"}}"#, c, r#"{"answer": "1"}"#).contains("no field `x`"));
    assert!(invalid(r#"{"reference": {"extract": "boxed"}}"#, c, "\"1\"").contains("\\boxed"));
    assert!(invalid("{}", c, "[]").contains("empty list"));
    // A gold the checker cannot read is never a silent 0.
    let msg = invalid("{}", c, "\"\\\\frac{1}{\"");
    assert!(msg.contains("could not be read"), "{msg}");
    let msg = invalid("{}", c, "\"\\\\unknowncommand{3}\"");
    assert!(msg.contains("could not be read"), "{msg}");
    let msg = invalid("{}", c, "\"1/0\"");
    assert!(msg.contains("unusable"), "{msg}");
    let msg = invalid("{}", c, "\"10^{10^{10}}\"");
    assert!(msg.contains("exponent too large"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Metrics and reasons
// ---------------------------------------------------------------------------------------------

#[test]
fn metrics_in_order_and_reasons() {
    let s = scored("{}", "\\boxed{2\\sqrt{3}}", "\"\\\\sqrt{12}\"");
    let names: Vec<&str> = s.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, crate::METRICS);
    assert_eq!(s.get("equivalent"), Some(1.0));
    assert_eq!(s.get("rule"), Some(2.0));
    assert_eq!(s.reason.as_deref(), Some("equivalent (exact, from boxed)"));
    let s = scored("{}", "\\boxed{(2, 1)}", "\"(1, 2)\"");
    assert_eq!(s.value, 0.0);
    let reason = s.reason.unwrap();
    assert!(reason.starts_with("not equivalent (exact): item 1: different values"), "{reason}");
    assert!(reason.contains("expected \"(1, 2)\""), "{reason}");
    let s = scored("{}", "\\boxed{\\frac{1}{}", "\"1\"");
    assert_eq!((s.get("prediction_parsed"), s.get("rule")), (Some(0.0), Some(9.0)));
    let s = scored("{}", "", "\"1\"");
    assert_eq!((s.get("answer_found"), s.get("rule")), (Some(0.0), Some(0.0)));
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

#[test]
fn config_is_checked() {
    assert!(reward_sdk::check_config::<MathReward>("").is_ok());
    let full = r#"{"sources": ["answer_tag", "boxed"], "answer_tag": "answer", "reference": {"field": "answer",
        "extract": "auto"}, "rel_tol": 1e-6, "decimal_rounding": true, "max_answer_bytes": 2048, "max_steps": 100000}"#;
    assert!(reward_sdk::check_config::<MathReward>(full).is_ok());
    assert!(config_error(r#"{"tolerance": 1}"#).contains("unknown field"));
    assert!(config_error(r#"{"sources": []}"#).contains("sources must not be empty"));
    assert!(config_error(r#"{"sources": ["boxed", "boxed"]}"#).contains("listed twice"));
    assert!(config_error(r#"{"sources": ["latex"]}"#).contains("unknown variant"));
    assert!(config_error(r#"{"rel_tol": 2}"#).contains("rel_tol"));
    assert!(config_error(r#"{"rel_tol": -1e-3}"#).contains("rel_tol"));
    assert!(config_error(r#"{"answer_tag": "a b"}"#).contains("answer_tag"));
    assert!(config_error(r#"{"sources": ["boxed"], "answer_tag": "final"}"#).contains("answer_tag"));
    assert!(config_error(r#"{"reference": {"extract": "first"}}"#).contains("unknown variant"));
    assert!(config_error(r#"{"max_steps": 1}"#).contains("max_steps"));
    assert!(config_error(r#"{"max_answer_bytes": 0}"#).contains("max_answer_bytes"));
}

// ---------------------------------------------------------------------------------------------
// Guard rails
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn refused(completion: &str, gold: &str) -> String {
    let s = scored("{}", completion, &serde_json::to_string(gold).unwrap());
    assert_eq!(s.value, 0.0);
    assert_eq!(s.get("rule"), Some(crate::RULE_REFUSED), "{completion:?}: {:?}", s.reason);
    s.reason.unwrap()
}

#[test]
fn pathological_predictions_are_refused_quickly() {
    let started = Instant::now();
    assert!(refused("\\boxed{10^{10^{10}}}", "1").contains("exponent too large"));
    assert!(refused("\\boxed{2^{2^{2^{2^{2^{2}}}}}}", "1").contains("too large"));
    assert!(refused("\\boxed{x^{10^{9}}}", "x").contains("exponent too large"));
    assert!(refused("\\boxed{1000000!}", "1").contains("too large"));
    let deep = format!("\\boxed{{{}1{}}}", "{".repeat(100_000), "}".repeat(100_000));
    assert!(refused(&deep, "1").contains("too long"));
    let nested = format!("\\boxed{{{}1{}}}", "(".repeat(60), ")".repeat(60));
    assert!(refused(&nested, "1").contains("nesting"));
    let huge = format!("\\boxed{{{}}}", "1+".repeat(500_000) + "1");
    assert!(refused(&huge, "1").contains("too long"));
    let many = format!("\\boxed{{{}}}", "x+".repeat(1000) + "x");
    let s = scored("{}", &many, "\"1001x\"");
    assert_eq!(s.value, 1.0, "{:?}", s.reason);
    // A megabyte of text with no answer marker is not read as an answer.
    let text = "word ".repeat(200_000);
    let s = scored("{}", &text, "\"1\"");
    assert_eq!(s.get("answer_found"), Some(0.0));
    let limit = if cfg!(debug_assertions) { 20.0 } else { 2.0 };
    assert!(started.elapsed().as_secs_f64() < limit, "took {:?}", started.elapsed());
}

#[test]
fn the_budget_bounds_a_comparison() {
    // 64 items against 64 items in reverse order: the matching is quadratic, the budget bounds it.
    let items: Vec<String> = (0..64).map(|i| format!("x+{i}")).collect();
    let gold = format!("\\{{{}\\}}", items.join(", "));
    let rev: Vec<String> = items.iter().rev().cloned().collect();
    let pred = format!("\\boxed{{\\{{{}\\}}}}", rev.join(", "));
    let s = scored("{}", &pred, &serde_json::to_string(&gold).unwrap());
    assert_eq!(s.value, 1.0, "{:?}", s.reason);
    let tight = r#"{"max_steps": 1000}"#;
    let s = scored(tight, &pred, &serde_json::to_string(&gold).unwrap());
    assert_eq!(s.get("rule"), Some(crate::RULE_REFUSED));
    assert!(s.reason.unwrap().contains("work budget of 1000 steps exhausted"));
}

#[test]
fn same_answer_every_run() {
    let cases = [("x^2+2x+1", "(x+1)^2"), ("\\sin 2x", "2\\sin x \\cos x"), ("\\frac{1}{3}", "0.333333")];
    for (gold, pred) in cases {
        let a = verdict(gold, pred);
        for _ in 0..3 {
            assert_eq!(verdict(gold, pred), a);
        }
    }
    // The test points are fixed: the same name gets the same values.
    assert_eq!(crate::compare::point("x", 0), crate::compare::point("x", 0));
    assert_ne!(crate::compare::point("x", 0), crate::compare::point("y", 0));
}
