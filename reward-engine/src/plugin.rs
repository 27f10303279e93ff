//! One loaded plugin: its compiled component, metadata and instance pool, and the batch loop that
//! scores rollouts in instances from the pool. What a component must be to load is in
//! [`contract`], what an instance can reach in [`store`], one metered call in [`call`].

mod call;
mod contract;
mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::{RewardPluginFull as RewardPlugin, RewardPluginFullPre as RewardPluginPre, fixtures, programs};
use super::group::{self, MAX_GROUP_ROLLOUTS};
use super::host::HostInner;
use super::limiter::MemoryLimiter;
use super::limits::{INSTANTIATION_FUEL, Limits, MAX_GUEST_ERROR_BYTES, bounded_guest_text, epoch_ticks};
use super::meter::{self, Meter};
use super::types::{Failure, Metric, Rollout, Status};
use call::{Budget, Call, Pace};
pub(crate) use contract::speaks_0_1;
pub use contract::{CONTRACT_INTERFACE, CONTRACT_VERSION, FIXTURES_INTERFACE, LoadError, PluginInfo};
use contract::{check_contract, check_imports, validate_info};
pub use store::Grants;
pub(crate) use store::StoreState;

/// Most rollouts per call for a plugin that imports `meter`: the per-call cost is shared by up to
/// this many.
pub const CHUNK: usize = 16;
/// About how many instructions one chunk may run (about 2 ms of guest code here): chunks shrink to
/// one rollout for plugins whose rollouts are slow, so a cancelled request (deadline passed, caller
/// gone) stops within about this much work or one rollout, whichever is longer. Counted in fuel,
/// not wall time, so that a batch is cut the same way on every run (see [`Pace`]).
pub const CHUNK_FUEL: u64 = 4_000_000;

/// A successful call's result for one rollout.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginScore {
    /// Finite reward.
    pub value: f64,
    /// Finite metrics.
    pub metrics: Vec<Metric>,
    /// The plugin's reason.
    pub reason: Option<String>,
}

/// One rollout's outcome from a plugin, with what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginOutcome {
    /// The score, or why there is none.
    pub result: Result<PluginScore, Failure>,
    /// Fuel consumed, in instructions.
    pub instructions: u64,
    /// Wall time of the call (instantiation excluded).
    pub latency: Duration,
}

/// A live instance and how many batches it has served.
struct Live {
    store: Store<StoreState>,
    plugin: RewardPlugin,
    batches: u32,
    /// The config this instance was last prepared for (see [`Plugin::prepare`]).
    prepared_for: Option<String>,
    /// Sizes this instance's chunks.
    pace: Pace,
}

