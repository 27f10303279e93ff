//! One loaded plugin: its compiled component, metadata, instance pool, and the metered call.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap};

use super::bindings::{RewardPluginFull as RewardPlugin, RewardPluginFullPre as RewardPluginPre, fixtures, programs, wit};
use super::fixtures::Fixtures;
use super::host::HostInner;
use super::limiter::MemoryLimiter;
use super::limits::{
    INSTANTIATION_FUEL, Limits, MAX_DECLARED_METRICS, MAX_GUEST_ERROR_BYTES, MAX_METRIC_NAME_BYTES, MAX_PLUGIN_DESCRIPTION_BYTES,
    MAX_PLUGIN_NAME_BYTES, MAX_PLUGIN_VERSION_BYTES, bounded_guest_text, epoch_ticks,
};
use super::meter::{self, METER_INTERFACE, Meter};
use super::programs::{Grant, PROGRAMS_INTERFACE};
use super::types::{Failure, Metric, MetricKind, Rollout, Status};

/// The plugin-contract versions this host speaks (`reward:plugin/reward@0.1.x`).
pub const CONTRACT_INTERFACE: &str = "reward:plugin/reward";
/// An import a plugin may have (`reward:plugin/fixtures@0.1.x`), served only with what its
/// reward grants.
pub const FIXTURES_INTERFACE: &str = "reward:plugin/fixtures";
/// Most rollouts per call for a plugin that imports `meter`: the per-call cost is shared by up to
/// this many.
pub const CHUNK: usize = 16;
/// About how many instructions one chunk may run (about 2 ms of guest code here): chunks shrink to
/// one rollout for plugins whose rollouts are slow, so a cancelled request (deadline passed, caller
/// gone) stops within about this much work or one rollout, whichever is longer. Counted in fuel,
/// not wall time, so that a batch is cut the same way on every run (see [`Pace`]).
pub const CHUNK_FUEL: u64 = 4_000_000;
/// The contract version this host was built against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// The instructions per rollout one instance has seen (a moving average), which size its next
/// chunk for a metered plugin: one rollout until the first is measured, then as many as fit in
/// [`CHUNK_FUEL`], at most [`CHUNK`]. Only the instance's own counts feed it, never the clock or
/// other instances: a rollout's count depends on what shared its call (the arguments lifted before
/// its turn), so chunks cut by a shared or timed pace would make the same input report different
/// instructions from one run to the next. A fresh instance per batch (`instance_reuse = 1`) cuts
/// every batch the same way; a reused one carries its pace to its next batch (no probing call),
/// as its counts already depend on its history.
#[derive(Debug, Default)]
struct Pace {
    per_rollout: Option<u64>,
}

impl Pace {
    fn chunk(&self) -> usize {
        match self.per_rollout {
            None => 1,
            Some(per_rollout) => usize::try_from(CHUNK_FUEL / per_rollout.max(1)).unwrap_or(CHUNK).clamp(1, CHUNK),
        }
    }

    fn observe(&mut self, scored: &[PluginOutcome]) {
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

/// Why a plugin could not be loaded. Each message names the plugin's file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid component for this engine.
    #[error("compiling plugin {origin}: {message}")]
    Compile {
        /// Where the bytes came from.
        origin: String,
        /// The compiler's complaint.
        message: String,
    },
    /// The component imports something the sandbox does not grant.
    #[error(
        "plugin {origin} imports `{import}`, which the sandbox does not grant: reward plugins may import nothing \
         but {FIXTURES_INTERFACE}@0.1.x, {METER_INTERFACE}@0.1.x and {PROGRAMS_INTERFACE}@0.1.x (no files, clock, network or randomness; build Rust guests for \
         wasm32-unknown-unknown and Python ones with componentize-py --stub-wasi){more}"
    )]
    ForbiddenImport {
        /// Where the bytes came from.
        origin: String,
        /// The first forbidden import.
        import: String,
        /// How many more there are, as text.
        more: String,
    },
    /// The component does not export a contract version this host speaks.
    #[error("plugin {origin} does not export {CONTRACT_INTERFACE}@{CONTRACT_VERSION} (this host speaks 0.1.x); it exports: {exports}")]
    Contract {
        /// Where the bytes came from.
        origin: String,
        /// What it exports instead.
        exports: String,
    },
    /// Instantiating it or reading its metadata failed.
    #[error("starting plugin {origin}: {message}")]
    Start {
        /// Where the bytes came from.
        origin: String,
        /// What failed.
        message: String,
    },
}

/// What a plugin says about itself, validated by the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short lowercase name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// The metrics it may emit.
    pub metrics: Vec<String>,
}

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

