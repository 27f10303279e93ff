//! The reward-Lambda bridge: what a Nova RFT job calls by ARN, forwarding to the reward server.
//!
//! Each invocation carries a Nova reward batch (a JSON array of `{id, messages, reference_answer}`,
//! or one object). The bridge sends it on, with the bearer token and a deadline below the
//! Lambda's remaining time, and answers the Nova array: one item per input, same order, real ids.
//!
//! Targets, chosen by [`ENV_SERVER_URL`]'s scheme:
//! - `http://` / `https://`: the server's Lambda-shaped door, `POST /v1/rewards/{name}/lambda`,
//!   deadline in `x-timeout-ms`; the body is forwarded as received (no re-encoding).
//! - `grpc://` / `grpcs://`: `reward.v1.RewardService/Score`, deadline in `grpc-timeout`.
//! - no URL but [`ENV_CONFIG`]: scores in process with the same engine and plugins, no server.
//!
//! The batch is read and answered by the engine's Nova contract ([`reward_engine::nova`]), the
//! server's Lambda door's own: the same ids, the same `reward_error` marker. In process, the
//! reward's own `on_error` applies as at the server: `fail` fails the batch, as the server's 422
//! does.
//!
//! When the server cannot answer in time (down, slow, overloaded, an error status, an answer that
//! does not match the batch), the batch is answered per [`OnFailure`]: every id with score 0 and a
//! `reward_error` metric of 1, or, for `fail`, an invocation error (the job retries or stops).
//! Never a malformed or short array. Payloads are limited to 6 MB each way, as Lambda's are.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use reward_engine::nova::{self, ERROR_METRIC, NovaScore};
use reward_engine::request::Item;
use reward_engine::{Metric, MetricKind, Provenance, Scored, Status};
use reward_proto::v1 as pb;
use serde_json::value::RawValue;

use crate::spec::LAMBDA_PAYLOAD_LIMIT;

/// The reward server: `http(s)://HOST[:PORT]` or `grpc(s)://HOST:PORT`.
pub const ENV_SERVER_URL: &str = "REWARD_SERVER_URL";
/// The reward to score with.
pub const ENV_REWARD: &str = "REWARD_NAME";
/// The bearer token.
pub const ENV_TOKEN: &str = "REWARD_SERVER_TOKEN";
/// A file holding the bearer token (a mounted secret), instead of [`ENV_TOKEN`].
pub const ENV_TOKEN_FILE: &str = "REWARD_SERVER_TOKEN_FILE";
/// `zero` (default), `abstain` or `fail`: see [`OnFailure`].
pub const ENV_ON_ERROR: &str = "REWARD_ON_ERROR";
/// Milliseconds kept back from the Lambda's remaining time: see [`DEFAULT_DEADLINE_MARGIN`].
pub const ENV_DEADLINE_MARGIN_MS: &str = "REWARD_DEADLINE_MARGIN_MS";
/// A rewards config (`rewards.toml`): with no server URL, score in process.
pub const ENV_CONFIG: &str = "REWARD_CONFIG";
/// The payload limit, each way, in bytes: see [`LAMBDA_PAYLOAD_LIMIT`].
pub const ENV_MAX_PAYLOAD_BYTES: &str = "REWARD_MAX_PAYLOAD_BYTES";

/// Kept back from the Lambda's remaining time so the bridge can still answer after the server
/// missed its deadline. Defaults to 1 s.
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// The time assumed left when the runtime gives no deadline (cargo lambda's emulator): 30 s.
pub const ASSUMED_TIMEOUT: Duration = Duration::from_secs(30);
/// What a batch the server could not score answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Each rollout scores 0 with `reward_error` = 1. `abstain` maps here too: the Lambda
    /// contract has no "no score".
    Zero,
    /// The invocation fails; the job sees a Lambda error.
    Fail,
}

/// A failed invocation (only for requests Lambda itself would refuse, and `on_error = "fail"`).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The request is larger than the payload limit.
    #[error("request payload of {size} bytes exceeds the {limit}-byte Lambda limit: send smaller batches")]
    RequestTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The answer would be larger than the payload limit even without metrics.
    #[error("answer of {size} bytes exceeds the {limit}-byte Lambda limit even without metrics: send smaller batches")]
    AnswerTooLarge {
        /// Its size without metrics.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a JSON array or object.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The server could not score the batch and the policy is `fail`.
    #[error("reward server failed and on_error = fail: {0}")]
    ServerFailed(String),
}

enum Target {
    Http { url: String, client: reqwest::Client },
    Grpc { channel: tonic::transport::Channel },
    InProcess { reward: Arc<reward_engine::Reward> },
}

