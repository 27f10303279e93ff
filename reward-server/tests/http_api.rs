//! The HTTP API end to end: the real server binary on loopback, a real HTTP client.
//! Nova Lambda variants, OpenRLHF, slime, NeMo Gym, validate, the native API, bad bodies, auth, deadlines, overload,
//! metrics, the score cache. At the end, the same router in process (`AppState::from_rewards`,
//! `tower::ServiceExt::oneshot`): no process, no socket, for behaviour that needs neither.

mod common;

use std::path::PathBuf;

use common::server::Server;
use common::{SLOW_LIMITS, guest_config, repo_root, vm_bytes};
use serde_json::{Value, json};

fn builtin_config() -> PathBuf {
    repo_root().join("rewards.toml")
}

async fn post(server: &Server, path: &str, body: impl Into<reqwest::Body>) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn answer(text: &str) -> String {
    format!("<think>Let me compute.</think>\n<answer>{text}</answer>")
}

#[tokio::test]
async fn nova_lambda_variants_answer_in_order_with_real_ids() {
    let server = Server::start(&builtin_config(), &[]);
    let event = json!([
        {"id": "string-content", "messages": [{"role": "user", "content": "Growth?"}, {"role": "assistant", "content": answer("12.5%")}],
         "reference_answer": {"answer": "12.5%"}},
        {"id": "nova-assistant-parts", "messages": [{"role": "system", "content": [{"type": "text", "text": "Be exact."}]},
            {"role": "user", "content": [{"type": "text", "text": "Growth?"}]},
            {"role": "nova_assistant", "content": [{"type": "text", "text": answer("0.125")}]}],
         "reference_answer": {"answer": "12.5%"}},
        {"id": "reference-under-metadata", "messages": [{"role": "assistant", "content": answer("7")}],
         "metadata": {"reference_answer": {"answer": "8"}}},
        {"id": "no-answer-turn", "messages": [{"role": "user", "content": "hi"}], "reference_answer": "1"},
        "not an object"
    ]);
    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", event.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let items = body.as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["string-content", "nova-assistant-parts", "reference-under-metadata", "no-answer-turn", "item-4"]);
    let scores: Vec<f64> = items.iter().map(|i| i["aggregate_reward_score"].as_f64().unwrap()).collect();
    assert_eq!(scores[0], 1.0);
    assert_eq!(scores[1], 1.0);
    assert!((scores[2] - 0.1).abs() < 1e-9, "format ok, wrong answer: {}", scores[2]);
    assert_eq!(scores[3], 0.0);
    let metric = |i: usize, name: &str| items[i]["metrics_list"].as_array().unwrap().iter().find(|m| m["name"] == name).cloned();
    assert_eq!(metric(0, "correct").unwrap()["type"], "Reward");
    assert_eq!(metric(0, "correct.numeric_tier").unwrap()["type"], "Metric");
    assert!(metric(0, "reward_error").is_none());
    assert_eq!(metric(3, "reward_error").unwrap()["value"], 1.0);
    assert_eq!(metric(4, "reward_error").unwrap()["value"], 1.0);
    for item in items {
        assert_eq!(item.as_object().unwrap().len(), 3, "exactly id, aggregate_reward_score, metrics_list: {item}");
    }

    // A single object instead of an array also occurs: answered as an array of one.
    let single = json!({"id": "solo", "messages": [{"role": "assistant", "content": answer("3")}], "reference_answer": 3});
    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", single.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], "solo");
    assert_eq!(body[0]["aggregate_reward_score"], 1.0);
}

