//! What a plugin instance can reach: the grants of the reward it serves (fixture files, an
//! interpreter) and the metering of the current call, kept in its store.

use std::sync::Arc;

use super::super::bindings::{fixtures, programs};
use super::super::fixtures::Fixtures;
use super::super::judge::JudgeGrant;
use super::super::limiter::MemoryLimiter;
use super::super::meter::Meter;
use super::super::programs::Grant;

/// What a reward grants its plugin: the only ways out of the sandbox. Nothing by default.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// Read access to the files of a fixtures directory (`fixtures = "DIR"`).
    pub fixtures: Option<Arc<Fixtures>>,
    /// An interpreter to run programs in (`interpreter = { plugin = ... }`).
    pub programs: Option<Grant>,
    /// A model to ask (`judge = "NAME"`).
    pub judge: Option<JudgeGrant>,
}

impl Grants {
    /// Whether an instance prepared under `self` may serve `other`: a guest may cache what a
    /// grant gave it, so an instance never crosses from one grant to another.
    pub(super) fn same_as(&self, other: &Grants) -> bool {
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
        let judge = match (&self.judge, &other.judge) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(&a.judge, &b.judge) && a.max_calls_per_rollout == b.max_calls_per_rollout,
            _ => false,
        };
        fixtures && programs && judge
    }

    /// The judge granted, or the error that says there is none.
    pub(crate) fn judge(&self) -> Result<&JudgeGrant, crate::judge::JudgeError> {
        self.judge.as_ref().ok_or_else(|| {
            crate::judge::JudgeError::NotGranted(
                "cannot ask a judge: this reward grants none (set `judge = \"NAME\"` on the reward and define `[judges.NAME]`)".into(),
            )
        })
    }
}

/// The per-store state: the memory limiter, what the current reward grants, and the metering of
/// the current call.
pub(crate) struct StoreState {
    pub(crate) limiter: MemoryLimiter,
    pub(crate) grants: Grants,
    pub(crate) meter: Meter,
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
