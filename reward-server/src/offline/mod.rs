//! Offline batch scoring: a JSONL file of rollouts in, one scored JSON line per input line out
//! (same order, same ids), on all cores, with a progress bar and a summary.
//!
//! A line that is not a rollout (bad JSON, not UTF-8, too long, wrong shape) is written as
//! `INVALID_INPUT` with its line number in the error; it never stops the run or shifts the output.
//!
//! An output file is never written in place: the lines go to `<output>.partial` in the same
//! directory, flushed as they are scored, and that file is renamed over the output once every line
//! is written. A run that dies leaves the partial file; [`ScoreJob::resume`] continues it after its
//! last complete line, checking that the lines it keeps answer the input's lines. Standard output,
//! pipes and devices are written as they go.
//!
//! A reward that scores whole GRPO groups gets every group whole: see [`groups`].

mod groups;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::Value;

use crate::engine::{Failure, Item, Metric, MetricKind, Reward, Scored, Status};
use crate::input::{Rejection, parse_record};
use crate::wire::ScoredJson;

/// Default rollouts per plugin batch: 64, the size of a typical RFT request.
pub const DEFAULT_BATCH_SIZE: usize = 64;
/// Default cap on one input line: 64 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;
/// What is appended to the output's file name to name the file a run writes before it is done.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// What to score and how.
#[derive(Clone, Debug)]
pub struct ScoreJob {
    /// The input JSONL file; `-` reads standard input.
    pub input: PathBuf,
    /// The output JSONL file; `None` or `-` writes standard output. A regular file is written to
    /// its [partial file](partial_path) and renamed over it at the end; standard output, pipes,
    /// devices and names of open descriptors (`/dev/stdout`, `/dev/fd/N`) are written as they go.
    pub output: Option<PathBuf>,
    /// Continue the partial file of an earlier run that stopped: keep its complete lines (after
    /// checking each one's id and provenance against the input line and the reward), score the
    /// rest. Without a partial file the run starts from the first line. Needs an output file.
    pub resume: bool,
    /// Rollouts per plugin batch.
    pub batch_size: usize,
    /// Longest accepted line, in bytes.
    pub max_line_bytes: usize,
    /// Show a progress bar (only drawn on a terminal).
    pub progress: bool,
}

/// Why a run stopped, by what the caller can do about it. Each kind has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The job asks for something that cannot be done safely: the output is the input, a partial
    /// file exists and `resume` is off, `resume` without an output file, `batch_size` 0.
    #[error("{0:#}")]
    Usage(anyhow::Error),
    /// `resume`: the partial file is not an earlier run of this input with this reward (an id or
    /// provenance differs, a line is not a scored line, it has more lines than the input).
    #[error("{0:#}")]
    Data(anyhow::Error),
    /// Reading the input or the partial file, or writing, syncing or renaming the output, failed.
    #[error("{error:#}{}", kept_note(.kept.as_deref()))]
    Io {
        /// What failed.
        error: anyhow::Error,
        /// The partial file that keeps the lines written so far, if there is one.
        kept: Option<PathBuf>,
    },
}

fn kept_note(kept: Option<&Path>) -> String {
    match kept {
        Some(p) => format!("\nthe lines written so far are kept in {}: run the same command with --resume to continue", p.display()),
        None => String::new(),
    }
}

