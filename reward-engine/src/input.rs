//! Rollouts as callers write them, converted to the engine's [`Rollout`].
//!
//! Two shapes are accepted, told apart by their fields:
//! - the **Nova RFT** shape: `{id, messages: [{role, content}], reference_answer}`, the generated
//!   answer last (role `assistant` or `nova_assistant`), `content` a string or a list of
//!   `{type: "text", text}` parts, and the reference possibly nested under `metadata`;
//! - the **plain** shape: `{id?, prompt, completion, reference?}`.
//!
//! Either shape may name the rollout's GRPO `group` (a string or a number; see [`crate::group`]).
//! Everything not consumed travels to the plugin as `metadata`.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{Message, Rollout};

/// Why a record is not a rollout; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn err(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Reads a request body (or any JSON text a caller sent) as `T`; the error says whether the text
/// was cut short or is not JSON of the expected shape, with serde's line and column.
pub fn from_body<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, InputError> {
    serde_json::from_str(text).map_err(|e| {
        let what = if e.is_eof() { "is truncated JSON" } else { "is not valid JSON for this endpoint" };
        err(format!("request body {what}: {e}"))
    })
}

/// The id a record carries, if any: used to label a record even when it fails to convert.
pub fn record_id(record: &Value) -> Option<String> {
    match record.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A record that is not a rollout: the id it carried, if any, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The record's own id, when it has a usable one.
    pub id: Option<String>,
    /// What is wrong, naming the field.
    pub error: InputError,
}

/// Converts one record given as JSON text: the path request bodies and JSONL lines take.
///
/// Gives exactly what parsing the text to a `Value` and calling [`to_rollout`] gives, but reads
/// the messages (the bulk of a rollout) straight into the rollout instead of building a `Value`
/// tree for them first. A record that reader does not take as it is (a field of an unexpected
/// type, a duplicate key, ...) is read again as a `Value`, whose errors name the field.
pub fn parse_record(raw: &str, fallback_id: &str) -> Result<Rollout, Rejection> {
    if let Ok(Record(fields)) = serde_json::from_str::<Record>(raw)
        && let Ok(rollout) = fields.into_rollout(|| fallback_id.to_owned())
    {
        return Ok(rollout);
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| Rejection { id: None, error: err(format!("not valid JSON: {e}")) })?;
    let id = record_id(&value);
    to_rollout(value, fallback_id).map_err(|error| Rejection { id, error })
}

/// A JSON array of records read in one pass by the direct reader of [`parse_record`], record
/// after record, with no split into records first (a request body is scanned once). It fails to
/// deserialize when any record is not read as it stands; the caller then splits the array and
/// reads each record with [`parse_record`], so that every error names its record and the good
/// records are still scored.
pub struct Records(Vec<Record>);

impl<'de> Deserialize<'de> for Records {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Record>::deserialize(d).map(Records)
    }
}

impl Records {
    /// The rollouts, or `None` when a record is not one (the caller reads record by record). A
    /// record without an id is called `{fallback}-{i}`, `i` its index.
    pub fn into_rollouts(self, fallback: &str) -> Option<Vec<Rollout>> {
        self.0.into_iter().enumerate().map(|(i, Record(fields))| fields.into_rollout(|| format!("{fallback}-{i}")).ok()).collect()
    }
}

/// The number of elements of a JSON array, counted without decoding them (each is skipped as
/// `IgnoredAny`: nothing is allocated per element). Doors count a request's records with it
/// before reading any, so a body of a million tiny records is refused for its count at the cost
/// of one scan, not after a million rollouts were built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// [`Records`] from a JSON array's text: the rollouts, or `None` when the text is not such an
/// array or a record is not a rollout as it stands.
pub fn parse_records(array: &str, fallback: &str) -> Option<Vec<Rollout>> {
    serde_json::from_str::<Records>(array).ok()?.into_rollouts(fallback)
}

/// Converts one JSON record into a rollout. `fallback_id` is used when the record has no `id`.
pub fn to_rollout(record: Value, fallback_id: &str) -> Result<Rollout, InputError> {
    let Value::Object(obj) = record else {
        return Err(err(format!("expected a JSON object, found {}", json_kind(&record))));
    };
    Fields::from_map(obj)?.into_rollout(|| fallback_id.to_owned())
}

