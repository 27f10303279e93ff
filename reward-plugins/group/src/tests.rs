use reward_sdk::{Message, Rollout, RolloutError, Score};

use super::*;

fn rollout(completion: &str, reference: &str) -> Rollout {
    Rollout {
        id: String::new(),
        messages: vec![
            Message { role: "user".into(), content: "Solve.".into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: completion.into(),
        reference: reference.into(),
        metadata: "{}".into(),
    }
}

/// The group's results under `config`, every rollout with reference `reference`.
fn group(config: &str, completions: &[&str], reference: &str) -> Vec<Result<Score, RolloutError>> {
    let rollouts: Vec<Rollout> = completions.iter().map(|c| rollout(c, reference)).collect();
    reward_sdk::score_group_batch::<GroupPlugin>(config, &rollouts)
}

/// The scores of a group in which no rollout errs.
fn scores(config: &str, completions: &[&str], reference: &str) -> Vec<Score> {
    group(config, completions, reference).into_iter().map(|r| r.unwrap_or_else(|e| panic!("{config}: {e:?}"))).collect()
}

fn values(scores: &[Score]) -> Vec<f64> {
    scores.iter().map(|s| s.value).collect()
}

fn metric(scores: &[Score], name: &str) -> Vec<f64> {
    scores.iter().map(|s| s.get(name).unwrap_or_else(|| panic!("no metric {name}: {s:?}"))).collect()
}

fn reason(s: &Score) -> &str {
    s.reason.as_deref().unwrap_or("")
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} against {want:?}");
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "{got:?} against {want:?}");
}

