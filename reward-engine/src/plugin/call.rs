//! One metered call into a plugin instance: a rollout, or a chunk of them for a plugin that
//! imports `meter`; what it cost, and the typed status of whatever went wrong.

use std::time::{Duration, Instant};

use wasmtime::{Store, Trap};

use super::super::bindings::wit;
use super::super::judge::JudgeUsage;
use super::super::limits::{Limits, MAX_GUEST_ERROR_BYTES, MAX_METRIC_NAME_BYTES, bounded_guest_text, epoch_ticks};
use super::super::types::{Failure, Metric, MetricKind, Rollout, Status};
use super::store::StoreState;
use super::{CHUNK, CHUNK_FUEL, Live, Plugin, PluginOutcome, PluginScore};

/// The instructions per rollout one instance has seen (a moving average), which size its next
/// chunk for a metered plugin: one rollout until the first is measured, then as many as fit in
/// [`CHUNK_FUEL`], at most [`CHUNK`]. Only the instance's own counts feed it, never the clock or
/// other instances: a rollout's count depends on what shared its call (the arguments lifted before
/// its turn), so chunks cut by a shared or timed pace would make the same input report different
/// instructions from one run to the next. A fresh instance per batch (`instance_reuse = 1`) cuts
/// every batch the same way; a reused one carries its pace to its next batch (no probing call),
/// as its counts already depend on its history.
#[derive(Debug, Default)]
pub(super) struct Pace {
    per_rollout: Option<u64>,
}

impl Pace {
    pub(super) fn chunk(&self) -> usize {
        match self.per_rollout {
            None => 1,
            Some(per_rollout) => usize::try_from(CHUNK_FUEL / per_rollout.max(1)).unwrap_or(CHUNK).clamp(1, CHUNK),
        }
    }

    pub(super) fn observe(&mut self, scored: &[PluginOutcome]) {
        let Some(total) = scored.iter().map(|o| o.instructions).reduce(u64::saturating_add) else {
            return;
        };
        let sample = total / scored.len() as u64;
        self.per_rollout = Some(match self.per_rollout {
            None => sample,
            Some(old) => old.saturating_mul(3).saturating_add(sample) / 4,
        });
    }
}

/// How one call to the guest ended.
pub(super) enum Call {
    /// An outcome per rollout, in order; the instance may serve again.
    Scored(Vec<PluginOutcome>),
    /// A trap: the index of the rollout it belongs to and its outcome. The results of the rollouts
    /// before it are lost with the instance, which must be dropped.
    Trapped(usize, PluginOutcome),
    /// The call failed as a whole: the guest broke the meter protocol or answered a result list of
    /// the wrong length, or trapped between rollouts. Every rollout of the call failed and the
    /// instance must be dropped; a call of several rollouts is then re-run one rollout at a time,
    /// so the failure lands on the rollout that caused it.
    Broken(Vec<PluginOutcome>),
}

/// What one call may run outside its metered rollouts: all of it for a plugin that does not
/// import `meter`, the stretch before the first `begin` (lifting the arguments, the guest's
/// set-up) for one that does. One rollout's budget for a rollout or a chunk; for a group's call
/// ([`Plugin::score_groups`]) the group's size times it, since the group's rollouts are scored in
/// one stretch of guest code (its deadline at most `group_timeout_ms`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    /// Instructions.
    pub(super) fuel: u64,
    /// Wall-clock kill switch.
    pub(super) deadline: Duration,
    /// How many rollouts' budgets this is.
    rollouts: u32,
    /// The deadline is `group_timeout_ms`, less than `rollouts` x `timeout_ms`.
    capped: bool,
}

