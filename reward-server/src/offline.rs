//! Offline batch scoring: a JSONL file of rollouts in, one scored JSON line per input line out
//! (same order, same ids), on all cores, with a progress bar and a summary.
//!
//! A line that is not a rollout (bad JSON, not UTF-8, too long, wrong shape) is written as
//! `INVALID_INPUT` with its line number in the error; it never stops the run or shifts the output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::engine::{Failure, Reward, Scored, Status};
use crate::input::{Rejection, parse_record};
use crate::wire::ScoredJson;

/// Default rollouts per plugin batch: 64, the size of a typical RFT request.
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// Default cap on one input line: 64 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;

/// What to score and how.
#[derive(Clone, Debug)]
pub struct ScoreJob {
    /// The input JSONL file; `-` reads standard input.
    pub input: PathBuf,
    /// The output JSONL file; `None` writes standard output.
    pub output: Option<PathBuf>,
    /// Rollouts per plugin batch.
    pub batch_size: usize,
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

/// Statistics of one metric over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricStats {
    /// How many rollouts reported it.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Median (lower middle for even counts).
    pub p50: f64,
    /// Maximum.
    pub max: f64,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The reward's name.
    pub reward: String,
    /// Lines read (= lines written).
    pub lines: usize,
    /// Per status, how many lines.
    pub statuses: BTreeMap<Status, usize>,
    /// `score` and every metric, in name order (`score` first).
    pub metrics: Vec<(String, MetricStats)>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The first rollout that fails the run under an `on_error = "fail"` policy, as "line N: error".
    pub fatal: Option<String>,
}

impl Summary {
    /// Rollouts per second.
    pub fn throughput(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The summary as a table for humans.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "reward `{}`: {} rollouts in {:.2} s ({:.0} rollouts/s)",
            self.reward,
            self.lines,
            self.elapsed.as_secs_f64(),
            self.throughput()
        );
        let _ = writeln!(out);
        let width = self.metrics.iter().map(|(n, _)| n.len()).max().unwrap_or(6).max(6);
        let _ = writeln!(out, "{:width$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}", "metric", "count", "mean", "std", "min", "p50", "max");
        for (name, s) in &self.metrics {
            let _ = writeln!(
                out,
                "{name:width$}  {:>8}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9.4}  {:>9.4}",
                s.count, s.mean, s.std, s.min, s.p50, s.max
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:14}  {:>8}", "status", "count");
        for status in Status::ALL {
            let n = self.statuses.get(&status).copied().unwrap_or(0);
            if n > 0 || status == Status::Ok {
                let _ = writeln!(out, "{:14}  {:>8}", status.as_str(), n);
            }
        }
        out
    }
}

/// One input line, read.
enum Line {
    Text(String),
    Bad(Failure),
}

/// Scores `job.input` with `reward`, writing one line per input line.
pub fn run(reward: &Reward, job: &ScoreJob) -> Result<Summary> {
    anyhow::ensure!(job.batch_size > 0, "--batch-size must be at least 1");
    let started = Instant::now();
    let (mut reader, total_bytes): (Box<dyn BufRead>, Option<u64>) = if job.input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&job.input).with_context(|| format!("opening input {}", job.input.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::with_capacity(1 << 20, file)), len)
    };
    let mut writer: Box<dyn Write> = match &job.output {
        Some(path) => Box::new(BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path).with_context(|| format!("creating output {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let progress = progress_bar(job.progress, total_bytes);

    // Lines are read in windows that keep every core busy, scored in parallel batches, and
    // written in input order before the next window is read.
    let window = job.batch_size * rayon::current_num_threads() * 4;
    let mut collector = Collector::default();
    let mut line_no = 0usize;
    let mut bytes_read = 0u64;
    let mut buf = Vec::new();
    loop {
        let mut lines = Vec::with_capacity(window);
        while lines.len() < window {
            buf.clear();
            let Some(len) = read_line_capped(&mut reader, &mut buf, job.max_line_bytes)
                .with_context(|| format!("reading input {} after line {line_no}", job.input.display()))?
            else {
                break;
            };
            line_no += 1;
            bytes_read += len as u64;
            lines.push((line_no, decode_line(line_no, &buf, len, job.max_line_bytes)));
        }
        if lines.is_empty() {
            break;
        }
        let scored: Vec<Vec<(usize, Scored)>> =
            lines.into_par_iter().chunks(job.batch_size).map(|chunk| score_chunk(reward, chunk)).collect();
        for (line, s) in scored.into_iter().flatten() {
            serde_json::to_writer(&mut writer, &ScoredJson::from(&s)).context("writing output")?;
            writer.write_all(b"\n").context("writing output")?;
            collector.add(reward, line, &s);
        }
        progress.set_position(bytes_read);
        progress.set_message(format!("{line_no} rollouts"));
    }
    writer.flush().context("flushing output")?;
    progress.finish_and_clear();
    Ok(collector.finish(reward, line_no, started.elapsed()))
}

fn progress_bar(enabled: bool, total_bytes: Option<u64>) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    match total_bytes {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} (eta {eta})")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} {msg}").expect("valid template")),
    }
}

