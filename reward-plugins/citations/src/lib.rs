//! The built-in `citations` reward: a grounded answer whose sources are quoted from (or point
//! into) the context of the prompt, compared with a gold answer, gold sources and answerability.
//!
//! Citation styles: the Nova format (`<answer><answer_part><text>…</text><sources><source>…
//! </source></sources></answer_part></answer>`), numbered passages cited as `[1]`, and `<cite>`
//! spans. The configuration ([`CitationsConfig`]), the metrics and the formula are documented in
//! `README.md` next to this crate.

use std::borrow::Cow;

use reward_sdk::extract::{self, Tag};
use reward_sdk::{PluginInfo, Reward, Rollout, RolloutError, Score};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

mod parse;
mod text;

use parse::{Cite, Part};
use text::{Context, ContextCache, bag_f1, squad_tokens, tokens};

/// The citations reward.
pub struct CitationsReward;

/// The plugin's version, reported by [`Reward::info`].
pub const VERSION: &str = "0.1.0";

/// Every metric the reward may emit, in the order it emits them.
pub const METRICS: [&str; 11] = [
    "format_valid",
    "citation_precision",
    "citation_recall",
    "answer_f1",
    "answer_exact",
    "refusal_correct",
    "copy_ratio",
    "num_sources",
    "fuzzy_sources",
    "context_coverage",
    "over_citation",
];

/// The refusal text when the config does not set one.
pub const DEFAULT_REFUSAL: &str = "I cannot answer this question based on the provided context.";

/// The refusal the Bedrock Knowledge Bases generation prompt (the Nova citation format's source)
/// asks for: "please state that you could not find an exact answer to the question".
pub const RECIPE_REFUSAL: &str = "I could not find an exact answer to the question.";

/// How citations are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// `<answer><answer_part><text>…</text><sources><source>…</source></sources></answer_part></answer>`.
    #[default]
    Nova,
    /// `[1]`, `[2, 3]` markers pointing at numbered passages of the context.
    Numbered,
    /// `<cite>quoted words</cite>` spans in running text.
    Cite,
}

/// Where the context comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextFrom {
    /// The prompt's context tag, else `reference.context`.
    #[default]
    Auto,
    /// Only the prompt's context tag.
    Prompt,
    /// Only `reference.context`.
    Reference,
}

/// The reward's configuration; every field is optional. See `README.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitationsConfig {
    #[serde(default)]
    style: Style,
    #[serde(default = "default_context_tag", deserialize_with = "tag")]
    context_tag: Tag,
    #[serde(default)]
    context_from: ContextFrom,
    #[serde(default = "default_answer_tag", deserialize_with = "tag")]
    answer_tag: Tag,
    #[serde(default = "default_refusal", deserialize_with = "one_or_more")]
    refusal_text: Vec<String>,
    #[serde(default = "d_fuzzy")]
    fuzzy_threshold: f64,
    #[serde(default = "d_min_tokens")]
    min_source_tokens: usize,
    #[serde(default = "d_max_tokens")]
    max_source_tokens: usize,
    #[serde(default = "d_max_sentences")]
    max_source_sentences: usize,
    #[serde(default = "d_max_sources")]
    max_sources: usize,
    #[serde(default = "d_max_coverage")]
    max_coverage: f64,
    #[serde(default = "d_over_penalty")]
    over_citation_penalty: f64,
    #[serde(default = "d_max_answer_chars")]
    max_answer_chars: usize,
    #[serde(default = "d_true")]
    require_citations: bool,
    #[serde(default = "d_true")]
    ground_answer: bool,
    #[serde(default)]
    copy: CopyCheck,
    #[serde(default)]
    weights: Weights,
    #[serde(default)]
    refusal_credit: RefusalCredit,
    #[serde(skip)]
    cache: ContextCache,
}

/// The penalty for answer text copied from the context.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyCheck {
    #[serde(default = "d_copy_min_tokens")]
    min_tokens: usize,
    #[serde(default = "d_copy_threshold")]
    threshold: f64,
}

impl Default for CopyCheck {
    fn default() -> Self {
        CopyCheck { min_tokens: d_copy_min_tokens(), threshold: d_copy_threshold() }
    }
}