/// A record's fields, read and typed, before its shape is decided. Both readers (the direct one
/// of [`parse_record`] and the `Value` one of [`to_rollout`]) produce this; one conversion
/// follows.
#[derive(Default)]
struct Fields {
    id: Option<Value>,
    /// Present: the Nova shape.
    messages: Option<Vec<Message>>,
    completion: Option<Value>,
    prompt: Option<Value>,
    reference: Option<Value>,
    reference_answer: Option<Value>,
    group: Option<Value>,
    /// Everything else: the rollout's metadata.
    rest: Map<String, Value>,
}

impl Fields {
    /// Takes the fields out of a parsed object, converting the messages (errors name the item).
    fn from_map(mut obj: Map<String, Value>) -> Result<Fields, InputError> {
        let messages = match obj.remove("messages") {
            None => None,
            Some(Value::Array(raw)) => Some(
                raw.into_iter()
                    .enumerate()
                    .map(|(i, m)| message(m).map_err(|e| err(format!("messages[{i}]: {}", e.0))))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(err("`messages` must be a list of {role, content}")),
        };
        Ok(Fields {
            id: obj.remove("id"),
            messages,
            completion: obj.remove("completion"),
            prompt: obj.remove("prompt"),
            reference: obj.remove("reference"),
            reference_answer: obj.remove("reference_answer"),
            group: obj.remove("group"),
            rest: obj,
        })
    }

    /// The rollout: the Nova shape when there are messages, else the plain shape. `fallback_id`
    /// names a record without an id.
    fn into_rollout(mut self, fallback_id: impl FnOnce() -> String) -> Result<Rollout, InputError> {
        let id = match self.id.take() {
            None | Some(Value::Null) => fallback_id(),
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => return Err(err(format!("`id` must be a string, found {}", json_kind(&other)))),
        };
        let group = match self.group.take() {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => return Err(err(format!("`group` must be a string or a number, found {}", json_kind(&other)))),
        };
        let rollout = match self.messages.take() {
            Some(messages) => self.nova(id, messages),
            None if self.completion.is_some() => self.plain(id),
            None => Err(err("expected `messages` (Nova RFT shape) or `completion` (plain shape)")),
        };
        rollout.map(|r| r.in_group(group))
    }

    fn nova(mut self, id: String, messages: Vec<Message>) -> Result<Rollout, InputError> {
        // The plain shape's fields are the Nova shape's metadata.
        for (key, value) in [("completion", self.completion), ("prompt", self.prompt), ("reference", self.reference)] {
            if let Some(value) = value {
                self.rest.insert(key.to_owned(), value);
            }
        }
        let reference = match self.reference_answer {
            Some(r) => r,
            None => match self.rest.get_mut("metadata") {
                Some(Value::Object(meta)) => meta.remove("reference_answer").unwrap_or(Value::Null),
                _ => Value::Null,
            },
        };
        Rollout::new(id, messages, None, reference.to_string(), Value::Object(self.rest).to_string()).map_err(|e| err(e.to_string()))
    }

    fn plain(mut self, id: String) -> Result<Rollout, InputError> {
        let completion = match self.completion.take() {
            Some(Value::String(s)) => s,
            Some(other) => return Err(err(format!("`completion` must be a string, found {}", json_kind(&other)))),
            None => unreachable!("checked by the caller"),
        };
        let prompt = match self.prompt.take() {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(Message { role: "user".into(), content: p }),
            Some(other) => return Err(err(format!("`prompt` must be a string, found {}", json_kind(&other)))),
        };
        // The Nova shape's field is the plain shape's metadata.
        if let Some(value) = self.reference_answer.take() {
            self.rest.insert("reference_answer".to_owned(), value);
        }
        let reference = self.reference.take().unwrap_or(Value::Null);
        Rollout::new(id, prompt.into_iter().collect(), Some(completion), reference.to_string(), Value::Object(self.rest).to_string())
            .map_err(|e| err(e.to_string()))
    }
}

fn message(m: Value) -> Result<Message, InputError> {
    let Value::Object(mut m) = m else {
        return Err(err(format!("expected {{role, content}}, found {}", json_kind(&m))));
    };
    let role = match m.remove("role") {
        Some(Value::String(r)) => r,
        Some(other) => return Err(err(format!("`role` must be a string, found {}", json_kind(&other)))),
        None => return Err(err("missing `role`")),
    };
    let content = match m.remove("content") {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => String::new(),
        Some(Value::Array(parts)) => join_parts(parts)?,
        Some(other) => return Err(err(format!("`content` must be a string or a list of parts, found {}", json_kind(&other)))),
    };
    Ok(Message { role, content })
}

/// The direct reader of [`parse_record`]: a record's fields with its messages typed. It fails on
/// anything [`Fields::from_map`] would have to explain (the `Value` reader then does).
struct Record(Fields);

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Record;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a rollout object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
                let mut f = Fields::default();
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        "messages" => {
                            let messages: Vec<MessageIn> = map.next_value()?;
                            if f.messages.replace(messages.into_iter().map(|m| m.0).collect()).is_some() {
                                return Err(de::Error::duplicate_field("messages"));
                            }
                            continue;
                        }
                        "id" => &mut f.id,
                        "completion" => &mut f.completion,
                        "prompt" => &mut f.prompt,
                        "reference" => &mut f.reference,
                        "reference_answer" => &mut f.reference_answer,
                        "group" => &mut f.group,
                        _ => {
                            let value = map.next_value()?;
                            f.rest.insert(key, value);
                            continue;
                        }
                    };
                    if slot.replace(map.next_value()?).is_some() {
                        return Err(de::Error::custom("a duplicate key"));
                    }
                }
                Ok(Record(f))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One message, read as [`message`] reads it (other keys read and dropped).
