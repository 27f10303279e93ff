//! The graders that ask a model: `score_model` and `label_model`, through the judge the reward is
//! granted (`reward_sdk::judge`, the contract's `judge` import).
//!
//! Both render their `input` messages (role and content templates, as `string_check` renders its
//! `input`) and send them to the judge; which model answers is the grant's choice (the config's
//! `model` is accepted and not used). The answer is parsed strictly: an answer the rules below do
//! not accept fails the rollout (`failed`, naming the answer), it never scores 0.
//!
//! - `score_model`: OpenAI asks its model for the response format `{"result": float, "steps":
//!   [{"description": string, "conclusion": string}]}` (the graders guide, "Score model grader
//!   outputs"). The judge has no response-format option, so the plugin asks for that format in a
//!   system instruction ([`score_format_instruction`]), added to the first message when it is a
//!   system (or developer) message, else as a new first message. The answer must be a JSON number
//!   or a JSON object whose `result` is a number (other fields, `steps` among them, are ignored),
//!   optionally inside one Markdown code fence spanning the whole answer. The number is clamped
//!   to `range`, as the guide says OpenAI truncates it; the number the model gave is the
//!   `judge_score_raw` metric.
//! - `label_model`: OpenAI documents no answer format for it (its API reference only says the
//!   model "must support structured outputs"), so the configured messages go to the judge as they
//!   are, and the rubric must ask for the label. The answer, trimmed, must be exactly one of
//!   `labels` (case-sensitive), or a JSON object whose `label` is one. A label in
//!   `passing_labels` scores 1, any other label 0, an answer that is no label fails the rollout.

use reward_sdk::judge::{self, ChatMessage, Completion, Sampling};
use reward_sdk::{RolloutError, Score, json_kind};
use serde_json::{Map, Value};

use crate::template::{Scope, Template};

/// The fields of a `score_model` grader.
pub const SCORE_MODEL_FIELDS: [&str; 7] = ["type", "name", "input", "model", "range", "pass_threshold", "sampling_params"];
/// The fields of a `label_model` grader.
pub const LABEL_MODEL_FIELDS: [&str; 6] = ["type", "name", "input", "model", "labels", "passing_labels"];
/// The keys of `sampling_params`.
pub const SAMPLING_FIELDS: [&str; 5] = ["temperature", "top_p", "seed", "max_completions_tokens", "reasoning_effort"];
/// The roles an `input` message may have.
const ROLES: &str = "system, developer, user, assistant";

/// A model grader, parsed and checked when the config loads.
#[derive(Clone, Debug)]
pub struct ModelGrader {
    messages: Vec<MessageTemplate>,
    kind: ModelKind,
    sampling: Sampling,
}

#[derive(Clone, Debug)]
struct MessageTemplate {
    /// The role sent to the judge (`developer` is sent as `system`).
    role: &'static str,
    content: Template,
}

#[derive(Clone, Debug)]
enum ModelKind {
    Score { min: f64, max: f64, pass_threshold: Option<f64> },
    Label { labels: Vec<String>, passing: Vec<bool> },
}

fn finite(field: &str, value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()).ok_or_else(|| format!("`{field}` must be a finite number")),
        other => Err(format!("`{field}` must be a number, found {}", json_kind(other))),
    }
}

