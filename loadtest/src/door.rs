//! The server's doors as the load tester calls them: batches encoded once up front, one call per
//! batch, and each answer checked (one result per rollout) and its rollout statuses counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use reward_proto::v1 as pb;
use serde::Deserialize;
use serde_json::json;

use crate::corpus::Rollout;

/// Which door to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// gRPC `reward.v1.RewardService/Score`: one unary call per batch.
    Grpc,
    /// gRPC `ScoreStream`: one stream per batch, the batch sent as one message, answers counted
    /// as they arrive.
    GrpcStream,
    /// `POST /v1/score`, the native JSON API.
    Http,
    /// `POST /v1/rewards/{name}/lambda`, the Nova RFT reward-Lambda JSON.
    Lambda,
    /// `POST /v1/rewards/{name}/get_reward`, OpenRLHF's remote reward JSON.
    Openrlhf,
}

impl Target {
    /// Whether the door is gRPC.
    pub fn is_grpc(self) -> bool {
        matches!(self, Target::Grpc | Target::GrpcStream)
    }
}

/// How one call ended.
#[derive(Debug)]
pub enum Outcome {
    /// Answered with one result per rollout; `statuses` counts the rollouts that were not scored
    /// OK, by status (`INVALID_INPUT`, ..., or `reward_error` where the contract only flags it).
    Ok {
        /// Non-OK rollouts by status.
        statuses: BTreeMap<String, u64>,
    },
    /// The call failed; the kind names how (`http_429_overloaded`, `grpc_not_found`, `connect`).
    Err(String),
}

/// A client for one door with its batches ready to send.
pub struct Door {
    target: Target,
    url: String,
    http: reqwest::Client,
    bodies: Vec<bytes::Bytes>,
    grpc_requests: Vec<pb::ScoreRequest>,
    channels: Vec<tonic::transport::Channel>,
    next: AtomicUsize,
    batch: usize,
    auth: Option<String>,
    timeout: Duration,
}

/// What a [`Door`] needs.
pub struct DoorConfig<'a> {
    /// Which door.
    pub target: Target,
    /// `host:port` or `http://host:port`.
    pub addr: &'a str,
    /// The reward to score with.
    pub reward: &'a str,
    /// Rollouts per call.
    pub batch: usize,
    /// The corpus; cut into batches of `batch`, reused round-robin.
    pub rollouts: &'a [Rollout],
    /// Bearer token.
    pub auth_token: Option<&'a str>,
    /// Per-call timeout (client side; also sent as `x-timeout-ms` / `grpc-timeout`).
    pub timeout: Duration,
    /// gRPC connections (HTTP/2 multiplexes calls on each).
    pub grpc_connections: usize,
}

