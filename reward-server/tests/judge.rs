//! The judge capability end to end in the engine: a reward granted a `[judges.NAME]` endpoint asks
//! it through the plugin's `judge` import (the limits guest's `judge ...` behaviours). Faults come
//! from a scripted stand-in (`reward_server_harness::fake_judge`), since a real server does not
//! answer 429s, refusals or truncated bodies on demand; the mechanics on a real model come from
//! llama.cpp serving SmolLM2-135M (`LlamaServer`, set up by scripts/setup-judge.sh).
//!
//! What is asserted: the request the model receives (model, messages, temperature 0, the seed, the
//! key), the answer's use and accounting (`judge_*` metrics), the cache (a repeat is not sent), the
//! retries (how many requests a failing endpoint receives, and when), the limits (in flight,
//! requests per minute, calls per rollout), and that every failure is `JUDGE_ERROR`, never a 0.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{host, plugin_path, rollout};
use reward_server::config::Rewards;
use reward_server::engine::{Reward, Scored, Status};
use reward_server_harness::LlamaServer;
use reward_server_harness::fake_judge::{FakeJudge, Reply, Script};

/// A config of one judge (`[judges.j]` at `url`, with `judge_extra` lines) and rewards over the
/// limits guest granted it: `judged` (policy `abstain`) and any `more` tables.
fn config(url: &str, judge_extra: &str, more: &str) -> String {
    let plugin = plugin_path("limits-guest");
    format!(
        "[judges.j]\nurl = \"{url}\"\nmodel = \"grader-1\"\n{judge_extra}\n\n\
         [rewards.judged]\nplugin = \"{}\"\njudge = \"j\"\non_error = \"abstain\"\n\n{more}",
        plugin.display()
    )
}

fn load(text: &str) -> Rewards {
    Rewards::from_toml(host(), text, Path::new(".")).unwrap_or_else(|e| panic!("{e:#}"))
}

fn score(reward: &Reward, completion: &str) -> Scored {
    reward.score_batch(&[rollout("r", completion)]).remove(0)
}

fn metric(s: &Scored, name: &str) -> f64 {
    s.metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no metric {name} in {:?}", s.metrics)).value
}

/// The failure of a rollout that must have failed with `JUDGE_ERROR` and no score.
fn judge_error(s: &Scored) -> &str {
    assert_eq!(s.status, Status::JudgeError, "{s:?}");
    assert_eq!(s.score, None, "abstain: a failed judge is no score, not a 0");
    s.error.as_deref().expect("an error text")
}

#[test]
fn a_judged_rollout_scores_the_answer_and_counts_its_tokens() {
    let judge = FakeJudge::start(Script::new(Reply::text_with_usage(" 0.75\n", 12, 3)));
    // SAFETY: no other test of this binary reads this variable.
    unsafe { std::env::set_var("REWARD_TEST_JUDGE_KEY_A", "sk-test-a") };
    let rewards = load(&config(&judge.url(), "api_key_env = \"REWARD_TEST_JUDGE_KEY_A\"\nseed = 42\nmax_tokens = 8", ""));
    let s = score(rewards.get("judged").unwrap(), "judge How good is this answer?");
    assert_eq!((s.status, s.score), (Status::Ok, Some(0.75)), "{s:?}");
    assert_eq!(s.reason.as_deref(), Some(" 0.75\n"));
    assert_eq!(metric(&s, "judge_calls"), 1.0);
    assert_eq!(metric(&s, "judge_cache_hits"), 0.0);
    assert_eq!(metric(&s, "judge_prompt_tokens"), 12.0);
    assert_eq!(metric(&s, "judge_completion_tokens"), 3.0);
    assert!(metric(&s, "judge_latency_ms") > 0.0);
    let sent = judge.completions();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].bearer(), Some("sk-test-a"), "the key goes in the Authorization header");
    assert_eq!(
        sent[0].body.as_ref().unwrap(),
        &serde_json::json!({
            "model": "grader-1",
            "messages": [{"role": "user", "content": "How good is this answer?"}],
            "temperature": 0.0, "max_tokens": 8, "seed": 42,
        }),
        "unset sampling is temperature 0 with the judge's seed and max_tokens"
    );
}

