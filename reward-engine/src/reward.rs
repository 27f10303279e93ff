//! Rewards: a plugin with its config and limits, or a formula over other rewards; and the
//! failure policy that decides what a rollout that could not be scored is worth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::formula::Formula;
use super::limits::Limits;
use super::plugin::{Grants, Plugin};
use super::request::{self, Item};
use super::types::{Failure, Metric, MetricKind, Provenance, Rollout, Scored, Status};

/// What a rollout that could not be scored is worth. Never an accident: every reward has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Score 0, and keep the failure's status and error text.
    #[default]
    Zero,
    /// No score (`null` on the wire): the trainer leaves the rollout out.
    Abstain,
    /// The whole request fails (offline: the run exits non-zero after writing every line).
    Fail,
}

/// A rollout failed under a reward whose policy is `on_error = "fail"`: its whole request fails.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("reward `{reward}` has on_error = \"fail\" and rollout `{id}` failed ({status}): {error}")]
pub struct RolloutFailed {
    /// The reward.
    pub reward: String,
    /// The failed rollout's id.
    pub id: String,
    /// Its status.
    pub status: Status,
    /// Its error text.
    pub error: String,
}

/// A plugin reward's own parts.
#[derive(Debug)]
pub struct PluginReward {
    /// The plugin.
    pub plugin: Arc<Plugin>,
    /// The reward's JSON config, as passed to the plugin.
    pub config_json: String,
    /// Sandbox limits for this reward.
    pub limits: Limits,
    /// What this reward grants its plugin (fixture files, an interpreter); nothing by default.
    pub grants: Grants,
    /// Whether the plugin scores whole GRPO groups (`groups = true`): each call holds exactly
    /// one group ([`Plugin::score_groups`]).
    pub groups: bool,
}

/// A composite reward's parts.
#[derive(Debug)]
pub struct CompositeReward {
    /// (alias used in the formula, component reward).
    pub components: Vec<(String, Arc<Reward>)>,
    /// The formula; its variables are resolved to `slots`.
    pub formula: Formula,
    /// For each formula variable: the component index and the metric (`None` = score).
    pub slots: Vec<(usize, Option<String>)>,
}

/// How a reward computes.
#[derive(Debug)]
pub enum RewardKind {
    /// One plugin call per rollout.
    Plugin(PluginReward),
    /// A formula over component rewards.
    Composite(CompositeReward),
}

/// A named reward from the rewards config.
#[derive(Debug)]
pub struct Reward {
    /// Its name in the config.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// What it is made of.
    pub kind: RewardKind,
    /// Its failure policy.
    pub on_error: OnError,
    /// Stamped on every score.
    pub provenance: Arc<Provenance>,
}

/// A rollout's raw result before the failure policy applies.
#[derive(Clone, Debug)]
struct Evaluation {
    result: Result<(f64, Vec<Metric>, Option<String>), Failure>,
    instructions: u64,
    latency: Duration,
}

impl Reward {
    /// Scores a batch: one [`Scored`] per rollout, same order, the failure policy applied.
    pub fn score_batch(&self, rollouts: &[Rollout]) -> Vec<Scored> {
        self.score_batch_until(rollouts, &|| false)
    }

    /// [`Reward::score_batch`], checking `cancelled` before each plugin call; rollouts not run
    /// answer `TIMEOUT`. Servers pass "the caller's deadline passed or it hung up".
    pub fn score_batch_until(&self, rollouts: &[Rollout], cancelled: &dyn Fn() -> bool) -> Vec<Scored> {
        self.evaluate(rollouts, cancelled).into_iter().zip(rollouts).map(|(eval, rollout)| self.finish(&rollout.id, eval)).collect()
    }

    /// Scores a request's items: the rejected ones answered in place by the failure policy, the
    /// rollouts scored as one batch ([`Reward::score_batch_until`]), one [`Scored`] per item in
    /// request order. The offline scorer and the Lambda bridge call this; the server's pool does
    /// the same steps around its cache ([`crate::request::split`]).
    pub fn score_items(&self, items: Vec<Item>, cancelled: &dyn Fn() -> bool) -> Vec<Scored> {
        let (rollouts, placement) = request::split(items);
        let scored = self.score_batch_until(&rollouts, cancelled);
        placement.assemble(scored, |id, failure| self.reject(id, failure)).expect("score_batch answers every rollout")
    }

    /// A rollout that never reached the plugin (it did not parse): scored by the failure policy.
    pub fn reject(&self, id: &str, failure: Failure) -> Scored {
        self.finish(id, Evaluation { result: Err(failure), instructions: 0, latency: Duration::ZERO })
    }

    /// The identity of the data this reward reads besides the rollout: the generations of the
    /// fixture grants of it and its components ([`crate::Fixtures::generation`]), folded; 0 when it
    /// reads none. Score caches key on it, so scores computed on a fixtures directory as it was
    /// before a reload are never served after it.
    pub fn data_identity(&self) -> u64 {
        match &self.kind {
            RewardKind::Plugin(p) => p.grants.fixtures.as_ref().map_or(0, |f| f.generation()),
            RewardKind::Composite(c) => {
                c.components.iter().fold(0u64, |acc, (_, r)| acc.rotate_left(17) ^ r.data_identity().wrapping_mul(0x9e37_79b9_7f4a_7c15))
            }
        }
    }

    /// Whether this reward, or one of its components, asks a judge: its rollouts spend most of
    /// their time waiting on a model, so servers run them off the CPU workers.
    pub fn uses_judge(&self) -> bool {
        match &self.kind {
            RewardKind::Plugin(p) => p.grants.judge.is_some(),
            RewardKind::Composite(c) => c.components.iter().any(|(_, r)| r.uses_judge()),
        }
    }

