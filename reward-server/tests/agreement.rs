//! All doors agree: the same rollouts sent through gRPC `Score` and `ScoreStream`, native JSON
//! (`POST /v1/score`), the Nova Lambda door (`POST /v1/rewards/{name}/lambda`), the OpenRLHF door
//! (`POST /v1/rewards/{name}/get_reward`) and the offline scorer (`reward-server score` on JSONL)
//! get the same score, status and metrics, for good and failing rollouts, under every `on_error`
//! policy. The expectations and the comparable form are in `common/agreement.rs`, shared with
//! the Lambda bridge's agreement test (`rft-launch/tests/bridge_agreement.rs`).
//!
//! gRPC `Score` is the reference: it carries everything (ids, optional score, status, metrics
//! with kinds). It is checked against the table, then every other door against it, as far as
//! the door's contract can carry (see `View`).

mod common;

#[path = "common/agreement.rs"]
mod agreement;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agreement::{
    Answer, Batch, Client, Outcome, POLICIES, View, assert_agrees, assert_expected, batches, from_proto, grpc_failed, grpc_score, project,
    proto_rollouts, read_native, read_nova,
};
use common::server::Server;
use common::{cache_dir, plugin_path};
use reward_proto::v1 as pb;
use serde_json::{Value, json};

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("rewards.toml");
    std::fs::write(&path, agreement::rewards_toml(&plugin_path("format"), &plugin_path("limits-guest"))).unwrap();
    path
}

/// The stream answers in completion order: answers are put back in request order by id (every
/// id of a batch is distinct). An error status on the stream is the request failing.
async fn grpc_stream(client: &mut Client, batch: &Batch, reward: &str) -> Outcome {
    let request = pb::ScoreRequest { reward: reward.into(), rollouts: proto_rollouts(batch) };
    let mut answers = client.score_stream(tokio_stream::iter([request])).await.unwrap().into_inner();
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(60), answers.message()).await.expect("the stream answers within 60 s") {
            Ok(Some(r)) => got.push(from_proto(&r)),
            Ok(None) => break,
            Err(status) => return grpc_failed(&status),
        }
    }
    let position = |a: &Answer| batch.cases.iter().position(|c| Some(c.id) == a.id.as_deref()).unwrap_or(usize::MAX);
    got.sort_by_key(position);
    Outcome::Scored(got)
}

async fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url} answered {status} with non-JSON: {text}")))
}

fn http_failed(status: u16, body: &Value) -> Outcome {
    Outcome::Failed { how: format!("HTTP {status}"), detail: body.to_string() }
}

async fn native(server: &Server, batch: &Batch, reward: &str) -> Outcome {
    let (status, body) = post(&format!("{}/v1/score", server.http), &json!({"reward": reward, "rollouts": batch.nova_records()})).await;
    if status != 200 {
        return http_failed(status, &body);
    }
    Outcome::Scored(body["results"].as_array().unwrap_or_else(|| panic!("results: {body}")).iter().map(read_native).collect())
}

async fn nova(server: &Server, batch: &Batch, reward: &str) -> Outcome {
    let (status, body) = post(&format!("{}/v1/rewards/{reward}/lambda", server.http), &Value::Array(batch.nova_records())).await;
    if status != 200 {
        return http_failed(status, &body);
    }
    read_nova(&body)
}

/// The OpenRLHF answer, by position: `scores[i]`, and `extra_logs` columns (`reward_error` the
/// failure flag, present only when some rollout failed). `rewards` must equal `scores`.
async fn openrlhf(server: &Server, batch: &Batch, reward: &str) -> Outcome {
    let (status, body) = post(&format!("{}/v1/rewards/{reward}/get_reward", server.http), &batch.openrlhf_request()).await;
    if status != 200 {
        return http_failed(status, &body);
    }
    assert_eq!(body["rewards"], body["scores"], "OpenRLHF rewards and scores are the same list: {body}");
    let scores = body["scores"].as_array().unwrap_or_else(|| panic!("scores: {body}"));
    let logs = body["extra_logs"].as_object().unwrap_or_else(|| panic!("extra_logs: {body}"));
    for (name, column) in logs {
        assert_eq!(column.as_array().map(Vec::len), Some(scores.len()), "extra_logs.{name} has one value per query: {body}");
    }
    Outcome::Scored(
        (0..scores.len())
            .map(|i| Answer {
                id: None,
                score: Some(scores[i].as_f64().unwrap()),
                status: None,
                failed: logs.get(agreement::ERROR_METRIC).is_some_and(|c| c[i] == 1.0),
                metrics: logs
                    .iter()
                    .filter(|(n, _)| *n != agreement::ERROR_METRIC)
                    .map(|(n, c)| (n.clone(), c[i].as_f64().unwrap()))
                    .collect(),
                kinds: None,
            })
            .collect(),
    )
}