/// Where an output file is written until the run is done: `<dir>/<name>.partial`, next to it so
/// the final rename stays on one filesystem (and is atomic).
pub fn partial_path(output: &Path) -> Option<PathBuf> {
    let mut name = output.file_name()?.to_owned();
    name.push(PARTIAL_SUFFIX);
    Some(output.with_file_name(name))
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
    /// Lines read (= lines written), counting the ones kept from a partial file.
    pub lines: usize,
    /// Of `lines`, how many were kept from the partial file of an earlier run (`resume`).
    pub kept: usize,
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
    /// Rollouts scored per second (lines kept from a partial file are not counted).
    pub fn throughput(&self) -> f64 {
        (self.lines - self.kept) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The summary as a table for humans.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let kept = if self.kept > 0 {
            format!(" ({} kept from the partial output, {} scored)", self.kept, self.lines - self.kept)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "reward `{}`: {} rollouts{kept} in {:.2} s ({:.0} rollouts/s)",
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
#[derive(Debug)]
enum Line {
    Text(String),
    Bad(Failure),
}

/// Scores `job.input` with `reward`, writing one line per input line.
///
/// Lines are grouped into batches by line number (lines 1..=B, B+1..=2B, ...), so a resumed run
/// scores every line in the same batch as an uninterrupted one and reports the same instructions.
pub fn run(reward: &Reward, job: &ScoreJob) -> Result<Summary, RunError> {
    if job.batch_size == 0 {
        return Err(RunError::Usage(anyhow!("--batch-size must be at least 1")));
    }
    if job.resume && reward.groups() {
        // The lines kept from the partial file may end inside a group, which would be scored short.
        return Err(RunError::Usage(anyhow!(
            "--resume is not supported for reward `{}`, which scores whole groups (an interrupted run may have cut a group); remove the partial file and run again",
            reward.name
        )));
    }
    let started = Instant::now();
    let mut input = Input::open(&job.input)?;
    let mut output = Output::open(job, &input)?;
    let progress = progress_bar(job.progress, input.len);
    let mut collector = Collector::default();
    let mut at = Position::default();
    if let Some(partial) = output.resumable.take() {
        at = keep_partial(reward, job, &mut input, partial, &output, &mut collector)?;
        progress.set_position(at.bytes);
    }
    let kept = at.line;

    // Lines are read in windows that keep every core busy (window edges fall on multiples of the
    // window, and batch edges on multiples of the batch size), scored in parallel batches, written
    // in input order and flushed before the next window is read: a run that is killed leaves at
    // least the windows before the last one for --resume (and perhaps part of a line, dropped).
    // For a reward that scores groups, batches and windows end where a group does instead.
    let window = job.batch_size * rayon::current_num_threads() * 4;
    let mut grouper = reward.groups().then(groups::Grouper::default);
    let mut buf = Vec::new();
    loop {
        let mut batches: Vec<groups::Batch> = Vec::new();
        if let Some(g) = &mut grouper {
            g.take_carry(&mut batches, job.batch_size);
        }
        let mut read = batches.iter().map(Vec::len).sum::<usize>();
        while let Some(line) = input.next_line(&mut buf, job.max_line_bytes, &mut at).map_err(|e| output.io(e))? {
            read += 1;
            let Some(g) = &mut grouper else {
                match batches.last_mut() {
                    Some(batch) if (at.line - 1) % job.batch_size != 0 => batch.push((at.line, line)),
                    _ => batches.push(vec![(at.line, line)]),
                }
                if at.line % window == 0 {
                    break;
                }
                continue;
            };
            let line = match read > window {
                true => match g.ends_window_before(at.line, line) {
                    Some(line) => line,
                    None => break,
                },
                false => line,
            };
            g.place(&mut batches, at.line, line, job.batch_size);
        }
        if batches.is_empty() {
            break;
        }
        let scored: Vec<Vec<(usize, Scored)>> = batches.into_par_iter().map(|batch| score_chunk(reward, batch)).collect();
        for (line, s) in scored.into_iter().flatten() {
            output.write(&s).map_err(|e| output.io(e))?;
            collector.add(reward, line, &s);
        }
        output.flush().map_err(|e| output.io(e))?;
        progress.set_position(at.bytes);
        progress.set_message(format!("{} rollouts", at.line));
    }
    output.finish()?;
    progress.finish_and_clear();
    Ok(collector.finish(reward, at.line, kept, started.elapsed()))
}

/// How far the input has been read.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    /// Lines read.
    line: usize,
    /// Bytes read.
    bytes: u64,
}

/// A regular file's identity: the same (device, inode) is the same file, whatever the path
/// (a symbolic or hard link, `./x` or `x`). `None` for pipes, terminals and devices, which a run
/// cannot empty, and off Unix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(meta: &Metadata) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        meta.is_file().then(|| FileId(meta.dev(), meta.ino()))
    }

    #[cfg(not(unix))]
    fn of(_meta: &Metadata) -> Option<FileId> {
        None
    }

    /// The file at `path` (following symbolic links), if it exists and is a regular file.
    fn at(path: &Path) -> Option<FileId> {
        std::fs::metadata(path).ok().as_ref().and_then(FileId::of)
    }

    /// The file behind standard input or output, if it is a regular file.
    #[cfg(unix)]
    fn of_fd(fd: std::os::fd::BorrowedFd<'_>) -> Option<FileId> {
        let file = File::from(fd.try_clone_to_owned().ok()?);
        FileId::of(&file.metadata().ok()?)
    }
}

