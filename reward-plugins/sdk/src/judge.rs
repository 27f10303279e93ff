//! Asking the model a reward is granted (`judge = "NAME"` on the reward, the endpoint in the
//! rewards config's `[judges.NAME]` table): the contract's `judge` import
//! (`reward-plugins/wit/judge.wit`), for model-graded rewards.
//!
//! The host owns the connection: endpoint, model, API key, timeout, retries, and the
//! requests-per-minute, tokens-per-minute and concurrency limits shared by every reward using the
//! endpoint. The plugin only sends messages and reads the answer. Which model answers is the
//! grant's choice, never the plugin's.
//!
//! Reproducible by default: sampling left unset ([`Sampling::default`]) is temperature 0 with the
//! grant's fixed seed and its `max_tokens`, and the host caches answers by (endpoint, model,
//! messages, sampling), so the same question asked twice is one model call.
//!
//! A failed call fails the rollout: whatever the plugin answers for it afterwards, the host scores
//! it `JUDGE_ERROR` with the judge's error, and the reward's `on_error` decides what the trainer
//! sees. The error is handed to the plugin so that it can stop early. The host counts each
//! rollout's calls, tokens, cache hits and judge latency in its own metrics (`judge_*`); a plugin
//! need not report them. Waiting on the model does not count against the reward's `timeout_ms`,
//! and a rollout may make at most the grant's `max_calls_per_rollout` calls.
//!
//! On wasm32 [`complete`] calls the host. Natively there is no model: it calls the stand-in set
//! with [`set_native_judge`] (a unit test's stand-in for the host), and answers
//! [`JudgeError::NotGranted`], as an ungranted host does, when none is set.

use std::fmt;

/// One turn of the conversation sent to the model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage { role: role.into(), content: content.into() }
    }
}

/// Sampling parameters for one call. Each one left `None` takes the grant's default: temperature
/// 0, the grant's seed, its `max_tokens`; `top_p` is then not sent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sampling {
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling mass.
    pub top_p: Option<f64>,
    /// The most tokens the answer may have.
    pub max_tokens: Option<u32>,
    /// The sampling seed.
    pub seed: Option<u64>,
}

/// The model's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// The answer's text (the first choice's message content).
    pub text: String,
    /// The model id the endpoint reported.
    pub model: String,
    /// Why the model stopped: `stop`, `length`, ... as the endpoint reported it.
    pub finish_reason: String,
    /// Prompt tokens the endpoint reported (`usage`); 0 where it reported none.
    pub prompt_tokens: u32,
    /// Completion tokens the endpoint reported; 0 where it reported none.
    pub completion_tokens: u32,
    /// Whether the answer came from the host's cache (no model call, no tokens spent).
    pub cached: bool,
}

/// Why a call has no answer. Each text says what happened, naming the judge; `Display` prints
/// the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JudgeError {
    /// The reward grants no judge.
    NotGranted(String),
    /// The model declined to answer (a `refusal`, or `finish_reason` `content_filter`).
    Refused(String),
    /// Every attempt passed the judge's timeout.
    Timeout(String),
    /// The endpoint could not be reached, or answered 429 or 5xx on every attempt.
    Unavailable(String),
    /// The endpoint answered something that is not a chat completion (a 4xx, malformed JSON, no
    /// choices).
    InvalidResponse(String),
    /// The call is over the grant's limits: more calls in one rollout than
    /// `max_calls_per_rollout`, or a prompt larger than the endpoint's tokens per minute.
    OverLimit(String),
}

impl JudgeError {
    /// The variant's name as the WIT spells it: `not-granted`, `refused`, `timeout`,
    /// `unavailable`, `invalid-response`, `over-limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            JudgeError::NotGranted(_) => "not-granted",
            JudgeError::Refused(_) => "refused",
            JudgeError::Timeout(_) => "timeout",
            JudgeError::Unavailable(_) => "unavailable",
            JudgeError::InvalidResponse(_) => "invalid-response",
            JudgeError::OverLimit(_) => "over-limit",
        }
    }

    /// The host's text.
    pub fn text(&self) -> &str {
        match self {
            JudgeError::NotGranted(t)
            | JudgeError::Refused(t)
            | JudgeError::Timeout(t)
            | JudgeError::Unavailable(t)
            | JudgeError::InvalidResponse(t)
            | JudgeError::OverLimit(t) => t,
        }
    }
}

impl fmt::Display for JudgeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for JudgeError {}

/// Asks the granted model for one chat completion of `messages`.
///
/// # Errors
///
/// The [`JudgeError`] the host answered: no grant, a refusal, a timeout, an unreachable endpoint,
/// a malformed answer, or a call over the grant's limits. The host fails the rollout with it
/// whatever the plugin answers afterwards.
pub fn complete(messages: &[ChatMessage], sampling: &Sampling) -> Result<Completion, JudgeError> {
    imp::complete(messages, sampling)
}

