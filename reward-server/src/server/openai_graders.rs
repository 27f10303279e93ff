//! OpenAI's grader API (`POST /v1/fine_tuning/alpha/graders/run` and `.../graders/validate`),
//! over the rewards the config's `[graders]` table builds ([`crate::engine::graders`]).
//!
//! `run` takes `{grader, model_sample, item}`: `grader` one grader object (what an OpenAI RFT job
//! or eval takes), `model_sample` the text to grade (`sample.output_text`; `sample.output_json`
//! when it is JSON), `item` the data set row (`item.*`, an object; absent means `{}`). The
//! rollout is `sample`, its answer `model_sample` and its metadata `item`, so `item.NAME` reads
//! the row's field as the grader's templates expect. The answer is OpenAI's `GraderRunResponse`:
//! `reward`, `metadata` (`name`, `type`, `errors`, `execution_time`, `scores`, `token_usage`,
//! `sampled_model_name`), `sub_rewards` (a `multi` grader's graders' scores) and
//! `model_grader_token_usage_per_model`.
//!
//! A rollout that failed is never a silent 0: OpenAI's contract has no "no score", so `reward`
//! is the reward's policy's (0 under the default `zero`), one of `metadata.errors`'s flags is set
//! (below), and `metadata` also carries ours: `status`, `error` and `reason`, as the native API
//! answers them. A `[graders]` table with `on_error = "fail"` answers 422 instead.
//!
//! | status | flag set in `metadata.errors` |
//! | --- | --- |
//! | `JUDGE_ERROR` | `model_grader_server_error` (with `model_grader_server_error_details`) |
//! | `PLUGIN_ERROR` of a `python` grader | `python_grader_runtime_error` (with `python_grader_runtime_error_details`) |
//! | `PLUGIN_ERROR` of a `score_model` / `label_model` grader | `model_grader_parse_error` (the model's answer was unusable) |
//! | `INVALID_INPUT` | `invalid_variable_error` (a template names a field the item or sample lacks) |
//! | `TIMEOUT` | `unresponsive_reward_error` |
//! | any other failure | `other_error` |
//!
//! `validate` takes `{grader}` and answers `{grader}` when the plugin accepts it, else 400 naming
//! the field, exactly as the grader would fail to load in a rewards.toml.
//!
//! A refused request is answered in OpenAI's error shape, `{"error": {"message", "type", "param",
//! "code"}}` (`code` our error kind), which OpenAI's SDKs turn into their exceptions' text; the
//! status and headers (`retry-after`) are the server's as at every door.

use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ScoreError;

use crate::engine::judge::USAGE_METRICS;
use crate::engine::{Item, Reward, RewardKind, Rollout, Scored, Status};
use crate::input::json_kind;

/// The id of the one rollout of a `run` request.
pub const SAMPLE_ID: &str = "sample";

/// Every flag of OpenAI's `metadata.errors`, in its order; all false but the failure's.
const ERROR_FLAGS: [&str; 11] = [
    "formula_parse_error",
    "invalid_variable_error",
    "model_grader_parse_error",
    "model_grader_refusal_error",
    "model_grader_server_error",
    "other_error",
    "python_grader_runtime_error",
    "python_grader_server_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
];

/// A `run` request (OpenAI's `GraderRunParams`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The grader object.
    pub grader: Value,
    /// The text to grade.
    pub model_sample: String,
    /// The data set row; `null` or absent is `{}`.
    #[serde(default)]
    pub item: Value,
}

/// A `validate` request (OpenAI's `GraderValidateParams`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The grader object.
    pub grader: Value,
}

/// The one rollout a `run` request grades; an `item` that is not an object is the request's
/// error (there is no other rollout to spare).
pub fn rollout(model_sample: String, item: &Value) -> Result<Item, String> {
    let metadata = match item {
        Value::Null => "{}".to_owned(),
        Value::Object(_) => item.to_string(),
        other => return Err(format!("`item` must be a JSON object (the data set row), not {}", json_kind(other))),
    };
    let rollout = Rollout::new(SAMPLE_ID.into(), Vec::new(), Some(model_sample), String::new(), metadata)
        .map_err(|e| format!("model_sample: {e}"))?;
    Ok(Item::Rollout(rollout))
}

/// The answer to a `run` request: `scored`, the rollout `grader` (run as `reward`) graded.
pub fn response(grader: &Value, reward: &Reward, scored: &Scored) -> Value {
    let field = |key: &str| grader.get(key).and_then(Value::as_str);
    let kind = field("type").unwrap_or("");
    let metric = |name: &str| scored.metrics.iter().find(|m| m.name == name).map(|m| m.value);
    // The plugin's metrics; the host's judge accounting goes to `token_usage` instead.
    let scores: Map<String, Value> = scored
        .metrics
        .iter()
        .filter(|m| !USAGE_METRICS.contains(&m.name.as_str()))
        .map(|m| (m.name.clone(), Value::from(m.value)))
        .collect();
    // A multi grader reports each of its graders' scores as the metric of the grader's key.
    let sub_rewards: Map<String, Value> = match grader.get("graders") {
        Some(Value::Object(graders)) if kind == "multi" => {
            graders.keys().filter_map(|key| Some((key.clone(), Value::from(metric(key)?)))).collect()
        }
        _ => Map::new(),
    };
    let token_usage = metric("judge_calls").filter(|calls| *calls > 0.0).map(|_| {
        let (prompt, completion) = (metric("judge_prompt_tokens").unwrap_or(0.0), metric("judge_completion_tokens").unwrap_or(0.0));
        json!({
            "prompt_tokens": prompt as u64,
            "completion_tokens": completion as u64,
            "total_tokens": (prompt + completion) as u64,
            "cached_tokens": 0,
        })
    });
    let per_model: Map<String, Value> = match (&token_usage, judge_model(reward)) {
        (Some(usage), Some(model)) => [(model, usage.clone())].into_iter().collect(),
        _ => Map::new(),
    };
    json!({
        "reward": scored.score_or_zero(),
        "metadata": {
            "name": field("name").unwrap_or(kind),
            "type": kind,
            "errors": errors(kind, scored),
            "execution_time": scored.latency.as_secs_f64(),
            "scores": scores,
            "token_usage": token_usage,
            "sampled_model_name": Value::Null,
            "status": scored.status,
            "error": scored.error,
            "reason": scored.reason,
        },
        "sub_rewards": sub_rewards,
        "model_grader_token_usage_per_model": per_model,
    })
}

