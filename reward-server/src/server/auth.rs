//! The bearer token that scoring and admin calls must present: none, a fixed one, or one read from
//! a file (a Kubernetes Secret mount) and re-read when the file changes, so a token rotates without
//! a restart. A file that turns empty or unreadable keeps the previous token: auth never opens by
//! accident.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwapOption;

/// Where the token comes from.
#[derive(Clone, Debug, Default)]
pub enum TokenSource {
    /// No token: every call is let in.
    #[default]
    None,
    /// A fixed token (`--auth-token`).
    Fixed(String),
    /// The first line of a file, re-read when the file changes (`--auth-token-file`).
    File(PathBuf),
}

/// The token check shared by both transports.
#[derive(Debug)]
pub struct Auth {
    source: TokenSource,
    token: ArcSwapOption<String>,
    /// The token file's (modified, length) when it was last read.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

impl Auth {
    /// Reads the token once; fails if it is empty or its file cannot be read.
    pub fn new(source: TokenSource) -> Result<Auth> {
        let token = match &source {
            TokenSource::None => None,
            TokenSource::Fixed(t) => Some(non_empty(t.trim().to_owned(), "--auth-token")?),
            TokenSource::File(path) => Some(read_token(path)?),
        };
        let stamp = match &source {
            TokenSource::File(path) => stamp_of(path),
            _ => None,
        };
        Ok(Auth { source, token: ArcSwapOption::new(token.map(Arc::new)), stamp: Mutex::new(stamp) })
    }

    /// Whether calls need a token at all.
    pub fn required(&self) -> bool {
        !matches!(self.source, TokenSource::None)
    }

    /// Whether `given` (the bearer token a call presented, if any) lets the call in.
    pub fn allows(&self, given: Option<&str>) -> bool {
        match &*self.token.load() {
            None => true,
            Some(expected) => given.is_some_and(|g| token_matches(g, expected)),
        }
    }

    /// The check every door makes: the call's `authorization` header (HTTP) or metadata (gRPC)
    /// must be `Bearer TOKEN` with the current token, when one is required. A refusal is counted
    /// (`reward_rejected_total{reason="unauthenticated"}`) and answered as 401 / `UNAUTHENTICATED`.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), super::ScoreError> {
        let given = authorization.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.strip_prefix("Bearer "));
        if self.allows(given) {
            return Ok(());
        }
        super::metrics::rejected("unauthenticated");
        Err(super::ScoreError::Unauthenticated)
    }

    /// Re-reads the token file if it changed since the last read. Returns whether the token
    /// changed; an empty or unreadable file is an error and keeps the previous token.
    pub fn refresh(&self) -> Result<bool> {
        let TokenSource::File(path) = &self.source else {
            return Ok(false);
        };
        let now = stamp_of(path);
        let mut stamp = self.stamp.lock().expect("token stamp poisoned");
        if now == *stamp {
            return Ok(false);
        }
        *stamp = now;
        let token = read_token(path)?;
        let changed = self.token.load().as_deref() != Some(&token);
        self.token.store(Some(Arc::new(token)));
        Ok(changed)
    }

    /// The token file, if the token comes from one.
    pub fn file(&self) -> Option<&Path> {
        match &self.source {
            TokenSource::File(path) => Some(path),
            _ => None,
        }
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

fn read_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the auth token file {}", path.display()))?;
    non_empty(text.lines().next().unwrap_or_default().trim().to_owned(), &format!("the auth token file {}", path.display()))
}

fn non_empty(token: String, what: &str) -> Result<String> {
    if token.is_empty() {
        bail!("{what} holds an empty token");
    }
    Ok(token)
}

/// Compares a presented token with the expected one in constant time.
pub(crate) fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("abcd", "abc"));
        assert!(!token_matches("", "abc"));
    }

    #[test]
    fn a_token_file_rotates_and_never_opens_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let auth = Auth::new(TokenSource::File(path.clone())).unwrap();
        assert!(auth.required());
        assert!(auth.allows(Some("first")) && !auth.allows(Some("second")) && !auth.allows(None));

        std::fs::write(&path, "second-token\n").unwrap();
        assert!(auth.refresh().unwrap());
        assert!(auth.allows(Some("second-token")) && !auth.allows(Some("first")));
        assert!(!auth.refresh().unwrap(), "unchanged file: nothing to do");

        std::fs::write(&path, "\n").unwrap();
        assert!(auth.refresh().unwrap_err().to_string().contains("empty token"));
        assert!(auth.allows(Some("second-token")) && !auth.allows(None), "an emptied file keeps the old token");
        std::fs::remove_file(&path).unwrap();
        assert!(auth.refresh().is_err());
        assert!(!auth.allows(None));
    }

    #[test]
    fn no_source_lets_everyone_in_and_an_empty_fixed_token_is_refused() {
        let open = Auth::new(TokenSource::None).unwrap();
        assert!(!open.required() && open.allows(None));
        assert!(Auth::new(TokenSource::Fixed("  ".into())).is_err());
    }
}