/// Embeddings of `texts` from the grant's embedding model: one vector per text, in order, in one
/// call.
///
/// # Errors
///
/// As [`complete`]; `NotGranted` also when the judge has no `embedding_model`.
pub fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, JudgeError> {
    imp::embed(texts)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{ChatMessage, Completion, JudgeError, Sampling};
    use crate::bindings::reward::plugin::judge as wit;

    pub fn complete(messages: &[ChatMessage], sampling: &Sampling) -> Result<Completion, JudgeError> {
        let messages: Vec<wit::ChatMessage> =
            messages.iter().map(|m| wit::ChatMessage { role: m.role.clone(), content: m.content.clone() }).collect();
        let sampling = wit::Sampling {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            max_tokens: sampling.max_tokens,
            seed: sampling.seed,
        };
        wit::complete(&messages, sampling)
            .map(|c| Completion {
                text: c.text,
                model: c.model,
                finish_reason: c.finish_reason,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
                cached: c.cached,
            })
            .map_err(error)
    }

    pub fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, JudgeError> {
        wit::embed(texts).map_err(error)
    }

    fn error(e: wit::JudgeError) -> JudgeError {
        match e {
            wit::JudgeError::NotGranted(t) => JudgeError::NotGranted(t),
            wit::JudgeError::Refused(t) => JudgeError::Refused(t),
            wit::JudgeError::Timeout(t) => JudgeError::Timeout(t),
            wit::JudgeError::Unavailable(t) => JudgeError::Unavailable(t),
            wit::JudgeError::InvalidResponse(t) => JudgeError::InvalidResponse(t),
            wit::JudgeError::OverLimit(t) => JudgeError::OverLimit(t),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::sync::Mutex;

    use super::{ChatMessage, Completion, JudgeError, Sampling};

    /// The native stand-in for the host, if a test set one.
    pub type NativeJudge = Box<dyn Fn(&[ChatMessage], &Sampling) -> Result<Completion, JudgeError> + Send>;

    pub static JUDGE: Mutex<Option<NativeJudge>> = Mutex::new(None);

    /// The native stand-in for the host's embeddings, if a test set one.
    pub type NativeEmbedder = Box<dyn Fn(&[String]) -> Result<Vec<Vec<f32>>, JudgeError> + Send>;

    pub static EMBEDDER: Mutex<Option<NativeEmbedder>> = Mutex::new(None);

    pub fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, JudgeError> {
        let embedder = EMBEDDER.lock().unwrap_or_else(|e| e.into_inner());
        match embedder.as_ref() {
            Some(embed) => embed(texts),
            None => Err(JudgeError::NotGranted("no embedder natively (set_native_embedder)".to_owned())),
        }
    }

    pub fn complete(messages: &[ChatMessage], sampling: &Sampling) -> Result<Completion, JudgeError> {
        let judge = JUDGE.lock().unwrap_or_else(|e| e.into_inner());
        match judge.as_ref() {
            Some(complete) => complete(messages, sampling),
            None => Err(JudgeError::NotGranted("no judge natively (set_native_judge)".to_owned())),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use imp::{NativeEmbedder, NativeJudge};

/// Natively only: what [`complete`] calls (process-wide), or `None` for none, when [`complete`]
/// answers [`JudgeError::NotGranted`]. A unit test's stand-in for the host; the real calls are the
/// host's. Tests that set it should hold one lock of their own while they do, since it is shared
/// by every thread.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_native_judge(judge: Option<NativeJudge>) {
    *imp::JUDGE.lock().unwrap_or_else(|e| e.into_inner()) = judge;
}

/// Natively only: what [`embed`] calls, as [`set_native_judge`] sets what [`complete`] calls.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_native_embedder(embedder: Option<NativeEmbedder>) {
    *imp::EMBEDDER.lock().unwrap_or_else(|e| e.into_inner()) = embedder;
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// One test at a time owns the process-wide stand-in.
    static ONE: Mutex<()> = Mutex::new(());

    #[test]
    fn without_a_stand_in_the_judge_is_not_granted() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        set_native_judge(None);
        let err = complete(&[ChatMessage::new("user", "hi")], &Sampling::default()).unwrap_err();
        assert_eq!(err.kind(), "not-granted");
        assert!(err.to_string().contains("set_native_judge"), "{err}");
    }

    #[test]
    fn the_stand_in_receives_the_messages_and_sampling() {
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        set_native_judge(Some(Box::new(move |messages, sampling| {
            log.lock().unwrap().push((messages.to_vec(), *sampling));
            Ok(Completion { text: "0.5".into(), model: "stand-in".into(), finish_reason: "stop".into(), ..Completion::default() })
        })));
        let sampling = Sampling { temperature: Some(0.2), seed: Some(7), ..Sampling::default() };
        let answer = complete(&[ChatMessage::new("system", "grade"), ChatMessage::new("user", "x")], &sampling).unwrap();
        set_native_judge(None);
        assert_eq!(answer.text, "0.5");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, vec![ChatMessage::new("system", "grade"), ChatMessage::new("user", "x")]);
        assert_eq!(seen[0].1, sampling);
    }

    #[test]
    fn errors_display_their_text() {
        let e = JudgeError::Timeout("judge `grader`: 3 attempts passed 30 s".into());
        assert_eq!(e.to_string(), "judge `grader`: 3 attempts passed 30 s");
        assert_eq!(e.kind(), "timeout");
        for (e, kind) in [
            (JudgeError::NotGranted(String::new()), "not-granted"),
            (JudgeError::Refused(String::new()), "refused"),
            (JudgeError::Unavailable(String::new()), "unavailable"),
            (JudgeError::InvalidResponse(String::new()), "invalid-response"),
            (JudgeError::OverLimit(String::new()), "over-limit"),
        ] {
            assert_eq!(e.kind(), kind);
        }
    }
}