/// What a reward grants its plugin: the only ways out of the sandbox. Nothing by default.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Read access to the files of a fixtures directory (`fixtures = "DIR"`).
    pub fixtures: Option<Arc<Fixtures>>,
    /// An interpreter to run programs in (`interpreter = { plugin = ... }`).
    pub programs: Option<Grant>,
}

impl Grants {
    /// Whether an instance prepared under `self` may serve `other`: a guest may cache what a
    /// grant gave it, so an instance never crosses from one grant to another.
    fn same_as(&self, other: &Grants) -> bool {
        let fixtures = match (&self.fixtures, &other.fixtures) {
            (None, None) => true,
            (Some(a), Some(b)) => a.dir() == b.dir(),
            _ => false,
        };
        let programs = match (&self.programs, &other.programs) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(&a.interpreter, &b.interpreter) && a.budget == b.budget,
            _ => false,
        };
        fixtures && programs
    }
}

/// The per-store state: the memory limiter, what the current reward grants, and the metering of
/// the current call.
pub(crate) struct StoreState {
    pub(super) limiter: MemoryLimiter,
    grants: Grants,
    pub(super) meter: Meter,
}

impl fixtures::Host for StoreState {
    fn read(&mut self, name: String) -> Result<Vec<u8>, String> {
        match &self.grants.fixtures {
            Some(fixtures) => fixtures.read(&name).map(|bytes| bytes.to_vec()),
            None => Err(format!(
                "cannot read fixture `{name}`: this reward grants no fixtures directory (set `fixtures = \"DIR\"` on the reward)"
            )),
        }
    }
}

impl StoreState {
    /// The granted interpreter, or the error that says there is none.
    fn programs(&self) -> Result<&Grant, String> {
        self.grants.programs.as_ref().ok_or_else(|| {
            "cannot run a program: this reward grants no interpreter (set `interpreter = { plugin = \"python-runner\" }` on the reward)"
                .to_owned()
        })
    }

    /// Charges a run's instructions to the rollout being scored.
    fn charged(&mut self, run: programs::Run) -> programs::Run {
        self.meter.charge_nested(run.instructions);
        run
    }
}

impl programs::Host for StoreState {
    fn run_script(&mut self, program: String, stdin: String) -> Result<programs::Run, String> {
        let run = self.programs()?.run_script(&program, &stdin);
        Ok(self.charged(run))
    }

    fn call_function(&mut self, program: String, function: String, args: String) -> Result<programs::Run, String> {
        let run = self.programs()?.call_function(&program, &function, &args);
        Ok(self.charged(run))
    }

    fn run_check(&mut self, program: String, setup: String, test: String, names: Vec<String>) -> Result<programs::Run, String> {
        let run = self.programs()?.run_check(&program, &setup, &test, &names);
        Ok(self.charged(run))
    }
}

