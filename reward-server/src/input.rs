//! Rollouts as callers write them, converted to the engine's [`Rollout`].
//!
//! Two shapes are accepted, told apart by their fields:
//! - the **Nova RFT** shape: `{id, messages: [{role, content}], reference_answer}`, the generated
//!   answer last (role `assistant` or `nova_assistant`), `content` a string or a list of
//!   `{type: "text", text}` parts, and the reference possibly nested under `metadata`;
//! - the **plain** shape: `{id?, prompt, completion, reference?}`.
//!
//! Everything not consumed travels to the plugin as `metadata`.

use serde_json::{Map, Value};

use crate::engine::{Message, Rollout};

/// Roles that mark the generated answer.
pub const ANSWER_ROLES: [&str; 2] = ["assistant", "nova_assistant"];

/// Why a record is not a rollout; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn err(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// The id a record carries, if any: used to label a record even when it fails to convert.
pub fn record_id(record: &Value) -> Option<String> {
    match record.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Converts one JSON record into a rollout. `fallback_id` is used when the record has no `id`.
pub fn to_rollout(record: Value, fallback_id: &str) -> Result<Rollout, InputError> {
    let Value::Object(mut obj) = record else {
        return Err(err(format!("expected a JSON object, found {}", kind(&record))));
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => fallback_id.to_owned(),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(err(format!("`id` must be a string, found {}", kind(&other)))),
    };
    if obj.contains_key("messages") {
        nova(id, obj)
    } else if obj.contains_key("completion") {
        plain(id, obj)
    } else {
        Err(err("expected `messages` (Nova RFT shape) or `completion` (plain shape)"))
    }
}

fn nova(id: String, mut obj: Map<String, Value>) -> Result<Rollout, InputError> {
    let Some(Value::Array(raw)) = obj.remove("messages") else {
        return Err(err("`messages` must be a list of {role, content}"));
    };
    let mut messages = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        messages.push(message(m).map_err(|e| err(format!("messages[{i}]: {}", e.0)))?);
    }
    let Some(last) = messages.last() else {
        return Err(err("`messages` is empty: the generated answer must be its last item"));
    };
    if !ANSWER_ROLES.contains(&last.role.as_str()) {
        return Err(err(format!(
            "the last message has role `{}`; the generated answer (role `assistant` or `nova_assistant`) must come last",
            last.role
        )));
    }
    let completion = last.content.clone();
    let reference = match obj.remove("reference_answer") {
        Some(r) => r,
        None => match obj.get_mut("metadata") {
            Some(Value::Object(meta)) => meta.remove("reference_answer").unwrap_or(Value::Null),
            _ => Value::Null,
        },
    };
    Ok(Rollout { id, messages, completion, reference: reference.to_string(), metadata: Value::Object(obj).to_string() })
}

fn plain(id: String, mut obj: Map<String, Value>) -> Result<Rollout, InputError> {
    let completion = match obj.remove("completion") {
        Some(Value::String(s)) => s,
        Some(other) => return Err(err(format!("`completion` must be a string, found {}", kind(&other)))),
        None => unreachable!("checked by the caller"),
    };
    let mut messages = Vec::with_capacity(2);
    match obj.remove("prompt") {
        None | Some(Value::Null) => {}
        Some(Value::String(p)) => messages.push(Message { role: "user".into(), content: p }),
        Some(other) => return Err(err(format!("`prompt` must be a string, found {}", kind(&other)))),
    }
    messages.push(Message { role: "assistant".into(), content: completion.clone() });
    let reference = obj.remove("reference").unwrap_or(Value::Null);
    Ok(Rollout { id, messages, completion, reference: reference.to_string(), metadata: Value::Object(obj).to_string() })
}

