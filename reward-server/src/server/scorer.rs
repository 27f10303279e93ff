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

/// Default bound on rollouts admitted and not yet answered, across all requests for rewards that
/// ask no judge: 8,192.
pub const DEFAULT_MAX_INFLIGHT_ROLLOUTS: usize = 8192;
/// Default bound on rollouts admitted and not yet answered, across all requests for rewards that
/// ask a judge: 4,096. Their own budget, so a flood of judge requests waiting on the model's rate
/// limits cannot take the admission of CPU-bound rewards (nor the reverse). 4,096 is
/// [`DEFAULT_MAX_ROLLOUTS_PER_REQUEST`]: the smallest budget that admits one request of the
/// largest default size (a GRPO step of 512 prompts x 8 completions); a smaller one needs a
/// smaller request cap too (checked at start-up). More is rarely useful: a judge answers at the
/// pace of its rate limits (600 requests a minute is 600 rollouts in a 60 s request timeout), so
/// a larger budget mostly admits work that times out waiting.
pub const DEFAULT_MAX_INFLIGHT_JUDGE_ROLLOUTS: usize = 4096;
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
    /// Admission bound on in-flight rollouts of rewards that ask no judge. Defaults to
    /// [`DEFAULT_MAX_INFLIGHT_ROLLOUTS`].
    pub max_inflight_rollouts: usize,
    /// Admission bound on in-flight rollouts of rewards that ask a judge (see
    /// [`Reward::uses_judge`]), a budget apart from `max_inflight_rollouts`. Defaults to
    /// [`DEFAULT_MAX_INFLIGHT_JUDGE_ROLLOUTS`].
    pub max_inflight_judge_rollouts: usize,
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
            max_inflight_judge_rollouts: DEFAULT_MAX_INFLIGHT_JUDGE_ROLLOUTS,
            max_rollouts_per_request: DEFAULT_MAX_ROLLOUTS_PER_REQUEST,
            cache_entries: super::cache::DEFAULT_CACHE_ENTRIES,
            cache_bytes: super::cache::DEFAULT_CACHE_BYTES,
            max_workers_per_reward: None,
        }
    }
}

impl ScorerOptions {
    /// Checks the sizes against each other: every pool and budget at least 1, and a request of
    /// the largest size admissible under both budgets. The message names the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.workers > 0, "--workers must be at least 1");
        anyhow::ensure!(self.judge_workers > 0, "--judge-workers must be at least 1");
        anyhow::ensure!(self.max_inflight_rollouts > 0, "--max-inflight-rollouts must be at least 1");
        anyhow::ensure!(self.max_inflight_judge_rollouts > 0, "--max-inflight-judge-rollouts must be at least 1");
        anyhow::ensure!(
            self.max_rollouts_per_request <= self.max_inflight_rollouts,
            "max_rollouts_per_request ({}) must not exceed max_inflight_rollouts ({})",
            self.max_rollouts_per_request,
            self.max_inflight_rollouts
        );
        // A request larger than the judge budget could never be admitted: refuse to start rather
        // than refuse every full-size request for a judge reward with a 429 a retry cannot cure.
        anyhow::ensure!(
            self.max_rollouts_per_request <= self.max_inflight_judge_rollouts,
            "max_rollouts_per_request ({}) must not exceed max_inflight_judge_rollouts ({}): a request that large for a reward \
             asking a judge could never be admitted (lower --max-rollouts-per-request or raise --max-inflight-judge-rollouts)",
            self.max_rollouts_per_request,
            self.max_inflight_judge_rollouts
        );
        anyhow::ensure!(self.max_workers_per_reward != Some(0), "--max-workers-per-reward must be at least 1");
        Ok(())
    }
}

/// Scores requests for every transport. Shared as `Arc<Scorer>`.
pub struct Scorer {
    rewards: ArcSwap<Rewards>,
    pool: FairPool,
    /// Runs the rewards that ask a judge (see the module doc).
    judge_pool: FairPool,
    /// Admission of the rewards that ask no judge ([`Budget::Cpu`]).
    cpu_budget: Gate,
    /// Admission of the rewards that ask a judge ([`Budget::Judge`]).
    judge_budget: Gate,
    options: ScorerOptions,
    cache: Option<ScoreCache>,
    /// `true` once draining started; streams watch it to stop reading new requests.
    draining: tokio::sync::watch::Sender<bool>,
}