/// The bridge, built once per Lambda sandbox (cold start) and shared by invocations.
pub struct Bridge {
    target: Target,
    reward: String,
    token: Option<String>,
    on_failure: OnFailure,
    margin: Duration,
    max_payload: usize,
}

impl Bridge {
    /// Builds the bridge from the environment (`get` reads a variable; tests pass a map).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Bridge> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let reward = get(ENV_REWARD).with_context(|| format!("{ENV_REWARD} is not set"))?;
        let token = match (get(ENV_TOKEN), get(ENV_TOKEN_FILE)) {
            (Some(t), _) => Some(t),
            (None, Some(f)) => {
                Some(std::fs::read_to_string(&f).with_context(|| format!("{ENV_TOKEN_FILE}={f:?}: unreadable"))?.trim().to_owned())
            }
            (None, None) => None,
        };
        let on_failure = match get(ENV_ON_ERROR).as_deref() {
            None | Some("zero") | Some("abstain") => OnFailure::Zero,
            Some("fail") => OnFailure::Fail,
            Some(v) => bail!("{ENV_ON_ERROR}={v:?} is not valid: zero | abstain | fail"),
        };
        let margin = match get(ENV_DEADLINE_MARGIN_MS) {
            Some(v) => Duration::from_millis(v.parse().with_context(|| format!("{ENV_DEADLINE_MARGIN_MS}={v:?} is not valid"))?),
            None => DEFAULT_DEADLINE_MARGIN,
        };
        let max_payload = match get(ENV_MAX_PAYLOAD_BYTES) {
            Some(v) => v.parse().with_context(|| format!("{ENV_MAX_PAYLOAD_BYTES}={v:?} is not valid"))?,
            None => LAMBDA_PAYLOAD_LIMIT,
        };
        let target = match (get(ENV_SERVER_URL), get(ENV_CONFIG)) {
            (Some(url), _) => {
                let (scheme, rest) = url.split_once("://").with_context(|| format!("{ENV_SERVER_URL}={url:?} is not a URL"))?;
                match scheme {
                    "http" | "https" => Target::Http {
                        url: format!("{}/v1/rewards/{}/lambda", url.trim_end_matches('/'), crate::plan::encode_segment(&reward)),
                        client: reqwest::Client::builder().build()?,
                    },
                    "grpc" | "grpcs" => {
                        let http_scheme = if scheme == "grpc" { "http" } else { "https" };
                        let endpoint = tonic::transport::Endpoint::from_shared(format!("{http_scheme}://{rest}"))
                            .with_context(|| format!("{ENV_SERVER_URL}={url:?} is not valid"))?
                            .connect_timeout(Duration::from_secs(5));
                        let endpoint = if scheme == "grpcs" {
                            endpoint.tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots())?
                        } else {
                            endpoint
                        };
                        Target::Grpc { channel: endpoint.connect_lazy() }
                    }
                    _ => bail!("{ENV_SERVER_URL}={url:?} is not valid: http(s):// or grpc(s)://"),
                }
            }
            (None, Some(config)) => {
                let host = reward_engine::PluginHost::new()?;
                // Only the reward this bridge serves is built: a cold start compiles its plugins,
                // not every plugin of the config (the Python interpreter of `code` takes seconds).
                let rewards = reward_engine::config::Rewards::load_one(&host, std::path::Path::new(&config), &reward)
                    .with_context(|| format!("{ENV_CONFIG}={config:?}"))?;
                let r = rewards.get(&reward)?.clone();
                Target::InProcess { reward: r }
            }
            (None, None) => bail!("set {ENV_SERVER_URL} (forward to a server) or {ENV_CONFIG} (score in process)"),
        };
        Ok(Bridge { target, reward, token, on_failure, margin, max_payload })
    }

    /// Answers one invocation. `deadline` is the Lambda's.
    pub async fn handle(&self, payload: &RawValue, deadline: SystemTime) -> Result<Box<RawValue>, BridgeError> {
        let size = payload.get().len();
        if size > self.max_payload {
            return Err(BridgeError::RequestTooLarge { size, limit: self.max_payload });
        }
        let items = nova::parse_request(payload.get()).map_err(|e| BridgeError::BadRequest(e.0))?;
        let ids: Vec<String> = items.iter().map(|item| item.id().to_owned()).collect();
        // A deadline already past on arrival never comes from Lambda (it would have stopped the
        // sandbox): the runtime gave none or a bogus one (cargo lambda's emulator). Assume 30 s.
        let now = SystemTime::now();
        let deadline = if deadline <= now {
            tracing::warn!(
                deadline_ms = deadline.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64,
                "deadline already past on arrival: assuming {} s",
                ASSUMED_TIMEOUT.as_secs()
            );
            now + ASSUMED_TIMEOUT
        } else {
            deadline
        };
        let budget = deadline.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(self.margin);
        let started = Instant::now();
        tracing::info!(rollouts = ids.len(), bytes = size, budget_ms = budget.as_millis() as u64, "invocation");
        let outcome = if budget.is_zero() {
            Err("no time left before the Lambda deadline".to_owned())
        } else {
            match &self.target {
                Target::Http { url, client } => self.forward_http(client, url, payload, budget, &ids).await,
                Target::Grpc { channel } => self.forward_grpc(channel.clone(), payload, budget, &ids).await,
                Target::InProcess { reward } => score_in_process(reward.clone(), items, budget).await,
            }
        };
        let answer = match outcome {
            Ok(answer) => answer,
            Err(why) => {
                tracing::error!(
                    reward = %self.reward,
                    rollouts = ids.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    budget_ms = budget.as_millis() as u64,
                    "error.type" = "reward_server_failed",
                    "{why}"
                );
                if self.on_failure == OnFailure::Fail {
                    return Err(BridgeError::ServerFailed(why));
                }
                failed_batch(&ids)
            }
        };
        self.encode(answer)
    }

    fn encode(&self, mut answer: Vec<NovaScore<'static>>) -> Result<Box<RawValue>, BridgeError> {
        let text = serde_json::to_string(&answer).expect("answers serialize");
        if text.len() <= self.max_payload {
            return Ok(RawValue::from_string(text).expect("valid JSON"));
        }
        // Too large: keep the scores, drop the diagnostics but the error marker.
        let full = text.len();
        for item in &mut answer {
            item.metrics_list.retain(|m| m.name == ERROR_METRIC);
        }
        let text = serde_json::to_string(&answer).expect("answers serialize");
        if text.len() > self.max_payload {
            return Err(BridgeError::AnswerTooLarge { size: text.len(), limit: self.max_payload });
        }
        tracing::warn!(full, trimmed = text.len(), limit = self.max_payload, "answer over the payload limit: metrics dropped");
        Ok(RawValue::from_string(text).expect("valid JSON"))
    }

    async fn forward_http(
        &self,
        client: &reqwest::Client,
        url: &str,
        payload: &RawValue,
        budget: Duration,
        ids: &[String],
    ) -> Result<Vec<NovaScore<'static>>, String> {
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-timeout-ms", budget.as_millis().to_string())
            // The server answers 504 at its deadline; this catches a server that never answers.
            .timeout(budget + self.margin / 2)
            .body(payload.get().to_owned());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("reward server unreachable or too slow: {e}"))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| format!("reading the reward server's answer: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
            return Err(format!("reward server answered HTTP {status}: {text}"));
        }
        let answer: Vec<NovaScore<'static>> =
            serde_json::from_slice(&body).map_err(|e| format!("reward server's answer is not a Nova array: {e}"))?;
        check_answer(answer, ids)
    }

    /// Sends the batch's records to the server's `Score` as they came (`record_json`: the server
    /// reads them with the Lambda door's reader and answers a bad one with the reward's policy)
    /// and answers the batch from its results through the Nova writer.
    async fn forward_grpc(
        &self,
        channel: tonic::transport::Channel,
        payload: &RawValue,
        budget: Duration,
        ids: &[String],
    ) -> Result<Vec<NovaScore<'static>>, String> {
        let records = nova::records(payload.get()).map_err(|e| e.0)?;
        let rollouts: Vec<pb::Rollout> = records
            .iter()
            .zip(ids)
            .map(|(record, id)| pb::Rollout { id: id.clone(), record_json: record.get().to_owned(), ..Default::default() })
            .collect();
        let mut client = pb::reward_service_client::RewardServiceClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let mut request = tonic::Request::new(pb::ScoreRequest { reward: self.reward.clone(), rollouts });
        request.set_timeout(budget);
        if let Some(t) = &self.token {
            let value = format!("Bearer {t}").parse().map_err(|_| "the token is not a valid header value".to_owned())?;
            request.metadata_mut().insert("authorization", value);
        }
        let call = client.score(request);
        let resp = match tokio::time::timeout(budget + self.margin / 2, call).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return Err(format!("reward server answered {:?}: {}", status.code(), status.message())),
            Err(_) => return Err("reward server too slow: no answer before the deadline".into()),
        };
        let scored: Vec<Scored> = resp.results.into_iter().map(from_proto).collect();
        check_answer(nova::response(&scored).into_iter().map(NovaScore::into_owned).collect(), ids)
    }
}

