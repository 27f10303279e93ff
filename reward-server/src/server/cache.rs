//! The score cache: an identical (reward, config, plugin, rollout) is scored once. GRPO groups
//! repeat completions, and trainers retry requests. Bounded in entries; only `OK` scores are kept
//! (a wall-clock timeout or an internal error may not happen again).

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::engine::{Metric, Provenance, Rollout, Scored, Status};

/// Default number of cached scores: 100,000 (a few hundred bytes each).
pub const DEFAULT_CACHE_ENTRIES: usize = 100_000;

/// What is kept of a score: everything but the caller's id and the latency.
#[derive(Clone, Debug)]
struct Entry {
    score: Option<f64>,
    metrics: Arc<[Metric]>,
    reason: Option<Arc<str>>,
    instructions: u64,
    provenance: Arc<Provenance>,
}

/// A bounded, concurrent score cache keyed by a 128-bit hash.
pub struct ScoreCache {
    inner: quick_cache::sync::Cache<u128, Entry>,
}

impl ScoreCache {
    /// A cache of at most `entries` scores.
    pub fn new(entries: usize) -> Self {
        ScoreCache { inner: quick_cache::sync::Cache::new(entries.max(1)) }
    }

    /// The key of a rollout under a reward: the reward's plugin and config hashes and every field
    /// of the rollout except its id. Fields are length-prefixed so no two rollouts collide by
    /// concatenation.
    pub fn key(provenance: &Provenance, rollout: &Rollout) -> u128 {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(provenance.reward.as_bytes());
        field(provenance.plugin_sha256.as_bytes());
        field(provenance.config_hash.as_bytes());
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
        Provenance { reward: "r".into(), plugin_sha256: "p".into(), config_hash: config_hash.into() }
    }

    fn rollout(id: &str, completion: &str) -> Rollout {
        Rollout {
            id: id.into(),
            messages: vec![Message { role: "assistant".into(), content: completion.into() }],
            reference: "1".into(),
            metadata: "{}".into(),
        }
    }

    #[test]
    fn key_ignores_id_and_sees_everything_else() {
        let p = provenance("c");
        assert_eq!(ScoreCache::key(&p, &rollout("a", "x")), ScoreCache::key(&p, &rollout("b", "x")));
        assert_ne!(ScoreCache::key(&p, &rollout("a", "x")), ScoreCache::key(&p, &rollout("a", "y")));
        assert_ne!(ScoreCache::key(&p, &rollout("a", "x")), ScoreCache::key(&provenance("d"), &rollout("a", "x")));
        let mut other_ref = rollout("a", "x");
        other_ref.reference = "2".into();
        assert_ne!(ScoreCache::key(&p, &rollout("a", "x")), ScoreCache::key(&p, &other_ref));
        // Field boundaries matter: ("ab", "c") is not ("a", "bc").
        let mut r1 = rollout("a", "ab");
        r1.reference = "c".into();
        let mut r2 = rollout("a", "a");
        r2.reference = "bc".into();
        assert_ne!(ScoreCache::key(&p, &r1), ScoreCache::key(&p, &r2));
    }

    #[test]
    fn only_ok_scores_are_kept_and_ids_are_relabelled() {
        let cache = ScoreCache::new(10);
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
}