/// An admission budget: which bound a request's rollouts count against. Rewards that ask a judge
/// wait on a model (seconds, rate limits) and have their own, so a flood of them cannot refuse the
/// CPU-bound rewards whose pool is idle, nor the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Rewards that ask no judge: `--max-inflight-rollouts`.
    Cpu,
    /// Rewards that ask a judge ([`Reward::uses_judge`]): `--max-inflight-judge-rollouts`.
    Judge,
}

impl Budget {
    /// The budget a request for `reward` draws from.
    pub fn of(reward: &Reward) -> Budget {
        if reward.uses_judge() { Budget::Judge } else { Budget::Cpu }
    }

    /// The `budget` label of the in-flight gauge: `cpu` or `judge`.
    pub fn label(self) -> &'static str {
        match self {
            Budget::Cpu => "cpu",
            Budget::Judge => "judge",
        }
    }

    /// The flag that sizes it.
    pub fn flag(self) -> &'static str {
        match self {
            Budget::Cpu => "--max-inflight-rollouts",
            Budget::Judge => "--max-inflight-judge-rollouts",
        }
    }

    /// What it counts, for messages: `rollouts` or `rollouts of rewards that ask a judge`.
    pub fn counts(self) -> &'static str {
        match self {
            Budget::Cpu => "rollouts",
            Budget::Judge => "rollouts of rewards that ask a judge",
        }
    }
}

/// One admission budget's permits (a rollout each) and its bound.
struct Gate {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Gate {
    fn new(max: usize) -> Gate {
        Gate { permits: Arc::new(Semaphore::new(max)), max }
    }

    /// Rollouts admitted and not yet answered, `releasing` of them counted as answered already.
    fn inflight(&self, releasing: usize) -> usize {
        self.max.saturating_sub(self.permits.available_permits() + releasing)
    }
}

/// Admitted capacity: released when dropped.
pub struct Admission {
    permit: OwnedSemaphorePermit,
    budget: Budget,
    scorer: Arc<Scorer>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        // The permit is released after this body runs; count it as gone already.
        let inflight = self.scorer.gate(self.budget).inflight(self.permit.num_permits());
        metrics::inflight(self.budget.label(), inflight);
    }
}

