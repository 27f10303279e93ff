//! The sandbox's limit matrix: each limit obeyed and violated, each misbehaviour mapped to its
//! status, and after each, a normal rollout on the same plugin still scores correctly.
//! The guest is `reward-plugins/testing/limits-guest`: its input picks the misbehaviour.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{host, plugin_path, rollout};
use reward_server::engine::{Limits, Plugin, PluginOutcome, Status};

fn guest() -> &'static Arc<Plugin> {
    static PLUGIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    PLUGIN.get_or_init(|| host().load_file(&plugin_path("limits-guest")).unwrap())
}

/// Small budgets, so violations are quick.
fn test_limits() -> Limits {
    Limits { fuel: 50_000_000, deadline: Duration::from_secs(20), memory_bytes: 32 << 20, ..Limits::default() }
}

/// Scores `input` followed by a normal rollout on the same instance pool, and checks that the
/// normal one still scores (its score is its length). Returns the first outcome.
fn run_plugin(input: &str, tweak: impl FnOnce(&mut Limits)) -> PluginOutcome {
    let mut limits = test_limits();
    tweak(&mut limits);
    let outcomes = guest().score("{}", &[rollout("probe", input), rollout("after", "hello")], &limits);
    assert_eq!(outcomes.len(), 2);
    let after = outcomes[1].result.as_ref().unwrap_or_else(|f| panic!("normal rollout failed after {input:?}: {f:?}"));
    assert_eq!(after.value, 5.0, "normal rollout after {input:?}");
    outcomes.into_iter().next().unwrap()
}

fn failure(outcome: &PluginOutcome) -> (Status, &str) {
    match &outcome.result {
        Ok(s) => panic!("expected a failure, got {s:?}"),
        Err(f) => (f.status, f.message.as_str()),
    }
}

#[test]
fn fuel_obeyed() {
    let outcome = run_plugin("work 10", |_| {});
    assert_eq!(outcome.result.unwrap().value, 1.0);
    assert!(outcome.instructions > 10_000, "instructions: {}", outcome.instructions);
}

#[test]
fn fuel_violated_is_a_reproducible_timeout() {
    let first = run_plugin("loop", |_| {});
    let (status, message) = failure(&first);
    assert_eq!(status, Status::Timeout);
    assert!(message.contains("ran out of fuel after 50000000 instructions"), "{message}");
    assert_eq!(first.instructions, 50_000_000);
    let second = run_plugin("loop", |_| {});
    assert_eq!(second.instructions, first.instructions);
}

#[test]
fn instruction_counts_are_deterministic() {
    let counts: Vec<u64> = (0..3).map(|_| run_plugin("work 200", |_| {}).instructions).collect();
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    let more = run_plugin("work 400", |_| {}).instructions;
    assert!(more > counts[0], "twice the work, {more} vs {} instructions", counts[0]);
}

#[test]
fn deadline_obeyed() {
    let outcome = run_plugin("work 10", |l| l.deadline = Duration::from_millis(2000));
    assert!(outcome.result.is_ok());
}

#[test]
fn deadline_violated_is_a_timeout() {
    // Fuel so large that only the wall clock can stop the loop.
    let outcome = run_plugin("loop", |l| {
        l.fuel = u64::MAX / 4;
        l.deadline = Duration::from_millis(100);
    });
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::Timeout);
    assert!(message.contains("wall-clock deadline of 100 ms"), "{message}");
}

#[test]
fn memory_obeyed() {
    // 4 MiB of output text fits in a 32 MiB instance.
    let outcome = run_plugin("big-reason 4000000", |l| l.max_reason_bytes = 8 << 20);
    assert_eq!(outcome.result.unwrap().reason.unwrap().len(), 4_000_000);
}

#[test]
fn memory_violated_is_out_of_memory() {
    let outcome = run_plugin("alloc", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::OutOfMemory);
    assert!(message.contains("memory_mib is 32"), "{message}");
}

