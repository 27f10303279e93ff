//! Comparing the extracted answer with the rollout's reference.
//!
//! The reference side (parsing the JSON, picking the field, extracting and parsing or normalising
//! the answer in it) depends only on the config and the reference text, and GRPO scores a group of
//! completions against one reference, so it is prepared once ([`prepare`]) and kept in a
//! [`ReferenceCache`] keyed by the whole reference text.

use std::cell::{Ref, RefCell};
use std::fmt;

use reward_sdk::extract::{self, ParsedNumber};
use reward_sdk::{Rollout, RolloutError};
use serde_json::Value;

use crate::{Mode, ReferenceCheck};

/// `reference.field` value that selects the whole reference, even when it is an object.
pub(crate) const WHOLE_REFERENCE: &str = ".";

/// How close a numeric answer is, worst to best. Exact mode uses only `Exact` and `Wrong`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// No tier matched.
    Wrong,
    /// Off by a factor of 100 (a percent sign dropped or added), within the tolerances.
    Percent,
    /// Within `rel_tol` of the reference.
    Relative,
    /// Within `abs_tol` of the reference.
    Absolute,
    /// The same number (up to rounding noise of 1e-12 relative).
    Exact,
}

impl Tier {
    /// The `numeric_tier` metric: higher is better.
    pub(crate) fn code(self) -> f64 {
        self as u8 as f64
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tier::Wrong => "wrong",
            Tier::Percent => "percent",
            Tier::Relative => "relative",
            Tier::Absolute => "absolute",
            Tier::Exact => "exact",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference side, prepared once per reference text
// ---------------------------------------------------------------------------------------------

/// A rollout's reference, ready to judge answers against.
pub(crate) struct Prepared {
    /// The value compared with (the selected field), quoted in reasons.
    pub(crate) value: Value,
    targets: Targets,
}

enum Targets {
    /// Mode `numeric`: the reference's numbers (several for a list, nested lists flattened in
    /// order), or the first reason one is unusable. Whether a reference is usable does not
    /// depend on the answer.
    Numeric(Result<Vec<ParsedNumber>, RolloutError>),
    /// Mode `exact`: the acceptable answers in order (nested lists flattened), each unusable one
    /// replaced by its problem. Judging stops at the first that matches, so a problem is
    /// reported only when no earlier answer matched.
    Exact(Vec<Result<ExactTarget, RolloutError>>),
}

enum ExactTarget {
    /// A string, boolean or (as written) number, compared as text.
    Text(TextTarget),
    /// A JSON number: equal by value, or as text.
    Number { value: f64, text: TextTarget },
    /// A JSON object: the answer must be the same JSON.
    Json(Value),
}

/// A reference text for [`text_equal`]: its number, if it is one, and its normalised form.
struct TextTarget {
    number: Option<f64>,
    normalized: String,
}

impl TextTarget {
    fn new(check: &ReferenceCheck, text: &str) -> TextTarget {
        TextTarget { number: extract::parse_number(text), normalized: extract::normalize_text_with(text, lowercase(check)) }
    }
}

fn lowercase(check: &ReferenceCheck) -> bool {
    !check.case_sensitive.unwrap_or(false)
}

/// The reference value to compare with, and where it came from (for error messages).
struct Expected {
    value: Value,
    field: Option<String>,
}

impl Expected {
    fn invalid(&self, problem: fmt::Arguments<'_>) -> RolloutError {
        let what = match &self.field {
            Some(f) => format!("reference field `{f}`"),
            None => "reference".to_owned(),
        };
        RolloutError::InvalidInput(format!("{what} {problem}"))
    }
}

/// The rollout's reference prepared for judging, or why it cannot be used (whatever the answer).
pub(crate) fn prepare(check: &ReferenceCheck, rollout: &Rollout) -> Result<Prepared, RolloutError> {
    let expected = resolve_reference(check, rollout)?;
    let targets = match check.mode {
        Mode::Numeric => {
            let mut numbers = Vec::with_capacity(1);
            Targets::Numeric(numeric_targets(&expected.value, &expected, &mut numbers).map(|()| numbers))
        }
        Mode::Exact => {
            let mut targets = Vec::with_capacity(1);
            exact_targets(check, &expected.value, &expected, &mut targets);
            Targets::Exact(targets)
        }
    };
    Ok(Prepared { value: expected.value, targets })
}

/// Picks the value to compare with out of the rollout's reference; see README.md.
fn resolve_reference(check: &ReferenceCheck, rollout: &Rollout) -> Result<Expected, RolloutError> {
    let value = rollout.reference_json()?;
    match value {
        Value::Null => Err(RolloutError::InvalidInput("reference is missing (null): the format reward's reference check needs one".into())),
        Value::Object(_) if check.field.as_deref() == Some(WHOLE_REFERENCE) => Ok(Expected { value, field: None }),
        Value::Object(mut map) => {
            let (value, key) = reward_sdk::take_reference_field(&mut map, check.field.as_deref())?;
            let expected = Expected { value, field: Some(key) };
            if expected.value.is_null() {
                return Err(expected.invalid(format_args!("is null")));
            }
            Ok(expected)
        }
        // A plain string or number is the answer whatever `field` says.
        value => Ok(Expected { value, field: None }),
    }
}

/// The answer inside a reference string: references are often whole solutions (`… #### 72`,
/// `… \boxed{5}`), so the same extraction applies as to the completion.
fn reference_text<'v>(s: &'v str, expected: &Expected) -> Result<std::borrow::Cow<'v, str>, RolloutError> {
    extract::final_answer(s).ok_or_else(|| expected.invalid(format_args!("is empty")))
}

