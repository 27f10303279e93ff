//! The Amazon Nova RFT reward-Lambda contract, exactly: what SageMaker HyperPod and Training Jobs
//! send to a reward Lambda, and what they expect back. The server's Lambda door and the Lambda
//! bridge both read and write it here.
//!
//! Request: a JSON array of `{id, messages, reference_answer | metadata.reference_answer, ...}`
//! (a single object also occurs). Response: a JSON array, one item per input, same order:
//! `{id, aggregate_reward_score, metrics_list: [{name, value, type: "Reward" | "Metric"}]}`.
//! The contract has no "no score": a rollout that failed is answered with the score its policy
//! gives (0 for `zero` and, for want of a null, for `abstain`) and a [`ERROR_METRIC`] of 1, so
//! failures show in the training metrics instead of hiding as zeros.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::input::{self, InputError};
use crate::request::Item;
use crate::{MetricKind, Scored};

pub use crate::types::ERROR_METRIC;

/// The id prefix of a record that carries none: the `i`th record is `item-{i}`.
pub const FALLBACK_ID: &str = "item";

/// Converts a Lambda event (the request body's text) into request items, in order. An array of
/// good records is read in one pass, straight from the body; one with a record that is not a
/// rollout is split and read record by record, so the error names the record. Items that are not
/// rollouts are kept as rejected items (answered `INVALID_INPUT`); only a body that is not JSON,
/// or not an array or object, fails.
pub fn parse_request(body: &str) -> Result<Vec<Item>, InputError> {
    if first_byte(body) == Some(b'[')
        && let Some(rollouts) = input::parse_records(body, FALLBACK_ID)
    {
        return Ok(rollouts.into_iter().map(Item::Rollout).collect());
    }
    Ok(Item::from_records(records(body)?, "item", FALLBACK_ID))
}

/// The records of a Lambda event, unread: the elements of an array, or the one object. A body
/// that is not JSON, or not an array or object, fails.
pub fn records(body: &str) -> Result<Vec<&RawValue>, InputError> {
    match first_byte(body) {
        Some(b'[') => input::from_body(body),
        Some(b'{') => Ok(vec![input::from_body::<&RawValue>(body)?]),
        first => {
            input::from_body::<&RawValue>(body)?;
            Err(InputError(format!(
                "expected a JSON array of rollouts (or one rollout object), found {}",
                match first {
                    Some(b'n') => "null",
                    Some(b't' | b'f') => "a boolean",
                    Some(b'"') => "a string",
                    _ => "a number",
                }
            )))
        }
    }
}

/// How many records a Lambda event holds, counted without reading them: the elements of an
/// array, 1 for a single object, 0 for anything else (which [`parse_request`] refuses). A body
/// that is not JSON is refused here, before anything is built from it.
pub fn count_request(body: &str) -> Result<usize, InputError> {
    match first_byte(body) {
        Some(b'[') => Ok(input::from_body::<input::Count>(body)?.0),
        Some(b'{') => Ok(1),
        _ => Ok(0),
    }
}

fn first_byte(body: &str) -> Option<u8> {
    body.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first().copied()
}

/// One item of the Lambda's answer. Borrows from the scores it is written from; read back (the
/// bridge reading a server's answer) it owns its text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NovaScore<'a> {
    /// The rollout's id, echoed.
    pub id: Cow<'a, str>,
    /// The reward; the failure policy's value for a rollout that failed.
    pub aggregate_reward_score: f64,
    /// The reward's components and diagnostics, and [`ERROR_METRIC`] when the rollout failed.
    pub metrics_list: Vec<NovaMetric<'a>>,
}

/// A metric of the Lambda's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NovaMetric<'a> {
    /// Its name.
    pub name: Cow<'a, str>,
    /// Its value.
    pub value: f64,
    /// Part of the reward or a diagnostic.
    #[serde(rename = "type")]
    pub kind: NovaKind,
}

/// The contract's metric types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NovaKind {
    /// Part of the reward.
    Reward,
    /// Diagnostic only.
    Metric,
}

impl From<MetricKind> for NovaKind {
    fn from(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Reward => NovaKind::Reward,
            MetricKind::Metric => NovaKind::Metric,
        }
    }
}

impl NovaMetric<'static> {
    /// The marker of a rollout that could not be scored: [`ERROR_METRIC`] = 1.
    pub fn error() -> Self {
        NovaMetric { name: Cow::Borrowed(ERROR_METRIC), value: 1.0, kind: NovaKind::Metric }
    }
}