/// Parses and scores one batch of lines; lines that are not rollouts are rejected in place.
fn score_chunk(reward: &Reward, chunk: Vec<(usize, Line)>) -> Vec<(usize, Scored)> {
    let mut slots: Vec<(usize, Option<Scored>)> = Vec::with_capacity(chunk.len());
    let mut rollouts = Vec::with_capacity(chunk.len());
    let mut positions = Vec::with_capacity(chunk.len());
    for (line, text) in chunk {
        let fallback_id = format!("line-{line}");
        let parsed = match text {
            Line::Bad(f) => Err((fallback_id, f)),
            Line::Text(text) => parse_record(&text, &fallback_id).map_err(|Rejection { id, error }| {
                (id.unwrap_or(fallback_id), Failure::new(Status::InvalidInput, format!("line {line}: {error}")))
            }),
        };
        match parsed {
            Ok(rollout) => {
                positions.push(slots.len());
                slots.push((line, None));
                rollouts.push(rollout);
            }
            Err((id, failure)) => slots.push((line, Some(reward.reject(&id, failure)))),
        }
    }
    for (pos, scored) in positions.into_iter().zip(reward.score_batch(&rollouts)) {
        slots[pos].1 = Some(scored);
    }
    slots.into_iter().map(|(line, s)| (line, s.expect("every slot filled"))).collect()
}

fn decode_line(line: usize, buf: &[u8], len: usize, cap: usize) -> Line {
    if len > cap {
        return Line::Bad(Failure::new(
            Status::InvalidInput,
            format!("line {line}: {len} bytes, more than --max-line-bytes ({cap})"),
        ));
    }
    let trimmed = buf.strip_suffix(b"\n").unwrap_or(buf);
    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
    match std::str::from_utf8(trimmed) {
        Ok(s) if s.trim().is_empty() => Line::Bad(Failure::new(Status::InvalidInput, format!("line {line}: empty line"))),
        Ok(s) => Line::Text(s.to_owned()),
        Err(e) => Line::Bad(Failure::new(
            Status::InvalidInput,
            format!("line {line}: not valid UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        )),
    }
}

/// Reads one line into `buf`, keeping at most `cap + 1` bytes (the rest of a longer line is
/// skipped). Returns the line's full length, or `None` at the end of input.
fn read_line_capped(reader: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<usize>> {
    let mut total = 0usize;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if total == 0 { None } else { Some(total) });
        }
        let (chunk, done) = match memchr_newline(available) {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let keep = chunk.len().min((cap + 1).saturating_sub(buf.len()));
        buf.extend_from_slice(&chunk[..keep]);
        let used = chunk.len();
        total += used;
        reader.consume(used);
        if done {
            return Ok(Some(total));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Accumulates statuses and metric values for the summary.
#[derive(Default)]
struct Collector {
    statuses: BTreeMap<Status, usize>,
    values: BTreeMap<String, Vec<f64>>,
    scores: Vec<f64>,
    fatal: Option<String>,
}

impl Collector {
    fn add(&mut self, reward: &Reward, line: usize, s: &Scored) {
        *self.statuses.entry(s.status).or_default() += 1;
        if let Some(score) = s.score {
            self.scores.push(score);
        }
        for m in &s.metrics {
            match self.values.get_mut(&m.name) {
                Some(v) => v.push(m.value),
                None => {
                    self.values.insert(m.name.clone(), vec![m.value]);
                }
            }
        }
        if self.fatal.is_none() && reward.fatal(std::slice::from_ref(s)).is_some() {
            let error = s.error.as_deref().unwrap_or("failed");
            let prefix = format!("line {line}: ");
            self.fatal = Some(if error.starts_with(&prefix) { error.to_owned() } else { format!("{prefix}{error}") });
        }
    }

    fn finish(self, reward: &Reward, lines: usize, elapsed: Duration) -> Summary {
        let mut metrics = Vec::with_capacity(self.values.len() + 1);
        if let Some(s) = stats(self.scores) {
            metrics.push(("score".to_owned(), s));
        }
        for (name, values) in self.values {
            if let Some(s) = stats(values) {
                metrics.push((name, s));
            }
        }
        Summary { reward: reward.name.clone(), lines, statuses: self.statuses, metrics, elapsed, fatal: self.fatal }
    }
}

fn stats(mut values: Vec<f64>) -> Option<MetricStats> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some(MetricStats {
        count: values.len(),
        mean,
        std: var.sqrt(),
        min: values[0],
        p50: values[(values.len() - 1) / 2],
        max: values[values.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_reports_full_length_and_keeps_cap_plus_one() {
        let data = b"short\nthis line is long\nlast";
        let mut reader = std::io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line_capped(&mut reader, &mut buf, 8).unwrap(), Some(6));
        assert_eq!(buf, b"short\n");
        buf.clear();
        assert_eq!(read_line_capped(&mut reader, &mut buf, 8).unwrap(), Some(18));
        assert_eq!(buf.len(), 9);
        buf.clear();
        assert_eq!(read_line_capped(&mut reader, &mut buf, 8).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(read_line_capped(&mut reader, &mut buf, 8).unwrap(), None);
    }

    #[test]
    fn decode_rejects_bad_lines_with_their_number() {
        let bad = |l: Line| match l {
            Line::Bad(f) => f.message,
            Line::Text(t) => panic!("accepted {t:?}"),
        };
        assert!(bad(decode_line(3, b"\xff\xfe{}\n", 5, 100)).contains("line 3: not valid UTF-8 (invalid byte at offset 0)"));
        assert!(bad(decode_line(4, b"   \r\n", 5, 100)).contains("line 4: empty line"));
        assert!(bad(decode_line(5, b"{}", 500, 100)).contains("more than --max-line-bytes"));
        assert!(matches!(decode_line(6, b"{\"a\":1}\r\n", 9, 100), Line::Text(t) if t == "{\"a\":1}"));
    }

    #[test]
    fn stats_are_right() {
        let s = stats(vec![3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.count, s.min, s.p50, s.max), (4, 1.0, 2.0, 4.0));
        assert!((s.mean - 2.5).abs() < 1e-12);
        assert!((s.std - 1.25f64.sqrt()).abs() < 1e-12);
        assert!(stats(vec![]).is_none());
    }
}
