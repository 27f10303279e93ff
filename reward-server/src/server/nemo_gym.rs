//! NeMo Gym's resources-server `/verify` contract.
//!
//! Request (`BaseVerifyRequest`): `{responses_create_params, response, ...task fields}`.
//! `responses_create_params` is what the policy was asked (OpenAI Responses API create params:
//! `input` as text or a list of `{role, content}` items, `instructions`), `response` what it
//! answered (a Responses API object: `output` items). The other fields are the task's, as the
//! dataset row gave them (`expected_answer`, `ground_truth`, ...).
//!
//! - The prompt: `instructions` as a `system` turn, then every `input` item that has a role, its
//!   text parts joined. Items without a role (tool calls, their outputs) are left out.
//! - The answer: the text of every `output_text` part of the `message` items of `response.output`,
//!   in order and joined, as the OpenAI SDK's `Response.output_text` reads it. A response with no
//!   message (only tool calls) is an empty answer, scored as the reward scores one.
//! - The reference: the task fields, as one JSON object (none when there are none). Fields whose
//!   name starts with `_` (NeMo Gym's own, such as `_ng_rollout_id`) are not task fields.
//!
//! Response (`BaseVerifyResponse`, and `BaseMultiRewardVerifyResponse` for `reward_components`):
//! the request, every field as sent, plus `reward` (the score; 0 when the rollout failed),
//! `reward_components` (the reward's metrics), and `mask_sample`: true when the rollout could not
//! be scored, with `failure_kind` (`reward_server:<status>`, NeMo Gym's namespaced form) and
//! `failure_reason` (the error), so a failure is left out of training instead of counting as a
//! wrong answer. A reward whose `on_error` is `fail` answers a failed rollout with 422 instead.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ScoreError, from_json};
use crate::engine::{Item, Message, Rollout, Scored};

/// The id of the one rollout of a request.
pub const VERIFY_ID: &str = "verify";

/// The fields of a request the contract defines; every other field is the task's.
const CONTRACT_FIELDS: [&str; 2] = ["responses_create_params", "response"];

#[derive(Deserialize)]
struct CreateParams {
    #[serde(default)]
    input: Option<Input>,
    #[serde(default)]
    instructions: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

#[derive(Deserialize)]
struct InputItem {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct ResponseObject {
    #[serde(default)]
    output: Vec<OutputItem>,
}

#[derive(Deserialize)]
struct OutputItem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    content: Option<Content>,
}

impl Content {
    /// The text: a plain string, or the text of the parts whose type is one of `parts_of`, joined.
    fn text(&self, parts_of: &[&str]) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => {
                parts.iter().filter(|p| parts_of.contains(&p.kind.as_str())).filter_map(|p| p.text.as_deref()).collect()
            }
        }
    }
}

/// Reads a request body into its fields as sent (echoed in the answer) and the one item they
/// make. A body that is not a JSON object is the caller's error; a body without the contract's
/// fields, or with fields of the wrong shape, is one rollout answered `INVALID_INPUT` naming the
/// field.
pub fn parse_request(body: &str) -> Result<(Map<String, Value>, Item), ScoreError> {
    let fields: Map<String, Value> = from_json(body)?;
    let item = match rollout(&fields) {
        Ok(rollout) => Item::Rollout(rollout),
        Err(message) => Item::invalid(VERIFY_ID.into(), message),
    };
    Ok((fields, item))
}

fn rollout(fields: &Map<String, Value>) -> Result<Rollout, String> {
    let field = |name: &str| fields.get(name).ok_or_else(|| format!("`{name}` is missing"));
    let params = CreateParams::deserialize(field("responses_create_params")?).map_err(|e| format!("responses_create_params: {e}"))?;
    let response = ResponseObject::deserialize(field("response")?).map_err(|e| format!("response: {e}"))?;

    let mut messages: Vec<Message> = params.instructions.map(|text| Message { role: "system".into(), content: text }).into_iter().collect();
    match params.input {
        Some(Input::Text(text)) => messages.push(Message { role: "user".into(), content: text }),
        Some(Input::Items(items)) => messages.extend(items.into_iter().filter_map(|item| {
            let content = item.content.map_or_else(String::new, |c| c.text(&["input_text", "output_text", "text"]));
            item.role.map(|role| Message { role, content })
        })),
        None => {}
    }
    let answer: String = response
        .output
        .iter()
        .filter(|o| o.kind == "message")
        .filter_map(|o| o.content.as_ref())
        .map(|c| c.text(&["output_text"]))
        .collect();
    let task: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !CONTRACT_FIELDS.contains(&k.as_str()) && !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let reference = if task.is_empty() { String::new() } else { Value::Object(task).to_string() };
    // The answer is the last turn, after the prompt (which may hold earlier answers of a
    // multi-turn conversation).
    messages.push(Message { role: "assistant".into(), content: answer });
    Rollout::new(VERIFY_ID.into(), messages, None, reference, String::new()).map_err(|e| e.to_string())
}

