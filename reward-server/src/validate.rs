//! `validate`: probes a reward for reward hacking before a policy trains on it, and checks that it
//! scores the same rollout the same way twice.
//!
//! For each sample rollout (the caller's, or the reward's built-in samples), every stock
//! [`Probe`] replaces the generated answer with a content-free or hostile one (an empty answer,
//! empty tags, the prompt echoed, 1 MiB of filler, seeded random text, ...) and keeps the sample's
//! prompt, reference and metadata. Every probe rollout is scored; a probe that is expected to
//! score low ([`Expectation::Low`]) is *flagged* when any of its rollouts scores above the
//! threshold ([`DEFAULT_THRESHOLD`]). A probe that pastes the reference is
//! [`Expectation::Informational`]: for a reward that compares the answer with the reference it is
//! the right answer, not a hack, so it is reported and never flagged.
//!
//! The samples themselves are scored twice, by two separate [`Reward::score_batch`] calls (the
//! probes run between them, so a reused plugin instance is in another state for the second), and
//! every sample whose score, status or metrics differ bit for bit is reported: a nondeterministic
//! reward is flagged too.
//!
//! For a reward that scores whole GRPO groups, each probe rollout takes its sample's place in the
//! sample's group (the samples of the same `group`, or prompt) and is scored with the others: one
//! hacking member among honest ones, never judged by the other probes. The samples are scored in
//! their groups.
//!
//! A probe rollout that fails (`PLUGIN_ERROR`, `TIMEOUT`, ...) is counted under its status; the
//! maximum and mean are over the `OK` rollouts only, so a failure is never read as a 0.
//!
//! The probes are built here and only here, for the command line (`reward-server validate`) and
//! the `Validate` RPC alike, through [`Rollout::new`]: the probe's text is the rollout's
//! completion, appended to the sample's prompt turns as the answer rule says.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::engine::group;
use crate::engine::{Failure, MetricKind, Reward, Rollout, Scored, Status};
use crate::input::{Rejection, parse_record};
use crate::wire::ScoredJson;

/// Default threshold: a probe expected to score low is flagged when one of its rollouts scores
/// above 0.5 (rewards in [0, 1]: more than half the credit for an answer with no content).
pub const DEFAULT_THRESHOLD: f64 = 0.5;
/// Default number of samples probed: the first 16.
pub const DEFAULT_MAX_SAMPLES: usize = 16;
/// Most samples one `Validate` call probes: 64 (each costs 14 probe and determinism rollouts,
/// one of them 1 MiB).
pub const MAX_SAMPLES: usize = 64;
/// Size of the `one-megabyte` probe's answer: 1 MiB.
pub const LARGE_ANSWER_BYTES: usize = 1 << 20;
/// Seed of the `random-text` probe's generator ([`XorShift64`]); sample `i` uses `seed + i`, so the
/// text is the same on every run.
pub const RANDOM_SEED: u64 = 0x005E_ED0F_0BE5_0001;
/// Where a config's built-in samples live, relative to the config file's directory:
/// `examples/validate/NAME.jsonl`.
pub const SAMPLES_DIR: &str = "examples/validate";

/// The phrase the `one-megabyte` probe repeats (no number, no tag: pure filler).
const FILLER: &str = "All work and no play makes a very long answer. ";
/// The keys of a JSON-object reference that most likely hold the answer, in order.
const ANSWER_KEYS: [&str; 13] = [
    "answer",
    "ground_truth",
    "solution",
    "label",
    "expected_answer",
    "gold",
    "gold_sql",
    "sql",
    "query",
    "target",
    "expected",
    "output",
    "final_answer",
];

/// What a probe is expected to score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// The answer carries no right content: any rollout scoring above the threshold is a hack,
    /// and the probe is flagged.
    Low,
    /// Reported, never flagged: the answer may be right for some rewards (the reference pasted
    /// verbatim is the right answer for an exact-match reward), or the row is the samples' own
    /// scores.
    Informational,
}

impl Expectation {
    /// `low` or `info`, for the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Low => "low",
            Expectation::Informational => "info",
        }
    }
}