fn message(m: Value) -> Result<Message, InputError> {
    let Value::Object(mut m) = m else {
        return Err(err(format!("expected {{role, content}}, found {}", kind(&m))));
    };
    let role = match m.remove("role") {
        Some(Value::String(r)) => r,
        Some(other) => return Err(err(format!("`role` must be a string, found {}", kind(&other)))),
        None => return Err(err("missing `role`")),
    };
    let content = match m.remove("content") {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(Value::Array(parts)) => join_parts(parts)?,
        Some(other) => return Err(err(format!("`content` must be a string or a list of parts, found {}", kind(&other)))),
    };
    Ok(Message { role, content })
}

/// Joins `[{type: "text", text}]` parts with newlines; non-text parts (images, ...) are skipped.
fn join_parts(parts: Vec<Value>) -> Result<String, InputError> {
    let mut out = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        let text = match &part {
            Value::String(s) => Some(s.as_str()),
            Value::Object(p) => match (p.get("type").and_then(Value::as_str), p.get("text")) {
                (Some("text") | None, Some(Value::String(t))) => Some(t.as_str()),
                (Some("text"), _) => return Err(err(format!("content[{i}] is a text part without a string `text`"))),
                _ => None,
            },
            other => return Err(err(format!("content[{i}] must be a part object, found {}", kind(other)))),
        };
        if let Some(t) = text {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(t);
        }
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nova_with_string_content() {
        let r = to_rollout(
            json!({"id": "a1", "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
                   "reference_answer": {"answer": "4"}, "task": "math"}),
            "line-1",
        )
        .unwrap();
        assert_eq!(r.id, "a1");
        assert_eq!(r.completion, "4");
        assert_eq!(r.messages.len(), 2);
        assert_eq!(serde_json::from_str::<Value>(&r.reference).unwrap(), json!({"answer": "4"}));
        assert_eq!(serde_json::from_str::<Value>(&r.metadata).unwrap(), json!({"task": "math"}));
    }

    #[test]
    fn nova_assistant_role_parts_and_nested_reference() {
        let r = to_rollout(
            json!({"id": "b", "messages": [
                {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
                {"role": "nova_assistant", "content": [{"type": "text", "text": "first"}, {"type": "image", "url": "x"}, {"type": "text", "text": "second"}]}],
                "metadata": {"reference_answer": 12.5, "source": "finqa"}}),
            "line-1",
        )
        .unwrap();
        assert_eq!(r.completion, "first\nsecond");
        assert_eq!(r.reference, "12.5");
        assert_eq!(serde_json::from_str::<Value>(&r.metadata).unwrap(), json!({"metadata": {"source": "finqa"}}));
    }

    #[test]
    fn plain_shape_and_fallback_id() {
        let r = to_rollout(json!({"prompt": "q", "completion": "a", "reference": "a"}), "line-7").unwrap();
        assert_eq!(r.id, "line-7");
        assert_eq!(r.messages[0], Message { role: "user".into(), content: "q".into() });
        assert_eq!(r.reference, "\"a\"");
        let numeric_id = to_rollout(json!({"id": 42, "completion": "a"}), "line-1").unwrap();
        assert_eq!(numeric_id.id, "42");
        assert_eq!(numeric_id.reference, "null");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |v: Value| to_rollout(v, "x").unwrap_err().0;
        assert!(e(json!([1])).contains("expected a JSON object, found a list"));
        assert!(e(json!({"id": "a"})).contains("expected `messages`"));
        assert!(e(json!({"messages": []})).contains("`messages` is empty"));
        assert!(e(json!({"messages": [{"role": "user", "content": "hi"}]})).contains("last message has role `user`"));
        assert!(e(json!({"messages": [{"content": "hi"}]})).contains("messages[0]: missing `role`"));
        assert!(e(json!({"messages": [{"role": "assistant", "content": 3}]})).contains("`content` must be a string"));
        assert!(e(json!({"completion": 5})).contains("`completion` must be a string, found a number"));
        assert!(e(json!({"id": {"x": 1}, "completion": "a"})).contains("`id` must be a string"));
        assert!(e(json!({"messages": [{"role": "assistant", "content": [{"type": "text"}]}]})).contains("content[0] is a text part"));
    }
}
