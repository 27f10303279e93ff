//! The server's life: readiness, SIGTERM drain during a burst, reloads during a burst, and the
//! gRPC service through a real tonic client (batch, streaming, list, health, auth, deadline).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::server::Server;
use common::{SLOW_LIMITS, guest_config, plugin_path, repo_root, vm_bytes};
use reward_proto::v1 as pb;
use serde_json::{Value, json};

fn format_config(path: &Path, max_chars: u32) {
    std::fs::write(
        path,
        format!(
            "[rewards.fmt]\nplugin = \"{}\"\nconfig = {{ required_tags = [\"answer\"], max_chars = {max_chars} }}\n",
            plugin_path("format").display()
        ),
    )
    .unwrap();
}

async fn post_json(url: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
    let response = reqwest::Client::new().post(url).body(body.to_string()).send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

#[tokio::test]
async fn sigterm_during_a_burst_answers_every_accepted_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&guest_config(dir.path(), "guest", SLOW_LIMITS), &["--workers", "2", "--watch-interval-ms", "0"]);
    let url = format!("{}/v1/score", server.http);
    let body = json!({"reward": "guest", "rollouts": (0..8).map(|i| json!({"id": format!("r{i}"), "completion": "work 5000"})).collect::<Vec<_>>()});
    let burst: Vec<_> = (0..16)
        .map(|_| {
            let (url, body) = (url.clone(), body.clone());
            tokio::spawn(async move { post_json(&url, &body).await })
        })
        .collect();
    // Wait until work is in flight, then ask the server to stop.
    let metrics_url = format!("{}/metrics", server.http);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        let inflight: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("reward_inflight_rollouts{budget=\"cpu\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        if inflight >= 64.0 {
            break;
        }
        assert!(Instant::now() < deadline, "burst never got in flight:\n{text}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.sigterm();
    // New work is refused while the burst drains.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let late = post_json(&url, &body).await;
    if let Ok((status, body)) = &late {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["kind"], "shutting_down");
    }
    let ready = reqwest::get(format!("{}/readyz", server.http)).await;
    if let Ok(r) = ready {
        assert_eq!(r.status(), 503);
    }
    for request in burst {
        let (status, body) = request.await.unwrap().expect("an accepted request lost its connection");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"].as_array().unwrap().len(), 8);
        assert!(body["results"].as_array().unwrap().iter().all(|r| r["status"] == "OK"));
    }
    assert_eq!(server.wait(Duration::from_secs(30)), Some(0), "clean exit after the drain");
}