#[test]
fn stack_overflow_is_a_plugin_error() {
    let outcome = run_plugin("deep", |l| l.fuel = u64::MAX / 4);
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("overflowed its stack"), "{message}");
}

#[test]
fn shadow_stack_overflow_is_a_plugin_error() {
    let outcome = run_plugin("stack", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("out of bounds (a shadow-stack overflow"), "{message}");
}

#[test]
fn panic_is_a_plugin_error() {
    let outcome = run_plugin("panic", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("plugin \"limits-guest\" version 0.1.0 panicked"), "{message}");
}

#[test]
fn non_finite_scores_are_plugin_errors() {
    for input in ["nan", "inf"] {
        let outcome = run_plugin(input, |_| {});
        let (status, message) = failure(&outcome);
        assert_eq!(status, Status::PluginError);
        assert!(message.contains("non-finite score"), "{input}: {message}");
    }
}

#[test]
fn reason_size_obeyed_and_violated() {
    assert!(run_plugin("big-reason 1000", |_| {}).result.is_ok());
    let outcome = run_plugin("big-reason 70000", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("reason of 70000 bytes, more than max_reason_bytes (65536)"), "{message}");
}

#[test]
fn metric_count_obeyed_and_violated() {
    assert_eq!(run_plugin("many-metrics 10", |_| {}).result.unwrap().metrics.len(), 10);
    let outcome = run_plugin("many-metrics 300", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("300 metrics, more than max_metrics (256)"), "{message}");
}

#[test]
fn invalid_input_is_typed() {
    let outcome = run_plugin("invalid", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::InvalidInput);
    assert!(message.contains("asked to reject"), "{message}");
}

#[test]
fn reused_instances_survive_traps_of_their_neighbours() {
    let limits = Limits { instance_reuse: 100, ..test_limits() };
    let inputs = ["a", "panic", "bb", "loop", "ccc", "alloc", "dddd"];
    let rollouts: Vec<_> = inputs.iter().enumerate().map(|(i, t)| rollout(&i.to_string(), t)).collect();
    for round in 0..3 {
        let outcomes = guest().score("{}", &rollouts, &limits);
        let statuses: Vec<Status> = outcomes.iter().map(|o| o.result.as_ref().map(|_| Status::Ok).unwrap_or_else(|f| f.status)).collect();
        assert_eq!(
            statuses,
            [Status::Ok, Status::PluginError, Status::Ok, Status::Timeout, Status::Ok, Status::OutOfMemory, Status::Ok],
            "round {round}"
        );
        let values: Vec<f64> = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).map(|s| s.value).collect();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0], "round {round}");
    }
}

#[test]
fn batches_longer_than_a_chunk_keep_order_and_exact_budgets() {
    // The guest imports `meter`, so once the batch's pace is known (fast rollouts here) it is
    // called with chunks of up to CHUNK rollouts: a trap in the middle of a chunk loses that chunk's earlier
    // results, which are scored again.
    let limits = Limits { instance_reuse: 1, ..test_limits() };
    let n = 3 * reward_server::engine::CHUNK + 5;
    let trap_at = [reward_server::engine::CHUNK + 3, 2 * reward_server::engine::CHUNK];
    let texts: Vec<String> = (0..n).map(|i| if trap_at.contains(&i) { "loop".to_owned() } else { "x".repeat(i + 1) }).collect();
    let rollouts: Vec<_> = texts.iter().enumerate().map(|(i, t)| rollout(&i.to_string(), t)).collect();
    let outcomes = guest().score("{}", &rollouts, &limits);
    assert_eq!(outcomes.len(), n);
    for (i, outcome) in outcomes.iter().enumerate() {
        if trap_at.contains(&i) {
            let (status, _) = failure(outcome);
            assert_eq!(status, Status::Timeout, "rollout {i}");
            assert_eq!(outcome.instructions, limits.fuel, "a timeout is charged exactly the fuel limit");
        } else {
            assert_eq!(outcome.result.as_ref().unwrap().value, (i + 1) as f64, "rollout {i} in its place");
        }
    }
    // A rollout's count is its own work: the same whether scored alone or deep in a batch.
    let alone = guest().score("{}", &[rollout("w", "work 50")], &limits)[0].instructions;
    let mut batch: Vec<_> = (0..20).map(|i| rollout(&i.to_string(), "abc")).collect();
    batch.push(rollout("w", "work 50"));
    let deep = guest().score("{}", &batch, &limits)[20].instructions;
    assert!(alone > 50_000, "work 50 burns a measurable amount: {alone}");
    let drift = alone.abs_diff(deep);
    assert!(drift * 100 < alone, "alone {alone} vs at index 20 {deep}: the glue of other rollouts is charged to none");
}

