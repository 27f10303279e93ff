//! All doors agree: the same rollouts sent through gRPC `Score` and `ScoreStream`, native JSON
//! (`POST /v1/score`), the Nova Lambda door (`POST /v1/rewards/{name}/lambda`), the OpenRLHF door
//! (`POST /v1/rewards/{name}/get_reward`), slime (`.../slime`), NeMo Gym (`.../verify`) and the offline scorer (`reward-server score` on JSONL)
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
use std::time::Duration;

use agreement::{
    Answer, Batch, Case, Client, Outcome, POLICIES, PROMPT, View, assert_agrees, assert_expected, batches, from_proto, grpc_failed,
    grpc_score, project, proto_rollouts, read_native, read_nova,
};
use common::server::Server;
use common::{plugin_path, score_file};
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
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = batch.nova_records().iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (out, lines) = score_file(config, reward, &input);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let answers: Vec<Answer> = lines.iter().map(read_native).collect();
    match out.status.code() {
        Some(0) => (Outcome::Scored(answers.clone()), answers),
        Some(1) => (Outcome::Failed { how: "exit 1".into(), detail: stderr }, answers),
        code => panic!("reward-server score --reward {reward} exited {code:?}: {stderr}"),
    }
}

/// slime's remote reward (`?detail=true`, for the metrics and the marker) on one case.
async fn slime(server: &Server, case: &Case, reward: &str) -> Outcome {
    let request = json!({"prompt": PROMPT, "response": case.completion, "label": case.reference});
    let (status, body) = post(&format!("{}/v1/rewards/{reward}/slime?detail=true", server.http), &request).await;
    if status != 200 {
        return http_failed(status, &body);
    }
    let fields = body.as_object().unwrap_or_else(|| panic!("slime detail is an object: {body}"));
    let failed = fields.get(agreement::ERROR_METRIC).and_then(Value::as_f64).unwrap_or_else(|| panic!("reward_error: {body}"));
    Outcome::Scored(vec![Answer {
        id: None,
        score: Some(fields["reward"].as_f64().unwrap_or_else(|| panic!("reward: {body}"))),
        status: None,
        failed: failed == 1.0,
        metrics: fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "reward" | agreement::ERROR_METRIC))
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect(),
        kinds: None,
    }])
}

/// NeMo Gym's `/verify` on one case: the reference as the task field `expected_answer` (none
/// when null); a malformed case is a body without the contract's fields.
async fn nemo_gym(server: &Server, case: &Case, reward: &str) -> Outcome {
    let mut request = if case.malformed {
        json!({ "id": case.id })
    } else {
        json!({
            "responses_create_params": {"input": [{"role": "user", "content": PROMPT}]},
            "response": {"output": [{"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": case.completion}]}]},
        })
    };
    if !case.malformed && !case.reference.is_null() {
        request["expected_answer"] = case.reference.clone();
    }
    let (status, body) = post(&format!("{}/v1/rewards/{reward}/verify", server.http), &request).await;
    if status != 200 {
        return http_failed(status, &body);
    }
    for (field, value) in request.as_object().unwrap() {
        assert_eq!(&body[field], value, "the request's fields come back as sent: {body}");
    }
    Outcome::Scored(vec![Answer {
        id: None,
        score: Some(body["reward"].as_f64().unwrap_or_else(|| panic!("reward: {body}"))),
        status: None,
        failed: body["mask_sample"].as_bool().unwrap_or_else(|| panic!("mask_sample: {body}")),
        metrics: body["reward_components"]
            .as_object()
            .unwrap_or_else(|| panic!("reward_components: {body}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect(),
        kinds: None,
    }])
}

/// slime and NeMo Gym send one sample per request: each case is its own request, compared with
/// gRPC `Score`'s answer to that case alone (under `fail` only a failing case's request fails).
/// slime cannot send a record that is not a rollout (every sample has a response).
async fn per_sample_doors(client: &mut Client, server: &Server, batch: &Batch, reward: &str) {
    for case in &batch.cases {
        let single = Batch { name: batch.name, reward: batch.reward, cases: vec![case.clone()] };
        let want = project(&grpc_score(client, &single, reward).await, View::Sample);
        let what = |door: &str| format!("{door}, batch {}, case {}, reward {reward}", batch.name, case.id);
        if !case.malformed {
            assert_agrees(&what("slime"), &slime(server, case, reward).await, &want, "HTTP 422");
        }
        assert_agrees(&what("NeMo Gym /verify"), &nemo_gym(server, case, reward).await, &want, "HTTP 422");
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

            let stream = grpc_stream(&mut client, &batch, &reward).await;
            assert_agrees(&what("gRPC ScoreStream"), &stream, &full, "gRPC Aborted");
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

            per_sample_doors(&mut client, &server, &batch, &reward).await;

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
