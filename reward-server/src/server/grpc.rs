//! The gRPC API (tonic): `reward.v1.RewardService`. Handlers only translate between the proto
//! messages and the scorer.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use reward_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::error::ScoreError;
use super::scorer::Deadline;
use super::{AppState, RewardSummary, metrics};
use crate::engine::{Item, Message, MetricKind, Rollout, Scored, Status as ScoreStatus};

/// The service implementation.
pub struct RewardGrpc {
    state: Arc<AppState>,
}

impl RewardGrpc {
    /// A service over the shared state.
    pub fn new(state: Arc<AppState>) -> Self {
        RewardGrpc { state }
    }

    /// The caller's deadline (see [`super::caller_deadline`]).
    fn deadline<T>(&self, request: &Request<T>) -> Result<Deadline, ScoreError> {
        let header = |name: &str| request.metadata().get(name).map(|v| v.as_bytes());
        super::caller_deadline(header("x-timeout-ms"), header("grpc-timeout"), self.state.options.request_timeout)
    }
}

/// Converts a proto rollout; what is wrong with it becomes an `INVALID_INPUT` item, not an error.
pub(crate) fn to_item(index: usize, r: pb::Rollout) -> Item {
    let id = if r.id.is_empty() { format!("rollout-{index}") } else { r.id };
    let reject = Item::invalid;
    if !r.record_json.is_empty() {
        if !(r.messages.is_empty()
            && r.completion.is_empty()
            && r.reference_json.is_empty()
            && r.metadata_json.is_empty()
            && r.group.is_empty())
        {
            return reject(
                id,
                format!(
                    "rollouts[{index}]: `record_json` is the whole rollout (its `group` too); `messages`, `completion`, `reference_json`, `metadata_json` and `group` must be empty"
                ),
            );
        }
        return Item::from_record_or(&r.record_json, index, "rollouts", id);
    }
    let messages: Vec<Message> = r.messages.into_iter().map(|m| Message { role: m.role, content: m.content }).collect();
    let completion = (!r.completion.is_empty()).then_some(r.completion);
    let json_or = |text: String, field: &str, empty: &str| -> Result<String, String> {
        if text.trim().is_empty() {
            return Ok(empty.to_owned());
        }
        serde_json::from_str::<serde_json::Value>(&text)
            .map(|_| text)
            .map_err(|e| format!("rollouts[{index}]: `{field}` is not valid JSON: {e}"))
    };
    let reference = match json_or(r.reference_json, "reference_json", "null") {
        Ok(t) => t,
        Err(msg) => return reject(id, msg),
    };
    let metadata = match json_or(r.metadata_json, "metadata_json", "{}") {
        Ok(t) => t,
        Err(msg) => return reject(id, msg),
    };
    let group = (!r.group.is_empty()).then_some(r.group);
    match Rollout::new(id.clone(), messages, completion, reference, metadata) {
        Ok(rollout) => Item::Rollout(rollout.in_group(group)),
        Err(e) => reject(id, format!("rollouts[{index}]: {e}")),
    }
}

fn to_proto(s: Scored) -> pb::ScoredRollout {
    let status = match s.status {
        ScoreStatus::Ok => pb::Status::Ok,
        ScoreStatus::InvalidInput => pb::Status::InvalidInput,
        ScoreStatus::PluginError => pb::Status::PluginError,
        ScoreStatus::Timeout => pb::Status::Timeout,
        ScoreStatus::OutOfMemory => pb::Status::OutOfMemory,
        ScoreStatus::Internal => pb::Status::Internal,
        ScoreStatus::JudgeError => pb::Status::JudgeError,
    };
    pb::ScoredRollout {
        id: s.id,
        score: s.score,
        status: status as i32,
        metrics: s
            .metrics
            .into_iter()
            .map(|m| pb::Metric {
                name: m.name,
                value: m.value,
                kind: match m.kind {
                    MetricKind::Reward => pb::MetricKind::Reward,
                    MetricKind::Metric => pb::MetricKind::Metric,
                } as i32,
            })
            .collect(),
        reason: s.reason.unwrap_or_default(),
        error: s.error.unwrap_or_default(),
        instructions: s.instructions,
        latency_us: u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX),
        provenance: Some(provenance(&s.provenance)),
        cached: s.cached,
    }
}

/// A reward's provenance on the wire.
fn provenance(p: &crate::engine::Provenance) -> pb::Provenance {
    pb::Provenance {
        reward: p.reward.clone(),
        plugin_sha256: p.plugin_sha256.clone(),
        config_hash: p.config_hash.clone(),
        judge_models: p.judge_models.clone(),
    }
}

/// Most requests one `ScoreStream` holds in flight: 64. Past it the server reads no more of the
/// stream until one is answered.
pub const MAX_STREAM_PENDING: usize = 64;