impl Budget {
    /// `rollouts` rollouts' budgets under `limits` (at least one).
    pub(super) fn of(limits: &Limits, rollouts: usize) -> Budget {
        let n = u32::try_from(rollouts.max(1)).unwrap_or(u32::MAX);
        let summed = limits.deadline.saturating_mul(n);
        let cap = limits.group_deadline.max(limits.deadline);
        Budget { fuel: limits.fuel.saturating_mul(u64::from(n)), deadline: summed.min(cap), rollouts: n, capped: summed > cap }
    }
}

impl Budget {
    /// The limit this budget comes from, for messages: "limit `fuel`", or "a group's budget: 8 x
    /// limit `fuel`".
    fn names(&self, key: &str) -> String {
        match self.rollouts {
            1 => format!("limit `{key}`"),
            n if self.capped && key == "timeout_ms" => format!("a group's budget: limit `group_timeout_ms`, less than {n} x limit `{key}`"),
            n => format!("a group's budget: {n} x limit `{key}`"),
        }
    }
}

impl Plugin {
    /// One call with `rollouts` (one, a chunk for a metered plugin, or a group) on the `glue`
    /// budget. The instance may serve again only after [`Call::Scored`].
    pub(super) fn call(&self, live: &mut Live, config: &str, rollouts: &[Rollout], limits: &Limits, glue: Budget) -> Call {
        // A metered guest's rollouts each get their own budget (see `meter`).
        let per_rollout = epoch_ticks(limits.deadline, self.host.epoch_tick);
        live.store.set_fuel(glue.fuel).expect("fuel is enabled");
        live.store.set_epoch_deadline(epoch_ticks(glue.deadline, self.host.epoch_tick));
        live.store.data_mut().limiter.clear_denial();
        live.store.data_mut().meter.start(rollouts.len(), limits.fuel, per_rollout);
        let messages: Vec<Vec<wit::Message<'_>>> =
            rollouts.iter().map(|r| r.messages.iter().map(|m| wit::Message { role: &m.role, content: &m.content }).collect()).collect();
        let input: Vec<wit::Rollout<'_>> = rollouts
            .iter()
            .zip(&messages)
            .map(|(r, messages)| wit::Rollout {
                id: &r.id,
                messages,
                completion: r.completion(),
                reference: &r.reference,
                metadata: &r.metadata,
            })
            .collect();
        let started = Instant::now();
        let result = live.plugin.reward_plugin_reward().call_score_batch(&mut live.store, config, &input);
        let latency = started.elapsed();
        live.store.data_mut().meter.stop();
        // An unmetered call holds one rollout (or one group): the whole call is its budget.
        // Its programs' runs (the `programs` import) are charged to it too.
        let unmetered_instructions =
            || glue.fuel.saturating_sub(live.store.get_fuel().unwrap_or(0)).saturating_add(live.store.data().meter.nested());
        let broken = |message: String| Call::Broken(rollouts.iter().map(|_| self.failed_call(&message)).collect());
        if let Some(violation) = live.store.data().meter.violation() {
            return broken(format!("{} broke the meter protocol: {violation}", self.label()));
        }
        match result {
            Err(e) => {
                let meter = &live.store.data().meter;
                let (index, instructions) = match (self.metered, meter.current()) {
                    (false, _) => (0, unmetered_instructions()),
                    // A trap inside a rollout belongs to it.
                    (true, Some(index)) => {
                        (index as usize, meter.fuel().saturating_sub(live.store.get_fuel().unwrap_or(0)).saturating_add(meter.nested()))
                    }
                    // Between rollouts of a chunk, nobody is to blame yet: re-run one by one.
                    (true, None) if rollouts.len() > 1 => {
                        let failure = self.classify_trap(e, &live.store, limits, glue);
                        return Call::Broken(rollouts.iter().map(|_| self.failed_call(&failure.message)).collect());
                    }
                    (true, None) => (0, 0),
                };
                // A metered rollout's trap is on its own budget; any other on the call's.
                let budget = if self.metered && meter.current().is_some() { Budget::of(limits, 1) } else { glue };
                let failure = self.classify_trap(e, &live.store, limits, budget);
                Call::Trapped(index.min(rollouts.len() - 1), PluginOutcome { result: Err(failure), instructions, latency })
            }
            Ok(results) if results.len() != rollouts.len() => {
                broken(format!("{} answered {} results for {} rollouts", self.label(), results.len(), rollouts.len()))
            }
            Ok(results) if !self.metered => {
                let instructions = unmetered_instructions();
                let judge = live.store.data().meter.judge();
                Call::Scored(
                    results
                        .into_iter()
                        .map(|r| PluginOutcome { result: self.judged(self.accept(r, limits), judge), instructions, latency })
                        .collect(),
                )
            }
            Ok(results) => {
                let used = live.store.data().meter.done().to_vec();
                if used.len() != rollouts.len() {
                    return broken(format!("{} imports meter but metered {} of {} rollouts", self.label(), used.len(), rollouts.len()));
                }
                Call::Scored(
                    results
                        .into_iter()
                        .zip(used)
                        .map(|(r, u)| PluginOutcome {
                            result: self.judged(self.accept(r, limits), &u.judge),
                            instructions: u.instructions,
                            latency: u.latency,
                        })
                        .collect(),
                )
            }
        }
    }

