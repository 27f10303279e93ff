//! The built-in `grounded_answer` reward (the `citations` plugin) end to end: Nova citation-format
//! answers sent to the real server's Lambda endpoint exactly as a Nova RFT job sends them, and the
//! same rollouts scored offline; both must agree, and hostile answers score low or fail alone.

mod common;

use std::path::PathBuf;

use common::repo_root;
use common::server::Server;
use serde_json::{Value, json};

const CONTEXT: &str = "The Halvard Lighthouse stands on the northern tip of Skarvøy island. \
It was completed in 1874 after six years of construction led by the engineer Margit Olsen. \
Its lamp was converted to electricity in 1931. \
The tower is 32 metres tall and built of local granite.";
const GOLD_SOURCE: &str = "It was completed in 1874 after six years of construction led by the engineer Margit Olsen.";
const OTHER_SOURCE: &str = "Its lamp was converted to electricity in 1931.";
const REFUSAL: &str = "I cannot answer this question based on the provided context.";
/// The refusal the Bedrock Knowledge Bases prompt behind the Nova citation format asks for.
const RECIPE_REFUSAL: &str = "I could not find an exact answer to the question.";

fn prompt(question: &str) -> String {
    format!("Answer from the context and cite it.\n<context>{CONTEXT}</context>\n{question}")
}

fn nova_answer(text: &str, sources: &[&str]) -> String {
    let sources: String = sources.iter().map(|s| format!("<source>{s}</source>")).collect();
    format!("<answer><answer_part><text>{text}</text><sources>{sources}</sources></answer_part></answer>")
}

fn item(id: &str, question: &str, answer: &str, reference: Value) -> Value {
    json!({
        "id": id,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "You answer with citations."}]},
            {"role": "user", "content": prompt(question)},
            {"role": "nova_assistant", "content": [{"type": "text", "text": answer}]}
        ],
        "reference_answer": reference
    })
}

/// Realistic cases, each with the score range the plugin's documented formula gives it.
fn cases() -> Vec<(Value, std::ops::RangeInclusive<f64>)> {
    let who = "Who led the construction of the lighthouse?";
    let gold = json!({"answer": "Margit Olsen", "sources": [GOLD_SOURCE]});
    let unanswerable = json!({"answer": "", "unanswerable": true});
    vec![
        (item("perfect", who, &nova_answer("Margit Olsen", &[GOLD_SOURCE]), gold.clone()), 1.0..=1.0),
        // A real context sentence that does not support the answer: only the format is paid.
        (item("wrong-source", who, &nova_answer("Margit Olsen", &[OTHER_SOURCE]), gold.clone()), 0.1..=0.1),
        (
            item(
                "paraphrased-source",
                who,
                &nova_answer("Margit Olsen", &["Margit Olsen, an engineer, built it over six years."]),
                gold.clone(),
            ),
            0.0..=0.2,
        ),
        (item("whole-context-as-source", who, &nova_answer("Margit Olsen", &[CONTEXT]), gold.clone()), 0.0..=0.2),
        (item("missing-close-tag", who, &nova_answer("Margit Olsen", &[GOLD_SOURCE]).replace("</answer>", ""), gold.clone()), 0.0..=0.0),
        (item("refused-unanswerable", "Who painted the tower?", &format!("<answer>{REFUSAL}</answer>"), unanswerable.clone()), 1.0..=1.0),
        (
            item(
                "recipe-refusal-unanswerable",
                "Who painted the tower?",
                &format!("<answer><answer_part><text>{RECIPE_REFUSAL}</text><sources></sources></answer_part></answer>"),
                unanswerable.clone(),
            ),
            1.0..=1.0,
        ),
        (item("recipe-refusal-answerable", who, &format!("<answer>{RECIPE_REFUSAL}</answer>"), gold.clone()), 0.0..=0.0),
        (item("answered-unanswerable", "Who painted the tower?", &nova_answer("Margit Olsen", &[GOLD_SOURCE]), unanswerable), 0.0..=0.0),
        (item("refused-answerable", who, &format!("<answer>{REFUSAL}</answer>"), gold.clone()), 0.0..=0.0),
        (item("one-megabyte", who, &nova_answer(&"Margit Olsen ".repeat(80_000), &[GOLD_SOURCE]), gold), 0.0..=0.0),
    ]
}

