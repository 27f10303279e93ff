//! The engine's own types: what a rollout is on the way in, and what a score is on the way out.
//! Every transport adapter converts into [`Rollout`] and out of [`Scored`]; nothing else crosses.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// One turn of a conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Message {
    /// `system`, `user`, `assistant`, `nova_assistant`, `tool`, ...
    pub role: String,
    /// The turn's text (multi-part contents already joined).
    pub content: String,
}

/// One generated answer to score.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rollout {
    /// The caller's id, echoed in the answer.
    pub id: String,
    /// The conversation, the generated answer last: every adapter makes it so, whatever shape the
    /// caller sent (a separate completion is appended as an `assistant` turn).
    pub messages: Vec<Message>,
    /// The dataset's reference answer as JSON text; `null` when absent.
    pub reference: String,
    /// Other fields of the rollout as a JSON object text; `{}` when none.
    pub metadata: String,
    /// The GRPO group the caller put the rollout in (a record's `group`, the proto's
    /// `Rollout.group`); `None` when it named none, and the rollout then belongs to its prompt's
    /// group. Only rewards declared `groups = true` read it ([`crate::group`]); it is not part of
    /// the rollout's score cache key, since other rewards score a rollout alone.
    pub group: Option<String>,
}

/// Roles that mark the generated answer.
pub const ANSWER_ROLES: [&str; 2] = ["assistant", "nova_assistant"];

/// Why a conversation holds no generated answer to score. A door prefixes where it found the
/// problem (`line 7: `, `rollouts[3]: `).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No messages and no completion.
    #[error("no answer to score: `messages` is empty (the generated answer must be its last item)")]
    Missing,
    /// No completion, and the last message is not an answer (its role is given).
    #[error("the last message has role `{0}`; the generated answer (role `assistant` or `nova_assistant`) must come last")]
    NotLast(String),
    /// A completion, and a last message that is an answer with other text (its role is given).
    #[error("`completion` differs from the last message (role `{0}`), which is the answer; send the answer once")]
    Differs(String),
}

impl Rollout {
    /// The one way a door builds a rollout; it owns the answer rule. The generated answer is the
    /// conversation's last message, with a role in [`ANSWER_ROLES`]. A `completion`, when the
    /// caller sends one separately, is that answer: it is appended as an `assistant` turn, unless
    /// the last message already is an answer, which must then be the same text (the answer is
    /// sent once, never two that could disagree).
    pub fn new(
        id: String,
        mut messages: Vec<Message>,
        completion: Option<String>,
        reference: String,
        metadata: String,
    ) -> Result<Rollout, AnswerError> {
        let last_answer = messages.last().filter(|m| ANSWER_ROLES.contains(&m.role.as_str()));
        match (completion, last_answer) {
            (None, Some(_)) => {}
            (None, None) => {
                return Err(messages.last().map_or(AnswerError::Missing, |m| AnswerError::NotLast(m.role.clone())));
            }
            (Some(c), Some(m)) if m.content != c => return Err(AnswerError::Differs(m.role.clone())),
            (Some(_), Some(_)) => {}
            (Some(c), None) => messages.push(Message { role: "assistant".into(), content: c }),
        }
        Ok(Rollout { id, messages, reference, metadata, group: None })
    }

    /// The rollout, in the group named `group` (`None`: its prompt's group, see [`crate::group`]).
    pub fn in_group(mut self, group: Option<String>) -> Rollout {
        self.group = group;
        self
    }

    /// The generated answer's text: the last message's content (empty when there is none). Kept
    /// once, in the conversation, so the two can never disagree.
    pub fn completion(&self) -> &str {
        self.messages.last().map_or("", |m| &m.content)
    }
}

/// How a rollout's scoring ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Scored.
    Ok,
    /// The rollout itself is unusable (malformed line, missing reference, ...).
    InvalidInput,
    /// The plugin trapped, panicked, returned a non-finite or oversized answer, or reported a failure.
    PluginError,
    /// The fuel budget (deterministic) or the wall-clock deadline ran out.
    Timeout,
    /// The plugin asked for more memory than its limit.
    OutOfMemory,
    /// Something failed in the host itself (a bug, or instantiation failed for lack of resources).
    Internal,
    /// A model the reward asks (its `judge` grant) gave no usable answer: it timed out, refused,
    /// was unreachable or rate-limited past the retries, or answered something that is not a
    /// completion. The rollout was not judged, which is not the same as judged wrong.
    JudgeError,
}

impl Status {
    /// Every status, in display order.
    pub const ALL: [Status; 7] =
        [Status::Ok, Status::InvalidInput, Status::PluginError, Status::Timeout, Status::OutOfMemory, Status::Internal, Status::JudgeError];