fn config_error(config: &str) -> String {
    match reward_sdk::check_group_config::<GroupPlugin>(config) {
        Ok(_) => panic!("{config} accepted"),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

#[test]
fn config_errors_name_the_field() {
    for (config, want) in [
        (r#"{}"#, "missing field `mode`"),
        (r#"{"mode": "vote"}"#, "unknown variant `vote`"),
        (r#"{"mode": "majority", "min_shares": 0.5}"#, "unknown field `min_shares`"),
        (r#"{"mode": "majority", "k": 2}"#, "k does not apply with mode \"majority\""),
        (r#"{"mode": "pass_at_k", "min_share": 0.5}"#, "min_share does not apply with mode \"pass_at_k\""),
        (r#"{"mode": "majority", "on": "answer"}"#, "on does not apply with mode \"majority\""),
        (r#"{"mode": "pass_at_k", "weight": 2}"#, "weight does not apply with mode \"pass_at_k\""),
        (r#"{"mode": "diversity", "on": "completion", "extract": "boxed"}"#, "extract does not apply with on = \"completion\""),
        (r#"{"mode": "diversity", "on": "completion", "check": "math"}"#, "check does not apply with on = \"completion\""),
        (r#"{"mode": "majority", "min_share": 1.5}"#, "min_share must be between 0 and 1, got 1.5"),
        (r#"{"mode": "pass_at_k", "k": 0}"#, "k must be at least 1"),
        (r#"{"mode": "length", "weight": -1}"#, "weight must be a finite number > 0, got -1"),
        (r#"{"mode": "majority", "extract": "last_line"}"#, "unknown variant `last_line`"),
        (r#"{"mode": "majority", "check_config": 3}"#, "check_config must be an object, got a number"),
        (r#"{"mode": "pass_at_k", "check_config": {"mode": "numeric"}}"#, "check_config.mode"),
        (
            r#"{"mode": "pass_at_k", "check_config": {"abs_toll": 1}}"#,
            "check_config (the format plugin's `reference` table, check \"exact\")",
        ),
        (r#"{"mode": "pass_at_k", "check_config": {"abs_toll": 1}}"#, "unknown field `abs_toll`"),
        (r#"{"mode": "pass_at_k", "check_config": {"abs_tol": 1}}"#, "reference.abs_tol applies only to mode \"numeric\""),
        (
            r#"{"mode": "pass_at_k", "check": "math", "check_config": {"rel_tol": 2}}"#,
            "check_config (the math plugin's config, check \"math\"): rel_tol must be",
        ),
    ] {
        let e = config_error(config);
        assert!(e.contains(want), "{config}: {e}");
    }
    for ok in [
        r#"{"mode": "majority"}"#,
        r#"{"mode": "majority", "extract": "boxed", "check": "math", "min_share": 0.5}"#,
        r#"{"mode": "diversity", "on": "completion"}"#,
        r#"{"mode": "diversity", "extract": "answer_tag", "check": "numeric", "check_config": {"abs_tol": 0.01}}"#,
        r#"{"mode": "pass_at_k", "k": 4, "check_config": {"field": "answer", "case_sensitive": true}}"#,
        r#"{"mode": "length", "weight": 0.5, "extract": "marker", "check": "math", "check_config": {"sources": ["text"]}}"#,
    ] {
        reward_sdk::check_group_config::<GroupPlugin>(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_bad_config_fails_the_whole_group() {
    let results = group(r#"{"mode": "majority", "kk": 1}"#, &["\\boxed{1}", "\\boxed{2}"], "null");
    assert_eq!(results.len(), 2);
    for r in results {
        assert!(matches!(&r, Err(RolloutError::Failed(e)) if e.contains("unknown field `kk`")), "{r:?}");
    }
}

#[test]
fn classes_join_the_first_matching_representative() {
    // A relation that is not transitive: each member joins the first representative within 1.
    let items = [Some(0), Some(1), Some(2), None, Some(3), Some(1), Some(5)];
    let classes = Classes::new(&items, |a: &i32, b: &i32| (a - b).abs() <= 1);
    assert_eq!(classes.of, [Some(0), Some(0), Some(1), None, Some(1), Some(0), Some(2)]);
    assert_eq!((classes.first.as_slice(), classes.size.as_slice()), (&[0, 2, 6][..], &[3, 2, 1][..]));
    assert_eq!(classes.largest(), Some(0));
    assert_eq!(classes.size_of(3), 0);
    // Ties go to the class created first; no items, no class.
    let tie = Classes::new(&[Some(9), Some(4), Some(4), Some(9)], |a: &i32, b: &i32| a == b);
    assert_eq!(tie.largest(), Some(0));
    assert_eq!(Classes::new(&[None::<i32>, None], |a, b| a == b).largest(), None);
}

#[test]
fn extractors_pick_their_source() {
    let text = "<think>\\boxed{9}</think>Answer: 3\n\\boxed{4}\n<answer>5</answer>";
    assert_eq!(Extract::Auto.answer(text).as_deref(), Some("5"));
    assert_eq!(Extract::Boxed.answer(text).as_deref(), Some("4"));
    assert_eq!(Extract::AnswerTag.answer(text).as_deref(), Some("5"));
    assert_eq!(Extract::Marker.answer("work\nAnswer: 3").as_deref(), Some("3"));
    assert_eq!(Extract::Boxed.answer("so \\fbox{7}").as_deref(), Some("7"));
    // The draft inside the reasoning does not count, and blank answers are none.
    assert_eq!(Extract::Boxed.answer("<think>\\boxed{9}</think> done"), None);
    assert_eq!(Extract::AnswerTag.answer("<answer>  </answer>"), None);
    assert_eq!(Extract::Auto.answer("<think>still thinking"), None);
}

// ---------------------------------------------------------------------------------------------
// majority
// ---------------------------------------------------------------------------------------------

#[test]
fn majority_pays_the_majority_answer() {
    let completions = ["\\boxed{42}", "\\boxed{41}", "So 42.\nAnswer: 42", "\\boxed{42.0}", ""];
    let s = scores(r#"{"mode": "majority"}"#, &completions, "null");
    assert_eq!(values(&s), [1.0, 0.0, 1.0, 1.0, 0.0]);
    assert_close(&metric(&s, "agreement"), &[0.6, 0.2, 0.6, 0.6, 0.0]);
    assert_close(&metric(&s, "majority_share"), &[0.6; 5]);
    assert_eq!(metric(&s, "group_size"), [5.0; 5]);
    assert_eq!(metric(&s, "answered"), [4.0; 5]);
    assert_eq!(reason(&s[0]), "agrees with the majority answer \"42\" (3 of 5)");
    assert_eq!(reason(&s[1]), "answer \"41\" (1 of 5) is not the majority answer \"42\" (3 of 5)");
    assert_eq!(reason(&s[4]), "no answer found (extract \"auto\"); the majority answer is \"42\"");
}

#[test]
fn majority_normalises_answers_with_the_configured_check() {
    // The format plugin's exact check: normalised text, numbers by value.
    let s = scores(r#"{"mode": "majority"}"#, &["\\boxed{\\text{Paris}}", "Answer: paris.", "<answer>London</answer>"], "null");
    assert_eq!(values(&s), [1.0, 1.0, 0.0]);
    // Numbers by value under the exact check too: 1/2, 0.5 and 2/4 are one answer.
    let halves = ["\\boxed{\\frac12}", "\\boxed{0.5}", "\\boxed{2/4}", "\\boxed{1}", "\\boxed{1}"];
    assert_eq!(values(&scores(r#"{"mode": "majority"}"#, &halves, "null")), [1.0, 1.0, 1.0, 0.0, 0.0]);
    // The math plugin's equivalence: 2√3 is √12; the exact check keeps them apart, and then the
    // tie between √12 and 1 goes to √12, reached first.
    let roots = ["\\boxed{2\\sqrt3}", "\\boxed{\\sqrt{12}}", "\\boxed{\\sqrt{12}}", "\\boxed{1}", "\\boxed{1}"];
    let math = scores(r#"{"mode": "majority", "check": "math"}"#, &roots, "null");
    assert_eq!(values(&math), [1.0, 1.0, 1.0, 0.0, 0.0]);
    let exact = scores(r#"{"mode": "majority", "check": "exact"}"#, &roots, "null");
    assert_eq!(values(&exact), [0.0, 1.0, 1.0, 0.0, 0.0]);
    // The numeric check within its tolerances.
    let close = ["\\boxed{3.14159}", "\\boxed{3.1416}", "\\boxed{2.7}"];
    let numeric = scores(r#"{"mode": "majority", "check": "numeric", "check_config": {"abs_tol": 0.001}}"#, &close, "null");
    assert_eq!(values(&numeric), [1.0, 1.0, 0.0]);
}

#[test]
fn majority_ties_go_to_the_answer_reached_first() {
    let s = scores(r#"{"mode": "majority", "extract": "boxed"}"#, &["\\boxed{7}", "\\boxed{8}", "\\boxed{8}", "\\boxed{7}"], "null");
    assert_eq!(values(&s), [1.0, 0.0, 0.0, 1.0]);
    let s = scores(r#"{"mode": "majority", "extract": "boxed"}"#, &["none", "\\boxed{8}", "\\boxed{7}"], "null");
    assert_eq!(values(&s), [0.0, 1.0, 0.0]);
    assert_close(&metric(&s, "majority_share"), &[1.0 / 3.0; 3]);
}

#[test]
fn majority_of_a_group_of_one_and_of_no_answers() {
    let one = scores(r#"{"mode": "majority"}"#, &["\\boxed{3}"], "null");
    assert_eq!(values(&one), [1.0]);
    assert_eq!((one[0].get("agreement"), one[0].get("majority_share"), one[0].get("group_size")), (Some(1.0), Some(1.0), Some(1.0)));
    // No rollout answers: nobody votes, nobody is paid.
    let none = scores(r#"{"mode": "majority", "extract": "boxed"}"#, &["no box", "neither", ""], "null");
    assert_eq!(values(&none), [0.0; 3]);
    assert_eq!(metric(&none, "answered"), [0.0; 3]);
    assert_eq!(metric(&none, "majority_share"), [0.0; 3]);
    assert_eq!(reason(&none[0]), "no answer in the group of 3 (extract \"boxed\"): nothing to vote on");
}

#[test]
fn majority_below_min_share_pays_nobody() {
    let completions = ["\\boxed{1}", "\\boxed{1}", "\\boxed{2}", "\\boxed{3}", "\\boxed{4}"];
    let s = scores(r#"{"mode": "majority", "min_share": 0.5}"#, &completions, "null");
    assert_eq!(values(&s), [0.0; 5]);
    assert_close(&metric(&s, "majority_share"), &[0.4; 5]);
    assert_eq!(reason(&s[0]), "no consensus: the majority answer \"1\" has 2 of 5 (40%), below min_share 50%");
    // At the threshold the majority is paid.
    let s = scores(r#"{"mode": "majority", "min_share": 0.4}"#, &completions, "null");
    assert_eq!(values(&s), [1.0, 1.0, 0.0, 0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// diversity
// ---------------------------------------------------------------------------------------------

#[test]
fn diversity_pays_rare_answers() {
    let s = scores(r#"{"mode": "diversity"}"#, &["\\boxed{1}", "\\boxed{1}", "\\boxed{2}", "Answer: 1", "<think>hmm"], "null");
    // Each 1 shares its answer with 2 of the 4 others; the 2 with none; no answer scores 0.
    assert_close(&values(&s), &[0.5, 0.5, 1.0, 0.5, 0.0]);
    assert_close(&metric(&s, "distinct"), &[0.4; 5]);
    assert_eq!(metric(&s, "group_size"), [5.0; 5]);
    assert_eq!(reason(&s[0]), "2 of the 4 others have the same answer");
    assert_eq!(reason(&s[2]), "the only one of 5 with this answer");
    assert_eq!(reason(&s[4]), "no answer found (extract \"auto\")");
}

#[test]
fn diversity_of_a_group_of_one_and_of_completions() {
    let one = scores(r#"{"mode": "diversity"}"#, &["\\boxed{1}"], "null");
    assert_eq!((one[0].value, one[0].get("distinct")), (1.0, Some(1.0)));
    let s = scores(r#"{"mode": "diversity", "on": "completion"}"#, &["Hello  World", "hello world.", "Other", "  "], "null");
    assert_close(&values(&s), &[2.0 / 3.0, 2.0 / 3.0, 1.0, 0.0]);
    assert_close(&metric(&s, "distinct"), &[0.5; 4]);
    assert_eq!(reason(&s[3]), "blank completion");
    assert_eq!(reason(&s[0]), "1 of the 3 others has the same completion");
}

// ---------------------------------------------------------------------------------------------
// pass_at_k
// ---------------------------------------------------------------------------------------------

/// C(n, k) as a float, by the multiplicative formula.
fn binomial(n: u64, k: u64) -> f64 {
    if k > n {
        return 0.0;
    }
    (0..k).map(|i| (n - i) as f64 / (i + 1) as f64).product()
}

#[test]
fn pass_at_k_estimate_is_the_unbiased_estimator() {
    for n in 1..=12 {
        for c in 0..=n {
            for k in 1..=n {
                let want = 1.0 - binomial(n - c, k) / binomial(n, k);
                let got = pass_at_k_estimate(n, c, k);
                assert!((got - want).abs() < 1e-12, "n={n} c={c} k={k}: {got} against {want}");
            }
        }
    }
    assert_eq!(pass_at_k_estimate(4, 2, 1), 0.5);
    assert!((pass_at_k_estimate(4, 2, 2) - 5.0 / 6.0).abs() < 1e-12);
}

#[test]
fn pass_at_k_scores_every_member_with_the_group_estimate() {
    let completions = ["\\boxed{4}", "\\boxed{5}", "Answer: 4", "\\boxed{6}"];
    let s = scores(r#"{"mode": "pass_at_k"}"#, &completions, r#"{"answer": "4"}"#);
    assert_close(&values(&s), &[0.5; 4]);
    assert_eq!(metric(&s, "correct"), [1.0, 0.0, 1.0, 0.0]);
    assert_eq!(metric(&s, "group_correct"), [2.0; 4]);
    assert_eq!(metric(&s, "group_size"), [4.0; 4]);
    assert_eq!(reason(&s[1]), "pass@1 = 0.500 (2 of 4 correct); this one is wrong");
    let s = scores(r#"{"mode": "pass_at_k", "k": 2}"#, &completions, r#"{"answer": "4"}"#);
    assert_close(&values(&s), &[5.0 / 6.0; 4]);
    let none = scores(r#"{"mode": "pass_at_k", "k": 2}"#, &["\\boxed{1}", "no"], "4");
    assert_eq!(values(&none), [0.0; 2]);
}

#[test]
fn pass_at_k_with_k_above_the_group_size_uses_the_group_size() {
    let s = scores(r#"{"mode": "pass_at_k", "k": 10}"#, &["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"], "2");
    assert_eq!(values(&s), [1.0; 3]);
    assert_eq!(metric(&s, "k"), [3.0; 3]);
    assert_eq!(reason(&s[0]), "pass@3 = 1.000 (1 of 3 correct; k = 10 is more than the 3 scored, so k = 3); this one is wrong");
    let s = scores(r#"{"mode": "pass_at_k", "k": 10}"#, &["\\boxed{1}", "\\boxed{3}"], "2");
    assert_eq!(values(&s), [0.0; 2]);
    // A group of one: pass@1 is the rollout's own correctness.
    assert_eq!(values(&scores(r#"{"mode": "pass_at_k", "k": 4}"#, &["\\boxed{2}"], "2")), [1.0]);
}

#[test]
fn pass_at_k_missing_reference_is_that_rollouts_error() {
    let rollouts = vec![rollout("\\boxed{2}", "2"), rollout("\\boxed{2}", "null"), rollout("\\boxed{3}", "2"), rollout("\\boxed{2}", "")];
    let results = reward_sdk::score_group_batch::<GroupPlugin>(r#"{"mode": "pass_at_k"}"#, &rollouts);
    for i in [1, 3] {
        match &results[i] {
            Err(RolloutError::InvalidInput(e)) => {
                assert_eq!(e, "reference is missing (null): mode \"pass_at_k\" checks each rollout's answer against its `reference`")
            }
            other => panic!("rollout {i}: {other:?}"),
        }
    }
    // The others are scored among themselves: 1 of 2 correct.
    let scored: Vec<&Score> = [0, 2].iter().map(|&i| results[i].as_ref().unwrap()).collect();
    assert!(scored.iter().all(|s| s.value == 0.5 && s.get("group_size") == Some(4.0)), "{scored:?}");
    assert!(reason(scored[0]).contains("2 without a usable reference left out"), "{}", reason(scored[0]));
    // An unusable reference is the format plugin's error, naming the field.
    let r = group(r#"{"mode": "pass_at_k", "check_config": {"field": "gold"}}"#, &["\\boxed{2}"], r#"{"answer": "2"}"#);
    assert!(matches!(&r[0], Err(RolloutError::InvalidInput(e)) if e.contains("reference has no field `gold`")), "{r:?}");
}

#[test]
fn pass_at_k_correctness_follows_the_check() {
    let completions = ["\\boxed{0.1250001}", "\\boxed{1/8}"];
    // The exact check reads 1/8 as a number, but 0.1250001 is another number.
    let exact = scores(r#"{"mode": "pass_at_k"}"#, &completions, "0.125");
    assert_eq!(metric(&exact, "correct"), [0.0, 1.0]);
    let numeric = scores(r#"{"mode": "pass_at_k", "check": "numeric", "check_config": {"abs_tol": 1e-6}}"#, &completions, "0.125");
    assert_eq!(metric(&numeric, "correct")[0], 1.0);
    let math = scores(r#"{"mode": "pass_at_k", "check": "math"}"#, &completions, r#""\\frac{1}{8}""#);
    assert_eq!(metric(&math, "correct"), [0.0, 1.0]);
}

// ---------------------------------------------------------------------------------------------
// length
// ---------------------------------------------------------------------------------------------

#[test]
fn length_pays_short_correct_answers() {
    let long_wrong = format!("{}\\boxed{{6}}", "a".repeat(20));
    // 9, 19, 9 and 29 characters; min 9, max 29.
    let completions = ["\\boxed{4}", "work work \\boxed{4}", "\\boxed{5}", long_wrong.as_str()];
    let s = scores(r#"{"mode": "length"}"#, &completions, "4");
    assert_close(&values(&s), &[0.5, 0.0, 0.0, -0.5]);
    assert_eq!(metric(&s, "correct"), [1.0, 1.0, 0.0, 0.0]);
    assert_eq!(metric(&s, "length"), [9.0, 19.0, 9.0, 29.0]);
    assert_eq!(reason(&s[0]), "correct, 9 chars (group 9 to 29): λ = 0.500");
    assert_eq!(reason(&s[2]), "wrong, 9 chars (group 9 to 29): λ = 0.500, a wrong answer gets at most 0");
    let weighted = scores(r#"{"mode": "length", "weight": 2}"#, &completions, "4");
    assert_close(&values(&weighted), &[1.0, 0.0, 0.0, -1.0]);
}

#[test]
fn length_of_equal_lengths_and_of_a_group_of_one_is_zero() {
    let s = scores(r#"{"mode": "length"}"#, &["\\boxed{4}", "\\boxed{5}"], "4");
    assert_eq!(values(&s), [0.0, 0.0]);
    assert_eq!(values(&scores(r#"{"mode": "length"}"#, &["\\boxed{4}"], "4")), [0.0]);
}

#[test]
fn length_leaves_rollouts_without_a_reference_out_of_the_range() {
    let rollouts = vec![rollout("\\boxed{4}", "4"), rollout(&"x".repeat(100), "null"), rollout("so: \\boxed{4}", "4")];
    let results = reward_sdk::score_group_batch::<GroupPlugin>(r#"{"mode": "length"}"#, &rollouts);
    assert!(matches!(&results[1], Err(RolloutError::InvalidInput(e)) if e.contains("mode \"length\"")), "{:?}", results[1]);
    // 9 and 13 characters: the 100-character rollout does not stretch the range.
    assert_close(&[results[0].as_ref().unwrap().value, results[2].as_ref().unwrap().value], &[0.5, -0.5]);
}

#[test]
fn every_score_is_finite() {
    let completions = ["", "\\boxed{1}", "x", "<think>"];
    for config in [
        r#"{"mode": "majority"}"#,
        r#"{"mode": "diversity"}"#,
        r#"{"mode": "diversity", "on": "completion"}"#,
        r#"{"mode": "pass_at_k", "k": 3}"#,
        r#"{"mode": "length"}"#,
    ] {
        for n in 1..=completions.len() {
            for s in scores(config, &completions[..n], "1") {
                assert!(s.value.is_finite() && s.metrics.iter().all(|m| m.value.is_finite()), "{config}: {s:?}");
            }
        }
    }
}
