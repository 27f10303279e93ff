//! Guard rails: every cap the checker applies, and the typed refusal it gives when one is hit.
//!
//! An answer is refused before any work when it is too long; while it is read, when it nests too
//! deeply, has too many tokens, items, variables or `±` signs, or a number too long; while it is
//! evaluated, when an exponent or a factorial is too large or the work budget runs out. Each cap
//! keeps one answer's cost bounded far below the host's fuel, so a pathological input is a
//! refusal with a reason, never a hang (and never the host's `TIMEOUT`, unless the host's fuel is
//! set below what these caps allow).

use std::fmt;

/// Longest answer read, in bytes (after extraction). Configurable (`max_answer_bytes`).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 4096;

/// Deepest nesting of brackets, braces and sub-expressions.
pub const MAX_DEPTH: usize = 48;

/// Deepest recursion of the parser (each bracket level takes a few: a sum, a factor, a primary).
pub const MAX_RECURSION: usize = 4 * MAX_DEPTH;

/// Most tokens in one answer.
pub const MAX_TOKENS: usize = 2048;

/// Most digits in one number literal.
pub const MAX_DIGITS: usize = 400;

/// Most items in a tuple, set, list or matrix (summed over the whole answer).
pub const MAX_ITEMS: usize = 256;

/// Most distinct variables in one comparison.
pub const MAX_VARIABLES: usize = 8;

/// Most `±` signs in one expression (each doubles the answers it stands for).
pub const MAX_PLUS_MINUS: usize = 3;

/// Largest integer exponent evaluated, in magnitude (bases other than 0 and ±1).
pub const MAX_EXPONENT: i64 = 100_000;

/// Largest factorial evaluated.
pub const MAX_FACTORIAL: i64 = 1000;

/// Work steps one rollout may spend comparing (one step is about one node evaluated at one
/// point, or one pair of items matched). Configurable (`max_steps`).
pub const DEFAULT_MAX_STEPS: u64 = 200_000;

/// Why an answer was not read or a comparison not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The answer is longer than the cap.
    TooLong {
        /// Its length, in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_TOKENS`] tokens.
    TooManyTokens,
    /// A number literal with more than [`MAX_DIGITS`] digits.
    NumberTooLong,
    /// More than [`MAX_ITEMS`] items.
    TooManyItems,
    /// More than [`MAX_VARIABLES`] variables.
    TooManyVariables,
    /// More than [`MAX_PLUS_MINUS`] `±` signs.
    TooManyPlusMinus,
    /// An exponent over [`MAX_EXPONENT`] (`10^{10^{10}}`).
    ExponentTooLarge,
    /// A value too large to compute even approximately (a factorial, an overflowing double).
    ValueTooLarge,
    /// The work budget ran out.
    BudgetExhausted(u64),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooLong { len, max } => write!(f, "answer too long ({len} bytes, max_answer_bytes is {max})"),
            Refusal::TooDeep => {
                write!(f, "nesting too deep (over {MAX_DEPTH} brackets or {MAX_RECURSION} levels of operators)")
            }
            Refusal::TooManyTokens => write!(f, "more than {MAX_TOKENS} tokens"),
            Refusal::NumberTooLong => write!(f, "a number with more than {MAX_DIGITS} digits"),
            Refusal::TooManyItems => write!(f, "more than {MAX_ITEMS} items"),
            Refusal::TooManyVariables => write!(f, "more than {MAX_VARIABLES} variables"),
            Refusal::TooManyPlusMinus => write!(f, "more than {MAX_PLUS_MINUS} ± signs"),
            Refusal::ExponentTooLarge => write!(f, "exponent too large"),
            Refusal::ValueTooLarge => write!(f, "value too large to compute"),
            Refusal::BudgetExhausted(steps) => write!(f, "work budget of {steps} steps exhausted"),
        }
    }
}

/// The work budget of one comparison.
#[derive(Debug)]
pub struct Budget {
    left: u64,
    total: u64,
}

impl Budget {
    /// A budget of `steps`.
    pub fn new(steps: u64) -> Budget {
        Budget { left: steps, total: steps }
    }

    /// Spends `n` steps, or refuses when the budget is gone.
    #[inline]
    pub fn spend(&mut self, n: u64) -> Result<(), Refusal> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(Refusal::BudgetExhausted(self.total))
            }
        }
    }
}
