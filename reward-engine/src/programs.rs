//! The `programs` capability: a reward granted an interpreter (`interpreter = { plugin = ... }`)
//! runs generated programs in it, each run in fresh instances with their own budgets.
//!
//! An [`Interpreter`] is a loaded interpreter component (the `program-runner` world of
//! `reward-plugins/wit/programs.wit`; `reward-plugins/code/runner` builds the Python one) and the
//! [`RunBudget`] its reward grants. A run never shares an instance with anything: `run-script` and
//! `call-function` take one fresh instance, `run-check` two (the program's, and the test's, which
//! reaches the program only through plain values passed by the host), and every instance is
//! dropped when the run ends. So a program sees its input and nothing else (not the calling
//! reward's memory, not the expected output, not an earlier run), and nothing it does outlives its
//! run.
//!
//! Budgets: each instance of a run gets the grant's fuel (running out is `timeout` at the same
//! instruction on every run), wall-clock deadline and memory cap; what a run hands back (its
//! output, value, error texts) is cut to the grant's output bound by the host, whatever the
//! interpreter answers, since the program runs inside the interpreter and may have rewritten it.
//! A run takes its own thread with a [`RUN_STACK_BYTES`] stack: a check nests one guest inside
//! another, and each may use the engine's whole wasm stack.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Store, Trap};

use super::bindings::programs::{Ending, Run};
use super::bindings::runner::{ProgramRunner, ProgramRunnerPre, candidate, interpreter};
use super::host::HostInner;
use super::limiter::MemoryLimiter;
use super::limits::{INSTANTIATION_FUEL, MAX_GUEST_ERROR_BYTES, bounded_guest_text, epoch_ticks, millis, validate_budget};
use super::plugin::LoadError;

/// The interface an interpreter component exports (`reward:plugin/interpreter@0.1.x`).
pub const INTERPRETER_INTERFACE: &str = "reward:plugin/interpreter";
/// The one import an interpreter component may have (`reward:plugin/candidate@0.1.x`): the
/// stand-ins of a check call the program's instance through it.
pub const CANDIDATE_INTERFACE: &str = "reward:plugin/candidate";
/// The import through which a reward runs programs (`reward:plugin/programs@0.1.x`).
pub const PROGRAMS_INTERFACE: &str = "reward:plugin/programs";
/// Native stack of the thread a run takes: 16 MiB. A check runs the test's instance, which calls
/// into the program's instance, while the reward's own instance waits below both: three guests,
/// each allowed the engine's 1 MiB wasm stack (`DEFAULT_MAX_WASM_STACK`), plus the interpreter's
/// C frames and the host's. Reserved, not committed: untouched pages cost nothing.
pub const RUN_STACK_BYTES: usize = 16 << 20;

/// Default fuel per instance of a run: 1,000,000,000 instructions (about 0.12 s of CPython here:
/// HumanEval/75's canonical solution took 3.8e9 in 0.47 s; the built-in `code` reward grants 10e9).
pub const DEFAULT_RUN_FUEL: u64 = 1_000_000_000;
/// Default wall-clock deadline per run: 5 s. The kill switch; fuel decides time-outs reproducibly.
pub const DEFAULT_RUN_DEADLINE: Duration = Duration::from_secs(5);
/// Default memory cap per instance of a run: 128 MiB.
pub const DEFAULT_RUN_MEMORY_BYTES: u64 = 128 << 20;
/// Default bound on what a run hands back (its output, a returned value): 64 KiB. Past it the
/// run ends with `output-limit`.
pub const DEFAULT_MAX_OUTPUT_BYTES: u32 = 64 << 10;

/// What each run of a granted interpreter may spend (the `interpreter` table of a reward, beside
/// `plugin`): `fuel`, `timeout_ms`, `memory_mib`, `max_output_bytes`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunBudget {
    /// Fuel per instance of a run, in instructions. Defaults to 1,000,000,000 ([`DEFAULT_RUN_FUEL`]).
    pub fuel: u64,
    /// Wall-clock deadline per run. Defaults to 5,000 ms.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub deadline: Duration,
    /// Memory cap per instance, in MiB. Defaults to 128.
    #[serde(rename = "memory_mib", with = "super::limits::mebibytes")]
    pub memory_bytes: u64,
    /// Most bytes of output (and of a returned value) a run may hand back. Defaults to 65,536.
    pub max_output_bytes: u32,
}

