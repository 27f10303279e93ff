//! The `sql` plugin end to end through the real server: Spider-style rollouts scored against
//! fixture databases the reward grants (`fixtures = "DIR"`), the same databases refused to a
//! reward that grants none, and schema-only rollouts on the built-in `text_to_sql` reward.

mod common;

use std::path::Path;

use common::server::Server;
use common::{plugin_path, repo_root};
use serde_json::{Value, json};

/// A rewards config with a `spider` reward granted `fixtures` and an `ungranted` one that is not.
fn config(dir: &Path, fixtures: &Path) -> std::path::PathBuf {
    let path = dir.join("rewards.toml");
    let plugin = plugin_path("sql");
    std::fs::write(
        &path,
        format!(
            "[rewards.spider]\nplugin = {plugin:?}\nfixtures = {fixtures:?}\nlimits = {{ instance_reuse = 100 }}\nconfig = {{ data = \"fixtures\" }}\n\n\
             [rewards.ungranted]\nplugin = {plugin:?}\nconfig = {{ data = \"fixtures\" }}\n",
        ),
    )
    .unwrap();
    path
}

fn rollout(id: &str, predicted: &str, gold: &str, db: &str) -> Value {
    json!({"id": id, "prompt": "Answer with one SQLite query in a ```sql block.", "completion": format!("```sql\n{predicted}\n```"),
           "reference": {"gold_sql": gold, "db_id": db}})
}

async fn score(server: &Server, reward: &str, rollouts: Vec<Value>) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .post(format!("{}/v1/score", server.http))
        .json(&json!({"reward": reward, "rollouts": rollouts}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["results"].as_array().unwrap_or_else(|| panic!("{body}")).clone()
}

#[tokio::test]
async fn spider_rollouts_score_against_granted_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    reward_sql::fixtures::build(&reward_sql::fixtures::scripts_dir(), &fixtures).unwrap();
    let server = Server::start(&config(dir.path(), &fixtures), &[]);
    let gold = "SELECT name FROM singer WHERE age > 32";
    let results = score(
        &server,
        "spider",
        vec![
            rollout("rewrite", "SELECT s.name FROM singer AS s WHERE 32 < s.age", gold, "concert_singer"),
            rollout("off-by-one", "SELECT name FROM singer WHERE age >= 32", gold, "concert_singer"),
            rollout("two-statements", "SELECT name FROM singer WHERE age > 32; DELETE FROM singer", gold, "concert_singer"),
            rollout("no-such-db", gold, gold, "nosuch"),
            rollout("path-escape", gold, gold, "../fixtures/concert_singer"),
            rollout("after", "SELECT count(*) FROM singer", "SELECT COUNT(1) FROM singer", "concert_singer"),
        ],
    )
    .await;
    let by_id = |id: &str| results.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id} missing"));
    assert_eq!(by_id("rewrite")["score"], 1.0, "{}", by_id("rewrite"));
    assert_eq!(by_id("rewrite")["metrics"]["result_match"], 1.0);
    assert_eq!(by_id("off-by-one")["score"], 0.1, "executes, but a singer is exactly 32: {}", by_id("off-by-one"));
    assert_eq!(by_id("two-statements")["score"], 0.0, "{}", by_id("two-statements"));
    for id in ["no-such-db", "path-escape"] {
        assert_eq!(by_id(id)["status"], "INVALID_INPUT", "{}", by_id(id));
    }
    assert!(by_id("no-such-db")["error"].as_str().unwrap().contains("nosuch"), "{}", by_id("no-such-db"));
    assert_eq!(by_id("after")["score"], 1.0, "rollouts after failures score normally");

    // The same rollout under a reward that grants no directory: the plugin is told so.
    let refused = score(&server, "ungranted", vec![rollout("r", gold, gold, "concert_singer")]).await;
    assert_ne!(refused[0]["status"], "OK", "{}", refused[0]);
    assert!(refused[0]["error"].as_str().unwrap().contains("grants no fixtures directory"), "{}", refused[0]);
}

#[tokio::test]
async fn schema_only_rollouts_on_the_builtin_reward() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let prompt = "CREATE TABLE head (head_id INTEGER PRIMARY KEY, name TEXT, born_state TEXT, age REAL)\n\
                  How many heads of the departments are older than 56?";
    let item = |id: &str, predicted: &str| {
        json!({"id": id, "messages": [{"role": "user", "content": prompt},
                                      {"role": "assistant", "content": format!("```sql\n{predicted}\n```")}],
               "reference_answer": "SELECT count(*) FROM head WHERE age  >  56"})
    };
    let response: Vec<Value> = reqwest::Client::new()
        .post(format!("{}/v1/rewards/text_to_sql/lambda", server.http))
        .json(&json!([
            item("same", "SELECT COUNT(head_id) FROM head WHERE 56 < age"),
            item("near-miss", "SELECT count(*) FROM head WHERE age >= 56"),
            item("constant", "SELECT 3")
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let score = |i: usize| response[i]["aggregate_reward_score"].as_f64().unwrap();
    assert_eq!(response[0]["id"], "same");
    assert_eq!(score(0), 1.0, "{}", response[0]);
    assert!(score(1) < 0.5, "the synthesised databases hold the literal 56: {}", response[1]);
    assert!(score(2) < 0.5, "a constant reads no table: {}", response[2]);
}
