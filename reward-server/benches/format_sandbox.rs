//! Rollouts per second through the sandboxed `format` plugin (fresh and reused instances) against
//! the very same checks compiled natively and run in this process: 64 rollouts of 2 KB.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p reward-server --bench format_sandbox`
//! Report the ratio sandboxed/native from criterion's throughput lines.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use reward_server::engine::{Message, Rollout};

const BATCH: usize = 64;
const CONFIG: &str = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer",
    "max_chars": 16000, "reference": {"mode": "numeric", "rel_tol": 1e-3}}"#;

/// A 2 KB completion: a reasoning block, then the answer. Varies with `i` so no two are equal.
fn completion(i: usize) -> String {
    let mut think = String::new();
    while think.len() < 1900 {
        think.push_str(&format!("Step {}: revenue grew from {} to {}, a change of {}. ", think.len(), 80 + i, 90 + i, 10));
    }
    format!("<think>{think}</think>\n<answer>{}%</answer>", 12.5 + (i % 3) as f64)
}

fn rollouts() -> Vec<Rollout> {
    (0..BATCH)
        .map(|i| {
            let completion = completion(i);
            Rollout {
                id: format!("r{i}"),
                messages: vec![
                    Message { role: "user".into(), content: "By what percent did revenue grow?".into() },
                    Message { role: "assistant".into(), content: completion.clone() },
                ],
                completion,
                reference: r#"{"answer": "12.5%"}"#.into(),
                metadata: "{}".into(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    common::compare::<reward_format::FormatReward>(c, "format_2kb_batch64", "format", CONFIG, &rollouts());
}

criterion_group!(benches, bench);
criterion_main!(benches);
