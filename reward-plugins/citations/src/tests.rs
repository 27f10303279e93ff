//! The citations reward through `reward_sdk::score_batch`, the entry point the host's native
//! baseline uses, so config parsing, validation and caching are exercised too. The contexts,
//! questions and answers are SQuAD-v2-style triples written for these tests.

use std::time::Instant;

use reward_sdk::{Message, MetricKind, Rollout, RolloutError, Score};

use crate::CitationsReward;

const LIGHTHOUSE: &str = "The Halvard Lighthouse stands on a granite outcrop at the mouth of the Tessel estuary. \
It was completed in 1874 after six years of construction led by the engineer Margit Olsen. \
The tower is 38 metres tall, and its lamp could originally be seen from 22 nautical miles away. \
In 1921 the paraffin lamp was replaced by an electric light powered by a diesel generator. \
The last resident keeper, Arne Vik, left the station in 1987 when the light was automated. \
Today the keeper's cottage houses a small museum about the fishing communities of the coast. \
Visitors can climb the tower's 212 steps between May and September.";

const S_BUILT: &str = "It was completed in 1874 after six years of construction led by the engineer Margit Olsen.";
const S_LOCATION: &str = "The Halvard Lighthouse stands on a granite outcrop at the mouth of the Tessel estuary.";
const S_KEEPER: &str = "The last resident keeper, Arne Vik, left the station in 1987 when the light was automated.";
const REFUSAL: &str = "I cannot answer this question based on the provided context.";

fn prompt(context: &str, question: &str) -> String {
    format!("Answer from the context only, quoting your sources.\n<context>\n{context}\n</context>\nQuestion: {question}")
}

fn rollout_with(prompt_text: &str, completion: &str, reference: &str) -> Rollout {
    Rollout {
        id: "r".into(),
        messages: vec![
            Message { role: "system".into(), content: "You are a careful assistant.".into() },
            Message { role: "user".into(), content: prompt_text.into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: completion.into(),
        reference: reference.into(),
        metadata: "{}".into(),
    }
}

fn run(config: &str, rollout: Rollout) -> Result<Score, RolloutError> {
    let mut out = reward_sdk::score_batch::<CitationsReward>(config, &[rollout]);
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

#[track_caller]
fn scored(config: &str, completion: &str, reference: &str) -> Score {
    let r = rollout_with(&prompt(LIGHTHOUSE, "Who led the construction?"), completion, reference);
    match run(config, r) {
        Ok(s) => s,
        Err(e) => panic!("expected a score, got {e:?}"),
    }
}

/// A Nova answer: one part per (text, sources).
fn nova(parts: &[(&str, &[&str])]) -> String {
    let mut out = String::from("<answer>");
    for (text, sources) in parts {
        out.push_str(&format!("<answer_part><text>{text}</text><sources>"));
        for s in *sources {
            out.push_str(&format!("<source>{s}</source>"));
        }
        out.push_str("</sources></answer_part>");
    }
    out.push_str("</answer>");
    out
}

fn gold(answer: &str, sources: &[&str]) -> String {
    serde_json::json!({"answer": answer, "sources": sources}).to_string()
}

const UNANSWERABLE: &str = r#"{"answer": "", "unanswerable": true}"#;

fn m(s: &Score, name: &str) -> f64 {
    s.get(name).unwrap_or_else(|| panic!("no metric {name} in {s:?}"))
}

#[track_caller]
fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

// ---------------------------------------------------------------------------------------------
// Nova format: answers
// ---------------------------------------------------------------------------------------------

#[test]
fn perfect_answer_scores_one() {
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_BUILT])]), &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 1.0);
    for (name, want) in [
        ("format_valid", 1.0),
        ("citation_precision", 1.0),
        ("citation_recall", 1.0),
        ("answer_f1", 1.0),
        ("answer_exact", 1.0),
        ("refusal_correct", 1.0),
        ("fuzzy_sources", 0.0),
        ("over_citation", 0.0),
    ] {
        assert_eq!(m(&s, name), want, "{name}");
    }
    assert_eq!(s.metrics.iter().find(|x| x.name == "answer_f1").unwrap().kind, MetricKind::Reward);
    assert_eq!(s.metrics.iter().find(|x| x.name == "copy_ratio").unwrap().kind, MetricKind::Metric);
}

#[test]
fn sentence_answer_gets_partial_f1_and_reasoning_is_ignored() {
    let completion = format!(
        "<think>The second sentence names the engineer. <answer>draft</answer></think>{}",
        nova(&[("The engineer Margit Olsen led the construction.", &[S_BUILT])])
    );
    let s = scored("{}", &completion, &gold("Margit Olsen", &[S_BUILT]));
    // pred tokens: engineer margit olsen led construction (5), gold 2: P 0.4, R 1.
    let f1 = 2.0 * 0.4 / 1.4;
    close(m(&s, "answer_f1"), f1);
    close(m(&s, "answer_exact"), 0.0);
    close(s.value, 0.1 + 0.3 + 0.2 + 0.3 * f1);
}