#[test]
fn a_repeated_question_is_answered_from_the_cache() {
    let judge = FakeJudge::start(Script::new(Reply::text_with_usage("1", 5, 1)));
    let rewards = load(&config(&judge.url(), "", ""));
    let reward = rewards.get("judged").unwrap();
    // A GRPO group with duplicate completions: one model call per distinct question.
    let batch: Vec<_> = ["judge same", "judge same", "judge other", "judge same"].iter().map(|c| rollout("g", c)).collect();
    let scored = reward.score_batch(&batch);
    assert!(scored.iter().all(|s| s.status == Status::Ok), "{scored:?}");
    assert_eq!(judge.completions().len(), 2, "two distinct questions, two calls");
    let hits: Vec<f64> = scored.iter().map(|s| metric(s, "judge_cache_hits")).collect();
    assert_eq!(hits, [0.0, 1.0, 0.0, 1.0]);
    assert_eq!(metric(&scored[1], "judge_prompt_tokens"), 0.0, "a cached answer spends no tokens");
    // A re-score of the same rollouts calls the model no more.
    let again = reward.score_batch(&batch);
    assert_eq!(again.iter().map(|s| s.score).collect::<Vec<_>>(), scored.iter().map(|s| s.score).collect::<Vec<_>>());
    assert_eq!(judge.completions().len(), 2);
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let judge = FakeJudge::start(Script::new(Reply::text("0.5")).then(Reply::rate_limited(1)));
    let rewards = load(&config(&judge.url(), "", ""));
    let s = score(rewards.get("judged").unwrap(), "judge q");
    assert_eq!((s.status, s.score), (Status::Ok, Some(0.5)), "{s:?}");
    let sent = judge.completions();
    assert_eq!(sent.len(), 2);
    let gap = sent[1].at.duration_since(sent[0].at);
    assert!(gap >= Duration::from_secs(1), "the retry waited {gap:?}, less than Retry-After: 1");
}

