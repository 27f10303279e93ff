//! The score cache: an identical (reward, config, plugin, fixture data, rollout) is scored once.
//! GRPO groups repeat completions, and trainers retry requests. Bounded in entries and in bytes
//! (a plugin's reason may be 64 KiB: entries alone do not bound memory); only `OK` scores are
//! kept (a wall-clock timeout or an internal error may not happen again).

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::engine::{Metric, Provenance, Rollout, Scored, Status};

/// Default number of cached scores: 100,000 (a few hundred bytes each).
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;
/// Default bound on the bytes the cached scores hold (their metrics, reason and bookkeeping):
/// 256 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;
/// What an entry is counted as beyond its metric names and reason: the entry, its key and the
/// cache's own bookkeeping, about 160 bytes.
const ENTRY_OVERHEAD_BYTES: u64 = 160;

/// What is kept of a score: everything but the caller's id and the latency.
#[derive(Clone, Debug)]
struct Entry {
    score: Option<f64>,
    metrics: Arc<[Metric]>,
    reason: Option<Arc<str>>,
    instructions: u64,
    provenance: Arc<Provenance>,
}

/// Weighs an entry by the bytes it holds, and at least `min` bytes, so that a byte bound of
/// `entries x min` also bounds the number of entries.
#[derive(Clone)]
struct EntryWeight {
    min: u64,
}

impl quick_cache::Weighter<u128, Entry> for EntryWeight {
    fn weight(&self, _key: &u128, entry: &Entry) -> u64 {
        entry.bytes().max(self.min)
    }
}

impl Entry {
    /// The bytes this entry holds, bookkeeping included.
    fn bytes(&self) -> u64 {
        let metrics: usize = self.metrics.iter().map(|m| std::mem::size_of::<Metric>() + m.name.len()).sum();
        ENTRY_OVERHEAD_BYTES + metrics as u64 + self.reason.as_ref().map_or(0, |r| r.len() as u64)
    }
}

/// A bounded, concurrent score cache keyed by a 128-bit hash.
pub struct ScoreCache {
    inner: quick_cache::sync::Cache<u128, Entry, EntryWeight>,
}

impl ScoreCache {
    /// A cache of at most `entries` scores holding at most about `max_bytes` bytes. A score
    /// larger than a cache of that size can hold is not kept.
    pub fn new(entries: usize, max_bytes: usize) -> Self {
        let entries = entries.max(1) as u64;
        let max_bytes = (max_bytes as u64).max(ENTRY_OVERHEAD_BYTES);
        let weight = EntryWeight { min: (max_bytes / entries).max(1) };
        ScoreCache { inner: quick_cache::sync::Cache::with_weighter(entries as usize, max_bytes, weight) }
    }

    /// The key of a rollout under a reward: the reward's plugin and config hashes, the identity of
    /// the fixture data it reads (`data`, [`crate::engine::Reward::data_identity`]: a reloaded
    /// fixtures directory gets a new one, so a changed database is never answered from the
    /// cache), and every field of the rollout except its id. Fields are length-prefixed so no
    /// two rollouts collide by concatenation.
    pub fn key(provenance: &Provenance, data: u64, rollout: &Rollout) -> u128 {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(provenance.reward.as_bytes());
        field(provenance.plugin_sha256.as_bytes());
        field(provenance.config_hash.as_bytes());
        field(&data.to_le_bytes());
        field(rollout.reference.as_bytes());
        field(rollout.metadata.as_bytes());
        for m in &rollout.messages {
            field(m.role.as_bytes());
            field(m.content.as_bytes());
        }
        h.digest128()
    }

    /// The cached score for `key`, relabelled with the caller's id.
    pub fn get(&self, key: u128, id: &str) -> Option<Scored> {
        let e = self.inner.get(&key)?;
        Some(Scored {
            id: id.to_owned(),
            score: e.score,
            status: Status::Ok,
            metrics: e.metrics.to_vec(),
            reason: e.reason.as_deref().map(str::to_owned),
            error: None,
            instructions: e.instructions,
            latency: std::time::Duration::ZERO,
            provenance: e.provenance,
            cached: true,
        })
    }

    /// Keeps an `OK` score; other statuses are not cached.
    pub fn insert(&self, key: u128, s: &Scored) {
        if s.status != Status::Ok {
            return;
        }
        self.inner.insert(
            key,
            Entry {
                score: s.score,
                metrics: s.metrics.clone().into(),
                reason: s.reason.as_deref().map(Arc::from),
                instructions: s.instructions,
                provenance: s.provenance.clone(),
            },
        );
    }

