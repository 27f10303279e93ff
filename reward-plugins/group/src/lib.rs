//! The built-in `group` reward: scores each rollout of a GRPO group against its siblings.
//!
//! # Brief overview
//!
//! - [`GroupPlugin`] is the plugin, a [`GroupReward`]: each `score-batch` call is one group (the
//!   host guarantees it for a reward declared `groups = true`). [`GroupConfig`] is its
//!   configuration, documented in `README.md`.
//! - Four modes: `majority` (label-free majority vote, TTRL), `diversity` (how rare a rollout's
//!   answer is in its group), `pass_at_k` (the group's unbiased pass@k estimate) and `length`
//!   (Kimi k1.5's length reward).
//! - Nothing here extracts, normalises or compares answers itself: the answer is taken out of the
//!   completion with [`reward_sdk::extract`] (and the math plugin's `\boxed`/`\fbox` finder), and
//!   two answers, or an answer and a reference, are compared by the format plugin's reference
//!   check (`check = "exact"` or `"numeric"`) or the math plugin's equivalence (`"math"`), run
//!   in-process on a probe rollout ([`Checker`]).

use std::fmt::Write as _;

use reward_format::{FormatConfig, FormatReward};
use reward_math::{MathConfig, MathReward};
use reward_sdk::extract::{self, Tag};
use reward_sdk::{GroupReward, PluginInfo, Reward, Rollout, RolloutError, Score};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The group reward.
pub struct GroupPlugin;

/// The plugin's version, reported by [`GroupReward::info`].
pub const VERSION: &str = "0.1.0";

/// Every metric the reward may emit (each mode emits a subset, see `README.md`).
pub const METRICS: [&str; 9] =
    ["agreement", "majority_share", "group_size", "answered", "distinct", "correct", "group_correct", "k", "length"];

/// `k` of `pass_at_k` when the config does not set it.
pub const DEFAULT_K: u64 = 1;

/// `weight` of `length` when the config does not set it.
pub const DEFAULT_WEIGHT: f64 = 1.0;

/// The longest answer quoted in a reason, in characters.
const QUOTE_CHARS: usize = 40;

/// What the reward computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 1 when the rollout's answer is the group's majority answer (label-free, TTRL).
    Majority,
    /// 1 − the share of the other members with the same answer (or completion).
    Diversity,
    /// The group's unbiased pass@k estimate, the same for every member.
    PassAtK,
    /// Kimi k1.5's length reward: short correct answers are paid, long ones penalised.
    Length,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Majority => "majority",
            Mode::Diversity => "diversity",
            Mode::PassAtK => "pass_at_k",
            Mode::Length => "length",
        }
    }
}

/// Where a completion's answer is taken from (always after the reasoning,
/// [`extract::answer_region`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extract {
    /// [`extract::find_answer`], as the format plugin does without an `answer_tag`: the last
    /// `<answer>`, else `\boxed{}`, else an answer marker, else a fenced code block, else the
    /// whole text.
    #[default]
    Auto,
    /// Only the last `\boxed{…}` or `\fbox{…}` (the math plugin's finder).
    Boxed,
    /// Only the last `<answer>…</answer>`, refined to a `\boxed{}` or marker inside.
    AnswerTag,
    /// Only the text after the last answer marker (`Answer:`, `#### 42`, `the answer is`).
    Marker,
}

impl Extract {
    fn name(self) -> &'static str {
        match self {
            Extract::Auto => "auto",
            Extract::Boxed => "boxed",
            Extract::AnswerTag => "answer_tag",
            Extract::Marker => "marker",
        }
    }

    /// The completion's non-blank answer, if it has one.
    fn answer(self, completion: &str) -> Option<String> {
        let region = extract::answer_region(completion);
        let found = match self {
            Extract::Auto => extract::find_answer(&region).map(|(a, _)| a.to_owned()),
            Extract::Boxed => reward_math::last_boxed_any(&region).map(|a| a.trim().to_owned()),
            Extract::AnswerTag => extract::last_tag_content(&region, &Tag::ANSWER).map(|a| extract::refine_answer(a).trim().to_owned()),
            Extract::Marker => extract::after_answer_marker(&region).map(|a| extract::refine_answer(a).trim().to_owned()),
        };
        found.filter(|a| !a.is_empty())
    }
}