struct MessageIn(Message);

impl<'de> Deserialize<'de> for MessageIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as a map only: a derived struct also reads a list by position (`["assistant",
        // "4"]`), which the `Value` reader refuses.
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = MessageIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("{role, content}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MessageIn, A::Error> {
                let (mut role, mut content) = (None::<String>, None::<Content>);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "role" if role.is_some() => return Err(de::Error::duplicate_field("role")),
                        "role" => role = Some(map.next_value()?),
                        "content" if content.is_some() => return Err(de::Error::duplicate_field("content")),
                        "content" => content = Some(map.next_value()?),
                        // Read, not skipped: serde_json skips a string without checking its
                        // escapes, and the `Value` reader refuses a lone surrogate (`"\ud800"`).
                        _ => map.next_value::<Checked>().map(drop)?,
                    }
                }
                let role = role.ok_or_else(|| de::Error::missing_field("role"))?;
                Ok(MessageIn(Message { role, content: content.unwrap_or_default().0 }))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Any JSON value, read through and dropped: unlike `IgnoredAny`, its strings are decoded, so
/// what the `Value` reader refuses is refused here too, with nothing kept.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Checked;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<String, Checked>()?.is_some() {}
                Ok(Checked)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A message's content: a string, null or a list of parts (joined by [`join_parts`]).
#[derive(Default)]
struct Content(String);

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, null or a list of parts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Content, E> {
                Ok(Content(s))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                join_parts(parts).map(Content).map_err(|e| de::Error::custom(e.0))
            }
        }
        d.deserialize_any(Visit)
    }
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
            other => return Err(err(format!("content[{i}] must be a part object, found {}", json_kind(other)))),
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