/// A native API result as the engine's score, for the Nova writer.
fn from_proto(r: pb::ScoredRollout) -> Scored {
    let status = match pb::Status::try_from(r.status).unwrap_or(pb::Status::Unspecified) {
        pb::Status::Ok => Status::Ok,
        pb::Status::InvalidInput => Status::InvalidInput,
        pb::Status::PluginError => Status::PluginError,
        pb::Status::Timeout => Status::Timeout,
        pb::Status::OutOfMemory => Status::OutOfMemory,
        pb::Status::JudgeError => Status::JudgeError,
        pb::Status::Internal | pb::Status::Unspecified => Status::Internal,
    };
    let kind = |k: i32| if k == pb::MetricKind::Metric as i32 { MetricKind::Metric } else { MetricKind::Reward };
    let provenance = r.provenance.unwrap_or_default();
    Scored {
        id: r.id,
        score: r.score,
        status,
        metrics: r.metrics.into_iter().map(|m| Metric { name: m.name, value: m.value, kind: kind(m.kind) }).collect(),
        reason: Some(r.reason).filter(|t| !t.is_empty()),
        error: Some(r.error).filter(|t| !t.is_empty()),
        instructions: r.instructions,
        latency: Duration::from_micros(r.latency_us),
        provenance: Arc::new(Provenance {
            reward: provenance.reward,
            plugin_sha256: provenance.plugin_sha256,
            config_hash: provenance.config_hash,
            judge_models: provenance.judge_models,
        }),
        cached: r.cached,
    }
}

