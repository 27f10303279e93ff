//! Where a sandboxed rollout's time goes: a quick probe, not a benchmark (the criterion benches
//! in `benches/` are the measured figures). Prints microseconds per rollout for a guest that does
//! nothing (the host's per-call overhead), the `format` plugin on 2 KB completions (reused and
//! fresh instances), and the same format checks compiled natively, all in this process.
//!
//! ```sh
//! scripts/build-plugins.sh && cargo run --release -p reward-server --example overhead
//! ```

use std::path::PathBuf;
use std::time::Instant;

use reward_server::engine::{HostBuilder, Limits, Message, Plugin, Rollout};

#[path = "../benches/common/mod.rs"]
#[allow(dead_code)]
mod common;

const BATCH: usize = 64;
const ROUNDS: usize = 200;
const FORMAT_CONFIG: &str = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer", "reference": {"mode": "numeric"}}"#;

fn rollout(completion: &str) -> Rollout {
    Rollout {
        id: "probe".into(),
        messages: vec![
            Message { role: "user".into(), content: "Revenue grew from 120 to 135. Growth in percent?".into() },
            Message { role: "assistant".into(), content: completion.into() },
        ],
        reference: r#"{"answer":"12.5%"}"#.into(),
        metadata: "{}".into(),
        group: None,
    }
}

/// Microseconds per rollout of `f`, which scores one batch of [`BATCH`].
fn per_rollout(mut f: impl FnMut()) -> f64 {
    f();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        f();
    }
    started.elapsed().as_secs_f64() / (ROUNDS * BATCH) as f64 * 1e6
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let host = HostBuilder::new().cache_dir(Some(root.join("target/test-artifact-cache"))).build().unwrap();
    let load = |name: &str| host.load_file(&root.join(format!("target/plugins/{name}.wasm"))).expect("run scripts/build-plugins.sh first");
    let (guest, format) = (load("limits-guest"), load("format"));
    let reused = Limits { instance_reuse: u32::MAX, ..Limits::default() };
    let fresh = Limits { instance_reuse: 1, ..Limits::default() };

    let tiny: Vec<Rollout> = (0..BATCH).map(|_| rollout("a")).collect();
    let two_kb = format!("<think>{}</think><answer>12.5%</answer>", "word ".repeat(390));
    let big: Vec<Rollout> = (0..BATCH).map(|_| rollout(&two_kb)).collect();
    let native = common::sdk_rollouts(&big);

    let instructions = |p: &Plugin, cfg: &str, rs: &[Rollout]| p.score(cfg, &rs[..1], &reused)[0].instructions;
    println!("{:<34} {:>8} {:>12}", "", "us/roll", "instructions");
    for (name, plugin, cfg, rollouts, limits) in [
        ("empty guest, tiny, reused", &guest, "{}", &tiny, &reused),
        ("empty guest, 2 KB, reused", &guest, "{}", &big, &reused),
        ("format, 2 KB, reused", &format, FORMAT_CONFIG, &big, &reused),
        ("format, 2 KB, fresh per batch", &format, FORMAT_CONFIG, &big, &fresh),
    ] {
        let us = per_rollout(|| drop(plugin.score(cfg, rollouts, limits)));
        println!("{name:<34} {us:>8.2} {:>12}", instructions(plugin, cfg, rollouts));
    }
    let native_us = per_rollout(|| drop(reward_sdk::score_batch::<reward_format::FormatReward>(FORMAT_CONFIG, &native)));
    println!("{:<34} {native_us:>8.2}", "format, 2 KB, native");
}
