//! The built-in `openai-grader` reward: its config is one OpenAI grader JSON object
//! (<https://platform.openai.com/docs/guides/graders>), run on every rollout.
//!
//! Supported: `string_check` (`eq`, `ne`, `like`, `ilike`), `text_similarity` with every
//! evaluation metric (`cosine` compares the embeddings of the input and the reference from the
//! granted judge's `embedding_model`), and the graders that ask a model, `score_model` and
//! `label_model`, through the judge the reward is granted (module [`model`]: the reward's judge
//! grant decides which model answers, whatever the grader's `model` says), `python`, whose
//! `grade(sample, item)` runs in the interpreter the reward is granted (module [`python`]), and
//! `multi`, which combines other graders' scores with its `calculate_output` formula (modules
//! [`multi`] and [`formula`]). `README.md` next to this crate
//! gives the templating rules, how model answers are parsed, and the agreement with the reference
//! Python implementations.
//!
//! One grader type is **our extension, not an OpenAI grader type**: `pairwise`, a model-graded
//! comparison of the completion with the reference answer, asked twice with the two answers
//! swapped (`{{pair.first}}` / `{{pair.second}}` in its messages) so that the judge's preference
//! for a position cancels out; the score is the mean of the completion's two outcomes (win 1, tie
//! 0.5, loss 0), and `pairwise_agreement` reports whether the two orders agreed (module [`model`]).
//! OpenAI's graders would refuse it, so a config using it does not move back to OpenAI.

use std::cell::OnceCell;

use reward_sdk::{PluginInfo, Reward, Rollout, RolloutError, Score, json_kind};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

pub mod alnum;
pub mod formula;
pub mod fuzzy;
pub mod meteor;
pub mod model;
pub mod multi;
pub mod ngram;
pub mod porter;
pub mod python;
pub mod template;

use model::{LABEL_MODEL_FIELDS, ModelGrader, PAIRWISE_FIELDS, SCORE_MODEL_FIELDS};
use multi::{MULTI_FIELDS, MultiGrader};
use python::{PYTHON_FIELDS, PythonGrader};
use template::{Scope, Template};

/// The plugin's version, reported by [`Reward::info`].
pub const VERSION: &str = "0.1.0";

/// Every metric of a fixed name the reward may emit. A `multi` grader also emits one metric per
/// key of its `graders` (that sub-grader's score), named after the key.
pub const METRICS: [&str; 11] = [
    "score",
    "passed",
    "input_chars",
    "reference_chars",
    "judge_score_raw",
    "judge_score_stdev",
    "judge_score_samples",
    "judge_label_index",
    "pairwise_order1",
    "pairwise_order2",
    "pairwise_agreement",
];

/// The `openai-grader` reward.
pub struct OpenAiGrader;

/// A grader the plugin runs: parsed and checked from the grader JSON when the config loads.
#[derive(Clone, Debug)]
pub struct GraderConfig {
    /// The grader's `name` (its `type` when it has none).
    pub name: String,
    grader: Grader,
}

#[derive(Clone, Debug)]
enum Grader {
    /// `string_check`, `text_similarity`: the rendered input against the rendered reference.
    Text { input: Template, reference: Template, kind: Kind, pass_threshold: Option<f64> },
    /// `score_model`, `label_model`, `pairwise`: the judge's answers to the rendered messages.
    Model(Box<ModelGrader>),
    /// `python`: `grade(sample, item)` in the granted interpreter.
    Python(PythonGrader),
    /// `multi`: sub-graders' scores combined by `calculate_output`.
    Multi(Box<MultiGrader>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    StringCheck(Operation),
    TextSimilarity(SimilarityMetric),
    /// `text_similarity` with `cosine`: the cosine of the judge's embeddings of the two texts.
    Cosine,
}

/// A `string_check` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Equal, case-sensitive.
    Eq,
    /// Not equal, case-sensitive.
    Ne,
    /// The input contains the reference, case-sensitive.
    Like,
    /// The input contains the reference, ignoring case.
    Ilike,
}

