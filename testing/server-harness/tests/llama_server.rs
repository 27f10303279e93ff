//! The real judge server (`scripts/setup-judge.sh` installs it; CI runs that first): a greedy,
//! seeded chat completion answers, counts tokens, and answers the same every time. Skipped only
//! with REWARD_JUDGE_SKIP=1 (`scripts/test.sh --quick`).

use std::time::{Duration, Instant};

use reward_server_harness::LlamaServer;
use reward_server_harness::http1::Connection;
use serde_json::json;

#[test]
fn a_seeded_greedy_completion_is_non_empty_counted_and_repeatable() {
    let Some(server) = LlamaServer::start_or_skip() else { return };
    let body = json!({
        "model": server.model_name(),
        "messages": [
            {"role": "system", "content": "You are a strict grader. Answer with one word: correct or incorrect."},
            {"role": "user", "content": "Question: what is 2 + 2? Answer given: 4."},
        ],
        "temperature": 0,
        "seed": 7,
        "max_tokens": 16,
    });
    let mut conn = Connection::open(server.addr(), Duration::from_secs(60)).unwrap();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let r = conn.post_json("/v1/chat/completions", &[("Authorization", "Bearer sk-test")], &body).unwrap();
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json().unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned();
        assert!(!content.trim().is_empty(), "empty completion: {v}");
        assert!(v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0, "no prompt tokens counted: {v}");
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0, "no completion tokens counted: {v}");
        assert_eq!(v["object"], "chat.completion");
        eprintln!("llama_cpp.server answered {content:?} in {took:?} ({})", v["usage"]);
        answers.push(content);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "temperature 0 and seed 7 answered differently: {answers:?}");
}

#[test]
#[should_panic(expected = "run scripts/setup-judge.sh")]
fn a_missing_model_names_the_setup_script() {
    LlamaServer::start_with(std::path::Path::new("/nonexistent/model.gguf"), &[]);
}
