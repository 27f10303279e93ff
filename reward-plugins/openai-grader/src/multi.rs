//! The `multi` grader: OpenAI's `{type: "multi", graders: {KEY: grader, ...}, calculate_output}`.
//! Every sub-grader runs on the rollout with the plugin's own grader code (any type the plugin
//! supports but `multi`: OpenAI's schema lists string_check, text_similarity, python,
//! score_model and label_model as a multi grader's graders, so a nested multi is refused; our
//! `pairwise` is allowed), in the order of the keys, and `calculate_output` ([`crate::formula`])
//! combines their scores, each key standing for its grader's score. The combined value is the
//! score; each sub-grader's score is a metric named after its key. A failed sub-grader fails the
//! rollout, naming the key.

use reward_sdk::{RolloutError, Score, json_kind};
use serde_json::{Map, Value};

use crate::formula::{FUNCTIONS, Formula, number};
use crate::template::Scope;
use crate::{GraderConfig, grade_in};

/// The longest key, in bytes: a key is a metric name, and the host refuses metric names longer
/// than this (reward-engine's `MAX_KEY_BYTES`).
const MAX_KEY_BYTES: usize = 128;

/// The fields a `multi` grader may have.
pub const MULTI_FIELDS: [&str; 4] = ["type", "name", "graders", "calculate_output"];

/// A parsed `multi` grader.
#[derive(Clone, Debug)]
pub struct MultiGrader {
    /// The sub-graders, by key, in the config's order.
    graders: Vec<(String, GraderConfig)>,
    /// `calculate_output` as written, for the reason.
    source: String,
    formula: Formula,
}

/// Why `key` cannot name a sub-grader, if it cannot: the formula refers to graders by key, and
/// each key is a metric name.
fn bad_key(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let identifier =
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Some("a key must be a name the formula can use: ASCII letters, digits and `_`, not starting with a digit".into());
    }
    if FUNCTIONS.contains(&key) {
        return Some(format!("`{key}` is one of calculate_output's functions ({})", FUNCTIONS.join(", ")));
    }
    if key == "score" {
        return Some("`score` is the metric of the combined score; name the grader otherwise".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Some(format!("a key is a metric name, at most {MAX_KEY_BYTES} bytes"));
    }
    None
}

impl MultiGrader {
    /// Reads `graders` (each sub-grader checked as a grader of its own, errors prefixed with
    /// `graders.KEY`) and parses `calculate_output` over their keys (errors name the column).
    pub fn from_map(map: &Map<String, Value>) -> Result<MultiGrader, String> {
        let graders = match map.get("graders") {
            Some(Value::Object(g)) if g.is_empty() => return Err("`graders` is empty; a multi grader combines one or more graders".into()),
            Some(Value::Object(g)) => g,
            Some(Value::Array(_)) => {
                return Err("`graders` must be an object of graders by key (`{\"key\": {grader}, ...}`), found an array".into());
            }
            Some(other) => return Err(format!("`graders` must be an object of graders by key, found {}", json_kind(other))),
            None => return Err("missing field `graders` (a multi grader needs `graders` and `calculate_output`)".into()),
        };
        let mut parsed = Vec::with_capacity(graders.len());
        for (key, grader) in graders {
            if let Some(why) = bad_key(key) {
                return Err(format!("`graders`: bad key {key:?}: {why}"));
            }
            if grader.get("type").and_then(Value::as_str) == Some("multi") {
                return Err(format!(
                    "`graders.{key}`: a multi grader cannot contain another multi grader (OpenAI's schema allows string_check, \
                     text_similarity, python, score_model and label_model there); combine the inner graders in one calculate_output"
                ));
            }
            let config = GraderConfig::from_value(grader).map_err(|e| format!("`graders.{key}`: {e}"))?;
            parsed.push((key.clone(), config));
        }
        let source = match map.get("calculate_output") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("`calculate_output` must be a string, found {}", json_kind(other))),
            None => return Err("missing field `calculate_output` (a multi grader needs a formula over its graders' keys)".into()),
        };
        let names: Vec<&str> = parsed.iter().map(|(k, _)| k.as_str()).collect();
        let formula = Formula::parse(&source, &names).map_err(|e| format!("`calculate_output` {source:?}: {e}"))?;
        Ok(MultiGrader { graders: parsed, source, formula })
    }

    /// Runs every sub-grader on the rollout, then the formula over their scores.
    pub fn grade(&self, name: &str, scope: &Scope<'_>) -> Result<Score, RolloutError> {
        let mut values = Vec::with_capacity(self.graders.len());
        for (key, grader) in &self.graders {
            let score = grade_in(grader, scope).map_err(|e| match e {
                RolloutError::InvalidInput(m) => RolloutError::InvalidInput(format!("{name}: grader `{key}`: {m}")),
                RolloutError::Failed(m) => RolloutError::Failed(format!("{name}: grader `{key}`: {m}")),
            })?;
            values.push(score.value);
        }
        let value =
            self.formula.eval(&values).map_err(|e| RolloutError::Failed(format!("{name}: calculate_output {:?}: {e}", self.source)))?;
        let parts: Vec<String> = self.graders.iter().zip(&values).map(|((k, _), v)| format!("{k} = {}", number(*v))).collect();
        let mut score = Score::new(value).reward("score", value);
        for ((key, _), v) in self.graders.iter().zip(&values) {
            score = score.metric(key, *v);
        }
        Ok(score.with_reason(format!("{name}: {} = {} with {}", self.source, number(value), parts.join(", "))))
    }
}