/// Hands one answer to a stream's client. A send that waits past `timeout` means the client
/// stopped reading: it is marked `stalled` and the caller gives up on it (dropping its work, whose
/// unstarted part then stops, and its admission) rather than hold what every other caller needs.
/// Returns whether the answer was sent.
async fn send_or_stall(
    out: &mpsc::Sender<Result<pb::ScoredRollout, Status>>,
    item: Result<pb::ScoredRollout, Status>,
    timeout: std::time::Duration,
    stalled: &std::sync::atomic::AtomicBool,
) -> bool {
    match tokio::time::timeout(timeout, out.send(item)).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false, // the caller hung up
        Err(_) => {
            tracing::warn!(?timeout, "ScoreStream client stopped reading; dropping its work");
            stalled.store(true, std::sync::atomic::Ordering::Relaxed);
            false
        }
    }
}

type ScoredStream = Pin<Box<dyn Stream<Item = Result<pb::ScoredRollout, Status>> + Send>>;

#[tonic::async_trait]
impl pb::reward_service_server::RewardService for RewardGrpc {
    async fn score(&self, request: Request<pb::ScoreRequest>) -> Result<Response<pb::ScoreResponse>, Status> {
        let deadline = self.deadline(&request);
        let req = request.into_inner();
        let items: Vec<Item> = req.rollouts.into_iter().enumerate().map(|(i, r)| to_item(i, r)).collect();
        let scored = self.state.score_request(&req.reward, "grpc", deadline, items).await?;
        Ok(Response::new(pb::ScoreResponse { results: scored.into_iter().map(to_proto).collect() }))
    }

    type ScoreStreamStream = ScoredStream;

