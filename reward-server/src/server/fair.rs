//! The scoring workers, shared fairly between rewards.
//!
//! Each reward has a *lane*: a FIFO queue of units of work (chunks of a request's rollouts) and the
//! worker time its finished work has taken. A free worker takes the next unit of the lane that
//! has had the least worker time (its *virtual time*, as in Linux's CFS), so a reward whose
//! rollouts each burn a whole fuel budget gets the same share of the workers as a cheap one, not
//! a share in proportion to what it costs. Within a lane, work runs in arrival order.
//!
//! A unit of work is never interrupted (a plugin call is synchronous), so fair shares alone would
//! still let an expensive reward hold every worker for one of its units while a cheap reward's
//! request waits. A cap on the workers one reward may hold at once closes that: by default a
//! reward may hold all of them while no other reward is busy, and all but one while another is
//! (busy: work queued or running, or finished within [`BUSY_WINDOW`]). `--max-workers-per-reward`
//! sets a fixed cap instead.
//!
//! What this does *not* do: it does not preempt a unit that has started (the fuel and the epoch
//! deadline bound it), and it does not weight rewards (every lane has the same share).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::metrics;

/// How long after its last unit of work a reward still counts as busy for the default cap: 1 s.
/// A reward under steady load has gaps between requests; without this window the cap would come
/// and go between them, and a hostile reward would take every worker in each gap.
pub const BUSY_WINDOW: Duration = Duration::from_secs(1);
/// Lanes idle this long are forgotten (their name may have left the config): 60 s.
const LANE_EXPIRY: Duration = Duration::from_secs(60);

/// A unit of work.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of worker threads that take work lane by lane, fairly.
pub struct FairPool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when work is queued or a worker frees a place under a lane's cap.
    ready: Condvar,
    workers: usize,
    /// The fixed cap on one lane's running units, if set; otherwise the default cap.
    max_per_lane: Option<usize>,
}

#[derive(Default)]
struct State {
    lanes: HashMap<String, Lane>,
    /// Monotonic lane creation order: ties in virtual time go to the older lane.
    created: u64,
    shutdown: bool,
}

struct Lane {
    pending: VecDeque<(Instant, Job)>,
    running: usize,
    /// Worker time taken by this lane's finished units, in nanoseconds, caught up to the least
    /// busy lane whenever the lane wakes from idle (so idleness is not banked as credit).
    vruntime: u128,
    last_busy: Instant,
    created: u64,
}

impl Lane {
    fn busy(&self, now: Instant) -> bool {
        !self.pending.is_empty() || self.running > 0 || now.duration_since(self.last_busy) < BUSY_WINDOW
    }
    fn idle(&self) -> bool {
        self.pending.is_empty() && self.running == 0
    }
}

impl FairPool {
    /// Starts `workers` threads named `reward-worker-N`. `max_per_lane` fixes the cap on the
    /// workers one reward may hold; `None` is the default cap (see the module doc).
    pub fn new(workers: usize, max_per_lane: Option<usize>) -> std::io::Result<FairPool> {
        Self::named("reward-worker", workers, max_per_lane)
    }

    /// [`FairPool::new`] with threads named `{prefix}-N`.
    pub fn named(prefix: &str, workers: usize, max_per_lane: Option<usize>) -> std::io::Result<FairPool> {
        assert!(workers > 0, "a pool needs a worker");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
            workers,
            max_per_lane: max_per_lane.map(|n| n.clamp(1, workers)),
        });
        for i in 0..workers {
            let shared = shared.clone();
            std::thread::Builder::new().name(format!("{prefix}-{i}")).spawn(move || shared.work())?;
        }
        Ok(FairPool { shared })
    }

    /// Queues `job` on the lane `lane` (a reward's name).
    pub fn submit(&self, lane: &str, job: Job) {
        let now = Instant::now();
        let mut state = self.shared.lock();
        let floor = state.least_busy_vruntime();
        if !state.lanes.contains_key(lane) {
            state.lanes.retain(|_, l| !l.idle() || now.duration_since(l.last_busy) < LANE_EXPIRY);
            state.created += 1;
            let created = state.created;
            state.lanes.insert(lane.to_owned(), Lane { pending: VecDeque::new(), running: 0, vruntime: 0, last_busy: now, created });
        }
        let entry = state.lanes.get_mut(lane).expect("inserted above");
        if entry.idle() {
            entry.vruntime = entry.vruntime.max(floor.unwrap_or(0));
        }
        entry.pending.push_back((now, job));
        drop(state);
        self.shared.ready.notify_one();
    }
}

