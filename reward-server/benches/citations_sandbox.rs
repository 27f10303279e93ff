//! Rollouts per second through the sandboxed `citations` plugin on 20 KB contexts (a GRPO group
//! of 16 answers to one prompt, each citing 3 sentences), against the same checks compiled
//! natively and run in this process.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p reward-server --bench citations_sandbox`

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use reward_server::engine::{Message, Rollout};

const GROUP: usize = 16;
const CONFIG: &str = r#"{"style": "nova", "context_tag": "context"}"#;

/// About 200 distinct sentences, 20 KB in all.
fn sentences() -> Vec<String> {
    let places = ["harbour", "archive", "observatory", "mill", "bridge", "library", "market", "station"];
    let mut out = Vec::new();
    let mut i = 0;
    while out.iter().map(|s: &String| s.len() + 1).sum::<usize>() < 20_000 {
        out.push(format!(
            "In {} the {} of Varnholm recorded {} visitors and {} repairs under keeper number {}.",
            1800 + i,
            places[i % places.len()],
            100 + 7 * i,
            3 + i % 11,
            i
        ));
        i += 1;
    }
    out
}

fn rollouts() -> Vec<Rollout> {
    let s = sentences();
    let context = s.join(" ");
    let prompt = format!("<context>{context}</context>\nHow many visitors did the harbour record in 1800, 1808 and 1816?");
    let cited = [&s[0], &s[8], &s[16]];
    let reference = serde_json::json!({"answer": "100, 156 and 212", "sources": cited}).to_string();
    (0..GROUP)
        .map(|i| {
            let text = if i % 4 == 3 { "100, 150 and 212".to_owned() } else { "100, 156 and 212".to_owned() };
            let sources: String = cited.iter().map(|c| format!("<source>{c}</source>")).collect();
            let completion = format!(
                "<think>Look up the three years.</think>\n<answer><answer_part><text>{text}</text><sources>{sources}</sources></answer_part></answer>"
            );
            Rollout {
                id: format!("r{i}"),
                messages: vec![
                    Message { role: "user".into(), content: prompt.clone() },
                    Message { role: "assistant".into(), content: completion },
                ],
                reference: reference.clone(),
                metadata: "{}".into(),
                group: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    common::compare::<reward_citations::CitationsReward>(c, "citations_20kb_group16", "citations", CONFIG, &rollouts());
}

criterion_group!(benches, bench);
criterion_main!(benches);
