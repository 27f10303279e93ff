//! Group rewards end to end: a reward declared `groups = true` (the `group` plugin's majority vote)
//! gets every GRPO group whole in one call, through gRPC, the native HTTP API, the Nova Lambda door
//! and offline scoring; groups are named by `group` or else by prompt; groups larger than a chunk of
//! pool work, interleaved groups and rejected records around them keep every answer in its place;
//! and a rollout of a groups reward is never served from the score cache alone.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::server::Server;
use common::{cache_dir, plugin_path, score_file_with};
use reward_proto::v1 as pb;
use serde_json::{Value, json};

type Client = pb::reward_service_client::RewardServiceClient<tonic::transport::Channel>;

/// A config with `vote` (the majority vote over each group), `vote_alone` (the same plugin
/// without `groups`: every call a single rollout), and `gated` (a composite over `vote`).
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("rewards.toml");
    let plugin = plugin_path("group");
    let format = plugin_path("format");
    std::fs::write(
        &path,
        format!(
            r#"
[rewards.vote]
plugin = "{plugin}"
groups = true
config = {{ mode = "majority" }}

[rewards.vote_alone]
plugin = "{plugin}"
config = {{ mode = "majority" }}

[rewards.tags]
plugin = "{format}"
config = {{ required_tags = ["answer"] }}

[rewards.gated]
components = {{ vote = "vote", tags = "tags" }}
formula = "vote * tags"
"#,
            plugin = plugin.display(),
            format = format.display()
        ),
    )
    .unwrap();
    path
}

fn answer(x: &str) -> String {
    format!("<answer>\\boxed{{{x}}}</answer>")
}

/// The groups of a request: (group name, answers), sent interleaved (member i of every group,
/// then member i + 1, ...), so no group is contiguous in the request.
fn interleaved(groups: &[(&str, Vec<String>)]) -> Vec<(String, String, String)> {
    let longest = groups.iter().map(|(_, a)| a.len()).max().unwrap_or(0);
    let mut out = Vec::new();
    for i in 0..longest {
        for (name, answers) in groups {
            if let Some(a) = answers.get(i) {
                out.push((format!("{name}-{i}"), name.to_string(), a.clone()));
            }
        }
    }
    out
}

/// What the majority vote must give each rollout of `groups`: (score, group size, agreement).
fn expected(groups: &[(&str, Vec<String>)]) -> HashMap<String, (f64, f64, f64)> {
    let mut out = HashMap::new();
    for (name, answers) in groups {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for a in answers {
            match counts.iter_mut().find(|(x, _)| x == a) {
                Some((_, n)) => *n += 1,
                None => counts.push((a.clone(), 1)),
            }
        }
        // Ties: the answer reached first in group order.
        let best = counts.iter().map(|(_, n)| *n).max().unwrap();
        let majority = &counts.iter().find(|(_, n)| *n == best).unwrap().0;
        for (i, a) in answers.iter().enumerate() {
            let agreeing = counts.iter().find(|(x, _)| x == a).unwrap().1;
            let score = if a == majority { 1.0 } else { 0.0 };
            out.insert(format!("{name}-{i}"), (score, answers.len() as f64, agreeing as f64 / answers.len() as f64));
        }
    }
    out
}

/// Three groups: one larger than a unit of pool work (32 rollouts), a tie, and a group of one.
fn three_groups() -> Vec<(&'static str, Vec<String>)> {
    let big: Vec<String> = (0..45).map(|i| answer(if i % 3 == 0 { "7" } else { "5" })).collect();
    vec![("big", big), ("tie", vec![answer("1"), answer("2"), answer("2"), answer("1")]), ("one", vec![answer("9")])]
}

#[tokio::test]
async fn every_group_is_scored_whole_through_grpc_with_rejected_records_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path()), &["--workers", "2"]);
    let mut client = Client::connect(server.grpc.clone()).await.unwrap();
    let groups = three_groups();
    let sent = interleaved(&groups);
    let mut rollouts: Vec<pb::Rollout> = sent
        .iter()
        .map(|(id, group, text)| pb::Rollout {
            id: id.clone(),
            messages: vec![pb::Message { role: "user".into(), content: "What is x?".into() }],
            completion: text.clone(),
            group: group.clone(),
            ..Default::default()
        })
        .collect();
    // A rejected record in the middle: answered in place, part of no group.
    rollouts.insert(10, pb::Rollout { id: "bad".into(), completion: "x".into(), reference_json: "{".into(), ..Default::default() });
    let response = client.score(pb::ScoreRequest { reward: "vote".into(), rollouts }).await.unwrap().into_inner();
    let want = expected(&groups);
    assert_eq!(response.results.len(), sent.len() + 1);
    assert_eq!(response.results[10].id, "bad");
    assert_eq!(response.results[10].status(), pb::Status::InvalidInput);
    for r in response.results.iter().filter(|r| r.id != "bad") {
        let (score, size, agreement) = want[&r.id];
        assert_eq!(r.status(), pb::Status::Ok, "{}: {}", r.id, r.error);
        assert_eq!(r.score, Some(score), "{}", r.id);
        let metric = |name: &str| r.metrics.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{}: no {name}", r.id)).value;
        assert_eq!(metric("group_size"), size, "{}: its whole group was in its call", r.id);
        assert!((metric("agreement") - agreement).abs() < 1e-12, "{}", r.id);
    }
}