async fn lambda(server: &Server, event: &Value) -> Vec<Value> {
    let response =
        reqwest::Client::new().post(format!("{}/v1/rewards/grounded_answer/lambda", server.http)).json(event).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json::<Vec<Value>>().await.unwrap()
}

fn metric(item: &Value, name: &str) -> Option<f64> {
    item["metrics_list"].as_array().unwrap().iter().find(|m| m["name"] == name).map(|m| m["value"].as_f64().unwrap())
}

#[tokio::test]
async fn nova_citation_answers_score_as_documented_through_the_lambda_endpoint() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let cases = cases();
    let event = Value::Array(cases.iter().map(|(item, _)| item.clone()).collect());
    let answers = lambda(&server, &event).await;
    assert_eq!(answers.len(), cases.len());
    for ((sent, expected), got) in cases.iter().zip(&answers) {
        assert_eq!(got["id"], sent["id"], "same order, real ids");
        let score = got["aggregate_reward_score"].as_f64().unwrap();
        assert!(expected.contains(&score), "{}: score {score}, expected {expected:?}: {got}", sent["id"]);
        assert!(metric(got, "reward_error").is_none(), "{}: a scorable rollout is no error: {got}", sent["id"]);
    }
    let by_id = |id: &str| answers.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(metric(by_id("perfect"), "citation_precision"), Some(1.0));
    assert_eq!(metric(by_id("perfect"), "citation_recall"), Some(1.0));
    assert_eq!(metric(by_id("wrong-source"), "citation_recall"), Some(0.0));
    assert_eq!(metric(by_id("recipe-refusal-unanswerable"), "format_valid"), Some(1.0));
    assert_eq!(metric(by_id("recipe-refusal-unanswerable"), "refusal_correct"), Some(1.0));
    assert_eq!(metric(by_id("recipe-refusal-answerable"), "refusal_correct"), Some(0.0));
    assert_eq!(metric(by_id("paraphrased-source"), "citation_precision"), Some(0.0));
    assert_eq!(metric(by_id("missing-close-tag"), "format_valid"), Some(0.0));
    assert_eq!(metric(by_id("one-megabyte"), "format_valid"), Some(0.0));
}

#[tokio::test]
async fn a_rollout_without_context_fails_alone_with_a_message() {
    let server = Server::start(&repo_root().join("rewards.toml"), &[]);
    let mut no_context = item("no-context", "Who?", &nova_answer("Margit Olsen", &[GOLD_SOURCE]), json!("Margit Olsen"));
    no_context["messages"][1]["content"] = json!("Who led the construction?");
    let event = json!([no_context, cases()[0].0]);
    let answers = lambda(&server, &event).await;
    assert_eq!(answers[0]["id"], "no-context");
    assert_eq!(answers[0]["aggregate_reward_score"], 0.0);
    assert_eq!(metric(&answers[0], "reward_error"), Some(1.0));
    assert_eq!(answers[1]["aggregate_reward_score"], 1.0, "the good rollout beside it scores normally");

    // The native API says what went wrong.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/score", server.http))
        .json(&json!({"reward": "grounded_answer", "rollouts": [{"id": "n", "prompt": "Who?", "completion": nova_answer("x", &[GOLD_SOURCE]), "reference": "x"}]}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let result = &body["results"][0];
    assert_eq!(result["status"], "INVALID_INPUT", "{body}");
    assert!(result["error"].as_str().unwrap().contains("context"), "{body}");
}

#[test]
fn offline_scoring_agrees_with_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let input: PathBuf = dir.path().join("cases.jsonl");
    let lines: Vec<String> = cases().iter().map(|(item, _)| item.to_string()).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let output = dir.path().join("scored.jsonl");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_reward-server"))
        .current_dir(repo_root())
        .args(["score", "--reward", "grounded_answer", "--no-progress", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .env("REWARD_SERVER_CACHE_DIR", common::cache_dir())
        .status()
        .unwrap();
    assert!(status.success());
    let scored: Vec<Value> = std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(scored.len(), cases().len());
    for ((sent, expected), got) in cases().iter().zip(&scored) {
        assert_eq!(got["id"], sent["id"]);
        assert_eq!(got["status"], "OK", "{got}");
        let score = got["score"].as_f64().unwrap();
        assert!(expected.contains(&score), "{}: offline score {score}, expected {expected:?}", sent["id"]);
    }
}