/// Appends the targets of `value` (mode `exact`), in the order they are tried.
fn exact_targets(check: &ReferenceCheck, value: &Value, expected: &Expected, out: &mut Vec<Result<ExactTarget, RolloutError>>) {
    let target = match value {
        Value::String(s) => reference_text(s, expected).map(|r| ExactTarget::Text(TextTarget::new(check, &r))),
        Value::Number(n) => Ok(ExactTarget::Number { value: n.as_f64().unwrap_or(f64::NAN), text: TextTarget::new(check, &n.to_string()) }),
        Value::Bool(b) => Ok(ExactTarget::Text(TextTarget::new(check, if *b { "true" } else { "false" }))),
        // Any of several acceptable answers.
        Value::Array(items) => {
            if items.is_empty() {
                Err(expected.invalid(format_args!("is an empty list")))
            } else {
                for item in items {
                    exact_targets(check, item, expected, out);
                    if out.last().is_some_and(|t| t.is_err()) {
                        // Judging never gets past a problem.
                        return;
                    }
                }
                return;
            }
        }
        // A structured answer (a tool call, say): the same JSON.
        Value::Object(_) => Ok(ExactTarget::Json(value.clone())),
        Value::Null => Err(expected.invalid(format_args!("holds a null"))),
    };
    out.push(target);
}

/// Appends the numbers of `value` (mode `numeric`), or the first problem.
fn numeric_targets(value: &Value, expected: &Expected, out: &mut Vec<ParsedNumber>) -> Result<(), RolloutError> {
    if let Value::Array(items) = value {
        if items.is_empty() {
            return Err(expected.invalid(format_args!("is an empty list")));
        }
        for item in items {
            numeric_targets(item, expected, out)?;
        }
        return Ok(());
    }
    out.push(reference_number(value, expected)?);
    Ok(())
}

fn reference_number(value: &Value, expected: &Expected) -> Result<ParsedNumber, RolloutError> {
    match value {
        Value::Number(n) => match n.as_f64().filter(|v| v.is_finite()) {
            Some(v) => Ok(ParsedNumber { value: v, scaled: v, percent: false }),
            None => Err(expected.invalid(format_args!("is not a finite number: {n}"))),
        },
        Value::String(s) => {
            let text = reference_text(s, expected)?;
            extract::parse_number_detail(&text).ok_or_else(|| expected.invalid(format_args!("is not a number: {}", crate::Quoted(s))))
        }
        other => Err(expected.invalid(format_args!("is not a number (mode \"numeric\"): {}", crate::QuotedJson(other)))),
    }
}

/// The last reference prepared, keyed by its whole text. It lives in the parsed config, which the
/// SDK keeps only while the config text stays the same, so an entry never outlives the settings
/// it was prepared with.
#[derive(Default)]
pub(crate) struct ReferenceCache(RefCell<Option<(String, Result<Prepared, RolloutError>)>>);

impl fmt::Debug for ReferenceCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReferenceCache")
    }
}

impl ReferenceCache {
    /// The rollout's reference prepared under `check`, from the cache when its text is the last one seen.
    pub(crate) fn get(&self, check: &ReferenceCheck, rollout: &Rollout) -> Ref<'_, Result<Prepared, RolloutError>> {
        let text = rollout.reference.as_str();
        let hit = matches!(&*self.0.borrow(), Some((key, _)) if crate::same_text(key, text));
        if !hit {
            let prepared = prepare(check, rollout);
            let mut slot = self.0.borrow_mut();
            match &mut *slot {
                Some((key, entry)) => {
                    key.clear();
                    key.push_str(text);
                    *entry = prepared;
                }
                None => *slot = Some((text.to_owned(), prepared)),
            }
        }
        Ref::map(self.0.borrow(), |slot| &slot.as_ref().expect("filled above").1)
    }
}

