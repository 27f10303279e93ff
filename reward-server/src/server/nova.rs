//! The Amazon Nova RFT reward-Lambda contract, exactly: what SageMaker HyperPod and Training Jobs
//! send to a reward Lambda, and what they expect back.
//!
//! Request: a JSON array of `{id, messages, reference_answer | metadata.reference_answer, ...}`
//! (a single object also occurs). Response: a JSON array, one item per input, same order:
//! `{id, aggregate_reward_score, metrics_list: [{name, value, type: "Reward" | "Metric"}]}`.
//! The contract has no "no score": a rollout that failed is answered with the score its policy
//! gives (0 for `zero` and, for want of a null, for `abstain`) and a `reward_error` metric of 1,
//! so failures show in the training metrics instead of hiding as zeros.

use serde::Serialize;
use serde_json::value::RawValue;

use super::error::{ScoreError, from_json};
use super::scorer::Item;
use crate::engine::{MetricKind, Scored, Status};
use crate::input;

/// Name of the metric that marks a rollout that could not be scored.
pub const ERROR_METRIC: &str = "reward_error";

/// Converts a Lambda event (the request body's text) into request items, in order. An array of
/// good records is read in one pass, straight from the body; one with a record that is not a
/// rollout is split and read record by record, so the error names the record. Items that are not
/// rollouts are kept as rejected items (answered `INVALID_INPUT`); only a body that is not JSON,
/// or not an array or object, fails.
pub fn parse_request(body: &str) -> Result<Vec<Item>, ScoreError> {
    match body.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first() {
        Some(b'[') => Ok(match input::parse_records(body, "item") {
            Some(rollouts) => rollouts.into_iter().map(Item::Rollout).collect(),
            None => Item::from_records(from_json::<Vec<&RawValue>>(body)?, "item", "item"),
        }),
        Some(b'{') => Ok(Item::from_records([from_json::<&RawValue>(body)?], "item", "item")),
        first => {
            from_json::<&RawValue>(body)?;
            Err(ScoreError::BadRequest(format!(
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
pub fn count_request(body: &str) -> Result<usize, ScoreError> {
    match body.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first() {
        Some(b'[') => Ok(from_json::<input::Count>(body)?.0),
        Some(b'{') => Ok(1),
        _ => Ok(0),
    }
}

/// One item of the Lambda's answer.
#[derive(Debug, Serialize)]
pub struct NovaScore<'a> {
    id: &'a str,
    aggregate_reward_score: f64,
    metrics_list: Vec<NovaMetric<'a>>,
}

#[derive(Debug, Serialize)]
struct NovaMetric<'a> {
    name: &'a str,
    value: f64,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// The Lambda's answer for scored rollouts, same order.
pub fn response(scored: &[Scored]) -> Vec<NovaScore<'_>> {
    scored
        .iter()
        .map(|s| {
            let mut item = answer(&s.id, s.score.unwrap_or(0.0), s.metrics.iter().map(|m| (m.name.as_str(), m.value, m.kind)));
            if s.status != Status::Ok {
                item.metrics_list.push(NovaMetric { name: ERROR_METRIC, value: 1.0, kind: "Metric" });
            }
            item
        })
        .collect()
}

/// One item of the Lambda's answer from a rollout's id, score and metrics (name, value, kind).
pub fn answer<'a>(id: &'a str, score: f64, metrics: impl Iterator<Item = (&'a str, f64, MetricKind)>) -> NovaScore<'a> {
    let metrics_list = metrics
        .map(|(name, value, kind)| NovaMetric {
            name,
            value,
            kind: match kind {
                MetricKind::Reward => "Reward",
                MetricKind::Metric => "Metric",
            },
        })
        .collect();
    NovaScore { id, aggregate_reward_score: score, metrics_list }
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
}
