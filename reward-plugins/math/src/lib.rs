//! The built-in `math` reward: finds the final answer of a completion and decides whether it is
//! mathematically equivalent to the reference answer.
//!
//! # Brief overview
//!
//! - [`MathReward`] is the plugin; [`MathConfig`] its configuration (documented in `README.md`).
//! - The answer is found with [`reward_sdk::extract`] (reasoning blocks removed, then `<answer>`
//!   tags, `\boxed{}`/`\fbox{}`, answer markers, the bare text, in a configurable order).
//! - `lex` and `parse` read LaTeX or plain text into an [`parse::Answer`]: values, tuples,
//!   sets, intervals, matrices, equations, inequalities, text.
//! - `num` and `eval` compute values exactly where they can (big rationals, surds) and
//!   approximately with error bounds elsewhere; `compare` decides equivalence and names the rule
//!   that decided.
//! - `limits` holds every cap; a pathological answer is a typed refusal, not a hang.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use reward_sdk::extract::{self, Tag};
use reward_sdk::{Metric, MetricKind, PluginInfo, Reward, Rollout, RolloutError, Score};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

pub mod compare;
pub mod eval;
pub mod lex;
pub mod limits;
pub mod num;
pub mod parse;

use compare::{Checker, CompareError, Rule, Side, Tolerance, Verdict};
use limits::{DEFAULT_MAX_ANSWER_BYTES, DEFAULT_MAX_STEPS, Refusal};
use parse::{ParseError, Parsed};

/// The math reward.
pub struct MathReward;

/// The plugin's version, reported by [`Reward::info`].
pub const VERSION: &str = "0.1.0";

/// Every metric the reward emits, in order.
pub const METRICS: [&str; 5] = ["answer_found", "gold_parsed", "prediction_parsed", "equivalent", "rule"];

/// `rule` metric: nothing was compared (no answer found).
pub const RULE_NONE: f64 = 0.0;
/// `rule` metric: the prediction could not be read.
pub const RULE_UNPARSED: f64 = 9.0;
/// `rule` metric: the prediction (or the comparison) hit a cap.
pub const RULE_REFUSED: f64 = 10.0;

/// Relative tolerance of a decimal against an exact value it does not equal, by default.
pub const DEFAULT_REL_TOL: f64 = 1e-6;

/// The longest answer quoted in a reason, in characters.
const QUOTE_CHARS: usize = 60;

/// Where the prediction's answer may be found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The last complete `<answer>…</answer>` (or `answer_tag`), refined to a `\boxed{}` inside.
    AnswerTag,
    /// The last `\boxed{…}` or `\fbox{…}`.
    Boxed,
    /// After the last `Answer:` / `Final answer:` line, GSM8K `#### 42`, or `the answer is`.
    Marker,
    /// The whole answer region, when it is short enough to be an answer.
    Text,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::AnswerTag => "answer_tag",
            Source::Boxed => "boxed",
            Source::Marker => "marker",
            Source::Text => "text",
        }
    }
}

/// The default extraction order.
pub const DEFAULT_SOURCES: [Source; 4] = [Source::AnswerTag, Source::Boxed, Source::Marker, Source::Text];

/// How the gold answer is taken out of the reference text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoldExtract {
    /// The last `\boxed{}` if there is one (a worked solution), else the text after an answer
    /// marker (`#### 72`), else the whole text.
    #[default]
    Auto,
    /// The last `\boxed{}`; a reference without one is invalid input.
    Boxed,
    /// The whole text as it is.
    None,
}

/// Where the reference is and how to read it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// Key of a JSON-object reference; default: the first of [`reward_sdk::REFERENCE_FIELDS`].
    #[serde(default)]
    field: Option<String>,
    /// How to take the gold answer out of the text.
    #[serde(default)]
    extract: GoldExtract,
}