// ---------------------------------------------------------------------------------------------
// Judging an answer
// ---------------------------------------------------------------------------------------------

/// How well `answer` matches the prepared reference. A reference problem is reported even when
/// there is no answer, so a dataset problem shows whatever the completion.
pub(crate) fn judge(check: &ReferenceCheck, answer: Option<&str>, prepared: &Prepared) -> Result<Tier, RolloutError> {
    match &prepared.targets {
        Targets::Exact(targets) => {
            let mut side = AnswerText::default();
            for target in targets {
                match target {
                    Err(e) => return Err(e.clone()),
                    Ok(t) => {
                        if answer.is_some_and(|a| exact(check, a, t, &mut side)) {
                            return Ok(Tier::Exact);
                        }
                    }
                }
            }
            Ok(Tier::Wrong)
        }
        Targets::Numeric(Err(e)) => Err(e.clone()),
        Targets::Numeric(Ok(numbers)) => {
            let Some(a) = answer.and_then(extract::parse_number_detail) else { return Ok(Tier::Wrong) };
            Ok(numbers.iter().map(|r| numeric(check, &a, r)).max().unwrap_or(Tier::Wrong))
        }
    }
}

/// The answer's number and normalised text, worked out when a target first needs them.
#[derive(Default)]
struct AnswerText {
    number: Option<Option<f64>>,
    normalized: Option<String>,
}

fn exact(check: &ReferenceCheck, answer: &str, target: &ExactTarget, side: &mut AnswerText) -> bool {
    match target {
        ExactTarget::Text(t) => text_equal(check, answer, t, side),
        ExactTarget::Number { value, text } => {
            answer_number(answer, side).is_some_and(|a| same_number(a, *value)) || text_equal(check, answer, text, side)
        }
        ExactTarget::Json(value) => serde_json::from_str::<Value>(extract::strip_code_fence(answer)).is_ok_and(|a| json_equal(&a, value)),
    }
}

fn answer_number(answer: &str, side: &mut AnswerText) -> Option<f64> {
    *side.number.get_or_insert_with(|| extract::parse_number(answer))
}

fn text_equal(check: &ReferenceCheck, answer: &str, reference: &TextTarget, side: &mut AnswerText) -> bool {
    if let (Some(a), Some(r)) = (answer_number(answer, side), reference.number)
        && same_number(a, r)
    {
        return true;
    }
    // A reference that is all punctuation would match any answer that is too.
    !reference.normalized.is_empty()
        && *side.normalized.get_or_insert_with(|| extract::normalize_text_with(answer, lowercase(check))) == reference.normalized
}

fn numeric(check: &ReferenceCheck, a: &ParsedNumber, r: &ParsedNumber) -> Tier {
    // Scale words (`million`) are applied on both sides; they are ignored on both sides too,
    // unless both sides have one, because a dataset that states its unit in the question writes
    // `1,234` for an answer a model may write `1,234 million`.
    let has_scale = |n: &ParsedNumber| n.scaled != n.value;
    let mut best = tier(check, a.scaled, r.scaled);
    if !(has_scale(a) && has_scale(r)) {
        best = best.max(tier(check, a.value, r.value));
    }
    // A percent sign on one side only is a unit written or left out (`12.5` for a gold `12.5%`),
    // not a wrong number: compare the numbers as written too.
    if a.percent != r.percent {
        let as_written = |n: &ParsedNumber| if n.percent { n.value * 100.0 } else { n.value };
        best = best.max(tier(check, as_written(a), as_written(r)));
    }
    best
}

/// Equal up to the rounding noise of decimal conversion and division.
fn same_number(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn tier(check: &ReferenceCheck, a: f64, r: f64) -> Tier {
    let (abs_tol, rel_tol) = (check.abs_tol(), check.rel_tol());
    let close = |x: f64| {
        let diff = (a - x).abs();
        if same_number(a, x) {
            Some(Tier::Exact)
        } else if diff <= abs_tol {
            Some(Tier::Absolute)
        } else if diff <= rel_tol * x.abs() {
            Some(Tier::Relative)
        } else {
            None
        }
    };
    if let Some(t) = close(r) {
        return t;
    }
    if check.percent_confusion.unwrap_or(true) && (close(r * 100.0).is_some() || close(r / 100.0).is_some()) {
        return Tier::Percent;
    }
    Tier::Wrong
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w))),
        _ => a == b,
    }
}