#[tokio::test]
async fn openrlhf_remote_reward_shape() {
    let server = Server::start(&builtin_config(), &[]);
    let prompt = "<|user|>What is 6*7?<|assistant|>";
    let request = json!({
        "query": [format!("{prompt}{}", answer("42")), format!("{prompt}{}", answer("41"))],
        "prompts": [prompt, prompt],
        "labels": ["42", "42"]
    });
    let (status, _, body) = post(&server, "/v1/rewards/numeric_answer/get_reward", request.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rewards"], json!([1.0, 0.0]));
    assert_eq!(body["scores"], json!([1.0, 0.0]));
    assert_eq!(body["extra_logs"]["numeric_tier"], json!([4.0, 0.0]));

    let mismatched = json!({"query": ["a", "b"], "labels": ["x"]});
    let (status, _, body) = post(&server, "/v1/rewards/numeric_answer/get_reward", mismatched.to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "`labels` has 1 items but `query` has 2");
}

#[tokio::test]
async fn slime_remote_reward_shape() {
    let server = Server::start(&builtin_config(), &[]);
    let sample =
        |response: &str, label: Value| json!({"prompt": "<|user|>What is 6*7?<|assistant|>", "response": response, "label": label});
    // slime reads the body as the reward: a bare number.
    let (status, _, body) = post(&server, "/v1/rewards/math/slime", sample(&answer("42"), json!("42")).to_string()).await;
    assert_eq!((status, body), (200, json!(1.0)));
    let (status, _, body) = post(&server, "/v1/rewards/math/slime", sample(&answer("41"), json!("42")).to_string()).await;
    assert_eq!(status, 200);
    assert!((body.as_f64().unwrap() - 0.1).abs() < 1e-9, "format only: {body}");

    // A chat prompt, and ?detail=true for --reward-key reward: the metrics and the failure marker.
    let chat = json!({"prompt": [{"role": "user", "content": "What is 6*7?"}], "response": answer("42"), "label": {"answer": 42}});
    let (status, _, body) = post(&server, "/v1/rewards/math/slime?detail=true", chat.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["reward"], &body["reward_error"], &body["correct"]), (&json!(1.0), &json!(0.0), &json!(1.0)), "{body}");

    // No label: the math reward cannot score it. Failed is not wrong: the marker says so.
    let (status, _, body) = post(&server, "/v1/rewards/math/slime?detail=true", sample(&answer("42"), Value::Null).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["reward"], &body["reward_error"]), (&json!(0.0), &json!(1.0)), "{body}");

    for (path, body, want) in [
        ("/v1/rewards/math/slime?details=1", sample("a", json!("1")).to_string(), "query string"),
        ("/v1/rewards/math/slime", json!({"prompt": "p"}).to_string(), "response"),
        ("/v1/rewards/math/slime", "\"text\"".to_string(), "not valid JSON for this endpoint"),
    ] {
        let (status, _, answer) = post(&server, path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(want), "{path}: {answer}");
    }
    // A prompt of another shape fails that sample, named (with the marker under ?detail=true).
    let (status, _, body) = post(&server, "/v1/rewards/math/slime?detail=true", json!({"prompt": 7, "response": "a"}).to_string()).await;
    assert_eq!((status, &body["reward_error"]), (200, &json!(1.0)), "{body}");
    let (status, _, _) = post(&server, "/v1/rewards/no_such/slime", sample("a", json!("1")).to_string()).await;
    assert_eq!(status, 404);
}

/// A NeMo Gym `/verify` request for a math task, as its simple agent sends one.
fn nemo_gym_request(answer_text: &str, expected: &str) -> Value {
    json!({
        "responses_create_params": {"input": [{"role": "user", "content": "What is 6*7?"}], "temperature": 1.0},
        "response": {"id": "resp_1", "object": "response", "model": "policy", "output": [
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": answer_text, "annotations": []}]}
        ]},
        "expected_answer": expected,
        "_ng_rollout_id": "r-1"
    })
}

