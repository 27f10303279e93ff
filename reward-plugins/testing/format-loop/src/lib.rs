//! A measuring guest: scores each rollout with the `format` plugin's own code `repeat` times in a
//! row and returns the last score. One call then costs the host one crossing and the sandbox
//! `repeat` rounds of compute, so timing it against the same loop natively shows what WebAssembly
//! and the sandbox's metering (fuel, epochs) cost the checks themselves, apart from the host's
//! per-rollout work (`reward-server/benches/format_sandbox.rs`, group `format_2kb_compute`).
//!
//! Config: `{"repeat": N, "format": {...the format plugin's config...}}`.

use reward_format::{FormatConfig, FormatReward};
use reward_sdk::{PluginInfo, Reward, Rollout, RolloutError, Score};
use serde::Deserialize;

/// This guest's config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    /// Rounds of the format checks per rollout (at least 1).
    pub repeat: u32,
    /// The format plugin's config.
    pub format: FormatConfig,
}

/// The format checks, `repeat` times.
pub struct FormatLoop;

impl Reward for FormatLoop {
    type Config = LoopConfig;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "format-loop".into(),
            version: "0.1.0".into(),
            description: "the format checks repeated, for measuring the sandbox's compute".into(),
            metrics: FormatReward::info().metrics,
        }
    }

    fn validate(config: &LoopConfig) -> Result<(), String> {
        if config.repeat == 0 {
            return Err("repeat must be at least 1".into());
        }
        FormatReward::validate(&config.format)
    }

    fn score(config: &LoopConfig, rollout: &Rollout) -> Result<Score, RolloutError> {
        let mut last = FormatReward::score(&config.format, rollout);
        for _ in 1..config.repeat {
            last = FormatReward::score(&config.format, std::hint::black_box(rollout));
        }
        last
    }
}

reward_sdk::export_reward!(FormatLoop);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeating_gives_the_format_score() {
        let config: LoopConfig = serde_json::from_str(r#"{"repeat": 3, "format": {"required_tags": ["answer"]}}"#).unwrap();
        let rollout = Rollout { completion: "<answer>4</answer>".into(), ..Rollout::default() };
        let once = FormatReward::score(&config.format, &rollout).unwrap();
        assert_eq!(FormatLoop::score(&config, &rollout).unwrap().value, once.value);
        let zero: LoopConfig = serde_json::from_str(r#"{"repeat": 0, "format": {}}"#).unwrap();
        assert!(FormatLoop::validate(&zero).unwrap_err().contains("repeat"));
    }
}
