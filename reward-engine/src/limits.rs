//! Per-reward sandbox limits.

use std::time::Duration;

use serde::Deserialize;

/// Default fuel per rollout: 1,000,000,000 instructions (well under a second of guest code).
pub const DEFAULT_FUEL: u64 = 1_000_000_000;
/// Default wall-clock deadline per rollout: 10 s. A safety net; fuel decides timeouts reproducibly.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// Default linear-memory cap per instance: 256 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;
/// Default longest wall-clock time of one call of a groups reward (a whole group): 120 s, twice
/// the server's default request timeout. See [`Limits::group_deadline`].
pub const DEFAULT_GROUP_DEADLINE: Duration = Duration::from_secs(120);
/// Default cap on a score's reason: 64 KiB.
pub const DEFAULT_MAX_REASON_BYTES: usize = 64 << 10;
/// Default cap on metrics per score: 256.
pub const DEFAULT_MAX_METRICS: usize = 256;
/// Default instance reuse: 1 (a fresh instance for every batch).
pub const DEFAULT_INSTANCE_REUSE: u32 = 1;
/// Fuel granted to instantiating a plugin (start functions, interpreter start-up): 20,000,000,000.
/// Not charged to any rollout.
pub const INSTANTIATION_FUEL: u64 = 20_000_000_000;
/// How many of a reward's `timeout_ms` instantiating its plugin (start functions, a Python
/// interpreter's start-up) and its first config check may take: 4. Not charged to any rollout.
pub const INSTANTIATION_DEADLINE_FACTOR: u32 = 4;

/// Longest error text kept from a guest (a rollout's `invalid-input` / `failed` message, a config
/// refusal): 4 KiB. Longer texts are cut at a character boundary and marked with how much was cut.
pub const MAX_GUEST_ERROR_BYTES: usize = 4 << 10;
/// Longest metric name a guest may return or declare: 128 bytes. Longer is a `PLUGIN_ERROR`.
pub const MAX_METRIC_NAME_BYTES: usize = 128;
/// Longest plugin name: 64 bytes; version: 64 bytes; description: 1 KiB. Checked at load.
pub const MAX_PLUGIN_NAME_BYTES: usize = 64;
/// See [`MAX_PLUGIN_NAME_BYTES`].
pub const MAX_PLUGIN_VERSION_BYTES: usize = 64;
/// See [`MAX_PLUGIN_NAME_BYTES`].
pub const MAX_PLUGIN_DESCRIPTION_BYTES: usize = 1 << 10;
/// Most metrics a plugin may declare in its metadata: 1,024.
pub const MAX_DECLARED_METRICS: usize = 1 << 10;

/// `text` if it fits in `max` bytes, else its first `max` bytes (at a character boundary) and a
/// note of how many bytes were cut. Every string a guest hands back that the host keeps passes
/// through here or a hard cap, so a guest cannot make the host hold, log or send megabytes.
pub fn bounded_guest_text(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} more bytes cut)", &text[..cut], text.len() - cut).into()
}

/// What a plugin may spend on one rollout, and how long an instance lives.
///
/// These limits are enforced by the host on every call. They do not cover the host's own work
/// (parsing, copying) nor instantiation, which has its own budget ([`INSTANTIATION_FUEL`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Fuel per rollout, in wasm instructions (approximately: one unit per instruction). Running
    /// out is a `TIMEOUT` that happens at the same instruction on every run.
    /// Defaults to 1,000,000,000 ([`DEFAULT_FUEL`]).
    pub fuel: u64,
    /// Wall-clock deadline per rollout, in milliseconds: the kill switch for what fuel does not
    /// meter. Passing it is a `TIMEOUT` that depends on the machine. Defaults to 10,000.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub deadline: Duration,
    /// For a reward that scores whole groups (`groups = true`), the longest wall-clock time of
    /// one call, in milliseconds. A group's call runs on its size times `timeout_ms`, at most
    /// this (and never less than `timeout_ms`): without the cap a group of 512 at the default
    /// 10 s could hold a worker for 85 minutes, long after its request's deadline answered.
    /// Defaults to 120,000 ([`DEFAULT_GROUP_DEADLINE`]); fuel is not capped (it is
    /// deterministic and per rollout).
    #[serde(rename = "group_timeout_ms", with = "millis")]
    pub group_deadline: Duration,
    /// Linear-memory cap per instance, in MiB; growing past it is `OUT_OF_MEMORY`. Defaults to 256.
    #[serde(rename = "memory_mib", with = "mebibytes")]
    pub memory_bytes: u64,
    /// Longest accepted reason, in bytes; longer is a `PLUGIN_ERROR`. Defaults to 65,536.
    pub max_reason_bytes: usize,
    /// Most metrics accepted per score; more is a `PLUGIN_ERROR`. Defaults to 256.
    pub max_metrics: usize,
    /// How many batches an instance serves before it is dropped. 1 means a fresh instance per
    /// batch (the safest: no state survives a batch); pure guests and heavy ones (Python) want
    /// hundreds. A trap always drops the instance. Defaults to 1.
    pub instance_reuse: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: DEFAULT_FUEL,
            deadline: DEFAULT_DEADLINE,
            group_deadline: DEFAULT_GROUP_DEADLINE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_reason_bytes: DEFAULT_MAX_REASON_BYTES,
            max_metrics: DEFAULT_MAX_METRICS,
            instance_reuse: DEFAULT_INSTANCE_REUSE,
        }
    }
}

impl Limits {
    /// The wall-clock deadline of instantiating a plugin under these limits (and of checking its
    /// config): [`INSTANTIATION_DEADLINE_FACTOR`] times `timeout_ms`.
    pub fn instantiation_deadline(&self) -> Duration {
        self.deadline.saturating_mul(INSTANTIATION_DEADLINE_FACTOR)
    }

