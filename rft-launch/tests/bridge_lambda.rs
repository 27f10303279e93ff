//! The real bridge binary under a local Lambda Runtime API emulator (`cargo lambda watch
//! --only-lambda-apis`), invoked with Nova reward payloads, forwarding to the real reward server
//! on loopback: a normal batch, the server down, the server slower than the deadline, a payload
//! at the 6 MB limit and one past it, gRPC forwarding, and in-process scoring.

mod common;

use std::process::{Command, Stdio};

use common::{ChildGuard, Server, free_port, plugin_path, repo_root, require_tool, start_on_free_port};
use serde_json::{Value, json};

/// The emulator and one bridge process attached to it.
struct Lambda {
    port: u16,
    _emulator: ChildGuard,
    _bridge: ChildGuard,
}

impl Lambda {
    fn start(env: &[(&str, String)]) -> Lambda {
        require_tool("cargo-lambda", "pip install cargo-lambda");
        let (port, emulator) = start_on_free_port("cargo lambda watch", |port| {
            Command::new("cargo-lambda")
                .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting cargo lambda watch")
        });
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reward-lambda-bridge"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env("REWARD_SERVER_CACHE_DIR", repo_root().join("target/test-artifact-cache"))
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let bridge = cmd.stderr(Stdio::inherit()).stdout(Stdio::inherit()).spawn().expect("starting the bridge");
        Lambda { port, _emulator: ChildGuard::new(emulator), _bridge: ChildGuard::new(bridge) }
    }

    /// Invokes the function; returns the HTTP status and the body.
    async fn invoke(&self, payload: String) -> (u16, String) {
        let resp = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/2015-03-31/functions/_/invocations", self.port))
            .body(payload)
            .send()
            .await
            .expect("invoking the emulator");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }
}

fn nova(id: &str, answer: &str, reference: &str) -> Value {
    json!({
        "id": id,
        "messages": [
            {"role": "user", "content": "Revenue grew from 120 to 135. Growth in percent?"},
            {"role": "assistant", "content": answer},
        ],
        "reference_answer": {"answer": reference},
    })
}

fn batch() -> Value {
    json!([
        nova("finqa-1", "<think>135/120 = 1.125</think><answer>12.5%</answer>", "12.5"),
        nova("finqa-2", "<think>guess</think><answer>40</answer>", "12.5"),
        // Parts-shaped content and the nova_assistant role.
        {"id": "finqa-3", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
            {"role": "nova_assistant", "content": [{"type": "text", "text": "<think>2+2</think><answer>4</answer>"}]}],
         "metadata": {"reference_answer": {"answer": "4"}}},
        // Not a rollout: no messages.
        {"id": "broken"},
    ])
}

fn ids(answer: &Value) -> Vec<&str> {
    answer.as_array().expect("an array").iter().map(|a| a["id"].as_str().unwrap()).collect()
}

fn metric(item: &Value, name: &str) -> Option<f64> {
    item["metrics_list"].as_array().unwrap().iter().find(|m| m["name"] == name).map(|m| m["value"].as_f64().unwrap())
}

fn assert_scored(answer: &Value) {
    assert_eq!(ids(answer), ["finqa-1", "finqa-2", "finqa-3", "broken"]);
    let a = answer.as_array().unwrap();
    assert_eq!(a[0]["aggregate_reward_score"], 1.0, "{answer}");
    assert_eq!(metric(&a[0], "reward_error"), None);
    let second = a[1]["aggregate_reward_score"].as_f64().unwrap();
    assert!((second - 0.1).abs() < 1e-9, "format only: {answer}");
    assert_eq!(a[2]["aggregate_reward_score"], 1.0, "{answer}");
    assert_eq!(a[3]["aggregate_reward_score"], 0.0);
    assert_eq!(metric(&a[3], "reward_error"), Some(1.0), "{answer}");
    for m in a[0]["metrics_list"].as_array().unwrap() {
        assert!(m["type"] == "Reward" || m["type"] == "Metric", "{m}");
    }
}

fn assert_all_failed(answer: &Value, expected: &[&str]) {
    assert_eq!(ids(answer), expected);
    for item in answer.as_array().unwrap() {
        assert_eq!(item["aggregate_reward_score"], 0.0, "{item}");
        assert_eq!(metric(item, "reward_error"), Some(1.0), "{item}");
    }
}

fn builtin_server(extra: &[&str]) -> Server {
    Server::start(&repo_root().join("rewards.toml"), extra)
}

#[tokio::test]
async fn a_batch_is_forwarded_over_http_and_answered_in_order_with_real_ids() {
    let server = builtin_server(&["--auth-token", "tok-123"]);
    let lambda = Lambda::start(&[
        ("REWARD_SERVER_URL", server.http.clone()),
        ("REWARD_NAME", "math".into()),
        ("REWARD_SERVER_TOKEN", "tok-123".into()),
    ]);
    let (status, body) = lambda.invoke(batch().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_scored(&serde_json::from_str(&body).unwrap());

    // One object instead of an array is answered as a one-item array.
    let (status, body) = lambda.invoke(batch()[0].to_string()).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ids(&answer), ["finqa-1"]);
}