/// A `text_similarity` evaluation metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimilarityMetric {
    /// rapidfuzz `fuzz.WRatio` with `utils.default_process`, / 100.
    FuzzyMatch,
    /// nltk `sentence_bleu`.
    Bleu,
    /// nltk `sentence_gleu`.
    Gleu,
    /// nltk `meteor_score` (exact and stem stages).
    Meteor,
    /// rouge-score ROUGE-N F-measure, N = 1..5.
    RougeN(usize),
    /// rouge-score ROUGE-L F-measure.
    RougeL,
}

impl SimilarityMetric {
    /// The metric's name as OpenAI spells it.
    pub fn name(self) -> String {
        match self {
            SimilarityMetric::FuzzyMatch => "fuzzy_match".into(),
            SimilarityMetric::Bleu => "bleu".into(),
            SimilarityMetric::Gleu => "gleu".into(),
            SimilarityMetric::Meteor => "meteor".into(),
            SimilarityMetric::RougeN(n) => format!("rouge_{n}"),
            SimilarityMetric::RougeL => "rouge_l".into(),
        }
    }

    /// Parses an `evaluation_metric` value.
    pub fn parse(name: &str) -> Option<SimilarityMetric> {
        Some(match name {
            "fuzzy_match" => SimilarityMetric::FuzzyMatch,
            "bleu" => SimilarityMetric::Bleu,
            "gleu" => SimilarityMetric::Gleu,
            "meteor" => SimilarityMetric::Meteor,
            "rouge_1" => SimilarityMetric::RougeN(1),
            "rouge_2" => SimilarityMetric::RougeN(2),
            "rouge_3" => SimilarityMetric::RougeN(3),
            "rouge_4" => SimilarityMetric::RougeN(4),
            "rouge_5" => SimilarityMetric::RougeN(5),
            "rouge_l" => SimilarityMetric::RougeL,
            _ => return None,
        })
    }

    /// The metric's value for one (input, reference) pair, in [0, 1].
    pub fn score(self, input: &str, reference: &str) -> f64 {
        match self {
            SimilarityMetric::FuzzyMatch => fuzzy::wratio(input, reference),
            SimilarityMetric::Bleu => ngram::bleu(&ngram::python_split(reference), &ngram::python_split(input)),
            SimilarityMetric::Gleu => ngram::gleu(&ngram::python_split(reference), &ngram::python_split(input)),
            SimilarityMetric::Meteor => meteor::meteor(&ngram::python_split(reference), &ngram::python_split(input)),
            SimilarityMetric::RougeN(n) => ngram::rouge_n(&ngram::rouge_tokens(reference), &ngram::rouge_tokens(input), n),
            SimilarityMetric::RougeL => ngram::rouge_l(&ngram::rouge_tokens(reference), &ngram::rouge_tokens(input)),
        }
    }
}

const METRIC_NAMES: &str = "fuzzy_match, bleu, gleu, meteor, rouge_1, rouge_2, rouge_3, rouge_4, rouge_5, rouge_l, cosine";
const OPERATIONS: &str = "eq, ne, like, ilike";
const TYPES: &str = "string_check, text_similarity, score_model, label_model, python, multi, pairwise (ours)";
const STRING_CHECK_FIELDS: [&str; 5] = ["type", "name", "input", "reference", "operation"];
const TEXT_SIMILARITY_FIELDS: [&str; 6] = ["type", "name", "input", "reference", "evaluation_metric", "pass_threshold"];

/// `map[field]` as a string; the error names the field and the grader type.
pub(crate) fn string_field<'a>(map: &'a Map<String, Value>, field: &str, grader: &str) -> Result<&'a str, String> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("`{field}` must be a string, found {}", json_kind(other))),
        None => Err(format!("missing field `{field}` (a {grader} grader needs `{field}`)")),
    }
}