/// A refusal in OpenAI's error shape (see the module's doc), with the server's status and headers.
pub fn error(e: ScoreError) -> Response {
    let (status, _) = e.codes();
    let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
    let body = json!({ "error": { "message": e.to_string(), "type": kind, "param": Value::Null, "code": e.kind() } });
    let mut response = e.into_response();
    *response.body_mut() = axum::body::Body::from(body.to_string());
    response
}

/// OpenAI's `metadata.errors` for a rollout of a `kind` grader: every flag false when it scored,
/// else the one its status maps to (see the module's table) and that flag's details.
fn errors(kind: &str, scored: &Scored) -> Value {
    let mut errors: Map<String, Value> = ERROR_FLAGS.iter().map(|flag| ((*flag).to_owned(), Value::Bool(false))).collect();
    for details in ["model_grader_server_error_details", "python_grader_runtime_error_details", "python_grader_server_error_type"] {
        errors.insert(details.to_owned(), Value::Null);
    }
    let details = || Value::from(scored.error.clone().unwrap_or_default());
    let (flag, details_key) = match (scored.status, kind) {
        (Status::Ok, _) => return Value::Object(errors),
        (Status::JudgeError, _) => ("model_grader_server_error", Some("model_grader_server_error_details")),
        (Status::PluginError, "python") => ("python_grader_runtime_error", Some("python_grader_runtime_error_details")),
        (Status::PluginError, "score_model" | "label_model") => ("model_grader_parse_error", None),
        (Status::InvalidInput, _) => ("invalid_variable_error", None),
        (Status::Timeout, _) => ("unresponsive_reward_error", None),
        _ => ("other_error", None),
    };
    errors.insert(flag.to_owned(), Value::Bool(true));
    if let Some(key) = details_key {
        errors.insert(key.to_owned(), details());
    }
    Value::Object(errors)
}

/// The model a reward's judge grant asks, for `model_grader_token_usage_per_model`.
fn judge_model(reward: &Reward) -> Option<String> {
    match &reward.kind {
        RewardKind::Plugin(p) => p.grants.judge.as_ref().map(|grant| grant.judge.spec().model.clone()),
        RewardKind::Composite(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(status: Status, error: Option<&str>) -> Scored {
        let reward = crate::engine::Provenance { reward: "graders/run".into(), ..Default::default() };
        Scored {
            id: SAMPLE_ID.into(),
            score: Some(0.0),
            status,
            metrics: Vec::new(),
            reason: None,
            error: error.map(str::to_owned),
            instructions: 0,
            latency: std::time::Duration::ZERO,
            provenance: std::sync::Arc::new(reward),
            cached: false,
        }
    }

    #[test]
    fn a_failure_sets_the_flag_its_status_maps_to_and_only_that_one() {
        let set = |kind: &str, status: Status| {
            let errors = errors(kind, &scored(status, Some("what went wrong")));
            let flags: Vec<&str> = ERROR_FLAGS.iter().copied().filter(|flag| errors[*flag] == Value::Bool(true)).collect();
            (flags, errors)
        };
        assert_eq!(set("string_check", Status::Ok).0, Vec::<&str>::new());
        let (flags, errors) = set("python", Status::PluginError);
        assert_eq!(flags, ["python_grader_runtime_error"]);
        assert_eq!(errors["python_grader_runtime_error_details"], "what went wrong");
        let (flags, errors) = set("score_model", Status::JudgeError);
        assert_eq!(flags, ["model_grader_server_error"]);
        assert_eq!(errors["model_grader_server_error_details"], "what went wrong");
        assert_eq!(set("label_model", Status::PluginError).0, ["model_grader_parse_error"]);
        assert_eq!(set("string_check", Status::InvalidInput).0, ["invalid_variable_error"]);
        assert_eq!(set("multi", Status::Timeout).0, ["unresponsive_reward_error"]);
        assert_eq!(set("multi", Status::PluginError).0, ["other_error"]);
        assert_eq!(set("python", Status::OutOfMemory).0, ["other_error"]);
    }

    #[test]
    fn the_item_is_the_rollouts_metadata_and_must_be_an_object() {
        let Ok(Item::Rollout(r)) = rollout("Paris".into(), &json!({"reference_answer": "Paris", "n": 1})) else { panic!("refused") };
        assert_eq!((r.id.as_str(), r.completion(), r.metadata.as_str()), (SAMPLE_ID, "Paris", r#"{"n":1,"reference_answer":"Paris"}"#));
        let Ok(Item::Rollout(r)) = rollout("x".into(), &Value::Null) else { panic!("refused") };
        assert_eq!(r.metadata, "{}");
        assert_eq!(rollout("x".into(), &json!(["a"])).err().unwrap(), "`item` must be a JSON object (the data set row), not a list");
    }
}