impl Door {
    /// Encodes the batches and, for gRPC, connects.
    pub async fn new(cfg: DoorConfig<'_>) -> anyhow::Result<Arc<Door>> {
        anyhow::ensure!(cfg.batch > 0, "--batch must be at least 1");
        anyhow::ensure!(!cfg.rollouts.is_empty(), "the corpus is empty");
        let base = if cfg.addr.contains("://") { cfg.addr.trim_end_matches('/').to_owned() } else { format!("http://{}", cfg.addr) };
        let url = match cfg.target {
            Target::Http => format!("{base}/v1/score"),
            Target::Lambda => format!("{base}/v1/rewards/{}/lambda", cfg.reward),
            Target::Openrlhf => format!("{base}/v1/rewards/{}/get_reward", cfg.reward),
            Target::Grpc | Target::GrpcStream => base,
        };
        let batches: Vec<&[Rollout]> = cfg.rollouts.chunks(cfg.batch).filter(|b| b.len() == cfg.batch).collect();
        anyhow::ensure!(!batches.is_empty(), "the corpus ({} rollouts) is smaller than one batch ({})", cfg.rollouts.len(), cfg.batch);
        let mut bodies = Vec::new();
        let mut grpc_requests = Vec::new();
        for b in &batches {
            match cfg.target {
                Target::Lambda => bodies.push(body(&json!(b.iter().map(Rollout::to_nova).collect::<Vec<_>>()))),
                Target::Http => bodies.push(body(&json!({
                    "reward": cfg.reward,
                    "rollouts": b.iter().map(Rollout::to_nova).collect::<Vec<_>>(),
                }))),
                Target::Openrlhf => bodies.push(body(&json!({
                    "query": b.iter().map(|r| format!("{}{}", r.prompt, r.completion)).collect::<Vec<_>>(),
                    "prompts": b.iter().map(|r| r.prompt.clone()).collect::<Vec<_>>(),
                    "labels": b.iter().map(|r| r.reference.clone()).collect::<Vec<_>>(),
                }))),
                Target::Grpc | Target::GrpcStream => grpc_requests.push(pb::ScoreRequest {
                    reward: cfg.reward.to_owned(),
                    rollouts: b
                        .iter()
                        .map(|r| pb::Rollout {
                            id: r.id.clone(),
                            messages: vec![
                                pb::Message { role: "system".into(), content: r.system.clone() },
                                pb::Message { role: "user".into(), content: r.prompt.clone() },
                                pb::Message { role: "assistant".into(), content: r.completion.clone() },
                            ],
                            completion: String::new(),
                            reference_json: r.reference.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .timeout(cfg.timeout)
            .build()
            .context("building the HTTP client")?;
        let mut channels = Vec::new();
        if cfg.target.is_grpc() {
            for _ in 0..cfg.grpc_connections.max(1) {
                let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                    .with_context(|| format!("invalid gRPC address {url}"))?
                    .tcp_nodelay(true)
                    .timeout(cfg.timeout);
                channels.push(endpoint.connect().await.with_context(|| format!("connecting to {url}"))?);
            }
        }
        Ok(Arc::new(Door {
            target: cfg.target,
            url,
            http,
            bodies,
            grpc_requests,
            channels,
            next: AtomicUsize::new(0),
            batch: cfg.batch,
            auth: cfg.auth_token.map(|t| format!("Bearer {t}")),
            timeout: cfg.timeout,
        }))
    }

    /// Rollouts per call.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sends the next batch (round-robin over the corpus) and waits for the answer.
    pub async fn call(&self) -> Outcome {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match self.target {
            Target::Grpc | Target::GrpcStream => {
                let request = self.grpc_requests[n % self.grpc_requests.len()].clone();
                let channel = self.channels[n % self.channels.len()].clone();
                self.call_grpc(channel, request).await
            }
            _ => self.call_http(self.bodies[n % self.bodies.len()].clone()).await,
        }
    }

    async fn call_http(&self, body: bytes::Bytes) -> Outcome {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-timeout-ms", self.timeout.as_millis().to_string())
            .body(body);
        if let Some(auth) = &self.auth {
            req = req.header("authorization", auth);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Err(reqwest_kind(&e)),
        };
        let status = resp.status();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::Err(reqwest_kind(&e)),
        };
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ErrorBody {
                kind: String,
            }
            return Outcome::Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => format!("http_{}_{}", status.as_u16(), b.kind),
                Err(_) => format!("http_{}", status.as_u16()),
            });
        }
        match check_json(self.target, &bytes, self.batch) {
            Ok(statuses) => Outcome::Ok { statuses },
            Err(_) => Outcome::Err("bad_response".into()),
        }
    }

    async fn call_grpc(&self, channel: tonic::transport::Channel, request: pb::ScoreRequest) -> Outcome {
        let mut client = pb::reward_service_client::RewardServiceClient::new(channel)
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let mut statuses = BTreeMap::new();
        let mut count = |status: i32| {
            let s = pb::Status::try_from(status).unwrap_or(pb::Status::Unspecified);
            if s != pb::Status::Ok {
                *statuses.entry(s.as_str_name().to_owned()).or_insert(0) += 1;
            }
        };
        match self.target {
            Target::Grpc => {
                let mut req = tonic::Request::new(request);
                self.grpc_headers(&mut req);
                match client.score(req).await {
                    Ok(resp) => {
                        let results = resp.into_inner().results;
                        if results.len() != self.batch {
                            return Outcome::Err("bad_response".into());
                        }
                        results.iter().for_each(|r| count(r.status));
                    }
                    Err(status) => return Outcome::Err(grpc_kind(&status)),
                }
            }
            _ => {
                let mut req = tonic::Request::new(tokio_stream::once(request));
                self.grpc_headers(&mut req);
                let mut stream = match client.score_stream(req).await {
                    Ok(resp) => resp.into_inner(),
                    Err(status) => return Outcome::Err(grpc_kind(&status)),
                };
                let mut got = 0;
                loop {
                    match stream.message().await {
                        Ok(Some(r)) => {
                            got += 1;
                            count(r.status);
                        }
                        Ok(None) => break,
                        Err(status) => return Outcome::Err(grpc_kind(&status)),
                    }
                }
                if got != self.batch {
                    return Outcome::Err("bad_response".into());
                }
            }
        }
        Outcome::Ok { statuses }
    }

    fn grpc_headers<T>(&self, req: &mut tonic::Request<T>) {
        req.set_timeout(self.timeout);
        if let Some(auth) = &self.auth
            && let Ok(v) = auth.parse()
        {
            req.metadata_mut().insert("authorization", v);
        }
    }
}

/// The encoded body; `Bytes` clone by reference count, so calls share it.
fn body(value: &serde_json::Value) -> bytes::Bytes {
    serde_json::to_vec(value).expect("JSON values serialise").into()
}

/// Checks one result per rollout and counts the rollouts not scored OK.
fn check_json(target: Target, bytes: &[u8], batch: usize) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut statuses = BTreeMap::new();
    match target {
        Target::Lambda => {
            #[derive(Deserialize)]
            struct Metric {
                name: String,
                value: f64,
            }
            #[derive(Deserialize)]
            struct Item {
                #[allow(dead_code)]
                aggregate_reward_score: f64,
                #[serde(default)]
                metrics_list: Vec<Metric>,
            }
            let items: Vec<Item> = serde_json::from_slice(bytes)?;
            anyhow::ensure!(items.len() == batch, "{} results for {batch} rollouts", items.len());
            let failed = items.iter().filter(|i| i.metrics_list.iter().any(|m| m.name == "reward_error" && m.value > 0.0)).count();
            if failed > 0 {
                statuses.insert("reward_error".into(), failed as u64);
            }
        }
        Target::Openrlhf => {
            #[derive(Deserialize)]
            struct Resp {
                rewards: Vec<f64>,
                #[serde(default)]
                extra_logs: BTreeMap<String, Vec<f64>>,
            }
            let r: Resp = serde_json::from_slice(bytes)?;
            anyhow::ensure!(r.rewards.len() == batch, "{} rewards for {batch} rollouts", r.rewards.len());
            let failed = r.extra_logs.get("reward_error").map_or(0, |v| v.iter().filter(|x| **x > 0.0).count());
            if failed > 0 {
                statuses.insert("reward_error".into(), failed as u64);
            }
        }
        Target::Http => {
            #[derive(Deserialize)]
            struct Result {
                status: String,
            }
            #[derive(Deserialize)]
            struct Resp {
                results: Vec<Result>,
            }
            let r: Resp = serde_json::from_slice(bytes)?;
            anyhow::ensure!(r.results.len() == batch, "{} results for {batch} rollouts", r.results.len());
            for s in r.results.into_iter().filter(|s| s.status != "OK") {
                *statuses.entry(s.status).or_insert(0) += 1;
            }
        }
        Target::Grpc | Target::GrpcStream => unreachable!("gRPC answers are checked in call_grpc"),
    }
    Ok(statuses)
}

fn reqwest_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "client_timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "bad_response"
    } else {
        "transport"
    }
    .into()
}

fn grpc_kind(status: &tonic::Status) -> String {
    let name = format!("{:?}", status.code());
    let mut snake = String::from("grpc_");
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_are_snake_case_kinds() {
        assert_eq!(grpc_kind(&tonic::Status::resource_exhausted("x")), "grpc_resource_exhausted");
        assert_eq!(grpc_kind(&tonic::Status::not_found("x")), "grpc_not_found");
    }

    #[test]
    fn lambda_answers_count_flagged_rollouts_and_reject_short_answers() {
        let ok = br#"[{"id":"a","aggregate_reward_score":1.0,"metrics_list":[]},
                      {"id":"b","aggregate_reward_score":0.0,"metrics_list":[{"name":"reward_error","value":1.0,"type":"Metric"}]}]"#;
        let s = check_json(Target::Lambda, ok, 2).unwrap();
        assert_eq!(s.get("reward_error"), Some(&1));
        assert!(check_json(Target::Lambda, ok, 3).is_err());
    }
}