#[test]
fn an_endpoint_failing_every_time_gets_max_retries_plus_one_requests() {
    let judge = FakeJudge::start(Script::new(Reply::server_error(503)));
    let rewards = load(&config(&judge.url(), "max_retries = 2", ""));
    let started = Instant::now();
    let s = score(rewards.get("judged").unwrap(), "judge q");
    let error = judge_error(&s);
    assert!(error.contains("HTTP 503") && error.contains("after 3 attempts") && error.contains("judge `j`"), "{error}");
    assert_eq!(judge.completions().len(), 3, "no storm: the first attempt and 2 retries");
    let sent = judge.completions();
    for pair in sent.windows(2) {
        assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(250), "retries back off");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_retry_after_past_max_retry_wait_fails_at_once() {
    let judge = FakeJudge::start(Script::new(Reply::rate_limited(120)));
    let rewards = load(&config(&judge.url(), "max_retry_wait_ms = 5000", ""));
    let started = Instant::now();
    let error = judge_error(&score(rewards.get("judged").unwrap(), "judge q")).to_owned();
    assert!(error.contains("HTTP 429") && error.contains("more than max_retry_wait_ms"), "{error}");
    assert_eq!(judge.completions().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "did not hold the call for the 120 s asked");
}

#[test]
fn every_kind_of_bad_answer_is_a_judge_error_not_a_zero() {
    let cases: Vec<(&str, Reply, &str)> = vec![
        ("slow", Reply::text("1").after(Duration::from_millis(1500)), "no answer within timeout_ms (300 ms)"),
        ("refusal", Reply::Refusal("I cannot grade this".into()), "the model refused: I cannot grade this"),
        ("content filter", Reply::ContentFilter, "content filter"),
        ("truncated", Reply::Truncated, "not a chat completion"),
        ("no choices", Reply::NoChoices, "no choices"),
        ("400", Reply::bad_request("invalid_request_error", "max_tokens is too large"), "HTTP 400 Bad Request: max_tokens is too large"),
        ("401", Reply::unauthorized(), "HTTP 401"),
    ];
    for (what, reply, expected) in cases {
        let judge = FakeJudge::start(Script::new(reply));
        let rewards = load(&config(&judge.url(), "timeout_ms = 300\nmax_retries = 0", ""));
        // `judge-swallow` scores 0 when its call fails: the host fails the rollout anyway.
        for completion in ["judge q", "judge-swallow q"] {
            let s = score(rewards.get("judged").unwrap(), completion);
            let error = judge_error(&s);
            assert!(error.contains(expected), "{what} ({completion}): {error}");
        }
        // 4xx and unreadable answers are final; a time-out was allowed no retry here.
        assert_eq!(judge.completions().len(), 2, "{what}: one request per rollout");
    }
}

#[test]
fn calls_past_max_calls_per_rollout_fail_the_rollout() {
    let judge = FakeJudge::start(Script::new(Reply::text("1")));
    let plugin = plugin_path("limits-guest");
    let more = format!("[rewards.capped]\nplugin = \"{}\"\njudge = {{ name = \"j\", max_calls_per_rollout = 3 }}\n", plugin.display());
    let rewards = load(&config(&judge.url(), "", &more));
    let s = score(rewards.get("capped").unwrap(), "judge-many 5");
    assert_eq!(s.status, Status::JudgeError, "{s:?}");
    assert!(s.error.as_deref().unwrap().contains("max_calls_per_rollout"), "{s:?}");
    assert_eq!(judge.completions().len(), 3, "the calls past the cap never left the host");
    let ok = score(rewards.get("capped").unwrap(), "judge-many 3");
    assert_eq!((ok.status, ok.score), (Status::Ok, Some(3.0)), "{ok:?}");
}

#[test]
fn rewards_sharing_a_judge_share_its_concurrency_limit() {
    let judge = FakeJudge::start(Script::new(Reply::text("1").after(Duration::from_millis(150))));
    let plugin = plugin_path("limits-guest");
    let more = format!("[rewards.other]\nplugin = \"{}\"\njudge = \"j\"\n", plugin.display());
    let rewards = Arc::new(load(&config(&judge.url(), "max_concurrent = 2\ncache_entries = 0", &more)));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let rewards = rewards.clone();
            std::thread::spawn(move || {
                let name = if i % 2 == 0 { "judged" } else { "other" };
                score(rewards.get(name).unwrap(), &format!("judge question {i}")).status
            })
        })
        .collect();
    let statuses: Vec<Status> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == Status::Ok), "{statuses:?}");
    assert_eq!(judge.completions().len(), 8);
    assert_eq!(judge.max_in_flight(), 2, "eight callers, two rewards, max_concurrent = 2");
}