#[tokio::test]
async fn nemo_gym_verify_shape() {
    let server = Server::start(&builtin_config(), &["--nemo-gym-reward", "math"]);
    let request = nemo_gym_request(&answer("42"), "42");
    for path in ["/v1/rewards/math/verify", "/verify"] {
        let (status, _, body) = post(&server, path, request.to_string()).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["reward"], 1.0, "{path}: {body}");
        assert_eq!(body["mask_sample"], false);
        assert_eq!(body["reward_components"]["correct"], 1.0, "{body}");
        assert!(body.get("failure_kind").is_none(), "{body}");
        // The request comes back as sent (BaseVerifyResponse extends BaseVerifyRequest).
        for field in ["responses_create_params", "response", "expected_answer", "_ng_rollout_id"] {
            assert_eq!(body[field], request[field], "{field}");
        }
    }
    let (status, _, body) = post(&server, "/seed_session", "{}").await;
    assert_eq!((status, body), (200, json!({})));

    // A wrong answer is a valid measurement: 0.1 (the format) and not masked.
    let (_, _, body) = post(&server, "/verify", nemo_gym_request(&answer("41"), "42").to_string()).await;
    assert!((body["reward"].as_f64().unwrap() - 0.1).abs() < 1e-9, "{body}");
    assert_eq!(body["mask_sample"], false);

    // A task with no gold answer cannot be scored: masked, with the kind and the reason.
    let mut no_gold = nemo_gym_request(&answer("42"), "42");
    no_gold.as_object_mut().unwrap().remove("expected_answer");
    no_gold["question_id"] = json!(7);
    let (status, _, body) = post(&server, "/verify", no_gold.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((&body["reward"], &body["mask_sample"]), (&json!(0.0), &json!(true)), "{body}");
    assert_eq!(body["failure_kind"], "reward_server:invalid_input");
    assert!(body["failure_reason"].as_str().unwrap().contains("none of the fields"), "{body}");

    // Not the contract's shape: one failed (masked) sample, not a 500.
    let (status, _, body) = post(&server, "/verify", json!({"response": {"output": []}}).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mask_sample"], true);
    assert!(body["failure_reason"].as_str().unwrap().contains("`responses_create_params` is missing"), "{body}");
    let (status, _, _) = post(&server, "/verify", "[]").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn nemo_gym_root_needs_the_flag() {
    let server = Server::start(&builtin_config(), &[]);
    for path in ["/verify", "/seed_session"] {
        let (status, _, body) = post(&server, path, nemo_gym_request("a", "1").to_string()).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("--nemo-gym-reward"), "{body}");
    }
    let (status, _, body) = post(&server, "/v1/rewards/math/verify", nemo_gym_request(&answer("42"), "42").to_string()).await;
    assert_eq!((status, &body["reward"]), (200, &json!(1.0)), "{body}");
}

#[tokio::test]
async fn validate_over_http() {
    let server = Server::start(&builtin_config(), &[]);
    // An empty body: the reward's built-in samples (examples/validate/), the default threshold.
    let (status, _, report) = post(&server, "/v1/rewards/exact_answer/validate", "").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((&report["reward"], &report["threshold"], &report["flagged"]), (&json!("exact_answer"), &json!(0.5), &json!(false)));
    assert!(report["samples"].as_u64().unwrap() > 0);
    let probes = report["probes"].as_array().unwrap();
    assert!(probes.iter().any(|p| p["name"] == "prompt-echo"), "{report}");
    assert!(probes.iter().all(|p| p["flagged"] == false), "{report}");

    // The caller's samples, as native records.
    let request = json!({"rollouts": [
        {"id": "paris", "prompt": "Capital of France?", "completion": "<answer>Paris</answer>", "reference": "Paris"}
    ], "threshold": 0.9});
    let (status, _, report) = post(&server, "/v1/rewards/exact_answer/validate", request.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((&report["samples"], &report["threshold"], &report["baseline"]["max"]), (&json!(1), &json!(0.9), &json!(1.0)));

    for (body, want) in [
        (json!({"max_samples": 0}), "max_samples is 0"),
        (json!({"max_samples": 65}), "max_samples is 65"),
        (json!({"rollouts": [{"prompt": "no completion"}]}), "sample rollouts[0]"),
        (json!({"sample": []}), "unknown field"),
    ] {
        let (status, _, answer) = post(&server, "/v1/rewards/exact_answer/validate", body.to_string()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(want), "{body}: {answer}");
    }
    let (status, _, _) = post(&server, "/v1/rewards/no_such/validate", "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn native_api_and_reward_list() {
    let server = Server::start(&builtin_config(), &[]);
    let request = json!({"reward": "exact_answer", "rollouts": [
        {"id": "p1", "prompt": "Capital of France?", "completion": "<answer>Paris</answer>", "reference": "Paris"},
        {"id": "p2", "completion": "Final answer: Lyon", "reference": "Paris"},
        {"id": "bad", "prompt": "no completion"}
    ]});
    let (status, _, body) = post(&server, "/v1/score", request.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["score"], 1.0);
    assert_eq!(results[1]["score"], 0.0);
    assert_eq!(results[1]["status"], "OK");
    assert_eq!(results[2]["status"], "INVALID_INPUT");
    assert!(results[2]["error"].as_str().unwrap().contains("rollouts[2]: expected `messages`"));
    assert_eq!(results[0]["provenance"]["reward"], "exact_answer");
    // All good (read in one pass): the same scores, and a record without an id named by its index.
    let request = json!({"reward": "exact_answer", "rollouts": [
        {"id": "p1", "prompt": "Capital of France?", "completion": "<answer>Paris</answer>", "reference": "Paris"},
        {"completion": "Final answer: Lyon", "reference": "Paris"}
    ]});
    let (status, _, body) = post(&server, "/v1/score", request.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let good = body["results"].as_array().unwrap();
    assert_eq!((good[0]["id"].as_str(), good[0]["score"].as_f64()), (Some("p1"), Some(1.0)));
    assert_eq!((good[1]["id"].as_str(), good[1]["score"].as_f64()), (Some("rollout-1"), Some(0.0)));

    let list: Value = reqwest::get(format!("{}/v1/rewards", server.http)).await.unwrap().json().await.unwrap();
    let names: Vec<&str> = list["rewards"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"math") && names.contains(&"exact_answer"), "{names:?}");
    let math = list["rewards"].as_array().unwrap().iter().find(|r| r["name"] == "math").unwrap();
    assert_eq!(math["kind"], "composite");
    assert!(math["metrics"].as_array().unwrap().iter().any(|m| m == "fmt.tags_in_order"), "{math}");
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = Server::start(&builtin_config(), &["--max-body-bytes", "20000", "--max-rollouts-per-request", "3"]);
    let (status, _, body) = post(&server, "/v1/rewards/nosuch/lambda", "[]").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().starts_with("unknown reward `nosuch` (known: "), "{body}");

    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", r#"[{"id": "a", "messages": [{"role": "#).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("request body is truncated JSON"), "{body}");

    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", b"[{\"id\": \"\xff\xfe\"}]".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not valid UTF-8 (invalid byte at offset 9)"), "{body}");

    let big = json!([{"id": "big", "messages": [{"role": "assistant", "content": "x".repeat(30_000)}]}]);
    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", big.to_string()).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("--max-body-bytes (20000"), "{body}");

    let many = Value::Array(vec![json!({"messages": [{"role": "assistant", "content": "a"}]}); 4]);
    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", many.to_string()).await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("4 rollouts in one request, more than --max-rollouts-per-request (3)"));

    let (status, _, body) = post(&server, "/v1/rewards/math/lambda", "42").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("expected a JSON array of rollouts"), "{body}");

    // Bodies refused before scoring are counted by reason for the operator.
    let text = reqwest::get(format!("{}/metrics", server.http)).await.unwrap().text().await.unwrap();
    assert!(text.contains("reward_rejected_total{reason=\"bad_request\"} 3"), "{text}");
    assert!(text.contains("reward_rejected_total{reason=\"body_too_large\"} 1"), "{text}");
}

#[tokio::test]
async fn bearer_token_auth() {
    let server = Server::start(&builtin_config(), &["--auth-token", "s3cret"]);
    let client = reqwest::Client::new();
    let url = format!("{}/v1/rewards/math/lambda", server.http);
    let event = json!([{"id": "a", "messages": [{"role": "assistant", "content": answer("1")}], "reference_answer": 1}]).to_string();
    let none = client.post(&url).body(event.clone()).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = client.post(&url).bearer_auth("s3cre7").body(event.clone()).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = client.post(&url).bearer_auth("s3cret").body(event).send().await.unwrap();
    assert_eq!(right.status(), 200);
    // Probes and metrics stay open for the orchestrator and the scraper.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(client.get(format!("{}{path}", server.http)).send().await.unwrap().status(), 200, "{path}");
    }
}

#[tokio::test]
async fn an_expired_deadline_is_answered_and_its_work_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&guest_config(dir.path(), "guest", SLOW_LIMITS), &["--workers", "1"]);
    // 64 rollouts of ~0.1 s each: far longer than the 300 ms the caller allows.
    let rollouts: Vec<Value> = (0..64).map(|i| json!({"id": format!("w{i}"), "completion": "work 100000"})).collect();
    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/score", server.http))
        .header("x-timeout-ms", "300")
        .body(json!({"reward": "guest", "rollouts": rollouts}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "answered at the deadline, not after the work");
    // The dropped work frees the single worker quickly: a small request is served right after.
    let small = json!({"reward": "guest", "rollouts": [{"id": "after", "completion": "abc"}]});
    let started = std::time::Instant::now();
    let (status, _, body) = post(&server, "/v1/score", small.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["score"], 3.0);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn overload_is_refused_at_once_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &guest_config(dir.path(), "guest", SLOW_LIMITS),
        &["--workers", "1", "--max-inflight-rollouts", "8", "--max-rollouts-per-request", "8"],
    );
    let slow = json!({"reward": "guest", "rollouts": (0..8).map(|i| json!({"id": format!("s{i}"), "completion": "work 20000"})).collect::<Vec<_>>()});
    let url = format!("{}/v1/score", server.http);
    let first = tokio::spawn({
        let (url, body) = (url.clone(), slow.to_string());
        async move { reqwest::Client::new().post(url).body(body).send().await.unwrap().status().as_u16() }
    });
    // Wait until the first request holds all the capacity.
    let metrics_url = format!("{}/metrics", server.http);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        if text.lines().any(|l| l.starts_with("reward_inflight_rollouts{budget=\"cpu\"} 8")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "first request never became in flight:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    let (status, headers, body) = post(&server, "/v1/score", slow.to_string()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(body["error"].as_str().unwrap().contains("overloaded: 8 rollouts in flight, the limit is 8"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "refused at once, not queued");
    assert_eq!(first.await.unwrap(), 200);
    let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    assert!(text.contains("reward_rejected_total{reason=\"overloaded\"} 1"), "{text}");
}

#[tokio::test]
async fn cache_hits_and_metrics() {
    let server = Server::start(&builtin_config(), &[]);
    let event = json!([{"id": "first", "messages": [{"role": "assistant", "content": answer("5")}], "reference_answer": 5}]);
    let (_, _, a) = post(&server, "/v1/score", json!({"reward": "numeric_answer", "rollouts": event}).to_string()).await;
    let mut again = event.clone();
    again[0]["id"] = json!("second");
    let (_, _, b) = post(&server, "/v1/score", json!({"reward": "numeric_answer", "rollouts": again}).to_string()).await;
    assert!(a["results"][0].get("cached").is_none());
    assert_eq!(b["results"][0]["cached"], true);
    assert_eq!(b["results"][0]["id"], "second");
    assert_eq!(a["results"][0]["score"], b["results"][0]["score"]);
    assert_eq!(a["results"][0]["provenance"], b["results"][0]["provenance"]);

    let text = reqwest::get(format!("{}/metrics", server.http)).await.unwrap().text().await.unwrap();
    for needle in [
        "reward_cache_hits_total{reward=\"numeric_answer\"} 1",
        "reward_cache_misses_total{reward=\"numeric_answer\"} 1",
        "reward_rollouts_total{reward=\"numeric_answer\",status=\"OK\"} 2",
        "reward_requests_total{reward=\"numeric_answer\",transport=\"http\",outcome=\"ok\"} 2",
        "reward_request_duration_seconds_bucket{reward=\"numeric_answer\",transport=\"http\",le=",
        "reward_rollout_instructions_bucket{reward=\"numeric_answer\",le=",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

/// Reward names are the caller's text: requests for rewards that are not loaded, over HTTP and
/// gRPC, must not add a series per name (50 made-up names once added 904 lines to `/metrics`).
#[tokio::test]
async fn unknown_reward_names_create_no_metric_series() {
    let server = Server::start(&builtin_config(), &[]);
    let metrics_url = format!("{}/metrics", server.http);
    let body = r#"[{"id":"1","messages":[{"role":"assistant","content":"x"}],"reference_answer":"1"}]"#;
    // One unknown name per door first, so the fixed `(unknown)` series exist before the count.
    let (status, _, _) = post(&server, "/v1/rewards/warm-up-name/lambda", body).await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&server, "/v1/score", r#"{"reward":"warm-up","rollouts":[{"prompt":"p","completion":"c"}]}"#).await;
    assert_eq!(status, 404);
    let before = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap().lines().count();
    for i in 0..50 {
        let (status, _, _) = post(&server, &format!("/v1/rewards/made-up-{i}/lambda"), body).await;
        assert_eq!(status, 404);
        let native = format!(r#"{{"reward":"native-made-up-{i}","rollouts":[{{"prompt":"p","completion":"c"}}]}}"#);
        let (status, _, _) = post(&server, "/v1/score", native).await;
        assert_eq!(status, 404);
    }
    let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    assert!(!text.contains("made-up"), "a made-up reward name became a label:\n{text}");
    assert!(text.contains(r#"reward="(unknown)""#), "unknown names are counted under one label:\n{text}");
    let after = text.lines().count();
    assert!(after <= before + 4, "/metrics grew from {before} to {after} lines");
}

/// Posts `body` to `url` from `n` callers at once; their HTTP statuses.
async fn post_at_once(url: &str, body: &str, n: usize) -> Vec<u16> {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, body) = (url.to_owned(), body.to_owned());
        calls.spawn(async move {
            let response = reqwest::Client::new().post(url).header("content-type", "application/json").body(body).send().await;
            response.unwrap().status().as_u16()
        });
    }
    calls.join_all().await
}

/// A body of tiny records over the rollout cap is refused for its count before any record is
/// read: it once raised the server's peak memory from 88 MB to 573 MB (a 60 MB body of 392k
/// records). Now a refused body costs at most twice its size, eight at once stay within twice
/// `--max-inflight-body-bytes` (the rest are refused with 429, their bytes read to nothing), and
/// the memory goes back to the allocator (a second round does not raise the peak).
#[tokio::test]
async fn refused_bodies_cost_at_most_twice_their_size() {
    let server = Server::start(&builtin_config(), &["--max-inflight-body-bytes", "134217728"]);
    let record = r#"{"id":"r","messages":[{"role":"assistant","content":"x"}],"reference_answer":"1"}"#;
    let n = 60_000_000 / (record.len() + 1);
    let mut body = String::with_capacity(n * (record.len() + 1) + 2);
    body.push('[');
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(record);
    }
    body.push(']');
    let size = body.len() as u64;
    // Warm the server's paths with a normal request first.
    let (status, _, _) = post(&server, "/v1/rewards/math/lambda", format!("[{record}]")).await;
    assert_eq!(status, 200);
    let pid = server.pid();
    let (base_peak, base_rss) = (vm_bytes(pid, "VmHWM"), vm_bytes(pid, "VmRSS"));

    let (status, _, answer) = post(&server, "/v1/rewards/math/lambda", body.clone()).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains(&format!("{n} rollouts in one request")), "{answer}");
    let one = vm_bytes(pid, "VmHWM").saturating_sub(base_peak);
    assert!(one <= 2 * size, "one refused {size}-byte body raised peak memory by {one} bytes");

    // Eight at once: at most two fit in the 128 MiB budget at a time; the others are refused at once.
    let url = format!("{}/v1/rewards/math/lambda", server.http);
    let statuses = post_at_once(&url, &body, 8).await;
    assert!(statuses.iter().all(|s| *s == 413 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429), "the byte budget refused some: {statuses:?}");
    let eight = vm_bytes(pid, "VmHWM").saturating_sub(base_peak);
    assert!(eight <= 2 * (128 << 20) + 2 * size, "eight refused bodies raised peak memory by {eight} bytes");

    // And the memory goes back to the allocator: a second round of eight reuses it instead of
    // growing the peak. (mimalloc keeps freed pages for reuse rather than returning them to the
    // OS at once, so resident memory after a round stays near that round's level.)
    let again = post_at_once(&url, &body, 8).await;
    assert!(again.iter().all(|s| *s == 413 || *s == 429), "{again:?}");
    let second = vm_bytes(pid, "VmHWM").saturating_sub(base_peak);
    assert!(second <= eight + size, "a second round raised the peak from {eight} to {second} bytes: memory was not reused");
    let rss = vm_bytes(pid, "VmRSS");
    eprintln!(
        "refused {size}-byte bodies: one raised peak memory by {one} bytes, eight at once ({statuses:?}) by {eight}, \
         eight more by {second}; resident {base_rss} before, {rss} after"
    );
}

/// Reads from `stream` until the server closes it (EOF or reset) or `within` passes; returns how
/// long that took, or `None` if it stayed open.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // a 408 or the answer to an earlier request; keep reading
            Err(_) => return None,
        }
    }
}

fn http_addr(server: &Server) -> String {
    server.http.trim_start_matches("http://").to_owned()
}

/// A slowloris client (headers one byte a second) and an idle keep-alive connection are closed
/// after `--header-read-timeout-ms`; before, with no timer under axum, both stayed open for good.
#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(&builtin_config(), &["--header-read-timeout-ms", "1000"]);
    let addr = http_addr(&server);

    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /v1/score HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let dribble = {
        let mut writer = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tokio::spawn(async move {
            writer.write_all(b"GET /healthz HTTP/1.1\r\n").await.ok();
            for _ in 0..20 {
                if writer.write_all(b"X").await.is_err() {
                    return true; // closed by the server
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            false
        })
    };
    assert!(closed_within(&mut slow, std::time::Duration::from_secs(5)).await.is_some(), "a stalled header stayed open");
    assert!(dribble.await.unwrap(), "a dribbled header (one byte every 500 ms) stayed open for 10 s");

    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let took = closed_within(&mut idle, std::time::Duration::from_secs(5)).await;
    assert!(took.is_some(), "an idle keep-alive connection stayed open");
    // The server still serves.
    assert_eq!(reqwest::get(format!("{}/healthz", server.http)).await.unwrap().status(), 200);
}

/// A body that stops arriving is answered 408 after `--body-read-timeout-ms`, with the flag named,
/// whether its length was declared (read into one buffer) or it is chunked (read by axum); it
/// was a 400 "could not read the request body" before.
#[tokio::test]
async fn a_stalled_body_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&builtin_config(), &["--body-read-timeout-ms", "500"]);
    let addr = http_addr(&server);
    let heads = [
        "POST /v1/rewards/math/lambda HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"id\": ",
        "POST /v1/rewards/math/lambda HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n[{\"id\":\r\n",
    ];
    for head in heads {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
        });
        assert!(read.await.is_ok(), "no answer to a stalled body within 10 s");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{head:?}: {answer}");
        assert!(answer.contains("--body-read-timeout-ms"), "{answer}");
    }
}

/// 10,000 idle connections, half on each listener: at most `--max-connections` per listener are
/// kept (the rest closed at once), the kept ones are closed after the header timeout, the server's descriptors and memory stay
/// bounded, and it serves afterwards.
#[tokio::test]
async fn ten_thousand_idle_connections_are_capped_and_reaped() {
    let server = Server::start(&builtin_config(), &["--max-connections", "500", "--header-read-timeout-ms", "2000"]);
    let addr = http_addr(&server);
    let pid = server.pid();
    let fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let (base_fds, base_rss) = (fds(), vm_bytes(pid, "VmRSS"));
    let grpc_addr = server.grpc.trim_start_matches("http://").to_owned();
    let mut open = Vec::with_capacity(10_000);
    // 5,000 on each listener, sending nothing.
    for i in 0..10_000 {
        let target = if i % 2 == 0 { &addr } else { &grpc_addr };
        match tokio::net::TcpStream::connect(target).await {
            Ok(s) => open.push(s),
            Err(e) => panic!("connect failed after {} connections: {e}", open.len()),
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let held_fds = fds();
    let held_rss = vm_bytes(pid, "VmRSS");
    assert!(held_fds <= base_fds + 2 * 500 + 16, "the server holds {held_fds} descriptors (was {base_fds}, cap 500 per listener)");
    assert!(held_rss <= base_rss + (64 << 20), "10k connections took {} MiB", (held_rss - base_rss) >> 20);
    // The kept ones are closed after the header timeout.
    let reaped = std::time::Instant::now();
    while fds() > base_fds + 16 {
        assert!(reaped.elapsed() < std::time::Duration::from_secs(10), "idle connections were not reaped: {} descriptors", fds());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(open);
    assert_eq!(reqwest::get(format!("{}/healthz", server.http)).await.unwrap().status(), 200);
    let text = reqwest::get(format!("{}/metrics", server.http)).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"reward_rejected_total{reason="connection_limit"}"#), "{text}");
    eprintln!("10k connections: server descriptors {base_fds} -> {held_fds}, resident {base_rss} -> {held_rss} bytes");
}

/// Both listeners advertise the HTTP/2 stream cap, so a stream flood on one connection is refused
/// by the server past `--max-concurrent-streams` (tonic and axum allowed unlimited streams).
#[tokio::test]
async fn http2_streams_per_connection_are_capped() {
    let server = Server::start(&builtin_config(), &["--max-concurrent-streams", "8"]);
    for addr in [http_addr(&server), server.grpc.trim_start_matches("http://").to_owned()] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        let connection = tokio::spawn(async move {
            let mut connection = connection;
            // Drive the connection until the server's SETTINGS arrive.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(500), &mut connection).await;
            connection.max_concurrent_send_streams()
        });
        let mut client = client.ready().await.unwrap();
        let request = http::Request::get(format!("http://{addr}/healthz")).body(()).unwrap();
        let _ = client.send_request(request, true);
        assert_eq!(connection.await.unwrap(), 8, "stream cap advertised on {addr}");
    }
}

/// The built-in `math_equivalence` reward through the Lambda door: the pairs the numeric reward
/// got wrong (a surd, an identity, an unordered set, a log, infinity) are equivalent, and the near
/// misses (0.333 for 1/3, a closed end for an open one, a sign flip) are not.
#[tokio::test]
async fn math_equivalence_through_the_lambda_door() {
    let server = Server::start(&builtin_config(), &[]);
    let cases = [
        ("2\\sqrt{3}", "\\sqrt{12}", 1.0),
        ("x^2+2x+1", "(x+1)^2", 1.0),
        ("\\{3,2,1\\}", "\\{1,2,3\\}", 1.0),
        ("3", "\\log_2 8", 1.0),
        ("\\infty", "\\infty", 1.0),
        ("0.333", "\\frac{1}{3}", 0.0),
        ("[1, 5]", "[1, 5)", 0.0),
        ("-7", "7", 0.0),
    ];
    let event: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (answer, gold, _))| {
            json!({"id": format!("m{i}"), "messages": [{"role": "user", "content": "Solve."},
                   {"role": "assistant", "content": format!("So the answer is $\\boxed{{{answer}}}$.")}],
                   "reference_answer": gold})
        })
        .collect();
    let (status, _, body) = post(&server, "/v1/rewards/math_equivalence/lambda", Value::Array(event).to_string()).await;
    assert_eq!(status, 200, "{body}");
    for (item, (answer, gold, want)) in body.as_array().unwrap().iter().zip(cases) {
        assert_eq!(item["aggregate_reward_score"].as_f64(), Some(want), "{answer} vs {gold}: {item}");
    }
}

// ---- In process: the HTTP router over rewards loaded in the test, called with `oneshot` ----

/// The HTTP router over the limits guest's reward `guest` (loaded here, no server process), with
/// `options` changed by `adjust`.
fn in_process(adjust: impl FnOnce(&mut reward_server::server::ServeOptions)) -> axum::Router {
    use reward_server::server::{AppState, ServeOptions};
    let dir = tempfile::tempdir().unwrap();
    let config = guest_config(dir.path(), "guest", "");
    let rewards = reward_server::config::Rewards::load(common::host(), &config).unwrap();
    let mut options = ServeOptions::new(config);
    adjust(&mut options);
    reward_server::server::http::router(AppState::from_rewards(common::host().clone(), rewards, options).unwrap())
}

/// One request through the router: the status and the JSON answer.
async fn oneshot(router: &axum::Router, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    use tower::ServiceExt;
    let mut request = axum::http::Request::post(path).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router.clone().oneshot(request.body(axum::body::Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())))
}