/// The math reward's configuration; every field is optional. See `README.md`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MathConfig {
    #[serde(default)]
    sources: Option<Vec<Source>>,
    #[serde(default, deserialize_with = "optional_tag")]
    answer_tag: Option<Tag>,
    #[serde(default)]
    reference: ReferenceConfig,
    #[serde(default)]
    rel_tol: Option<f64>,
    #[serde(default)]
    decimal_rounding: Option<bool>,
    #[serde(default)]
    max_answer_bytes: Option<usize>,
    #[serde(default)]
    max_steps: Option<u64>,
    /// The last reference prepared.
    #[serde(skip)]
    gold_cache: GoldCache,
}

fn optional_tag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tag>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|n| Tag::new(&n)))
}

impl MathConfig {
    fn sources(&self) -> &[Source] {
        self.sources.as_deref().unwrap_or(&DEFAULT_SOURCES)
    }

    fn tolerance(&self) -> Tolerance {
        Tolerance { rel_tol: self.rel_tol.unwrap_or(DEFAULT_REL_TOL), rounding: self.decimal_rounding.unwrap_or(true) }
    }

    fn max_answer_bytes(&self) -> usize {
        self.max_answer_bytes.unwrap_or(DEFAULT_MAX_ANSWER_BYTES)
    }

    fn max_steps(&self) -> u64 {
        self.max_steps.unwrap_or(DEFAULT_MAX_STEPS)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(sources) = &self.sources {
            if sources.is_empty() {
                return Err("sources must not be empty".into());
            }
            for (i, s) in sources.iter().enumerate() {
                if sources[..i].contains(s) {
                    return Err(format!("sources[{i}]: {:?} is listed twice", s.name()));
                }
            }
        }
        if let Some(tag) = &self.answer_tag
            && !Tag::is_valid_name(tag.name())
        {
            return Err(format!("answer_tag: {:?} is not a tag name", tag.name()));
        }
        if self.answer_tag.is_some() && !self.sources().contains(&Source::AnswerTag) {
            return Err("answer_tag is set but sources does not list \"answer_tag\"".into());
        }
        if let Some(t) = self.rel_tol
            && !(t.is_finite() && (0.0..1.0).contains(&t))
        {
            return Err(format!("rel_tol must be a number in [0, 1), got {t}"));
        }
        if self.reference.field.as_deref().is_some_and(str::is_empty) {
            return Err("reference.field must not be empty".into());
        }
        if let Some(n) = self.max_answer_bytes
            && !(1..=1 << 20).contains(&n)
        {
            return Err(format!("max_answer_bytes must be between 1 and 1048576, got {n}"));
        }
        if let Some(n) = self.max_steps
            && !(1_000..=1_000_000_000).contains(&n)
        {
            return Err(format!("max_steps must be between 1000 and 1000000000, got {n}"));
        }
        Ok(())
    }

    /// The prediction's answer and where it was found.
    fn find_answer<'t>(&self, region: &'t str) -> Option<(Cow<'t, str>, Source)> {
        let non_blank = |s: &str| !s.trim().is_empty();
        for &source in self.sources() {
            let found: Option<Cow<'t, str>> = match source {
                Source::AnswerTag => {
                    let content = match &self.answer_tag {
                        Some(tag) => extract::last_tag_content(region, tag),
                        None => extract::last_tag_content(region, &Tag::ANSWER),
                    };
                    content.map(|a| Cow::Borrowed(extract::refine_answer(a)))
                }
                Source::Boxed => last_boxed_any(region),
                Source::Marker => extract::after_answer_marker(region).map(|a| Cow::Borrowed(extract::refine_answer(a))),
                Source::Text => {
                    let t = region.trim();
                    (t.len() <= self.max_answer_bytes()).then_some(Cow::Borrowed(t))
                }
            };
            if let Some(a) = found.filter(|a| non_blank(a)) {
                return Some((a, source));
            }
        }
        None
    }
}

