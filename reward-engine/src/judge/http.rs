//! One attempt at an OpenAI-compatible call over HTTP (a chat completion, embeddings), and what
//! its answer means: the answer, a failure worth retrying (429, 5xx, a time-out, a refused
//! connection) with the wait the endpoint asked for, or a final failure.

use std::time::Duration;

use serde::Deserialize;

use super::super::limits::bounded_guest_text;
use super::{Completion, Embeddings, JudgeError};

/// Largest answer read from an endpoint: 1 MiB. A longer body is an invalid response, so a broken
/// or hostile endpoint cannot make the host hold more.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Most bytes of an endpoint's error text quoted in a message: 512.
const MAX_QUOTED_BYTES: usize = 512;

/// How an attempt failed.
#[derive(Debug)]
pub(super) enum Failed {
    /// Worth another attempt: the error if it was the last, and the wait the endpoint asked for.
    Retry(JudgeError, Option<Duration>),
    /// Final.
    Final(JudgeError),
}

/// Sends one request and reads its answer with `parse`.
pub(super) async fn attempt<A>(
    client: &reqwest::Client,
    endpoint: &str,
    key: Option<&str>,
    body: &[u8],
    timeout: Duration,
    parse: fn(&[u8]) -> Result<A, JudgeError>,
) -> Result<A, Failed> {
    let mut request = client.post(endpoint).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec()).timeout(timeout);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let timed_out = || Failed::Retry(JudgeError::Timeout(format!("no answer within timeout_ms ({} ms)", timeout.as_millis())), None);
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => return Err(timed_out()),
        Err(e) => return Err(Failed::Retry(JudgeError::Unavailable(format!("cannot reach {endpoint}: {}", error_chain(&e))), None)),
    };
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(Failed::Final(JudgeError::InvalidResponse(format!(
                        "answered more than {MAX_RESPONSE_BYTES} bytes (HTTP {status})"
                    ))));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(timed_out()),
            Err(e) => {
                return Err(Failed::Retry(JudgeError::Unavailable(format!("the answer broke off: {}", error_chain(&e))), None));
            }
        }
    }
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Failed::Retry(JudgeError::Unavailable(format!("HTTP {status}: {}", error_text(&bytes))), retry_after));
    }
    if !status.is_success() {
        return Err(Failed::Final(JudgeError::InvalidResponse(format!("HTTP {status}: {}", error_text(&bytes)))));
    }
    parse(&bytes).map_err(Failed::Final)
}

/// The wait an answer asks for: `retry-after-ms` (OpenAI's), else `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0);
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// The error's text and its causes (reqwest's own message omits why a connection failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What an error answer says: OpenAI's `error.message`, else the body's start.
fn error_text(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    let text = match serde_json::from_slice::<Body>(bytes) {
        Ok(body) => body.error.message,
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let text = text.trim();
    if text.is_empty() { "(no body)".to_owned() } else { bounded_guest_text(text, MAX_QUOTED_BYTES).into_owned() }
}

/// Reads an embeddings answer (`data[].embedding`, put in `index` order).
pub(super) fn parse_embeddings(bytes: &[u8]) -> Result<Embeddings, JudgeError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        model: Option<String>,
        data: Vec<Item>,
        #[serde(default)]
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        index: usize,
        embedding: Vec<f32>,
    }
    #[derive(Deserialize)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u64,
    }
    let mut answer: Answer = serde_json::from_slice(bytes)
        .map_err(|e| JudgeError::InvalidResponse(format!("the answer is not an embeddings list ({e}): {}", error_text(bytes))))?;
    answer.data.sort_by_key(|item| item.index);
    if answer.data.iter().enumerate().any(|(i, item)| item.index != i) {
        return Err(JudgeError::InvalidResponse("the embeddings' indices are not 0, 1, 2, ...".into()));
    }
    Ok(Embeddings {
        vectors: answer.data.into_iter().map(|item| item.embedding).collect(),
        model: answer.model.unwrap_or_default(),
        prompt_tokens: u32::try_from(answer.usage.map_or(0, |u| u.prompt_tokens)).unwrap_or(u32::MAX),
        cached: false,
    })
}

