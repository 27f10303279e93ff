//! The graders that ask a model: `score_model` and `label_model`, and our `pairwise` extension
//! (not an OpenAI grader type), through the judge the reward is granted (`reward_sdk::judge`, the
//! contract's `judge` import).
//!
//! All three render their `input` messages (role and content templates, as `string_check`
//! renders its `input`) and send them to the judge; which model answers is the grant's choice
//! (the config's `model` is accepted and not used). The answer is parsed strictly: an answer the
//! rules below do not accept fails the rollout (`failed`, naming the answer), it never scores 0.
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
//! - `pairwise` (ours): compares the completion with the reference answer (the `reference`
//!   template, `{{item.reference_answer}}` by default) in two judge calls, the completion as
//!   `{{pair.first}}` and the reference as `{{pair.second}}`, then swapped, so that a judge that
//!   prefers a position cancels out. Each answer is read as `label_model` reads its answer, against
//!   the `first`, `second` and `tie` labels (default `A`, `B`, `tie`). Per order the completion
//!   wins (1), ties (0.5) or loses (0); the score is the mean of the two orders, and
//!   `pairwise_agreement` says whether the orders agree about the completion (a judge that always
//!   answers `A` scores 0.5 with agreement 0: position bias).

use reward_sdk::judge::{self, ChatMessage, Completion, Sampling};
use reward_sdk::{RolloutError, Score, json_kind};
use serde_json::{Map, Value};

use crate::template::{Pair, PairSide, Scope, Template};

/// The fields of a `score_model` grader.
pub const SCORE_MODEL_FIELDS: [&str; 8] = ["type", "name", "input", "model", "range", "pass_threshold", "sampling_params", "samples"];
/// Most judge answers one `score_model` rollout may average (`samples`, our extension): 16, the
/// judge grant's default `max_calls_per_rollout`.
pub const MAX_SAMPLES: u64 = 16;
/// The fields of a `label_model` grader.
pub const LABEL_MODEL_FIELDS: [&str; 6] = ["type", "name", "input", "model", "labels", "passing_labels"];
/// The fields of a `pairwise` grader (ours, not an OpenAI grader type).
pub const PAIRWISE_FIELDS: [&str; 8] = ["type", "name", "input", "model", "reference", "labels", "sampling_params", "pass_threshold"];
/// The keys of a `pairwise` grader's `labels`, in the order of [`parse_label`]'s index.
pub const PAIRWISE_LABEL_FIELDS: [&str; 3] = ["first", "second", "tie"];
/// The labels a `pairwise` judge answers when the config's `labels` leaves one out.
pub const DEFAULT_PAIRWISE_LABELS: [&str; 3] = ["A", "B", "tie"];
/// A `pairwise` grader's `reference` when the config leaves it out.
pub const DEFAULT_PAIRWISE_REFERENCE: &str = "{{item.reference_answer}}";
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
    /// `samples`: how many answers are averaged (1 unless the config sets more).
    Score {
        min: f64,
        max: f64,
        pass_threshold: Option<f64>,
        samples: u32,
    },
    Label {
        labels: Vec<String>,
        passing: Vec<bool>,
    },
    Pairwise(Box<Pairwise>),
}

/// A `pairwise` grader's own fields.
#[derive(Clone, Debug)]
struct Pairwise {
    /// The reference answer the completion is compared with.
    reference: Template,
    /// The `first`, `second` and `tie` labels, in that order.
    labels: Vec<String>,
    pass_threshold: Option<f64>,
}

/// One of the two `pairwise` judge calls: which answer is `{{pair.first}}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Order 1: the completion first, the reference second.
    CompletionFirst,
    /// Order 2: the reference first, the completion second.
    ReferenceFirst,
}

impl Order {
    fn describe(self) -> &'static str {
        match self {
            Order::CompletionFirst => "order 1, completion first",
            Order::ReferenceFirst => "order 2, reference first",
        }
    }

    /// The completion's outcome when the judge answered `labels[index]` (first, second, tie): 1 for
    /// a win, 0.5 for a tie, 0 for a loss.
    fn outcome(self, index: usize) -> f64 {
        match (self, index) {
            (_, 2) => 0.5,
            (Order::CompletionFirst, 0) | (Order::ReferenceFirst, 1) => 1.0,
            _ => 0.0,
        }
    }
}