#[tokio::test]
async fn reloads_during_a_burst_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rewards.toml");
    format_config(&config, 1000);
    let server = Server::start(&config, &["--watch-interval-ms", "100", "--cache-entries", "0"]);
    let url = format!("{}/v1/score", server.http);
    let body = json!({"reward": "fmt", "rollouts": (0..16).map(|i| json!({"id": format!("r{i}"), "completion": format!("<answer>{i}</answer>")})).collect::<Vec<_>>()});

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let hashes = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (url, body, stop, failures, hashes) = (url.clone(), body.clone(), stop.clone(), failures.clone(), hashes.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    match post_json(&url, &body).await {
                        Ok((200, v)) => {
                            let results = v["results"].as_array().unwrap();
                            assert!(results.iter().all(|r| r["status"] == "OK" && r["score"] == 1.0), "{v}");
                            hashes.lock().unwrap().insert(results[0]["provenance"]["config_hash"].as_str().unwrap().to_owned());
                        }
                        other => {
                            eprintln!("failed request: {other:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();

    // A change to the file is picked up by the watcher...
    tokio::time::sleep(Duration::from_millis(300)).await;
    format_config(&config, 2000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // ... an admin call reloads too ...
    format_config(&config, 3000);
    let (status, reply) = post_json(&format!("{}/v1/admin/reload", server.http), &json!({})).await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["rewards"], json!(["fmt"]));
    // ... and a broken config is refused while the old rewards keep serving.
    std::fs::write(&config, "[rewards.fmt]\nplugin = \"nosuch\"\n").unwrap();
    let (status, reply) = post_json(&format!("{}/v1/admin/reload", server.http), &json!({})).await.unwrap();
    assert_eq!(status, 422);
    assert!(reply["error"].as_str().unwrap().contains("plugin `nosuch` not found"), "{reply}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    for w in workers {
        requests += w.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed requests during reloads");
    assert!(requests > 20, "only {requests} requests ran");
    assert_eq!(hashes.lock().unwrap().len(), 3, "three configs served: {:?}", hashes.lock().unwrap());
}

async fn grpc_client(server: &Server) -> pb::reward_service_client::RewardServiceClient<tonic::transport::Channel> {
    pb::reward_service_client::RewardServiceClient::connect(server.grpc.clone()).await.unwrap()
}

fn rollout(id: &str, completion: &str, reference: &str) -> pb::Rollout {
    pb::Rollout {
        id: id.into(),
        messages: vec![
            pb::Message { role: "user".into(), content: "question".into() },
            pb::Message { role: "assistant".into(), content: completion.into() },
        ],
        completion: String::new(),
        reference_json: reference.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn grpc_score_list_and_health() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let mut client = grpc_client(&server).await;
    let response = client
        .score(pb::ScoreRequest {
            reward: "numeric_answer".into(),
            rollouts: vec![
                rollout("right", "<answer>42</answer>", "42"),
                rollout("wrong", "<answer>41</answer>", "42"),
                rollout("bad-ref", "<answer>41</answer>", "{not json"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let r = &response.results;
    assert_eq!(r.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["right", "wrong", "bad-ref"]);
    assert_eq!((r[0].score, r[0].status()), (Some(1.0), pb::Status::Ok));
    assert_eq!((r[1].score, r[1].status()), (Some(0.0), pb::Status::Ok));
    assert_eq!(r[2].status(), pb::Status::InvalidInput);
    assert!(r[2].error.contains("`reference_json` is not valid JSON"), "{}", r[2].error);
    assert!(r[0].instructions > 0);
    assert_eq!(r[0].provenance.as_ref().unwrap().plugin_sha256.len(), 64);
    assert!(r[0].metrics.iter().any(|m| m.name == "numeric_tier" && m.kind() == pb::MetricKind::Metric));

    let err = client.score(pb::ScoreRequest { reward: "nosuch".into(), rollouts: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("unknown reward `nosuch`"));

    let list = client.list_rewards(pb::ListRewardsRequest {}).await.unwrap().into_inner();
    assert!(list.rewards.iter().any(|r| r.name == "math" && r.kind == "composite"));

    let channel = tonic::transport::Channel::from_shared(server.grpc.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status =
        health.check(tonic_health::pb::HealthCheckRequest { service: "reward.v1.RewardService".into() }).await.unwrap().into_inner();
    assert_eq!(status.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
}

#[tokio::test]
async fn grpc_stream_answers_each_message_before_the_next_is_sent() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let mut client = grpc_client(&server).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut answers = client.score_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    for round in 0..3 {
        let ids: Vec<String> = (0..4).map(|i| format!("m{round}-{i}")).collect();
        tx.send(pb::ScoreRequest {
            reward: "numeric_answer".into(),
            rollouts: ids.iter().map(|id| rollout(id, "<answer>7</answer>", "7")).collect(),
        })
        .await
        .unwrap();
        // Every answer of this message arrives while the stream is still open.
        let mut got = Vec::new();
        while got.len() < ids.len() {
            let scored = tokio::time::timeout(Duration::from_secs(10), answers.message()).await.unwrap().unwrap().unwrap();
            assert_eq!(scored.score, Some(1.0));
            got.push(scored.id);
        }
        got.sort();
        assert_eq!(got, ids);
    }
    drop(tx);
    assert!(answers.message().await.unwrap().is_none(), "the stream ends when the client half-closes");
}

#[tokio::test]
async fn grpc_auth_and_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &guest_config(dir.path(), "guest", SLOW_LIMITS),
        &["--auth-token", "tok", "--workers", "1", "--request-timeout-ms", "300"],
    );
    let mut client = grpc_client(&server).await;
    let request = || pb::ScoreRequest { reward: "guest".into(), rollouts: vec![rollout("a", "abc", "")] };
    let err = client.score(request()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(request());
    wrong.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(client.score(wrong).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let mut right = tonic::Request::new(request());
    right.metadata_mut().insert("authorization", "Bearer tok".parse().unwrap());
    assert_eq!(client.score(right).await.unwrap().into_inner().results[0].score, Some(3.0));

    let mut slow = tonic::Request::new(pb::ScoreRequest {
        reward: "guest".into(),
        rollouts: (0..32).map(|i| rollout(&format!("s{i}"), "work 100000", "")).collect(),
    });
    slow.metadata_mut().insert("authorization", "Bearer tok".parse().unwrap());
    // No client-side timer: the server's own cap (--request-timeout-ms 300) answers.
    let started = Instant::now();
    let err = client.score(slow).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err}");
    assert!(err.message().contains("the request was allowed 300ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_rotated_token_file_takes_over_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "old-token\n").unwrap();
    let server = Server::start(
        &guest_config(dir.path(), "guest", SLOW_LIMITS),
        &["--auth-token-file", token_file.to_str().unwrap(), "--watch-interval-ms", "50"],
    );
    let mut client = grpc_client(&server).await;
    let call = |token: &str| {
        let mut request = tonic::Request::new(pb::ScoreRequest { reward: "guest".into(), rollouts: vec![rollout("a", "abc", "")] });
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    };
    assert!(client.score(call("old-token")).await.is_ok());

    std::fs::write(&token_file, "new-token\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.score(call("new-token")).await.is_err() {
        assert!(Instant::now() < deadline, "the new token was never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(client.score(call("old-token")).await.unwrap_err().code(), tonic::Code::Unauthenticated);

    // Emptying the file keeps the last good token: auth never opens by accident.
    std::fs::write(&token_file, "").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.score(tonic::Request::new(pb::ScoreRequest { reward: "guest".into(), rollouts: vec![] })).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    assert!(client.score(call("new-token")).await.is_ok());
    let http = reqwest::Client::new()
        .post(format!("{}/v1/score", server.http))
        .bearer_auth("new-token")
        .json(&serde_json::json!({"reward": "guest", "rollouts": [{"completion": "abcd"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(http.status().as_u16(), 200, "HTTP checks the same rotated token");
}

/// Opens a call to `RewardService/{method}` on a raw HTTP/2 connection made by `builder` (the
/// bytes and the flow control are the test's): the answer to come, and the request body's sender.
async fn raw_grpc_call(
    server: &Server,
    method: &str,
    builder: h2::client::Builder,
) -> (h2::client::ResponseFuture, h2::SendStream<bytes::Bytes>) {
    let addr = server.grpc.trim_start_matches("http://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut h2, connection) = builder.handshake::<_, bytes::Bytes>(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{addr}/reward.v1.RewardService/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    h2.send_request(request, false).unwrap()
}

/// One uncompressed gRPC message frame: flag, big-endian length, the message.
fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// `grpc-message` as text (it is percent-encoded on the wire).
fn percent_decoded(s: &str) -> String {
    let (bytes, mut out, mut i) = (s.as_bytes(), Vec::new(), 0);
    while i < bytes.len() {
        match (bytes[i], s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// prost decodes a whole message before the handler sees it, and an empty rollout is two bytes
/// on the wire but some 150 in memory: a 16 MB `ScoreRequest` of 8M empty rollouts, within
/// `--max-body-bytes`, asked for over a gigabyte before the rollout cap was checked. The rollouts
/// are now counted on the wire and the message refused at the first one past the cap: the
/// server's peak memory grows by less than the message's size.
#[tokio::test]
async fn a_grpc_message_of_too_many_rollouts_is_refused_before_it_is_decoded() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let mut client = grpc_client(&server).await;
    client
        .score(pb::ScoreRequest { reward: "numeric_answer".into(), rollouts: vec![rollout("w", "<answer>1</answer>", "1")] })
        .await
        .unwrap();
    let pid = server.pid();
    let base_peak = vm_bytes(pid, "VmHWM");

    let n = 8 << 20;
    let mut message = vec![0x0a, 14];
    message.extend_from_slice(b"numeric_answer");
    message.extend(std::iter::repeat_n([0x12u8, 0x00], n).flatten());
    let size = message.len() as u64;
    let (response, mut send) = raw_grpc_call(&server, "Score", h2::client::Builder::new()).await;
    send.send_data(grpc_frame(&message).into(), true).unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), response).await.expect("an answer").unwrap();
    let (parts, mut body) = response.into_parts();
    // A refusal is trailers-only (the status in the headers), or headers then trailers.
    let trailers = match parts.headers.get("grpc-status") {
        Some(_) => parts.headers,
        None => {
            while let Some(chunk) = body.data().await {
                chunk.unwrap();
            }
            body.trailers().await.unwrap().expect("trailers")
        }
    };
    let message_text = percent_decoded(trailers.get("grpc-message").map_or("", |v| v.to_str().unwrap()));
    assert_eq!(trailers["grpc-status"], "3", "INVALID_ARGUMENT: {message_text}");
    assert!(message_text.contains("more than --max-rollouts-per-request"), "{message_text}");
    let grown = vm_bytes(pid, "VmHWM").saturating_sub(base_peak);
    assert!(grown <= size, "a refused {size}-byte message of {n} rollouts raised peak memory by {grown} bytes");
    eprintln!("a refused {size}-byte gRPC message of {n} empty rollouts raised peak memory by {grown} bytes");
}

/// A ScoreStream client that stops reading at the HTTP/2 level (a zero flow-control window, so
/// the server cannot send it a byte) used to pin the admission of its pending requests for good:
/// every other caller was then refused. Now its sends time out, its work is dropped and the
/// admission comes back. (A grpcio client that never reads does not show it: grpcio buffers.)
#[tokio::test]
async fn a_stream_client_that_stops_reading_releases_its_admission() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &guest_config(dir.path(), "guest", SLOW_LIMITS),
        &[
            "--max-inflight-rollouts",
            "1024",
            "--max-rollouts-per-request",
            "512",
            "--stream-send-timeout-ms",
            "3000",
            "--cache-entries",
            "0",
        ],
    );
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(0);
    let (_response, mut send) = raw_grpc_call(&server, "ScoreStream", builder).await;
    // 60 KB answers: the first message's fill the answer channel (256 answers) and HTTP/2's send
    // buffer; the next three's cannot be sent and pin their 768 rollouts of admission. (Four
    // messages fit the 1,024 admitted at once: none is refused, so only the stall can free them.)
    for m in 0..4 {
        let message = pb::ScoreRequest {
            reward: "guest".into(),
            rollouts: (0..256).map(|i| rollout(&format!("s{m}-{i}"), "big-reason 60000", "null")).collect(),
        };
        send.send_data(grpc_frame(&prost::Message::encode_to_vec(&message)).into(), false).unwrap();
    }
    // Wait until the stalled stream holds at least 768 of the 1,024 rollouts of admission.
    let metrics_url = format!("{}/metrics", server.http);
    let waiting = Instant::now();
    loop {
        let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        let inflight: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("reward_inflight_rollouts{budget=\"cpu\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0);
        if inflight >= 768.0 {
            eprintln!("stall in place after {:?}", waiting.elapsed());
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(20), "the stream never filled the admission:\n{text}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Another caller needs 512 rollouts of admission. While the stalled stream holds
    // it, it is refused; once the stall is noticed it is served.
    let mut client = grpc_client(&server).await;
    let started = Instant::now();
    let mut refused = 0;
    loop {
        let request =
            pb::ScoreRequest { reward: "guest".into(), rollouts: (0..512).map(|i| rollout(&format!("p{i}"), "abc", "null")).collect() };
        match client.score(request).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().results.len(), 512);
                eprintln!("probe served after {:?}", started.elapsed());
                break;
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => refused += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the stalled stream still holds admission ({refused} refusals)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused > 0, "the stalled stream held the admission for a while");
    let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"reward_rejected_total{reason="stream_stalled"}"#), "{text}");
    eprintln!("admission came back {:?} after the stall was complete ({refused} refusals before)", started.elapsed());
    drop(send);
}

/// An open ScoreStream with nothing in flight must not keep a draining server from exiting.
#[tokio::test]
async fn an_idle_open_stream_does_not_hold_the_drain() {
    let mut server = Server::start(&repo_root().join("rewards.toml"), &["--drain-timeout-ms", "2000"]);
    let mut client = grpc_client(&server).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut answers = client.score_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    tx.send(pb::ScoreRequest { reward: "numeric_answer".into(), rollouts: vec![rollout("a", "<answer>7</answer>", "7")] }).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), answers.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.score, Some(1.0));
    // The stream stays open (tx alive), idle, and this client does not even read the server's
    // goodbye: `wait` blocks the test's runtime.
    server.sigterm();
    let started = Instant::now();
    assert_eq!(server.wait(Duration::from_secs(15)), Some(0), "exit 0 after the drain");
    assert!(started.elapsed() < Duration::from_secs(10), "exited after {:?}", started.elapsed());
    // The stream ended cleanly on the client's side too.
    assert!(matches!(answers.message().await, Ok(None) | Err(_)));
    drop(tx);
}

/// Without a bearer token the server serves loopback only: on another address it refuses to
/// start, naming the address and the ways out, unless told to serve it open.
#[test]
fn serve_without_a_token_refuses_a_public_address() {
    use std::io::BufRead;
    let serve = |extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_reward-server"));
        command
            .args(["serve", "--config"])
            .arg(repo_root().join("rewards.toml"))
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "0.0.0.0:0"])
            .args(extra)
            .env_remove("REWARD_SERVER_AUTH_TOKEN")
            .env_remove("REWARD_SERVER_AUTH_TOKEN_FILE")
            .env_remove("REWARD_SERVER_ALLOW_UNAUTHENTICATED");
        command
    };
    let refused = serve(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without a bearer token"), "{stderr}");
    assert!(stderr.contains("--auth-token-file") && stderr.contains("--allow-unauthenticated"), "{stderr}");

    let mut open = serve(&["--allow-unauthenticated"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(open.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = open.kill();
    let _ = open.wait();
    assert!(line.contains("reward-server listening"), "{line:?}");
}

/// Each way `serve` can fail to start has its own exit code and names what is wrong: a config it
/// cannot use is a usage error (64), an address it cannot bind an I/O error (74).
#[test]
fn serve_exit_codes_tell_a_bad_config_from_a_busy_address() {
    let serve = |config: &Path, grpc: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reward-server"))
            .args(["serve", "--config"])
            .arg(config)
            .arg("--cache-dir")
            .arg(common::cache_dir())
            .args(["--grpc-addr", grpc, "--http-addr", "127.0.0.1:0"])
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[rewards.x]\nplugn = \"length\"\n").unwrap();
    let out = serve(&bad, "127.0.0.1:0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("unknown field `plugn`"), "{stderr}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = serve(&repo_root().join("rewards.toml"), &addr);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{stderr}");
    assert!(stderr.contains(&format!("binding gRPC on {addr}")), "{stderr}");
}
