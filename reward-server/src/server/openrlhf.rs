//! OpenRLHF's remote reward contract (`--remote_rm_url`).
//!
//! Request: `{query: [str], prompts: [str], labels: [str]}`: `query` is the prompt followed by
//! the generated response (OpenRLHF sends the whole sequence), `prompts` the prompts alone,
//! `labels` the references; `prompts` and `labels` may be missing. Response:
//! `{rewards: [float], scores: [float], extra_logs: {name: [float]}}`, one value per query, in
//! order. A rollout that could not be scored counts as its policy says (0 for `zero` and
//! `abstain`) and shows as 1 in `extra_logs.reward_error`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ScoreError;
use super::nova::ERROR_METRIC;
use crate::engine::Item;
use crate::engine::{Message, Rollout, Scored, Status};

/// The request body.
#[derive(Debug, Deserialize)]
pub struct Request {
    query: Vec<String>,
    #[serde(default)]
    prompts: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<Vec<serde_json::Value>>,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct Response {
    rewards: Vec<f64>,
    scores: Vec<f64>,
    extra_logs: BTreeMap<String, Vec<f64>>,
}

/// What is counted of a request before it is read: its `query` list.
#[derive(Deserialize)]
struct QueryCount {
    query: crate::input::Count,
}

/// How many rollouts a request body holds (its `query` items), counted without reading them.
pub fn count_request(body: &str) -> Result<usize, ScoreError> {
    super::error::from_json::<QueryCount>(body).map(|c| c.query.0)
}

/// Converts a request into items, in order.
pub fn parse_request(req: Request) -> Result<Vec<Item>, ScoreError> {
    let n = req.query.len();
    for (field, len) in [("prompts", req.prompts.as_ref().map(Vec::len)), ("labels", req.labels.as_ref().map(Vec::len))] {
        if let Some(len) = len
            && len != n
        {
            return Err(ScoreError::BadRequest(format!("`{field}` has {len} items but `query` has {n}")));
        }
    }
    let mut prompts = req.prompts.map(|p| p.into_iter());
    let mut labels = req.labels.map(|l| l.into_iter());
    Ok(req
        .query
        .into_iter()
        .enumerate()
        .map(|(i, query)| {
            let prompt = prompts.as_mut().and_then(Iterator::next);
            let label = labels.as_mut().and_then(Iterator::next).unwrap_or(serde_json::Value::Null);
            let completion = match &prompt {
                Some(p) => query.strip_prefix(p.as_str()).unwrap_or(&query).to_owned(),
                None => query.clone(),
            };
            let prompt = prompt.map(|p| Message { role: "user".into(), content: p });
            match Rollout::new(format!("query-{i}"), prompt.into_iter().collect(), Some(completion), label.to_string(), "{}".into()) {
                Ok(rollout) => Item::Rollout(rollout),
                Err(e) => Item::invalid(format!("query-{i}"), format!("query[{i}]: {e}")),
            }
        })
        .collect())
}

/// The response for scored rollouts.
pub fn response(scored: &[Scored]) -> Response {
    let n = scored.len();
    let scores: Vec<f64> = scored.iter().map(Scored::score_or_zero).collect();
    let mut extra_logs: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (i, s) in scored.iter().enumerate() {
        for m in &s.metrics {
            extra_logs.entry(m.name.clone()).or_insert_with(|| vec![0.0; n])[i] = m.value;
        }
    }
    if scored.iter().any(|s| s.status != Status::Ok) {
        extra_logs.insert(ERROR_METRIC.into(), scored.iter().map(Scored::error_flag).collect());
    }
    Response { rewards: scores.clone(), scores, extra_logs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_is_the_query_after_its_prompt() {
        let req: Request = serde_json::from_value(serde_json::json!({
            "query": ["<|user|>2+2?<|assistant|>4", "unrelated"],
            "prompts": ["<|user|>2+2?<|assistant|>", "other prompt"],
            "labels": ["4", "x"]
        }))
        .unwrap();
        let items = parse_request(req).unwrap();
        let Item::Rollout(r) = &items[0] else { panic!() };
        assert_eq!((r.id.as_str(), r.completion(), r.reference.as_str()), ("query-0", "4", "\"4\""));
        let Item::Rollout(r) = &items[1] else { panic!() };
        assert_eq!(r.completion(), "unrelated", "a query that does not start with its prompt is taken whole");
    }

    #[test]
    fn mismatched_lengths_are_refused() {
        let req: Request = serde_json::from_value(serde_json::json!({"query": ["a", "b"], "labels": ["x"]})).unwrap();
        let err = parse_request(req).unwrap_err().to_string();
        assert_eq!(err, "`labels` has 1 items but `query` has 2");
    }
}