/// Weights of the formula.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Weights {
    #[serde(default = "w_format")]
    format_valid: f64,
    #[serde(default = "w_precision")]
    citation_precision: f64,
    #[serde(default = "w_recall")]
    citation_recall: f64,
    #[serde(default = "w_f1")]
    answer_f1: f64,
    #[serde(default = "w_exact")]
    answer_exact: f64,
    #[serde(default = "w_copy")]
    copy: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            format_valid: w_format(),
            citation_precision: w_precision(),
            citation_recall: w_recall(),
            answer_f1: w_f1(),
            answer_exact: w_exact(),
            copy: w_copy(),
        }
    }
}

/// Scores of the refusal cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalCredit {
    #[serde(default = "d_one")]
    refused_unanswerable: f64,
    #[serde(default = "d_with_sources")]
    refused_with_sources: f64,
    #[serde(default)]
    refused_answerable: f64,
    #[serde(default)]
    answered_unanswerable: f64,
}

impl Default for RefusalCredit {
    fn default() -> Self {
        RefusalCredit {
            refused_unanswerable: 1.0,
            refused_with_sources: d_with_sources(),
            refused_answerable: 0.0,
            answered_unanswerable: 0.0,
        }
    }
}

fn default_context_tag() -> Tag {
    Tag::new("context")
}
fn default_answer_tag() -> Tag {
    Tag::ANSWER
}
fn default_refusal() -> Vec<String> {
    vec![DEFAULT_REFUSAL.into(), RECIPE_REFUSAL.into()]
}
fn d_fuzzy() -> f64 {
    0.8
}
fn d_min_tokens() -> usize {
    3
}
fn d_max_tokens() -> usize {
    80
}
fn d_max_sentences() -> usize {
    2
}
fn d_max_sources() -> usize {
    8
}
fn d_max_coverage() -> f64 {
    0.6
}
fn d_over_penalty() -> f64 {
    1.0
}
fn d_max_answer_chars() -> usize {
    8000
}
fn d_true() -> bool {
    true
}
fn d_copy_min_tokens() -> usize {
    20
}
fn d_copy_threshold() -> f64 {
    0.5
}
fn d_one() -> f64 {
    1.0
}
fn d_with_sources() -> f64 {
    0.25
}
fn w_format() -> f64 {
    0.1
}
fn w_precision() -> f64 {
    0.3
}
fn w_recall() -> f64 {
    0.2
}
fn w_f1() -> f64 {
    0.3
}
fn w_exact() -> f64 {
    0.1
}
fn w_copy() -> f64 {
    0.5
}

/// A string or a list of strings.
fn one_or_more<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMore {
        One(String),
        More(Vec<String>),
    }
    match OneOrMore::deserialize(d) {
        Ok(OneOrMore::One(s)) => Ok(vec![s]),
        Ok(OneOrMore::More(v)) => Ok(v),
        Err(_) => Err(serde::de::Error::custom("refusal_text must be a string or a list of strings")),
    }
}

fn tag<'de, D: Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
    let name = String::deserialize(d)?;
    Ok(Tag::new(&name))
}

impl CitationsConfig {
    fn validate(&self) -> Result<(), String> {
        for (field, t) in [("context_tag", &self.context_tag), ("answer_tag", &self.answer_tag)] {
            if !Tag::is_valid_name(t.name()) {
                return Err(format!("{field}: {:?} is not a tag name", t.name()));
            }
        }
        if self.refusal_text.is_empty() {
            return Err("refusal_text must name at least one refusal".into());
        }
        if let Some(blank) = self.refusal_text.iter().find(|t| squad_tokens(t).is_empty()) {
            return Err(format!("refusal_text: {blank:?} must contain words"));
        }
        let unit = [
            ("fuzzy_threshold", self.fuzzy_threshold),
            ("max_coverage", self.max_coverage),
            ("over_citation_penalty", self.over_citation_penalty),
            ("copy.threshold", self.copy.threshold),
            ("refusal_credit.refused_unanswerable", self.refusal_credit.refused_unanswerable),
            ("refusal_credit.refused_with_sources", self.refusal_credit.refused_with_sources),
            ("refusal_credit.refused_answerable", self.refusal_credit.refused_answerable),
            ("refusal_credit.answered_unanswerable", self.refusal_credit.answered_unanswerable),
        ];
        for (field, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{field} must be between 0 and 1, got {v}"));
            }
        }
        if self.fuzzy_threshold == 0.0 {
            return Err("fuzzy_threshold must be above 0 (1 means exact quotes only)".into());
        }
        if self.copy.threshold >= 1.0 {
            return Err("copy.threshold must be below 1 (set weights.copy to 0 to disable the copy penalty)".into());
        }
        let w = &self.weights;
        for (field, v) in [
            ("weights.format_valid", w.format_valid),
            ("weights.citation_precision", w.citation_precision),
            ("weights.citation_recall", w.citation_recall),
            ("weights.answer_f1", w.answer_f1),
            ("weights.answer_exact", w.answer_exact),
            ("weights.copy", w.copy),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{field} must be a finite number >= 0, got {v}"));
            }
        }
        if w.format_valid + w.citation_precision == 0.0 {
            return Err("weights.format_valid and weights.citation_precision are both 0: an answer without a \
                        gold answer or gold sources would always score 0"
                .into());
        }
        if self.min_source_tokens == 0 {
            return Err("min_source_tokens must be at least 1".into());
        }
        if self.max_source_tokens < self.min_source_tokens {
            return Err("max_source_tokens must not be below min_source_tokens".into());
        }
        if self.max_source_sentences == 0 || self.max_sources == 0 || self.max_answer_chars == 0 {
            return Err("max_source_sentences, max_sources and max_answer_chars must be at least 1".into());
        }
        Ok(())
    }
}

