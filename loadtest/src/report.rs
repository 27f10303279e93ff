//! What a run measured: counts, errors by kind, HDR latency histograms; printed as a table and
//! written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::door::Outcome;

/// Highest latency the histograms hold: one hour (longer values are clamped to it).
const MAX_LATENCY_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Collects outcomes from every caller.
pub struct Recorder {
    inner: Mutex<Counts>,
    batch: u64,
}

struct Counts {
    sent: u64,
    ok: u64,
    unsent: u64,
    errors: BTreeMap<String, u64>,
    rollout_statuses: BTreeMap<String, u64>,
    /// Latency of OK calls from the intended send time (open loop, RFT bursts) or from the send
    /// (closed loop).
    latency: Histogram<u64>,
    /// Latency of OK calls from the moment they were actually sent.
    service: Histogram<u64>,
    /// RFT: time from a step's burst to its last answer.
    steps: Histogram<u64>,
}

/// Live numbers for the progress line.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Calls sent.
    pub sent: u64,
    /// Calls answered OK.
    pub ok: u64,
    /// Calls failed.
    pub errors: u64,
    /// p99 of the latency so far, in microseconds.
    pub p99_us: u64,
}

impl Recorder {
    /// An empty recorder for calls of `batch` rollouts.
    pub fn new(batch: usize) -> Recorder {
        Recorder {
            inner: Mutex::new(Counts {
                sent: 0,
                ok: 0,
                unsent: 0,
                errors: BTreeMap::new(),
                rollout_statuses: BTreeMap::new(),
                latency: histogram(),
                service: histogram(),
                steps: histogram(),
            }),
            batch: batch as u64,
        }
    }

    /// Records one call: `latency` from its intended send time, `service` from its real one.
    pub fn record(&self, outcome: Outcome, latency: Duration, service: Duration) {
        let mut c = self.inner.lock().unwrap();
        c.sent += 1;
        match outcome {
            Outcome::Ok { statuses } => {
                c.ok += 1;
                c.latency.saturating_record(micros(latency));
                c.service.saturating_record(micros(service));
                for (s, n) in statuses {
                    *c.rollout_statuses.entry(s).or_insert(0) += n;
                }
            }
            Outcome::Err(kind) => *c.errors.entry(kind).or_insert(0) += 1,
        }
    }

    /// Records a call that was due but never sent before the run ended.
    pub fn record_unsent(&self) {
        self.inner.lock().unwrap().unsent += 1;
    }

    /// Records an RFT step's makespan.
    pub fn record_step(&self, took: Duration) {
        self.inner.lock().unwrap().steps.saturating_record(micros(took));
    }

    /// The numbers so far.
    pub fn snapshot(&self) -> Snapshot {
        let c = self.inner.lock().unwrap();
        Snapshot { sent: c.sent, ok: c.ok, errors: c.sent - c.ok, p99_us: c.latency.value_at_quantile(0.99) }
    }

    /// The final report; `elapsed` is the measured wall time.
    pub fn report(&self, run: RunInfo, elapsed: Duration) -> Report {
        let c = self.inner.lock().unwrap();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rollouts_failed: u64 = c.rollout_statuses.values().sum();
        Report {
            run,
            elapsed_s: round3(secs),
            requests: Requests { sent: c.sent, ok: c.ok, errors: c.sent - c.ok, unsent: c.unsent },
            errors: c.errors.clone(),
            rollouts: Rollouts {
                sent: c.sent * self.batch,
                answered: c.ok * self.batch,
                scored_ok: c.ok * self.batch - rollouts_failed,
                not_ok_by_status: c.rollout_statuses.clone(),
            },
            throughput: Throughput {
                requests_per_s: round3(c.ok as f64 / secs),
                rollouts_per_s: round3((c.ok * self.batch) as f64 / secs),
            },
            latency_ms: Percentiles::of(&c.latency),
            service_time_ms: Percentiles::of(&c.service),
            step_ms: (!c.steps.is_empty()).then(|| Percentiles::of(&c.steps)),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_US)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// How the run was set up, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// `closed`, `open` or `rft`.
    pub mode: &'static str,
    /// The door.
    pub target: crate::door::Target,
    /// Where.
    pub addr: String,
    /// The reward.
    pub reward: String,
    /// The corpus kind.
    pub corpus: crate::corpus::Kind,
    /// The corpus seed.
    pub seed: u64,
    /// Rollouts per call.
    pub batch: usize,
    /// Closed loop: callers; open loop: the cap on calls in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Open loop: calls per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Open loop: Poisson arrivals rather than evenly spaced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub poisson: bool,
    /// RFT mode's shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rft: Option<RftShape>,
}

/// An RFT step's traffic shape.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RftShape {
    /// Prompts per step.
    pub global_batch_size: usize,
    /// Completions per prompt.
    pub number_generation: usize,
    /// Rollout workers sending.
    pub workers: usize,
    /// Calls in flight per worker, at most.
    pub in_flight: usize,
    /// Steps run.
    pub steps: usize,
}

/// The result of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The setup.
    pub run: RunInfo,
    /// Wall time from the first call to the last answer.
    pub elapsed_s: f64,
    /// Calls.
    pub requests: Requests,
    /// Failed calls by kind.
    pub errors: BTreeMap<String, u64>,
    /// Rollouts.
    pub rollouts: Rollouts,
    /// Answered calls and rollouts per second.
    pub throughput: Throughput,
    /// OK calls, from the intended send time: open loop and RFT bursts count the wait for a free
    /// slot (corrected for coordinated omission); closed loop equals the service time.
    pub latency_ms: Percentiles,
    /// OK calls, from the actual send.
    pub service_time_ms: Percentiles,
    /// RFT: time from a step's burst to its last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_ms: Option<Percentiles>,
}