#[test]
fn multi_part_answer_and_squad_alternatives() {
    let completion = nova(&[("Margit Olsen", &[S_BUILT]), ("It stands at the Tessel estuary", &[S_LOCATION])]);
    let reference = serde_json::json!({
        "answers": {"text": ["the engineer Margit Olsen", "Olsen"], "answer_start": [60, 77]},
        "sources": [S_BUILT]
    })
    .to_string();
    let s = scored("{}", &completion, &reference);
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "citation_recall"), 1.0);
    assert!(m(&s, "answer_f1") > 0.3 && m(&s, "answer_f1") < 1.0);
}

#[test]
fn correct_answer_with_wrong_source_loses_recall() {
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_LOCATION])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "citation_recall"), 0.0);
    // A real sentence that does not support the answer earns neither the answer nor precision
    // terms: only the format (it scored 0.8 before, see the README's table).
    close(s.value, 0.1);
    assert!(s.reason.unwrap().contains("gold sources"));
    // Half the gold sources cited: support 0.5 scales the precision and answer terms.
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_BUILT])]), &gold("Margit Olsen", &[S_BUILT, S_KEEPER]));
    close(m(&s, "citation_recall"), 0.5);
    close(s.value, 0.1 + 0.3 * 0.5 + 0.2 * 0.5 + 0.4 * 0.5);
    // Without grounding the old additive formula applies.
    let s = scored(r#"{"ground_answer": false}"#, &nova(&[("Margit Olsen", &[S_LOCATION])]), &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 0.8);
}