/// Reads a chat-completion answer. What it cannot use is an invalid response, a refusal is
/// `refused`.
pub(super) fn parse(bytes: &[u8]) -> Result<Completion, JudgeError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        choices: Vec<Choice>,
        #[serde(default)]
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Option<Message>,
        #[serde(default)]
        finish_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        refusal: Option<String>,
    }
    #[derive(Deserialize)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
    }
    let answer: Answer = serde_json::from_slice(bytes)
        .map_err(|e| JudgeError::InvalidResponse(format!("the answer is not a chat completion ({e}): {}", error_text(bytes))))?;
    let Some(choice) = answer.choices.into_iter().next() else {
        return Err(JudgeError::InvalidResponse("the answer has no choices".into()));
    };
    let finish_reason = choice.finish_reason.unwrap_or_default();
    let message = choice.message.ok_or_else(|| JudgeError::InvalidResponse("the first choice has no message".into()))?;
    if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
        return Err(JudgeError::Refused(format!("the model refused: {}", bounded_guest_text(&refusal, MAX_QUOTED_BYTES))));
    }
    if finish_reason == "content_filter" {
        return Err(JudgeError::Refused("the endpoint's content filter stopped the answer (finish_reason content_filter)".into()));
    }
    let text = message.content.ok_or_else(|| JudgeError::InvalidResponse("the first choice's message has no content".into()))?;
    let usage = answer.usage.unwrap_or(Usage { prompt_tokens: 0, completion_tokens: 0 });
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Completion {
        text,
        model: answer.model.unwrap_or_default(),
        finish_reason,
        prompt_tokens: clamp(usage.prompt_tokens),
        completion_tokens: clamp(usage.completion_tokens),
        cached: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_is_read_with_its_usage() {
        let c = parse(br#"{"id":"x","object":"chat.completion","model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":"7"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}"#).unwrap();
        assert_eq!(
            (c.text.as_str(), c.model.as_str(), c.finish_reason.as_str(), c.prompt_tokens, c.completion_tokens),
            ("7", "m1", "stop", 12, 1)
        );
    }

    #[test]
    fn refusals_and_junk_are_typed() {
        let refused = parse(br#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that"},"finish_reason":"stop"}]}"#);
        assert!(matches!(refused, Err(JudgeError::Refused(ref m)) if m.contains("I can't help")), "{refused:?}");
        let filtered = parse(br#"{"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]}"#);
        assert!(matches!(filtered, Err(JudgeError::Refused(_))), "{filtered:?}");
        assert!(matches!(parse(br#"{"choices":[]}"#), Err(JudgeError::InvalidResponse(ref m)) if m.contains("no choices")));
        assert!(
            matches!(parse(br#"{"choices":[{"message":{"con"#), Err(JudgeError::InvalidResponse(ref m)) if m.contains("not a chat completion"))
        );
        assert!(
            matches!(parse(br#"{"choices":[{"message":{"role":"assistant"}}]}"#), Err(JudgeError::InvalidResponse(ref m)) if m.contains("no content"))
        );
    }

    #[test]
    fn embeddings_are_read_in_index_order() {
        let e = parse_embeddings(br#"{"object":"list","model":"e1","data":[{"index":1,"embedding":[0.5,1]},{"index":0,"embedding":[1,0]}],"usage":{"prompt_tokens":4}}"#).unwrap();
        assert_eq!((e.vectors, e.model.as_str(), e.prompt_tokens), (vec![vec![1.0, 0.0], vec![0.5, 1.0]], "e1", 4));
        assert!(matches!(
            parse_embeddings(br#"{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}"#),
            Err(JudgeError::InvalidResponse(_))
        ));
        assert!(
            matches!(parse_embeddings(br#"{"choices":[]}"#), Err(JudgeError::InvalidResponse(ref m)) if m.contains("not an embeddings list"))
        );
    }

    #[test]
    fn error_bodies_are_quoted_and_bounded() {
        assert_eq!(error_text(br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#), "Rate limit reached");
        assert_eq!(error_text(b""), "(no body)");
        let long = error_text(&vec![b'x'; 10_000]);
        assert!(long.starts_with(&"x".repeat(MAX_QUOTED_BYTES)) && long.ends_with("... (9488 more bytes cut)"), "{long}");
    }

    #[test]
    fn retry_after_reads_both_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None, "an HTTP date is not read: the backoff applies");
    }
}