/// What kind of JSON value `v` is, as an error message says it: `null`, `a boolean`, `a number`,
/// `a string`, `a list`, `an object`.
pub fn json_kind(v: &Value) -> &'static str {
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
        assert_eq!(r.completion(), "4");
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
        assert_eq!(r.completion(), "first\nsecond");
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
    fn a_group_is_read_from_either_shape_and_kept_out_of_the_metadata() {
        let plain = to_rollout(json!({"completion": "4", "group": "p7", "k": 1}), "l").unwrap();
        assert_eq!(plain.group.as_deref(), Some("p7"));
        assert_eq!(serde_json::from_str::<Value>(&plain.metadata).unwrap(), json!({"k": 1}));
        let nova = to_rollout(json!({"messages": [{"role": "assistant", "content": "4"}], "group": 3}), "l").unwrap();
        assert_eq!(nova.group.as_deref(), Some("3"));
        assert_eq!(to_rollout(json!({"completion": "4", "group": null}), "l").unwrap().group, None);
        let bad = to_rollout(json!({"completion": "4", "group": {"a": 1}}), "l").unwrap_err();
        assert_eq!(bad.0, "`group` must be a string or a number, found an object");
    }

    /// The direct reader and the `Value` reader agree on every record, rollout or not, including
    /// the ones the direct reader hands over (duplicate keys, wrong types, parts, nesting).
    #[test]
    fn parse_record_agrees_with_to_rollout() {
        let records = [
            r#"{"id": "a", "messages": [{"role": "user", "content": "q\n\"x\""}, {"role": "assistant", "content": "4", "extra": 1}], "reference_answer": {"answer": "4"}, "task": "m"}"#,
            r#"{"id": 7.5, "messages": [{"role": "nova_assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}, "b"]}], "metadata": {"reference_answer": 1, "k": [1, 2]}}"#,
            r#"{"messages": [{"role": "assistant", "content": null}], "completion": 5, "prompt": {"x": 1}, "reference": "r", "zz": null}"#,
            r#"{"id": "d", "messages": [{"role": "assistant", "content": "x"}], "id": "e"}"#,
            r#"{"id": "f", "messages": [{"role": "assistant", "content": "x"}], "k": 1, "k": 2}"#,
            r#"{"prompt": "p", "completion": "c", "reference": {"a": [1, 2.50]}, "reference_answer": 3, "other": "o"}"#,
            r#"{"completion": "c", "prompt": null}"#,
            r#"{"id": null, "completion": "c", "prompt": 3}"#,
            r#"{"id": true, "completion": "c"}"#,
            r#"{"messages": [{"content": "no role"}]}"#,
            r#"{"messages": [{"role": "assistant", "content": [{"type": "text"}]}]}"#,
            r#"{"messages": [{"role": "user", "content": "q"}]}"#,
            r#"{"messages": []}"#,
            r#"{"messages": {"role": "assistant"}}"#,
            r#"{"messages": [{"role": "assistant", "content": "x"}], "messages": [{"role": "assistant", "content": "y"}]}"#,
            r#"{"completion": ["c"]}"#,
            r#"{"nothing": 1}"#,
            r#"[1, 2]"#,
            r#""text""#,
            r#"{"completion": "\u00e9\ud83d\ude00"}"#,
            r#"{"id": "g", "completion": "c", "group": "p7"}"#,
            r#"{"id": "h", "messages": [{"role": "assistant", "content": "x"}], "group": 12}"#,
            r#"{"id": "i", "completion": "c", "group": ["p7"]}"#,
            r#"{"id": "j", "completion": "c", "group": "a", "group": "b"}"#,
        ];
        for text in records {
            let value: Value = serde_json::from_str(text).unwrap();
            let id = record_id(&value);
            let expected = to_rollout(value, "fb").map_err(|error| Rejection { id, error });
            assert_eq!(parse_record(text, "fb"), expected, "{text}");
        }
        // The common records do take the direct way.
        for text in [records[0], records[1], records[5]] {
            assert!(serde_json::from_str::<Record>(text).is_ok_and(|Record(f)| f.into_rollout(|| "fb".into()).is_ok()), "{text}");
        }
        // A whole array in one pass: the same rollouts, ids by index; any record that is not a
        // rollout as it stands (or a text that is no array of objects) hands the array back.
        let array = |texts: &[&str]| format!("[{}]", texts.join(",\n "));
        let good = [records[0], records[1], records[5], records[6], records[19]];
        let expected: Vec<Rollout> = good.iter().enumerate().map(|(i, text)| parse_record(text, &format!("fb-{i}")).unwrap()).collect();
        assert_eq!(parse_records(&array(&good), "fb"), Some(expected));
        assert_eq!(parse_records(&array(&[]), "fb"), Some(vec![]));
        for bad in [records[3], records[8], records[11], records[17], records[18]] {
            assert_eq!(parse_records(&array(&[records[0], bad, records[1]]), "fb"), None, "{bad}");
        }
        assert_eq!(parse_records(records[0], "fb"), None);
        assert_eq!(parse_records(&array(&good)[..40], "fb"), None);
        let bad = parse_record("{\"completion\": \"c\"", "fb").unwrap_err();
        assert!(bad.id.is_none() && bad.error.0.starts_with("not valid JSON: EOF while parsing"), "{bad:?}");
    }

    #[test]
    fn count_skips_elements_without_reading_them() {
        let Count(n) = serde_json::from_str(r#"[{"id": "a", "deep": [[[1]]]}, 2, "x", null, []]"#).unwrap();
        assert_eq!(n, 5);
        assert_eq!(serde_json::from_str::<Count>("[]").unwrap(), Count(0));
        assert!(serde_json::from_str::<Count>("[1, 2").unwrap_err().is_eof());
        assert!(serde_json::from_str::<Count>("{}").is_err());
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