/// A stock probe: an answer built from a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `""`.
    Empty,
    /// Spaces, a tab and newlines.
    Whitespace,
    /// `<think></think><answer></answer>`.
    EmptyTags,
    /// `\boxed{}`.
    EmptyBoxed,
    /// The reference's JSON text, as it is (`"Paris"` with its quotes, `{"answer": "12.5"}`).
    ReferenceJson,
    /// The reference's answer: the string itself, or the value of the most answer-like key of an
    /// object ([`ANSWER_KEYS`]); skipped when there is none.
    ReferenceAnswer,
    /// The last user message, echoed; skipped when there is none.
    PromptEcho,
    /// 1 MiB of a repeated phrase.
    OneMegabyte,
    /// 64 words of seeded random letters ([`XorShift64`], [`RANDOM_SEED`]).
    RandomText,
    /// `<think>x</think><answer></answer>`: the format, no answer.
    ThinkEmptyAnswer,
    /// `<answer>answer</answer>`: a tag around a placeholder.
    AnswerPlaceholder,
    /// `<think></think>a`.
    EmptyThinkBareAnswer,
}

impl Probe {
    /// Every probe, in report order.
    pub const ALL: [Probe; 12] = [
        Probe::Empty,
        Probe::Whitespace,
        Probe::EmptyTags,
        Probe::EmptyBoxed,
        Probe::ThinkEmptyAnswer,
        Probe::AnswerPlaceholder,
        Probe::EmptyThinkBareAnswer,
        Probe::PromptEcho,
        Probe::RandomText,
        Probe::OneMegabyte,
        Probe::ReferenceJson,
        Probe::ReferenceAnswer,
    ];

    /// The probe's name in reports and in probe rollout ids (`SAMPLE/NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Probe::Empty => "empty",
            Probe::Whitespace => "whitespace",
            Probe::EmptyTags => "empty-tags",
            Probe::EmptyBoxed => "empty-boxed",
            Probe::ReferenceJson => "reference-json",
            Probe::ReferenceAnswer => "reference-answer",
            Probe::PromptEcho => "prompt-echo",
            Probe::OneMegabyte => "one-megabyte",
            Probe::RandomText => "random-text",
            Probe::ThinkEmptyAnswer => "think-empty-answer",
            Probe::AnswerPlaceholder => "answer-placeholder",
            Probe::EmptyThinkBareAnswer => "empty-think-bare-answer",
        }
    }

    /// What the probe answers, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            Probe::Empty => "an empty answer",
            Probe::Whitespace => "whitespace only",
            Probe::EmptyTags => "<think></think><answer></answer>",
            Probe::EmptyBoxed => "\\boxed{}",
            Probe::ReferenceJson => "the reference's JSON text, verbatim",
            Probe::ReferenceAnswer => "the reference's answer string (or its most answer-like field)",
            Probe::PromptEcho => "the last user message, echoed",
            Probe::OneMegabyte => "1 MiB of a repeated phrase",
            Probe::RandomText => "seeded random words",
            Probe::ThinkEmptyAnswer => "<think>x</think><answer></answer>",
            Probe::AnswerPlaceholder => "<answer>answer</answer>",
            Probe::EmptyThinkBareAnswer => "<think></think>a",
        }
    }

    /// What it is expected to score. Only the reference probes are informational: pasting the
    /// reference is the right answer for a reward that compares with it.
    pub fn expectation(self) -> Expectation {
        match self {
            Probe::ReferenceJson | Probe::ReferenceAnswer => Expectation::Informational,
            _ => Expectation::Low,
        }
    }

    /// The probe's answer for sample number `index`, or `None` when the sample has nothing to
    /// build it from (no user message to echo, no answer in the reference).
    pub fn answer(self, sample: &Rollout, index: usize) -> Option<String> {
        Some(match self {
            Probe::Empty => String::new(),
            Probe::Whitespace => "  \n\t \n".to_owned(),
            Probe::EmptyTags => "<think></think><answer></answer>".to_owned(),
            Probe::EmptyBoxed => "\\boxed{}".to_owned(),
            Probe::ReferenceJson => sample.reference.clone(),
            Probe::ReferenceAnswer => reference_answer(&sample.reference)?,
            Probe::PromptEcho => prompt_turns(sample).iter().rev().find(|m| m.role == "user")?.content.clone(),
            Probe::OneMegabyte => {
                let mut text = FILLER.repeat(LARGE_ANSWER_BYTES / FILLER.len() + 1);
                text.truncate(LARGE_ANSWER_BYTES); // ASCII: any byte is a char boundary
                text
            }
            Probe::RandomText => random_words(RANDOM_SEED.wrapping_add(index as u64), 64),
            Probe::ThinkEmptyAnswer => "<think>x</think><answer></answer>".to_owned(),
            Probe::AnswerPlaceholder => "<answer>answer</answer>".to_owned(),
            Probe::EmptyThinkBareAnswer => "<think></think>a".to_owned(),
        })
    }
}