impl Default for RunBudget {
    fn default() -> Self {
        RunBudget {
            fuel: DEFAULT_RUN_FUEL,
            deadline: DEFAULT_RUN_DEADLINE,
            memory_bytes: DEFAULT_RUN_MEMORY_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl RunBudget {
    /// Checks the budget against the host's per-instance memory ceiling; the error names the field.
    pub fn validate(&self, host_memory_ceiling: u64) -> Result<(), String> {
        validate_budget(self.fuel, self.deadline, self.memory_bytes, host_memory_ceiling)?;
        if self.max_output_bytes == 0 {
            return Err("max_output_bytes must be at least 1".into());
        }
        Ok(())
    }

    /// The budget as it enters a reward's `config_hash`, in the config's spelling.
    pub fn provenance_json(&self) -> serde_json::Value {
        serde_json::json!({
            "fuel": self.fuel,
            "timeout_ms": u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX),
            "memory_mib": self.memory_bytes >> 20,
            "max_output_bytes": self.max_output_bytes,
        })
    }
}

/// A loaded interpreter component. Shared by every reward that grants it; `Send + Sync`.
pub struct Interpreter {
    host: Arc<HostInner>,
    origin: String,
    sha256: String,
    pre: ProgramRunnerPre<RunnerState>,
}

impl std::fmt::Debug for Interpreter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interpreter").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// An interpreter with the budget one reward grants it: what a reward's instances call.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The interpreter.
    pub interpreter: Arc<Interpreter>,
    /// What each run may spend.
    pub budget: RunBudget,
}

/// The per-store state of an interpreter instance: its memory cap, and in a check's test
/// instance, the program's instance its stand-ins call.
pub(crate) struct RunnerState {
    limiter: MemoryLimiter,
    candidate: Option<Candidate>,
}

/// The program's instance during a check, owned by the test instance's store.
struct Candidate {
    instance: Instance,
    budget: RunBudget,
    /// How the program's instance died, if it did: that ending is the check's.
    died: Option<Ending>,
}

/// One live interpreter instance.
struct Instance {
    store: Store<RunnerState>,
    runner: ProgramRunner,
    fuel: u64,
}

impl Instance {
    fn used(&self) -> u64 {
        self.fuel.saturating_sub(self.store.get_fuel().unwrap_or(0))
    }
}

impl candidate::Host for RunnerState {
    fn call(&mut self, function: String, args: String) -> Result<String, String> {
        let Some(c) = self.candidate.as_mut() else {
            return Err("no program is loaded in this instance (candidate.call outside a check)".into());
        };
        if let Some(ending) = &c.died {
            return Err(format!("the program's instance has stopped: {}", ending_text(ending)));
        }
        let max = c.budget.max_output_bytes as usize;
        let called =
            c.instance.runner.reward_plugin_interpreter().call_call(&mut c.instance.store, &function, &args, interpreter::Encoding::Python);
        match called {
            Ok(outcome) => match (from_guest(outcome.ending), outcome.value) {
                (Ending::Ok, Some(value)) if value.len() <= max => Ok(value),
                (Ending::Ok, Some(value)) => {
                    c.died = Some(Ending::OutputLimit);
                    Err(format!("the returned value is {} bytes, more than max_output_bytes ({max})", value.len()))
                }
                (Ending::Ok, None) => Err(format!("{function}() returned no value")),
                (ending, _) => Err(ending_text(&ending)),
            },
            Err(trap) => {
                let ending = classify_trap(&trap, &c.instance.store, &c.budget);
                let text = ending_text(&ending);
                c.died = Some(ending);
                Err(text)
            }
        }
    }
}

impl Interpreter {
    /// Loads an interpreter component: compiles it (or takes it from the cache) and checks that
    /// it exports `interpreter` and imports nothing but `candidate`.
    pub(crate) fn load(host: Arc<HostInner>, origin: &str, bytes: &[u8]) -> Result<Self, LoadError> {
        let (component, sha256) = host.compile(origin, bytes)?;
        check_shape(&host, &component, origin)?;
        let start_err = |e: wasmtime::Error| LoadError::Start { origin: origin.into(), message: format!("{e:#}") };
        let mut linker: Linker<RunnerState> = Linker::new(&host.engine);
        candidate::add_to_linker::<RunnerState, HasSelf<RunnerState>>(&mut linker, |state| state).map_err(start_err)?;
        let pre = linker.instantiate_pre(&component).map_err(start_err)?;
        let pre = ProgramRunnerPre::new(pre).map_err(start_err)?;
        let interpreter = Interpreter { host, origin: origin.into(), sha256, pre };
        // One instance at load, so a component that cannot start fails here, not on a rollout.
        interpreter.instantiate(&RunBudget::default()).map_err(|e| LoadError::Start { origin: origin.into(), message: ending_text(&e) })?;
        Ok(interpreter)
    }