/// The last `\boxed{…}` or `\fbox{…}` (nested braces balanced).
pub fn last_boxed_any(text: &str) -> Option<Cow<'_, str>> {
    // `\fbox` is rare: read it as `\boxed` in a copy only when it occurs.
    if !text.contains("\\fbox") {
        return extract::last_boxed(text).map(Cow::Borrowed);
    }
    let copy = text.replace("\\fbox", "\\boxed");
    extract::last_boxed(&copy).map(|s| Cow::Owned(s.to_owned()))
}

impl Reward for MathReward {
    type Config = MathConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "math".into(),
            version: VERSION.into(),
            description: "final-answer equivalence for math: exact rationals and surds, intervals, sets, tuples, \
                          matrices, and a seeded identity test for expressions in variables"
                .into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn validate(config: &MathConfig) -> Result<(), String> {
        config.validate()
    }

    fn score(config: &MathConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
        score(config, rollout)
    }
}

#[cfg(feature = "export")]
reward_sdk::export_reward!(MathReward);

// ---------------------------------------------------------------------------------------------
// The gold side, prepared once per reference text
// ---------------------------------------------------------------------------------------------

/// One acceptable gold answer.
struct Gold {
    /// The answer text taken out of the reference.
    text: String,
    /// [`same_text_key`] of it.
    key: String,
    /// The text normalised for text answers.
    norm: String,
    parsed: Result<Parsed, ParseError>,
}

/// The last reference prepared, keyed by its whole text (GRPO scores a group of completions
/// against one reference).
#[derive(Default)]
struct GoldCache(RefCell<Option<(String, Rc<Golds>)>>);

/// A reference's gold answers, or why the reference is unusable.
type Golds = Result<Vec<Gold>, RolloutError>;

impl std::fmt::Debug for GoldCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GoldCache")
    }
}

impl GoldCache {
    fn get(&self, c: &MathConfig, rollout: &Rollout) -> Rc<Golds> {
        let mut cache = self.0.borrow_mut();
        if let Some((text, golds)) = cache.as_ref()
            && *text == rollout.reference
        {
            return Rc::clone(golds);
        }
        let golds = Rc::new(prepare_golds(c, rollout));
        *cache = Some((rollout.reference.clone(), Rc::clone(&golds)));
        golds
    }
}

fn invalid(msg: impl Into<String>) -> RolloutError {
    RolloutError::InvalidInput(msg.into())
}

fn prepare_golds(c: &MathConfig, rollout: &Rollout) -> Result<Vec<Gold>, RolloutError> {
    let value = rollout.reference_json()?;
    let (value, field) = match value {
        Value::Null => return Err(invalid("reference is missing (null): the math reward needs a gold answer")),
        Value::Object(mut map) => {
            let (value, key) = reward_sdk::take_reference_field(&mut map, c.reference.field.as_deref())?;
            (value, Some(key))
        }
        other => (other, None),
    };
    let what = match &field {
        Some(f) => format!("reference field `{f}`"),
        None => "reference".to_owned(),
    };
    let texts: Vec<String> = match value {
        Value::String(s) => vec![s],
        Value::Number(n) => vec![n.to_string()],
        // Alternatives: any of them is right.
        Value::Array(items) if !items.is_empty() => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(invalid(format!("{what} holds {other}, not a string or number"))),
            })
            .collect::<Result<_, _>>()?,
        Value::Array(_) => return Err(invalid(format!("{what} is an empty list"))),
        other => return Err(invalid(format!("{what} is {other}, not a string, number or list"))),
    };
    texts
        .iter()
        .map(|t| {
            let answer = gold_answer(c, t).ok_or_else(|| match c.reference.extract {
                GoldExtract::Boxed => invalid(format!("{what} has no \\boxed{{…}} (reference.extract is \"boxed\")")),
                _ => invalid(format!("{what} is empty")),
            })?;
            let max = c.max_answer_bytes().max(DEFAULT_MAX_ANSWER_BYTES);
            let parsed = if answer.len() > max {
                Err(ParseError::Refused(Refusal::TooLong { len: answer.len(), max }))
            } else {
                parse::parse(&answer)
            };
            Ok(Gold { key: same_text_key(&answer), norm: compare::text_key(&answer), text: answer, parsed })
        })
        .collect()
}