    /// The bytes the cached scores hold, as counted against the bound.
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }

    /// How many scores are cached.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Message;

    fn provenance(config_hash: &str) -> Provenance {
        Provenance { reward: "r".into(), plugin_sha256: "p".into(), config_hash: config_hash.into(), ..Default::default() }
    }

    fn rollout(id: &str, completion: &str) -> Rollout {
        Rollout {
            id: id.into(),
            messages: vec![Message { role: "assistant".into(), content: completion.into() }],
            reference: "1".into(),
            metadata: "{}".into(),
            group: None,
        }
    }

    #[test]
    fn key_ignores_id_and_sees_everything_else() {
        let p = provenance("c");
        assert_eq!(ScoreCache::key(&p, 0, &rollout("a", "x")), ScoreCache::key(&p, 0, &rollout("b", "x")));
        assert_ne!(ScoreCache::key(&p, 0, &rollout("a", "x")), ScoreCache::key(&p, 0, &rollout("a", "y")));
        assert_ne!(ScoreCache::key(&p, 0, &rollout("a", "x")), ScoreCache::key(&provenance("d"), 0, &rollout("a", "x")));
        assert_ne!(
            ScoreCache::key(&p, 1, &rollout("a", "x")),
            ScoreCache::key(&p, 2, &rollout("a", "x")),
            "another fixture data identity is another key"
        );
        let mut other_ref = rollout("a", "x");
        other_ref.reference = "2".into();
        assert_ne!(ScoreCache::key(&p, 0, &rollout("a", "x")), ScoreCache::key(&p, 0, &other_ref));
        // Field boundaries matter: ("ab", "c") is not ("a", "bc").
        let mut r1 = rollout("a", "ab");
        r1.reference = "c".into();
        let mut r2 = rollout("a", "a");
        r2.reference = "bc".into();
        assert_ne!(ScoreCache::key(&p, 0, &r1), ScoreCache::key(&p, 0, &r2));
    }

    #[test]
    fn only_ok_scores_are_kept_and_ids_are_relabelled() {
        let cache = ScoreCache::new(10, 1 << 20);
        let p = Arc::new(provenance("c"));
        let ok = Scored {
            id: "first".into(),
            score: Some(0.5),
            status: Status::Ok,
            metrics: vec![],
            reason: Some("why".into()),
            error: None,
            instructions: 7,
            latency: std::time::Duration::from_millis(3),
            provenance: p.clone(),
            cached: false,
        };
        cache.insert(1, &ok);
        let hit = cache.get(1, "second").unwrap();
        assert_eq!((hit.id.as_str(), hit.score, hit.cached, hit.instructions), ("second", Some(0.5), true, 7));
        let failed = Scored { status: Status::Timeout, ..ok };
        cache.insert(2, &failed);
        assert!(cache.get(2, "x").is_none());
    }

    fn scored_with_reason(reason_bytes: usize) -> Scored {
        Scored {
            id: "x".into(),
            score: Some(1.0),
            status: Status::Ok,
            metrics: vec![],
            reason: Some("r".repeat(reason_bytes)),
            error: None,
            instructions: 1,
            latency: std::time::Duration::ZERO,
            provenance: Arc::new(provenance("c")),
            cached: false,
        }
    }

    #[test]
    fn bytes_are_bounded_not_only_entries() {
        // 10,000 entries allowed, but 8 MiB: 64 KiB reasons fit at most 128 times. (Before the
        // byte bound, all 1,000 were kept: 64 MiB.)
        let cache = ScoreCache::new(10_000, 8 << 20);
        for key in 0..1_000u128 {
            cache.insert(key, &scored_with_reason(64 << 10));
        }
        assert!(cache.weight() <= 8 << 20, "cache holds {} bytes", cache.weight());
        assert!(cache.len() <= 128, "{} entries of 64 KiB in 8 MiB", cache.len());
        assert!(!cache.is_empty(), "the cache still keeps what fits");
    }

    #[test]
    fn entries_are_bounded_too() {
        let cache = ScoreCache::new(100, 256 << 20);
        for key in 0..10_000u128 {
            cache.insert(key, &scored_with_reason(0));
        }
        assert!(cache.len() <= 100, "{} entries, 100 allowed", cache.len());
    }
}