impl GraderConfig {
    /// Reads and checks a grader object; the error names the field.
    pub fn from_value(value: &Value) -> Result<GraderConfig, String> {
        let Value::Object(map) = value else {
            return Err(format!("the config is one OpenAI grader, a JSON object; found {}", json_kind(value)));
        };
        let grader = match map.get("type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => return Err(format!("`type` must be a string, found {}", json_kind(other))),
            None => return Err(format!("missing field `type` (one of {TYPES})")),
        };
        let fields: &[&str] = match grader {
            "string_check" => &STRING_CHECK_FIELDS,
            "text_similarity" => &TEXT_SIMILARITY_FIELDS,
            "score_model" => &SCORE_MODEL_FIELDS,
            "label_model" => &LABEL_MODEL_FIELDS,
            "pairwise" => &PAIRWISE_FIELDS,
            "python" => &PYTHON_FIELDS,
            "multi" => &MULTI_FIELDS,
            other => return Err(format!("`type`: unknown grader type {other:?}; supported: {TYPES}")),
        };
        if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            return Err(format!("unknown field `{unknown}` for a {grader} grader; expected one of {}", fields.join(", ")));
        }
        let name = match map.get("name") {
            None => grader.to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(format!("`name` must be a string, found {}", json_kind(other))),
        };
        match grader {
            "score_model" | "label_model" | "pairwise" => {
                return Ok(GraderConfig { name, grader: Grader::Model(Box::new(ModelGrader::from_map(map, grader)?)) });
            }
            "python" => return Ok(GraderConfig { name, grader: Grader::Python(PythonGrader::from_map(map)?) }),
            "multi" => return Ok(GraderConfig { name, grader: Grader::Multi(Box::new(MultiGrader::from_map(map)?)) }),
            _ => {}
        }
        let input = Template::parse("input", string_field(map, "input", grader)?)?;
        let reference = Template::parse("reference", string_field(map, "reference", grader)?)?;
        let (kind, pass_threshold) = if grader == "string_check" {
            let op = match string_field(map, "operation", grader)? {
                "eq" => Operation::Eq,
                "ne" => Operation::Ne,
                "like" => Operation::Like,
                "ilike" => Operation::Ilike,
                other => return Err(format!("`operation`: unknown operation {other:?}; expected one of {OPERATIONS}")),
            };
            (Kind::StringCheck(op), None)
        } else {
            let kind = match string_field(map, "evaluation_metric", grader)? {
                "cosine" => Kind::Cosine,
                other => Kind::TextSimilarity(
                    SimilarityMetric::parse(other)
                        .ok_or_else(|| format!("`evaluation_metric`: unknown metric {other:?}; expected one of {METRIC_NAMES}"))?,
                ),
            };
            let threshold = match map.get("pass_threshold") {
                None | Some(Value::Null) => None,
                Some(Value::Number(n)) => match n.as_f64() {
                    Some(t) if t.is_finite() => Some(t),
                    _ => return Err("`pass_threshold` must be a finite number".into()),
                },
                Some(other) => return Err(format!("`pass_threshold` must be a number, found {}", json_kind(other))),
            };
            (kind, threshold)
        };
        Ok(GraderConfig { name, grader: Grader::Text { input, reference, kind, pass_threshold } })
    }
}

impl<'de> Deserialize<'de> for GraderConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        GraderConfig::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// The longest rendered text quoted in a reason, in characters.
const QUOTE_CHARS: usize = 40;

fn quote(s: &str) -> String {
    if s.chars().count() <= QUOTE_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(QUOTE_CHARS).collect();
        format!("{head:?}...")
    }
}

/// Runs the grader on one rollout.
pub fn grade(config: &GraderConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
    let reference = rollout.reference_json()?;
    let metadata = rollout.metadata_json()?;
    let parsed: OnceCell<Result<Value, String>> = OnceCell::new();
    let output_json = || -> Result<&Value, String> {
        parsed
            .get_or_init(|| {
                serde_json::from_str::<Value>(rollout.completion.trim())
                    .map_err(|e| format!("the completion is not JSON ({e}), so `sample.output_json` has no value"))
            })
            .as_ref()
            .map_err(Clone::clone)
    };
    let scope = Scope { reference: &reference, metadata: &metadata, output_text: &rollout.completion, output_json: &output_json };
    grade_in(config, &scope)
}

