//! The built-in `format` reward: checks that a completion has the shape the task asks for (tags
//! in order, a JSON answer with given keys, patterns, a length) and, given a reference, that its
//! answer is right (exact text, or a number within tolerance tiers).
//!
//! The configuration ([`FormatConfig`]) and the metrics are documented in `README.md` next to this
//! crate. The answer is found with [`reward_sdk::extract`]: reasoning blocks are ignored, then the
//! configured tag, or the best-effort [`extract::find_answer`] when no tag is configured.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use regex::Regex;
use reward_sdk::extract::{self, Tag};
use reward_sdk::{Metric, MetricKind, PluginInfo, Reward, Rollout, RolloutError, Score};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

mod judge;

use judge::Tier;

/// The format reward.
pub struct FormatReward;

/// The plugin's version, reported by [`Reward::info`].
pub const VERSION: &str = "0.1.0";

/// Every metric the reward may emit, in the order it emits them.
pub const METRICS: [&str; 9] = [
    "length_ok",
    "tags_in_order",
    "answer_found",
    "json_valid",
    "must_match",
    "must_not_match",
    "format_ok",
    "answer_correct",
    "numeric_tier",
];

/// `min_chars` when the config does not set it: an empty completion fails the format.
pub const DEFAULT_MIN_CHARS: i64 = 1;

/// The longest answer or reference quoted in a reason, in characters.
const QUOTE_CHARS: usize = 60;

/// The format reward's configuration: every field is optional; `{}` only checks that the
/// completion is not blank. See `README.md` for each field.
///
/// Regexes and tags are compiled while deserialising, so a parsed config (which the SDK caches
/// across calls) scores without compiling anything.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatConfig {
    #[serde(default, deserialize_with = "tags")]
    required_tags: Vec<Tag>,
    #[serde(default, deserialize_with = "optional_tag")]
    answer_tag: Option<Tag>,
    #[serde(default)]
    json: Option<JsonCheck>,
    #[serde(default)]
    must_match: Vec<Pattern>,
    #[serde(default)]
    must_not_match: Vec<Pattern>,
    #[serde(default)]
    min_chars: Option<i64>,
    #[serde(default)]
    max_chars: Option<i64>,
    #[serde(default)]
    reference: Option<ReferenceCheck>,
    #[serde(default)]
    weights: Option<Weights>,
    #[serde(default)]
    gate: Option<bool>,
    /// The last rollout reference prepared for the reference check.
    #[serde(skip)]
    reference_cache: judge::ReferenceCache,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCheck {
    #[serde(default)]
    required_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceCheck {
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    case_sensitive: Option<bool>,
    #[serde(default)]
    abs_tol: Option<f64>,
    #[serde(default)]
    rel_tol: Option<f64>,
    #[serde(default)]
    percent_confusion: Option<bool>,
    #[serde(default)]
    credit: Credit,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    #[default]
    Exact,
    Numeric,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credit {
    exact: Option<f64>,
    absolute: Option<f64>,
    relative: Option<f64>,
    percent: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Weights {
    #[serde(default)]
    format: Option<f64>,
    #[serde(default)]
    answer: Option<f64>,
}

/// A regex from the config, compiled when the config is parsed; a compile error is kept for
/// `validate` to report with the field's name.
#[derive(Debug)]
struct Pattern {
    source: String,
    compiled: Result<Regex, String>,
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        let compiled = Regex::new(&source).map_err(|e| e.to_string());
        Ok(Pattern { source, compiled })
    }
}

fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Tag>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?.iter().map(|n| Tag::new(n)).collect())
}

fn optional_tag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tag>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|n| Tag::new(&n)))
}

// Defaults of the reference check, documented in README.md.
const DEFAULT_ABS_TOL: f64 = 1e-6;
const DEFAULT_REL_TOL: f64 = 1e-4;
const DEFAULT_CREDIT_EXACT: f64 = 1.0;
const DEFAULT_CREDIT_ABSOLUTE: f64 = 1.0;
const DEFAULT_CREDIT_RELATIVE: f64 = 1.0;
// A unit slip (12.5 for 12.5%) is half right: the digits are, the magnitude is not.
const DEFAULT_CREDIT_PERCENT: f64 = 0.5;
const DEFAULT_WEIGHT_FORMAT: f64 = 0.0;
const DEFAULT_WEIGHT_ANSWER: f64 = 1.0;