/// Scores the batch with the reward in this process, on a blocking thread, through the same
/// engine step as the server; the reward's `on_error = "fail"` fails the batch as the server's
/// door does.
async fn score_in_process(
    reward: Arc<reward_engine::Reward>,
    items: Vec<Item>,
    budget: Duration,
) -> Result<Vec<NovaScore<'static>>, String> {
    let deadline = Instant::now() + budget;
    let task = tokio::task::spawn_blocking(move || {
        let scored = reward.score_items(items, &|| Instant::now() >= deadline);
        if let Some(failed) = reward.request_failure(&scored) {
            return Err(failed.to_string());
        }
        Ok(nova::response(&scored).into_iter().map(NovaScore::into_owned).collect())
    });
    task.await.map_err(|e| format!("in-process scoring panicked: {e}"))?
}

/// The answer for a batch the server could not score: every id, score 0, `reward_error` = 1.
pub fn failed_batch(ids: &[String]) -> Vec<NovaScore<'static>> {
    ids.iter().map(|id| NovaScore::failed(id.clone())).collect()
}

/// Accepts the server's answer only if it is one finite score per rollout, same ids, same order.
fn check_answer(answer: Vec<NovaScore<'static>>, ids: &[String]) -> Result<Vec<NovaScore<'static>>, String> {
    if answer.len() != ids.len() {
        return Err(format!("reward server answered {} items for {} rollouts", answer.len(), ids.len()));
    }
    for (a, id) in answer.iter().zip(ids) {
        if &a.id != id {
            return Err(format!("reward server answered id {:?} where {id:?} was expected", a.id));
        }
        if !a.aggregate_reward_score.is_finite() {
            return Err(format!("reward server answered a non-finite score for {id:?}"));
        }
    }
    Ok(answer)
}

impl From<BridgeError> for lambda_runtime::Diagnostic {
    fn from(e: BridgeError) -> Self {
        let kind = match e {
            BridgeError::RequestTooLarge { .. } => "RequestTooLarge",
            BridgeError::AnswerTooLarge { .. } => "AnswerTooLarge",
            BridgeError::BadRequest(_) => "BadRequest",
            BridgeError::ServerFailed(_) => "RewardServerFailed",
        };
        lambda_runtime::Diagnostic { error_type: kind.into(), error_message: e.to_string() }
    }
}

/// Runs the bridge under the Lambda runtime (the `reward-lambda-bridge` binary).
pub async fn run_lambda() -> Result<(), lambda_runtime::Error> {
    use lambda_runtime::{LambdaEvent, service_fn};
    let bridge = Arc::new(Bridge::from_env(|k| std::env::var(k).ok())?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let bridge = bridge.clone();
        async move { bridge.handle(&event.payload, event.context.deadline()).await }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_must_match_ids_in_order() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        let mk = |id: &str| NovaScore { id: id.to_owned().into(), aggregate_reward_score: 1.0, metrics_list: vec![] };
        assert!(check_answer(vec![mk("a"), mk("b")], &ids).is_ok());
        assert!(check_answer(vec![mk("b"), mk("a")], &ids).unwrap_err().contains("\"b\" where \"a\""));
        assert!(check_answer(vec![mk("a")], &ids).unwrap_err().contains("1 items for 2"));
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = Bridge::from_env(|k| match k {
            ENV_REWARD => Some("math".into()),
            ENV_SERVER_URL => Some("http://127.0.0.1:1".into()),
            ENV_ON_ERROR => Some("explode".into()),
            _ => None,
        })
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "REWARD_ON_ERROR=\"explode\" is not valid: zero | abstain | fail");
    }
}