    /// Hex sha256 of the component bytes (part of the granting reward's provenance).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where it was loaded from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn instantiate(&self, budget: &RunBudget) -> Result<Instance, Ending> {
        let state = RunnerState { limiter: MemoryLimiter::new(budget.memory_bytes as usize), candidate: None };
        let mut store = Store::new(&self.host.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(INSTANTIATION_FUEL).expect("fuel is enabled");
        store.set_epoch_deadline(epoch_ticks(budget.deadline, self.host.epoch_tick));
        match self.pre.instantiate(&mut store) {
            Ok(runner) => {
                store.set_fuel(budget.fuel).expect("fuel is enabled");
                Ok(Instance { store, runner, fuel: budget.fuel })
            }
            Err(e) if store.data().limiter.denied().is_some() => Err(Ending::OutOfMemory(format!(
                "the interpreter needs more than memory_mib ({} MiB) to start: {e:#}",
                budget.memory_bytes >> 20
            ))),
            Err(e) => Err(Ending::RuntimeError(format!("the interpreter {} could not be started: {e:#}", self.origin))),
        }
    }
}

impl Grant {
    /// Runs `program` as the main script with `stdin` as its input.
    pub fn run_script(&self, program: &str, stdin: &str) -> Run {
        self.on_run_thread(|| {
            let mut instance = match self.interpreter.instantiate(&self.budget) {
                Ok(i) => i,
                Err(ending) => return failed_start(ending),
            };
            let max = self.budget.max_output_bytes;
            let result = instance.runner.reward_plugin_interpreter().call_run_script(&mut instance.store, program, stdin, max);
            self.finish(&instance, result, 0)
        })
    }

    /// Loads `program` and calls its function `function` with `args` (a JSON array).
    pub fn call_function(&self, program: &str, function: &str, args: &str) -> Run {
        self.on_run_thread(|| {
            let mut instance = match self.interpreter.instantiate(&self.budget) {
                Ok(i) => i,
                Err(ending) => return failed_start(ending),
            };
            let max = self.budget.max_output_bytes;
            let loaded = instance.runner.reward_plugin_interpreter().call_load(&mut instance.store, program, max);
            match loaded {
                Ok(outcome) if matches!(outcome.ending, interpreter::Ending::Ok) => {}
                other => return self.finish(&instance, other, 0),
            }
            let called =
                instance.runner.reward_plugin_interpreter().call_call(&mut instance.store, function, args, interpreter::Encoding::Json);
            self.finish(&instance, called, 0)
        })
    }

    /// Runs `setup` and `test` in one instance against `program` loaded in another, the stand-ins
    /// for `names` passing plain values between them.
    pub fn run_check(&self, program: &str, setup: &str, test: &str, names: &[String]) -> Run {
        self.on_run_thread(|| {
            let max = self.budget.max_output_bytes;
            let mut solution = match self.interpreter.instantiate(&self.budget) {
                Ok(i) => i,
                Err(ending) => return failed_start(ending),
            };
            let loaded = solution.runner.reward_plugin_interpreter().call_load(&mut solution.store, program, max);
            match loaded {
                Ok(outcome) if matches!(outcome.ending, interpreter::Ending::Ok) => {}
                other => return self.finish(&solution, other, 0),
            }
            let mut harness = match self.interpreter.instantiate(&self.budget) {
                Ok(i) => i,
                Err(ending) => {
                    let mut run = failed_start(ending);
                    run.instructions = solution.used();
                    return run;
                }
            };
            harness.store.data_mut().candidate = Some(Candidate { instance: solution, budget: self.budget.clone(), died: None });
            let result = harness.runner.reward_plugin_interpreter().call_check(&mut harness.store, setup, test, names, max);
            let candidate = harness.store.data_mut().candidate.take().expect("set above");
            let mut run = self.finish(&harness, result, candidate.instance.used());
            // The program's instance dying (fuel, memory, a trap) is the check's ending, whatever
            // the test code made of the error its stand-in raised.
            if let Some(ending) = candidate.died {
                run.ending = ending;
            }
            run
        })
    }

    /// Runs `f` on a thread of its own with a [`RUN_STACK_BYTES`] stack, and waits for it.
    fn on_run_thread(&self, f: impl FnOnce() -> Run + Send) -> Run {
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new().name("reward-program-run".into()).stack_size(RUN_STACK_BYTES).spawn_scoped(scope, f);
            match thread {
                Ok(handle) => {
                    handle.join().unwrap_or_else(|_| failed_start(Ending::RuntimeError("the program run panicked in the host".into())))
                }
                Err(e) => failed_start(Ending::RuntimeError(format!("could not start a thread for the program run: {e}"))),
            }
        })
    }

    /// The run's result from the last call into `instance`: the interpreter's outcome, or the
    /// trap that ended it; what it hands back cut to the output bound. `more` is the instructions
    /// of the run's other instances.
    fn finish(&self, instance: &Instance, result: wasmtime::Result<interpreter::Outcome>, more: u64) -> Run {
        let max = self.budget.max_output_bytes as usize;
        let instructions = instance.used().saturating_add(more);
        match result {
            Ok(outcome) => {
                let mut ending = from_guest(outcome.ending);
                let mut stdout = outcome.stdout;
                if stdout.len() > max {
                    stdout = bounded_prefix(&stdout, max);
                    ending = Ending::OutputLimit;
                }
                let value = match outcome.value {
                    Some(v) if v.len() > max => {
                        ending = Ending::OutputLimit;
                        None
                    }
                    v => v,
                };
                Run { ending, stdout, value, instructions }
            }
            Err(trap) => {
                Run { ending: classify_trap(&trap, &instance.store, &self.budget), stdout: String::new(), value: None, instructions }
            }
        }
    }
}

