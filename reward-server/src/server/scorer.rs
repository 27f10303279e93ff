//! The scorer behind every transport: admission control, the score cache, and a dedicated pool of
//! CPU threads that runs plugins off the async I/O threads, shared fairly between rewards
//! ([`super::fair`]).
//!
//! Rewards that ask a judge (a model, see `reward_engine::judge`) run on a second pool, the judge
//! pool: their rollouts spend their time blocked on answers (or asleep on the judge's rate limits),
//! and on the CPU workers a saturated judge would hold every worker while CPU-bound rewards queue.
//! The judge pool's threads mostly wait; what they compute (rendering a prompt, parsing an answer)
//! is small, and the OS schedules it beside the CPU workers.

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::cache::ScoreCache;
use super::error::ScoreError;
use super::fair::FairPool;
use super::metrics;
use crate::config::Rewards;
use crate::engine::group;
use crate::engine::request::{self, InOrder};
use crate::engine::{Item, Reward, Rollout, Scored};

/// Default bound on rollouts admitted and not yet answered, across all requests: 8,192.
pub const DEFAULT_MAX_INFLIGHT_ROLLOUTS: usize = 8192;
/// Default cap on rollouts in one request: 4,096.
pub const DEFAULT_MAX_ROLLOUTS_PER_REQUEST: usize = 4096;
/// Default threads of the judge pool: 64 (each a judge call in flight at most; the judge's own
/// `max_concurrent` and rate limits decide how many reach the model).
pub const DEFAULT_JUDGE_WORKERS: usize = 64;
/// Rollouts per unit of pool work at most: 32. Smaller units stream sooner; larger ones
/// amortise instantiation.
const MAX_CHUNK: usize = 32;

/// When a request must be answered by.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    /// The instant.
    pub at: Instant,
    /// The time the caller allowed, for messages.
    pub allowed: std::time::Duration,
}

impl Deadline {
    /// A deadline `allowed` from now.
    pub fn after(allowed: std::time::Duration) -> Self {
        Deadline { at: Instant::now() + allowed, allowed }
    }
}

/// Sizes of the scorer.
#[derive(Clone, Debug)]
pub struct ScorerOptions {
    /// CPU threads that run plugins. Defaults to the number of cores.
    pub workers: usize,
    /// Threads that run rewards asking a judge. Defaults to [`DEFAULT_JUDGE_WORKERS`].
    pub judge_workers: usize,
    /// Admission bound on in-flight rollouts.
    pub max_inflight_rollouts: usize,
    /// Cap on rollouts per request.
    pub max_rollouts_per_request: usize,
    /// Score-cache entries; 0 disables the cache.
    pub cache_entries: usize,
    /// Bound on the bytes the score cache holds.
    pub cache_bytes: usize,
    /// A fixed cap on the workers one reward may hold at once. `None` (the default): all of them
    /// while no other reward is busy, all but one while another is ([`super::fair`]).
    pub max_workers_per_reward: Option<usize>,
}

impl Default for ScorerOptions {
    fn default() -> Self {
        ScorerOptions {
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            judge_workers: DEFAULT_JUDGE_WORKERS,
            max_inflight_rollouts: DEFAULT_MAX_INFLIGHT_ROLLOUTS,
            max_rollouts_per_request: DEFAULT_MAX_ROLLOUTS_PER_REQUEST,
            cache_entries: super::cache::DEFAULT_CACHE_ENTRIES,
            cache_bytes: super::cache::DEFAULT_CACHE_BYTES,
            max_workers_per_reward: None,
        }
    }
}

/// Scores requests for every transport. Shared as `Arc<Scorer>`.
pub struct Scorer {
    rewards: ArcSwap<Rewards>,
    pool: FairPool,
    /// Runs the rewards that ask a judge (see the module doc).
    judge_pool: FairPool,
    permits: Arc<Semaphore>,
    options: ScorerOptions,
    cache: Option<ScoreCache>,
    /// `true` once draining started; streams watch it to stop reading new requests.
    draining: tokio::sync::watch::Sender<bool>,
}

/// Admitted capacity: released when dropped.
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    scorer: Arc<Scorer>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        // The permit is released after this body runs; count it as gone already.
        let available = self.scorer.permits.available_permits() + self._permit.num_permits();
        metrics::inflight(self.scorer.options.max_inflight_rollouts.saturating_sub(available));
    }
}