impl Scorer {
    /// A scorer over `rewards`.
    pub fn new(rewards: Rewards, options: ScorerOptions) -> anyhow::Result<Arc<Scorer>> {
        options.validate()?;
        let pool = FairPool::new(options.workers, options.max_workers_per_reward)?;
        let judge_pool = FairPool::named("reward-judge", options.judge_workers, None)?;
        // Both series exist from the start: an idle budget reads 0, not "no data".
        for budget in [Budget::Cpu, Budget::Judge] {
            metrics::inflight(budget.label(), 0);
        }
        Ok(Arc::new(Scorer {
            rewards: ArcSwap::from_pointee(rewards),
            pool,
            judge_pool,
            cpu_budget: Gate::new(options.max_inflight_rollouts),
            judge_budget: Gate::new(options.max_inflight_judge_rollouts),
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

    /// Rollouts admitted and not yet answered, over both budgets (what a drain waits for).
    pub fn inflight(&self) -> usize {
        self.cpu_budget.inflight(0) + self.judge_budget.inflight(0)
    }

    fn gate(&self, budget: Budget) -> &Gate {
        match budget {
            Budget::Cpu => &self.cpu_budget,
            Budget::Judge => &self.judge_budget,
        }
    }

    /// Refuses a request of more than `--max-rollouts-per-request` rollouts. Doors call it with
    /// the count of a request's records before reading them.
    pub fn check_request_size(&self, n: usize) -> Result<(), ScoreError> {
        if n > self.options.max_rollouts_per_request {
            return Err(ScoreError::TooManyRollouts { got: n, max: self.options.max_rollouts_per_request });
        }
        Ok(())
    }

    /// Admits `n` rollouts for `reward` now, against its budget ([`Budget::of`]), or refuses at
    /// once: never queues. A full budget is `Overloaded`, naming the budget and its flag.
    pub fn admit(self: &Arc<Self>, reward: &Reward, n: usize) -> Result<Admission, ScoreError> {
        self.admit_to(Budget::of(reward), n)
    }

    /// [`Scorer::admit`] against a given budget.
    fn admit_to(self: &Arc<Self>, budget: Budget, n: usize) -> Result<Admission, ScoreError> {
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
        let gate = self.gate(budget);
        match gate.permits.clone().try_acquire_many_owned(permits) {
            Ok(permit) => {
                metrics::inflight(budget.label(), gate.inflight(0));
                Ok(Admission { permit, budget, scorer: self.clone() })
            }
            Err(_) => refuse(ScoreError::Overloaded { budget, inflight: gate.inflight(0), max: gate.max }),
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

    fn scorer(cpu: usize, judge: usize, per_request: usize) -> Arc<Scorer> {
        let options = ScorerOptions {
            workers: 1,
            judge_workers: 1,
            max_inflight_rollouts: cpu,
            max_inflight_judge_rollouts: judge,
            max_rollouts_per_request: per_request,
            ..ScorerOptions::default()
        };
        Scorer::new(Rewards::default(), options).unwrap()
    }

    /// The budget a refusal names, and its message.
    fn overloaded(result: Result<Admission, ScoreError>) -> (Budget, String) {
        match result {
            Err(e @ ScoreError::Overloaded { budget, .. }) => (budget, e.to_string()),
            Err(other) => panic!("expected Overloaded, got {other:?}"),
            Ok(_) => panic!("expected Overloaded, the request was admitted"),
        }
    }

    #[test]
    fn a_full_judge_budget_refuses_judge_work_and_admits_cpu_work() {
        let scorer = scorer(8, 4, 4);
        let judge = scorer.admit_to(Budget::Judge, 4).expect("the judge budget has room for 4");
        let (budget, message) = overloaded(scorer.admit_to(Budget::Judge, 1));
        assert_eq!(budget, Budget::Judge);
        assert_eq!(
            message,
            "overloaded: 4 rollouts of rewards that ask a judge in flight, the limit is 4 (--max-inflight-judge-rollouts); retry shortly"
        );
        let cpu = scorer.admit_to(Budget::Cpu, 4).expect("the CPU budget is apart");
        assert_eq!(scorer.inflight(), 8, "both budgets count towards what a drain waits for");
        drop(judge);
        drop(cpu);
        assert_eq!(scorer.inflight(), 0);
        assert!(scorer.admit_to(Budget::Judge, 4).is_ok(), "released on drop");
    }

    #[test]
    fn a_full_cpu_budget_refuses_cpu_work_and_admits_judge_work() {
        let scorer = scorer(4, 8, 4);
        let _cpu = scorer.admit_to(Budget::Cpu, 3).unwrap();
        let (budget, message) = overloaded(scorer.admit_to(Budget::Cpu, 2));
        assert_eq!(budget, Budget::Cpu);
        assert_eq!(message, "overloaded: 3 rollouts in flight, the limit is 4 (--max-inflight-rollouts); retry shortly");
        assert!(scorer.admit_to(Budget::Judge, 4).is_ok(), "the judge budget is apart");
    }

    #[test]
    fn a_request_larger_than_the_judge_budget_fails_at_startup() {
        let options = ScorerOptions { max_inflight_judge_rollouts: 100, max_rollouts_per_request: 101, ..ScorerOptions::default() };
        let message = format!("{:#}", Scorer::new(Rewards::default(), options).err().expect("refused"));
        assert!(
            message.contains("max_rollouts_per_request (101) must not exceed max_inflight_judge_rollouts (100)")
                && message.contains("--max-inflight-judge-rollouts"),
            "{message}"
        );
        let zero = ScorerOptions { max_inflight_judge_rollouts: 0, ..ScorerOptions::default() };
        let message = format!("{:#}", Scorer::new(Rewards::default(), zero).err().expect("refused"));
        assert!(message.contains("--max-inflight-judge-rollouts must be at least 1"), "{message}");
    }

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
