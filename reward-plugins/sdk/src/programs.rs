//! Running generated programs in an interpreter the reward grants (`interpreter = { plugin =
//! "python-runner" }` in the rewards config): the contract's `programs` import
//! (`reward-plugins/wit/programs.wit`).
//!
//! Every run takes fresh interpreter instances with their own fuel, memory and output budgets,
//! set by the grant; the program sees only its input, and its output comes back here to be
//! compared, so it can never read the expected answer. A run's instructions are added to the
//! rollout's count by the host.
//!
//! On wasm32 the functions call the host. Natively there is no sandbox: they call the runner set
//! with [`set_native_runner`] (a unit test's stand-in for the host), and fail as an ungranted host
//! does when none is set.

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The program ran to its end (or exited with status 0); for a check, every assertion held.
    Ok,
    /// The program does not compile; the interpreter's message.
    CompileError(String),
    /// An uncaught exception or a non-zero exit status.
    RuntimeError(String),
    /// A check's assertion did not hold.
    Failed(String),
    /// The run used its instruction budget (the same instruction every run) or its deadline.
    Timeout(String),
    /// The run needed more memory than its budget.
    OutOfMemory(String),
    /// The program printed more than the output bound.
    OutputLimit,
}

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// How it ended.
    pub ending: Ending,
    /// What the program wrote to standard output (at most the grant's bound).
    pub stdout: String,
    /// `call_function`: the return value as JSON text.
    pub value: Option<String>,
    /// Instructions the run used, in all its instances.
    pub instructions: u64,
}

/// One request to the interpreter, as the native stand-in receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// [`run_script`].
    Script {
        /// The program.
        program: &'a str,
        /// Its standard input.
        stdin: &'a str,
    },
    /// [`call_function`].
    Call {
        /// The program.
        program: &'a str,
        /// The function to call.
        function: &'a str,
        /// Its positional arguments, a JSON array.
        args: &'a str,
    },
    /// [`run_check`].
    Check {
        /// The program.
        program: &'a str,
        /// Test set-up code.
        setup: &'a str,
        /// The assert-style test code.
        test: &'a str,
        /// The program's functions the test calls.
        names: &'a [String],
    },
}

/// Runs `program` as the main script with `stdin` as its standard input.
///
/// # Errors
///
/// The reward grants no interpreter (the text says so).
pub fn run_script(program: &str, stdin: &str) -> Result<Run, String> {
    imp::run(Request::Script { program, stdin })
}

/// Loads `program` as a module and calls its top-level function `function` with `args` (a JSON
/// array of positional arguments); the value comes back as JSON in [`Run::value`].
///
/// # Errors
///
/// The reward grants no interpreter.
pub fn call_function(program: &str, function: &str, args: &str) -> Result<Run, String> {
    imp::run(Request::Call { program, function, args })
}

/// Runs assert-style `test` code (after `setup`) against `program`, in an instance of its own:
/// each of `names` is a stand-in that calls the program's instance with plain values, so the
/// test's expected values never reach the program.
///
/// # Errors
///
/// The reward grants no interpreter.
pub fn run_check(program: &str, setup: &str, test: &str, names: &[String]) -> Result<Run, String> {
    imp::run(Request::Check { program, setup, test, names })
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Ending, Request, Run};
    use crate::bindings::reward::plugin::programs as wit;

    pub fn run(request: Request<'_>) -> Result<Run, String> {
        let run = match request {
            Request::Script { program, stdin } => wit::run_script(program, stdin)?,
            Request::Call { program, function, args } => wit::call_function(program, function, args)?,
            Request::Check { program, setup, test, names } => wit::run_check(program, setup, test, names)?,
        };
        let ending = match run.ending {
            wit::Ending::Ok => Ending::Ok,
            wit::Ending::CompileError(t) => Ending::CompileError(t),
            wit::Ending::RuntimeError(t) => Ending::RuntimeError(t),
            wit::Ending::Failed(t) => Ending::Failed(t),
            wit::Ending::Timeout(t) => Ending::Timeout(t),
            wit::Ending::OutOfMemory(t) => Ending::OutOfMemory(t),
            wit::Ending::OutputLimit => Ending::OutputLimit,
        };
        Ok(Run { ending, stdout: run.stdout, value: run.value, instructions: run.instructions })
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::sync::Mutex;

    use super::{Request, Run};

    /// The native stand-in for the host, if a test set one.
    pub type NativeRunner = Box<dyn Fn(Request<'_>) -> Result<Run, String> + Send>;

    pub static RUNNER: Mutex<Option<NativeRunner>> = Mutex::new(None);

    pub fn run(request: Request<'_>) -> Result<Run, String> {
        let runner = RUNNER.lock().unwrap_or_else(|e| e.into_inner());
        match runner.as_ref() {
            Some(run) => run(request),
            None => Err("cannot run a program: no interpreter natively (set_native_runner)".to_owned()),
        }
    }
}

/// Natively only: what [`run_script`], [`call_function`] and [`run_check`] call (process-wide),
/// or `None` for none. A unit test's stand-in for the host; the real runs are the host's.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_native_runner(runner: Option<imp::NativeRunner>) {
    *imp::RUNNER.lock().unwrap_or_else(|e| e.into_inner()) = runner;
}