impl Scorer {
    /// A scorer over `rewards`.
    pub fn new(rewards: Rewards, options: ScorerOptions) -> anyhow::Result<Arc<Scorer>> {
        anyhow::ensure!(options.workers > 0, "--workers must be at least 1");
        anyhow::ensure!(options.judge_workers > 0, "--judge-workers must be at least 1");
        anyhow::ensure!(options.max_inflight_rollouts > 0, "--max-inflight-rollouts must be at least 1");
        anyhow::ensure!(
            options.max_rollouts_per_request <= options.max_inflight_rollouts,
            "max_rollouts_per_request ({}) must not exceed max_inflight_rollouts ({})",
            options.max_rollouts_per_request,
            options.max_inflight_rollouts
        );
        anyhow::ensure!(options.max_workers_per_reward != Some(0), "--max-workers-per-reward must be at least 1");
        let pool = FairPool::new(options.workers, options.max_workers_per_reward)?;
        let judge_pool = FairPool::named("reward-judge", options.judge_workers, None)?;
        Ok(Arc::new(Scorer {
            rewards: ArcSwap::from_pointee(rewards),
            pool,
            judge_pool,
            permits: Arc::new(Semaphore::new(options.max_inflight_rollouts)),
            cache: (options.cache_entries > 0).then(|| ScoreCache::new(options.cache_entries, options.cache_bytes)),
            options,
            draining: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// The rewards now loaded. A request holds on to the set it started with.
    pub fn rewards(&self) -> Arc<Rewards> {
        self.rewards.load_full()
    }

    /// Replaces the rewards: new requests use the new set, in-flight ones finish on the old.
    pub fn swap_rewards(&self, rewards: Rewards) {
        self.rewards.store(Arc::new(rewards));
    }

    /// The reward with this name, from the current set.
    pub fn reward(&self, name: &str) -> Result<Arc<Reward>, ScoreError> {
        Ok(self.rewards.load().get(name)?.clone())
    }

    /// Stops admitting work; in-flight work finishes.
    pub fn start_draining(&self) {
        self.draining.send_replace(true);
    }

    /// Resolves once draining has started (at once if it has).
    pub async fn drain_started(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|draining| *draining).await;
    }

    /// Whether the scorer is draining for shutdown.
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Rollouts admitted and not yet answered.
    pub fn inflight(&self) -> usize {
        self.options.max_inflight_rollouts - self.permits.available_permits()
    }

    /// Refuses a request of more than `--max-rollouts-per-request` rollouts. Doors call it with
    /// the count of a request's records before reading them.
    pub fn check_request_size(&self, n: usize) -> Result<(), ScoreError> {
        if n > self.options.max_rollouts_per_request {
            return Err(ScoreError::TooManyRollouts { got: n, max: self.options.max_rollouts_per_request });
        }
        Ok(())
    }

    /// Admits `n` rollouts now, or refuses at once: never queues.
    pub fn admit(self: &Arc<Self>, n: usize) -> Result<Admission, ScoreError> {
        let refuse = |e: ScoreError| {
            metrics::rejected(e.kind());
            Err(e)
        };
        if self.is_draining() {
            return refuse(ScoreError::ShuttingDown);
        }
        if let Err(e) = self.check_request_size(n) {
            return refuse(e);
        }
        let permits = u32::try_from(n.max(1)).expect("bounded by max_rollouts_per_request");
        match self.permits.clone().try_acquire_many_owned(permits) {
            Ok(permit) => {
                metrics::inflight(self.inflight());
                Ok(Admission { _permit: permit, scorer: self.clone() })
            }
            Err(_) => refuse(ScoreError::Overloaded { inflight: self.inflight(), max: self.options.max_inflight_rollouts }),
        }
    }

    /// Scores a request's items in order. Admission must have been granted for them.
    pub async fn score(
        self: &Arc<Self>,
        reward: Arc<Reward>,
        items: Vec<Item>,
        deadline: Option<Deadline>,
    ) -> Result<Vec<Scored>, ScoreError> {
        let n = items.len();
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.dispatch(reward.clone(), items, deadline, tx);
        let mut answers = InOrder::new(n);
        let collect = async {
            while let Some(batch) = rx.recv().await {
                for (i, s) in batch? {
                    answers.put(i, s);
                }
            }
            Ok::<(), ScoreError>(())
        };
        match deadline {
            Some(d) => tokio::time::timeout_at(d.at.into(), collect).await.map_err(|_| ScoreError::DeadlineExceeded(d.allowed))??,
            None => collect.await?,
        }
        let scored = answers.finish().map_err(|i| ScoreError::Internal(format!("rollout {i} of {n} was never scored")))?;
        if let Some(failed) = reward.request_failure(&scored) {
            return Err(failed.into());
        }
        Ok(scored)
    }

    /// Scores items and sends `(index, score)` batches to `tx` as each unit of work finishes:
    /// cache hits and rejected items first, then plugin work from the pool. Work whose deadline
    /// passed before it started is dropped and answered with `DeadlineExceeded`.
    pub fn dispatch(
        self: &Arc<Self>,
        reward: Arc<Reward>,
        items: Vec<Item>,
        deadline: Option<Deadline>,
        tx: mpsc::UnboundedSender<Result<Vec<(usize, Scored)>, ScoreError>>,
    ) {
        let (rollouts, placement) = request::split(items);
        let mut ready: Vec<(usize, Scored)> =
            placement.rejected().map(|(i, id, failure)| (i, reward.reject(id, failure.clone()))).collect();
        let mut slots: Vec<(usize, u128)> = Vec::with_capacity(rollouts.len());
        let mut work: Vec<Rollout> = Vec::with_capacity(rollouts.len());
        let (mut hits, mut misses) = (0, 0);
        // A groups reward's rollout scores with its group: never served from the cache alone.
        let cache = self.cache.as_ref().filter(|_| !reward.groups());
        let data = cache.map_or(0, |_| reward.data_identity());
        for (&i, r) in placement.positions().iter().zip(rollouts) {
            // No cache, no key: hashing every byte of every rollout is not free.
            let key = cache.map_or(0, |_| ScoreCache::key(&reward.provenance, data, &r));
            match cache.and_then(|c| c.get(key, &r.id)) {
                Some(hit) => {
                    hits += 1;
                    ready.push((i, hit));
                }
                None => {
                    misses += 1;
                    slots.push((i, key));
                    work.push(r);
                }
            }
        }
        if cache.is_some() {
            metrics::cache(&reward.name, hits, misses);
        }
        if !ready.is_empty() {
            metrics::scored(&reward.name, ready.iter().map(|(_, s)| s));
            let _ = tx.send(Ok(ready));
        }
        if work.is_empty() {
            return;
        }
        let (pool, workers) =
            if reward.uses_judge() { (&self.judge_pool, self.options.judge_workers) } else { (&self.pool, self.options.workers) };
        let chunk = work.len().div_ceil(workers).clamp(1, MAX_CHUNK);
        // Units of pool work: chunks of about `chunk` rollouts, cut only between whole groups for
        // a reward that scores groups (a group larger than a chunk is a unit of its own).
        let units: Vec<Vec<usize>> = if reward.groups() {
            group::pack(group::partition(&work), chunk)
        } else {
            (0..work.len()).collect::<Vec<_>>().chunks(chunk).map(<[usize]>::to_vec).collect()
        };
        // One unit of pool work per chunk, on the reward's lane: a request's chunks run before
        // those of a later request for the same reward, and rewards share the workers fairly.
        let mut work: Vec<Option<Rollout>> = work.into_iter().map(Some).collect();
        for unit in units {
            let rollouts: Vec<Rollout> = unit.iter().map(|&i| work[i].take().expect("a rollout is in one unit")).collect();
            let slots: Vec<(usize, u128)> = unit.iter().map(|&i| slots[i]).collect();
            let (scorer, reward, tx) = (self.clone(), reward.clone(), tx.clone());
            pool.submit(
                &reward.name.clone(),
                Box::new(move || guarded(&tx, || scorer.score_chunk(&reward, &rollouts, &slots, deadline, &tx))),
            );
        }
    }

    /// Scores one chunk of a request on a pool thread and sends its `(index, score)` pairs. The
    /// deadline and the caller are checked before the plugin call: work for a caller that went
    /// away or whose deadline passed is dropped, not finished.
    fn score_chunk(
        &self,
        reward: &Reward,
        rollouts: &[Rollout],
        slots: &[(usize, u128)],
        deadline: Option<Deadline>,
        tx: &mpsc::UnboundedSender<Result<Vec<(usize, Scored)>, ScoreError>>,
    ) {
        let expired = || deadline.is_some_and(|d| Instant::now() >= d.at);
        let cancelled = || tx.is_closed() || expired();
        if cancelled() {
            if let Some(d) = deadline.filter(|_| expired()) {
                let _ = tx.send(Err(ScoreError::DeadlineExceeded(d.allowed)));
            }
            return;
        }
        let scored = reward.score_batch_until(rollouts, &cancelled);
        if let Some(d) = deadline.filter(|_| expired()) {
            let _ = tx.send(Err(ScoreError::DeadlineExceeded(d.allowed)));
            return;
        }
        metrics::scored(&reward.name, &scored);
        if let Some(cache) = self.cache.as_ref().filter(|_| !reward.groups()) {
            for ((_, key), s) in slots.iter().zip(&scored) {
                cache.insert(*key, s);
            }
        }
        let _ = tx.send(Ok(slots.iter().map(|(i, _)| *i).zip(scored).collect()));
    }
}

/// Runs one unit of pool work; a panic in it fails its request with `INTERNAL` (logged with the
/// panic's message) instead of taking the worker, or the process, down.
fn guarded(tx: &mpsc::UnboundedSender<Result<Vec<(usize, Scored)>, ScoreError>>, work: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        let message = panic_message(&*panic);
        tracing::error!(panic = message, "scoring panicked; its request fails with INTERNAL");
        let _ = tx.send(Err(ScoreError::Internal(format!("scoring panicked: {message}"))));
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message), or a placeholder.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_pool_work_fails_its_request_not_the_process() {
        let pool = FairPool::new(1, None).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        pool.submit("r", Box::new(move || guarded(&tx, || panic!("formula blew up at rollout {}", 7))));
        let got = rx.blocking_recv().expect("the panic is answered");
        match got {
            Err(ScoreError::Internal(message)) => assert!(message.contains("formula blew up at rollout 7"), "{message}"),
            other => panic!("expected INTERNAL, got {other:?}"),
        }
        // The worker survived and takes more work.
        let (tx, mut rx) = mpsc::unbounded_channel();
        pool.submit("r", Box::new(move || guarded(&tx, || tx.send(Ok(vec![])).unwrap())));
        assert!(matches!(rx.blocking_recv(), Some(Ok(v)) if v.is_empty()));
    }
}