#[test]
fn the_same_batch_reports_the_same_instructions_every_time() {
    // A rollout's count depends on what shared its call (the arguments lifted before its turn), so
    // the chunks must be cut the same way on every run: by the batch's own instruction counts, not
    // by the clock or by what the plugin scored before. A freshly loaded plugin has no history; the
    // second and third runs do, and must still cut (and count) exactly as the first.
    let plugin = host().load_file(&plugin_path("limits-guest")).unwrap();
    let limits = Limits { instance_reuse: 1, ..test_limits() };
    let texts: Vec<String> = (0..40).map(|i| if i % 7 == 3 { "work 2".to_owned() } else { "y".repeat(1 + i * 13 % 50) }).collect();
    let rollouts: Vec<_> = texts.iter().enumerate().map(|(i, t)| rollout(&i.to_string(), t)).collect();
    let counts = || -> Vec<u64> { plugin.score("{}", &rollouts, &limits).iter().map(|o| o.instructions).collect() };
    let first = counts();
    assert!(first.iter().all(|&n| n > 0), "{first:?}");
    assert_eq!(counts(), first, "second run");
    assert_eq!(counts(), first, "third run");
}

#[test]
fn meter_refill_is_stopped_at_the_calls_end() {
    // Ending its own rollout and beginning the next ones itself used to hand the guest a fresh
    // budget each time: it ran forever on one worker.
    let outcome = run_plugin("meter-refill", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("broke the meter protocol") && message.contains("past the call's"), "{message}");
}

#[test]
fn meter_trap_past_the_chunk_ends() {
    // A trap claiming a rollout past the call's end used to make the re-run loop spin for ever.
    let outcome = run_plugin("meter-past", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::PluginError);
    assert!(message.contains("broke the meter protocol"), "{message}");
}

#[test]
fn glue_between_rollouts_has_a_budget() {
    let outcome = run_plugin("meter-glue-spin", |_| {});
    let (status, message) = failure(&outcome);
    assert_eq!(status, Status::Timeout);
    assert!(message.contains("ran out of fuel"), "{message}");
}

#[test]
fn meter_abuse_in_a_chunk_fails_only_its_rollout() {
    let limits = Limits { instance_reuse: 1, ..test_limits() };
    // Warm the pace so the batch goes in chunks.
    guest().score("{}", &[rollout("w", "abc"), rollout("w2", "abcd")], &limits);
    let bad = [3, 9, 17];
    let kinds = ["meter-refill", "meter-past", "meter-glue-spin"];
    let texts: Vec<String> = (0..24)
        .map(|i| match bad.iter().position(|&b| b == i) {
            Some(k) => kinds[k].to_owned(),
            None => "y".repeat(i + 1),
        })
        .collect();
    let rollouts: Vec<_> = texts.iter().enumerate().map(|(i, t)| rollout(&i.to_string(), t)).collect();
    let outcomes = guest().score("{}", &rollouts, &limits);
    assert_eq!(outcomes.len(), 24);
    for (i, outcome) in outcomes.iter().enumerate() {
        match bad.iter().position(|&b| b == i) {
            Some(2) => assert_eq!(failure(outcome).0, Status::Timeout, "rollout {i}"),
            Some(_) => assert_eq!(failure(outcome).0, Status::PluginError, "rollout {i}"),
            None => assert_eq!(outcome.result.as_ref().unwrap().value, (i + 1) as f64, "rollout {i} in its place"),
        }
    }
}