impl Reward for CitationsReward {
    type Config = CitationsConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "citations".into(),
            version: VERSION.into(),
            description: "grounded answers: sources quoted from the context (Nova format, [n] passages or <cite>), \
                          citation precision/recall, SQuAD answer F1, refusals"
                .into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn validate(config: &CitationsConfig) -> Result<(), String> {
        config.validate()
    }

    fn score(config: &CitationsConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
        score(config, rollout)
    }
}

reward_sdk::export_reward!(CitationsReward);

// ---------------------------------------------------------------------------------------------
// The reference
// ---------------------------------------------------------------------------------------------

/// A gold source: a sentence of the context, or a passage id.
#[derive(Debug)]
enum GoldSource {
    Text(String),
    Passage(String),
}

#[derive(Debug, Default)]
struct Gold {
    answers: Vec<String>,
    /// `Some(true)` when the reference says the question is unanswerable, `Some(false)` when it
    /// has an answer, `None` when it says neither.
    unanswerable: Option<bool>,
    sources: Vec<GoldSource>,
    context: Option<String>,
}

fn bad(msg: impl Into<String>) -> RolloutError {
    RolloutError::InvalidInput(msg.into())
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, RolloutError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(format!("reference.{field} must hold strings"))),
            })
            .collect(),
        // SQuAD's {"text": [...], "answer_start": [...]}.
        Value::Object(o) if o.contains_key("text") => strings(&o["text"], field),
        _ => Err(bad(format!("reference.{field} must be a string or a list of strings"))),
    }
}

fn parse_gold(rollout: &Rollout) -> Result<Gold, RolloutError> {
    let mut g = Gold::default();
    match rollout.reference_json()? {
        Value::Null => {}
        Value::String(s) => g.answers.push(s),
        list @ Value::Array(_) => g.answers = strings(&list, "answers")?,
        Value::Object(o) => {
            for key in ["answer", "answers"] {
                if let Some(v) = o.get(key) {
                    g.answers.extend(strings(v, key)?);
                }
            }
            for key in ["unanswerable", "is_impossible"] {
                match o.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::Bool(b)) => g.unanswerable = Some(*b || g.unanswerable == Some(true)),
                    Some(_) => return Err(bad(format!("reference.{key} must be true or false"))),
                }
            }
            for key in ["sources", "gold_sources"] {
                match o.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(items)) => {
                        for item in items {
                            g.sources.push(match item {
                                Value::String(s) => GoldSource::Text(s.clone()),
                                Value::Number(n) => GoldSource::Passage(n.to_string()),
                                _ => return Err(bad(format!("reference.{key} must hold strings or passage numbers"))),
                            });
                        }
                    }
                    Some(_) => return Err(bad(format!("reference.{key} must be a list"))),
                }
            }
            match o.get("context") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => g.context = Some(s.clone()),
                Some(_) => return Err(bad("reference.context must be a string")),
            }
        }
        _ => return Err(bad("reference must be a string, a list of strings or an object")),
    }
    g.answers.retain(|a| !squad_tokens(a).is_empty());
    if g.unanswerable.is_none() && !g.answers.is_empty() {
        g.unanswerable = Some(false);
    }
    Ok(g)
}