/// Runs the grader on one rollout's [`Scope`] (a `multi` grader runs its sub-graders on the same
/// scope): for `string_check` and `text_similarity`, the rendered input and reference, then the
/// score.
pub(crate) fn grade_in(config: &GraderConfig, scope: &Scope<'_>) -> Result<Score, RolloutError> {
    let (input, reference, kind, pass_threshold) = match &config.grader {
        Grader::Model(model) => return model.grade(&config.name, scope),
        Grader::Python(python) => return python.grade(&config.name, scope),
        Grader::Multi(multi) => return multi.grade(&config.name, scope),
        Grader::Text { input, reference, kind, pass_threshold } => (input, reference, *kind, *pass_threshold),
    };
    let input = input.render("input", scope).map_err(RolloutError::InvalidInput)?;
    let reference = reference.render("reference", scope).map_err(RolloutError::InvalidInput)?;
    let (value, reason) = match kind {
        Kind::StringCheck(op) => {
            let (pass, what) = match op {
                Operation::Eq => (input == reference, "equals"),
                Operation::Ne => (input != reference, "differs from"),
                Operation::Like => (input.contains(reference.as_str()), "contains"),
                Operation::Ilike => (input.to_lowercase().contains(&reference.to_lowercase()), "contains (ignoring case)"),
            };
            let verdict = if pass { what.to_owned() } else { format!("fails: not ({what})") };
            (if pass { 1.0 } else { 0.0 }, format!("{}: input {} {verdict} reference {}", config.name, quote(&input), quote(&reference)))
        }
        Kind::TextSimilarity(_) | Kind::Cosine => {
            let (v, metric) = match kind {
                Kind::TextSimilarity(metric) => (metric.score(&input, &reference), metric.name()),
                _ => (cosine(&config.name, &input, &reference)?, "cosine".to_owned()),
            };
            let mut reason = format!("{}: {metric} {v:.4}", config.name);
            if let Some(t) = pass_threshold {
                let verdict = if v >= t { "passes" } else { "below" };
                reason.push_str(&format!(" ({verdict} pass_threshold {t})"));
            }
            (v, reason)
        }
    };
    let mut score = Score::new(value).reward("score", value);
    if let Some(t) = pass_threshold {
        score = score.metric("passed", if value >= t { 1.0 } else { 0.0 });
    }
    Ok(score
        .metric("input_chars", input.chars().count() as f64)
        .metric("reference_chars", reference.chars().count() as f64)
        .with_reason(reason))
}

/// The cosine similarity of the judge's embeddings of `a` and `b` (one call for both); 0 when
/// either vector is all zeros. A judge error, or embeddings of two lengths, fails the rollout.
fn cosine(name: &str, a: &str, b: &str) -> Result<f64, RolloutError> {
    let vectors = reward_sdk::judge::embed(&[a.to_owned(), b.to_owned()]).map_err(|e| model::judge_failed(name, &e))?;
    let [x, y] = vectors.as_slice() else {
        return Err(RolloutError::Failed(format!("{name}: the judge answered {} embeddings for 2 texts", vectors.len())));
    };
    if x.len() != y.len() || x.is_empty() {
        return Err(RolloutError::Failed(format!("{name}: the judge's embeddings have {} and {} dimensions", x.len(), y.len())));
    }
    let dot: f64 = x.iter().zip(y).map(|(p, q)| f64::from(*p) * f64::from(*q)).sum();
    let norm = |v: &[f32]| v.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
    let (nx, ny) = (norm(x), norm(y));
    Ok(if nx == 0.0 || ny == 0.0 { 0.0 } else { (dot / (nx * ny)).clamp(-1.0, 1.0) })
}

impl Reward for OpenAiGrader {
    type Config = GraderConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "openai-grader".into(),
            version: VERSION.into(),
            description:
                "OpenAI grader objects (string_check, text_similarity, score_model, label_model, python, multi; and our pairwise) run on rollouts".into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn score(config: &GraderConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
        grade(config, rollout)
    }
}

reward_sdk::export_reward!(OpenAiGrader);

#[cfg(test)]
mod tests;