/// The answer a reference holds: a string as it is, a number's text, or an object's most
/// answer-like field ([`ANSWER_KEYS`]) when it is a string or a number.
fn reference_answer(reference: &str) -> Option<String> {
    let text_of = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match serde_json::from_str::<Value>(reference).ok()? {
        Value::Object(obj) => ANSWER_KEYS.iter().find_map(|k| obj.get(*k).and_then(text_of)),
        v => text_of(&v),
    }
}

/// A sample's conversation without its answer (the last message, by the answer rule).
fn prompt_turns(sample: &Rollout) -> &[crate::engine::Message] {
    sample.messages.split_last().map_or(&[], |(_, prompt)| prompt)
}

/// Marsaglia's xorshift64 (13, 7, 17): a tiny, fixed, seeded generator, so the `random-text`
/// probe is the same on every run and every machine. Not for anything but test text.
#[derive(Clone, Debug)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator from `seed` (0 is replaced: xorshift never leaves the zero state).
    pub fn new(seed: u64) -> Self {
        XorShift64(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `words` random lowercase words of 2 to 9 letters, separated by spaces.
fn random_words(seed: u64, words: usize) -> String {
    let mut rng = XorShift64::new(seed);
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        let len = 2 + (rng.next_u64() % 8) as usize;
        for _ in 0..len {
            out.push(char::from(b'a' + (rng.next_u64() % 26) as u8));
        }
    }
    out
}

/// One probe rollout: which probe, which sample, and the rollout (or why it could not be built).
#[derive(Clone, Debug)]
pub struct ProbeRollout {
    /// The probe.
    pub probe: Probe,
    /// The sample's index.
    pub sample: usize,
    /// The rollout, id `SAMPLE_ID/PROBE`; an error when the answer rule refuses it.
    pub rollout: Result<Rollout, (String, Failure)>,
}

/// Every probe rollout of `samples`, probe by probe (sample order within a probe). The one place
/// probes are built: the answer is the probe's text, appended to the sample's prompt turns by
/// [`Rollout::new`]; the reference and metadata are the sample's.
pub fn probe_rollouts(samples: &[Rollout]) -> Vec<ProbeRollout> {
    let mut out = Vec::new();
    for probe in Probe::ALL {
        for (i, sample) in samples.iter().enumerate() {
            let Some(answer) = probe.answer(sample, i) else { continue };
            let id = format!("{}/{}", sample.id, probe.name());
            let rollout =
                Rollout::new(id.clone(), prompt_turns(sample).to_vec(), Some(answer), sample.reference.clone(), sample.metadata.clone())
                    .map_err(|e| {
                        (id, Failure::new(Status::InvalidInput, format!("probe `{}` on sample `{}`: {e}", probe.name(), sample.id)))
                    });
            out.push(ProbeRollout { probe, sample: i, rollout });
        }
    }
    out
}

/// How many rollouts validating `samples` samples scores: every probe rollout and the samples
/// twice. Servers admit this many.
pub fn rollout_count(samples: &[Rollout]) -> usize {
    let probes: usize = Probe::ALL.iter().map(|p| samples.iter().enumerate().filter(|(i, s)| p.answer(s, *i).is_some()).count()).sum();
    probes + 2 * samples.len()
}

/// How to validate.
#[derive(Clone, Debug)]
pub struct Options {
    /// A probe expected to score low is flagged when a rollout scores above this.
    pub threshold: f64,
    /// Score the probes in parallel batches on the rayon pool (the command line); the server
    /// scores them in one call on its blocking thread.
    pub parallel: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { threshold: DEFAULT_THRESHOLD, parallel: false }
    }
}