/// The answer: the request's fields and the verdict on its rollout.
pub fn response(mut fields: Map<String, Value>, scored: &Scored) -> Map<String, Value> {
    let components: Map<String, Value> = scored.metrics.iter().map(|m| (m.name.clone(), Value::from(m.value))).collect();
    fields.insert("reward".into(), Value::from(scored.score_or_zero()));
    fields.insert("reward_components".into(), Value::Object(components));
    let failed = scored.error_flag() > 0.0;
    fields.insert("mask_sample".into(), Value::Bool(failed));
    if failed {
        fields.insert("failure_kind".into(), Value::String(format!("reward_server:{}", scored.status.as_str().to_ascii_lowercase())));
        fields.insert("failure_reason".into(), Value::String(scored.error.clone().unwrap_or_default()));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as NeMo Gym's simple agent sends it for a math task.
    fn math_request(output: Value) -> String {
        serde_json::json!({
            "responses_create_params": {
                "instructions": "Put the final answer in \\boxed{}.",
                "input": [{"role": "user", "content": [{"type": "input_text", "text": "What is 6 * 7?"}]}],
                "temperature": 1.0
            },
            "response": {"id": "resp_1", "object": "response", "output": output, "model": "policy"},
            "expected_answer": "42",
            "_ng_rollout_id": "r-17"
        })
        .to_string()
    }

    fn rollout_of(body: &str) -> Rollout {
        match parse_request(body).unwrap().1 {
            Item::Rollout(r) => r,
            Item::Rejected { failure, .. } => panic!("rejected: {}", failure.message),
        }
    }

    #[test]
    fn prompt_answer_and_task_fields() {
        let output = serde_json::json!([
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "6 times 7"}]},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "It is ", "annotations": []},
                {"type": "output_text", "text": "\\boxed{42}", "annotations": []}
            ]}
        ]);
        let r = rollout_of(&math_request(output));
        let turns: Vec<(&str, &str)> = r.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        assert_eq!(
            turns,
            [("system", "Put the final answer in \\boxed{}."), ("user", "What is 6 * 7?"), ("assistant", "It is \\boxed{42}")]
        );
        assert_eq!(r.reference, r#"{"expected_answer":"42"}"#, "task fields only: not the contract's, not `_ng_` ones");
    }

    #[test]
    fn text_input_tool_calls_and_multi_turn() {
        let body = serde_json::json!({
            "responses_create_params": {"input": [
                {"role": "user", "content": "Weather in SF?"},
                {"type": "function_call", "name": "get_weather", "arguments": "{}", "call_id": "c1"},
                {"type": "function_call_output", "call_id": "c1", "output": "cold"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]}
            ]},
            "response": {"output": [
                {"type": "function_call", "name": "get_weather", "arguments": "{}", "call_id": "c2"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "It is cold."}]}
            ]}
        })
        .to_string();
        let r = rollout_of(&body);
        let turns: Vec<(&str, &str)> = r.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        assert_eq!(turns, [("user", "Weather in SF?"), ("assistant", "Checking."), ("assistant", "It is cold.")]);
        assert_eq!(r.reference, "", "no task fields: no reference");

        let only_text = serde_json::json!({"responses_create_params": {"input": "hi"}, "response": {"output": []}}).to_string();
        let r = rollout_of(&only_text);
        assert_eq!((r.messages[0].content.as_str(), r.completion()), ("hi", ""), "no message output: an empty answer");
    }

    #[test]
    fn a_malformed_request_is_one_invalid_rollout_naming_the_field() {
        for (body, want) in [
            (serde_json::json!({"response": {"output": []}}), "`responses_create_params` is missing"),
            (serde_json::json!({"responses_create_params": {}, "response": {"output": "text"}}), "response: "),
            (serde_json::json!({"responses_create_params": {"input": 7}, "response": {}}), "responses_create_params: "),
        ] {
            let Item::Rejected { id, failure } = parse_request(&body.to_string()).unwrap().1 else { panic!("{body} accepted") };
            assert_eq!(id, VERIFY_ID);
            assert!(failure.message.starts_with(want), "{body}: {}", failure.message);
        }
        assert!(parse_request("[1, 2]").is_err(), "not an object: the request fails");
        assert!(parse_request("{\"responses_create_params\": ").is_err(), "truncated: the request fails");
    }
}
