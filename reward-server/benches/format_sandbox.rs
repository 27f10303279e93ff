//! Rollouts per second through the sandboxed `format` plugin (fresh and reused instances) against
//! the very same checks compiled natively and run in this process.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p reward-server --bench format_sandbox`
//! Report the ratio sandboxed/native from criterion's throughput lines.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reward_server::engine::{HostBuilder, Limits, Message, Rollout};

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

fn sdk_rollouts(rollouts: &[Rollout]) -> Vec<reward_sdk::Rollout> {
    rollouts
        .iter()
        .map(|r| reward_sdk::Rollout {
            id: r.id.clone(),
            messages: r.messages.iter().map(|m| reward_sdk::Message { role: m.role.clone(), content: m.content.clone() }).collect(),
            completion: r.completion.clone(),
            reference: r.reference.clone(),
            metadata: r.metadata.clone(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let host = HostBuilder::new().cache_dir(Some(root.join("target/test-artifact-cache"))).build().unwrap();
    let plugin = host.load_file(&root.join("target/plugins/format.wasm")).expect("run scripts/build-plugins.sh first");
    let rollouts = rollouts();
    let native_rollouts = sdk_rollouts(&rollouts);

    // Same answers both ways, or the comparison means nothing.
    let native = reward_sdk::score_batch::<reward_format::FormatReward>(CONFIG, &native_rollouts);
    let sandboxed = plugin.score(CONFIG, &rollouts, &Limits::default());
    for (n, s) in native.iter().zip(&sandboxed) {
        assert_eq!(n.as_ref().unwrap().value, s.result.as_ref().unwrap().value);
    }

    let mut group = c.benchmark_group("format_2kb_batch64");
    group.throughput(Throughput::Elements(BATCH as u64)).measurement_time(Duration::from_secs(8));
    group.bench_function("native", |b| {
        b.iter(|| reward_sdk::score_batch::<reward_format::FormatReward>(CONFIG, &native_rollouts))
    });
    let reused = Limits { instance_reuse: u32::MAX, ..Limits::default() };
    group.bench_function("sandboxed_reused_instance", |b| b.iter(|| plugin.score(CONFIG, &rollouts, &reused)));
    let fresh = Limits { instance_reuse: 1, ..Limits::default() };
    group.bench_function("sandboxed_fresh_instance_per_batch", |b| b.iter(|| plugin.score(CONFIG, &rollouts, &fresh)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