fn parse_input(map: &Map<String, Value>, grader: &str) -> Result<Vec<MessageTemplate>, String> {
    let items = match map.get("input") {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("`input` must be an array of messages (role and content), found {}", json_kind(other))),
        None => return Err(format!("missing field `input` (a {grader} grader needs `input`, a list of messages)")),
    };
    if items.is_empty() {
        return Err("`input` is empty: a model grader needs at least one message".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(m) = item else {
                return Err(format!("`input[{i}]` must be a message object (role and content), found {}", json_kind(item)));
            };
            if let Some(unknown) = m.keys().find(|k| !["role", "content", "type"].contains(&k.as_str())) {
                return Err(format!("unknown field `input[{i}].{unknown}`; expected role, content, type"));
            }
            match m.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "message" => {}
                Some(other) => return Err(format!("`input[{i}].type` must be \"message\", found {other}")),
            }
            let role = match m.get("role") {
                Some(Value::String(r)) => match r.as_str() {
                    "system" | "developer" => "system",
                    "user" => "user",
                    "assistant" => "assistant",
                    other => return Err(format!("`input[{i}].role`: unknown role {other:?}; expected one of {ROLES}")),
                },
                Some(other) => return Err(format!("`input[{i}].role` must be a string, found {}", json_kind(other))),
                None => return Err(format!("missing field `input[{i}].role` (one of {ROLES})")),
            };
            let field = format!("input[{i}].content");
            let text = match m.get("content") {
                Some(Value::String(s)) => s.as_str(),
                Some(Value::Object(c)) => match (c.get("type").and_then(Value::as_str), c.get("text")) {
                    (Some("input_text" | "output_text"), Some(Value::String(s))) if c.len() == 2 => s.as_str(),
                    (Some(t @ ("input_image" | "input_audio")), _) => {
                        return Err(format!("`{field}`: {t} content is not supported (the judge takes text only)"));
                    }
                    _ => {
                        return Err(format!(
                            "`{field}` must be a string or an input_text object ({{\"type\": \"input_text\", \"text\": ...}})"
                        ));
                    }
                },
                Some(other) => {
                    return Err(format!("`{field}` must be a string, found {} (only text content is supported)", json_kind(other)));
                }
                None => return Err(format!("missing field `{field}`")),
            };
            Ok(MessageTemplate { role, content: Template::parse(&field, text)? })
        })
        .collect()
}

fn parse_sampling(value: Option<&Value>) -> Result<Sampling, String> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Sampling::default()),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(format!("`sampling_params` must be an object, found {}", json_kind(other))),
    };
    if let Some(unknown) = map.keys().find(|k| !SAMPLING_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field `sampling_params.{unknown}`; expected one of {}", SAMPLING_FIELDS.join(", ")));
    }
    let get = |key: &str| map.get(key).filter(|v| !v.is_null());
    let mut sampling = Sampling::default();
    if let Some(v) = get("temperature") {
        let t = finite("sampling_params.temperature", v)?;
        if t < 0.0 {
            return Err(format!("`sampling_params.temperature` must be at least 0, found {t}"));
        }
        sampling.temperature = Some(t);
    }
    if let Some(v) = get("top_p") {
        let p = finite("sampling_params.top_p", v)?;
        if !(p > 0.0 && p <= 1.0) {
            return Err(format!("`sampling_params.top_p` must be in (0, 1], found {p}"));
        }
        sampling.top_p = Some(p);
    }
    if let Some(v) = get("seed") {
        sampling.seed = Some(v.as_u64().ok_or_else(|| format!("`sampling_params.seed` must be a non-negative integer, found {v}"))?);
    }
    if let Some(v) = get("max_completions_tokens") {
        let n = v.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
        sampling.max_tokens =
            Some(n.ok_or_else(|| {
                format!("`sampling_params.max_completions_tokens` must be a positive integer (at most 2^32-1), found {v}")
            })?);
    }
    // reasoning_effort: the judge's sampling has no such knob (the grant decides the model and
    // how it reasons); the guide's own example sets it, so it is accepted and not sent.
    if let Some(v) = get("reasoning_effort")
        && !v.is_string()
    {
        return Err(format!("`sampling_params.reasoning_effort` must be a string, found {}", json_kind(v)));
    }
    Ok(sampling)
}

fn string_list(map: &Map<String, Value>, field: &str) -> Result<Vec<String>, String> {
    let items = match map.get(field) {
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("`{field}` must be an array of strings, found {}", json_kind(other))),
        None => return Err(format!("missing field `{field}` (a label_model grader needs `labels` and `passing_labels`)")),
    };
    if items.is_empty() {
        return Err(format!("`{field}` is empty"));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(s) = item else {
            return Err(format!("`{field}[{i}]` must be a string, found {}", json_kind(item)));
        };
        if s.trim().is_empty() {
            return Err(format!("`{field}[{i}]` is empty"));
        }
        if s.trim() != s {
            return Err(format!("`{field}[{i}]` {s:?} has surrounding whitespace (answers are trimmed, so it could never match)"));
        }
        if out.contains(s) {
            return Err(format!("`{field}` has {s:?} twice"));
        }
        out.push(s.clone());
    }
    Ok(out)
}