    /// The wire name, e.g. `PLUGIN_ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::InvalidInput => "INVALID_INPUT",
            Status::PluginError => "PLUGIN_ERROR",
            Status::Timeout => "TIMEOUT",
            Status::OutOfMemory => "OUT_OF_MEMORY",
            Status::Internal => "INTERNAL",
            Status::JudgeError => "JUDGE_ERROR",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a metric is paid to the model or only reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Part of the reward.
    Reward,
    /// Diagnostic only.
    Metric,
}

/// A named number reported beside the score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metric {
    /// Metric name; composite rewards prefix their components' metrics with `component.`.
    pub name: String,
    /// Always finite.
    pub value: f64,
    /// Reward or diagnostic.
    pub kind: MetricKind,
}

/// Where a score came from: enough to reproduce it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The reward's name in the rewards config.
    pub reward: String,
    /// sha256 of the plugin's component bytes (for a composite reward, of its components' hashes).
    pub plugin_sha256: String,
    /// sha256 of the reward's canonical definition: plugin config, limits, formula.
    pub config_hash: String,
    /// The models the reward's judges are configured to ask (each `[judges.NAME]`'s `model`; a
    /// composite's are its components'), sorted, each once: which model graded, beside the
    /// hashes. Empty, and left out of JSON, for a reward that asks no judge.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub judge_models: Vec<String>,
}

/// A failure that kept a rollout from being scored.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Never [`Status::Ok`].
    pub status: Status,
    /// What went wrong, naming the plugin or the input field.
    pub message: String,
}

impl Failure {
    /// A failure with the given status and message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
    }
}

/// A scored rollout: the one result type every adapter writes out.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// The rollout's id, as the caller sent it.
    pub id: String,
    /// The reward; `None` when the rollout failed under the `abstain` policy (or `fail`).
    pub score: Option<f64>,
    /// How scoring ended.
    pub status: Status,
    /// Per-check metrics.
    pub metrics: Vec<Metric>,
    /// The plugin's explanation, if it gave one.
    pub reason: Option<String>,
    /// What went wrong, when the status is not OK.
    pub error: Option<String>,
    /// Instructions executed in the sandbox (fuel consumed), summed over components.
    pub instructions: u64,
    /// Wall time spent scoring this rollout.
    pub latency: Duration,
    /// Which reward, plugin and config produced it.
    pub provenance: Arc<Provenance>,
    /// Served from a score cache: an identical rollout was scored before.
    pub cached: bool,
}

/// Name of the metric that marks a rollout that could not be scored, at the doors whose contract
/// has no "no score" (the Nova Lambda, OpenRLHF, slime): 1 there, so failures show in the
/// training metrics instead of hiding as zeros.
pub const ERROR_METRIC: &str = "reward_error";

impl Scored {
    /// The reward a contract with no "no score" answers: the score, or 0 when there is none (a
    /// failed rollout under `abstain`; under `zero` the score already is 0).
    pub fn score_or_zero(&self) -> f64 {
        self.score.unwrap_or(0.0)
    }

    /// The value of [`ERROR_METRIC`]: 1 when the rollout could not be scored, else 0.
    pub fn error_flag(&self) -> f64 {
        if self.status == Status::Ok { 0.0 } else { 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }

    fn new(messages: Vec<Message>, completion: Option<&str>) -> Result<Rollout, AnswerError> {
        Rollout::new("r".into(), messages, completion.map(str::to_owned), "null".into(), "{}".into())
    }

    #[test]
    fn the_answer_is_the_last_message_and_is_sent_once() {
        // A separate completion is appended after the prompt; the last answer turn is kept as is.
        let r = new(vec![msg("user", "q")], Some("a")).unwrap();
        assert_eq!(r.messages, [msg("user", "q"), msg("assistant", "a")]);
        assert_eq!(new(vec![msg("user", "q"), msg("nova_assistant", "a")], None).unwrap().completion(), "a");
        assert_eq!(new(vec![msg("assistant", "a")], Some("a")).unwrap().messages.len(), 1, "the same answer twice is one turn");
        assert_eq!(new(vec![], Some("a")).unwrap().messages, [msg("assistant", "a")]);
        // No answer anywhere, an answer that is not last, two answers that disagree.
        assert_eq!(new(vec![], None).unwrap_err(), AnswerError::Missing);
        assert_eq!(new(vec![msg("assistant", "a"), msg("user", "q")], None).unwrap_err(), AnswerError::NotLast("user".into()));
        assert_eq!(new(vec![msg("assistant", "a")], Some("b")).unwrap_err(), AnswerError::Differs("assistant".into()));
    }
}