impl FormatConfig {
    fn min_chars(&self) -> usize {
        // Non-negative once validated.
        self.min_chars.unwrap_or(DEFAULT_MIN_CHARS).max(0) as usize
    }

    fn max_chars(&self) -> Option<usize> {
        self.max_chars.map(|m| m.max(0) as usize)
    }

    fn weights(&self) -> (f64, f64) {
        let w = self.weights.as_ref();
        (w.and_then(|w| w.format).unwrap_or(DEFAULT_WEIGHT_FORMAT), w.and_then(|w| w.answer).unwrap_or(DEFAULT_WEIGHT_ANSWER))
    }

    fn gate(&self) -> bool {
        self.gate.unwrap_or(true)
    }

    /// Every check that deserialisation cannot express; messages name the field.
    fn validate(&self) -> Result<(), String> {
        for (i, tag) in self.required_tags.iter().enumerate() {
            check_tag_name(&format!("required_tags[{i}]"), tag)?;
            if self.required_tags[..i].contains(tag) {
                return Err(format!("required_tags[{i}]: {:?} is listed twice", tag.name()));
            }
        }
        if let Some(tag) = &self.answer_tag {
            check_tag_name("answer_tag", tag)?;
        }
        for (field, patterns) in [("must_match", &self.must_match), ("must_not_match", &self.must_not_match)] {
            for (i, p) in patterns.iter().enumerate() {
                if let Err(e) = &p.compiled {
                    return Err(format!("{field}[{i}]: invalid regex {:?}: {e}", p.source));
                }
            }
        }
        for (field, value) in [("min_chars", self.min_chars), ("max_chars", self.max_chars)] {
            if let Some(v) = value.filter(|v| *v < 0) {
                return Err(format!("{field} must not be negative, got {v}"));
            }
        }
        if let Some(max) = self.max_chars
            && self.min_chars() as i64 > max
        {
            let default = if self.min_chars.is_none() { ", the default" } else { "" };
            return Err(format!("min_chars ({}{default}) must not exceed max_chars ({max})", self.min_chars()));
        }
        match &self.reference {
            Some(r) => r.validate()?,
            None => {
                if self.weights.is_some() {
                    return Err("weights only apply with a reference (without one the score is format_ok)".into());
                }
                if self.gate.is_some() {
                    return Err("gate only applies with a reference (without one the score is format_ok)".into());
                }
            }
        }
        if let Some(w) = &self.weights {
            for (field, value) in [("weights.format", w.format), ("weights.answer", w.answer)] {
                if let Some(v) = value.filter(|v| !v.is_finite() || *v < 0.0) {
                    return Err(format!("{field} must be a finite number >= 0, got {v}"));
                }
            }
        }
        if self.reference.is_some() && self.weights() == (0.0, 0.0) {
            return Err("weights.format and weights.answer are both 0: every rollout would score 0".into());
        }
        Ok(())
    }
}

fn check_tag_name(field: &str, tag: &Tag) -> Result<(), String> {
    if Tag::is_valid_name(tag.name()) {
        Ok(())
    } else {
        Err(format!(
            "{field}: {:?} is not a tag name (an ASCII letter or `_`, then letters, digits, `_`, `-`, `.`, `:`; \
             no angle brackets)",
            tag.name()
        ))
    }
}

