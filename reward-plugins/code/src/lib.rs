//! The built-in code-execution reward: does the generated program pass the problem's tests?
//!
//! The program (the answer's last fenced Python block, or the whole answer) runs in the
//! interpreter the reward grants (`interpreter = { plugin = "python-runner" }`), one fresh
//! sandboxed instance per test, through the host's `programs` capability: it gets the test's
//! input and nothing else. Its output comes back here and is compared with the expected output in
//! this plugin's own memory, which the program cannot reach; assert-style tests (HumanEval, MBPP)
//! run in an instance of their own that calls the program's instance with plain values. See
//! `README.md` for the test formats, the comparison modes and the metrics.

pub mod compare;
pub mod suite;

use reward_sdk::programs::{self, Ending, Run};
use reward_sdk::{PluginInfo, Reward, Rollout, RolloutError, Score, extract};
use serde::Deserialize;
use serde_json::Value;

pub use compare::Compare;
use suite::Suite;

/// Where the program is in the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extract {
    /// The last fenced block tagged `python` (or `py`, `python3`), else the last untagged one,
    /// else the whole answer. The default.
    #[default]
    Auto,
    /// The last fenced Python (or untagged) block; an answer without one scores 0.
    LastBlock,
    /// The whole answer (after any `<think>` block), a fence around all of it removed.
    Whole,
}

/// How the tests add up to the reward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The fraction of tests passed. The default.
    #[default]
    Fraction,
    /// 1 when every test passes, else 0; stops at the first failing test.
    All,
}

/// The reward's config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the program is in the answer. Defaults to `auto`.
    pub extract: Extract,
    /// How standard output is compared. Defaults to `whitespace`.
    pub compare: Compare,
    /// Tolerance for numbers under `compare = "float"` and for returned values: absolute, or
    /// relative to the expected value above 1. Defaults to 1e-6.
    pub float_tol: f64,
    /// How tests add up. Defaults to `fraction`.
    pub scoring: Scoring,
    /// Most tests run per rollout; the rest of a longer suite are not run (and not counted).
    /// Defaults to 100.
    pub max_tests: usize,
    /// Longest program run, in bytes; a longer one scores 0 without running. Defaults to 65,536.
    pub max_program_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            extract: Extract::Auto,
            compare: Compare::Whitespace,
            float_tol: 1e-6,
            scoring: Scoring::Fraction,
            max_tests: 100,
            max_program_bytes: 64 << 10,
        }
    }
}

/// Longest excerpt of an input, expected or actual output quoted in a reason: 200 bytes.
pub const REASON_EXCERPT_BYTES: usize = 200;

/// The metrics, in the order they are reported.
pub const METRICS: [&str; 10] = [
    "pass_rate",
    "tests_passed",
    "tests_total",
    "compile_error",
    "wrong_answers",
    "runtime_errors",
    "timeouts",
    "out_of_memory",
    "output_limits",
    "first_failure",
];

/// The plugin.
pub struct CodeReward;

impl Reward for CodeReward {
    type Config = Config;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "code".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Runs the generated Python program against the problem's tests (stdin/stdout, call-based, HumanEval, MBPP), \
                          a fresh sandboxed interpreter per test, outputs compared outside it"
                .into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn validate(config: &Config) -> Result<(), String> {
        if !(config.float_tol.is_finite() && config.float_tol >= 0.0) {
            return Err(format!("float_tol must be a finite number >= 0, got {}", config.float_tol));
        }
        if config.max_tests == 0 {
            return Err("max_tests must be at least 1".into());
        }
        if config.max_program_bytes == 0 {
            return Err("max_program_bytes must be at least 1".into());
        }
        Ok(())
    }

    fn score(config: &Config, rollout: &Rollout) -> Result<Score, RolloutError> {
        let suite = suite::read(&rollout.reference_json()?).map_err(RolloutError::InvalidInput)?;
        if suite.is_empty() {
            return Err(RolloutError::InvalidInput("the reference has no tests (its list of tests is empty)".into()));
        }
        let Some(code) = program_of(&rollout.completion, config.extract) else {
            return Ok(Tally::new(suite.len().min(config.max_tests)).into_score(config.scoring, "the answer has no fenced Python block"));
        };
        if code.len() > config.max_program_bytes {
            let reason = format!("the program is {} bytes, more than max_program_bytes ({})", code.len(), config.max_program_bytes);
            return Ok(Tally::new(suite.len().min(config.max_tests)).into_score(config.scoring, &reason));
        }
        run_suite(config, &suite, &code)
    }
}