/// A loaded plugin. Shared by every reward that uses it; `Send + Sync`.
pub struct Plugin {
    host: Arc<HostInner>,
    origin: String,
    sha256: String,
    info: PluginInfo,
    pre: RewardPluginPre<StoreState>,
    /// Whether the plugin imports `meter`: then it is called with chunks of rollouts.
    metered: bool,
    /// Instances kept for reuse (only when a reward's `instance_reuse` is above 1).
    idle: Mutex<Vec<Live>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("origin", &self.origin).field("info", &self.info).finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn load(host: Arc<HostInner>, origin: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        let (component, sha256) = host.compile(origin, bytes)?;
        let metered = check_imports(&host, &component, origin)?;
        check_contract(&host, &component, origin)?;
        let start_err = |e: wasmtime::Error| LoadError::Start { origin: origin.into(), message: format!("{e:#}") };
        let mut linker: Linker<StoreState> = Linker::new(&host.engine);
        fixtures::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state).map_err(start_err)?;
        programs::add_to_linker::<StoreState, HasSelf<StoreState>>(&mut linker, |state| state).map_err(start_err)?;
        meter::add_to_linker(&mut linker, CONTRACT_VERSION).map_err(start_err)?;
        super::judge::link::add_to_linker(&mut linker, CONTRACT_VERSION).map_err(start_err)?;
        let pre = linker.instantiate_pre(&component).map_err(start_err)?;
        let pre = RewardPluginPre::new(pre).map_err(start_err)?;
        let mut plugin = Plugin {
            host,
            origin: origin.into(),
            sha256,
            info: PluginInfo { name: String::new(), version: String::new(), description: String::new(), metrics: vec![] },
            pre,
            metered,
            idle: Mutex::new(Vec::new()),
        };
        let mut live = plugin
            .instantiate(&Limits::default(), &Grants::default())
            .map_err(|f| LoadError::Start { origin: origin.into(), message: f.message })?;
        live.store.set_fuel(INSTANTIATION_FUEL).map_err(start_err)?;
        let info = live.plugin.reward_plugin_reward().call_info(&mut live.store).map_err(start_err)?;
        plugin.info = validate_info(info).map_err(|message| LoadError::Start { origin: origin.into(), message })?;
        Ok(plugin)
    }

    /// The plugin's metadata.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Hex sha256 of the component bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where the plugin was loaded from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `plugin "name" version v`, the prefix of every error about this plugin.
    fn label(&self) -> String {
        format!("plugin \"{}\" version {}", self.info.name, self.info.version)
    }

    /// Asks the plugin whether it accepts a config (JSON text). The error is the plugin's message.
    pub fn check_config(&self, config: &str) -> Result<(), String> {
        let mut live = self.instantiate(&Limits::default(), &Grants::default()).map_err(|f| f.message)?;
        live.store.set_fuel(INSTANTIATION_FUEL).map_err(|e| e.to_string())?;
        match live.plugin.reward_plugin_reward().call_check_config(&mut live.store, config) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(bounded_guest_text(&message, MAX_GUEST_ERROR_BYTES).into_owned()),
            Err(trap) => Err(format!("{} trapped while checking its config: {trap}", self.label())),
        }
    }

    /// Scores rollouts in order: one call per rollout, or, for a plugin that imports `meter`, one
    /// call per chunk of up to [`CHUNK`] rollouts, each rollout on its own budget either way. The
    /// batch runs in one instance, from the idle pool when the limits allow reuse, otherwise fresh;
    /// a trap drops the instance and the next call gets a new one, so one bad rollout never harms
    /// another. Grants nothing.
    pub fn score(&self, config: &str, rollouts: &[Rollout], limits: &Limits) -> Vec<PluginOutcome> {
        self.score_until(config, rollouts, limits, &Grants::default(), &|| false)
    }

    /// [`Plugin::score`] with what the reward grants, checking `cancelled` before each
    /// call: once it returns true, the remaining rollouts are not run and answer `TIMEOUT`
    /// ("cancelled before scoring").
    pub fn score_until(
        &self,
        config: &str,
        rollouts: &[Rollout],
        limits: &Limits,
        grants: &Grants,
        cancelled: &dyn Fn() -> bool,
    ) -> Vec<PluginOutcome> {
        let unscored = |failure: Failure| PluginOutcome { result: Err(failure), instructions: 0, latency: Duration::ZERO };
        let mut live: Option<Live> = None;
        let mut outcomes = Vec::with_capacity(rollouts.len());
        // A trap inside a chunk loses the results of the rollouts before it: they are scored again
        // (plugins are deterministic), and the trapped rollout's outcome waits here until its turn.
        let mut trapped: Option<(usize, PluginOutcome)> = None;
        // Rollouts before this index are called one at a time: a call that broke the contract as a
        // whole is re-run rollout by rollout, so the failure lands on the rollout that caused it.
        let mut solo_until = 0;
        while outcomes.len() < rollouts.len() {
            let next = outcomes.len();
            if let Some((at, _)) = &trapped
                && *at == next
            {
                outcomes.push(trapped.take().expect("checked above").1);
                continue;
            }
            if cancelled() {
                outcomes.push(unscored(cancelled_failure()));
                continue;
            }
            let current = match &mut live {
                Some(l) => l,
                None => match self.checkout(config, limits, grants) {
                    Ok(l) => live.insert(l),
                    Err(failure) => {
                        outcomes.push(unscored(failure));
                        continue;
                    }
                },
            };
            let chunk = if next < solo_until || !self.metered { 1 } else { current.pace.chunk() };
            let end = (next + chunk).min(trapped.as_ref().map_or(rollouts.len(), |(at, _)| *at));
            match self.call(current, config, &rollouts[next..end], limits, Budget::of(limits, 1)) {
                Call::Scored(scored) => {
                    current.pace.observe(&scored);
                    outcomes.extend(scored);
                }
                Call::Trapped(index, outcome) => {
                    live = None;
                    if index == 0 {
                        outcomes.push(outcome);
                    } else {
                        trapped = Some((next + index, outcome));
                    }
                }
                Call::Broken(failed) => {
                    live = None;
                    if failed.len() == 1 {
                        outcomes.extend(failed);
                    } else {
                        solo_until = end;
                    }
                }
            }
        }
        self.release(live, limits);
        outcomes
    }

    /// Scores rollouts group by group ([`crate::group`]) for a reward declared `groups = true`:
    /// one call per group, holding exactly that group's rollouts in request order, whether or not
    /// the plugin imports `meter`. The call runs on the group's budget (its size times the
    /// per-rollout fuel and deadline; a metered plugin's rollouts still get their own); an
    /// unmetered call's instructions are shared evenly by its rollouts. A group's rollouts succeed
    /// or fail together: a trap, a broken call, a cancelled or an oversized group (more than
    /// [`MAX_GROUP_ROLLOUTS`]) fails every rollout of it, since none can be scored without the
    /// others; there is no re-run rollout by rollout. Outcomes come back in `rollouts` order.
    pub fn score_groups(
        &self,
        config: &str,
        rollouts: &[Rollout],
        limits: &Limits,
        grants: &Grants,
        cancelled: &dyn Fn() -> bool,
    ) -> Vec<PluginOutcome> {
        let mut live: Option<Live> = None;
        let mut slots: Vec<Option<PluginOutcome>> = std::iter::repeat_with(|| None).take(rollouts.len()).collect();
        for positions in group::partition(rollouts) {
            let (first, last) = (positions[0], positions[positions.len() - 1]);
            let members: std::borrow::Cow<'_, [Rollout]> = if last - first + 1 == positions.len() {
                std::borrow::Cow::Borrowed(&rollouts[first..=last])
            } else {
                std::borrow::Cow::Owned(positions.iter().map(|&i| rollouts[i].clone()).collect())
            };
            let outcomes = self.score_group(&mut live, config, &members, limits, grants, cancelled);
            for (i, outcome) in positions.into_iter().zip(outcomes) {
                slots[i] = Some(outcome);
            }
        }
        self.release(live, limits);
        slots.into_iter().map(|o| o.expect("every rollout is in a group")).collect()
    }

    /// One group's call in `live` (checked out first when there is none; dropped after a trap).
    fn score_group(
        &self,
        live: &mut Option<Live>,
        config: &str,
        members: &[Rollout],
        limits: &Limits,
        grants: &Grants,
        cancelled: &dyn Fn() -> bool,
    ) -> Vec<PluginOutcome> {
        let label = group::describe(&members[0]);
        let every = |failure: Failure| -> Vec<PluginOutcome> {
            members.iter().map(|_| PluginOutcome { result: Err(failure.clone()), instructions: 0, latency: Duration::ZERO }).collect()
        };
        if members.len() > MAX_GROUP_ROLLOUTS {
            return every(Failure::new(
                Status::InvalidInput,
                format!("{label} has {} rollouts, more than a group may hold ({MAX_GROUP_ROLLOUTS})", members.len()),
            ));
        }
        if cancelled() {
            return every(cancelled_failure());
        }
        let current = match live {
            Some(l) => l,
            None => match self.checkout(config, limits, grants) {
                Ok(l) => live.insert(l),
                Err(failure) => return every(failure),
            },
        };
        let whole = |failure: &Failure| {
            Failure::new(failure.status, format!("{label} ({} rollouts, one call) failed as a whole: {}", members.len(), failure.message))
        };
        match self.call(current, config, members, limits, Budget::of(limits, members.len())) {
            Call::Scored(mut scored) => {
                if !self.metered {
                    share_instructions(&mut scored);
                }
                scored
            }
            Call::Trapped(index, outcome) => {
                *live = None;
                let failure = outcome.result.expect_err("a trap is a failure");
                let failure = if self.metered {
                    whole(&Failure::new(failure.status, format!("rollout `{}`: {}", members[index].id, failure.message)))
                } else {
                    whole(&failure)
                };
                let mut outcomes = every(failure);
                outcomes[index].instructions = outcome.instructions;
                outcomes[index].latency = outcome.latency;
                outcomes
            }
            Call::Broken(failed) => {
                *live = None;
                failed.into_iter().map(|o| PluginOutcome { result: o.result.map_err(|f| whole(&f)), ..o }).collect()
            }
        }
    }

    /// Ends a batch with its instance: a healthy one serves `instance_reuse` batches, going back
    /// to the pool until then.
    fn release(&self, live: Option<Live>, limits: &Limits) {
        if let Some(mut l) = live {
            l.batches += 1;
            if l.batches < limits.instance_reuse {
                self.idle.lock().expect("idle pool poisoned").push(l);
            }
        }
    }

    /// An instance for one batch: an idle one that was given the same grants (see
    /// [`Grants::same_as`]), or a fresh one.
    fn checkout(&self, config: &str, limits: &Limits, grants: &Grants) -> Result<Live, Failure> {
        let same_grant = |live: &Live| live.store.data().grants.same_as(grants);
        let pooled = if limits.instance_reuse > 1 {
            let mut idle = self.idle.lock().expect("idle pool poisoned");
            idle.iter().rposition(same_grant).map(|i| idle.swap_remove(i))
        } else {
            None
        };
        let mut live = match pooled {
            Some(mut live) => {
                live.store.data_mut().limiter.set_max_bytes(limits.memory_bytes as usize);
                live
            }
            None => self.instantiate(limits, grants)?,
        };
        self.prepare(&mut live, config, limits)?;
        Ok(live)
    }

    /// Runs `check-config` once per instance and config, on the instantiation budget, so that
    /// one-time work (parsing the config, the allocator's first growth) is not charged to the
    /// first rollout: a rollout's instruction count does not depend on its place in the batch.
    fn prepare(&self, live: &mut Live, config: &str, limits: &Limits) -> Result<(), Failure> {
        if live.prepared_for.as_deref() == Some(config) {
            return Ok(());
        }
        live.store.set_fuel(INSTANTIATION_FUEL).expect("fuel is enabled");
        live.store.set_epoch_deadline(epoch_ticks(limits.instantiation_deadline(), self.host.epoch_tick));
        match live.plugin.reward_plugin_reward().call_check_config(&mut live.store, config) {
            Ok(_) => {
                live.prepared_for = Some(config.to_owned());
                Ok(())
            }
            Err(trap) => Err(Failure::new(Status::PluginError, format!("{} trapped while checking its config: {trap}", self.label()))),
        }
    }

    fn instantiate(&self, limits: &Limits, grants: &Grants) -> Result<Live, Failure> {
        let limiter = MemoryLimiter::new(limits.memory_bytes as usize);
        let state = StoreState { limiter, grants: grants.clone(), meter: Meter::default() };
        let mut store = Store::new(&self.host.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(INSTANTIATION_FUEL).expect("fuel is enabled");
        store.set_epoch_deadline(epoch_ticks(limits.instantiation_deadline(), self.host.epoch_tick));
        match self.pre.instantiate(&mut store) {
            Ok(plugin) => Ok(Live { store, plugin, batches: 0, prepared_for: None, pace: Pace::default() }),
            Err(e) => {
                let (status, what) = if store.data().limiter.denied().is_some() {
                    (Status::OutOfMemory, "needs more memory than its limit to start")
                } else {
                    (Status::Internal, "could not be instantiated")
                };
                Err(Failure::new(status, format!("{} {what}: {e:#}", self.label())))
            }
        }
    }
}

/// What a rollout not run for its cancelled request answers.
fn cancelled_failure() -> Failure {
    Failure::new(Status::Timeout, "cancelled before scoring: the caller's deadline passed or it went away")
}

/// Shares one call's instructions (each outcome carries the whole call's) evenly among its
/// outcomes: the first ones take the remainder, so the shares add up to the call's count.
fn share_instructions(outcomes: &mut [PluginOutcome]) {
    let Some(total) = outcomes.first().map(|o| o.instructions) else {
        return;
    };
    let n = outcomes.len() as u64;
    for (i, o) in outcomes.iter_mut().enumerate() {
        o.instructions = total / n + u64::from((i as u64) < total % n);
    }
}