impl ReferenceCheck {
    fn validate(&self) -> Result<(), String> {
        if self.field.as_deref().is_some_and(|f| f.is_empty()) {
            return Err("reference.field must not be empty".into());
        }
        let numeric_only = [
            ("abs_tol", self.abs_tol.is_some()),
            ("rel_tol", self.rel_tol.is_some()),
            ("percent_confusion", self.percent_confusion.is_some()),
            ("credit.absolute", self.credit.absolute.is_some()),
            ("credit.relative", self.credit.relative.is_some()),
            ("credit.percent", self.credit.percent.is_some()),
        ];
        match self.mode {
            Mode::Exact => {
                if let Some((field, _)) = numeric_only.iter().find(|(_, set)| *set) {
                    return Err(format!("reference.{field} applies only to mode \"numeric\""));
                }
            }
            Mode::Numeric => {
                if self.case_sensitive.is_some() {
                    return Err("reference.case_sensitive applies only to mode \"exact\"".into());
                }
            }
        }
        for (field, value) in [("abs_tol", self.abs_tol), ("rel_tol", self.rel_tol)] {
            if let Some(v) = value.filter(|v| !v.is_finite() || *v < 0.0) {
                return Err(format!("reference.{field} must be a finite number >= 0, got {v}"));
            }
        }
        let c = &self.credit;
        for (field, value) in [("exact", c.exact), ("absolute", c.absolute), ("relative", c.relative), ("percent", c.percent)] {
            if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
                return Err(format!("reference.credit.{field} must be between 0 and 1, got {v}"));
            }
        }
        Ok(())
    }

    fn abs_tol(&self) -> f64 {
        self.abs_tol.unwrap_or(DEFAULT_ABS_TOL)
    }

    fn rel_tol(&self) -> f64 {
        self.rel_tol.unwrap_or(DEFAULT_REL_TOL)
    }

    fn credit(&self, tier: Tier) -> f64 {
        let c = &self.credit;
        match tier {
            Tier::Exact => c.exact.unwrap_or(DEFAULT_CREDIT_EXACT),
            Tier::Absolute => c.absolute.unwrap_or(DEFAULT_CREDIT_ABSOLUTE),
            Tier::Relative => c.relative.unwrap_or(DEFAULT_CREDIT_RELATIVE),
            Tier::Percent => c.percent.unwrap_or(DEFAULT_CREDIT_PERCENT),
            Tier::Wrong => 0.0,
        }
    }
}

impl Reward for FormatReward {
    type Config = FormatConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "format".into(),
            version: VERSION.into(),
            description: "format checks (tags, JSON, patterns, length) and reference matching (exact or numeric)".into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn validate(config: &FormatConfig) -> Result<(), String> {
        config.validate()
    }

    fn score(config: &FormatConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
        score(config, rollout)
    }
}

// Off for crates that build on this one into a plugin of their own (the `export` feature).
#[cfg(feature = "export")]
reward_sdk::export_reward!(FormatReward);

/// The reasons a rollout lost reward, joined with `; `.
#[derive(Default)]
struct Reasons(String);

impl Reasons {
    /// Starts a new reason and returns the text to append it to.
    fn next(&mut self) -> &mut String {
        if self.0.is_empty() {
            // Room for a few reasons at once rather than growing piece by piece.
            self.0.reserve(120);
        } else {
            self.0.push_str("; ");
        }
        &mut self.0
    }

    fn add(&mut self, args: fmt::Arguments<'_>) {
        let _ = self.next().write_fmt(args);
    }

    /// A reason made of plain pieces, without the formatting machinery.
    fn add_parts(&mut self, parts: &[&str]) {
        let out = self.next();
        for p in parts {
            out.push_str(p);
        }
    }
}

fn metric(metrics: &mut Vec<Metric>, name: &str, value: f64, kind: MetricKind) {
    metrics.push(Metric { name: name.to_owned(), value, kind });
}

fn flag(ok: bool) -> f64 {
    if ok { 1.0 } else { 0.0 }
}

/// `a == b`. On wasm32 slice equality calls a `memcmp` that compares byte by byte; this compares
/// eight bytes at a time (the reference cache compares a whole reference text per rollout).
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    #[inline(always)]
    fn word(s: &[u8]) -> u64 {
        u64::from_le_bytes(s.try_into().expect("eight bytes"))
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return (0..n).all(|i| a[i] == b[i]);
    }
    // Whole words, then the last word again, overlapping the one before: covers the tail.
    a.chunks_exact(8).zip(b.chunks_exact(8)).all(|(x, y)| word(x) == word(y)) && word(&a[n - 8..]) == word(&b[n - 8..])
}