#[test]
fn requests_per_minute_are_never_exceeded() {
    let judge = FakeJudge::start(Script::new(Reply::text("1")));
    let rewards = Arc::new(load(&config(&judge.url(), "requests_per_minute = 3", "")));
    for i in 0..5 {
        let rewards = rewards.clone();
        // The calls past the limit wait for the window (60 s); the test does not wait for them.
        std::thread::spawn(move || score(rewards.get("judged").unwrap(), &format!("judge q{i}")));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(judge.completions().len(), 3, "3 requests per minute: the 4th and 5th wait");
}

#[test]
fn embeddings_come_from_the_judges_embedding_model() {
    let judge = FakeJudge::start(Script::new(Reply::text("unused")));
    let rewards = load(&config(&judge.url(), "embedding_model = \"embedder-1\"", ""));
    let reward = rewards.get("judged").unwrap();
    // The stand-in embeds a text as its letter counts: "listen" and "silent" are one vector.
    let same = score(reward, "embed listen | silent");
    assert_eq!(same.status, Status::Ok, "{same:?}");
    assert!((same.score.unwrap() - 1.0).abs() < 1e-6, "{same:?}");
    assert_eq!(metric(&same, "judge_calls"), 1.0, "both texts in one call");
    let apart = score(reward, "embed abc | xyz");
    assert_eq!(apart.score, Some(0.0));
    let again = score(reward, "embed listen | silent");
    assert_eq!(metric(&again, "judge_cache_hits"), 1.0);
    let sent = judge.requests();
    let asked: Vec<_> = sent.iter().filter(|r| r.path == "/v1/embeddings").map(|r| r.body.clone().unwrap()).collect();
    assert_eq!(
        asked,
        [
            serde_json::json!({"model": "embedder-1", "input": ["listen", "silent"]}),
            serde_json::json!({"model": "embedder-1", "input": ["abc", "xyz"]})
        ]
    );
    // A judge without an embedding model refuses, and the rollout fails.
    let plain = load(&config(&judge.url(), "", ""));
    let s = score(plain.get("judged").unwrap(), "embed a | b");
    assert!(judge_error(&s).contains("has no `embedding_model`"), "{s:?}");
}

#[test]
fn a_reward_without_a_grant_cannot_ask() {
    let plugin = plugin_path("limits-guest");
    let rewards = load(&format!("[rewards.plain]\nplugin = \"{}\"\non_error = \"abstain\"\n", plugin.display()));
    let s = score(rewards.get("plain").unwrap(), "judge-swallow q");
    assert!(judge_error(&s).contains("this reward grants none"), "{s:?}");
}

#[test]
fn bad_judge_tables_fail_at_load_naming_the_problem() {
    let plugin = plugin_path("limits-guest");
    let err = |text: &str| format!("{:#}", Rewards::from_toml(host(), text, Path::new(".")).unwrap_err());
    let unknown = err(&format!("[rewards.x]\nplugin = \"{}\"\njudge = \"nope\"\n", plugin.display()));
    assert!(unknown.contains("names judge `nope`, which is not defined"), "{unknown}");
    let no_key = err(&config("http://127.0.0.1:9/v1", "api_key_env = \"REWARD_TEST_UNSET_KEY\"", ""));
    assert!(no_key.contains("[judges.j]") && no_key.contains("REWARD_TEST_UNSET_KEY is not set"), "{no_key}");
    let typo = err(&config("http://127.0.0.1:9/v1", "max_concurent = 2", ""));
    assert!(typo.contains("max_concurent"), "{typo}");
    // The grant's table names the reward, `judge` and the key.
    let grant = |table: &str| {
        err(&config("http://127.0.0.1:9/v1", "", &format!("[rewards.g]\nplugin = \"{}\"\njudge = {table}\n", plugin.display())))
    };
    let unknown_key = grant("{ name = \"j\", max_calls = 3 }");
    assert!(unknown_key.contains("reward `g`: `judge`: unknown field `max_calls`"), "{unknown_key}");
    let zero_calls = grant("{ name = \"j\", max_calls_per_rollout = 0 }");
    assert!(zero_calls.contains("reward `g`: `judge`") && zero_calls.contains("in `max_calls_per_rollout`"), "{zero_calls}");
    let composite = err(&format!(
        "[judges.j]\nurl = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n[rewards.a]\nplugin = \"{}\"\n[rewards.c]\ncomponents = {{ a = \"a\" }}\nformula = \"a\"\njudge = \"j\"\n",
        plugin.display()
    ));
    assert!(composite.contains("a composite reward takes no") && composite.contains("`judge`"), "{composite}");
}

#[test]
fn the_judge_is_part_of_the_rewards_provenance() {
    let a = load(&config("http://127.0.0.1:9/v1", "", ""));
    let b = load(&config("http://127.0.0.1:9/v1", "seed = 1", ""));
    let hash = |r: &Rewards| r.get("judged").unwrap().provenance.config_hash.clone();
    assert_ne!(hash(&a), hash(&b), "another seed asks another question: another reward definition");
    assert!(a.get("judged").unwrap().uses_judge());
}

/// The mechanics on a real model: llama.cpp's OpenAI-compatible server with SmolLM2-135M. A model
/// this small is no judge of anything, so the test checks what the host does with it: the answer
/// arrives, tokens are counted, a repeat is a cache hit, and a fresh cache (a new config load)
/// gets the same answer from the model (temperature 0, a fixed seed).
#[test]
fn a_real_model_answers_through_the_capability() {
    let Some(server) = LlamaServer::start_or_skip() else {
        eprintln!("skipped: REWARD_JUDGE_SKIP is set");
        return;
    };
    let text = config(&server.url(), "max_tokens = 16\ntimeout_ms = 60000", "");
    let question = "judge-swallow Is the sky blue on a clear day? Answer yes or no.";
    let first = load(&text);
    let s1 = score(first.get("judged").unwrap(), question);
    assert_eq!(s1.status, Status::Ok, "{s1:?}");
    assert!(s1.score.unwrap() > 0.0, "the answer has text: {s1:?}");
    assert!(metric(&s1, "judge_prompt_tokens") > 0.0 && metric(&s1, "judge_completion_tokens") > 0.0, "{s1:?}");
    let s2 = score(first.get("judged").unwrap(), question);
    assert_eq!(metric(&s2, "judge_cache_hits"), 1.0);
    assert_eq!(s2.score, s1.score);
    let s3 = score(load(&text).get("judged").unwrap(), question);
    assert_eq!(metric(&s3, "judge_cache_hits"), 0.0, "a new load has a new cache");
    assert_eq!(s3.score, s1.score, "temperature 0 and a fixed seed: the model answers the same");
}

/// Through the server: a judge reward saturated on a slow model does not hold the CPU workers.
/// With one CPU worker and every judge call held by the model, a CPU-bound reward's request is
/// answered while the model has answered none of the judge's calls (an ordering, read off the
/// stand-in's state, not a timing threshold). Then the judge's requests finish, with their
/// accounting in the results and in `/metrics`.
/// `completions` as one native request for `reward` (ids `{reward}{i}`), sent to `server`.
fn post_native(server: &common::server::Server, reward: &str, completions: Vec<String>) -> reqwest::RequestBuilder {
    let rollouts: Vec<_> =
        completions.iter().enumerate().map(|(i, c)| serde_json::json!({"id": format!("{reward}{i}"), "completion": c})).collect();
    reqwest::Client::new()
        .post(format!("{}/v1/score", server.http))
        .body(serde_json::json!({"reward": reward, "rollouts": rollouts}).to_string())
}

/// Waits (up to 20 s, a liveness bound, not a measurement) until the stand-in holds `n` calls.
async fn until_the_judge_holds(judge: &FakeJudge, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while judge.completions().len() < n {
        assert!(Instant::now() < deadline, "the judge calls never reached the model");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_judge_does_not_hold_the_cpu_workers() {
    let judge = Arc::new(FakeJudge::start(Script::new(Reply::text("1").after(Duration::from_secs(3)))));
    let plugin = plugin_path("limits-guest");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewards.toml");
    let more = format!("[rewards.cpu]\nplugin = \"{}\"\n", plugin.display());
    std::fs::write(&path, config(&judge.url(), "max_concurrent = 4\ncache_entries = 0", &more)).unwrap();
    let server = common::server::Server::start(&path, &["--workers", "1", "--judge-workers", "8", "--cache-entries", "0"]);
    let post = |reward: &str, completions: Vec<String>| post_native(&server, reward, completions).send();
    let judged = tokio::spawn(post("judged", (0..8).map(|i| format!("judge question {i}")).collect()));
    // Wait until the model holds its four calls (max_concurrent = 4).
    until_the_judge_holds(&judge, 4).await;
    let cpu: serde_json::Value = post("cpu", vec!["work 10".into(), "hello".into()]).await.unwrap().json().await.unwrap();
    let answered = judge.completions().iter().filter(|r| r.answered_at.is_some()).count();
    assert_eq!(cpu["results"][1]["score"], 5.0, "{cpu}");
    assert_eq!(answered, 0, "the CPU reward waited for the judge: the model had answered {answered} calls");
    let judged: serde_json::Value = judged.await.unwrap().unwrap().json().await.unwrap();
    let results = judged["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    assert!(results.iter().all(|r| r["status"] == "OK" && r["metrics"]["judge_calls"] == 1.0), "{judged}");
    assert!(judge.max_in_flight() <= 4, "max_concurrent = 4, saw {}", judge.max_in_flight());
    let text = reqwest::get(format!("{}/metrics", server.http)).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"reward_judge_calls_total{judge="j",outcome="ok"} 8"#), "{text}");
    assert!(text.contains("reward_judge_request_seconds_bucket"), "{text}");
}

/// Judge rewards have their own admission budget (`--max-inflight-judge-rollouts`): a flood of
/// requests for a judge reward stuck on its model fills that budget, and the next judge request is
/// refused with 429 naming it, while a CPU reward's request on the same server is admitted and
/// scored. The flood is held by a model that answers nothing for minutes, and the refusal is
/// asked only once the model holds the flood's calls: an ordering read off the stand-in, not a
/// timing threshold. The test ends without waiting for the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_judge_budget_refuses_judge_requests_but_admits_cpu_ones() {
    let judge = FakeJudge::start(Script::new(Reply::text("1").after(Duration::from_secs(600))));
    let plugin = plugin_path("limits-guest");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewards.toml");
    let more = format!("[rewards.cpu]\nplugin = \"{}\"\n", plugin.display());
    std::fs::write(&path, config(&judge.url(), "timeout_ms = 900000\nmax_retries = 0\ncache_entries = 0", &more)).unwrap();
    let server = common::server::Server::start(
        &path,
        &["--max-inflight-judge-rollouts", "4", "--max-rollouts-per-request", "4", "--judge-workers", "8", "--cache-entries", "0"],
    );
    let post = |reward: &str, completions: Vec<String>| post_native(&server, reward, completions).send();
    let flood = tokio::spawn(post("judged", (0..4).map(|i| format!("judge question {i}")).collect()));
    // Admission comes before any call: once the model holds the flood's four calls, its four
    // rollouts hold the whole judge budget, and nothing answers them within the test.
    until_the_judge_holds(&judge, 4).await;
    let refused = post("judged", vec!["judge one more".into()]).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("4 rollouts of rewards that ask a judge in flight, the limit is 4 (--max-inflight-judge-rollouts)"), "{body}");
    assert_eq!(body["kind"], "overloaded", "{body}");
    // A CPU reward's request draws on the other budget: admitted and scored.
    let cpu = post("cpu", vec!["work 10".into(), "hello".into()]).await.unwrap();
    assert_eq!(cpu.status(), 200);
    let cpu: serde_json::Value = cpu.json().await.unwrap();
    assert_eq!(cpu["results"][1]["score"], 5.0, "{cpu}");
    assert_eq!(judge.completions().len(), 4, "the refused request never reached the model");
    assert!(judge.completions().iter().all(|r| r.answered_at.is_none()), "the flood was still held throughout");
    let text = reqwest::get(format!("{}/metrics", server.http)).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"reward_inflight_rollouts{budget="judge"} 4"#), "{text}");
    assert!(text.contains(r#"reward_inflight_rollouts{budget="cpu"} 0"#), "{text}");
    assert!(text.contains(r#"reward_rejected_total{reason="overloaded"} 1"#), "{text}");
    flood.abort();
}

/// A server whose request cap exceeds the judge budget could never admit a full-size request for
/// a judge reward: it refuses to start (a usage error), naming both knobs.
#[test]
fn a_request_cap_over_the_judge_budget_fails_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewards.toml");
    std::fs::write(&path, config("http://127.0.0.1:9/v1", "", "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["serve", "--config"])
        .arg(&path)
        .arg("--cache-dir")
        .arg(common::cache_dir())
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--max-inflight-judge-rollouts", "16", "--max-rollouts-per-request", "32"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "a usage error: {stderr}");
    assert!(
        stderr.contains("max_rollouts_per_request (32) must not exceed max_inflight_judge_rollouts (16)")
            && stderr.contains("--max-inflight-judge-rollouts"),
        "{stderr}"
    );
}

/// `reward-server score` on a judge reward runs its calls side by side (64 threads, batches of
/// one, unless `--threads` / `--batch-size` say otherwise), up to the judge's `max_concurrent`:
/// the stand-in sees eight calls in flight at once, where one thread per core running batches of
/// 64 would send them one after another. Every line is written, in input order.
#[test]
fn offline_scoring_runs_a_judges_calls_side_by_side() {
    let judge = FakeJudge::start(Script::new(Reply::text("1").after(Duration::from_millis(300))));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewards.toml");
    std::fs::write(&path, config(&judge.url(), "max_concurrent = 8", "")).unwrap();
    let input = dir.path().join("in.jsonl");
    let lines: String =
        (0..16).map(|i| format!("{{\"id\": \"r{i}\", \"prompt\": \"q\", \"completion\": \"judge question {i}\"}}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let (out, rows) = common::score_file(&path, "judged", &input);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, (0..16).map(|i| format!("r{i}")).collect::<Vec<_>>());
    assert!(rows.iter().all(|r| r["status"] == "OK" && r["score"] == 1.0), "{rows:?}");
    assert_eq!(judge.completions().len(), 16);
    assert_eq!(judge.max_in_flight(), 8, "max_concurrent = 8 reached, and not passed");
}

/// The judge's model is in the provenance of every result, beside the hashes: the plugin reward
/// granted it, and a composite over it (with a component that asks none), each model once; a
/// reward that asks no judge has none. Offline, the JSON line carries it.
#[test]
fn the_judges_model_is_in_the_provenance() {
    let judge = FakeJudge::start(Script::new(Reply::text("0.5")));
    let plugin = plugin_path("limits-guest");
    let more = format!(
        "[rewards.plain]\nplugin = \"{0}\"\n\n[rewards.again]\nplugin = \"{0}\"\njudge = \"j\"\n\n\
         [rewards.both]\ncomponents = {{ a = \"judged\", b = \"again\", p = \"plain\" }}\nformula = \"a + b + p\"\n",
        plugin.display()
    );
    let rewards = load(&config(&judge.url(), "", &more));
    let models = |name: &str| rewards.get(name).unwrap().provenance.judge_models.clone();
    assert_eq!(models("judged"), ["grader-1"]);
    assert_eq!(models("both"), ["grader-1"], "a composite's models are its components', each once");
    assert_eq!(models("plain"), Vec::<String>::new());
    let s = score(rewards.get("judged").unwrap(), "judge Rate this.");
    assert_eq!(s.provenance.judge_models, ["grader-1"], "{s:?}");

    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("rewards.toml");
    std::fs::write(&config_path, config(&judge.url(), "", &more)).unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\": \"a\", \"prompt\": \"q\", \"completion\": \"judge Rate this.\"}\n").unwrap();
    for (reward, want) in [("judged", Some(serde_json::json!(["grader-1"]))), ("plain", None)] {
        let (out, lines) = common::score_file(&config_path, reward, &input);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(lines[0]["provenance"].get("judge_models").cloned(), want, "{reward}: {}", lines[0]);
    }
}