/// A run that never got an instance.
fn failed_start(ending: Ending) -> Run {
    Run { ending, stdout: String::new(), value: None, instructions: 0 }
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn bounded_prefix(text: &str, max: usize) -> String {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// The interpreter's ending as the reward sees it, its texts cut to the error bound.
fn from_guest(ending: interpreter::Ending) -> Ending {
    let cut = |text: String| bounded_guest_text(&text, MAX_GUEST_ERROR_BYTES).into_owned();
    match ending {
        interpreter::Ending::Ok => Ending::Ok,
        interpreter::Ending::CompileError(t) => Ending::CompileError(cut(t)),
        interpreter::Ending::RuntimeError(t) => Ending::RuntimeError(cut(t)),
        interpreter::Ending::Failed(t) => Ending::Failed(cut(t)),
        interpreter::Ending::OutOfMemory(t) => Ending::OutOfMemory(cut(t)),
        interpreter::Ending::OutputLimit => Ending::OutputLimit,
    }
}

/// A run's ending as one line of text, for errors handed to a check's test code.
fn ending_text(ending: &Ending) -> String {
    match ending {
        Ending::Ok => "ok".into(),
        Ending::CompileError(t) => format!("compile error: {t}"),
        Ending::RuntimeError(t) => format!("runtime error: {t}"),
        Ending::Failed(t) => format!("failed: {t}"),
        Ending::Timeout(t) => format!("timeout: {t}"),
        Ending::OutOfMemory(t) => format!("out of memory: {t}"),
        Ending::OutputLimit => "output limit: the program printed more than max_output_bytes".into(),
    }
}

/// Maps the trap that ended an interpreter instance onto a run's ending.
fn classify_trap(error: &wasmtime::Error, store: &Store<RunnerState>, budget: &RunBudget) -> Ending {
    if store.data().limiter.denied().is_some() {
        return Ending::OutOfMemory(format!("the program needed more than memory_mib ({} MiB)", budget.memory_bytes >> 20));
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Ending::Timeout(format!("the program used its whole budget of {} instructions (fuel)", budget.fuel)),
        Some(Trap::Interrupt) => {
            Ending::Timeout(format!("the program passed its wall-clock deadline of {} ms (timeout_ms)", budget.deadline.as_millis()))
        }
        Some(Trap::StackOverflow) => Ending::RuntimeError("stack overflow: the program recursed too deep for the interpreter".into()),
        Some(Trap::UnreachableCodeReached) => {
            Ending::RuntimeError("the program stopped the interpreter (os._exit, abort or a fatal interpreter error)".into())
        }
        Some(trap) => Ending::RuntimeError(format!("the interpreter trapped: {trap}")),
        None => Ending::RuntimeError(bounded_guest_text(&format!("the interpreter failed: {error:#}"), MAX_GUEST_ERROR_BYTES).into_owned()),
    }
}

/// Refuses a component that does not export `interpreter@0.1.x` or imports anything but
/// `candidate@0.1.x`.
fn check_shape(host: &HostInner, component: &Component, origin: &str) -> Result<(), LoadError> {
    let ty = component.component_type();
    let speaks = |name: &str, interface: &str| super::plugin::speaks_0_1(name, interface);
    let exports: Vec<String> = ty.exports(&host.engine).map(|(name, _)| name.to_owned()).collect();
    if !exports.iter().any(|name| speaks(name, INTERPRETER_INTERFACE)) {
        return Err(LoadError::Start {
            origin: origin.into(),
            message: format!(
                "not an interpreter component: it does not export {INTERPRETER_INTERFACE}@0.1.x (it exports: {})",
                if exports.is_empty() { "nothing".into() } else { exports.join(", ") }
            ),
        });
    }
    if let Some((name, _)) = ty.imports(&host.engine).find(|(name, _)| !speaks(name, CANDIDATE_INTERFACE)) {
        return Err(LoadError::Start {
            origin: origin.into(),
            message: format!("an interpreter component may import only {CANDIDATE_INTERFACE}@0.1.x, and this one imports `{name}`"),
        });
    }
    Ok(())
}