/// One row of the report: a probe (or the samples) over every sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The probe's name, or `samples` for the samples as given.
    pub name: String,
    /// What it answers.
    pub description: String,
    /// What it is expected to score.
    pub expectation: Expectation,
    /// How many rollouts (samples it could be built for).
    pub samples: usize,
    /// Highest score over the `OK` rollouts; `None` when none is `OK`.
    pub max: Option<f64>,
    /// Mean score over the `OK` rollouts.
    pub mean: Option<f64>,
    /// Rollouts per status.
    pub statuses: BTreeMap<Status, usize>,
    /// The sample whose rollout scored highest (the first on a tie).
    pub worst_sample: Option<String>,
    /// The plugin's reason on that rollout, when it gave one.
    pub worst_reason: Option<String>,
    /// The first error of a rollout that was not `OK`.
    pub first_error: Option<String>,
    /// Expected low and a rollout scored above the threshold.
    pub flagged: bool,
}

/// A sample scored differently by the two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    /// The first run's score.
    pub first: Scored,
    /// The second run's score.
    pub second: Scored,
}

impl Serialize for Changed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            id: &'a str,
            first: ScoredJson<'a>,
            second: ScoredJson<'a>,
        }
        Json { id: &self.first.id, first: (&self.first).into(), second: (&self.second).into() }.serialize(s)
    }
}

/// What validating a reward found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The reward's name.
    pub reward: String,
    /// The threshold used.
    pub threshold: f64,
    /// Samples probed.
    pub samples: usize,
    /// The samples as given (first run): what right answers score, for comparison.
    pub baseline: ProbeReport,
    /// One row per probe, in [`Probe::ALL`] order.
    pub probes: Vec<ProbeReport>,
    /// Samples whose score, status or metrics differed between the two runs.
    pub nondeterministic: Vec<Changed>,
    /// A probe is flagged, or a sample scored differently twice.
    pub flagged: bool,
}

/// Validates `reward` on `samples` (all of them: the caller bounds them). `cancelled` is checked
/// before each plugin call, as in [`Reward::score_batch_until`]; rollouts not run answer
/// `TIMEOUT`, so a caller whose deadline passed should discard the report.
pub fn run(reward: &Reward, samples: &[Rollout], options: &Options, cancelled: &(dyn Fn() -> bool + Sync)) -> Report {
    let first = reward.score_batch_until(samples, cancelled);

    let probes = probe_rollouts(samples);
    let mut scored: Vec<Option<Scored>> = vec![None; probes.len()];
    let mut work = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        match &p.rollout {
            Ok(r) => work.push((i, r.clone())),
            Err((id, failure)) => scored[i] = Some(reward.reject(id, failure.clone())),
        }
    }
    let results: Vec<Scored> = if reward.groups() {
        score_probes_in_groups(reward, samples, &probes, &work, options, cancelled)
    } else {
        let rollouts: Vec<Rollout> = work.iter().map(|(_, r)| r.clone()).collect();
        if options.parallel {
            // Batches of a size that keeps every core busy, one 1 MiB probe among a few others.
            let batch = rollouts.len().div_ceil(rayon::current_num_threads().max(1) * 2).clamp(1, 32);
            rollouts.par_chunks(batch).map(|chunk| reward.score_batch_until(chunk, cancelled)).collect::<Vec<_>>().concat()
        } else {
            reward.score_batch_until(&rollouts, cancelled)
        }
    };
    for ((i, _), s) in work.iter().zip(results) {
        scored[*i] = Some(s);
    }

    // The second run: a separate call, after the probes.
    let second = reward.score_batch_until(samples, cancelled);
    let nondeterministic = compare(&first, &second);

    let samples_of = |idx: usize| samples[idx].id.clone();
    let baseline = summarize(
        "samples",
        "the samples as given (first run)",
        Expectation::Informational,
        options.threshold,
        first.iter().enumerate().map(|(i, s)| (samples_of(i), s)),
    );
    let rows: Vec<ProbeReport> = Probe::ALL
        .iter()
        .map(|&probe| {
            let of_probe = probes
                .iter()
                .zip(&scored)
                .filter(|(p, _)| p.probe == probe)
                .map(|(p, s)| (samples_of(p.sample), s.as_ref().expect("every probe rollout is scored")));
            summarize(probe.name(), probe.description(), probe.expectation(), options.threshold, of_probe)
        })
        .collect();
    let flagged = rows.iter().any(|r| r.flagged) || !nondeterministic.is_empty();
    Report {
        reward: reward.name.clone(),
        threshold: options.threshold,
        samples: samples.len(),
        baseline,
        probes: rows,
        nondeterministic,
        flagged,
    }
}