    /// Whether this reward, or one of its components, scores whole GRPO groups: callers that cut
    /// a request into batches must cut between groups ([`crate::group::partition`]), and a
    /// rollout's score depends on the rest of its group, so it is not cached alone.
    pub fn groups(&self) -> bool {
        match &self.kind {
            RewardKind::Plugin(p) => p.groups,
            RewardKind::Composite(c) => c.components.iter().any(|(_, r)| r.groups()),
        }
    }

    /// Whether a batch's results fail the whole request under this reward's policy; returns the
    /// first failed rollout if so.
    pub fn fatal<'a>(&self, scored: &'a [Scored]) -> Option<&'a Scored> {
        if self.on_error != OnError::Fail {
            return None;
        }
        scored.iter().find(|s| s.status != Status::Ok)
    }

    /// [`Reward::fatal`] as the error every door answers: the request fails, naming the rollout.
    pub fn request_failure(&self, scored: &[Scored]) -> Option<RolloutFailed> {
        self.fatal(scored).map(|s| RolloutFailed {
            reward: self.name.clone(),
            id: s.id.clone(),
            status: s.status,
            error: s.error.clone().unwrap_or_default(),
        })
    }

    fn finish(&self, id: &str, eval: Evaluation) -> Scored {
        let (score, status, metrics, reason, error) = match eval.result {
            Ok((value, metrics, reason)) => (Some(value), Status::Ok, metrics, reason, None),
            Err(failure) => {
                let score = match self.on_error {
                    OnError::Zero => Some(0.0),
                    OnError::Abstain | OnError::Fail => None,
                };
                (score, failure.status, Vec::new(), None, Some(failure.message))
            }
        };
        Scored {
            id: id.to_owned(),
            score,
            status,
            metrics,
            reason,
            error,
            instructions: eval.instructions,
            latency: eval.latency,
            provenance: self.provenance.clone(),
            cached: false,
        }
    }

    fn evaluate(&self, rollouts: &[Rollout], cancelled: &dyn Fn() -> bool) -> Vec<Evaluation> {
        match &self.kind {
            RewardKind::Plugin(p) => if p.groups {
                p.plugin.score_groups(&p.config_json, rollouts, &p.limits, &p.grants, cancelled)
            } else {
                p.plugin.score_until(&p.config_json, rollouts, &p.limits, &p.grants, cancelled)
            }
            .into_iter()
            .map(|o| Evaluation {
                result: o.result.map(|s| (s.value, s.metrics, s.reason)),
                instructions: o.instructions,
                latency: o.latency,
            })
            .collect(),
            RewardKind::Composite(c) => self.evaluate_composite(c, rollouts, cancelled),
        }
    }

    fn evaluate_composite(&self, c: &CompositeReward, rollouts: &[Rollout], cancelled: &dyn Fn() -> bool) -> Vec<Evaluation> {
        let started = Instant::now();
        let per_component: Vec<Vec<Evaluation>> = c.components.iter().map(|(_, r)| r.evaluate(rollouts, cancelled)).collect();
        let mut out = Vec::with_capacity(rollouts.len());
        for i in 0..rollouts.len() {
            let evals: Vec<&Evaluation> = per_component.iter().map(|v| &v[i]).collect();
            let instructions = evals.iter().map(|e| e.instructions).sum();
            let latency = evals.iter().map(|e| e.latency).sum();
            out.push(Evaluation { result: self.combine(c, &evals), instructions, latency });
        }
        tracing::trace!(reward = %self.name, elapsed = ?started.elapsed(), "composite batch");
        out
    }

    /// One rollout's composite result: the first failing component decides the failure;
    /// otherwise the formula over the components' scores and metrics.
    fn combine(&self, c: &CompositeReward, evals: &[&Evaluation]) -> Result<(f64, Vec<Metric>, Option<String>), Failure> {
        let mut oks = Vec::with_capacity(evals.len());
        for ((alias, _), eval) in c.components.iter().zip(evals) {
            match &eval.result {
                Ok(ok) => oks.push(ok),
                Err(f) => return Err(Failure::new(f.status, format!("component `{alias}`: {}", f.message))),
            }
        }
        let mut values = Vec::with_capacity(c.slots.len());
        for (index, metric) in &c.slots {
            let (score, metrics, _) = oks[*index];
            let alias = &c.components[*index].0;
            let value = match metric {
                None => *score,
                Some(name) => metrics.iter().find(|m| &m.name == name).map(|m| m.value).ok_or_else(|| {
                    Failure::new(
                        Status::PluginError,
                        format!("reward `{}`: component `{alias}` did not report metric `{name}` used by the formula", self.name),
                    )
                })?,
            };
            values.push(value);
        }
        let value = c.formula.eval(&values);
        if !value.is_finite() {
            return Err(Failure::new(
                Status::PluginError,
                format!("reward `{}`: formula `{}` gave {value} (division by zero?)", self.name, c.formula.source()),
            ));
        }
        let mut metrics = Vec::new();
        let mut reasons = Vec::new();
        for ((alias, _), (score, component_metrics, reason)) in c.components.iter().zip(&oks) {
            metrics.push(Metric { name: alias.clone(), value: *score, kind: MetricKind::Reward });
            for m in component_metrics.iter() {
                metrics.push(Metric { name: format!("{alias}.{}", m.name), value: m.value, kind: m.kind });
            }
            if let Some(r) = reason {
                reasons.push(format!("{alias}: {r}"));
            }
        }
        let reason = if reasons.is_empty() { None } else { Some(reasons.join("; ")) };
        Ok((value, metrics, reason))
    }
}