/// The scoring path without a process or a socket: a good rollout scores, a bad record fails
/// alone in its place, an unknown reward is 404 naming the known ones, and a door that is off
/// (NeMo Gym's root `/verify`, the OpenAI graders door) says how to turn it on.
#[tokio::test]
async fn the_router_scores_in_process() {
    let router = in_process(|_| {});
    let body = json!({"reward": "guest", "rollouts": [
        {"id": "a", "prompt": "q", "completion": "four"},
        {"id": "b", "prompt": "q"},
        {"id": "c", "prompt": "q", "completion": "panic"},
    ]});
    let (status, answer) = oneshot(&router, "/v1/score", &[], &body.to_string()).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["results"].as_array().unwrap();
    let rows: Vec<(&str, &str)> = results.iter().map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(rows, [("a", "OK"), ("b", "INVALID_INPUT"), ("c", "PLUGIN_ERROR")], "{answer}");
    assert_eq!(results[0]["score"], 4.0, "the guest scores the completion's length: {answer}");

    let (status, answer) = oneshot(&router, "/v1/score", &[], &json!({"reward": "nope", "rollouts": []}).to_string()).await;
    assert_eq!((status, answer["kind"].as_str()), (404, Some("unknown_reward")), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("known: guest"), "{answer}");

    let (status, answer) = oneshot(&router, "/verify", &[], "{}").await;
    assert_eq!((status, answer["kind"].as_str()), (404, Some("not_configured")), "{answer}");
    let (status, answer) = oneshot(&router, "/v1/fine_tuning/alpha/graders/run", &[], "{}").await;
    assert_eq!((status, answer["error"]["code"].as_str()), (404, Some("not_configured")), "{answer}");
}