/// The gold answer inside a reference text.
fn gold_answer(c: &MathConfig, text: &str) -> Option<String> {
    let found = match c.reference.extract {
        GoldExtract::None => Some(text.trim()),
        GoldExtract::Boxed => return last_boxed_any(text).map(Cow::into_owned).filter(|s| !s.trim().is_empty()),
        GoldExtract::Auto => {
            if let Some(b) = last_boxed_any(text).filter(|b| !b.trim().is_empty()) {
                return Some(b.into_owned());
            }
            extract::after_answer_marker(text).map(extract::refine_answer).or(Some(text.trim()))
        }
    };
    found.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A conservative normal form for the same-text shortcut: math delimiters, sizing and spacing
/// commands and whitespace next to symbols dropped, `\dfrac`/`\tfrac` as `\frac`, a final full
/// stop dropped. Whitespace between two letters or digits stays (`2 1/2` is not `21/2`), and so
/// does whitespace after a comma (`1, 000` is not `1,000`).
pub fn same_text_key(text: &str) -> String {
    let mut t = text.trim();
    t = t.strip_suffix('.').unwrap_or(t);
    let mut out = String::with_capacity(t.len());
    let mut pending_space = false;
    let mut i = 0;
    let b = t.as_bytes();
    while i < b.len() {
        let rest = &t[i..];
        if rest.starts_with("\\\\") {
            // A row break, kept whole (its second backslash is not the start of `\ `).
            push_spaced(&mut out, &mut pending_space, "\\\\");
            i += 2;
            continue;
        }
        if b[i] == b'\\' {
            let skip = ["\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ "]
                .iter()
                .find(|p| rest.starts_with(**p) && !(p.len() > 2 && rest[p.len()..].starts_with(|c: char| c.is_ascii_alphabetic())));
            if let Some(p) = skip {
                i += p.len();
                pending_space = true;
                continue;
            }
            if let Some(p) = ["\\dfrac", "\\tfrac"].iter().find(|p| rest.starts_with(**p)) {
                push_spaced(&mut out, &mut pending_space, "\\frac");
                i += p.len();
                continue;
            }
        }
        let ch = rest.chars().next().expect("in bounds");
        if ch.is_whitespace() || ch == '$' {
            pending_space = true;
        } else {
            let mut buf = [0u8; 4];
            push_spaced(&mut out, &mut pending_space, ch.encode_utf8(&mut buf));
        }
        i += ch.len_utf8();
    }
    out
}

fn push_spaced(out: &mut String, pending: &mut bool, s: &str) {
    // Spaces the reader gives meaning to stay: between letters or digits (`2 1/2`), and after a
    // comma (`1,000` is a number, `1, 000` a list).
    let last = out.chars().last();
    if *pending && (last.is_some_and(|c| c.is_alphanumeric()) && s.chars().next().is_some_and(|c| c.is_alphanumeric()) || last == Some(','))
    {
        out.push(' ');
    }
    *pending = false;
    out.push_str(s);
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

struct Outcome {
    found: bool,
    gold_parsed: bool,
    pred_parsed: bool,
    equivalent: bool,
    rule: f64,
    reason: String,
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn metric(name: &str, value: f64, kind: MetricKind) -> Metric {
    Metric { name: name.to_owned(), value, kind }
}

fn quoted(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
    }
}

fn score(c: &MathConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
    let golds = c.gold_cache.get(c, rollout);
    let golds = match &*golds {
        Ok(g) => g,
        Err(e) => return Err(e.clone()),
    };
    let o = judge(c, golds, &rollout.completion)?;
    let metrics = vec![
        metric("answer_found", flag(o.found), MetricKind::Metric),
        metric("gold_parsed", flag(o.gold_parsed), MetricKind::Metric),
        metric("prediction_parsed", flag(o.pred_parsed), MetricKind::Metric),
        metric("equivalent", flag(o.equivalent), MetricKind::Reward),
        metric("rule", o.rule, MetricKind::Metric),
    ];
    Ok(Score { value: flag(o.equivalent), metrics, reason: Some(o.reason) })
}

fn judge(c: &MathConfig, golds: &[Gold], completion: &str) -> Result<Outcome, RolloutError> {
    let gold_parsed = golds.iter().all(|g| g.parsed.is_ok());
    let region = extract::answer_region(completion);
    let Some((answer, source)) = c.find_answer(&region) else {
        let names: Vec<&str> = c.sources().iter().map(|s| s.name()).collect();
        return Ok(Outcome {
            found: false,
            gold_parsed,
            pred_parsed: false,
            equivalent: false,
            rule: RULE_NONE,
            reason: format!("no answer found (sources: {})", names.join(", ")),
        });
    };
    let answer = answer.trim();
    let outcome =
        |pred_parsed, equivalent, rule: f64, reason: String| Outcome { found: true, gold_parsed, pred_parsed, equivalent, rule, reason };
    let max = c.max_answer_bytes();
    if answer.len() > max {
        let r = Refusal::TooLong { len: answer.len(), max };
        return Ok(outcome(false, false, RULE_REFUSED, format!("prediction refused: {r}")));
    }
    // Identical text needs no reading (and settles golds the checker cannot read).
    let key = same_text_key(answer);
    if golds.iter().any(|g| !g.key.is_empty() && g.key == key) {
        let reason = format!("equivalent ({}, from {})", Rule::SameText.name(), source.name());
        return Ok(outcome(gold_parsed, true, Rule::SameText.code(), reason));
    }
    for g in golds {
        if let Err(e) = &g.parsed {
            let why = match e {
                ParseError::Syntax(s) => s.clone(),
                ParseError::Refused(r) => format!("refused: {r}"),
            };
            return Err(invalid(format!("gold answer {} could not be read: {why}", quoted(&g.text))));
        }
    }
    let pred = match parse::parse(answer) {
        Ok(p) => p,
        Err(ParseError::Syntax(why)) => {
            return Ok(outcome(
                false,
                false,
                RULE_UNPARSED,
                format!("not equivalent: the prediction {} could not be read ({why})", quoted(answer)),
            ));
        }
        Err(ParseError::Refused(r)) => {
            return Ok(outcome(false, false, RULE_REFUSED, format!("prediction refused: {r}")));
        }
    };
    let pred_norm = compare::text_key(answer);
    let mut first_differ: Option<(Rule, String)> = None;
    for g in golds {
        let gold_parsed = g.parsed.as_ref().expect("checked above");
        let mut checker = Checker::new(
            Side { parsed: gold_parsed, text: &g.norm },
            Side { parsed: &pred, text: &pred_norm },
            c.tolerance(),
            c.max_steps(),
        );
        match checker.run() {
            Ok(Verdict::Equal(rule)) => {
                let reason = format!("equivalent ({}, from {})", rule.name(), source.name());
                return Ok(outcome(true, true, rule.code(), reason));
            }
            Ok(Verdict::Differ(rule, why)) => {
                first_differ.get_or_insert((rule, why));
            }
            Err(CompareError::Gold(why)) => {
                return Err(invalid(format!("gold answer {} is unusable: {why}", quoted(&g.text))));
            }
            Err(CompareError::Refused(r)) => {
                return Ok(outcome(true, false, RULE_REFUSED, format!("comparison refused: {r}")));
            }
            Err(CompareError::Undecided(why)) => {
                return Err(RolloutError::Failed(format!("undecided: {why}")));
            }
        }
    }
    let (rule, why) = first_differ.expect("at least one gold");
    let mut reason = String::with_capacity(64 + why.len());
    let _ = write!(reason, "not equivalent ({}): {why}; got {}", rule.name(), quoted(answer));
    if let [g] = golds {
        let _ = write!(reason, ", expected {}", quoted(&g.text));
    }
    Ok(outcome(true, false, rule.code(), reason))
}

#[cfg(test)]
mod tests;