    /// Checks the limits against each other and against the host's ceilings.
    pub fn validate(&self, host_memory_ceiling: u64) -> Result<(), String> {
        validate_budget(self.fuel, self.deadline, self.memory_bytes, host_memory_ceiling)?;
        if self.instance_reuse == 0 {
            return Err("instance_reuse must be at least 1 (1 = fresh instance per batch)".into());
        }
        if self.group_deadline.is_zero() {
            return Err("group_timeout_ms must be at least 1".into());
        }
        Ok(())
    }

    /// The limits as they enter a reward's `config_hash`: an object keyed by the names and in the
    /// units of the `limits` table in the config file (`fuel`, `timeout_ms`, `memory_mib`,
    /// `max_reason_bytes`, `max_metrics`, `instance_reuse`), each a whole number. That spelling
    /// is the config's public contract, so the hash (and with it every result's provenance)
    /// changes when a limit's value changes, never when a Rust field or its `Debug` text does. A
    /// new limit must be added here (its default changes no existing hash only if it is left out
    /// while at its default: decide then; `group_timeout_ms` is left out at its default).
    pub fn provenance_json(&self) -> serde_json::Value {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut json = serde_json::json!({
            "fuel": self.fuel,
            "timeout_ms": millis(self.deadline),
            "memory_mib": self.memory_bytes >> 20,
            "max_reason_bytes": self.max_reason_bytes,
            "max_metrics": self.max_metrics,
            "instance_reuse": self.instance_reuse,
        });
        if self.group_deadline != DEFAULT_GROUP_DEADLINE {
            json["group_timeout_ms"] = millis(self.group_deadline).into();
        }
        json
    }
}

/// Checks the three budgets every guest call runs on (a reward's `limits`, an interpreter grant's
/// budget), naming the config key: fuel and deadline positive, memory from 1 MiB up to the
/// host's per-instance ceiling.
pub(crate) fn validate_budget(fuel: u64, deadline: Duration, memory_bytes: u64, host_memory_ceiling: u64) -> Result<(), String> {
    if fuel == 0 {
        return Err("fuel must be at least 1".into());
    }
    if deadline.is_zero() {
        return Err("timeout_ms must be at least 1".into());
    }
    if memory_bytes < 1 << 20 {
        return Err("memory_mib must be at least 1".into());
    }
    if memory_bytes > host_memory_ceiling {
        return Err(format!(
            "memory_mib {} exceeds the host's per-instance ceiling of {} MiB (--max-memory-mib)",
            memory_bytes >> 20,
            host_memory_ceiling >> 20
        ));
    }
    Ok(())
}

/// Epoch ticks for a deadline, rounded up, plus one for the partial tick in progress.
pub(crate) fn epoch_ticks(deadline: Duration, tick: Duration) -> u64 {
    let n = deadline.as_nanos().div_ceil(tick.as_nanos().max(1));
    u64::try_from(n).unwrap_or(u64::MAX - 1).saturating_add(1)
}

pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

pub(crate) mod mebibytes {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let mib = u64::deserialize(d)?;
        mib.checked_mul(1 << 20).ok_or_else(|| serde::de::Error::custom("memory_mib is too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_encoding_is_the_config_spelling() {
        // Read back as a config `limits` table, the encoding gives the same limits: every limit is
        // in it, under its config name and unit.
        let limits = Limits {
            fuel: 7,
            deadline: Duration::from_millis(1234),
            group_deadline: Duration::from_millis(5678),
            memory_bytes: 48 << 20,
            max_reason_bytes: 99,
            max_metrics: 3,
            instance_reuse: 5,
        };
        let back: Limits = serde_json::from_value(limits.provenance_json()).unwrap();
        assert_eq!(back, limits);
        // At its default `group_timeout_ms` is left out, so no reward's hash changed with it.
        let default = Limits::default().provenance_json();
        assert!(default.get("group_timeout_ms").is_none(), "{default}");
        assert_eq!(serde_json::from_value::<Limits>(default).unwrap(), Limits::default());
    }

    #[test]
    fn defaults_validate() {
        Limits::default().validate(4 << 30).unwrap();
    }

    #[test]
    fn memory_over_ceiling_names_both_knobs() {
        let limits = Limits { memory_bytes: 8 << 30, ..Limits::default() };
        let err = limits.validate(4 << 30).unwrap_err();
        assert!(err.contains("memory_mib 8192") && err.contains("--max-memory-mib"), "{err}");
    }

    #[test]
    fn toml_units_convert() {
        let limits: Limits = toml::from_str("fuel = 5\ntimeout_ms = 250\nmemory_mib = 16").unwrap();
        assert_eq!(limits.fuel, 5);
        assert_eq!(limits.deadline, Duration::from_millis(250));
        assert_eq!(limits.memory_bytes, 16 << 20);
        assert_eq!(limits.instance_reuse, DEFAULT_INSTANCE_REUSE);
    }

    #[test]
    fn guest_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded_guest_text("short", 10), "short");
        let cut = bounded_guest_text("ééééé", 3);
        assert_eq!(cut, "é... (8 more bytes cut)");
        assert!(bounded_guest_text(&"x".repeat(1 << 20), MAX_GUEST_ERROR_BYTES).len() < MAX_GUEST_ERROR_BYTES + 64);
    }

    #[test]
    fn unknown_limit_is_refused() {
        let err = toml::from_str::<Limits>("fule = 5").unwrap_err().to_string();
        assert!(err.contains("unknown field `fule`"), "{err}");
    }
}