/// The token check and the request caps, in process: no token or a wrong one is 401, the right
/// one scores; a body over the cap is 413; too many rollouts is 413 naming the flag.
#[tokio::test]
async fn the_router_checks_tokens_and_caps_in_process() {
    let router = in_process(|o| {
        o.auth = reward_server::server::TokenSource::Fixed("s3cret".into());
        o.max_body_bytes = 4096;
        o.max_inflight_body_bytes = 4096;
        o.scorer.max_rollouts_per_request = 2;
    });
    let one = json!({"reward": "guest", "rollouts": [{"id": "a", "prompt": "q", "completion": "four"}]}).to_string();
    assert_eq!(oneshot(&router, "/v1/score", &[], &one).await.0, 401);
    assert_eq!(oneshot(&router, "/v1/score", &[("authorization", "Bearer wrong")], &one).await.0, 401);
    let token = [("authorization", "Bearer s3cret")];
    let (status, answer) = oneshot(&router, "/v1/score", &token, &one).await;
    assert_eq!((status, answer["results"][0]["score"].as_f64()), (200, Some(4.0)), "{answer}");

    let three: Vec<Value> = (0..3).map(|i| json!({"id": format!("r{i}"), "prompt": "q", "completion": "x"})).collect();
    let (status, answer) = oneshot(&router, "/v1/score", &token, &json!({"reward": "guest", "rollouts": three}).to_string()).await;
    assert_eq!((status, answer["kind"].as_str()), (413, Some("too_many_rollouts")), "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("--max-rollouts-per-request (2)"), "{answer}");
    let big = json!({"reward": "guest", "rollouts": [{"id": "a", "prompt": "q", "completion": "x".repeat(8192)}]}).to_string();
    let (status, answer) = oneshot(&router, "/v1/score", &token, &big).await;
    assert_eq!((status, answer["kind"].as_str()), (413, Some("body_too_large")), "{answer}");
}
