//! The `python` grader: OpenAI's `{type: "python", source, image_tag?}`, whose `source` defines
//! `grade(sample: dict, item: dict) -> float`. The function runs in the interpreter the reward
//! is granted (`interpreter = { plugin = "python-runner", ... }` in the rewards config), through
//! the `programs` capability's `call-function`: a fresh, sandboxed interpreter instance per call,
//! with the grant's fuel, memory, deadline and output budgets, whose instructions the host adds
//! to the rollout's count. The grader's program sees only its two arguments.
//!
//! `sample` and `item` are the namespaces the templates read, as JSON objects
//! ([`Scope::sample_object`], [`Scope::item_object`]). The return value must be a finite number;
//! a boolean counts as 1 or 0 (Python's `bool` is an `int`, `float(True) == 1.0`). Anything else
//! (a string, `None`, a list, no value), and every run that does not end normally (the source
//! does not compile, `grade` raises or is missing, the run times out, runs out of memory or
//! prints past the output bound, the reward grants no interpreter) fails the rollout with a
//! message naming the grader and what happened; never a 0.

use reward_sdk::programs::{self, Ending};
use reward_sdk::{RolloutError, Score, json_kind};
use serde_json::{Map, Value};

use crate::formula::number;
use crate::string_field;
use crate::template::Scope;

/// The fields a `python` grader may have.
pub const PYTHON_FIELDS: [&str; 4] = ["type", "name", "source", "image_tag"];

/// The largest `source` accepted, in bytes: OpenAI's limit ("less than 256 kB").
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// The function the source must define.
const FUNCTION: &str = "grade";

/// The longest returned text quoted in an error, in characters.
const QUOTE_CHARS: usize = 60;

/// A parsed `python` grader.
#[derive(Clone, Debug)]
pub struct PythonGrader {
    source: String,
}

impl PythonGrader {
    /// Reads the grader's fields (the caller has checked that no unknown field is present).
    /// `source` must be a non-blank string under [`MAX_SOURCE_BYTES`]; `image_tag`, when
    /// present, a string (accepted and not used: the granted interpreter is the image).
    pub fn from_map(map: &Map<String, Value>) -> Result<PythonGrader, String> {
        let source = string_field(map, "source", "python")?;
        if source.trim().is_empty() {
            return Err("`source` is empty; it must define `grade(sample, item)`".into());
        }
        if source.len() >= MAX_SOURCE_BYTES {
            return Err(format!("`source` is {} bytes; the limit (OpenAI's) is less than {MAX_SOURCE_BYTES}", source.len()));
        }
        match map.get("image_tag") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => return Err(format!("`image_tag` must be a string, found {}", json_kind(other))),
        }
        Ok(PythonGrader { source: source.to_owned() })
    }

    /// Calls `grade(sample, item)` for one rollout; the score is its return value.
    pub fn grade(&self, name: &str, scope: &Scope<'_>) -> Result<Score, RolloutError> {
        let args = Value::Array(vec![scope.sample_object(), scope.item_object()]).to_string();
        let run = programs::call_function(&self.source, FUNCTION, &args)
            .map_err(|e| RolloutError::Failed(format!("{name}: the python grader could not run: {e}")))?;
        let fail = |what: String| Err(RolloutError::Failed(format!("{name}: {what}")));
        match run.ending {
            Ending::Ok => {}
            Ending::CompileError(e) => return fail(format!("the python grader's source does not compile: {e}")),
            Ending::RuntimeError(e) => return fail(format!("grade(sample, item) raised {e}")),
            Ending::Failed(e) => return fail(format!("grade(sample, item) failed: {e}")),
            Ending::Timeout(e) => return fail(format!("grade(sample, item) timed out: {e}")),
            Ending::OutOfMemory(e) => return fail(format!("grade(sample, item) ran out of memory: {e}")),
            Ending::OutputLimit => {
                return fail("grade(sample, item) printed more than the interpreter grant's output bound".into());
            }
        }
        let Some(text) = run.value else {
            return fail("grade(sample, item) returned no value".into());
        };
        let value = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
            Ok(Value::Bool(b)) => Some(if b { 1.0 } else { 0.0 }),
            Ok(other) => {
                let what = match other {
                    Value::Null => "None".to_owned(),
                    Value::String(_) => format!("a string: {}", cut(&text)),
                    Value::Array(_) => format!("a list: {}", cut(&text)),
                    _ => format!("a dict: {}", cut(&text)),
                };
                return fail(format!("grade(sample, item) must return a number (a float), returned {what}"));
            }
            // Past f64's range (an int of 400 digits), or text that is no JSON number at all.
            Err(_) => None,
        };
        let Some(value) = value else {
            return fail(format!("grade(sample, item) returned {}, which is not a finite number", cut(&text)));
        };
        Ok(Score::new(value).reward("score", value).with_reason(format!("{name}: grade(sample, item) returned {}", number(value))))
    }
}

fn cut(text: &str) -> String {
    if text.chars().count() <= QUOTE_CHARS { text.to_owned() } else { format!("{}...", text.chars().take(QUOTE_CHARS).collect::<String>()) }
}