#[test]
fn normalisation_ignores_case_whitespace_and_punctuation() {
    let source = "it was COMPLETED in 1874 -- after six years of construction,\n led by the engineer margit olsen";
    let s = scored("{}", &nova(&[("Margit Olsen", &[source])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "fuzzy_sources"), 0.0);
    close(m(&s, "citation_recall"), 1.0);
}

#[test]
fn near_verbatim_quote_is_accepted_fuzzily() {
    // One word dropped ("six"), one changed ("engineer" -> "architect").
    let source = "It was completed in 1874 after years of construction led by the architect Margit Olsen.";
    let s = scored("{}", &nova(&[("Margit Olsen", &[source])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "fuzzy_sources"), 1.0);
    close(m(&s, "citation_recall"), 1.0);
    // Exact quotes only: the same source is rejected.
    let s = scored(r#"{"fuzzy_threshold": 1.0}"#, &nova(&[("Margit Olsen", &[source])]), &gold("Margit Olsen", &[]));
    close(m(&s, "citation_precision"), 0.0);
}

#[test]
fn paraphrased_source_is_not_a_quote() {
    let source = "Margit Olsen, an engineer, oversaw the six-year building project that ended in 1874.";
    let s = scored("{}", &nova(&[("Margit Olsen", &[source])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 0.0);
    close(m(&s, "citation_recall"), 0.0);
    // The answer is right but ungrounded: only the format is paid.
    close(s.value, 0.1);
    assert!(s.reason.unwrap().contains("not in the context"));
}

#[test]
fn source_from_outside_the_context_is_rejected() {
    let outside = "The lighthouse was painted with red and white stripes in 1950.";
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_BUILT, outside])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 0.5);
    close(m(&s, "citation_recall"), 1.0);
    close(s.value, 0.1 + 0.15 + 0.2 + 0.4 * 0.5);
}

#[test]
fn missing_closing_answer_tag_is_invalid() {
    let completion = nova(&[("Margit Olsen", &[S_BUILT])]).replace("</answer>", "");
    let s = scored("{}", &completion, &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 0.0);
    close(m(&s, "format_valid"), 0.0);
    assert!(s.reason.unwrap().contains("</answer>"));
}

#[test]
fn malformed_parts_are_invalid() {
    let g = gold("Margit Olsen", &[S_BUILT]);
    for (completion, why) in [
        (format!("<answer>Margit Olsen <source>{S_BUILT}</source></answer>"), "outside"),
        (
            format!("<answer><answer_part><text>Margit Olsen</text><sources><source>{S_BUILT}</sources></answer_part></answer>"),
            "not closed",
        ),
        (format!("<answer><answer_part><sources><source>{S_BUILT}</source></sources></answer_part></answer>"), "expected <text>"),
        (
            format!("<answer><answer_part><text>Margit</text>junk<sources><source>{S_BUILT}</source></sources></answer_part></answer>"),
            "unexpected",
        ),
        ("<answer><answer_part><text>Margit Olsen</text></answer_part></answer>".into(), "no sources"),
        ("<answer>Margit Olsen</answer>".into(), "no sources"),
    ] {
        let s = scored("{}", &completion, &g);
        assert_eq!(s.value, 0.0, "{completion}");
        assert_eq!(m(&s, "format_valid"), 0.0);
        let reason = s.reason.unwrap();
        assert!(reason.contains(why), "{reason} for {completion}");
    }
}

// ---------------------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn refusing_an_unanswerable_question_scores_one() {
    for completion in [format!("<answer>{REFUSAL}</answer>"), nova(&[(REFUSAL, &[])])] {
        let s = scored("{}", &completion, UNANSWERABLE);
        close(s.value, 1.0);
        close(m(&s, "refusal_correct"), 1.0);
    }
    // SQuAD v2 spelling of the flag, and a refusal with different case and punctuation.
    let s = scored(
        "{}",
        "<answer>i cannot answer this question based on the provided context</answer>",
        r#"{"answers": [], "is_impossible": true}"#,
    );
    close(s.value, 1.0);
}

#[test]
fn answering_an_unanswerable_question_scores_zero() {
    // A real quote does not make the answer right.
    let s = scored("{}", &nova(&[("It cost 40,000 kroner", &[S_BUILT])]), UNANSWERABLE);
    close(s.value, 0.0);
    close(m(&s, "refusal_correct"), 0.0);
    // Nor does a fabricated one.
    let s = scored("{}", &nova(&[("It cost 40,000 kroner", &["The construction cost 40,000 kroner in total."])]), UNANSWERABLE);
    close(s.value, 0.0);
    close(m(&s, "citation_precision"), 0.0);
}

#[test]
fn refusal_with_fabricated_sources_is_penalised() {
    let s = scored("{}", &nova(&[(REFUSAL, &["The construction cost was never recorded anywhere."])]), UNANSWERABLE);
    close(s.value, 0.25);
    close(m(&s, "refusal_correct"), 1.0);
}

#[test]
fn refusing_an_answerable_question_scores_zero() {
    let s = scored("{}", &format!("<answer>{REFUSAL}</answer>"), &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 0.0);
    close(m(&s, "refusal_correct"), 0.0);
    assert!(s.reason.unwrap().contains("refused an answerable"));
    // Configurable.
    let s =
        scored(r#"{"refusal_credit": {"refused_answerable": 0.1}}"#, &format!("<answer>{REFUSAL}</answer>"), &gold("Margit Olsen", &[]));
    close(s.value, 0.1);
}

/// The refusal the Bedrock Knowledge Bases prompt behind the Nova citation format asks for.
const RECIPE_REFUSAL: &str = "I could not find an exact answer to the question.";

#[test]
fn the_recipe_refusal_is_a_refusal() {
    for completion in [
        format!("<answer>{RECIPE_REFUSAL}</answer>"),
        nova(&[(RECIPE_REFUSAL, &[])]),
        // As the Knowledge Bases format lays it out: newlines inside <text>, no sources.
        format!("<answer>\n<answer_part>\n<text>\n{RECIPE_REFUSAL}\n</text>\n</answer_part>\n</answer>"),
        // Case, punctuation, articles and surrounding whitespace do not matter.
        "<answer>  i could NOT find exact answer to the question!  </answer>".into(),
    ] {
        let s = scored("{}", &completion, UNANSWERABLE);
        close(m(&s, "format_valid"), 1.0);
        close(m(&s, "refusal_correct"), 1.0);
        close(s.value, 1.0);
    }
    // Right only when the reference marks the question unanswerable.
    let s = scored("{}", &format!("<answer>{RECIPE_REFUSAL}</answer>"), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "refusal_correct"), 0.0);
    close(s.value, 0.0);
    // With a source it is a refusal with sources.
    let s = scored("{}", &nova(&[(RECIPE_REFUSAL, &[S_BUILT])]), UNANSWERABLE);
    close(s.value, 0.25);
}

#[test]
fn a_hedged_refusal_is_an_answer() {
    let hedged = "I could not find an exact answer to the question, but it was Margit Olsen.";
    // Without sources: an answer that cites nothing, a format error.
    let s = scored("{}", &format!("<answer>{hedged}</answer>"), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "format_valid"), 0.0);
    // On an unanswerable question: an answer, so wrong.
    let s = scored("{}", &nova(&[(hedged, &[S_BUILT])]), UNANSWERABLE);
    close(m(&s, "refusal_correct"), 0.0);
    close(s.value, 0.0);
    // The refusal and an answer in two parts: not a refusal either.
    let s = scored("{}", &nova(&[(RECIPE_REFUSAL, &[]), ("Margit Olsen", &[S_BUILT])]), UNANSWERABLE);
    close(s.value, 0.0);
    // A refusal sentence that is only a prefix or has words dropped is no refusal.
    for text in ["I could not find an exact answer", "I could not find an exact answer to the question yet"] {
        let s = scored("{}", &format!("<answer>{text}</answer>"), UNANSWERABLE);
        close(m(&s, "format_valid"), 0.0);
    }
}