/// The program in an answer, or `None` when `extract = "last_block"` finds no block.
pub fn program_of(text: &str, how: Extract) -> Option<String> {
    let stripped = extract::strip_thinking(text);
    // `strip_thinking` trims; an answer without a `<think>` block keeps its own first line.
    let answer = if stripped.trim() == text.trim() { text } else { stripped.as_ref() };
    let python = |lang: &str| ["python", "py", "python3"].iter().any(|l| lang.eq_ignore_ascii_case(l));
    let block = || {
        let blocks: Vec<_> = extract::code_blocks(answer).collect();
        blocks.iter().rev().find(|b| python(b.lang)).or_else(|| blocks.iter().rev().find(|b| b.lang.is_empty())).map(|b| b.body.to_owned())
    };
    // The whole answer keeps its first line's indentation: a HumanEval answer may be the body
    // that continues the prompt's signature.
    let whole = || {
        let unfenced = extract::strip_code_fence(answer);
        if unfenced == answer.trim() { answer.trim_end().trim_start_matches(['\n', '\r']).to_owned() } else { unfenced.to_owned() }
    };
    match how {
        Extract::LastBlock => block(),
        Extract::Auto => Some(block().unwrap_or_else(whole)),
        Extract::Whole => Some(whole()),
    }
}

/// How one test went.
#[derive(Clone, Debug, PartialEq)]
enum Verdict {
    Passed,
    Wrong(String),
    CompileError(String),
    RuntimeError(String),
    Timeout(String),
    OutOfMemory(String),
    OutputLimit,
}

/// The counts behind the score and metrics, and the first failure's reason.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    passed: usize,
    compile_error: bool,
    wrong: usize,
    runtime_errors: usize,
    timeouts: usize,
    out_of_memory: usize,
    output_limits: usize,
    first_failure: Option<(usize, String)>,
}

impl Tally {
    fn new(total: usize) -> Self {
        Tally { total, ..Tally::default() }
    }

    fn add(&mut self, index: usize, verdict: Verdict, describe: impl FnOnce(&str) -> String) {
        let what = match verdict {
            Verdict::Passed => {
                self.passed += 1;
                return;
            }
            Verdict::Wrong(detail) => {
                self.wrong += 1;
                detail
            }
            Verdict::CompileError(e) => {
                self.compile_error = true;
                format!("compile error: {e}")
            }
            Verdict::RuntimeError(e) => {
                self.runtime_errors += 1;
                format!("runtime error: {e}")
            }
            Verdict::Timeout(e) => {
                self.timeouts += 1;
                format!("time-out: {e}")
            }
            Verdict::OutOfMemory(e) => {
                self.out_of_memory += 1;
                format!("out of memory: {e}")
            }
            Verdict::OutputLimit => {
                self.output_limits += 1;
                "printed more than the output bound (max_output_bytes)".to_owned()
            }
        };
        if self.first_failure.is_none() {
            self.first_failure = Some((index, describe(&what)));
        }
    }

    fn into_score(self, scoring: Scoring, reason_if_none_ran: &str) -> Score {
        let all = self.total > 0 && self.passed == self.total;
        let value = match scoring {
            Scoring::Fraction if self.total > 0 => self.passed as f64 / self.total as f64,
            Scoring::Fraction => 0.0,
            Scoring::All => f64::from(u8::from(all)),
        };
        let pass_rate = if self.total > 0 { self.passed as f64 / self.total as f64 } else { 0.0 };
        let reason = match &self.first_failure {
            Some((i, why)) => format!("test {} of {}: {why}", i + 1, self.total),
            None if all => format!("passed all {} tests", self.total),
            None => reason_if_none_ran.to_owned(),
        };
        let count = |n: usize| n as f64;
        Score::new(value)
            .reward("pass_rate", pass_rate)
            .metric("tests_passed", count(self.passed))
            .metric("tests_total", count(self.total))
            .metric("compile_error", f64::from(u8::from(self.compile_error)))
            .metric("wrong_answers", count(self.wrong))
            .metric("runtime_errors", count(self.runtime_errors))
            .metric("timeouts", count(self.timeouts))
            .metric("out_of_memory", count(self.out_of_memory))
            .metric("output_limits", count(self.output_limits))
            .metric("first_failure", self.first_failure.as_ref().map_or(-1.0, |(i, _)| *i as f64))
            .with_reason(reason)
    }
}

/// `text` cut to [`REASON_EXCERPT_BYTES`] at a character boundary, with the length when cut.
fn cut(text: &str) -> String {
    match head_of(text) {
        (head, None) => head.to_owned(),
        (head, Some(len)) => format!("{head}... ({len} bytes)"),
    }
}

/// [`cut`], quoted as a string literal (inputs and outputs show their line breaks).
fn excerpt(text: &str) -> String {
    let (head, cut_from) = head_of(text);
    match cut_from {
        None => format!("{head:?}"),
        Some(len) => format!("{head:?}... ({len} bytes)"),
    }
}