impl ModelGrader {
    /// Reads the fields of a `score_model` or `label_model` grader (`grader`), already checked for
    /// unknown keys; the error names the field.
    pub fn from_map(map: &Map<String, Value>, grader: &str) -> Result<ModelGrader, String> {
        match map.get("model") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(other) => return Err(format!("`model` must be a string, found {}", json_kind(other))),
        }
        let messages = parse_input(map, grader)?;
        let (kind, sampling) = if grader == "score_model" {
            let (min, max) = match map.get("range") {
                None | Some(Value::Null) => (0.0, 1.0),
                Some(Value::Array(r)) if r.len() == 2 => {
                    let (min, max) = (finite("range[0]", &r[0])?, finite("range[1]", &r[1])?);
                    if min >= max {
                        return Err(format!("`range` must be increasing ([min, max] with min < max), found [{min}, {max}]"));
                    }
                    (min, max)
                }
                Some(other) => return Err(format!("`range` must be two numbers [min, max], found {other}")),
            };
            let pass_threshold = match map.get("pass_threshold") {
                None | Some(Value::Null) => None,
                Some(v) => Some(finite("pass_threshold", v)?),
            };
            (ModelKind::Score { min, max, pass_threshold }, parse_sampling(map.get("sampling_params"))?)
        } else {
            let labels = string_list(map, "labels")?;
            let passing_labels = string_list(map, "passing_labels")?;
            if let Some(stray) = passing_labels.iter().find(|p| !labels.contains(p)) {
                return Err(format!(
                    "`passing_labels`: {stray:?} is not one of `labels` ({}); passing_labels must be a subset of labels",
                    labels.join(", ")
                ));
            }
            let passing = labels.iter().map(|l| passing_labels.contains(l)).collect();
            (ModelKind::Label { labels, passing }, Sampling::default())
        };
        Ok(ModelGrader { messages, kind, sampling })
    }

    /// The messages sent to the judge for one rollout: the rendered `input`, and for
    /// `score_model` the answer-format instruction. A variable that names nothing is an error
    /// naming `input[i].content`.
    pub fn render(&self, scope: &Scope<'_>) -> Result<Vec<ChatMessage>, String> {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        for (i, m) in self.messages.iter().enumerate() {
            messages.push(ChatMessage::new(m.role, m.content.render(&format!("input[{i}].content"), scope)?));
        }
        if let ModelKind::Score { min, max, .. } = self.kind {
            let instruction = score_format_instruction(min, max);
            match messages.first_mut() {
                Some(first) if first.role == "system" => {
                    first.content.push_str("\n\n");
                    first.content.push_str(&instruction);
                }
                _ => messages.insert(0, ChatMessage::new("system", instruction)),
            }
        }
        Ok(messages)
    }

    /// Asks the judge and scores its answer.
    pub fn grade(&self, name: &str, scope: &Scope<'_>) -> Result<Score, RolloutError> {
        let messages = self.render(scope).map_err(RolloutError::InvalidInput)?;
        let completion = judge::complete(&messages, &self.sampling)
            .map_err(|e| RolloutError::Failed(format!("{name}: the judge failed ({}): {e}", e.kind())))?;
        let by = if completion.model.is_empty() { String::new() } else { format!(" ({})", completion.model) };
        match &self.kind {
            ModelKind::Score { min, max, pass_threshold } => {
                let raw = parse_score(&completion.text)
                    .map_err(|e| RolloutError::Failed(format!("{name}: the judge's answer {} {e}", describe(&completion))))?;
                let value = raw.clamp(*min, *max);
                let mut reason = format!("{name}: the judge{by} scored {value} in [{min}, {max}]");
                if value != raw {
                    reason.push_str(&format!(" (its answer {raw} clamped to the range)"));
                }
                let mut score = Score::new(value).reward("score", value).metric("judge_score_raw", raw);
                if let Some(t) = pass_threshold {
                    let pass = value >= *t;
                    reason.push_str(&format!(" ({} pass_threshold {t})", if pass { "passes" } else { "below" }));
                    score = score.metric("passed", if pass { 1.0 } else { 0.0 });
                }
                Ok(score.with_reason(reason))
            }
            ModelKind::Label { labels, passing } => {
                let index = parse_label(&completion.text, labels)
                    .map_err(|e| RolloutError::Failed(format!("{name}: the judge's answer {} {e}", describe(&completion))))?;
                let value = if passing[index] { 1.0 } else { 0.0 };
                let verdict = if passing[index] { "a passing label" } else { "not a passing label" };
                let reason = format!("{name}: the judge{by} answered label {:?} ({verdict})", labels[index]);
                Ok(Score::new(value).reward("score", value).metric("judge_label_index", index as f64).with_reason(reason))
            }
        }
    }
}