    async fn score_stream(&self, request: Request<Streaming<pb::ScoreRequest>>) -> Result<Response<Self::ScoreStreamStream>, Status> {
        let deadline = self.deadline(&request)?;
        let mut incoming = request.into_inner();
        let state = self.state.clone();
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::ScoredRollout, Status>>(256);
        let send_timeout = state.options.stream_send_timeout;
        tokio::spawn(async move {
            let mut pending = tokio::task::JoinSet::new();
            // Set when a client stopped reading: its work is dropped and its admission released.
            let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
            loop {
                // A stream holds at most MAX_STREAM_PENDING requests in flight; past that it reads
                // no more from the client until one is answered (HTTP/2 flow control pushes back).
                while pending.len() >= MAX_STREAM_PENDING {
                    pending.join_next().await;
                }
                let message = tokio::select! {
                    message = incoming.next() => message,
                    // Draining: read no more, answer what was admitted, then end the stream, so an
                    // idle open stream does not hold the shutdown.
                    () = state.scorer.drain_started() => break,
                };
                let Some(message) = message else { break };
                if stalled.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let req = match message {
                    Ok(r) => r,
                    Err(status) => {
                        send_or_stall(&out_tx, Err(status), send_timeout, &stalled).await;
                        break;
                    }
                };
                let admitted = state
                    .scorer
                    .reward(&req.reward)
                    .and_then(|reward| state.scorer.admit(&reward, req.rollouts.len()).map(|a| (reward, a)));
                let (reward, admission) = match admitted {
                    Ok(ok) => ok,
                    Err(e) => {
                        metrics::request(&req.reward, "grpc_stream", Some(&e), std::time::Duration::ZERO);
                        send_or_stall(&out_tx, Err(e.into()), send_timeout, &stalled).await;
                        break;
                    }
                };
                let items: Vec<Item> = req.rollouts.into_iter().enumerate().map(|(i, r)| to_item(i, r)).collect();
                let (tx, mut rx) = mpsc::unbounded_channel();
                state.scorer.dispatch(reward.clone(), items, Some(deadline), tx);
                let (out, stalled) = (out_tx.clone(), stalled.clone());
                let started = Instant::now();
                pending.spawn(async move {
                    let _admission = admission;
                    let send = |item| send_or_stall(&out, item, send_timeout, &stalled);
                    while let Some(batch) = rx.recv().await {
                        match batch {
                            Ok(scored) => {
                                for (_, s) in scored {
                                    // `on_error = "fail"`: the call fails at the first failed
                                    // rollout, as a `Score` request does (answers sent stay sent).
                                    if let Some(failed) = reward.request_failure(std::slice::from_ref(&s)) {
                                        let e = ScoreError::from(failed);
                                        metrics::request(&reward.name, "grpc_stream", Some(&e), started.elapsed());
                                        let _ = send(Err(e.into())).await;
                                        return;
                                    }
                                    if !send(Ok(to_proto(s))).await {
                                        if stalled.load(std::sync::atomic::Ordering::Relaxed) {
                                            metrics::rejected("stream_stalled");
                                        }
                                        return;
                                    }
                                }
                            }
                            Err(e) => {
                                metrics::request(&reward.name, "grpc_stream", Some(&e), started.elapsed());
                                let _ = send(Err(e.into())).await;
                                return;
                            }
                        }
                    }
                    metrics::request(&reward.name, "grpc_stream", None, started.elapsed());
                });
            }
            while pending.join_next().await.is_some() {}
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(out_rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_rewards(&self, _: Request<pb::ListRewardsRequest>) -> Result<Response<pb::ListRewardsResponse>, Status> {
        let rewards = self.state.scorer.rewards();
        let list = rewards
            .iter()
            .map(|r| {
                let s = RewardSummary::of(r);
                pb::RewardInfo {
                    name: s.name,
                    description: s.description,
                    kind: s.kind.into(),
                    plugin_name: s.plugin_name.unwrap_or_default(),
                    plugin_version: s.plugin_version.unwrap_or_default(),
                    metrics: s.metrics,
                    on_error: s.on_error.into(),
                    provenance: Some(provenance(&s.provenance)),
                    groups: s.groups,
                }
            })
            .collect();
        Ok(Response::new(pb::ListRewardsResponse { rewards: list }))
    }

    async fn validate(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::ValidateResponse>, Status> {
        let deadline = self.deadline(&request);
        let req = request.into_inner();
        let ask = super::ValidateAsk {
            reward: req.reward,
            samples: (!req.rollouts.is_empty()).then(|| req.rollouts.into_iter().enumerate().map(|(i, r)| to_item(i, r)).collect()),
            threshold: req.threshold,
            max_samples: (req.max_samples != 0).then(|| usize::try_from(req.max_samples).unwrap_or(usize::MAX)),
        };
        let report = self.state.validate(ask, "grpc_validate", deadline).await?;
        Ok(Response::new(validate_to_proto(report)))
    }
}

fn validate_to_proto(report: crate::validate::Report) -> pb::ValidateResponse {
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let row = |r: crate::validate::ProbeReport| pb::ProbeReport {
        name: r.name,
        description: r.description,
        expectation: match r.expectation {
            crate::validate::Expectation::Low => "low",
            crate::validate::Expectation::Informational => "informational",
        }
        .into(),
        samples: count(r.samples),
        max_score: r.max,
        mean_score: r.mean,
        statuses: r.statuses.into_iter().map(|(s, n)| (s.as_str().to_owned(), count(n))).collect(),
        worst_sample: r.worst_sample.unwrap_or_default(),
        worst_reason: r.worst_reason.unwrap_or_default(),
        first_error: r.first_error.unwrap_or_default(),
        flagged: r.flagged,
    };
    pb::ValidateResponse {
        reward: report.reward,
        threshold: report.threshold,
        samples: count(report.samples),
        baseline: Some(row(report.baseline)),
        probes: report.probes.into_iter().map(row).collect(),
        nondeterministic: report
            .nondeterministic
            .into_iter()
            .map(|c| pb::Nondeterministic { id: c.first.id.clone(), first: Some(to_proto(c.first)), second: Some(to_proto(c.second)) })
            .collect(),
        flagged: report.flagged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str) -> pb::Message {
        pb::Message { role: role.into(), content: content.into() }
    }

    fn rollout(messages: Vec<pb::Message>, completion: &str) -> pb::Rollout {
        pb::Rollout { id: "r".into(), messages, completion: completion.into(), ..Default::default() }
    }

    /// Whatever the caller sends, the plugin gets the conversation with the answer last, and the
    /// answer is the completion; what cannot be made so is refused, naming the problem.
    #[test]
    fn the_answer_is_the_last_message_and_the_completion() {
        let accepted = |r: pb::Rollout| match to_item(0, r) {
            Item::Rollout(r) => {
                let turns: Vec<String> = r.messages.iter().map(|m| format!("{}:{}", m.role, m.content)).collect();
                (turns, r.completion().to_owned())
            }
            Item::Rejected { failure, .. } => panic!("rejected: {}", failure.message),
        };
        let refused = |r: pb::Rollout| match to_item(0, r) {
            Item::Rejected { failure, .. } => failure.message,
            Item::Rollout(r) => panic!("accepted: {r:?}"),
        };
        assert_eq!(accepted(rollout(vec![], "4")), (vec!["assistant:4".to_owned()], "4".to_owned()));
        let prompt_only = rollout(vec![message("user", "2+2?")], "4");
        assert_eq!(accepted(prompt_only), (vec!["user:2+2?".into(), "assistant:4".into()], "4".into()));
        assert_eq!(accepted(rollout(vec![message("user", "q"), message("assistant", "4")], "")).1, "4");
        assert_eq!(accepted(rollout(vec![message("user", "q"), message("nova_assistant", "4")], "4")).0.len(), 2);
        let two_answers = rollout(vec![message("user", "q"), message("assistant", "5")], "4");
        assert!(refused(two_answers).contains("`completion` differs from the last message"));
        // The messages of the one answer rule (`Rollout::new`), the same at every door.
        assert!(refused(rollout(vec![message("user", "q")], "")).contains("rollouts[0]: the last message has role `user`"));
        assert!(refused(rollout(vec![], "")).contains("rollouts[0]: no answer to score: `messages` is empty"));
    }
}