/// The input, open.
struct Input {
    path: PathBuf,
    reader: Box<dyn BufRead>,
    /// Its size, for the progress bar.
    len: Option<u64>,
    id: Option<FileId>,
}

impl Input {
    fn open(path: &Path) -> Result<Input, RunError> {
        if path.as_os_str() == "-" {
            #[cfg(unix)]
            let id = FileId::of_fd(std::os::fd::AsFd::as_fd(&std::io::stdin()));
            #[cfg(not(unix))]
            let id = None;
            return Ok(Input { path: path.to_owned(), reader: Box::new(std::io::stdin().lock()), len: None, id });
        }
        let file = File::open(path)
            .with_context(|| format!("opening input {}", path.display()))
            .map_err(|error| RunError::Io { error, kept: None })?;
        let meta = file.metadata().ok();
        Ok(Input {
            path: path.to_owned(),
            reader: Box::new(BufReader::with_capacity(1 << 20, file)),
            len: meta.as_ref().map(|m| m.len()),
            id: meta.as_ref().and_then(FileId::of),
        })
    }

    /// Reads and decodes the next line, advancing `at`; `None` at the end of the input.
    fn next_line(&mut self, buf: &mut Vec<u8>, cap: usize, at: &mut Position) -> anyhow::Result<Option<Line>> {
        buf.clear();
        let Some(len) = read_line_capped(&mut self.reader, buf, cap)
            .with_context(|| format!("reading input {} after line {}", self.path.display(), at.line))?
        else {
            return Ok(None);
        };
        at.line += 1;
        at.bytes += len as u64;
        Ok(Some(decode_line(at.line, buf, len, cap)))
    }
}

/// The output, open.
struct Output {
    writer: BufWriter<Box<dyn Write>>,
    /// Where the lines go when the output is a file.
    file: Option<PartialFile>,
    /// The partial file of an earlier run, to keep (`resume`), open for reading.
    resumable: Option<File>,
}

/// A partial file being written, and the output it is renamed over.
struct PartialFile {
    /// Open and locked for the whole run.
    file: File,
    path: PathBuf,
    target: PathBuf,
}