/// The system instruction a `score_model` grader adds: the response format OpenAI's graders guide
/// says its `score_model` requests (`result`, a number, and `steps`, the reasoning), with the
/// grader's range.
pub fn score_format_instruction(min: f64, max: f64) -> String {
    format!(
        "Answer with one JSON object and nothing else, in this format: \
         {{\"result\": <your score, a number from {min} to {max}>, \"steps\": [{{\"description\": \"<a reasoning step>\", \"conclusion\": \"<its conclusion>\"}}]}}"
    )
}

/// The longest answer quoted in an error, in characters.
const QUOTE_CHARS: usize = 80;

fn describe(completion: &Completion) -> String {
    let text = completion.text.as_str();
    let mut quoted = if text.chars().count() <= QUOTE_CHARS {
        format!("{text:?}")
    } else {
        format!("{:?}...", text.chars().take(QUOTE_CHARS).collect::<String>())
    };
    if !completion.finish_reason.is_empty() && completion.finish_reason != "stop" {
        quoted.push_str(&format!(" (finish_reason {})", completion.finish_reason));
    }
    quoted
}

/// The answer without surrounding whitespace, and without one Markdown code fence when the fence
/// spans the whole answer (```` ```json ... ``` ````).
fn unfenced(answer: &str) -> &str {
    let t = answer.trim();
    if let Some(rest) = t.strip_prefix("```")
        && rest.ends_with("```")
        && let Some(newline) = rest.find('\n')
        && newline < rest.len() - 3
        && !rest[..newline].contains('`')
    {
        return rest[newline + 1..rest.len() - 3].trim();
    }
    t
}

/// A `score_model` answer's number: a JSON number, or a JSON object whose `result` is a number.
pub fn parse_score(answer: &str) -> Result<f64, String> {
    let body = unfenced(answer);
    let value: Value =
        serde_json::from_str(body).map_err(|_| "is not a number or a JSON object with a numeric `result` field".to_owned())?;
    let number = match &value {
        Value::Number(n) => n,
        Value::Object(map) => match map.get("result") {
            Some(Value::Number(n)) => n,
            Some(other) => return Err(format!("has `result` {}, not a number", json_kind(other))),
            None => return Err("is a JSON object without a `result` field".into()),
        },
        other => return Err(format!("is {}, not a number or a JSON object with a numeric `result` field", json_kind(other))),
    };
    number.as_f64().filter(|v| v.is_finite()).ok_or_else(|| "has a number that is not finite".to_owned())
}

/// A `label_model` answer's index in `labels`: the trimmed answer is a label, or a JSON object
/// whose `label` is one.
pub fn parse_label(answer: &str, labels: &[String]) -> Result<usize, String> {
    let find = |label: &str| labels.iter().position(|l| l == label);
    let body = unfenced(answer);
    if let Some(i) = find(body) {
        return Ok(i);
    }
    let list = labels.join(", ");
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body) {
        return match map.get("label") {
            Some(Value::String(l)) => find(l.trim()).ok_or_else(|| format!("has `label` {l:?}, which is not one of the labels ({list})")),
            Some(other) => Err(format!("has `label` {}, not a string", json_kind(other))),
            None => Err(format!("is a JSON object without a `label` field (labels: {list})")),
        };
    }
    Err(format!("is not one of the labels ({list})"))
}