/// `reward-server score` on the batch as a JSONL file. Exit 0 answers the lines; exit 1 (a
/// rollout failed under `fail`) is the request failing, and its lines, all written, are returned
/// too: they must be the answers with no score for the failed rollouts.
fn offline(config: &Path, batch: &Batch, reward: &str) -> (Outcome, Vec<Answer>) {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    let lines: Vec<String> = batch.nova_records().iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--reward", reward, "--no-progress", "--config"])
        .arg(config)
        .arg("--cache-dir")
        .arg(cache_dir())
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let answers: Vec<Answer> = text.lines().map(|l| read_native(&serde_json::from_str(l).unwrap())).collect();
    match out.status.code() {
        Some(0) => (Outcome::Scored(answers.clone()), answers),
        Some(1) => (Outcome::Failed { how: "exit 1".into(), detail: stderr }, answers),
        code => panic!("reward-server score --reward {reward} exited {code:?}: {stderr}"),
    }
}

/// Every batch under every policy through every server door and the offline scorer.
#[tokio::test]
async fn every_door_gives_the_same_answers_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // No score cache: each door's rollouts are scored, not served from an earlier door's scores.
    let server = Server::start(&config, &["--cache-entries", "0"]);
    let mut client = Client::connect(server.grpc.clone()).await.unwrap();
    for batch in batches() {
        for policy in POLICIES {
            let reward = batch.reward_for(policy);
            let what = |door: &str| format!("{door}, batch {}, reward {reward}", batch.name);
            let full = grpc_score(&mut client, &batch, &reward).await;
            assert_expected(&what("gRPC Score"), &batch, policy, &full);

            // ScoreStream does not apply `fail` (see the ignored test below): compared under
            // `fail` only where nothing fails.
            if policy != "fail" || !batch.any_failure() {
                let stream = grpc_stream(&mut client, &batch, &reward).await;
                assert_agrees(&what("gRPC ScoreStream"), &stream, &full, "gRPC Aborted");
            }
            let got = native(&server, &batch, &reward).await;
            assert_agrees(&what("native JSON"), &got, &project(&full, View::NoKinds), "HTTP 422");
            let got = nova(&server, &batch, &reward).await;
            assert_agrees(&what("Nova Lambda"), &got, &project(&full, View::Nova), "HTTP 422");

            // OpenRLHF cannot send a record that is not a rollout (every query is a completion):
            // it is compared on the batch without the malformed records, against the reference
            // door's answer to that same batch.
            let carried = batch.without_malformed();
            let full_carried = grpc_score(&mut client, &carried, &reward).await;
            assert_expected(&what("gRPC Score (OpenRLHF's rollouts)"), &carried, policy, &full_carried);
            let got = openrlhf(&server, &carried, &reward).await;
            assert_agrees(&what("OpenRLHF"), &got, &project(&full_carried, View::OpenRlhf), "HTTP 422");

            let (got, lines) = offline(&config, &batch, &reward);
            assert_agrees(&what("offline JSONL"), &got, &project(&full, View::NoKinds), "exit 1");
            if let Outcome::Failed { .. } = got {
                // Every line is still written; a failed rollout has no score under `fail`, as
                // under `abstain`.
                let abstain = grpc_score(&mut client, &batch, &batch.reward_for("abstain")).await;
                assert_agrees(&what("offline JSONL lines"), &Outcome::Scored(lines), &project(&abstain, View::NoKinds), "");
            }
        }
    }
}

/// Under `on_error = "fail"`, a `ScoreStream` request with a failing rollout must fail as the
/// same request through `Score` does (`Aborted`), not answer the failed rollout with no score and
/// status as if the policy were `abstain`.
#[tokio::test]
#[ignore = "finding: ScoreStream never applies on_error = \"fail\" (server/grpc.rs score_stream sends each Scored as is; Scorer::score's request_failure check is not on the stream path)"]
async fn score_stream_fails_the_request_under_fail() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path()), &["--cache-entries", "0"]);
    let mut client = Client::connect(server.grpc.clone()).await.unwrap();
    for batch in batches().into_iter().filter(Batch::any_failure) {
        let reward = batch.reward_for("fail");
        let what = format!("gRPC ScoreStream, batch {}, reward {reward}", batch.name);
        let full = grpc_score(&mut client, &batch, &reward).await;
        assert_expected(&format!("gRPC Score, batch {}", batch.name), &batch, "fail", &full);
        let stream = grpc_stream(&mut client, &batch, &reward).await;
        assert_agrees(&what, &stream, &full, "gRPC Aborted");
    }
}
