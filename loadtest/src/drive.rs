//! The three load shapes: closed loop (N callers, each waits for its answer before the next
//! call), open loop (calls due at a fixed or Poisson rate, latency counted from when each was due)
//! and RFT steps (bursts of `global_batch_size x number_generation` rollouts from K rollout
//! workers with a bounded number of calls in flight each).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::sleep_until;

use crate::corpus::Rng;
use crate::door::Door;
use crate::report::{Recorder, RftShape};

/// When a run stops: whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Stop {
    /// No call starts after this.
    pub end: Instant,
    /// At most this many calls.
    pub max_requests: Option<u64>,
}

/// N callers, each sending its next call as soon as its last one is answered. The latency of a
/// call is its service time: a closed loop cannot see the calls it did not send while waiting
/// (coordinated omission), which is what the open loop is for.
pub async fn closed(door: Arc<Door>, rec: Arc<Recorder>, callers: usize, stop: Stop) {
    let claimed = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..callers.max(1) {
        let (door, rec, claimed) = (door.clone(), rec.clone(), claimed.clone());
        set.spawn(async move {
            loop {
                if Instant::now() >= stop.end {
                    break;
                }
                if stop.max_requests.is_some_and(|max| claimed.fetch_add(1, Ordering::Relaxed) >= max) {
                    break;
                }
                let sent = Instant::now();
                let outcome = door.call().await;
                let took = sent.elapsed();
                rec.record(outcome, took, took);
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// Open-loop arrivals.
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    /// Calls per second.
    pub rate: f64,
    /// Exponential gaps (a Poisson process) instead of even spacing.
    pub poisson: bool,
    /// Seed of the gaps.
    pub seed: u64,
    /// At most this many calls in flight (connections); a due call waits for a free slot, and
    /// that wait counts in its latency.
    pub max_in_flight: usize,
    /// After `stop.end`, calls still waiting for a slot get this long before they are counted as
    /// unsent.
    pub drain: Duration,
}

/// Calls due at `arrivals.rate` whatever the answers do. Each call's latency runs from the moment
/// it was due, so a slow server cannot hide its queue by slowing the sender down (corrected for
/// coordinated omission, as wrk2 does); the service time from the real send is recorded too.
pub async fn open(door: Arc<Door>, rec: Arc<Recorder>, arrivals: Arrivals, stop: Stop) {
    // Paced on a thread of its own: tokio's timer rounds every deadline up to its next
    // millisecond, which would add up to a millisecond of the generator's own lateness to every
    // latency; a thread's sleep wakes within tens of microseconds of the due time.
    let runtime = tokio::runtime::Handle::current();
    let calls = tokio::task::spawn_blocking(move || pace(&runtime, door, rec, arrivals, stop)).await.expect("the open-loop pacer panicked");
    for call in calls {
        let _ = call.await;
    }
}

/// The open loop's pacer: sleeps until each call is due and starts it on `runtime`. Returns the
/// calls still running.
fn pace(runtime: &tokio::runtime::Handle, door: Arc<Door>, rec: Arc<Recorder>, arrivals: Arrivals, stop: Stop) -> Vec<JoinHandle<()>> {
    let slots = Arc::new(Semaphore::new(arrivals.max_in_flight.max(1)));
    let mut rng = Rng::new(arrivals.seed ^ 0x5DEE_CE66_D1CE_4E5B);
    let mean_gap = 1.0 / arrivals.rate;
    let start = Instant::now();
    let give_up = stop.end + arrivals.drain;
    let mut offset = 0.0f64;
    let mut issued = 0u64;
    let mut calls = Vec::new();
    loop {
        if stop.max_requests.is_some_and(|max| issued >= max) {
            break;
        }
        let due = start + Duration::from_secs_f64(offset);
        if due >= stop.end {
            break;
        }
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let (door, rec, slots) = (door.clone(), rec.clone(), slots.clone());
        calls.push(runtime.spawn(async move {
            let permit = tokio::select! {
                p = slots.acquire_owned() => p.expect("the semaphore is never closed"),
                _ = sleep_until(give_up.into()) => {
                    rec.record_unsent();
                    return;
                }
            };
            let sent = Instant::now();
            let outcome = door.call().await;
            let done = Instant::now();
            drop(permit);
            rec.record(outcome, done - due, done - sent);
        }));
        issued += 1;
        // Drop finished calls now and then so a long run does not hold them all.
        if issued.is_multiple_of(256) {
            calls.retain(|c| !c.is_finished());
        }
        offset += if arrivals.poisson { rng.exponential(mean_gap) } else { mean_gap };
    }
    calls
}

/// RFT steps: each step wants `global_batch_size x number_generation` rollouts scored at once.
/// They are cut into calls of the door's batch and dealt round-robin to `workers` rollout workers,
/// each with at most `in_flight` calls outstanding. A call's latency runs from the step's burst
/// (when the trainer wanted every reward); the step's makespan is recorded separately. The next
/// step starts `gap` after the last answer (the trainer's update).
pub async fn rft(door: Arc<Door>, rec: Arc<Recorder>, shape: RftShape, gap: Duration, stop: Stop) {
    let rollouts = shape.global_batch_size * shape.number_generation;
    let calls = rollouts.div_ceil(door.batch());
    let workers = shape.workers.max(1);
    for step in 0..shape.steps {
        if step > 0 && Instant::now() >= stop.end {
            break;
        }
        let burst = Instant::now();
        let mut set = JoinSet::new();
        for w in 0..workers {
            let mine = (w..calls).step_by(workers).count();
            let (door, rec) = (door.clone(), rec.clone());
            let slots = Arc::new(Semaphore::new(shape.in_flight.max(1)));
            set.spawn(async move {
                let mut calls = JoinSet::new();
                for _ in 0..mine {
                    let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                    let (door, rec) = (door.clone(), rec.clone());
                    calls.spawn(async move {
                        let sent = Instant::now();
                        let outcome = door.call().await;
                        let done = Instant::now();
                        drop(permit);
                        rec.record(outcome, done - burst, done - sent);
                    });
                }
                while calls.join_next().await.is_some() {}
            });
        }
        while set.join_next().await.is_some() {}
        rec.record_step(burst.elapsed());
        if step + 1 < shape.steps && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
    }
}