#[tokio::test]
async fn without_a_name_the_prompt_is_the_group_and_the_cache_never_serves_a_member_alone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path()), &[]);
    let http = reqwest::Client::new();
    let score = |rollouts: Value| {
        let http = http.clone();
        let url = format!("{}/v1/score", server.http);
        async move {
            let body: Value =
                http.post(url).json(&json!({"reward": "vote", "rollouts": rollouts})).send().await.unwrap().json().await.unwrap();
            body["results"].as_array().unwrap().clone()
        }
    };
    let rollout = |id: &str, prompt: &str, x: &str| json!({"id": id, "prompt": prompt, "completion": answer(x)});
    // Two prompts, interleaved: "p" votes 5, 5, 3; "q" votes 3 alone.
    let results = score(json!([rollout("p1", "p", "5"), rollout("q1", "q", "3"), rollout("p2", "p", "5"), rollout("p3", "p", "3")])).await;
    let by_id: HashMap<&str, &Value> = results.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    assert_eq!(by_id["p3"]["score"], 0.0, "3 is the minority of prompt p");
    assert_eq!(by_id["p3"]["metrics"]["group_size"], 3.0);
    assert_eq!(by_id["q1"]["score"], 1.0, "3 is the majority of prompt q");
    assert_eq!(by_id["q1"]["metrics"]["group_size"], 1.0);
    // The very rollout p3 again, now in a group where 3 wins: scored anew, not served from the
    // cache as the 0 it was given in its first group.
    let again = score(json!([rollout("p3", "p", "3"), rollout("p4", "p", "3")])).await;
    assert_eq!(again[0]["score"], 1.0, "{again:?}");
    assert!(again[0].get("cached").is_none(), "a groups reward's rollout is never a cache hit: {again:?}");
    // A rollout may also name its group: the same prompt in two named groups is two groups.
    let named = score(json!([
        {"id": "a", "prompt": "p", "completion": answer("1"), "group": "g1"},
        {"id": "b", "prompt": "p", "completion": answer("2"), "group": "g2"},
        {"id": "c", "prompt": "p", "completion": answer("2"), "group": "g2"}
    ]))
    .await;
    let sizes: Vec<f64> = named.iter().map(|r| r["metrics"]["group_size"].as_f64().unwrap()).collect();
    assert_eq!(sizes, [1.0, 2.0, 2.0]);
}

#[tokio::test]
async fn the_lambda_door_reads_groups_and_composites_keep_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&write_config(dir.path()), &[]);
    let record = |id: &str, group: &str, x: &str| {
        json!({"id": id, "group": group, "messages": [{"role": "user", "content": "x?"}, {"role": "assistant", "content": answer(x)}],
               "reference_answer": null})
    };
    let event = json!([record("a", "g", "4"), record("b", "g", "4"), record("c", "g", "6")]);
    let lambda = |reward: &str| {
        let request = reqwest::Client::new().post(format!("{}/v1/rewards/{reward}/lambda", server.http)).body(event.to_string());
        async move {
            let items: Value = request.send().await.unwrap().json().await.unwrap();
            items.as_array().unwrap().iter().map(|i| i["aggregate_reward_score"].as_f64().unwrap()).collect::<Vec<f64>>()
        }
    };
    for reward in ["vote", "gated"] {
        assert_eq!(lambda(reward).await, [1.0, 1.0, 0.0], "{reward}");
    }
    // The same plugin without `groups`: every rollout is a group of one, its own majority.
    assert_eq!(lambda("vote_alone").await, [1.0, 1.0, 1.0]);
}

#[test]
fn offline_scoring_keeps_groups_whole_across_batches_and_refuses_scattered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let input = dir.path().join("in.jsonl");
    let line = |id: &str, prompt: &str, x: &str| json!({"id": id, "prompt": prompt, "completion": answer(x)}).to_string();
    let mut lines = Vec::new();
    // 40 lines of prompt "p" (batches of 2 must not cut them), then "q", then "p" again.
    for i in 0..40 {
        lines.push(line(&format!("p{i}"), "p", if i < 25 { "5" } else { "6" }));
    }
    lines.push(line("q0", "q", "1"));
    lines.push("not json".to_owned());
    lines.push(line("p-late", "p", "5"));
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let (out, results) = score_file_with(&config, "vote", &input, &["--batch-size", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(results.len(), 43);
    for (i, r) in results[..40].iter().enumerate() {
        assert_eq!(r["metrics"]["group_size"], 40.0, "line {}: its group of 40 is whole", i + 1);
        assert_eq!(r["score"], if i < 25 { 1.0 } else { 0.0 });
    }
    assert_eq!(results[40]["metrics"]["group_size"], 1.0);
    assert_eq!(results[41]["status"], "INVALID_INPUT");
    assert_eq!(results[42]["status"], "INVALID_INPUT");
    let error = results[42]["error"].as_str().unwrap();
    assert!(error.contains("line 43: its group began at line 1"), "{error}");
    // A resumed run could start inside a group: refused, naming why.
    let output = dir.path().join("out.jsonl");
    std::fs::write(dir.path().join("out.jsonl.partial"), "").unwrap();
    let resumed = std::process::Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .args(["score", "--config"])
        .arg(&config)
        .args(["--reward", "vote", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--resume")
        .arg("--cache-dir")
        .arg(cache_dir())
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(64), "a usage error");
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(stderr.contains("--resume is not supported for reward `vote`, which scores whole groups"), "{stderr}");
}