impl Drop for FairPool {
    /// Stops the workers once the queued work is done. It does not wait for them: the last owner
    /// of the pool may be a unit of work running on one of them.
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.ready.notify_all();
    }
}

impl State {
    /// The least virtual time among lanes with work queued or running.
    fn least_busy_vruntime(&self) -> Option<u128> {
        self.lanes.values().filter(|l| !l.idle()).map(|l| l.vruntime).min()
    }

    /// Takes the next unit: from the lane with the least virtual time among those with work
    /// queued and below their cap (ties: the lane running fewer units, then the older lane).
    fn take(&mut self, workers: usize, max_per_lane: Option<usize>) -> Option<(String, Instant, Job)> {
        let now = Instant::now();
        let cap = max_per_lane.unwrap_or_else(|| {
            let busy = self.lanes.values().filter(|l| l.busy(now)).count();
            if busy > 1 { workers.saturating_sub(1).max(1) } else { workers }
        });
        let name = self
            .lanes
            .iter()
            .filter(|(_, l)| !l.pending.is_empty() && l.running < cap)
            .min_by_key(|(_, l)| (l.vruntime, l.running, l.created))
            .map(|(name, _)| name.clone())?;
        let lane = self.lanes.get_mut(&name).expect("just found");
        let (queued, job) = lane.pending.pop_front().expect("has work");
        lane.running += 1;
        Some((name, queued, job))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A unit of work never runs under the lock, so a poisoned lock only means a panic in this
        // module's own bookkeeping; the state is still consistent enough to go on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker's loop: take the fairest unit, run it outside the lock, charge its time.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            let Some((lane, queued, job)) = state.take(self.workers, self.max_per_lane) else {
                if state.shutdown && state.lanes.values().all(|l| l.pending.is_empty()) {
                    return;
                }
                // Work that waits only on a cap may be freed by time alone (the other reward's busy
                // window ends), with no unit finishing to signal it: look again before long.
                state = if state.lanes.values().any(|l| !l.pending.is_empty()) {
                    self.ready.wait_timeout(state, BUSY_WINDOW / 4).unwrap_or_else(|e| e.into_inner()).0
                } else {
                    self.ready.wait(state).unwrap_or_else(|e| e.into_inner())
                };
                continue;
            };
            drop(state);
            let started = Instant::now();
            metrics::queue_wait(&lane, started.duration_since(queued));
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                tracing::error!(reward = lane, "a unit of scoring work panicked past its guard");
            }
            let finished = Instant::now();
            let spent = finished.duration_since(started);
            metrics::worker_time(&lane, spent);
            state = self.lock();
            if let Some(l) = state.lanes.get_mut(&lane) {
                l.running -= 1;
                l.vruntime += spent.as_nanos();
                l.last_busy = finished;
            }
            // A place under this lane's cap is free: a worker waiting on a capped lane may go.
            self.ready.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A job that records its name when it starts and holds its worker until released.
    fn gated(log: &mpsc::Sender<&'static str>, name: &'static str, gate: Arc<(Mutex<bool>, Condvar)>) -> Job {
        let log = log.clone();
        Box::new(move || {
            log.send(name).unwrap();
            let (open, cv) = &*gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
        })
    }

    fn gate() -> Arc<(Mutex<bool>, Condvar)> {
        Arc::new((Mutex::new(false), Condvar::new()))
    }

    fn open(gate: &(Mutex<bool>, Condvar)) {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    #[test]
    fn a_reward_that_floods_the_queue_cannot_take_the_last_worker_from_another() {
        let pool = FairPool::new(2, None).unwrap();
        let (log, started) = mpsc::channel();
        let hostile = gate();
        // Another reward was busy a moment ago, so the default cap (workers - 1) applies.
        let (done_tx, done) = mpsc::channel();
        pool.submit("math", Box::new(move || done_tx.send(()).unwrap()));
        done.recv().unwrap();
        for _ in 0..8 {
            pool.submit("hostile", gated(&log, "hostile", hostile.clone()));
        }
        assert_eq!(started.recv().unwrap(), "hostile");
        // The second worker stays free for math although seven hostile units wait.
        let math = gate();
        pool.submit("math", gated(&log, "math", math.clone()));
        assert_eq!(started.recv_timeout(Duration::from_secs(10)).unwrap(), "math");
        open(&math);
        open(&hostile);
        for _ in 0..7 {
            assert_eq!(started.recv().unwrap(), "hostile");
        }
    }

    #[test]
    fn a_reward_alone_uses_every_worker() {
        let pool = FairPool::new(2, None).unwrap();
        let (log, started) = mpsc::channel();
        let g = gate();
        pool.submit("math", gated(&log, "a", g.clone()));
        pool.submit("math", gated(&log, "b", g.clone()));
        // Both start while neither has finished: two workers for one reward.
        let mut both = [started.recv().unwrap(), started.recv_timeout(Duration::from_secs(10)).unwrap()];
        both.sort();
        assert_eq!(both, ["a", "b"]);
        open(&g);
    }

    #[test]
    fn a_fixed_cap_holds_even_for_a_reward_alone() {
        let pool = FairPool::new(2, Some(1)).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (done_tx, done) = mpsc::channel();
        for _ in 0..6 {
            let (running, most, done_tx) = (running.clone(), most.clone(), done_tx.clone());
            pool.submit(
                "sql",
                Box::new(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    done_tx.send(()).unwrap();
                }),
            );
        }
        for _ in 0..6 {
            done.recv().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_lane_with_less_worker_time_goes_first() {
        // One worker, so the order of the queue is the order of the runs.
        let pool = FairPool::new(1, None).unwrap();
        let (log, started) = mpsc::channel();
        let first = gate();
        // "slow" has taken 500 ms of the worker before the others queue anything: far more than
        // "fast"'s three short units take even on a loaded machine (worker time is wall time, and
        // with a 30 ms head start a CI run under load once saw two of them add up past it).
        let (done_tx, done) = mpsc::channel();
        pool.submit(
            "slow",
            Box::new(move || {
                std::thread::sleep(Duration::from_millis(500));
                done_tx.send(()).unwrap();
            }),
        );
        done.recv().unwrap();
        // Hold the worker while both lanes queue work, so the choice happens with both waiting.
        pool.submit("slow", gated(&log, "slow-hold", first.clone()));
        assert_eq!(started.recv().unwrap(), "slow-hold");
        for _ in 0..3 {
            pool.submit("slow", gated(&log, "slow", gate_open()));
        }
        for _ in 0..3 {
            pool.submit("fast", gated(&log, "fast", gate_open()));
        }
        open(&first);
        let order: Vec<_> = (0..6).map(|_| started.recv().unwrap()).collect();
        // "fast" woke from idle at the least busy lane's time, then ran ahead of the lane that
        // had spent 500 ms: its units come first.
        assert_eq!(&order[..3], ["fast", "fast", "fast"], "{order:?}");
    }

    fn gate_open() -> Arc<(Mutex<bool>, Condvar)> {
        let g = gate();
        open(&g);
        g
    }
}