/// How one call to the guest ended.
enum Call {
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
                outcomes.push(unscored(Failure::new(
                    Status::Timeout,
                    "cancelled before scoring: the caller's deadline passed or it went away",
                )));
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
            match self.call(current, config, &rollouts[next..end], limits) {
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
        // An instance serves `instance_reuse` batches; a healthy one goes back to the pool until then.
        if let Some(mut l) = live {
            l.batches += 1;
            if l.batches < limits.instance_reuse {
                self.idle.lock().expect("idle pool poisoned").push(l);
            }
        }
        outcomes
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
        live.store.set_epoch_deadline(epoch_ticks(limits.deadline * 4, self.host.epoch_tick));
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
        store.set_epoch_deadline(epoch_ticks(limits.deadline * 4, self.host.epoch_tick));
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

    /// One call with `rollouts` (one, or a chunk for a metered plugin). The instance may serve
    /// again only after [`Call::Scored`].
    fn call(&self, live: &mut Live, config: &str, rollouts: &[Rollout], limits: &Limits) -> Call {
        let deadline = epoch_ticks(limits.deadline, self.host.epoch_tick);
        // The first stretch (lifting the arguments, the guest's set-up) runs on the call's glue
        // budget; a metered guest's rollouts each get their own (see `meter`).
        live.store.set_fuel(limits.fuel).expect("fuel is enabled");
        live.store.set_epoch_deadline(deadline);
        live.store.data_mut().limiter.clear_denial();
        live.store.data_mut().meter.start(rollouts.len(), limits.fuel, deadline);
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
        // An unmetered call holds one rollout: the whole call is its budget.
        // Its programs' runs (the `programs` import) are charged to it too.
        let unmetered_instructions =
            || limits.fuel.saturating_sub(live.store.get_fuel().unwrap_or(0)).saturating_add(live.store.data().meter.nested());
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
                        let failure = self.classify_trap(e, &live.store, limits);
                        return Call::Broken(rollouts.iter().map(|_| self.failed_call(&failure.message)).collect());
                    }
                    (true, None) => (0, 0),
                };
                let failure = self.classify_trap(e, &live.store, limits);
                Call::Trapped(index.min(rollouts.len() - 1), PluginOutcome { result: Err(failure), instructions, latency })
            }
            Ok(results) if results.len() != rollouts.len() => {
                broken(format!("{} answered {} results for {} rollouts", self.label(), results.len(), rollouts.len()))
            }
            Ok(results) if !self.metered => {
                let instructions = unmetered_instructions();
                Call::Scored(results.into_iter().map(|r| PluginOutcome { result: self.accept(r, limits), instructions, latency }).collect())
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
                        .map(|(r, u)| PluginOutcome { result: self.accept(r, limits), instructions: u.instructions, latency: u.latency })
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

    /// Maps a failed call onto a typed status.
    fn classify_trap(&self, error: wasmtime::Error, store: &Store<StoreState>, limits: &Limits) -> Failure {
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
            Some(Trap::OutOfFuel) => {
                Failure::new(Status::Timeout, format!("{label} ran out of fuel after {} instructions (limit `fuel`)", limits.fuel))
            }
            Some(Trap::Interrupt) => Failure::new(
                Status::Timeout,
                format!("{label} passed its wall-clock deadline of {} ms (limit `timeout_ms`)", limits.deadline.as_millis()),
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

/// Whether `name` is `interface@0.1.PATCH`.
pub(crate) fn speaks_0_1(name: &str, interface: &str) -> bool {
    name.strip_prefix(interface)
        .and_then(|rest| rest.strip_prefix("@0.1."))
        .is_some_and(|patch| !patch.is_empty() && patch.chars().all(|c| c.is_ascii_digit()))
}

/// Refuses a component that imports anything but `fixtures`, `meter` and `programs`; returns whether it
/// imports `meter`.
fn check_imports(host: &HostInner, component: &Component, origin: &str) -> Result<bool, LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(&host.engine).map(|(name, _)| name.to_owned()).collect();
    let metered = imports.iter().any(|name| speaks_0_1(name, METER_INTERFACE));
    let granted = [FIXTURES_INTERFACE, METER_INTERFACE, PROGRAMS_INTERFACE];
    let forbidden: Vec<&String> = imports.iter().filter(|name| !granted.iter().any(|i| speaks_0_1(name, i))).collect();
    match forbidden.split_first() {
        None => Ok(metered),
        Some((first, rest)) => Err(LoadError::ForbiddenImport {
            origin: origin.into(),
            import: (*first).clone(),
            more: if rest.is_empty() {
                String::new()
            } else {
                format!(" (and {} more: {})", rest.len(), rest.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            },
        }),
    }
}

fn check_contract(host: &HostInner, component: &Component, origin: &str) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&host.engine).map(|(name, _)| name.to_owned()).collect();
    if exports.iter().any(|name| speaks_0_1(name, CONTRACT_INTERFACE)) {
        Ok(())
    } else {
        Err(LoadError::Contract { origin: origin.into(), exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") } })
    }
}

/// Checks what a plugin says about itself against the host's caps, naming the field.
fn validate_info(info: wit::PluginInfo) -> Result<PluginInfo, String> {
    if info.name.is_empty() || info.name.len() > MAX_PLUGIN_NAME_BYTES {
        return Err(format!(
            "plugin name must be 1 to {MAX_PLUGIN_NAME_BYTES} bytes, got {:?}",
            bounded_guest_text(&info.name, MAX_PLUGIN_NAME_BYTES)
        ));
    }
    if info.version.is_empty() || info.version.len() > MAX_PLUGIN_VERSION_BYTES {
        return Err(format!(
            "plugin \"{}\" declares a version of {} bytes (1 to {MAX_PLUGIN_VERSION_BYTES} allowed)",
            info.name,
            info.version.len()
        ));
    }
    if info.description.len() > MAX_PLUGIN_DESCRIPTION_BYTES {
        return Err(format!(
            "plugin \"{}\" declares a description of {} bytes (at most {MAX_PLUGIN_DESCRIPTION_BYTES})",
            info.name,
            info.description.len()
        ));
    }
    if info.metrics.len() > MAX_DECLARED_METRICS {
        return Err(format!("plugin \"{}\" declares {} metrics (at most {MAX_DECLARED_METRICS})", info.name, info.metrics.len()));
    }
    if let Some(bad) = info.metrics.iter().find(|m| m.is_empty() || m.len() > MAX_METRIC_NAME_BYTES) {
        return Err(format!(
            "plugin \"{}\" declares a metric name of {} bytes (1 to {MAX_METRIC_NAME_BYTES} allowed)",
            info.name,
            bad.len()
        ));
    }
    Ok(PluginInfo { name: info.name, version: info.version, description: info.description, metrics: info.metrics })
}