    /// The outcome of a rollout whose call answered nonsense.
    fn failed_call(&self, message: &str) -> PluginOutcome {
        PluginOutcome { result: Err(Failure::new(Status::PluginError, message)), instructions: 0, latency: Duration::ZERO }
    }

    /// Checks a guest's answer: finite numbers, bounded sizes. Error texts a guest hands back are
    /// cut to [`MAX_GUEST_ERROR_BYTES`]; a reason past `max_reason_bytes` or a metric name past
    /// [`MAX_METRIC_NAME_BYTES`] fails the rollout.
    fn accept(&self, answer: Result<wit::Score, wit::RolloutError>, limits: &Limits) -> Result<PluginScore, Failure> {
        let plugin_error = |msg: &str| Failure::new(Status::PluginError, format!("{}: {msg}", self.label()));
        let score = match answer {
            Ok(score) => score,
            Err(wit::RolloutError::InvalidInput(msg)) => {
                let msg = bounded_guest_text(&msg, MAX_GUEST_ERROR_BYTES);
                return Err(Failure::new(Status::InvalidInput, format!("{}: {msg}", self.label())));
            }
            Err(wit::RolloutError::Failed(msg)) => return Err(plugin_error(&bounded_guest_text(&msg, MAX_GUEST_ERROR_BYTES))),
        };
        if !score.value.is_finite() {
            return Err(plugin_error(&format!("returned a non-finite score ({})", score.value)));
        }
        if score.metrics.len() > limits.max_metrics {
            return Err(plugin_error(&format!("returned {} metrics, more than max_metrics ({})", score.metrics.len(), limits.max_metrics)));
        }
        if let Some(reason) = &score.reason
            && reason.len() > limits.max_reason_bytes
        {
            return Err(plugin_error(&format!(
                "returned a reason of {} bytes, more than max_reason_bytes ({})",
                reason.len(),
                limits.max_reason_bytes
            )));
        }
        let mut metrics = Vec::with_capacity(score.metrics.len());
        for m in score.metrics {
            if m.name.is_empty() || m.name.len() > MAX_METRIC_NAME_BYTES {
                return Err(plugin_error(&format!(
                    "returned a metric name of {} bytes (1 to {MAX_METRIC_NAME_BYTES} allowed)",
                    m.name.len()
                )));
            }
            if !m.value.is_finite() {
                return Err(plugin_error(&format!("returned a non-finite value ({}) for metric `{}`", m.value, m.name)));
            }
            let kind = match m.kind {
                wit::MetricKind::Reward => MetricKind::Reward,
                wit::MetricKind::Metric => MetricKind::Metric,
            };
            metrics.push(Metric { name: m.name, value: m.value, kind });
        }
        Ok(PluginScore { value: score.value, metrics, reason: score.reason })
    }

