//! Comparing the extracted answer with the rollout's reference.

use reward_sdk::extract::{self, ParsedNumber};
use reward_sdk::{Rollout, RolloutError};
use serde_json::Value;

use crate::{DEFAULT_REFERENCE_FIELDS, Mode, ReferenceCheck};

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

/// The reference value to compare with, and where it came from (for error messages).
pub(crate) struct Expected<'a> {
    pub(crate) value: Value,
    field: Option<&'a str>,
}

impl Expected<'_> {
    fn invalid(&self, problem: std::fmt::Arguments<'_>) -> RolloutError {
        let what = match self.field {
            Some(f) => format!("reference field `{f}`"),
            None => "reference".to_owned(),
        };
        RolloutError::InvalidInput(format!("{what} {problem}"))
    }
}

/// Picks the value to compare with out of the rollout's reference; see README.md.
pub(crate) fn resolve_reference<'a>(
    check: &'a ReferenceCheck,
    rollout: &Rollout,
) -> Result<Expected<'a>, RolloutError> {
    let value = rollout.reference_json()?;
    match value {
        Value::Null => Err(RolloutError::InvalidInput(
            "reference is missing (null): the format reward's reference check needs one".into(),
        )),
        Value::Object(_) if check.field.as_deref() == Some(WHOLE_REFERENCE) => Ok(Expected { value, field: None }),
        Value::Object(mut map) => {
            let key = match check.field.as_deref() {
                Some(f) if map.contains_key(f) => f,
                Some(f) => {
                    return Err(RolloutError::InvalidInput(format!("reference has no field `{f}` (reference.field)")));
                }
                None => DEFAULT_REFERENCE_FIELDS
                    .iter()
                    .copied()
                    .find(|k| map.get(*k).is_some_and(|v| !v.is_null()))
                    .ok_or_else(|| {
                        RolloutError::InvalidInput(format!(
                            "reference has none of the fields {}; set reference.field",
                            DEFAULT_REFERENCE_FIELDS.join(", ")
                        ))
                    })?,
            };
            let value = map.remove(key).unwrap_or(Value::Null);
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

/// How well `answer` matches the expected value. The reference is checked even when there is no
/// answer, so a dataset problem is reported whatever the completion.
pub(crate) fn judge(
    check: &ReferenceCheck,
    answer: Option<&str>,
    expected: &Expected<'_>,
) -> Result<Tier, RolloutError> {
    match check.mode {
        Mode::Exact => Ok(if exact(check, answer, &expected.value, expected)? { Tier::Exact } else { Tier::Wrong }),
        Mode::Numeric => numeric(check, answer, &expected.value, expected),
    }
}

/// The answer inside a reference string: references are often whole solutions (`… #### 72`,
/// `… \boxed{5}`), so the same extraction applies as to the completion.
fn reference_text<'v>(s: &'v str, expected: &Expected<'_>) -> Result<std::borrow::Cow<'v, str>, RolloutError> {
    extract::final_answer(s).ok_or_else(|| expected.invalid(format_args!("is empty")))
}

fn exact(
    check: &ReferenceCheck,
    answer: Option<&str>,
    value: &Value,
    expected: &Expected<'_>,
) -> Result<bool, RolloutError> {
    Ok(match value {
        Value::String(s) => {
            let r = reference_text(s, expected)?;
            answer.is_some_and(|a| text_equal(check, a, &r))
        }
        Value::Number(n) => answer.is_some_and(|a| {
            let r = n.as_f64().unwrap_or(f64::NAN);
            extract::parse_number(a).is_some_and(|a| same_number(a, r)) || text_equal(check, a, &n.to_string())
        }),
        Value::Bool(b) => answer.is_some_and(|a| text_equal(check, a, if *b { "true" } else { "false" })),
        // Any of several acceptable answers.
        Value::Array(items) => {
            if items.is_empty() {
                return Err(expected.invalid(format_args!("is an empty list")));
            }
            for item in items {
                if exact(check, answer, item, expected)? {
                    return Ok(true);
                }
            }
            false
        }
        // A structured answer (a tool call, say): the same JSON.
        Value::Object(_) => answer.is_some_and(|a| {
            serde_json::from_str::<Value>(extract::strip_code_fence(a)).is_ok_and(|a| json_equal(&a, value))
        }),
        Value::Null => return Err(expected.invalid(format_args!("holds a null"))),
    })
}

fn text_equal(check: &ReferenceCheck, answer: &str, reference: &str) -> bool {
    if let (Some(a), Some(r)) = (extract::parse_number(answer), extract::parse_number(reference))
        && same_number(a, r)
    {
        return true;
    }
    let lowercase = !check.case_sensitive.unwrap_or(false);
    let expected = extract::normalize_text_with(reference, lowercase);
    // A reference that is all punctuation would match any answer that is too.
    !expected.is_empty() && extract::normalize_text_with(answer, lowercase) == expected
}

fn numeric(
    check: &ReferenceCheck,
    answer: Option<&str>,
    value: &Value,
    expected: &Expected<'_>,
) -> Result<Tier, RolloutError> {
    if let Value::Array(items) = value {
        if items.is_empty() {
            return Err(expected.invalid(format_args!("is an empty list")));
        }
        let mut best = Tier::Wrong;
        for item in items {
            best = best.max(numeric(check, answer, item, expected)?);
        }
        return Ok(best);
    }
    // The reference first: a reference that is not a number is an error even for a wrong answer.
    let r = reference_number(value, expected)?;
    let Some(a) = answer.and_then(extract::parse_number_detail) else { return Ok(Tier::Wrong) };
    // Scale words (`million`) are applied on both sides; they are ignored on both sides too,
    // unless both sides have one, because a dataset that states its unit in the question writes
    // `1,234` for an answer a model may write `1,234 million`.
    let has_scale = |n: &ParsedNumber| n.scaled != n.value;
    let mut best = tier(check, a.scaled, r.scaled);
    if !(has_scale(&a) && has_scale(&r)) {
        best = best.max(tier(check, a.value, r.value));
    }
    // A percent sign on one side only is a unit written or left out (`12.5` for a gold `12.5%`),
    // not a wrong number: compare the numbers as written too.
    if a.percent != r.percent {
        let as_written = |n: &ParsedNumber| if n.percent { n.value * 100.0 } else { n.value };
        best = best.max(tier(check, as_written(&a), as_written(&r)));
    }
    Ok(best)
}

fn reference_number(value: &Value, expected: &Expected<'_>) -> Result<ParsedNumber, RolloutError> {
    match value {
        Value::Number(n) => match n.as_f64().filter(|v| v.is_finite()) {
            Some(v) => Ok(ParsedNumber { value: v, scaled: v, percent: false }),
            None => Err(expected.invalid(format_args!("is not a finite number: {n}"))),
        },
        Value::String(s) => {
            let text = reference_text(s, expected)?;
            extract::parse_number_detail(&text)
                .ok_or_else(|| expected.invalid(format_args!("is not a number: {}", crate::Quoted(s))))
        }
        other => {
            Err(expected.invalid(format_args!("is not a number (mode \"numeric\"): {}", crate::QuotedJson(other))))
        }
    }
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
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}