/// Call counts; `sent = ok + errors`.
#[derive(Debug, Serialize)]
pub struct Requests {
    /// Calls sent (answered or failed).
    pub sent: u64,
    /// Answered with one result per rollout.
    pub ok: u64,
    /// Failed (see `errors`).
    pub errors: u64,
    /// Open loop: due, but not sent before the run's drain time ran out.
    pub unsent: u64,
}

/// Rollout counts; `sent = requests.sent x batch`, `answered = requests.ok x batch`.
#[derive(Debug, Serialize)]
pub struct Rollouts {
    /// In calls sent.
    pub sent: u64,
    /// In calls answered.
    pub answered: u64,
    /// Answered with status OK.
    pub scored_ok: u64,
    /// Answered with another status.
    pub not_ok_by_status: BTreeMap<String, u64>,
}

/// Per second.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// OK calls per second.
    pub requests_per_s: f64,
    /// Rollouts in OK calls per second.
    pub rollouts_per_s: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Percentiles {
            count: h.len(),
            mean: round3(h.mean() / 1000.0),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

impl Report {
    /// A human-readable table.
    pub fn table(&self) -> String {
        let r = &self.run;
        let mut out = String::new();
        let shape = match (r.mode, r.rate, r.rft) {
            ("rft", _, Some(s)) => format!(
                "rft: {} prompts x {} generations, {} workers x {} in flight, {} steps",
                s.global_batch_size, s.number_generation, s.workers, s.in_flight, s.steps
            ),
            ("open", Some(rate), _) => format!(
                "open loop: {rate}/s {}, at most {} in flight",
                if r.poisson { "Poisson" } else { "evenly spaced" },
                r.concurrency.unwrap_or(0)
            ),
            _ => format!("closed loop: {} callers", r.concurrency.unwrap_or(0)),
        };
        let _ = writeln!(out, "{:?} {} reward={} batch={} corpus={:?} seed={}", r.target, r.addr, r.reward, r.batch, r.corpus, r.seed);
        let _ = writeln!(out, "{shape}; {:.2} s", self.elapsed_s);
        let q = &self.requests;
        let _ = writeln!(
            out,
            "requests  sent {}  ok {}  errors {}{}",
            q.sent,
            q.ok,
            q.errors,
            if q.unsent > 0 { format!("  unsent {}", q.unsent) } else { String::new() }
        );
        for (k, n) in &self.errors {
            let _ = writeln!(out, "  error {k}: {n}");
        }
        let ro = &self.rollouts;
        let _ = writeln!(out, "rollouts  sent {}  answered {}  scored OK {}", ro.sent, ro.answered, ro.scored_ok);
        for (k, n) in &ro.not_ok_by_status {
            let _ = writeln!(out, "  status {k}: {n}");
        }
        let _ =
            writeln!(out, "throughput  {:.1} requests/s  {:.0} rollouts/s", self.throughput.requests_per_s, self.throughput.rollouts_per_s);
        let _ = writeln!(out, "{:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}", "latency (ms)", "p50", "p90", "p99", "p99.9", "max", "mean");
        let mut row = |name: &str, p: &Percentiles| {
            let _ = writeln!(out, "{name:<22}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}", p.p50, p.p90, p.p99, p.p999, p.max, p.mean);
        };
        let first = match r.mode {
            "closed" => "per call",
            "open" => "from intended send",
            _ => "from step burst",
        };
        row(first, &self.latency_ms);
        row("service time", &self.service_time_ms);
        if let Some(s) = &self.step_ms {
            row("step (burst->last)", s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            mode: "closed",
            target: crate::door::Target::Lambda,
            addr: "x".into(),
            reward: "math".into(),
            corpus: crate::corpus::Kind::Format,
            seed: 1,
            batch: 4,
            concurrency: Some(1),
            rate: None,
            poisson: false,
            rft: None,
        }
    }

    #[test]
    fn counts_add_up_and_percentiles_come_from_ok_calls_only() {
        let r = Recorder::new(4);
        for i in 1..=100u64 {
            r.record(Outcome::Ok { statuses: BTreeMap::new() }, Duration::from_millis(i), Duration::from_millis(1));
        }
        r.record(Outcome::Ok { statuses: [("TIMEOUT".to_owned(), 3)].into() }, Duration::from_millis(1), Duration::from_millis(1));
        r.record(Outcome::Err("http_429_overloaded".into()), Duration::from_secs(100), Duration::from_secs(100));
        let rep = r.report(info(), Duration::from_secs(1));
        assert_eq!((rep.requests.sent, rep.requests.ok, rep.requests.errors), (102, 101, 1));
        assert_eq!(rep.errors["http_429_overloaded"], 1);
        assert_eq!((rep.rollouts.sent, rep.rollouts.answered, rep.rollouts.scored_ok), (408, 404, 401));
        assert!((rep.latency_ms.p50 - 50.0).abs() < 1.0, "{:?}", rep.latency_ms);
        assert!((rep.latency_ms.max - 100.0).abs() < 0.2, "{:?}", rep.latency_ms);
        assert!(rep.service_time_ms.max < 1.1);
        let json = serde_json::to_value(&rep).unwrap();
        assert!(json["latency_ms"]["p99.9"].is_number());
        assert!(rep.table().contains("error http_429_overloaded: 1"));
    }
}