/// How two answers, or an answer and a reference, are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The format plugin's reference check in mode `exact`: the same number, or the same text
    /// once normalised.
    #[default]
    Exact,
    /// The format plugin's reference check in mode `numeric`: numbers within tolerances.
    Numeric,
    /// The math plugin's equivalence (exact rationals, surds, intervals, identities, ...).
    Math,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Exact => "exact",
            Check::Numeric => "numeric",
            Check::Math => "math",
        }
    }
}

/// What `diversity` compares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// The extracted answers, compared with `check`.
    #[default]
    Answer,
    /// The whole completions, normalised ([`extract::normalize_text`]) and compared as text.
    Completion,
}

/// The config as written; [`GroupConfig`] is built from it and checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: Mode,
    #[serde(default)]
    extract: Option<Extract>,
    #[serde(default)]
    check: Option<Check>,
    #[serde(default)]
    check_config: Option<Value>,
    #[serde(default)]
    min_share: Option<f64>,
    #[serde(default)]
    on: Option<On>,
    #[serde(default)]
    k: Option<u64>,
    #[serde(default)]
    weight: Option<f64>,
}

/// The group reward's configuration: `{"mode": ...}` and the options of that mode (see
/// `README.md`). An option of another mode is an error naming it, so is an unknown key. The
/// answer check's own config is parsed and checked here too, so a parsed config scores without
/// parsing anything.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct GroupConfig {
    mode: Mode,
    extract: Extract,
    checker: Checker,
    min_share: f64,
    on: On,
    k: u64,
    weight: f64,
}