/// Whether `text` has at least `min` characters.
fn has_chars(text: &str, min: usize) -> bool {
    // A char is 1 to 4 bytes.
    if text.len() < min {
        false
    } else if text.len() / 4 >= min {
        true
    } else {
        min == 0 || text.chars().nth(min - 1).is_some()
    }
}

fn score(c: &FormatConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
    // A rollout that cannot be judged is an error whatever its format, so the reference comes
    // first.
    let prepared;
    let reference = match &c.reference {
        Some(check) => {
            prepared = c.reference_cache.get(check, rollout);
            match &*prepared {
                Ok(p) => Some((check, p)),
                Err(e) => return Err(e.clone()),
            }
        }
        None => None,
    };
    let (w_format, w_answer) = c.weights();
    let gate = c.gate();
    // A metric is reward-kind when it can change the score.
    let format_paid = reference.is_none() || w_format != 0.0 || (gate && w_answer != 0.0);
    let fk = if format_paid { MetricKind::Reward } else { MetricKind::Metric };

    let completion = rollout.completion.as_str();
    let mut metrics = Vec::with_capacity(METRICS.len());
    let mut reasons = Reasons::default();
    let mut format_ok = true;

    // Length, in characters, surrounding whitespace not counted.
    let body = completion.trim();
    let (min, max) = (c.min_chars(), c.max_chars());
    let long_enough = has_chars(body, min);
    // A char is 1 to 4 bytes: most texts are decided by their byte length without counting.
    let short_enough = max.is_none_or(|max| body.len() <= max || (body.len() <= max.saturating_mul(4) && body.chars().count() <= max));
    let length_ok = long_enough && short_enough;
    if !long_enough {
        reasons.add(format_args!("length_ok: {} chars, min_chars is {min}", body.chars().count()));
    } else if let (false, Some(max)) = (short_enough, max) {
        reasons.add(format_args!("length_ok: more than {max} chars (max_chars)"));
    }
    metric(&mut metrics, "length_ok", flag(length_ok), fk);
    format_ok &= length_ok;

    // The answer's region, only when something needs it; with the tag check when there is one,
    // which looks at the same `<`s.
    let need_answer = c.answer_tag.is_some() || c.json.is_some() || reference.is_some();
    let tags = &c.required_tags;
    let (tags_in_order, region) = match (tags.is_empty(), need_answer) {
        (false, true) => {
            let (order, region) = extract::check_tags_and_answer_region(completion, tags);
            (Some(order), region)
        }
        (false, false) => (Some(extract::check_tags_in_order(completion, tags)), Cow::Borrowed("")),
        (true, true) => (None, extract::answer_region(completion)),
        (true, false) => (None, Cow::Borrowed("")),
    };

    if let Some(result) = tags_in_order {
        if let Err(e) = &result {
            reasons.add(format_args!("tags_in_order: {e}"));
        }
        metric(&mut metrics, "tags_in_order", flag(result.is_ok()), fk);
        format_ok &= result.is_ok();
    }
    let answer: Option<&str> = match &c.answer_tag {
        _ if !need_answer => None,
        Some(tag) => extract::last_tag_content(&region, tag).map(extract::refine_answer),
        None => extract::find_answer(&region).map(|(a, _)| a),
    }
    .filter(|a| !a.is_empty());
    if need_answer {
        // With a configured tag, the answer being there is part of the format.
        let kind = if c.answer_tag.is_some() { fk } else { MetricKind::Metric };
        metric(&mut metrics, "answer_found", flag(answer.is_some()), kind);
        if let Some(tag) = &c.answer_tag {
            format_ok &= answer.is_some();
            if answer.is_none() {
                reasons.add_parts(&["answer_found: no non-empty <", tag.name(), "> after the reasoning"]);
            }
        } else if answer.is_none() {
            reasons.add_parts(&["answer_found: no answer after the reasoning"]);
        }
    }

    if let Some(json) = &c.json {
        let ok = match answer.map(|a| check_json(a, &json.required_keys)) {
            None => false,
            Some(Ok(())) => true,
            Some(Err(problem)) => {
                reasons.add_parts(&["json_valid: ", &problem]);
                false
            }
        };
        metric(&mut metrics, "json_valid", flag(ok), fk);
        format_ok &= ok;
    }

    if !c.must_match.is_empty() {
        let failed = c.must_match.iter().position(|p| !p.compiled.as_ref().is_ok_and(|r| r.is_match(completion)));
        if let Some(i) = failed {
            reasons.add(format_args!("must_match[{i}]: {:?} does not match", c.must_match[i].source));
        }
        metric(&mut metrics, "must_match", flag(failed.is_none()), fk);
        format_ok &= failed.is_none();
    }

    if !c.must_not_match.is_empty() {
        let matched = c.must_not_match.iter().position(|p| p.compiled.as_ref().is_ok_and(|r| r.is_match(completion)));
        if let Some(i) = matched {
            reasons.add(format_args!("must_not_match[{i}]: {:?} matches", c.must_not_match[i].source));
        }
        metric(&mut metrics, "must_not_match", flag(matched.is_none()), fk);
        format_ok &= matched.is_none();
    }

    metric(&mut metrics, "format_ok", flag(format_ok), fk);

    let value = match reference {
        None => flag(format_ok),
        Some((check, prepared)) => {
            let tier = judge::judge(check, answer, prepared)?;
            let credit = check.credit(tier);
            let ak = if w_answer != 0.0 { MetricKind::Reward } else { MetricKind::Metric };
            metric(&mut metrics, "answer_correct", credit, ak);
            if check.mode == Mode::Numeric {
                metric(&mut metrics, "numeric_tier", tier.code(), MetricKind::Metric);
            }
            match (answer, tier) {
                (None, _) => {}
                (Some(a), Tier::Wrong) => {
                    reasons.add(format_args!("answer_correct: got {}, expected {}", Quoted(a), QuotedJson(&prepared.value)))
                }
                (Some(_), tier) if credit < 1.0 => reasons.add(format_args!("answer_correct: {} match, credit {credit}", tier.name())),
                _ => {}
            }
            let paid = if gate && !format_ok { 0.0 } else { credit };
            if paid != credit && credit > 0.0 {
                reasons.add_parts(&["gate: the answer is not paid because a format check failed"]);
            }
            w_format * flag(format_ok) + w_answer * paid
        }
    };

    let reason = if reasons.0.is_empty() {
        match &reference {
            Some(_) => "format ok, answer correct".to_owned(),
            None => "format ok".to_owned(),
        }
    } else {
        reasons.0
    };
    Ok(Score { value, metrics, reason: Some(reason) })
}

/// Why the answer is not a JSON object with the required keys.
fn check_json(answer: &str, required: &[String]) -> Result<(), String> {
    match serde_json::from_str::<Value>(extract::strip_code_fence(answer)) {
        Ok(Value::Object(map)) => match required.iter().find(|k| !map.contains_key(k.as_str())) {
            None => Ok(()),
            Some(k) => Err(format!("the answer has no key {k:?}")),
        },
        Ok(_) => Err("the answer is JSON but not an object".into()),
        Err(e) => Err(format!("the answer is not JSON ({e})")),
    }
}

/// A string for a reason: quoted, shortened to [`QUOTE_CHARS`] characters.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}…", &self.0[..cut]),
        }
    }
}

/// A reference value for a reason: strings quoted, the rest as compact JSON, shortened.
struct QuotedJson<'a>(&'a Value);

impl fmt::Display for QuotedJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::String(s) => Quoted(s).fmt(f),
            other => Quoted(&other.to_string()).fmt(f),
        }
    }
}

#[cfg(test)]
mod tests;