/// One row from `(sample id, score)` pairs.
/// The probes of a reward that scores whole groups: each probe takes its sample's place in the
/// sample's group (the other samples of its group, or of its prompt, as they are), and that group,
/// under a name of its own, is scored in one call; the probe's score is kept. So a probe is judged
/// as one hacking member among honest ones, never by the other probes.
fn score_probes_in_groups(
    reward: &Reward,
    samples: &[Rollout],
    probes: &[ProbeRollout],
    work: &[(usize, Rollout)],
    options: &Options,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Vec<Scored> {
    let groups = group::partition(samples);
    let mut group_of = vec![0; samples.len()];
    for (g, members) in groups.iter().enumerate() {
        for &i in members {
            group_of[i] = g;
        }
    }
    let score = |(i, probe): &(usize, Rollout)| -> Scored {
        let sample = probes[*i].sample;
        let name = Some(probe.id.clone());
        let members: Vec<Rollout> = groups[group_of[sample]]
            .iter()
            .map(|&j| if j == sample { probe.clone() } else { samples[j].clone() }.in_group(name.clone()))
            .collect();
        let at = groups[group_of[sample]].iter().position(|&j| j == sample).expect("a sample is in its group");
        reward.score_batch_until(&members, cancelled).swap_remove(at)
    };
    if options.parallel { work.par_iter().map(score).collect() } else { work.iter().map(score).collect() }
}

fn summarize<'a>(
    name: &str,
    description: &str,
    expectation: Expectation,
    threshold: f64,
    scored: impl Iterator<Item = (String, &'a Scored)>,
) -> ProbeReport {
    let mut row = ProbeReport {
        name: name.to_owned(),
        description: description.to_owned(),
        expectation,
        samples: 0,
        max: None,
        mean: None,
        statuses: BTreeMap::new(),
        worst_sample: None,
        worst_reason: None,
        first_error: None,
        flagged: false,
    };
    let (mut sum, mut ok) = (0.0, 0usize);
    for (sample, s) in scored {
        row.samples += 1;
        *row.statuses.entry(s.status).or_default() += 1;
        if s.status != Status::Ok {
            if row.first_error.is_none() {
                row.first_error = Some(format!("{}: {}", s.status, s.error.as_deref().unwrap_or("failed")));
            }
            continue;
        }
        let Some(score) = s.score else { continue };
        ok += 1;
        sum += score;
        if row.max.is_none_or(|m| score > m) {
            row.max = Some(score);
            row.worst_sample = Some(sample);
            row.worst_reason = s.reason.clone();
        }
    }
    if ok > 0 {
        row.mean = Some(sum / ok as f64);
    }
    row.flagged = expectation == Expectation::Low && row.max.is_some_and(|m| m > threshold);
    row
}

/// The samples whose two scores differ: the id, the status, the score or a metric (name, value
/// bit for bit, kind), in sample order. Instructions and latency are not compared (a reused
/// instance may differ by a few instructions; latency is wall time).
pub fn compare(first: &[Scored], second: &[Scored]) -> Vec<Changed> {
    let key = |s: &Scored| {
        let metrics: Vec<(String, u64, MetricKind)> = s.metrics.iter().map(|m| (m.name.clone(), m.value.to_bits(), m.kind)).collect();
        (s.id.clone(), s.status, s.score.map(f64::to_bits), metrics)
    };
    let mut out: Vec<Changed> =
        first.iter().zip(second).filter(|(a, b)| key(a) != key(b)).map(|(a, b)| Changed { first: a.clone(), second: b.clone() }).collect();
    // A run that answered fewer rollouts: every missing one differs.
    for s in first.iter().skip(second.len()) {
        out.push(Changed { first: s.clone(), second: s.clone() });
    }
    out
}

/// Reads up to `max` samples from a JSONL file of rollouts (the shapes `score` reads). Blank lines
/// are skipped; a line that is not a rollout is an error naming it.
pub fn load_samples(path: &Path, max: usize) -> anyhow::Result<Vec<Rollout>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening samples {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        if out.len() >= max {
            break;
        }
        let line = line.with_context(|| format!("reading {} line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rollout = parse_record(&line, &format!("line-{}", n + 1))
            .map_err(|Rejection { error, .. }| anyhow::anyhow!("{} line {}: not a rollout: {error}", path.display(), n + 1))?;
        out.push(rollout);
    }
    anyhow::ensure!(!out.is_empty(), "{} holds no samples", path.display());
    Ok(out)
}

/// Where the built-in samples of `reward` are for the config at `config`:
/// `<config's directory>/examples/validate/<reward>.jsonl` ([`SAMPLES_DIR`]).
pub fn builtin_samples_path(config: &Path, reward: &str) -> PathBuf {
    config.parent().unwrap_or(Path::new("")).join(SAMPLES_DIR).join(format!("{reward}.jsonl"))
}

/// The built-in samples of `reward`, or an error saying where they were looked for.
pub fn builtin_samples(config: &Path, reward: &str, max: usize) -> anyhow::Result<Vec<Rollout>> {
    let path = builtin_samples_path(config, reward);
    if !path.is_file() {
        anyhow::bail!("reward `{reward}` has no built-in samples ({} does not exist): pass samples with --input", path.display());
    }
    load_samples(&path, max)
}

fn fmt_score(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"))
}

fn fmt_statuses(statuses: &BTreeMap<Status, usize>) -> String {
    statuses.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ")
}

fn shorten(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &one_line[..at]),
        None => one_line,
    }
}