    /// Adds a rollout's judge calls to its outcome: its `judge_*` metrics, and a failed call fails
    /// the rollout with `JUDGE_ERROR`, whatever the plugin answered after it (a plugin that scores
    /// an unanswered question 0 would pass a judge outage to the trainer as wrong answers).
    fn judged(&self, result: Result<PluginScore, Failure>, usage: &JudgeUsage) -> Result<PluginScore, Failure> {
        if usage.calls == 0 {
            return result;
        }
        if let Some(error) = &usage.failure {
            return Err(Failure::new(Status::JudgeError, format!("{}: {error}", self.label())));
        }
        result.map(|mut score| {
            score.metrics.extend(usage.metrics());
            score
        })
    }

    /// Maps a failed call onto a typed status; `budget` is the fuel and deadline it ran on.
    fn classify_trap(&self, error: wasmtime::Error, store: &Store<StoreState>, limits: &Limits, budget: Budget) -> Failure {
        let label = self.label();
        if let Some(desired) = store.data().limiter.denied() {
            return Failure::new(
                Status::OutOfMemory,
                format!(
                    "{label} exceeded its memory limit: its memories and tables would take {} MiB, memory_mib is {}",
                    desired.div_ceil(1 << 20),
                    limits.memory_bytes >> 20
                ),
            );
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::new(
                Status::Timeout,
                format!("{label} ran out of fuel after {} instructions ({})", budget.fuel, budget.names("fuel")),
            ),
            Some(Trap::Interrupt) => Failure::new(
                Status::Timeout,
                format!("{label} passed its wall-clock deadline of {} ms ({})", budget.deadline.as_millis(), budget.names("timeout_ms")),
            ),
            Some(Trap::StackOverflow) => Failure::new(Status::PluginError, format!("{label} overflowed its stack")),
            Some(Trap::MemoryOutOfBounds) => Failure::new(
                Status::PluginError,
                format!("{label} accessed memory out of bounds (a shadow-stack overflow or a bug in the plugin)"),
            ),
            Some(Trap::UnreachableCodeReached) => {
                Failure::new(Status::PluginError, format!("{label} panicked or aborted (wasm `unreachable` executed)"))
            }
            Some(trap) => Failure::new(Status::PluginError, format!("{label} trapped: {trap}")),
            None => Failure::new(Status::PluginError, format!("{label} failed: {error:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_deadline_is_its_size_times_timeout_ms_at_most_group_timeout_ms() {
        let limits = Limits { fuel: 10, deadline: Duration::from_secs(10), ..Limits::default() };
        let one = Budget::of(&limits, 1);
        assert_eq!((one.fuel, one.deadline, one.names("timeout_ms")), (10, Duration::from_secs(10), "limit `timeout_ms`".to_owned()));
        let small = Budget::of(&limits, 8);
        assert_eq!((small.fuel, small.deadline), (80, Duration::from_secs(80)));
        assert_eq!(small.names("timeout_ms"), "a group's budget: 8 x limit `timeout_ms`");
        // 512 x 10 s would be 85 minutes: the default cap is 120 s; fuel is not capped.
        let big = Budget::of(&limits, 512);
        assert_eq!((big.fuel, big.deadline), (5120, crate::DEFAULT_GROUP_DEADLINE));
        assert_eq!(big.names("timeout_ms"), "a group's budget: limit `group_timeout_ms`, less than 512 x limit `timeout_ms`");
        assert_eq!(big.names("fuel"), "a group's budget: 512 x limit `fuel`");
        // The cap never takes a group below one rollout's deadline.
        let tight = Limits { group_deadline: Duration::from_secs(1), ..limits };
        assert_eq!(Budget::of(&tight, 4).deadline, Duration::from_secs(10));
    }
}
