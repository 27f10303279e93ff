//! slime's remote reward (`--rm-type remote_rm --rm-url URL`).
//!
//! slime posts one sample per request, `{prompt, response, label}`: `prompt` is the prompt text
//! (the chat template already applied) or a list of `{role, content}` messages, `response` the
//! generated answer, `label` the dataset's label (any JSON; null or missing means none). It reads
//! the answer body as the sample's reward: here a bare number, the score (0 when the rollout
//! failed, as the contract has no "no score"). With `?detail=true` the answer is an object instead,
//! `{<metric>: value, ..., "reward": score, "reward_error": 0 | 1}`, for slime's `--reward-key
//! reward`, so the metrics and the failure marker reach custom rollout code and the logs.
//!
//! slime sends no id: the rollout is `sample`. A reward whose `on_error` is `fail` answers a failed
//! rollout with 422, which slime retries and then raises.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::engine::nova::ERROR_METRIC;
use crate::engine::{Item, Message, Rollout, Scored};

/// The id of the one rollout of a request.
pub const SAMPLE_ID: &str = "sample";

/// The request body.
#[derive(Debug, Deserialize)]
pub struct Request {
    /// slime's `Sample.prompt`: text, or a conversation (read by [`parse_request`], so a prompt
    /// of another shape is that sample's `INVALID_INPUT`, named).
    prompt: Value,
    response: String,
    #[serde(default)]
    label: Value,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    content: String,
}

/// The query string of the door.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Answer an object with the metrics and the failure marker instead of a bare number.
    #[serde(default)]
    pub detail: bool,
}

/// The request as the one item it holds.
pub fn parse_request(req: Request) -> Item {
    let messages = match req.prompt {
        Value::String(text) => vec![Message { role: "user".into(), content: text }],
        Value::Array(turns) => match turns.into_iter().map(serde_json::from_value::<ChatMessage>).collect::<Result<Vec<_>, _>>() {
            Ok(turns) => turns.into_iter().map(|m| Message { role: m.role, content: m.content }).collect(),
            Err(e) => {
                return Item::invalid(SAMPLE_ID.into(), format!("prompt: a conversation is a list of {{role, content}} messages: {e}"));
            }
        },
        other => {
            return Item::invalid(
                SAMPLE_ID.into(),
                format!("prompt: expected text or a list of {{role, content}} messages, found {}", crate::input::json_kind(&other)),
            );
        }
    };
    let reference = if req.label.is_null() { String::new() } else { req.label.to_string() };
    match Rollout::new(SAMPLE_ID.into(), messages, Some(req.response), reference, String::new()) {
        Ok(rollout) => Item::Rollout(rollout),
        Err(e) => Item::invalid(SAMPLE_ID.into(), format!("prompt: {e}")),
    }
}

/// The answer for the scored sample: the score alone, or with `detail` its metrics too.
pub fn response(scored: &Scored, detail: bool) -> Value {
    let reward = Value::from(scored.score_or_zero());
    if !detail {
        return reward;
    }
    let mut fields: Map<String, Value> = scored.metrics.iter().map(|m| (m.name.clone(), Value::from(m.value))).collect();
    fields.insert("reward".into(), reward);
    fields.insert(ERROR_METRIC.into(), Value::from(scored.error_flag()));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(body: Value) -> Rollout {
        match parse_request(serde_json::from_value(body).unwrap()) {
            Item::Rollout(r) => r,
            Item::Rejected { failure, .. } => panic!("rejected: {}", failure.message),
        }
    }

    #[test]
    fn text_and_chat_prompts_and_labels() {
        let r = rollout(serde_json::json!({"prompt": "2+2?", "response": "4", "label": "4"}));
        assert_eq!((r.id.as_str(), r.completion(), r.reference.as_str()), (SAMPLE_ID, "4", "\"4\""));
        assert_eq!(r.messages[0], Message { role: "user".into(), content: "2+2?".into() });

        let r = rollout(serde_json::json!({
            "prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}],
            "response": "4",
            "label": {"answer": 4}
        }));
        assert_eq!(r.messages.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["system", "user", "assistant"]);
        assert_eq!(r.reference, r#"{"answer":4}"#);

        let r = rollout(serde_json::json!({"prompt": "p", "response": "a", "label": null}));
        assert_eq!(r.reference, "", "a null label is no reference");
        let r = rollout(serde_json::json!({"prompt": "p", "response": "a"}));
        assert_eq!(r.reference, "", "a missing label is no reference");
    }

    #[test]
    fn a_chat_prompt_that_ends_with_an_answer_is_refused_alone() {
        let req = serde_json::from_value(serde_json::json!({
            "prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "other"}],
            "response": "a"
        }))
        .unwrap();
        let Item::Rejected { id, failure } = parse_request(req) else { panic!("accepted") };
        assert_eq!(id, SAMPLE_ID);
        assert!(failure.message.starts_with("prompt: `completion` differs"), "{}", failure.message);

        for (prompt, want) in [
            (serde_json::json!(7), "prompt: expected text or a list of {role, content} messages, found a number"),
            (
                serde_json::json!([{"role": "user"}]),
                "prompt: a conversation is a list of {role, content} messages: missing field `content`",
            ),
        ] {
            let req = serde_json::from_value(serde_json::json!({"prompt": prompt, "response": "a"})).unwrap();
            let Item::Rejected { failure, .. } = parse_request(req) else { panic!("{prompt} accepted") };
            assert_eq!(failure.message, want);
        }
    }
}
