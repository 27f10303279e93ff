//! A `[judges.NAME]` table of the rewards config: where the model is, how to authenticate, and
//! the limits every reward sharing the endpoint stays under.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::super::limits::millis;

/// Default timeout of one attempt: 60 s.
pub const DEFAULT_JUDGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default retries after a 429, a 5xx, a time-out or a refused connection: 3.
pub const DEFAULT_JUDGE_RETRIES: u32 = 3;
/// Default longest wait before a retry the judge accepts (a `Retry-After` past it fails the call
/// instead of holding it): 60 s.
pub const DEFAULT_MAX_RETRY_WAIT: Duration = Duration::from_secs(60);
/// Default most calls in flight to one endpoint: 8.
pub const DEFAULT_MAX_CONCURRENT: u32 = 8;
/// Default cached answers per judge: 10,000 (their texts are also bounded by
/// [`super::CACHE_BYTES`]).
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;
/// Default `max_tokens` of a call that sets none: 512.
pub const DEFAULT_MAX_TOKENS: u32 = 512;
/// Default seed of a call that sets none: 0. With temperature 0 a re-score asks the same question
/// the same way.
pub const DEFAULT_SEED: u64 = 0;

/// One `[judges.NAME]` table.
///
/// ```toml
/// [judges.local]
/// url = "http://127.0.0.1:8080/v1"     # OpenAI-compatible; `/chat/completions` is appended
/// model = "SmolLM2-135M-Instruct"
/// api_key_env = "OPENAI_API_KEY"        # or api_key_file = "secrets/judge.key"; neither: no key sent
/// requests_per_minute = 600             # shared by every reward granted this judge
/// tokens_per_minute = 200_000
/// max_concurrent = 8
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSpec {
    /// Base URL of an OpenAI-compatible API, e.g. `https://api.openai.com/v1`.
    pub url: String,
    /// The model asked.
    pub model: String,
    /// The environment variable holding the API key. Read at load; never logged.
    pub api_key_env: Option<String>,
    /// A file holding the API key (relative to the config file). Read at load; never logged.
    pub api_key_file: Option<PathBuf>,
    /// Timeout of one attempt, in ms. Defaults to 60,000.
    #[serde(rename = "timeout_ms", with = "millis", default = "default_timeout")]
    pub timeout: Duration,
    /// Retries after a 429, a 5xx, a time-out or a connection error. Defaults to 3.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Longest wait before a retry, in ms: a `Retry-After` past it fails the call. Defaults to 60,000.
    #[serde(rename = "max_retry_wait_ms", with = "millis", default = "default_retry_wait")]
    pub max_retry_wait: Duration,
    /// Requests started in any 60 s window, at most. Unlimited when unset.
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt estimate plus `max_tokens`, settled to the reported usage) in any 60 s
    /// window, at most. Unlimited when unset.
    pub tokens_per_minute: Option<u64>,
    /// Calls in flight at once. Defaults to 8.
    #[serde(default = "default_concurrent")]
    pub max_concurrent: u32,
    /// Cached answers; 0 turns the cache off. Defaults to 10,000.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// `max_tokens` of a call that sets none. Defaults to 512.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// `seed` of a call that sets none. Defaults to 0.
    #[serde(default)]
    pub seed: u64,
    /// The model asked for embeddings (`{url}/embeddings`), e.g. `text-embedding-3-large` for
    /// OpenAI's cosine similarity. Without it, embeddings answer `not-granted`.
    pub embedding_model: Option<String>,
}

fn default_timeout() -> Duration {
    DEFAULT_JUDGE_TIMEOUT
}
fn default_retries() -> u32 {
    DEFAULT_JUDGE_RETRIES
}
fn default_retry_wait() -> Duration {
    DEFAULT_MAX_RETRY_WAIT
}
fn default_concurrent() -> u32 {
    DEFAULT_MAX_CONCURRENT
}
fn default_cache_entries() -> usize {
    DEFAULT_CACHE_ENTRIES
}
fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

impl std::fmt::Debug for JudgeSpec {
    /// Names where the key comes from, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeSpec")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key_env", &self.api_key_env)
            .field("api_key_file", &self.api_key_file)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("max_concurrent", &self.max_concurrent)
            .field("embedding_model", &self.embedding_model)
            .finish_non_exhaustive()
    }
}

/// An API key, kept out of `Debug` output and logs.
#[derive(Clone)]
pub(super) struct ApiKey(String);

impl ApiKey {
    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(redacted)")
    }
}

impl JudgeSpec {
    /// Checks the table, naming the field.
    pub fn validate(&self) -> Result<()> {
        let url = self.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            bail!(
                "`url` must be an http:// or https:// URL of an OpenAI-compatible API, e.g. \"https://api.openai.com/v1\", not {:?}",
                self.url
            );
        }
        if self.model.trim().is_empty() {
            bail!("`model` must name the model to ask");
        }
        if self.embedding_model.as_ref().is_some_and(|m| m.trim().is_empty()) {
            bail!("`embedding_model` must name a model (leave it out for no embeddings)");
        }
        if self.api_key_env.is_some() && self.api_key_file.is_some() {
            bail!("set `api_key_env` or `api_key_file`, not both");
        }
        if self.timeout.is_zero() {
            bail!("`timeout_ms` must be positive");
        }
        if self.max_concurrent == 0 {
            bail!("`max_concurrent` must be at least 1");
        }
        if self.requests_per_minute == Some(0) {
            bail!("`requests_per_minute` must be at least 1 (leave it out for no limit)");
        }
        if self.tokens_per_minute == Some(0) {
            bail!("`tokens_per_minute` must be at least 1 (leave it out for no limit)");
        }
        if self.max_tokens == 0 {
            bail!("`max_tokens` must be at least 1");
        }
        if let Some(tpm) = self.tokens_per_minute
            && u64::from(self.max_tokens) > tpm
        {
            bail!("`max_tokens` ({}) is more than `tokens_per_minute` ({tpm}): no call could ever fit", self.max_tokens);
        }
        Ok(())
    }

    /// The API key, read from the variable or the file the table names; `None` when it names
    /// neither. The error names the variable or the file, never a key.
    pub(super) fn api_key(&self, base: &Path) -> Result<Option<ApiKey>> {
        let key = match (&self.api_key_env, &self.api_key_file) {
            (Some(var), _) => {
                std::env::var(var).with_context(|| format!("`api_key_env`: the environment variable {var} is not set (or not UTF-8)"))?
            }
            (None, Some(file)) => {
                let path = base.join(file);
                std::fs::read_to_string(&path).with_context(|| format!("`api_key_file`: reading {}", path.display()))?
            }
            (None, None) => return Ok(None),
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("the API key (from {}) is empty", self.api_key_env.as_deref().map_or("`api_key_file`".to_owned(), |v| format!("${v}")));
        }
        if key.chars().any(|c| c.is_control() || c == ' ') {
            bail!("the API key contains spaces or control characters: it cannot go in an Authorization header");
        }
        Ok(Some(ApiKey(key.to_owned())))
    }

    /// The chat-completions endpoint.
    pub(super) fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.url.trim_end_matches('/'))
    }
}
