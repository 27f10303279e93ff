//! The native ceiling of issue 7: the Nova Lambda request of 64 rollouts handled entirely in
//! process, with nothing between the bytes and the answer but the work itself. Three ways, on the
//! very corpus the load tester sends (`loadtest`'s seeded `format` corpus, seed 1, 4,096 rollouts
//! in bodies of 64) and the config of the `format_numeric` reward of `scripts/bench.sh`:
//!
//! - `native_values`: the ceiling as the issue words it: the body parsed to `serde_json::Value`s,
//!   each converted to a rollout, the format checks compiled natively (the plugin's Rust code),
//!   the answer serialised: what a hand-written Rust Lambda would do;
//! - `native_typed`: a stricter ceiling: the server's own record reader (typed, no `Value` tree
//!   for the messages), then the same native checks and answer;
//! - `server_path_in_process`: the server's request path without HTTP: its record reader, the
//!   sandboxed plugin (reused instance), the same answer.
//!
//! The server over HTTP on one core (`scripts/bench.sh equal`) divided by these is the ratio the
//! issue asks for; `server_path_in_process` shows what HTTP and the async runtime add.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p reward-server --bench lambda_ceiling`

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use reward_server::engine::{HostBuilder, MetricKind, Rollout};
use reward_server::input::{parse_records, to_rollout};
use reward_server::server::nova;
use serde_json::Value;

const BATCH: usize = 64;
const CORPUS: usize = 4096;
/// The `format_numeric` reward of `scripts/bench.sh` (and the config of `format_sandbox`).
const CONFIG: &str = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer",
    "max_chars": 16000, "reference": {"mode": "numeric", "rel_tol": 1e-3}}"#;
/// [`CONFIG`] as the TOML of a reward.
const CONFIG_TOML: &str = r#"{ required_tags = ["think", "answer"], answer_tag = "answer", max_chars = 16000, reference = { mode = "numeric", rel_tol = 1e-3 } }"#;

/// The Lambda bodies the load tester sends: its corpus in batches of [`BATCH`], as JSON bytes.
fn bodies() -> Vec<Vec<u8>> {
    let rollouts = loadtest::corpus::generate(loadtest::corpus::Kind::Format, CORPUS, 8, 1);
    rollouts.chunks(BATCH).map(|b| serde_json::to_vec(&b.iter().map(|r| r.to_nova()).collect::<Vec<_>>()).unwrap()).collect()
}

/// A rollout in the SDK's types, its strings moved (the completion copied: the SDK's type, like
/// the plugin contract, holds it apart from the conversation).
fn into_sdk(r: Rollout) -> reward_sdk::Rollout {
    reward_sdk::Rollout {
        completion: r.completion().to_owned(),
        id: r.id,
        messages: r.messages.into_iter().map(|m| reward_sdk::Message { role: m.role, content: m.content }).collect(),
        reference: r.reference,
        metadata: r.metadata,
    }
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let host = HostBuilder::new().cache_dir(Some(root.join("target/test-artifact-cache"))).build().unwrap();
    let rewards_toml = format!(
        "plugin_dir = {:?}\n[rewards.format_numeric]\nplugin = \"format\"\nlimits = {{ instance_reuse = 10_000 }}\nconfig = {CONFIG_TOML}\n",
        root.join("target/plugins")
    );
    let rewards = reward_server::config::Rewards::from_toml(&host, &rewards_toml, &root).expect("run scripts/build-plugins.sh first");
    let reward = rewards.get("format_numeric").unwrap().clone();
    let bodies = bodies();

    // Natively, the rollout's strings move into the SDK's types (no copies).
    let native = |rollouts: Vec<Rollout>| -> Vec<u8> {
        let ids: Vec<String> = rollouts.iter().map(|r| r.id.clone()).collect();
        let scores =
            reward_sdk::score_batch::<reward_format::FormatReward>(CONFIG, &rollouts.into_iter().map(into_sdk).collect::<Vec<_>>());
        let scores: Vec<reward_sdk::Score> = scores.into_iter().map(|s| s.expect("native scoring")).collect();
        let kind = |m: &reward_sdk::Metric| if m.kind == reward_sdk::MetricKind::Reward { MetricKind::Reward } else { MetricKind::Metric };
        let answer: Vec<_> = ids
            .iter()
            .zip(&scores)
            .map(|(id, s)| nova::answer(id, s.value, s.metrics.iter().map(|m| (m.name.as_str(), m.value, kind(m)))))
            .collect();
        serde_json::to_vec(&answer).unwrap()
    };
    // As the issue words the ceiling: the body as `serde_json::Value`s.
    let native_values = |body: &[u8]| {
        let records: Vec<Value> = serde_json::from_slice(body).unwrap();
        native(records.into_iter().map(|r| to_rollout(r, "item").unwrap()).collect())
    };
    // The server's own reader of a Lambda array of good records (one pass), every byte after it native.
    let read = |body: &[u8]| -> Vec<Rollout> { parse_records(std::str::from_utf8(body).unwrap(), "item").unwrap() };
    let native_typed = |body: &[u8]| native(read(body));
    let server_path = |body: &[u8]| -> Vec<u8> {
        let scored = reward.score_batch(&read(body));
        serde_json::to_vec(&nova::response(&scored)).unwrap()
    };
    // All give the same answer, or the comparison means nothing.
    for body in &bodies {
        let expected = server_path(body);
        assert_eq!(native_values(body), expected, "native and sandboxed answers differ");
        assert_eq!(native_typed(body), expected, "native and sandboxed answers differ");
    }

    let mut g = c.benchmark_group("lambda_format_batch64");
    g.throughput(Throughput::Elements(BATCH as u64)).measurement_time(Duration::from_secs(8));
    let mut next = 0;
    type Way<'a> = (&'a str, &'a dyn Fn(&[u8]) -> Vec<u8>);
    let ways: [Way; 3] = [("native_values", &native_values), ("native_typed", &native_typed), ("server_path_in_process", &server_path)];
    for (name, way) in ways {
        g.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % bodies.len();
                way(&bodies[next])
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