fn verdict(outcome: f64) -> &'static str {
    if outcome == 1.0 {
        "completion wins"
    } else if outcome == 0.0 {
        "reference wins"
    } else {
        "tie"
    }
}

fn finite(field: &str, value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()).ok_or_else(|| format!("`{field}` must be a finite number")),
        other => Err(format!("`{field}` must be a number, found {}", json_kind(other))),
    }
}

/// An optional finite number (`pass_threshold`); null is unset.
fn optional_finite(map: &Map<String, Value>, field: &str) -> Result<Option<f64>, String> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => finite(field, v).map(Some),
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
            let content = if grader == "pairwise" { Template::parse_pairwise(&field, text)? } else { Template::parse(&field, text)? };
            Ok(MessageTemplate { role, content })
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
        push_label(&mut out, field, &format!("{field}[{i}]"), item)?;
    }
    Ok(out)
}

/// Checks one label (`at` names it: `labels[1]`, `labels.tie`) and adds it to `labels` (`field`):
/// a non-blank string without surrounding whitespace, not already there.
fn push_label(labels: &mut Vec<String>, field: &str, at: &str, item: &Value) -> Result<(), String> {
    let Value::String(s) = item else {
        return Err(format!("`{at}` must be a string, found {}", json_kind(item)));
    };
    if s.trim().is_empty() {
        return Err(format!("`{at}` is empty"));
    }
    if s.trim() != s {
        return Err(format!("`{at}` {s:?} has surrounding whitespace (answers are trimmed, so it could never match)"));
    }
    if labels.contains(s) {
        return Err(format!("`{field}` has {s:?} twice"));
    }
    labels.push(s.clone());
    Ok(())
}

/// A `pairwise` grader's `labels`: an object with optional `first`, `second` and `tie`, each
/// defaulting to [`DEFAULT_PAIRWISE_LABELS`]; the three must be distinct.
fn pairwise_labels(value: Option<&Value>) -> Result<Vec<String>, String> {
    let empty = Map::new();
    let map = match value {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!(
                "`labels` must be an object ({{\"first\": ..., \"second\": ..., \"tie\": ...}}), found {}",
                json_kind(other)
            ));
        }
    };
    if let Some(unknown) = map.keys().find(|k| !PAIRWISE_LABEL_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field `labels.{unknown}`; expected first, second, tie"));
    }
    let mut labels = Vec::with_capacity(3);
    for (key, default) in PAIRWISE_LABEL_FIELDS.iter().zip(DEFAULT_PAIRWISE_LABELS) {
        let item = map.get(*key).filter(|v| !v.is_null()).cloned().unwrap_or_else(|| Value::String(default.to_owned()));
        push_label(&mut labels, "labels", &format!("labels.{key}"), &item)?;
    }
    Ok(labels)
}