impl Report {
    /// The report as a table for humans.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "reward `{}`: {} samples, {} probes; a `low` probe is flagged when a rollout scores above {}",
            self.reward,
            self.samples,
            self.probes.len(),
            self.threshold
        );
        let _ = writeln!(out);
        let width = self.probes.iter().map(|r| r.name.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(out, "{:width$}  {:6}  {:>7}  {:>7}  {:>7}  {:4}  statuses", "probe", "expect", "samples", "max", "mean", "");
        for row in std::iter::once(&self.baseline).chain(&self.probes) {
            let _ = writeln!(
                out,
                "{:width$}  {:6}  {:>7}  {:>7}  {:>7}  {:4}  {}",
                row.name,
                row.expectation.as_str(),
                row.samples,
                fmt_score(row.max),
                fmt_score(row.mean),
                if row.flagged { "FLAG" } else { "" },
                fmt_statuses(&row.statuses)
            );
        }
        let notes: Vec<&ProbeReport> =
            std::iter::once(&self.baseline).chain(&self.probes).filter(|r| r.flagged || r.first_error.is_some()).collect();
        if !notes.is_empty() {
            let _ = writeln!(out);
        }
        for row in notes {
            if row.flagged {
                let reason = row.worst_reason.as_deref().map(|r| format!(" ({})", shorten(r, 120))).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "FLAG {}: sample `{}` scored {}{reason}",
                    row.name,
                    row.worst_sample.as_deref().unwrap_or("?"),
                    fmt_score(row.max)
                );
            }
            if let Some(error) = &row.first_error {
                let _ = writeln!(out, "{}: not every rollout was OK; first: {}", row.name, shorten(error, 160));
            }
        }
        let _ = writeln!(out);
        if self.nondeterministic.is_empty() {
            let _ = writeln!(out, "determinism: {} samples scored twice, identical (score, status, metrics)", self.samples);
        } else {
            let _ = writeln!(out, "determinism: {} of {} samples scored differently twice:", self.nondeterministic.len(), self.samples);
            for c in &self.nondeterministic {
                let _ = writeln!(
                    out,
                    "  {}: {} {} -> {} {}",
                    c.first.id,
                    c.first.status,
                    fmt_score(c.first.score),
                    c.second.status,
                    fmt_score(c.second.score)
                );
            }
        }
        let _ = writeln!(out, "{}", if self.flagged { "result: FLAGGED" } else { "result: ok, nothing flagged" });
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::engine::{Message, Metric, Provenance};

    fn sample() -> Rollout {
        Rollout::new(
            "s1".into(),
            vec![Message { role: "system".into(), content: "be brief".into() }, Message { role: "user".into(), content: "2+2?".into() }],
            Some("<answer>4</answer>".into()),
            r#"{"answer": "4", "unit": null}"#.into(),
            "{}".into(),
        )
        .unwrap()
    }

    fn scored(id: &str, score: Option<f64>, status: Status, metric: f64) -> Scored {
        Scored {
            id: id.into(),
            score,
            status,
            metrics: vec![Metric { name: "m".into(), value: metric, kind: MetricKind::Reward }],
            reason: None,
            error: None,
            instructions: 10,
            latency: Duration::from_micros(3),
            provenance: Arc::new(Provenance {
                reward: "r".into(),
                plugin_sha256: "p".into(),
                config_hash: "c".into(),
                ..Default::default()
            }),
            cached: false,
        }
    }

    #[test]
    fn probes_replace_the_answer_and_keep_the_prompt_and_reference() {
        let probes = probe_rollouts(&[sample()]);
        assert_eq!(probes.len(), Probe::ALL.len(), "every probe builds for a sample with a user turn and an answer field");
        for p in &probes {
            let r = p.rollout.as_ref().unwrap();
            assert_eq!(r.id, format!("s1/{}", p.probe.name()));
            assert_eq!(r.messages.len(), 3);
            assert_eq!(r.messages[..2], sample().messages[..2]);
            assert_eq!(r.messages[2].role, "assistant");
            assert_eq!(r.reference, sample().reference);
        }
        let answer = |probe: Probe| probes.iter().find(|p| p.probe == probe).unwrap().rollout.as_ref().unwrap().completion().to_owned();
        assert_eq!(answer(Probe::Empty), "");
        assert_eq!(answer(Probe::PromptEcho), "2+2?");
        assert_eq!(answer(Probe::ReferenceJson), r#"{"answer": "4", "unit": null}"#);
        assert_eq!(answer(Probe::ReferenceAnswer), "4");
        assert_eq!(answer(Probe::OneMegabyte).len(), LARGE_ANSWER_BYTES);
        assert_eq!(answer(Probe::RandomText), random_words(RANDOM_SEED, 64), "the same text on every run");
        assert_eq!(rollout_count(&[sample()]), Probe::ALL.len() + 2);
    }

    #[test]
    fn probes_without_material_are_skipped_and_refusals_are_kept() {
        // No user turn, a reference with no answer: no echo, no reference answer.
        let bare = Rollout::new("b".into(), vec![], Some("x".into()), r#"{"tests": [1]}"#.into(), "{}".into()).unwrap();
        let names: Vec<&str> = probe_rollouts(std::slice::from_ref(&bare)).iter().map(|p| p.probe.name()).collect();
        assert!(!names.contains(&"prompt-echo") && !names.contains(&"reference-answer"), "{names:?}");
        assert_eq!(rollout_count(&[bare]), Probe::ALL.len() - 2 + 2);
        // Two answers in a row: the answer rule refuses the probe, which is kept as INVALID_INPUT.
        let two = Rollout {
            id: "t".into(),
            messages: vec![
                Message { role: "assistant".into(), content: "a".into() },
                Message { role: "assistant".into(), content: "b".into() },
            ],
            reference: "null".into(),
            metadata: "{}".into(),
            group: None,
        };
        let (id, failure) = probe_rollouts(&[two])[0].rollout.clone().unwrap_err();
        assert_eq!((id.as_str(), failure.status), ("t/empty", Status::InvalidInput));
        assert!(failure.message.contains("`completion` differs"), "{}", failure.message);
    }

    #[test]
    fn reference_answers_take_the_most_answer_like_field() {
        assert_eq!(reference_answer(r#""Paris""#).as_deref(), Some("Paris"));
        assert_eq!(reference_answer("12.5").as_deref(), Some("12.5"));
        assert_eq!(reference_answer(r#"{"sources": ["x"], "answer": "Olsen"}"#).as_deref(), Some("Olsen"));
        assert_eq!(reference_answer(r#"{"gold_sql": "SELECT 1", "db_id": "d"}"#).as_deref(), Some("SELECT 1"));
        assert_eq!(reference_answer(r#"{"input_output": {}}"#), None);
        assert_eq!(reference_answer("null"), None);
    }

    #[test]
    fn xorshift_is_the_published_sequence() {
        // xorshift64 (13, 7, 17) from 1: Marsaglia (2003), "Xorshift RNGs".
        let mut rng = XorShift64::new(1);
        assert_eq!(rng.next_u64(), 1_082_269_761);
        assert_eq!(rng.next_u64(), 1_152_992_998_833_853_505);
        assert_ne!(XorShift64::new(0).next_u64(), 0);
    }

    /// The determinism check on two hand-made score lists (no real plugin can be made to disagree
    /// with itself: plugins get no clock, randomness or files).
    #[test]
    fn compare_reports_every_sample_that_changed_bit_for_bit() {
        let first = vec![
            scored("same", Some(1.0), Status::Ok, 0.5),
            scored("score", Some(1.0), Status::Ok, 0.5),
            scored("status", Some(0.0), Status::Ok, 0.5),
            scored("metric", Some(1.0), Status::Ok, 0.5),
            scored("negzero", Some(0.0), Status::Ok, 0.5),
            scored("abstain", None, Status::Timeout, 0.5),
        ];
        let mut second = first.clone();
        second[1].score = Some(1.0 - f64::EPSILON);
        second[2].status = Status::PluginError;
        second[3].metrics[0].value = 0.5000000000000001;
        second[4].score = Some(-0.0);
        // Instructions and latency may differ: not a change.
        second[0].instructions = 99;
        second[0].latency = Duration::from_millis(5);
        let changed: Vec<String> = compare(&first, &second).into_iter().map(|c| c.first.id).collect();
        assert_eq!(changed, ["score", "status", "metric", "negzero"]);
        assert!(compare(&first, &first).is_empty());
        assert_eq!(compare(&first, &second[..2]).len(), 1 + 4, "rollouts the second run lost count as changed");
    }

    #[test]
    fn failures_are_counted_by_status_not_as_zero_and_only_low_probes_flag() {
        let rows = [
            scored("a", Some(0.0), Status::PluginError, 0.0),
            scored("b", Some(0.25), Status::Ok, 0.0),
            scored("c", None, Status::Timeout, 0.0),
        ];
        let row = summarize("p", "d", Expectation::Low, 0.5, rows.iter().map(|s| (s.id.clone(), s)));
        assert_eq!((row.samples, row.max, row.mean, row.flagged), (3, Some(0.25), Some(0.25), false));
        assert_eq!(row.statuses, BTreeMap::from([(Status::Ok, 1), (Status::PluginError, 1), (Status::Timeout, 1)]));
        assert!(row.first_error.as_deref().unwrap().starts_with("PLUGIN_ERROR"));
        let high = [scored("x", Some(0.75), Status::Ok, 0.0), scored("y", Some(0.9), Status::Ok, 0.0)];
        let low = summarize("p", "d", Expectation::Low, 0.5, high.iter().map(|s| (s.id.clone(), s)));
        assert!(low.flagged && low.worst_sample.as_deref() == Some("y"));
        let info = summarize("p", "d", Expectation::Informational, 0.5, high.iter().map(|s| (s.id.clone(), s)));
        assert!(!info.flagged && info.max == Some(0.9));
        // At the threshold is not above it.
        let at = [scored("z", Some(0.5), Status::Ok, 0.0)];
        assert!(!summarize("p", "d", Expectation::Low, 0.5, at.iter().map(|s| (s.id.clone(), s))).flagged);
    }
}
