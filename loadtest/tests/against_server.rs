//! The load tester against the real server on loopback: counts add up on every door, failures
//! are counted by kind, and the open loop reports the latency a slowed server really causes.
//!
//! Needs the `reward-server` binary of the same profile (`cargo test --workspace` builds it) and
//! the built plugins (`scripts/build-plugins.sh`).

mod common;

use common::{Server, f, loadtest, n, repo_root, slow_guest_config};

const DOORS: [&str; 5] = ["grpc", "grpc-stream", "http", "lambda", "openrlhf"];

#[test]
fn counts_add_up_on_every_door() {
    let server = Server::start(&repo_root().join("rewards.toml"), &["--cache-entries", "0"]);
    for door in DOORS {
        let r = loadtest(&[
            "run",
            "--target",
            door,
            "--addr",
            server.addr(door),
            "--reward",
            "math",
            "--batch",
            "8",
            "-c",
            "3",
            "--requests",
            "25",
        ]);
        assert_eq!(n(&r, "requests", "sent"), 25, "{door}: {r:#}");
        assert_eq!(n(&r, "requests", "ok"), 25, "{door}: {r:#}");
        assert_eq!(n(&r, "requests", "errors"), 0, "{door}: {r:#}");
        assert_eq!(n(&r, "rollouts", "sent"), 25 * 8, "{door}");
        assert_eq!(n(&r, "rollouts", "answered"), 25 * 8, "{door}");
        // The corpus's malformed answers score 0, but they are scored: status OK.
        assert_eq!(n(&r, "rollouts", "scored_ok"), 25 * 8, "{door}: {r:#}");
        assert_eq!(n(&r, "latency_ms", "count"), 25, "{door}");
        assert!(f(&r, "throughput", "rollouts_per_s") > 0.0);
        assert!(f(&r, "latency_ms", "p50") <= f(&r, "latency_ms", "p99"));
        assert!(f(&r, "latency_ms", "p99") <= f(&r, "latency_ms", "max"));
    }
}

#[test]
fn the_citation_corpus_is_what_grounded_answer_expects() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let r = loadtest(&[
        "run",
        "--target",
        "lambda",
        "--addr",
        &server.http,
        "--reward",
        "grounded_answer",
        "--corpus",
        "citations",
        "--batch",
        "16",
        "-c",
        "2",
        "--requests",
        "8",
    ]);
    assert_eq!(n(&r, "requests", "ok"), 8, "{r:#}");
    // Every rollout has a context in its prompt and a usable reference: none is invalid input.
    assert_eq!(n(&r, "rollouts", "scored_ok"), 8 * 16, "{r:#}");
}

#[test]
fn an_unknown_reward_is_counted_as_not_found_on_every_door() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let kinds = [
        ("grpc", "grpc_not_found"),
        ("grpc-stream", "grpc_not_found"),
        ("http", "http_404_unknown_reward"),
        ("lambda", "http_404_unknown_reward"),
        ("openrlhf", "http_404_unknown_reward"),
    ];
    for (door, kind) in kinds {
        let r = loadtest(&[
            "run",
            "--target",
            door,
            "--addr",
            server.addr(door),
            "--reward",
            "no_such_reward",
            "--batch",
            "4",
            "-c",
            "2",
            "--requests",
            "10",
        ]);
        assert_eq!(n(&r, "requests", "sent"), 10, "{door}: {r:#}");
        assert_eq!(n(&r, "requests", "ok"), 0, "{door}: {r:#}");
        assert_eq!(n(&r, "requests", "errors"), 10, "{door}: {r:#}");
        assert_eq!(r["errors"][kind].as_u64(), Some(10), "{door}: {r:#}");
        assert_eq!(r["errors"].as_object().unwrap().len(), 1, "{door}: {r:#}");
        assert_eq!(n(&r, "latency_ms", "count"), 0, "failed calls are not in the latency: {r:#}");
    }
}

#[test]
fn overload_is_counted_as_its_own_kind_and_counts_still_add_up() {
    // Slow rollouts, room for two in flight, eight callers of one rollout each: some calls are
    // admitted and some are refused at once (429 / RESOURCE_EXHAUSTED), and each is counted once.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &slow_guest_config(dir.path()),
        &["--max-inflight-rollouts", "2", "--max-rollouts-per-request", "1", "--workers", "1", "--cache-entries", "0"],
    );
    for (door, kind) in [("lambda", "http_429_overloaded"), ("grpc", "grpc_resource_exhausted")] {
        let r = loadtest(&[
            "run",
            "--target",
            door,
            "--addr",
            server.addr(door),
            "--reward",
            "slow",
            "--fixed-completion",
            "work 3000",
            "--batch",
            "1",
            "-c",
            "8",
            "--requests",
            "60",
        ]);
        let (sent, ok, errors) = (n(&r, "requests", "sent"), n(&r, "requests", "ok"), n(&r, "requests", "errors"));
        assert_eq!(sent, 60, "{door}: {r:#}");
        assert_eq!(ok + errors, sent, "{door}: {r:#}");
        assert!(ok > 0, "{door}: {r:#}");
        assert!(errors > 0, "{door}: eight callers and two slots: some calls must be refused: {r:#}");
        assert_eq!(r["errors"][kind].as_u64(), Some(errors), "{door}: only overload: {r:#}");
        assert_eq!(n(&r, "rollouts", "answered"), ok, "{door}");
        assert_eq!(n(&r, "latency_ms", "count"), ok, "{door}");
    }
}

