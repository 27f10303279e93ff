//! Rollouts per second through the sandboxed `format` plugin (fresh and reused instances) against
//! the very same checks compiled natively and run in this process: 64 rollouts of 2 KB.
//!
//! A second group, `format_2kb_compute`, times the checks alone (no per-rollout host work): see
//! [`compute_only`].
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p reward-server --bench format_sandbox`
//! Report the ratio sandboxed/native from criterion's throughput lines.

mod common;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reward_server::engine::{Limits, Message, Rollout};

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
                    Message { role: "assistant".into(), content: completion },
                ],
                reference: r#"{"answer": "12.5%"}"#.into(),
                metadata: "{}".into(),
                group: None,
            }
        })
        .collect()
}

/// Rounds of the checks per call in `format_2kb_compute`.
const REPEAT: u32 = 1000;

fn bench(c: &mut Criterion) {
    common::compare::<reward_format::FormatReward>(c, "format_2kb_batch64", "format", CONFIG, &rollouts());
    compute_only(c);
}

/// The checks alone: one 2 KB rollout scored [`REPEAT`] times in a row natively, and inside one
/// call to the `format-loop` guest (the same checks in the sandbox, one host crossing per
/// [`REPEAT`] rounds). The ratio is what WebAssembly and the metering (fuel, epochs) cost the
/// checks themselves, with the host's per-rollout work taken out.
fn compute_only(c: &mut Criterion) {
    use reward_sdk::Reward;
    let rollout = rollouts().swap_remove(0);
    let native_rollout = common::sdk_rollouts(std::slice::from_ref(&rollout)).swap_remove(0);
    let config = reward_sdk::check_config::<reward_format::FormatReward>(CONFIG).unwrap();
    let plugin = common::load("format-loop");
    let loop_config = format!(r#"{{"repeat": {REPEAT}, "format": {CONFIG}}}"#);
    let limits = Limits { instance_reuse: u32::MAX, ..Limits::default() };
    let sandboxed = || plugin.score(&loop_config, std::slice::from_ref(&rollout), &limits).swap_remove(0);
    let native = || {
        let mut last = None;
        for _ in 0..REPEAT {
            last = Some(reward_format::FormatReward::score(&config, std::hint::black_box(&native_rollout)));
        }
        last.unwrap().unwrap()
    };
    let s = sandboxed();
    assert_eq!(s.result.as_ref().expect("sandboxed scoring").value, native().value);
    println!("format_2kb_compute: {} instructions per round in the sandbox", s.instructions / u64::from(REPEAT));

    let mut g = c.benchmark_group("format_2kb_compute");
    g.throughput(Throughput::Elements(REPEAT.into())).measurement_time(Duration::from_secs(8));
    g.bench_function("native", |b| b.iter(native));
    g.bench_function("sandboxed", |b| b.iter(sandboxed));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