impl ModelGrader {
    /// Reads the fields of a `score_model`, `label_model` or `pairwise` grader (`grader`), already
    /// checked for unknown keys; the error names the field.
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
            let pass_threshold = optional_finite(map, "pass_threshold")?;
            let samples = match map.get("samples") {
                None | Some(Value::Null) => 1,
                Some(v) => match v.as_u64().filter(|n| (1..=MAX_SAMPLES).contains(n)) {
                    Some(n) => n as u32,
                    None => return Err(format!("`samples` must be a whole number from 1 to {MAX_SAMPLES}, found {v}")),
                },
            };
            (ModelKind::Score { min, max, pass_threshold, samples }, parse_sampling(map.get("sampling_params"))?)
        } else if grader == "pairwise" {
            for (side, variable) in [(PairSide::First, "{{pair.first}}"), (PairSide::Second, "{{pair.second}}")] {
                if !messages.iter().any(|m| m.content.uses_pair(side)) {
                    return Err(format!(
                        "`input` does not use {variable}: a pairwise grader's messages must show the judge both answers, \
                         {{{{pair.first}}}} and {{{{pair.second}}}}"
                    ));
                }
            }
            let reference = match map.get("reference") {
                None | Some(Value::Null) => DEFAULT_PAIRWISE_REFERENCE,
                Some(Value::String(s)) => s.as_str(),
                Some(other) => return Err(format!("`reference` must be a string (a template), found {}", json_kind(other))),
            };
            let pairwise = Pairwise {
                reference: Template::parse("reference", reference)?,
                labels: pairwise_labels(map.get("labels"))?,
                pass_threshold: optional_finite(map, "pass_threshold")?,
            };
            (ModelKind::Pairwise(Box::new(pairwise)), parse_sampling(map.get("sampling_params"))?)
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
        self.render_with_pair(scope, None)
    }

    /// [`ModelGrader::render`] for one `pairwise` judge call: `pair` is `{{pair.first}}` and
    /// `{{pair.second}}`.
    fn render_with_pair(&self, scope: &Scope<'_>, pair: Option<Pair<'_>>) -> Result<Vec<ChatMessage>, String> {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        for (i, m) in self.messages.iter().enumerate() {
            messages.push(ChatMessage::new(m.role, m.content.render_with_pair(&format!("input[{i}].content"), scope, pair)?));
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

    /// Renders the messages for `scope` and asks the judge. `what` names the grader (and the
    /// call) in the error: a variable that names nothing is invalid input, a judge error fails the
    /// rollout naming its kind.
    fn ask(&self, what: &str, scope: &Scope<'_>, pair: Option<Pair<'_>>) -> Result<Completion, RolloutError> {
        let messages = self.render_with_pair(scope, pair).map_err(RolloutError::InvalidInput)?;
        judge::complete(&messages, &self.sampling).map_err(|e| judge_failed(what, &e))
    }

    /// Asks the judge and scores its answer.
    pub fn grade(&self, name: &str, scope: &Scope<'_>) -> Result<Score, RolloutError> {
        match &self.kind {
            ModelKind::Score { min, max, pass_threshold, samples } if *samples > 1 => {
                self.grade_samples(name, scope, (*min, *max), *pass_threshold, *samples)
            }
            ModelKind::Score { min, max, pass_threshold, .. } => {
                let completion = self.ask(name, scope, None)?;
                let by = answered_by(&completion);
                let raw = parse_score(&completion.text).map_err(|e| unusable(name, &completion, &e))?;
                let value = raw.clamp(*min, *max);
                let mut reason = format!("{name}: the judge{by} scored {value} in [{min}, {max}]");
                if value != raw {
                    reason.push_str(&format!(" (its answer {raw} clamped to the range)"));
                }
                let score = Score::new(value).reward("score", value).metric("judge_score_raw", raw);
                Ok(with_pass_threshold(score, reason, value, *pass_threshold))
            }
            ModelKind::Label { labels, passing } => {
                let completion = self.ask(name, scope, None)?;
                let by = answered_by(&completion);
                let index = parse_label(&completion.text, labels).map_err(|e| unusable(name, &completion, &e))?;
                let value = if passing[index] { 1.0 } else { 0.0 };
                let verdict = if passing[index] { "a passing label" } else { "not a passing label" };
                let reason = format!("{name}: the judge{by} answered label {:?} ({verdict})", labels[index]);
                Ok(Score::new(value).reward("score", value).metric("judge_label_index", index as f64).with_reason(reason))
            }
            ModelKind::Pairwise(pairwise) => self.grade_pairwise(name, scope, pairwise),
        }
    }

    /// `score_model` with `samples` > 1: that many answers, the call `i` (from 0) with seed
    /// `seed + i` (`seed` the config's, else 0) so that the calls differ and each stays
    /// reproducible and cacheable; the score is the mean of the clamped numbers. Any answer that
    /// fails (a judge error, no number) fails the rollout: a partial mean is never the score.
    fn grade_samples(
        &self,
        name: &str,
        scope: &Scope<'_>,
        (min, max): (f64, f64),
        pass_threshold: Option<f64>,
        samples: u32,
    ) -> Result<Score, RolloutError> {
        let messages = self.render(scope).map_err(RolloutError::InvalidInput)?;
        let base = self.sampling.seed.unwrap_or(0);
        let mut values = Vec::with_capacity(samples as usize);
        let mut raws = Vec::with_capacity(samples as usize);
        let mut by = String::new();
        for i in 0..samples {
            let what = format!("{name} (sample {} of {samples})", i + 1);
            let sampling = Sampling { seed: Some(base.wrapping_add(u64::from(i))), ..self.sampling };
            let completion = judge::complete(&messages, &sampling).map_err(|e| judge_failed(&what, &e))?;
            let raw = parse_score(&completion.text).map_err(|e| unusable(&what, &completion, &e))?;
            by = answered_by(&completion);
            raws.push(raw);
            values.push(raw.clamp(min, max));
        }
        let n = f64::from(samples);
        let mean = values.iter().sum::<f64>() / n;
        let spread = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let listed = values.iter().map(f64::to_string).collect::<Vec<_>>().join(", ");
        let reason = format!("{name}: the judge{by} scored {samples} samples in [{min}, {max}]: {listed}; mean {mean}");
        let score = Score::new(mean)
            .reward("score", mean)
            .metric("judge_score_raw", raws.iter().sum::<f64>() / n)
            .metric("judge_score_stdev", spread)
            .metric("judge_score_samples", n);
        Ok(with_pass_threshold(score, reason, mean, pass_threshold))
    }

    /// The two `pairwise` calls (completion first, then reference first) and their mean.
    fn grade_pairwise(&self, name: &str, scope: &Scope<'_>, pairwise: &Pairwise) -> Result<Score, RolloutError> {
        let reference = pairwise.reference.render("reference", scope).map_err(RolloutError::InvalidInput)?;
        let completion = scope.output_text;
        let mut outcomes = [0.0; 2];
        let mut answers: Vec<(String, String)> = Vec::with_capacity(2);
        for (k, order) in [Order::CompletionFirst, Order::ReferenceFirst].into_iter().enumerate() {
            let pair = match order {
                Order::CompletionFirst => Pair { first: completion, second: &reference },
                Order::ReferenceFirst => Pair { first: &reference, second: completion },
            };
            let what = format!("{name} ({})", order.describe());
            let answer = self.ask(&what, scope, Some(pair))?;
            let index = parse_label(&answer.text, &pairwise.labels).map_err(|e| unusable(&what, &answer, &e))?;
            outcomes[k] = order.outcome(index);
            answers.push((pairwise.labels[index].clone(), answered_by(&answer)));
        }
        let value = (outcomes[0] + outcomes[1]) / 2.0;
        let agree = outcomes[0] == outcomes[1];
        let by = &answers[0].1;
        let reason = format!(
            "{name}: the judge{by} answered {:?} with the completion first ({}) and {:?} with the reference first ({}): {}; score {value}",
            answers[0].0,
            verdict(outcomes[0]),
            answers[1].0,
            verdict(outcomes[1]),
            if agree { "the orders agree" } else { "the orders disagree (position bias)" },
        );
        let score = Score::new(value)
            .reward("score", value)
            .metric("pairwise_order1", outcomes[0])
            .metric("pairwise_order2", outcomes[1])
            .metric("pairwise_agreement", if agree { 1.0 } else { 0.0 });
        Ok(with_pass_threshold(score, reason, value, pairwise.pass_threshold))
    }
}

/// ` (MODEL)`, the model the endpoint reported, for a reason; empty when it reported none.
fn answered_by(completion: &Completion) -> String {
    if completion.model.is_empty() { String::new() } else { format!(" ({})", completion.model) }
}

/// The rollout's failure for an answer the grader cannot read: `what` (the grader, and the call),
/// the answer quoted, and `why`.
/// A judge call of grader `what` that failed: the rollout fails with the judge's error (the host
/// fails it with `JUDGE_ERROR` whatever the plugin answers; this is what the plugin says).
pub fn judge_failed(what: &str, e: &judge::JudgeError) -> RolloutError {
    RolloutError::Failed(format!("{what}: the judge failed ({}): {e}", e.kind()))
}

fn unusable(what: &str, completion: &Completion, why: &str) -> RolloutError {
    RolloutError::Failed(format!("{what}: the judge's answer {} {why}", describe(completion)))
}

/// The score with `reason`, and with `pass_threshold` set, the `passed` metric (1 when `value` is
/// at least the threshold) and the verdict in the reason.
fn with_pass_threshold(mut score: Score, mut reason: String, value: f64, pass_threshold: Option<f64>) -> Score {
    if let Some(t) = pass_threshold {
        let pass = value >= t;
        reason.push_str(&format!(" ({} pass_threshold {t})", if pass { "passes" } else { "below" }));
        score = score.metric("passed", if pass { 1.0 } else { 0.0 });
    }
    score.with_reason(reason)
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