/// The context: the first `<context>…</context>` of the conversation (before the completion),
/// or `reference.context`, as configured.
fn find_context<'a>(c: &CitationsConfig, rollout: &'a Rollout, gold: &'a Gold) -> Result<&'a str, RolloutError> {
    let from_prompt = || {
        let turns = rollout
            .messages
            .len()
            .saturating_sub(usize::from(rollout.messages.last().is_some_and(|m| m.content == rollout.completion && m.role != "user")));
        rollout.messages[..turns].iter().filter(|m| !m.role.ends_with("assistant")).find_map(|m| {
            let s = &m.content;
            let open = memchr::memmem::find(s.as_bytes(), c.context_tag.open().as_bytes())?;
            let body = open + c.context_tag.open().len();
            let len = memchr::memmem::find(&s.as_bytes()[body..], c.context_tag.close().as_bytes())?;
            Some(&s[body..body + len])
        })
    };
    let found = match c.context_from {
        ContextFrom::Prompt => from_prompt(),
        ContextFrom::Reference => gold.context.as_deref(),
        ContextFrom::Auto => from_prompt().or(gold.context.as_deref()),
    };
    let where_ = match c.context_from {
        ContextFrom::Prompt => format!("a {}…{} block in the prompt", c.context_tag.open(), c.context_tag.close()),
        ContextFrom::Reference => "reference.context".into(),
        ContextFrom::Auto => format!("a {}…{} block in the prompt, or reference.context", c.context_tag.open(), c.context_tag.close()),
    };
    match found {
        Some(t) if !t.trim().is_empty() => Ok(t),
        Some(_) => Err(bad(format!("the context is empty (looked for {where_})"))),
        None => Err(bad(format!("no context: looked for {where_} and found none"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

/// Sentences in a quote: 1 + the sentence ends inside it (`.`, `!`, `?` then whitespace then an
/// uppercase letter or digit).
fn sentence_count(quote: &str) -> usize {
    let b = quote.trim().as_bytes();
    let mut n = 1;
    for i in 0..b.len() {
        if matches!(b[i], b'.' | b'!' | b'?') {
            let mut j = i + 1;
            if j < b.len() && matches!(b[j], b'"' | b'\'' | b')') {
                j += 1;
            }
            let ws = j;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j > ws && j < b.len() && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit()) {
                n += 1;
            }
        }
    }
    n
}

fn answer_too_long(text: &str, max_chars: usize) -> bool {
    text.len() > max_chars && (text.len() / 4 >= max_chars || text.chars().nth(max_chars).is_some())
}

/// Whether the answer text (all parts' texts) is one of the refusals: equal after SQuAD
/// normalisation (case, punctuation, articles and whitespace ignored), never a prefix or a
/// substring, so "I could not find an exact answer, but it is X" is an answer, not a refusal.
fn is_refusal(c: &CitationsConfig, parts: &[Part]) -> bool {
    let joined: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
    let answer = squad_tokens(&joined.join(" "));
    c.refusal_text.iter().any(|r| squad_tokens(r) == answer)
}

/// Checks the parts; returns whether the answer is the refusal.
fn check_parts(c: &CitationsConfig, parts: &[Part]) -> Result<bool, String> {
    if parts.is_empty() {
        return Err("the answer has no parts".into());
    }
    let refused = is_refusal(c, parts);
    for (i, p) in parts.iter().enumerate() {
        let n = i + 1;
        if p.text.trim().is_empty() {
            return Err(format!("answer part {n} has no text"));
        }
        let mut seen: Vec<Cow<'_, str>> = Vec::new();
        for cite in &p.cites {
            let key: Cow<'_, str> = match cite {
                Cite::Quote(q) => {
                    let t = tokens(q);
                    if t.is_empty() {
                        return Err(format!("answer part {n} has an empty source"));
                    }
                    Cow::Owned(t.join(" "))
                }
                Cite::Passage(id) => Cow::Borrowed(id.as_str()),
            };
            if seen.contains(&key) {
                return Err(format!("answer part {n} cites the same source twice"));
            }
            seen.push(key);
        }
        if c.require_citations && !refused && p.cites.is_empty() {
            return Err(if c.style == Style::Nova && parts.len() == 1 {
                format!("answer part {n} has no sources (and the answer is not the refusal text)")
            } else {
                format!("answer part {n} has no sources")
            });
        }
    }
    Ok(refused)
}

#[derive(Default)]
struct CiteStats {
    n: usize,
    valid: usize,
    fuzzy: usize,
    ranges: Vec<(usize, usize)>,
    problems: Vec<String>,
}

fn check_cites(c: &CitationsConfig, ctx: &Context, parts: &[Part]) -> CiteStats {
    let mut s = CiteStats::default();
    for cite in parts.iter().flat_map(|p| &p.cites) {
        s.n += 1;
        match cite {
            Cite::Quote(q) => {
                let t = tokens(q);
                if t.len() < c.min_source_tokens {
                    s.problems.push(format!("source {} is too short ({} words)", s.n, t.len()));
                } else if t.len() > c.max_source_tokens || sentence_count(q) > c.max_source_sentences {
                    s.problems.push(format!("source {} is too long to be a quoted sentence", s.n));
                } else {
                    match ctx.find(&t, c.fuzzy_threshold) {
                        Some(f) => {
                            s.valid += 1;
                            if f.similarity < 1.0 {
                                s.fuzzy += 1;
                            }
                            s.ranges.push((f.start, f.end));
                        }
                        None => s.problems.push(format!("source {} is not in the context", s.n)),
                    }
                }
            }
            Cite::Passage(id) => match ctx.passage(id) {
                Some(r) => {
                    s.valid += 1;
                    s.ranges.push(r);
                }
                None => s.problems.push(format!("passage [{id}] is not in the context")),
            },
        }
    }
    s
}

fn union_len(ranges: &[(usize, usize)]) -> usize {
    let mut r = ranges.to_vec();
    r.sort_unstable();
    let (mut total, mut cur): (usize, Option<(usize, usize)>) = (0, None);
    for (s, e) in r {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

fn recall(c: &CitationsConfig, ctx: &Context, gold: &[GoldSource], cited: &[(usize, usize)]) -> f64 {
    let hit = gold
        .iter()
        .filter(|g| {
            let range = match g {
                GoldSource::Text(t) => ctx.find(&tokens(t), c.fuzzy_threshold).map(|f| (f.start, f.end)),
                GoldSource::Passage(id) => ctx.passage(id),
            };
            let Some((gs, ge)) = range else { return false };
            cited.iter().any(|&(s, e)| {
                let overlap = e.min(ge).saturating_sub(s.max(gs));
                2 * overlap >= ge - gs
            })
        })
        .count();
    hit as f64 / gold.len() as f64
}

fn score(c: &CitationsConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
    let gold = parse_gold(rollout)?;
    let context_text = find_context(c, rollout, &gold)?;
    let invalid = |why: String| Ok(Score::new(0.0).reward("format_valid", 0.0).with_reason(why));

    let region = extract::strip_thinking(&rollout.completion);
    let tagged = extract::last_tag_content(&region, &c.answer_tag);
    let answer = match (c.style, tagged) {
        (_, Some(a)) => a,
        (Style::Nova, None) => {
            return invalid(format!("no complete {}…{}", c.answer_tag.open(), c.answer_tag.close()));
        }
        (_, None) => region.trim(),
    };
    if answer_too_long(answer, c.max_answer_chars) {
        return invalid(format!("the answer is longer than {} characters", c.max_answer_chars));
    }
    let parsed = match c.style {
        Style::Nova => parse::nova(answer),
        Style::Numbered => parse::numbered(answer),
        Style::Cite => parse::cite_spans(answer),
    };
    let (parts, refused) = match parsed.and_then(|p| check_parts(c, &p).map(|r| (p, r))) {
        Ok(x) => x,
        Err(why) => return invalid(why),
    };

    let ctx = c.cache.get(context_text);
    let stats = check_cites(c, &ctx, &parts);
    let precision = if stats.n == 0 { 0.0 } else { stats.valid as f64 / stats.n as f64 };
    let coverage = if ctx.len() == 0 { 0.0 } else { union_len(&stats.ranges) as f64 / ctx.len() as f64 };
    let over = stats.n > c.max_sources || (stats.ranges.len() >= 2 && coverage > c.max_coverage);

    let mut s = Score::new(0.0).reward("format_valid", 1.0);
    let mut reasons: Vec<String> = stats.problems.iter().take(3).cloned().collect();
    if stats.problems.len() > 3 {
        reasons.push(format!("{} more bad sources", stats.problems.len() - 3));
    }
    if stats.n > 0 {
        s = s.reward("citation_precision", precision);
    }

    // Refusals: their own credit.
    if refused || gold.unanswerable == Some(true) {
        let (value, correct, why) = match (refused, gold.unanswerable) {
            (true, Some(true)) if stats.n == 0 => (c.refusal_credit.refused_unanswerable, 1.0, "refused an unanswerable question"),
            (true, Some(true)) => (c.refusal_credit.refused_with_sources, 1.0, "refused an unanswerable question but cited sources"),
            (true, Some(false)) => (c.refusal_credit.refused_answerable, 0.0, "refused an answerable question"),
            (true, _) => (c.refusal_credit.refused_answerable, 0.0, "refused, but the reference does not mark the question unanswerable"),
            (false, _) => (c.refusal_credit.answered_unanswerable, 0.0, "answered an unanswerable question"),
        };
        s = s.reward("refusal_correct", correct).metric("num_sources", stats.n as f64);
        reasons.insert(0, why.into());
        s.value = value;
        return Ok(s.with_reason(reasons.join("; ")));
    }

    let w = &c.weights;
    // Support: with gold sources, a citation supports the answer only when it covers one (recall);
    // a real but irrelevant sentence is no support. With `ground_answer`, the precision term is
    // paid in proportion to recall and the answer terms in proportion to precision × recall.
    let gold_recall = (!gold.sources.is_empty()).then(|| recall(c, &ctx, &gold.sources, &stats.ranges));
    let support = if c.ground_answer { gold_recall.unwrap_or(1.0) } else { 1.0 };
    let mut num = w.format_valid + w.citation_precision * precision * support;
    let mut den = w.format_valid + w.citation_precision;
    if let Some(r) = gold_recall {
        s = s.reward("citation_recall", r);
        num += w.citation_recall * r;
        den += w.citation_recall;
        if r < 1.0 {
            reasons.push(format!("cited {:.0}% of the gold sources", r * 100.0));
        }
    }
    let text: Vec<&str> = parts.iter().map(|p| p.text.as_str()).collect();
    let text = text.join(" ");
    if !gold.answers.is_empty() {
        let pred = squad_tokens(&text);
        let (mut f1, mut exact) = (0.0f64, 0.0f64);
        for g in &gold.answers {
            let g = squad_tokens(g);
            f1 = f1.max(bag_f1(&pred, &g));
            if pred == g {
                exact = 1.0;
            }
        }
        s = s.reward("answer_f1", f1).reward("answer_exact", exact);
        let grounding = if c.ground_answer { precision * support } else { 1.0 };
        num += (w.answer_f1 * f1 + w.answer_exact * exact) * grounding;
        den += w.answer_f1 + w.answer_exact;
        if gold.unanswerable == Some(false) {
            s = s.reward("refusal_correct", 1.0);
        }
        if f1 < 1.0 {
            reasons.push(format!("answer F1 {f1:.2}"));
        }
    }
    let text_tokens = tokens(&text);
    let copy_ratio = if text_tokens.len() >= c.copy.min_tokens { ctx.copy_ratio(&text_tokens) } else { 0.0 };
    let copy_penalty = ((copy_ratio - c.copy.threshold) / (1.0 - c.copy.threshold)).max(0.0);
    let mut value = num / den;
    if over {
        value *= 1.0 - c.over_citation_penalty;
        reasons.push(format!(
            "over-citation: {} sources covering {:.0}% of the context (limits: {} sources, {:.0}%)",
            stats.n,
            coverage * 100.0,
            c.max_sources,
            c.max_coverage * 100.0
        ));
    }
    if copy_penalty > 0.0 {
        value -= w.copy * copy_penalty;
        reasons.push(format!("{:.0}% of the answer text is copied from the context", copy_ratio * 100.0));
    }
    s.value = value.clamp(0.0, 1.0);
    s = s
        .metric("copy_ratio", copy_ratio)
        .metric("num_sources", stats.n as f64)
        .metric("fuzzy_sources", stats.fuzzy as f64)
        .metric("context_coverage", coverage)
        .metric("over_citation", if over { 1.0 } else { 0.0 });
    if reasons.is_empty() {
        reasons.push("grounded and correct".into());
    }
    Ok(s.with_reason(reasons.join("; ")))
}

#[cfg(test)]
mod tests;