impl Output {
    fn open(job: &ScoreJob, input: &Input) -> Result<Output, RunError> {
        let usage = |msg: String| Err(RunError::Usage(anyhow!(msg)));
        let io = |error: std::io::Error, what: String| RunError::Io { error: anyhow::Error::new(error).context(what), kept: None };
        let same = |id: Option<FileId>| input.id.is_some() && id == input.id;
        let path = job.output.as_deref().filter(|p| p.as_os_str() != "-");
        let Some(path) = path.filter(|p| !is_stream(p)) else {
            if job.resume {
                return usage(
                    "--resume needs an --output file (standard output, pipes and devices have no partial file to continue)".into(),
                );
            }
            let (writer, id, name): (Box<dyn Write>, _, _) = match path {
                None => {
                    #[cfg(unix)]
                    let id = FileId::of_fd(std::os::fd::AsFd::as_fd(&std::io::stdout()));
                    #[cfg(not(unix))]
                    let id = None;
                    (Box::new(std::io::stdout().lock()), id, "standard output".to_owned())
                }
                Some(p) => {
                    // Appending: `/dev/stdout` redirected with `>>` to a file keeps what it holds.
                    let file = OpenOptions::new().append(true).open(p).map_err(|e| io(e, format!("opening output {}", p.display())))?;
                    let id = file.metadata().ok().as_ref().and_then(FileId::of);
                    (Box::new(file), id, format!("--output {}", p.display()))
                }
            };
            if same(id) {
                return usage(format!("{name} is the same file as --input {}: refusing to overwrite the input", input.path.display()));
            }
            return Ok(Output { writer: BufWriter::with_capacity(1 << 20, writer), file: None, resumable: None });
        };

        // A symbolic link as the output: write (and rename over) the file it points to.
        let target = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()),
            _ => path.to_owned(),
        };
        if target.is_dir() {
            return usage(format!("--output {} is a directory", path.display()));
        }
        let Some(partial) = partial_path(&target) else {
            return usage(format!("--output {} does not name a file", path.display()));
        };
        if same(FileId::at(&target)) {
            return usage(format!(
                "--output {} is the same file as --input {}: refusing to overwrite the input",
                path.display(),
                input.path.display()
            ));
        }
        if same(FileId::at(&partial)) {
            return usage(format!(
                "--input {} is {}, the partial file of --output {}: score another copy of it",
                input.path.display(),
                partial.display(),
                path.display()
            ));
        }
        let (file, resumable) = if job.resume && partial.exists() {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&partial)
                .map_err(|e| io(e, format!("opening partial output {}", partial.display())))?;
            let reader = file.try_clone().map_err(|e| io(e, format!("opening partial output {}", partial.display())))?;
            (file, Some(reader))
        } else {
            match OpenOptions::new().write(true).create_new(true).open(&partial) {
                Ok(file) => (file, None),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let busy = File::open(&partial).is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
                    if busy {
                        return usage(format!("{} is being written by another run", partial.display()));
                    }
                    return usage(format!(
                        "{} exists: an earlier run stopped before it finished; pass --resume to continue it, or remove it to start over",
                        partial.display()
                    ));
                }
                Err(e) => return Err(io(e, format!("creating partial output {}", partial.display()))),
            }
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return usage(format!("{} is being written by another run", partial.display()));
            }
            // Some filesystems (NFS without a lock daemon) have no locks: run without.
            Err(std::fs::TryLockError::Error(e)) => tracing::warn!("cannot lock {}: {e}", partial.display()),
        }
        let writer = file.try_clone().map_err(|e| io(e, format!("opening partial output {}", partial.display())))?;
        Ok(Output {
            writer: BufWriter::with_capacity(1 << 20, Box::new(writer)),
            file: Some(PartialFile { file, path: partial, target }),
            resumable,
        })
    }

    fn write(&mut self, s: &Scored) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.writer, &ScoredJson::from(s)).with_context(|| format!("writing {}", self.name()))?;
        self.writer.write_all(b"\n").with_context(|| format!("writing {}", self.name()))
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.writer.flush().with_context(|| format!("writing {}", self.name()))
    }

    fn name(&self) -> String {
        match &self.file {
            Some(p) => format!("partial output {}", p.path.display()),
            None => "output".to_owned(),
        }
    }

    /// An I/O error, with where the lines written so far are kept.
    fn io(&self, error: anyhow::Error) -> RunError {
        RunError::Io { error, kept: self.file.as_ref().map(|p| p.path.clone()) }
    }

    /// Flushes, and renames a partial file over the output: synced first, so the output is never
    /// a file whose lines are not on disk yet.
    fn finish(mut self) -> Result<(), RunError> {
        self.flush().map_err(|e| self.io(e))?;
        let Some(PartialFile { file, path: partial, target }) = &self.file else {
            return Ok(());
        };
        file.sync_all().with_context(|| format!("syncing {}", partial.display())).map_err(|e| self.io(e))?;
        std::fs::rename(partial, target)
            .with_context(|| format!("renaming {} to {}", partial.display(), target.display()))
            .map_err(|e| self.io(e))?;
        // Best effort: make the rename itself durable.
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Whether an output path names a stream (written as it goes) rather than a file to replace:
/// a pipe, a terminal, a device, or a name for an open descriptor (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`: a regular file when standard output is redirected to one, which a rename
/// must not replace).
fn is_stream(path: &Path) -> bool {
    let fd_alias = path == Path::new("/dev/stdout")
        || path == Path::new("/dev/stderr")
        || path.starts_with("/dev/fd")
        || (path.starts_with("/proc") && path.components().any(|c| c.as_os_str() == "fd"));
    fd_alias || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Longest line accepted in a partial file: a scored line is far shorter than its input line
/// could be, so this only stops a file that is not a partial output from being read into memory.
fn partial_line_cap(job: &ScoreJob) -> usize {
    job.max_line_bytes.max(DEFAULT_MAX_LINE_BYTES)
}

/// `resume`: reads the partial file's complete lines, checks each against the next input line
/// (the same id) and the reward (the same provenance), counts it into the summary, and cuts off
/// the line a kill left unfinished. Returns where the input now stands.
fn keep_partial(
    reward: &Reward,
    job: &ScoreJob,
    input: &mut Input,
    partial: File,
    output: &Output,
    collector: &mut Collector,
) -> Result<Position, RunError> {
    let partial_path = &output.file.as_ref().expect("resume writes a partial file").path;
    let data = |msg: String| {
        RunError::Data(anyhow!(
            "--resume: {msg}; the partial output is not an earlier run of this input with this reward (remove {} to start over)",
            partial_path.display()
        ))
    };
    let provenance = serde_json::to_value(&*reward.provenance).expect("provenance serializes");
    let cap = partial_line_cap(job);
    let mut reader = BufReader::with_capacity(1 << 20, &partial);
    let mut at = Position::default();
    let mut kept_bytes = 0u64;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        out.clear();
        let len = read_line_capped(&mut reader, &mut out, cap)
            .with_context(|| format!("reading partial output {} after line {}", partial_path.display(), at.line))
            .map_err(|e| output.io(e))?;
        let Some(len) = len else { break };
        let n = at.line + 1;
        if len > cap {
            return Err(data(format!("line {n} of {} is longer than {cap} bytes", partial_path.display())));
        }
        if out.last() != Some(&b'\n') {
            break; // the line a kill cut short: it is scored again
        }
        let Some(line) = input.next_line(&mut buf, job.max_line_bytes, &mut at).map_err(|e| output.io(e))? else {
            return Err(data(format!("it has more lines than --input {} ({})", input.path.display(), at.line)));
        };
        let scored = kept_line(reward, &out[..out.len() - 1], &provenance)
            .map_err(|e| data(format!("line {n} of {} is not a scored line of this reward: {e}", partial_path.display())))?;
        let want = line_id(n, line);
        if scored.id != want {
            return Err(data(format!(
                "line {n} of {} has id {:?} but line {n} of --input {} has id {want:?}",
                partial_path.display(),
                scored.id,
                input.path.display()
            )));
        }
        collector.add(reward, n, &scored);
        kept_bytes += len as u64;
    }
    partial
        .set_len(kept_bytes)
        .with_context(|| format!("cutting the unfinished last line off {}", partial_path.display()))
        .map_err(|e| output.io(e))?;
    Ok(at)
}

/// A line of a partial file as the [`Scored`] it was written from, as far as the summary needs
/// (metric kinds are not written, and not needed), if its provenance is `provenance`.
fn kept_line(reward: &Reward, text: &[u8], provenance: &Value) -> anyhow::Result<Scored> {
    let v: Value = serde_json::from_slice(text).context("not valid JSON")?;
    let field = |name: &str| v.get(name).ok_or_else(|| anyhow!("no `{name}`"));
    if field("provenance")? != provenance {
        anyhow::bail!("it was scored with provenance {}, this reward is {provenance}", v["provenance"]);
    }
    let id = field("id")?.as_str().ok_or_else(|| anyhow!("`id` is not a string"))?.to_owned();
    let status = field("status")?
        .as_str()
        .and_then(|s| Status::ALL.into_iter().find(|status| status.as_str() == s))
        .ok_or_else(|| anyhow!("unknown `status` {}", v["status"]))?;
    let score = match field("score")? {
        Value::Null => None,
        s => Some(s.as_f64().ok_or_else(|| anyhow!("`score` is not a number"))?),
    };
    let metrics = field("metrics")?
        .as_object()
        .ok_or_else(|| anyhow!("`metrics` is not an object"))?
        .iter()
        .map(|(name, value)| {
            let value = value.as_f64().ok_or_else(|| anyhow!("metric `{name}` is not a number"))?;
            Ok(Metric { name: name.clone(), value, kind: MetricKind::Metric })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let text_of = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(Scored {
        id,
        score,
        status,
        metrics,
        reason: text_of("reason"),
        error: text_of("error"),
        instructions: v["instructions"].as_u64().unwrap_or(0),
        latency: Duration::from_micros(v["latency_us"].as_u64().unwrap_or(0)),
        provenance: Arc::clone(&reward.provenance),
        cached: false,
    })
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

/// A line as a request item: its rollout, or the id it is answered with and why it is rejected.
fn parse_line(line: usize, text: Line) -> Item {
    let fallback_id = format!("line-{line}");
    match text {
        Line::Bad(failure) => Item::Rejected { id: fallback_id, failure },
        Line::Text(text) => match parse_record(&text, &fallback_id) {
            Ok(rollout) => Item::Rollout(rollout),
            Err(Rejection { id, error }) => Item::invalid(id.unwrap_or(fallback_id), format!("line {line}: {error}")),
        },
    }
}

/// The id a line is answered with: its own, or `line-N`.
fn line_id(line: usize, text: Line) -> String {
    match parse_line(line, text) {
        Item::Rollout(rollout) => rollout.id,
        Item::Rejected { id, .. } => id,
    }
}

/// Parses and scores one batch of lines; lines that are not rollouts are rejected in place.
fn score_chunk(reward: &Reward, chunk: Vec<(usize, Line)>) -> Vec<(usize, Scored)> {
    let (lines, items): (Vec<usize>, Vec<Item>) = chunk.into_iter().map(|(line, text)| (line, parse_line(line, text))).unzip();
    lines.into_iter().zip(reward.score_items(items, &|| false)).collect()
}

fn decode_line(line: usize, buf: &[u8], len: usize, cap: usize) -> Line {
    if len > cap {
        return Line::Bad(Failure::new(Status::InvalidInput, format!("line {line}: {len} bytes, more than --max-line-bytes ({cap})")));
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

    fn finish(self, reward: &Reward, lines: usize, kept: usize, elapsed: Duration) -> Summary {
        let mut metrics = Vec::with_capacity(self.values.len() + 1);
        if let Some(s) = stats(self.scores) {
            metrics.push(("score".to_owned(), s));
        }
        for (name, values) in self.values {
            if let Some(s) = stats(values) {
                metrics.push((name, s));
            }
        }
        Summary { reward: reward.name.clone(), lines, kept, statuses: self.statuses, metrics, elapsed, fatal: self.fatal }
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
    fn the_partial_file_sits_next_to_the_output() {
        assert_eq!(partial_path(Path::new("runs/out.jsonl")), Some(PathBuf::from("runs/out.jsonl.partial")));
        assert_eq!(partial_path(Path::new("out.jsonl")), Some(PathBuf::from("out.jsonl.partial")));
        assert_eq!(partial_path(Path::new("/")), None);
    }

    #[test]
    fn descriptor_names_are_streams_and_files_are_not() {
        for p in ["/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/1", "/dev/null"] {
            assert!(is_stream(Path::new(p)), "{p}");
        }
        for p in ["/dev/shm/out.jsonl", "/tmp/no-such-dir/out.jsonl", "out.jsonl"] {
            assert!(!is_stream(Path::new(p)), "{p}");
        }
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