impl NovaScore<'_> {
    /// The answer for a rollout nothing could score (the server unreachable, no time left): 0,
    /// with the error marker.
    pub fn failed(id: String) -> NovaScore<'static> {
        NovaScore { id: Cow::Owned(id), aggregate_reward_score: 0.0, metrics_list: vec![NovaMetric::error()] }
    }

    /// The same item, owning its text (to outlive the scores it was written from).
    pub fn into_owned(self) -> NovaScore<'static> {
        NovaScore {
            id: Cow::Owned(self.id.into_owned()),
            aggregate_reward_score: self.aggregate_reward_score,
            metrics_list: self
                .metrics_list
                .into_iter()
                .map(|m| NovaMetric { name: Cow::Owned(m.name.into_owned()), value: m.value, kind: m.kind })
                .collect(),
        }
    }

    /// Whether the item carries the error marker.
    pub fn is_failure(&self) -> bool {
        self.metrics_list.iter().any(|m| m.name == ERROR_METRIC)
    }
}

/// The Lambda's answer for scored rollouts, same order.
pub fn response(scored: &[Scored]) -> Vec<NovaScore<'_>> {
    scored
        .iter()
        .map(|s| {
            let mut item = answer(&s.id, s.score_or_zero(), s.metrics.iter().map(|m| (m.name.as_str(), m.value, m.kind)));
            if s.error_flag() > 0.0 {
                item.metrics_list.push(NovaMetric::error());
            }
            item
        })
        .collect()
}

/// One item of the Lambda's answer from a rollout's id, score and metrics (name, value, kind).
pub fn answer<'a>(id: &'a str, score: f64, metrics: impl Iterator<Item = (&'a str, f64, MetricKind)>) -> NovaScore<'a> {
    let metrics_list = metrics.map(|(name, value, kind)| NovaMetric { name: Cow::Borrowed(name), value, kind: kind.into() }).collect();
    NovaScore { id: Cow::Borrowed(id), aggregate_reward_score: score, metrics_list }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn array_object_and_bad_items() {
        let raw = |v: serde_json::Value| v.to_string();
        let items = parse_request(&raw(json!([
            {"id": "a", "messages": [{"role": "assistant", "content": "x"}]},
            {"id": "b", "messages": [{"role": "user", "content": "x"}]},
            7
        ])))
        .unwrap();
        assert!(matches!(&items[0], Item::Rollout(r) if r.id == "a"));
        assert!(
            matches!(&items[1], Item::Rejected { id, failure } if id == "b" && failure.message.contains("item[1]: the last message has role `user`"))
        );
        assert!(matches!(&items[2], Item::Rejected { id, .. } if id == "item-2"));
        let single = parse_request(&raw(json!({"id": "s", "messages": [{"role": "nova_assistant", "content": "y"}]}))).unwrap();
        assert_eq!(single.len(), 1);
        assert!(parse_request(&raw(json!("text"))).unwrap_err().to_string().contains("found a string"));
        // Leading whitespace is JSON too; a body that is not JSON says so, and where.
        assert_eq!(parse_request(" \n\t[{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}]").unwrap().len(), 1);
        assert!(parse_request("  {\"id\": \"s\"").unwrap_err().to_string().contains("truncated JSON"));
        assert!(parse_request("4x").unwrap_err().to_string().contains("not valid JSON"));
        assert!(parse_request("").unwrap_err().to_string().contains("truncated JSON"));
    }

    #[test]
    fn the_answer_reads_back_as_it_was_written() {
        let written = vec![
            answer("a", 0.5, [("correct", 1.0, MetricKind::Reward), ("len", 3.0, MetricKind::Metric)].into_iter()),
            NovaScore::failed("b".into()),
        ];
        let text = serde_json::to_string(&written).unwrap();
        assert_eq!(
            text,
            r#"[{"id":"a","aggregate_reward_score":0.5,"metrics_list":[{"name":"correct","value":1.0,"type":"Reward"},{"name":"len","value":3.0,"type":"Metric"}]},{"id":"b","aggregate_reward_score":0.0,"metrics_list":[{"name":"reward_error","value":1.0,"type":"Metric"}]}]"#
        );
        let read: Vec<NovaScore<'static>> = serde_json::from_slice(text.as_bytes()).unwrap();
        assert_eq!(read, written);
        assert!(!read[0].is_failure() && read[1].is_failure());
    }
}