/// The first [`REASON_EXCERPT_BYTES`] of `text` (at a character boundary), and its length when cut.
fn head_of(text: &str) -> (&str, Option<usize>) {
    if text.len() <= REASON_EXCERPT_BYTES {
        return (text, None);
    }
    let mut end = REASON_EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], Some(text.len()))
}

/// A run's ending as a verdict, when it is not a plain completion (which the caller judges).
fn failed_ending(ending: &Ending) -> Option<Verdict> {
    Some(match ending {
        Ending::Ok => return None,
        Ending::CompileError(e) => Verdict::CompileError(e.clone()),
        Ending::RuntimeError(e) => Verdict::RuntimeError(e.clone()),
        Ending::Failed(e) => Verdict::Wrong(format!("assertion failed: {e}")),
        Ending::Timeout(e) => Verdict::Timeout(e.clone()),
        Ending::OutOfMemory(e) => Verdict::OutOfMemory(e.clone()),
        Ending::OutputLimit => Verdict::OutputLimit,
    })
}

fn host_error(e: String) -> RolloutError {
    RolloutError::Failed(e)
}

fn run_suite(config: &Config, suite: &Suite, code: &str) -> Result<Score, RolloutError> {
    let n = suite.len().min(config.max_tests);
    let mut tally = Tally::new(n);
    for index in 0..n {
        match suite {
            Suite::Io(tests) => {
                let (input, expected) = &tests[index];
                let run = programs::run_script(code, input).map_err(host_error)?;
                let verdict = judge_output(&run, expected, config);
                tally.add(index, verdict, |what| {
                    format!("{what}; input {}, expected {}, got {}", excerpt(input), excerpt(expected), excerpt(&run.stdout))
                });
            }
            Suite::Call { function, tests } => {
                let (args, expected) = &tests[index];
                let run = programs::call_function(code, function, &args.to_string()).map_err(host_error)?;
                let verdict = judge_value(&run, expected, config.float_tol);
                let got = run.value.as_deref().unwrap_or("nothing");
                tally.add(index, verdict, |what| {
                    format!("{what}; {function}(*{}) expected {}, got {}", cut(&args.to_string()), cut(&expected.to_string()), cut(got))
                });
            }
            Suite::Asserts { prefix, setup, tests, entry_point } => {
                let program = with_prefix(prefix, code, entry_point.as_deref());
                let names = match entry_point {
                    Some(name) => vec![name.clone()],
                    None => suite::top_level_functions(code),
                };
                let test = &tests[index];
                let run = programs::run_check(&program, setup, test, &names).map_err(host_error)?;
                let verdict = failed_ending(&run.ending).unwrap_or(Verdict::Passed);
                // HumanEval's one test is the whole check function: the failing assertion says more.
                let quoted = entry_point.is_none().then(|| excerpt(test.trim()));
                tally.add(index, verdict, |what| match quoted {
                    Some(test) => format!("{what}; test {test}"),
                    None => what.to_owned(),
                });
            }
        }
        if tally.compile_error {
            // Every later test would fail to compile the same program: not run, counted failed.
            break;
        }
        if config.scoring == Scoring::All && tally.first_failure.is_some() {
            break;
        }
    }
    Ok(tally.into_score(config.scoring, ""))
}

/// The program a HumanEval-style test runs: the prompt (imports, helpers, the signature), then
/// the answer. An answer that defines the entry point itself follows the prompt as a whole
/// (its definition replaces the prompt's stub); one that does not is the body the prompt's
/// signature was waiting for.
fn with_prefix(prefix: &str, code: &str, entry_point: Option<&str>) -> String {
    if prefix.is_empty() {
        return code.to_owned();
    }
    let defines = entry_point.is_some_and(|name| suite::top_level_functions(code).iter().any(|f| f == name));
    if defines { format!("{prefix}\n{code}\n") } else { format!("{prefix}{code}\n") }
}

fn judge_output(run: &Run, expected: &str, config: &Config) -> Verdict {
    if let Some(v) = failed_ending(&run.ending) {
        return v;
    }
    if compare::outputs_match(&run.stdout, expected, config.compare, config.float_tol) {
        Verdict::Passed
    } else {
        Verdict::Wrong("wrong answer".into())
    }
}

fn judge_value(run: &Run, expected: &Value, tol: f64) -> Verdict {
    if let Some(v) = failed_ending(&run.ending) {
        return v;
    }
    match run.value.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(got)) if compare::values_match(&got, expected, tol) => Verdict::Passed,
        Some(Ok(_)) => Verdict::Wrong("wrong answer".into()),
        Some(Err(_)) | None => Verdict::Wrong("the function returned no JSON value".into()),
    }
}

#[cfg(feature = "export")]
reward_sdk::export_reward!(CodeReward);

#[cfg(test)]
mod tests;