#[test]
fn refusal_text_may_be_a_list() {
    let config = r#"{"refusal_text": ["The context does not say.", "No answer found."]}"#;
    for text in ["The context does not say.", "no answer found"] {
        close(scored(config, &format!("<answer>{text}</answer>"), UNANSWERABLE).value, 1.0);
    }
    // Configured refusals replace the defaults.
    close(m(&scored(config, &format!("<answer>{RECIPE_REFUSAL}</answer>"), UNANSWERABLE), "format_valid"), 0.0);
    let err = |c: &str| reward_sdk::check_config::<CitationsReward>(c).err().unwrap_or_else(|| panic!("{c} accepted"));
    assert!(err(r#"{"refusal_text": []}"#).contains("refusal_text"));
    assert!(err(r#"{"refusal_text": ["ok words", "?!"]}"#).contains("refusal_text"));
    assert!(err(r#"{"refusal_text": 3}"#).contains("refusal_text"));
}

#[test]
fn custom_refusal_text() {
    let config = r#"{"refusal_text": "The context does not say."}"#;
    let s = scored(config, "<answer>The context does not say.</answer>", UNANSWERABLE);
    close(s.value, 1.0);
    // The default text is now an ordinary answer without sources: a format error.
    let s = scored(config, &format!("<answer>{REFUSAL}</answer>"), UNANSWERABLE);
    close(m(&s, "format_valid"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Hacks
// ---------------------------------------------------------------------------------------------

#[test]
fn citing_the_whole_context_scores_low() {
    let s = scored("{}", &nova(&[("Margit Olsen", &[LIGHTHOUSE])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 0.0);
    assert!(s.value <= 0.1, "{s:?}");
    assert!(s.reason.unwrap().contains("too long"));
    // Two sentences glued together are still allowed (max_source_sentences = 2) ...
    let two = format!("{S_LOCATION} {S_BUILT}");
    let s = scored("{}", &nova(&[("Margit Olsen", &[&two])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 1.0);
    // ... three are not.
    let three =
        format!("{S_LOCATION} {S_BUILT} The tower is 38 metres tall, and its lamp could originally be seen from 22 nautical miles away.");
    let s = scored("{}", &nova(&[("Margit Olsen", &[&three])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 0.0);
}

fn sentences(text: &str) -> Vec<String> {
    text.split_inclusive(". ").map(|s| s.trim().to_owned()).collect()
}

#[test]
fn citing_every_sentence_scores_zero() {
    let all = sentences(LIGHTHOUSE);
    assert_eq!(all.len(), 7);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let s = scored("{}", &nova(&[("Margit Olsen", &refs)]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "over_citation"), 1.0);
    close(m(&s, "context_coverage"), 1.0);
    close(s.value, 0.0);
    // Spread over parts, one sentence each: the same.
    let parts: Vec<(&str, &[&str])> = refs.iter().map(|r| ("Margit Olsen", std::slice::from_ref(r))).collect();
    let s = scored("{}", &nova(&parts), &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 0.0);
    // Two relevant sentences are fine.
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_BUILT, S_LOCATION])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "over_citation"), 0.0);
    close(s.value, 1.0);
}

#[test]
fn duplicate_sources_are_invalid() {
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_BUILT, S_BUILT])]), &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 0.0);
    assert!(s.reason.unwrap().contains("twice"));
    // The same sentence re-punctuated is still a duplicate.
    let again = S_BUILT.to_uppercase().replace('.', "");
    let s = scored("{}", &nova(&[("Margit Olsen", &[S_BUILT, &again])]), &gold("Margit Olsen", &[S_BUILT]));
    close(s.value, 0.0);
}

#[test]
fn empty_parts_and_empty_sources_are_invalid() {
    let g = gold("Margit Olsen", &[S_BUILT]);
    let cases = [
        format!("<answer>{}<answer_part></answer_part></answer>", &nova(&[("Margit Olsen", &[S_BUILT])])[8..].replace("</answer>", "")),
        nova(&[("  ", &[S_BUILT])]),
        nova(&[("Margit Olsen", &[" "])]),
        nova(&[("Margit Olsen", &["..."])]),
        nova(&[("", &[S_BUILT, S_LOCATION])]),
        "<answer></answer>".into(),
        "<answer>   </answer>".into(),
    ];
    for completion in cases {
        let s = scored("{}", &completion, &g);
        assert_eq!(s.value, 0.0, "{completion}");
        assert_eq!(m(&s, "format_valid"), 0.0, "{completion}");
    }
}

#[test]
fn very_short_sources_do_not_count() {
    let s = scored("{}", &nova(&[("Margit Olsen", &["Margit Olsen"])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "citation_precision"), 0.0);
    assert!(s.value <= 0.1);
}

#[test]
fn megabyte_answer_is_rejected_quickly() {
    let text = "Margit Olsen led it. ".repeat(50_000);
    let completion = nova(&[(&text, &[S_BUILT])]);
    assert!(completion.len() > 1_000_000);
    let started = Instant::now();
    let s = scored("{}", &completion, &gold("Margit Olsen", &[S_BUILT]));
    assert!(started.elapsed().as_secs_f64() < 1.0);
    close(s.value, 0.0);
    assert!(s.reason.unwrap().contains("longer than"));
}

#[test]
fn copying_the_context_as_the_answer_is_penalised() {
    let copied = sentences(LIGHTHOUSE)[..4].join(" ");
    let s = scored("{}", &nova(&[(&copied, &[S_BUILT])]), &gold("Margit Olsen", &[S_BUILT]));
    assert!(m(&s, "copy_ratio") > 0.95);
    assert!(s.value < 0.3, "{s:?}");
    // A short answer that quotes a few words is not a copy.
    let s = scored("{}", &nova(&[("Margit Olsen led six years of construction", &[S_BUILT])]), &gold("Margit Olsen", &[S_BUILT]));
    close(m(&s, "copy_ratio"), 0.0);
    // Disabled with weight 0.
    let s = scored(r#"{"weights": {"copy": 0}}"#, &nova(&[(&copied, &[S_BUILT])]), &gold("Margit Olsen", &[S_BUILT]));
    assert!(s.value > 0.6, "{s:?}");
}

// ---------------------------------------------------------------------------------------------
// The README's table of cases
// ---------------------------------------------------------------------------------------------

/// Every row of the README's "Cases and scores" table: (case id, completion, reference, score).
fn table_cases() -> Vec<(&'static str, String, String, f64)> {
    let g = gold("Margit Olsen", &[S_BUILT]);
    let paraphrase = "Margit Olsen, an engineer, oversaw the six-year building project that ended in 1874.";
    let invented = "The lighthouse was painted with red and white stripes in 1950.";
    let sentence_f1 = 2.0 * 0.4 / 1.4;
    let every: Vec<String> = sentences(LIGHTHOUSE);
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    let hedged = "I could not find an exact answer to the question, but it was Margit Olsen.";
    vec![
        ("right-supported", nova(&[("Margit Olsen", &[S_BUILT])]), g.clone(), 1.0),
        ("partial-supported", nova(&[("The engineer Margit Olsen led the construction.", &[S_BUILT])]), g.clone(), 0.6 + 0.3 * sentence_f1),
        ("right-supported-plus-invented", nova(&[("Margit Olsen", &[S_BUILT, invented])]), g.clone(), 0.1 + 0.15 + 0.2 + 0.4 * 0.5),
        ("right-unsupporting", nova(&[("Margit Olsen", &[S_LOCATION])]), g.clone(), 0.1),
        ("right-not-in-context", nova(&[("Margit Olsen", &[paraphrase])]), g.clone(), 0.1),
        ("right-missing", "<answer>Margit Olsen</answer>".into(), g.clone(), 0.0),
        ("wrong-supported", nova(&[("Arne Vik", &[S_BUILT])]), g.clone(), 0.6),
        ("wrong-unsupporting", nova(&[("Arne Vik", &[S_LOCATION])]), g.clone(), 0.1),
        ("wrong-missing", "<answer>Arne Vik</answer>".into(), g.clone(), 0.0),
        ("whole-context", nova(&[("Margit Olsen", &[LIGHTHOUSE])]), g.clone(), 0.1),
        ("every-sentence", nova(&[("Margit Olsen", &every)]), g.clone(), 0.0),
        ("duplicate-source", nova(&[("Margit Olsen", &[S_BUILT, S_BUILT])]), g.clone(), 0.0),
        ("refusal-right", format!("<answer>{REFUSAL}</answer>"), UNANSWERABLE.into(), 1.0),
        ("recipe-refusal-right", format!("<answer>{RECIPE_REFUSAL}</answer>"), UNANSWERABLE.into(), 1.0),
        ("recipe-refusal-part-right", nova(&[(RECIPE_REFUSAL, &[])]), UNANSWERABLE.into(), 1.0),
        ("refusal-with-sources", nova(&[(RECIPE_REFUSAL, &[S_BUILT])]), UNANSWERABLE.into(), 0.25),
        ("refusal-wrong", format!("<answer>{REFUSAL}</answer>"), g.clone(), 0.0),
        ("recipe-refusal-wrong", format!("<answer>{RECIPE_REFUSAL}</answer>"), g.clone(), 0.0),
        ("answered-unanswerable", nova(&[("Margit Olsen", &[S_BUILT])]), UNANSWERABLE.into(), 0.0),
        ("hedged-refusal-unanswerable", nova(&[(hedged, &[S_BUILT])]), UNANSWERABLE.into(), 0.0),
    ]
}

/// `(case id, score)` for each row between the README's `cases:start` and `cases:end` markers.
fn readme_table() -> Vec<(String, f64)> {
    let readme = include_str!("../README.md");
    let start = readme.find("<!-- cases:start -->").expect("README has the cases table");
    let end = readme.find("<!-- cases:end -->").expect("README closes the cases table");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split('|').map(str::trim).collect();
            let id = cells[0].trim_matches('`').to_owned();
            let score = cells.last().unwrap().trim_matches('*').parse::<f64>().unwrap_or_else(|e| panic!("{l}: {e}"));
            (id, score)
        })
        .collect()
}

#[test]
fn the_readme_table_of_cases_is_what_the_reward_scores() {
    let cases = table_cases();
    let table = readme_table();
    let ids: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let readme_ids: Vec<&str> = table.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, readme_ids, "the README's rows and the test's cases are the same, in the same order");
    for ((id, completion, reference, want), (_, documented)) in cases.iter().zip(&table) {
        let s = scored("{}", completion, reference);
        assert!((s.value - want).abs() < 1e-9, "{id}: scored {} ({:?}), expected {want}", s.value, s.reason);
        assert!((documented - want).abs() < 0.005, "{id}: the README says {documented}, the reward gives {want}");
    }
}

#[test]
fn support_costs_most_of_the_reward() {
    let by = |id: &str| table_cases().into_iter().find(|c| c.0 == id).unwrap().3;
    let full = by("right-supported");
    close(full, 1.0);
    // A correct answer without a supporting citation keeps at most the format's tenth.
    for id in ["right-unsupporting", "right-not-in-context", "right-missing", "whole-context"] {
        assert!(by(id) <= 0.1 * full + 1e-9, "{id}: {}", by(id));
    }
    // Support is worth more than the answer.
    assert!(by("wrong-supported") > by("right-unsupporting"));
}

// ---------------------------------------------------------------------------------------------
// Other styles
// ---------------------------------------------------------------------------------------------

const PASSAGES: &str = "[1] The Tessel estuary freezes over in most winters before 1950.\n\
[2] The Halvard Lighthouse was automated in 1987, when keeper Arne Vik retired.\n\
[3] The keeper's cottage became a museum in 1995.\n\
[4] The museum is open from May to September.\n\
[5] A ferry links the estuary villages twice a day.\n";

fn passage_rollout(context: &str, completion: &str, reference: &str) -> Rollout {
    rollout_with(&prompt(context, "When was the lighthouse automated?"), completion, reference)
}

#[test]
fn numbered_passages() {
    let config = r#"{"style": "numbered"}"#;
    let reference = r#"{"answer": "1987", "sources": [2]}"#;
    let s = run(config, passage_rollout(PASSAGES, "<answer>1987 [2]</answer>", reference)).unwrap();
    close(s.value, 1.0);
    // Without an answer tag the whole (reasoning-free) completion is the answer.
    let s = run(config, passage_rollout(PASSAGES, "<think>see [2]</think>1987 [2].", reference)).unwrap();
    close(s.value, 1.0);
    // A passage that does not exist.
    let s = run(config, passage_rollout(PASSAGES, "1987 [2][9]", reference)).unwrap();
    close(m(&s, "citation_precision"), 0.5);
    // Wrong passage.
    let s = run(config, passage_rollout(PASSAGES, "1987 [3]", reference)).unwrap();
    close(m(&s, "citation_recall"), 0.0);
    // Gold sources as sentences work too.
    let s = run(
        config,
        passage_rollout(PASSAGES, "1987 [1, 2]", r#"{"answer": "1987", "sources": ["The Halvard Lighthouse was automated in 1987"]}"#),
    )
    .unwrap();
    close(m(&s, "citation_recall"), 1.0);
    // Every passage: over-citation.
    let s = run(config, passage_rollout(PASSAGES, "1987 [1][2][3][4][5]", reference)).unwrap();
    close(m(&s, "over_citation"), 1.0);
    close(s.value, 0.0);
    // No marker at all: a format error; a bracketed word is not a marker.
    let s = run(config, passage_rollout(PASSAGES, "1987 [sic]", reference)).unwrap();
    close(m(&s, "format_valid"), 0.0);
}

#[test]
fn passage_elements() {
    let context = "<passage id=\"1\">The estuary freezes in most winters.</passage>\n\
                   <passage id='2'>The light was automated in 1987 when the last keeper retired.</passage>";
    let s = run(r#"{"style": "numbered"}"#, passage_rollout(context, "1987 [2].", r#"{"answer": "1987", "sources": [2]}"#)).unwrap();
    close(s.value, 1.0);
    let s = run(r#"{"style": "numbered"}"#, passage_rollout(context, "In 1987 [3].", r#"{"answer": "1987", "sources": [2]}"#)).unwrap();
    close(m(&s, "citation_precision"), 0.0);
}

#[test]
fn cite_spans() {
    let config = r#"{"style": "cite"}"#;
    let g = gold("Arne Vik", &[S_KEEPER]);
    let completion = format!("<answer>Arne Vik. <cite>{S_KEEPER}</cite></answer>");
    let s = scored(config, &completion, &g);
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "citation_recall"), 1.0);
    // The quoted words are part of the answer text, so F1 is partial.
    assert!(m(&s, "answer_f1") < 1.0 && m(&s, "answer_f1") > 0.0);
    let s = scored(config, &format!("<answer>Arne Vik <cite>{S_KEEPER}</answer>"), &g);
    close(m(&s, "format_valid"), 0.0);
    let s = scored(config, "<answer>Arne Vik <cite>The keeper was a man called Arne Vik from Bergen.</cite></answer>", &g);
    close(m(&s, "citation_precision"), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Context, reference and config
// ---------------------------------------------------------------------------------------------

#[test]
fn context_from_the_reference_and_missing_context() {
    let completion = nova(&[("Margit Olsen", &[S_BUILT])]);
    let reference = serde_json::json!({"answer": "Margit Olsen", "context": LIGHTHOUSE}).to_string();
    let no_context_prompt = "Question: who led the construction?";
    let s = run("{}", rollout_with(no_context_prompt, &completion, &reference)).unwrap();
    close(s.value, 1.0);
    let err = run("{}", rollout_with(no_context_prompt, &completion, &gold("Margit Olsen", &[]))).unwrap_err();
    match err {
        RolloutError::InvalidInput(msg) => assert!(msg.contains("no context") && msg.contains("<context>"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // context_from = "prompt" ignores reference.context.
    let err = run(r#"{"context_from": "prompt"}"#, rollout_with(no_context_prompt, &completion, &reference)).unwrap_err();
    assert!(matches!(err, RolloutError::InvalidInput(m) if m.contains("no context")));
    // A custom tag.
    let p = format!("<document>{LIGHTHOUSE}</document> Who led the construction?");
    let s = run(r#"{"context_tag": "document"}"#, rollout_with(&p, &completion, &gold("Margit Olsen", &[]))).unwrap();
    close(s.value, 1.0);
    // The context in the completion itself does not count.
    let sneaky = format!("<context>{S_BUILT}</context>{completion}");
    assert!(run("{}", rollout_with(no_context_prompt, &sneaky, &gold("Margit Olsen", &[]))).is_err());
}

#[test]
fn reference_shapes() {
    let completion = nova(&[("Margit Olsen", &[S_BUILT])]);
    // A plain string.
    close(scored("{}", &completion, "\"Margit Olsen\"").value, 1.0);
    // No reference: format and citations only.
    let s = scored("{}", &completion, "null");
    close(s.value, 1.0);
    assert_eq!(s.get("answer_f1"), None);
    assert_eq!(s.get("refusal_correct"), None);
    // A bad one.
    let r = rollout_with(&prompt(LIGHTHOUSE, "q"), &completion, r#"{"sources": "one"}"#);
    assert!(matches!(run("{}", r), Err(RolloutError::InvalidInput(_))));
}

#[test]
fn config_errors_name_the_field() {
    let err = |c: &str| reward_sdk::check_config::<CitationsReward>(c).err().unwrap_or_else(|| panic!("{c} accepted"));
    assert!(err(r#"{"styl": "nova"}"#).contains("styl"));
    assert!(err(r#"{"style": "apa"}"#).contains("apa"));
    assert!(err(r#"{"fuzzy_threshold": 1.5}"#).contains("fuzzy_threshold"));
    assert!(err(r#"{"weights": {"answer_f1": -1}}"#).contains("weights.answer_f1"));
    assert!(err(r#"{"weights": {"recall": 1}}"#).contains("recall"));
    assert!(err(r#"{"context_tag": "<ctx>"}"#).contains("context_tag"));
    assert!(err(r#"{"refusal_text": "..."}"#).contains("refusal_text"));
    assert!(reward_sdk::check_config::<CitationsReward>("").is_ok());
    let full = r#"{"style": "nova", "context_tag": "context", "context_from": "auto", "answer_tag": "answer",
        "refusal_text": "I cannot answer this question based on the provided context.", "fuzzy_threshold": 0.8,
        "min_source_tokens": 3, "max_source_tokens": 80, "max_source_sentences": 2, "max_sources": 8,
        "max_coverage": 0.6, "over_citation_penalty": 1.0, "max_answer_chars": 8000, "require_citations": true,
        "ground_answer": true, "copy": {"min_tokens": 20, "threshold": 0.5},
        "weights": {"format_valid": 0.1, "citation_precision": 0.3, "citation_recall": 0.2, "answer_f1": 0.3,
                    "answer_exact": 0.1, "copy": 0.5},
        "refusal_credit": {"refused_unanswerable": 1.0, "refused_with_sources": 0.25, "refused_answerable": 0.0,
                           "answered_unanswerable": 0.0}}"#;
    reward_sdk::check_config::<CitationsReward>(full).unwrap();
}

#[test]
fn ungrounded_answers_can_be_paid_when_configured() {
    let source = "Margit Olsen, an engineer, oversaw the six-year building project that ended in 1874.";
    let s = scored(r#"{"ground_answer": false}"#, &nova(&[("Margit Olsen", &[source])]), &gold("Margit Olsen", &[]));
    // (0.1 + 0 + 0.3 + 0.1) / (0.1 + 0.3 + 0.3 + 0.1)
    close(s.value, 0.5 / 0.8);
}

// ---------------------------------------------------------------------------------------------
// Cost
// ---------------------------------------------------------------------------------------------

/// About `bytes` of varied prose with the three sentences planted in it.
fn long_context(bytes: usize) -> String {
    let words = [
        "harbour", "pilot", "signal", "tide", "channel", "beacon", "fog", "horn", "reef", "granite", "keeper", "lantern", "storm", "coast",
        "village", "ferry", "net", "boat", "winter", "summer", "north", "island",
    ];
    let mut out = String::new();
    let mut i = 0usize;
    let mut planted = 0;
    while out.len() < bytes {
        for k in 0..12 {
            out.push_str(words[(i * 7 + k * 13 + i / 5) % words.len()]);
            out.push(' ');
        }
        out.push_str(&format!("number {i}. "));
        i += 1;
        if i.is_multiple_of(40) && planted < 3 {
            out.push_str([S_BUILT, S_LOCATION, S_KEEPER][planted]);
            out.push(' ');
            planted += 1;
        }
    }
    out
}

#[test]
fn fuzzy_search_is_bounded_on_long_repetitive_contexts() {
    // 1 MB of the same few words: every quote token is frequent, so seeding must be capped.
    let context = "the keeper lit the lamp and the keeper slept ".repeat(1 << 20 >> 6);
    let quote = "the keeper lit a lamp and then the keeper slept soundly through the long night";
    let p = prompt(&context, "q");
    let started = Instant::now();
    for _ in 0..20 {
        let r = rollout_with(&p, &nova(&[("He slept", &[quote])]), "null");
        let s = run("{}", r).unwrap();
        assert_eq!(m(&s, "format_valid"), 1.0);
    }
    let limit = if cfg!(debug_assertions) { 30.0 } else { 3.0 };
    assert!(started.elapsed().as_secs_f64() < limit, "{:?}", started.elapsed());
}

#[test]
fn long_context_finds_planted_quotes() {
    let context = long_context(20_000);
    let completion = nova(&[("Margit Olsen", &[S_BUILT]), ("At the Tessel estuary", &[S_LOCATION]), ("Arne Vik", &[S_KEEPER])]);
    let r = rollout_with(&prompt(&context, "q"), &completion, &gold("Margit Olsen", &[S_BUILT, S_KEEPER]));
    let s = run("{}", r).unwrap();
    close(m(&s, "citation_precision"), 1.0);
    close(m(&s, "citation_recall"), 1.0);
    close(m(&s, "over_citation"), 0.0);
}

/// `cargo test --release -p reward-citations -- --ignored --nocapture timing`
#[test]
#[ignore]
fn timing_20kb_context_three_sources() {
    let context = long_context(20_000);
    let p = prompt(&context, "q");
    let reference = gold("Margit Olsen", &[S_BUILT, S_KEEPER]);
    let fuzzy = "It was completed in 1874 after years of construction led by the architect Margit Olsen.";
    for (label, sources, fresh) in [
        ("exact, cached context", [S_BUILT, S_LOCATION, S_KEEPER], false),
        ("one fuzzy, cached context", [fuzzy, S_LOCATION, S_KEEPER], false),
        ("exact, new context each rollout", [S_BUILT, S_LOCATION, S_KEEPER], true),
    ] {
        let completion = nova(&[("Margit Olsen", &[sources[0]]), ("The Tessel estuary", &[sources[1]]), ("Arne Vik", &[sources[2]])]);
        let n = 2000;
        let rollouts: Vec<Rollout> = (0..n)
            .map(|i| {
                let p = if fresh { format!("{p} {i}").replace("</context>", &format!(" v{i}</context>")) } else { p.clone() };
                rollout_with(&p, &completion, &reference)
            })
            .collect();
        let started = Instant::now();
        let out = reward_sdk::score_batch::<CitationsReward>("{}", &rollouts);
        let per = started.elapsed().as_secs_f64() / n as f64;
        assert!(out.iter().all(|s| s.as_ref().unwrap().get("citation_precision") == Some(1.0)));
        println!("{label}: {:.1} µs per rollout ({} bytes of context)", per * 1e6, context.len());
    }
}