/// `rollout(id, completion)` in group `group`.
fn member(group: &str, id: &str, completion: &str) -> reward_server::engine::Rollout {
    rollout(id, completion).in_group(Some(group.into()))
}

#[test]
fn a_trap_fails_its_whole_group_and_no_other() {
    // Interleaved groups: each is one call, so a panic in `a2` takes `a1` and `a3` (scored in the
    // same call) with it, and `b1`, in its own call, scores.
    let rollouts = [member("A", "a1", "x"), member("B", "b1", "zzz"), member("A", "a2", "panic"), member("A", "a3", "yy")];
    let outcomes = guest().score_groups("{}", &rollouts, &test_limits(), &Default::default(), &|| false);
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes[1].result.as_ref().expect("group B scores").value, 3.0);
    for i in [0, 2, 3] {
        let (status, message) = failure(&outcomes[i]);
        assert_eq!(status, Status::PluginError, "rollout {i}");
        assert!(message.contains("group `A` (3 rollouts, one call) failed as a whole: rollout `a2`"), "{message}");
    }
    // The next call gets a fresh instance: the same groups without the panic all score.
    let healthy = [member("A", "a1", "x"), member("B", "b1", "zzz"), member("A", "a2", "pp"), member("A", "a3", "yy")];
    let values: Vec<f64> = guest()
        .score_groups("{}", &healthy, &test_limits(), &Default::default(), &|| false)
        .iter()
        .map(|o| o.result.as_ref().expect("scores").value)
        .collect();
    assert_eq!(values, [1.0, 3.0, 2.0, 2.0], "in request order");
}

#[test]
fn a_timeout_in_a_group_fails_the_group_with_the_rollouts_budget() {
    let rollouts = [member("A", "a1", "x"), member("A", "a2", "loop")];
    let limits = test_limits();
    let outcomes = guest().score_groups("{}", &rollouts, &limits, &Default::default(), &|| false);
    for o in &outcomes {
        let (status, message) = failure(o);
        assert_eq!(status, Status::Timeout);
        // The guest meters its rollouts: the looping one ran out of its own fuel, not the group's.
        assert!(message.contains(&format!("ran out of fuel after {} instructions (limit `fuel`)", limits.fuel)), "{message}");
    }
    assert_eq!(outcomes[1].instructions, limits.fuel, "the trapped rollout is charged its fuel");
}

#[test]
fn groups_over_the_cap_fail_as_invalid_input_and_spare_the_rest() {
    use reward_server::engine::group::MAX_GROUP_ROLLOUTS;
    let mut rollouts: Vec<_> = (0..=MAX_GROUP_ROLLOUTS).map(|i| member("big", &i.to_string(), "x")).collect();
    rollouts.push(member("small", "s", "abcd"));
    let outcomes = guest().score_groups("{}", &rollouts, &test_limits(), &Default::default(), &|| false);
    let (status, message) = failure(&outcomes[0]);
    assert_eq!(status, Status::InvalidInput);
    assert!(message.contains(&format!("group `big` has {} rollouts", MAX_GROUP_ROLLOUTS + 1)), "{message}");
    assert!(outcomes[..=MAX_GROUP_ROLLOUTS].iter().all(|o| o.result.is_err()));
    assert_eq!(outcomes[MAX_GROUP_ROLLOUTS + 1].result.as_ref().unwrap().value, 4.0);
}

#[test]
fn a_cancelled_request_runs_no_group() {
    let rollouts = [member("A", "a1", "x"), member("B", "b1", "y")];
    let outcomes = guest().score_groups("{}", &rollouts, &test_limits(), &Default::default(), &|| true);
    for o in &outcomes {
        let (status, message) = failure(o);
        assert_eq!(status, Status::Timeout);
        assert!(message.starts_with("cancelled before scoring"), "{message}");
    }
}