#[test]
fn the_open_loop_reports_the_latency_a_slowed_server_causes() {
    // One worker scoring slow rollouts, one call in flight at a time, and calls due at about four
    // times the rate the server can answer them. The service time of each call stays short; the
    // latency from when each call was due grows with the queue behind it. A closed loop would
    // report only the former.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&slow_guest_config(dir.path()), &["--workers", "1", "--cache-entries", "0"]);
    let args = ["--target", "lambda", "--addr", &server.http, "--reward", "slow", "--fixed-completion", "work 4000", "--batch", "1"];

    // Capacity, measured closed-loop: one caller.
    let mut closed = vec!["run", "-c", "1", "--requests", "20"];
    closed.extend(args);
    let c = loadtest(&closed);
    assert_eq!(n(&c, "requests", "ok"), 20, "{c:#}");
    assert_eq!((c["run"]["mode"].as_str(), c["run"]["concurrency"].as_u64()), (Some("closed"), Some(1)), "{c:#}");
    assert_eq!(f(&c, "latency_ms", "p99"), f(&c, "service_time_ms", "p99"), "closed loop: latency is the service time");
    let capacity = f(&c, "throughput", "requests_per_s");
    assert!(capacity > 0.0);

    let rate = format!("{:.3}", capacity * 4.0);
    let mut open = vec!["run", "-c", "1", "--rate", &rate, "--requests", "80", "--duration", "60"];
    open.extend(args);
    let o = loadtest(&open);
    assert_eq!((o["run"]["mode"].as_str(), o["run"]["reward"].as_str()), (Some("open"), Some("slow")), "{o:#}");
    assert!(o["run"]["rate"].as_f64().is_some_and(|r| r > 0.0), "{o:#}");
    assert_eq!(n(&o, "requests", "sent") + n(&o, "requests", "unsent"), 80, "{o:#}");
    assert_eq!(n(&o, "requests", "sent"), n(&o, "requests", "ok") + n(&o, "requests", "errors"), "{o:#}");
    assert_eq!(n(&o, "requests", "ok"), 80, "{o:#}");
    let corrected = f(&o, "latency_ms", "p99");
    let service = f(&o, "service_time_ms", "p99");
    // 80 calls due over 20 call-times, answered over 80: the last waits ~60 call-times.
    assert!(corrected > 5.0 * service, "corrected p99 {corrected} ms, service-time p99 {service} ms: {o:#}");
    assert!(f(&o, "latency_ms", "p50") > 2.0 * f(&o, "service_time_ms", "p50"), "{o:#}");
}

#[test]
fn an_rft_step_sends_every_rollout_of_the_step() {
    let server = Server::start(&repo_root().join("rewards.toml"), &["--cache-entries", "0"]);
    // 16 prompts x 8 generations = 128 rollouts a step, in calls of 16: 8 calls a step, dealt to
    // 3 workers with at most 2 in flight each.
    let r = loadtest(&[
        "rft",
        "--target",
        "grpc",
        "--addr",
        &server.grpc,
        "--batch",
        "16",
        "--global-batch-size",
        "16",
        "--number-generation",
        "8",
        "--workers",
        "3",
        "--in-flight",
        "2",
        "--steps",
        "3",
    ]);
    assert_eq!(n(&r, "requests", "sent"), 24, "{r:#}");
    assert_eq!(n(&r, "requests", "ok"), 24, "{r:#}");
    assert_eq!(n(&r, "rollouts", "answered"), 3 * 128, "{r:#}");
    assert_eq!(n(&r, "step_ms", "count"), 3, "{r:#}");
    // The report says what ran: the step's shape, no closed-loop callers.
    assert_eq!((r["run"]["mode"].as_str(), r["run"]["target"].as_str()), (Some("rft"), Some("grpc")), "{r:#}");
    assert_eq!(r["run"]["rft"]["number_generation"], 8, "{r:#}");
    assert!(r["run"].get("concurrency").is_none(), "{r:#}");
    // A step ends with its last answer, so no call outlasts its step.
    assert!(f(&r, "latency_ms", "max") <= f(&r, "step_ms", "max") + 0.01, "{r:#}");
}

#[test]
fn auth_tokens_are_sent_and_missing_ones_are_counted() {
    let server = Server::start(&repo_root().join("rewards.toml"), &["--auth-token", "s3cret"]);
    let base = ["run", "--target", "lambda", "--addr", &server.http, "--batch", "4", "-c", "1", "--requests", "3"];
    let denied = loadtest(&base);
    assert_eq!(denied["errors"]["http_401_unauthenticated"].as_u64(), Some(3), "{denied:#}");
    let mut with = base.to_vec();
    with.extend(["--auth-token", "s3cret"]);
    let allowed = loadtest(&with);
    assert_eq!(n(&allowed, "requests", "ok"), 3, "{allowed:#}");
}
