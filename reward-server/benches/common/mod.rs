//! What the sandbox-vs-native benchmarks share: loading a built plugin, converting rollouts to
//! the SDK's types, and one criterion group comparing the native function with the sandboxed
//! plugin (reused instances, and a fresh instance per batch).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use reward_server::engine::{Fixtures, Grants, HostBuilder, Limits, Plugin, Rollout};

/// The same rollouts in the SDK's types, for the native run.
pub fn sdk_rollouts(rollouts: &[Rollout]) -> Vec<reward_sdk::Rollout> {
    rollouts
        .iter()
        .map(|r| reward_sdk::Rollout {
            id: r.id.clone(),
            messages: r.messages.iter().map(|m| reward_sdk::Message { role: m.role.clone(), content: m.content.clone() }).collect(),
            completion: r.completion().to_owned(),
            reference: r.reference.clone(),
            metadata: r.metadata.clone(),
        })
        .collect()
}

/// `target/plugins/{name}.wasm`, loaded on a host of default limits.
pub fn load(name: &str) -> Arc<Plugin> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let host = HostBuilder::new().cache_dir(Some(root.join("target/test-artifact-cache"))).build().unwrap();
    host.load_file(&root.join(format!("target/plugins/{name}.wasm"))).expect("run scripts/build-plugins.sh first")
}

/// Benchmarks `R` natively against `target/plugins/{plugin}.wasm` on the same batch and config,
/// after checking both give the same scores.
// Not every bench that includes this module compares against native code.
#[allow(dead_code)]
pub fn compare<R: reward_sdk::Reward>(c: &mut Criterion, group: &str, plugin: &str, config: &str, rollouts: &[Rollout]) {
    compare_with_fixtures::<R>(c, group, plugin, config, rollouts, None);
}

/// [`compare`], with the plugin granted the fixture files of `fixtures` (natively: the SDK's
/// fixtures directory).
pub fn compare_with_fixtures<R: reward_sdk::Reward>(
    c: &mut Criterion,
    group: &str,
    plugin: &str,
    config: &str,
    rollouts: &[Rollout],
    fixtures: Option<&Path>,
) {
    let grants =
        Grants { fixtures: fixtures.map(|dir| Arc::new(Fixtures::new(dir).expect("the fixtures directory"))), ..Grants::default() };
    reward_sdk::fixtures::set_native_dir(fixtures.map(Path::to_path_buf));
    let plugin = load(plugin);
    let native_rollouts = sdk_rollouts(rollouts);

    // Same answers both ways, or the comparison means nothing.
    let native = reward_sdk::score_batch::<R>(config, &native_rollouts);
    let score = |limits: &Limits| plugin.score_until(config, rollouts, limits, &grants, &|| false);
    let sandboxed = score(&Limits::default());
    for (n, s) in native.iter().zip(&sandboxed) {
        let n = n.as_ref().expect("native scoring failed");
        let s = s.result.as_ref().expect("sandboxed scoring failed");
        assert_eq!(n.value, s.value);
    }

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(rollouts.len() as u64)).measurement_time(Duration::from_secs(8));
    g.bench_function("native", |b| b.iter(|| reward_sdk::score_batch::<R>(config, &native_rollouts)));
    let reused = Limits { instance_reuse: u32::MAX, ..Limits::default() };
    g.bench_function("sandboxed_reused_instance", |b| b.iter(|| score(&reused)));
    let fresh = Limits { instance_reuse: 1, ..Limits::default() };
    g.bench_function("sandboxed_fresh_instance_per_batch", |b| b.iter(|| score(&fresh)));
    g.finish();
}