impl TryFrom<RawConfig> for GroupConfig {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        let mode = raw.mode;
        let compares_answers = !(mode == Mode::Diversity && raw.on == Some(On::Completion));
        let options: [(&str, bool, bool); 7] = [
            ("extract", raw.extract.is_some(), compares_answers),
            ("check", raw.check.is_some(), compares_answers),
            ("check_config", raw.check_config.is_some(), compares_answers),
            ("min_share", raw.min_share.is_some(), mode == Mode::Majority),
            ("on", raw.on.is_some(), mode == Mode::Diversity),
            ("k", raw.k.is_some(), mode == Mode::PassAtK),
            ("weight", raw.weight.is_some(), mode == Mode::Length),
        ];
        if let Some((field, _, _)) = options.iter().find(|(_, set, applies)| *set && !applies) {
            let context = if compares_answers { format!("mode \"{}\"", mode.name()) } else { "on = \"completion\"".to_owned() };
            return Err(format!("{field} does not apply with {context}"));
        }
        let min_share = raw.min_share.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&min_share) {
            return Err(format!("min_share must be between 0 and 1, got {min_share}"));
        }
        let k = raw.k.unwrap_or(DEFAULT_K);
        if k == 0 {
            return Err("k must be at least 1".into());
        }
        let weight = raw.weight.unwrap_or(DEFAULT_WEIGHT);
        if !(weight.is_finite() && weight > 0.0) {
            return Err(format!("weight must be a finite number > 0, got {weight}"));
        }
        let check = raw.check.unwrap_or_default();
        Ok(GroupConfig {
            mode,
            extract: raw.extract.unwrap_or_default(),
            checker: Checker::new(check, raw.check_config)?,
            min_share,
            on: raw.on.unwrap_or_default(),
            k,
            weight,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The answer check: the format or math plugin, run on a probe rollout
// ---------------------------------------------------------------------------------------------

/// Decides whether an answer matches a reference with another plugin's own scoring code: a probe
/// rollout whose completion is the answer and whose reference is the reference is scored by the
/// format plugin (its `answer_correct` metric must be 1) or the math plugin (score 1).
#[derive(Debug)]
enum Checker {
    /// The format plugin configured with only a reference check (no format checks, no gate).
    Format(Box<FormatConfig>),
    /// The math plugin with the config from `check_config`.
    Math(Box<MathConfig>),
}

impl Checker {
    /// The checker for `check`, configured with `check_config`: for `exact` and `numeric` the
    /// format plugin's `reference` table without `mode` (set by `check`), for `math` the math
    /// plugin's config. Errors name `check_config`.
    fn new(check: Check, check_config: Option<Value>) -> Result<Checker, String> {
        let mut table = match check_config {
            None => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => return Err(format!("check_config must be an object, got {}", reward_sdk::json_kind(&other))),
        };
        match check {
            Check::Exact | Check::Numeric => {
                if table.contains_key("mode") {
                    return Err("check_config.mode: the format plugin's mode is set by `check` (\"exact\" or \"numeric\")".into());
                }
                table.insert("mode".into(), Value::String(check.name().into()));
                // Only the reference check: an empty answer is not a format failure, and no gate.
                let config = serde_json::json!({"min_chars": 0, "gate": false, "reference": Value::Object(table)});
                reward_sdk::check_config::<FormatReward>(&config.to_string())
                    .map(|c| Checker::Format(Box::new(c)))
                    .map_err(|e| format!("check_config (the format plugin's `reference` table, check \"{}\"): {e}", check.name()))
            }
            Check::Math => reward_sdk::check_config::<MathReward>(&Value::Object(table).to_string())
                .map(|c| Checker::Math(Box::new(c)))
                .map_err(|e| format!("check_config (the math plugin's config, check \"math\"): {e}")),
        }
    }

    /// Whether `answer` matches `reference` (JSON text, as a rollout carries it). An unusable
    /// reference is the plugin's error (`INVALID_INPUT` naming the problem).
    fn matches(&self, answer: &str, reference: &str) -> Result<bool, RolloutError> {
        let probe = Rollout { completion: answer.to_owned(), reference: reference.to_owned(), ..Rollout::default() };
        Ok(match self {
            Checker::Format(c) => FormatReward::score(c, &probe)?.get("answer_correct") == Some(1.0),
            Checker::Math(c) => MathReward::score(c, &probe)?.value == 1.0,
        })
    }

    /// Whether two answers are the same answer: byte-equal, or `answer` matches `first` taken as
    /// the reference. A `first` the check cannot use as a reference matches only itself.
    fn same(&self, answer: &str, first: &str) -> bool {
        answer == first || self.matches(answer, &Value::String(first.to_owned()).to_string()).unwrap_or(false)
    }
}

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

impl GroupReward for GroupPlugin {
    type Config = GroupConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "group".into(),
            version: VERSION.into(),
            description: "GRPO group rewards: majority vote (label-free), diversity, pass@k, Kimi k1.5 length reward".into(),
            metrics: METRICS.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn score_group(config: &GroupConfig, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
        match config.mode {
            Mode::Majority => majority(config, rollouts),
            Mode::Diversity => diversity(config, rollouts),
            Mode::PassAtK => pass_at_k(config, rollouts),
            Mode::Length => length(config, rollouts),
        }
    }
}

// Off for crates that build on this one into a plugin of their own (the `export` feature).
#[cfg(feature = "export")]
reward_sdk::export_group_reward!(GroupPlugin);

/// The members of a group sorted into classes of the same answer, in group order.
struct Classes {
    /// Each member's class, `None` for a member without an answer.
    of: Vec<Option<usize>>,
    /// Each class's first member (its representative).
    first: Vec<usize>,
    /// Each class's size.
    size: Vec<usize>,
}

impl Classes {
    /// Sorts `items` into classes: a member joins the first class (in order of creation) whose
    /// first member it is `same` as, else starts a new one; `None` items join none. Compares
    /// members with class representatives only, at most n·c comparisons for n members and c
    /// classes, one representative at a time (so the checks' per-reference caches hit).
    fn new<T>(items: &[Option<T>], same: impl Fn(&T, &T) -> bool) -> Classes {
        let n = items.len();
        let mut classes = Classes { of: vec![None; n], first: Vec::new(), size: Vec::new() };
        let mut from = 0;
        // The first member not in a class yet starts the next one; every later member not in a
        // class yet joins it when it is the same. A member is compared with the representatives
        // before it in order, so it lands where a member-by-member pass would put it.
        while let Some(rep) = (from..n).find(|&i| items[i].is_some() && classes.of[i].is_none()) {
            let class = classes.first.len();
            let rep_item = items[rep].as_ref().expect("found above");
            classes.first.push(rep);
            classes.size.push(1);
            classes.of[rep] = Some(class);
            for (of, item) in classes.of.iter_mut().zip(items).skip(rep + 1) {
                if of.is_none()
                    && let Some(item) = item
                    && same(item, rep_item)
                {
                    *of = Some(class);
                    classes.size[class] += 1;
                }
            }
            from = rep + 1;
        }
        classes
    }

    /// The largest class; on a tie the one whose first member comes first in the group.
    fn largest(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (c, &size) in self.size.iter().enumerate() {
            if best.is_none_or(|b| size > self.size[b]) {
                best = Some(c);
            }
        }
        best
    }

    /// The size of member `i`'s class, 0 without an answer.
    fn size_of(&self, i: usize) -> usize {
        self.of[i].map_or(0, |c| self.size[c])
    }
}

/// Each member's answer, extracted with the configured extractor.
fn answers(c: &GroupConfig, rollouts: &[Rollout]) -> Vec<Option<String>> {
    rollouts.iter().map(|r| c.extract.answer(&r.completion)).collect()
}

/// Member answers grouped by the configured check.
fn answer_classes(c: &GroupConfig, answers: &[Option<String>]) -> Classes {
    Classes::new(answers, |a: &String, first: &String| c.checker.same(a, first))
}

fn majority(c: &GroupConfig, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
    let n = rollouts.len();
    let answers = answers(c, rollouts);
    let classes = answer_classes(c, &answers);
    let answered = answers.iter().flatten().count();
    let majority = classes.largest();
    let majority_size = majority.map_or(0, |m| classes.size[m]);
    let share = majority_size as f64 / n as f64;
    let majority_answer = majority.and_then(|m| answers[classes.first[m]].as_deref());
    let paid = majority.is_some() && share >= c.min_share;
    (0..n)
        .map(|i| {
            let agreement = classes.size_of(i) as f64 / n as f64;
            let in_majority = majority.is_some() && classes.of[i] == majority;
            let value = if in_majority && paid { 1.0 } else { 0.0 };
            let mut reason = String::with_capacity(96);
            match (&answers[i], majority_answer) {
                (None, None) => {
                    let _ = write!(reason, "no answer in the group of {n} (extract \"{}\"): nothing to vote on", c.extract.name());
                }
                (None, Some(m)) => {
                    let _ = write!(reason, "no answer found (extract \"{}\"); the majority answer is {}", c.extract.name(), quoted(m));
                }
                (Some(_), Some(m)) if !paid => {
                    let _ = write!(
                        reason,
                        "no consensus: the majority answer {} has {majority_size} of {n} ({}), below min_share {}",
                        quoted(m),
                        percent(share),
                        percent(c.min_share)
                    );
                }
                (Some(_), Some(m)) if in_majority => {
                    let _ = write!(reason, "agrees with the majority answer {} ({majority_size} of {n})", quoted(m));
                }
                (Some(a), m) => {
                    let _ = write!(reason, "answer {} ({} of {n}) is not the majority answer", quoted(a), classes.size_of(i));
                    if let Some(m) = m {
                        let _ = write!(reason, " {} ({majority_size} of {n})", quoted(m));
                    }
                }
            }
            Ok(Score::new(value)
                .metric("agreement", agreement)
                .metric("majority_share", share)
                .metric("group_size", n as f64)
                .metric("answered", answered as f64)
                .with_reason(reason))
        })
        .collect()
}

fn diversity(c: &GroupConfig, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
    let n = rollouts.len();
    let (items, what) = match c.on {
        On::Answer => (answers(c, rollouts), "answer"),
        On::Completion => {
            let normalized = rollouts.iter().map(|r| Some(extract::normalize_text(&r.completion)).filter(|t| !t.is_empty()));
            (normalized.collect(), "completion")
        }
    };
    let classes = match c.on {
        On::Answer => answer_classes(c, &items),
        On::Completion => Classes::new(&items, |a: &String, b: &String| a == b),
    };
    let distinct = classes.first.len() as f64 / n as f64;
    (0..n)
        .map(|i| {
            let (value, reason) = match &items[i] {
                None if c.on == On::Answer => (0.0, format!("no answer found (extract \"{}\")", c.extract.name())),
                None => (0.0, "blank completion".to_owned()),
                Some(_) if n == 1 => (1.0, "a group of one: nothing to repeat".to_owned()),
                Some(_) => {
                    let others_same = classes.size_of(i) - 1;
                    let value = 1.0 - others_same as f64 / (n - 1) as f64;
                    let reason = match others_same {
                        0 => format!("the only one of {n} with this {what}"),
                        1 => format!("1 of the {} others has the same {what}", n - 1),
                        same => format!("{same} of the {} others have the same {what}", n - 1),
                    };
                    (value, reason)
                }
            };
            Ok(Score::new(value).metric("distinct", distinct).metric("group_size", n as f64).with_reason(reason))
        })
        .collect()
}

/// Whether each member's answer matches its reference; a member without a usable reference is
/// its error. `mode` names the mode in the error.
fn correctness(c: &GroupConfig, rollouts: &[Rollout]) -> Vec<Result<bool, RolloutError>> {
    rollouts
        .iter()
        .map(|r| {
            if r.reference_json()?.is_null() {
                return Err(RolloutError::InvalidInput(format!(
                    "reference is missing (null): mode \"{}\" checks each rollout's answer against its `reference`",
                    c.mode.name()
                )));
            }
            match c.extract.answer(&r.completion) {
                None => Ok(false),
                Some(answer) => c.checker.matches(&answer, &r.reference),
            }
        })
        .collect()
}

/// The unbiased pass@k estimate from `n` samples of which `correct` are right:
/// 1 − C(n−c, k)/C(n, k), computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i) (no large binomials).
/// `k` must be at most `n`.
pub fn pass_at_k_estimate(n: u64, correct: u64, k: u64) -> f64 {
    debug_assert!(k <= n && correct <= n && k >= 1);
    if n - correct < k {
        return 1.0;
    }
    1.0 - ((n - correct + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product::<f64>()
}

fn pass_at_k(c: &GroupConfig, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
    let n = rollouts.len();
    let correct = correctness(c, rollouts);
    let scored = correct.iter().filter(|r| r.is_ok()).count() as u64;
    let group_correct = correct.iter().filter(|r| matches!(r, Ok(true))).count() as u64;
    // k beyond the samples there are: pass@n, the chance that one of them all is right.
    let k = c.k.min(scored.max(1));
    let estimate = if scored == 0 { 0.0 } else { pass_at_k_estimate(scored, group_correct, k) };
    let mut summary = format!("pass@{k} = {estimate:.3} ({group_correct} of {scored} correct");
    if c.k > k {
        let _ = write!(summary, "; k = {} is more than the {scored} scored, so k = {k}", c.k);
    }
    if scored < n as u64 {
        let _ = write!(summary, "; {} without a usable reference left out", n as u64 - scored);
    }
    summary.push(')');
    correct
        .into_iter()
        .map(|r| {
            let ok = r?;
            let reason = format!("{summary}; this one is {}", if ok { "correct" } else { "wrong" });
            Ok(Score::new(estimate)
                .metric("correct", flag(ok))
                .metric("group_correct", group_correct as f64)
                .metric("group_size", n as f64)
                .metric("k", k as f64)
                .with_reason(reason))
        })
        .collect()
}

fn length(c: &GroupConfig, rollouts: &[Rollout]) -> Vec<Result<Score, RolloutError>> {
    let correct = correctness(c, rollouts);
    let lengths: Vec<usize> = rollouts.iter().map(|r| r.completion.chars().count()).collect();
    // Over the members that are scored (a member with an unusable reference is an error).
    let scored = || lengths.iter().zip(&correct).filter(|(_, r)| r.is_ok()).map(|(l, _)| *l);
    let (min, max) = (scored().min().unwrap_or(0), scored().max().unwrap_or(0));
    correct
        .into_iter()
        .zip(&lengths)
        .map(|(r, &len)| {
            let ok = r?;
            let lambda = if max == min { 0.0 } else { 0.5 - (len - min) as f64 / (max - min) as f64 };
            let paid = if ok { lambda } else { lambda.min(0.0) };
            let mut reason = format!("{}, {len} chars (group {min} to {max}): λ = {lambda:.3}", if ok { "correct" } else { "wrong" });
            if !ok && lambda > 0.0 {
                reason.push_str(", a wrong answer gets at most 0");
            }
            Ok(Score::new(c.weight * paid).metric("correct", flag(ok)).metric("length", len as f64).with_reason(reason))
        })
        .collect()
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// A share as a percentage for reasons: `62.5%`.
fn percent(share: f64) -> String {
    let p = format!("{:.1}", share * 100.0);
    format!("{}%", p.strip_suffix(".0").unwrap_or(&p))
}

/// An answer for a reason: quoted, shortened to [`QUOTE_CHARS`] characters.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
    }
}

#[cfg(test)]
mod tests;
