//! All doors agree, the Lambda bridge's part: the batches of the server's agreement test
//! (`reward-server/tests/agreement.rs`, whose table and comparable form this test shares through
//! `#[path]`) sent through the bridge forwarding over HTTP (the server's Lambda door), over gRPC
//! (`Score`), and scoring in process, each under every `on_error` policy, get the answers the
//! server's gRPC `Score` gives, as the Nova contract carries them (no status, no "no score": a
//! failed rollout is its policy's score and `reward_error` = 1).
//!
//! The bridge is driven in this process (`Bridge::from_env` + `handle`, what the Lambda runtime
//! calls), not under the Lambda emulator: `bridge_lambda.rs` covers the runtime around it. The
//! server is the workspace's release binary (see `common::server_bin`). Each bridge's own
//! `REWARD_ON_ERROR` is set to its reward's policy, so under `fail` it fails the invocation as
//! the server's door answers 422.

mod common;

#[path = "../../reward-server/tests/common/agreement.rs"]
mod agreement;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use agreement::{Batch, Client, Outcome, POLICIES, View, assert_agrees, assert_expected, batches, grpc_score, project, read_nova};
use common::{Server, plugin_path};
use rft_launch::bridge::{self, Bridge};
use serde_json::Value;
use serde_json::value::RawValue;

/// How the bridge says the request failed: a Lambda invocation error of this type.
const BRIDGE_FAILED: &str = "Lambda error RewardServerFailed";

fn bridge(reward: &str, policy: &str, target: (&str, String)) -> Bridge {
    let env: HashMap<&str, String> =
        HashMap::from([(bridge::ENV_REWARD, reward.to_owned()), (bridge::ENV_ON_ERROR, policy.to_owned()), target]);
    Bridge::from_env(|k| env.get(k).cloned()).unwrap_or_else(|e| panic!("bridge for {reward}: {e:#}"))
}

async fn invoke(bridge: &Bridge, batch: &Batch) -> Outcome {
    let payload = RawValue::from_string(Value::Array(batch.nova_records()).to_string()).unwrap();
    match bridge.handle(&payload, SystemTime::now() + Duration::from_secs(60)).await {
        Ok(answer) => read_nova(&serde_json::from_str(answer.get()).unwrap()),
        Err(e) => {
            let detail = e.to_string();
            let d = lambda_runtime::Diagnostic::from(e);
            Outcome::Failed { how: format!("Lambda error {}", d.error_type), detail }
        }
    }
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("rewards.toml");
    std::fs::write(&path, agreement::rewards_toml(&plugin_path("format"), &plugin_path("limits-guest"))).unwrap();
    path
}

/// The three modes for `batch` under `policy`, against the server's gRPC `Score`; `modes`
/// selects which (by name: `http`, `grpc`, `in-process`).
async fn check_modes(server: &Server, config: &Path, modes: &[&str], only: impl Fn(&Batch, &str) -> bool) {
    let mut client = Client::connect(format!("http://{}", server.grpc)).await.unwrap();
    for policy in POLICIES {
        for batch in batches().into_iter().filter(|b| only(b, policy)) {
            let reward = batch.reward_for(policy);
            let full = grpc_score(&mut client, &batch, &reward).await;
            assert_expected(&format!("gRPC Score, batch {}, reward {reward}", batch.name), &batch, policy, &full);
            let want = project(&full, View::Nova);
            for &mode in modes {
                let target = match mode {
                    "http" => (bridge::ENV_SERVER_URL, server.http.clone()),
                    "grpc" => (bridge::ENV_SERVER_URL, format!("grpc://{}", server.grpc)),
                    "in-process" => (bridge::ENV_CONFIG, config.display().to_string()),
                    _ => unreachable!("{mode}"),
                };
                let got = invoke(&bridge(&reward, policy, target), &batch).await;
                assert_agrees(&format!("bridge ({mode}), batch {}, reward {reward}", batch.name), &got, &want, BRIDGE_FAILED);
            }
        }
    }
}

/// Every batch under every policy, through the bridge's three modes.
#[tokio::test]
async fn the_bridge_answers_as_the_server_in_every_mode_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let server = Server::start(&config, &["--cache-entries", "0"]);
    check_modes(&server, &config, &["http", "grpc", "in-process"], |_, _| true).await;
}