#[tokio::test]
async fn a_wrong_token_is_a_failed_batch_not_a_malformed_answer() {
    let server = builtin_server(&["--auth-token", "right"]);
    let lambda = Lambda::start(&[
        ("REWARD_SERVER_URL", server.http.clone()),
        ("REWARD_NAME", "math".into()),
        ("REWARD_SERVER_TOKEN", "wrong".into()),
    ]);
    let (status, body) = lambda.invoke(batch().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_all_failed(&serde_json::from_str(&body).unwrap(), &["finqa-1", "finqa-2", "finqa-3", "broken"]);
}

#[tokio::test]
async fn a_batch_is_forwarded_over_grpc() {
    let server = builtin_server(&[]);
    let lambda = Lambda::start(&[("REWARD_SERVER_URL", format!("grpc://{}", server.grpc)), ("REWARD_NAME", "math".into())]);
    let (status, body) = lambda.invoke(batch().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_scored(&serde_json::from_str(&body).unwrap());
}

#[tokio::test]
async fn a_batch_is_scored_in_process_without_a_server() {
    let lambda =
        Lambda::start(&[("REWARD_CONFIG", repo_root().join("rewards.toml").display().to_string()), ("REWARD_NAME", "math".into())]);
    let (status, body) = lambda.invoke(batch().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_scored(&serde_json::from_str(&body).unwrap());
}

#[tokio::test]
async fn server_down_answers_every_id_with_reward_error() {
    // Nothing listens on this port.
    let port = free_port();
    let lambda = Lambda::start(&[("REWARD_SERVER_URL", format!("http://127.0.0.1:{port}")), ("REWARD_NAME", "math".into())]);
    let (status, body) = lambda.invoke(batch().to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_all_failed(&serde_json::from_str(&body).unwrap(), &["finqa-1", "finqa-2", "finqa-3", "broken"]);
}

#[tokio::test]
async fn server_down_with_on_error_fail_fails_the_invocation() {
    let port = free_port();
    let lambda = Lambda::start(&[
        ("REWARD_SERVER_URL", format!("http://127.0.0.1:{port}")),
        ("REWARD_NAME", "math".into()),
        ("REWARD_ON_ERROR", "fail".into()),
    ]);
    let (_, body) = lambda.invoke(batch().to_string()).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(answer.get("errorMessage").is_some_and(|m| m.as_str().unwrap().contains("on_error = fail")), "{body}");
}

#[tokio::test]
async fn server_slower_than_the_deadline_answers_every_id_with_reward_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewards.toml");
    std::fs::write(
        &config,
        format!(
            "[rewards.slow]\nplugin = \"{}\"\nlimits = {{ fuel = 20_000_000_000, timeout_ms = 60000 }}\n",
            plugin_path("limits-guest").display()
        ),
    )
    .unwrap();
    let server = Server::start(&config, &["--workers", "1"]);
    // The emulator gives each invocation a deadline; the margin leaves the bridge about 2 s of
    // it (see `deadline_budget_ms` below), far less than 16 rollouts of `work 200000` need.
    let lambda = Lambda::start(&[
        ("REWARD_SERVER_URL", server.http.clone()),
        ("REWARD_NAME", "slow".into()),
        ("REWARD_DEADLINE_MARGIN_MS", deadline_margin_for_budget_ms(2000).to_string()),
    ]);
    let rollouts: Vec<Value> = (0..16).map(|i| nova(&format!("slow-{i}"), "work 200000", "1")).collect();
    let expected: Vec<String> = (0..16).map(|i| format!("slow-{i}")).collect();
    let (status, body) = lambda.invoke(Value::Array(rollouts).to_string()).await;
    assert_eq!(status, 200, "{body}");
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_all_failed(&serde_json::from_str(&body).unwrap(), &expected);
}

/// The emulator's per-invocation timeout (cargo lambda's default function timeout).
const EMULATOR_TIMEOUT_MS: u64 = 30_000;

fn deadline_margin_for_budget_ms(budget: u64) -> u64 {
    EMULATOR_TIMEOUT_MS - budget
}

/// A batch of about 6 MB (the Lambda limit) in; one past the limit is refused with a clear error.
#[tokio::test]
async fn payloads_at_and_past_the_6_mb_limit() {
    let server = builtin_server(&[]);
    let lambda = Lambda::start(&[("REWARD_SERVER_URL", server.http.clone()), ("REWARD_NAME", "math".into())]);
    // 200 rollouts with ~30 KB prompts each: just under 6 MiB.
    let filler = "x".repeat(31_000);
    let make = |n: usize| {
        let items: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": format!("big-{i}"), "messages": [
                    {"role": "user", "content": filler},
                    {"role": "assistant", "content": "<think>t</think><answer>12.5</answer>"}],
                    "reference_answer": {"answer": "12.5"}})
            })
            .collect();
        Value::Array(items).to_string()
    };
    let payload = make(200);
    assert!(payload.len() > 6_000_000 && payload.len() <= 6 * 1024 * 1024, "{}", payload.len());
    let (status, body) = lambda.invoke(payload).await;
    assert_eq!(status, 200, "{}", &body[..body.len().min(500)]);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.as_array().unwrap().len(), 200);
    assert_eq!(answer[199]["id"], "big-199");
    assert_eq!(answer[199]["aggregate_reward_score"], 1.0);

    let over = make(210);
    assert!(over.len() > 6 * 1024 * 1024);
    let (_, body) = lambda.invoke(over).await;
    assert!(body.contains("exceeds the 6291456-byte Lambda limit"), "{}", &body[..body.len().min(500)]);
}
