//! A scripted, OpenAI-compatible judge for tests: a small HTTP/1.1 server on `127.0.0.1:0` that
//! answers `POST /v1/chat/completions` as its [`Script`] says (a completion, a 429 with
//! `Retry-After`, a 5xx, a slow answer, a truncated body, a refusal, ...) and records every request.
//!
//! It is a fault injector for the host's judge client (retries, rate limits, timeouts, cache,
//! connection pooling), not a model: nothing is generated. One thread per connection, keep-alive
//! (HTTP/1.1's default; `Connection: close` is honoured), request bodies framed by `Content-Length`
//! or chunked, every answer framed by `Content-Length` (also the truncated one, so the connection
//! stays usable after it). `GET /v1/models` lists one model; `POST /v1/embeddings` answers each
//! input's [`letter_embedding`] (not scripted); anything else is a 404.
//!
//! ```no_run
//! use reward_server_harness::fake_judge::{FakeJudge, Reply, Script};
//! let judge = FakeJudge::start(Script::new(Reply::text("yes")).then(Reply::rate_limited(1)));
//! // point the client at judge.url() ("http://127.0.0.1:PORT/v1"): its first call gets a 429
//! // (Retry-After: 1), every later call the completion "yes".
//! assert!(judge.requests().iter().all(|r| r.bearer() == Some("test-key")));
//! ```

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::http1::read_crlf_line;

/// The model name answered when the request names none, and listed by `GET /v1/models`.
pub const DEFAULT_MODEL: &str = "fake-judge";

/// The fake's embedding of `text`: the counts of the letters a to z, ignoring case. Texts with
/// the same letters in other orders embed the same; a test can compute the cosine it expects.
pub fn letter_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0.0; 26];
    for c in text.chars().filter(char::is_ascii_alphabetic) {
        v[(c.to_ascii_lowercase() as u8 - b'a') as usize] += 1.0;
    }
    v
}

/// An OpenAI embeddings answer to `body` (`input`: a string or a list of strings), or a 400.
fn embeddings_answer(body: Option<&Value>, model: &str) -> Answer {
    let inputs: Option<Vec<String>> = match body.map(|b| &b["input"]) {
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => None,
    };
    let Some(inputs) = inputs else {
        return Answer::json(400, &error_body("`input` must be a string or a list of strings", "invalid_request_error", None));
    };
    let data: Vec<Value> =
        inputs.iter().enumerate().map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": letter_embedding(t)})).collect();
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count().max(1)).sum();
    Answer::json(200, &json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
}

/// Computes a completion's text from the request's JSON body (see [`Reply::echo`]).
pub type EchoFn = Arc<dyn Fn(&Value) -> String + Send + Sync>;

/// What the judge answers to one chat completion request.
#[derive(Clone)]
#[non_exhaustive]
pub enum Reply {
    /// 200, a `chat.completion` whose one choice has `content` and `finish_reason: "stop"`.
    /// `usage` is `(prompt_tokens, completion_tokens)`; `None` counts whitespace-separated words
    /// of the request's messages and of `content` (at least 1 each).
    Text {
        /// The assistant message's content.
        content: String,
        /// `(prompt_tokens, completion_tokens)`, or counted from the words.
        usage: Option<(u64, u64)>,
    },
    /// Like [`Reply::Text`], with the content computed from the request.
    Echo(EchoFn),
    /// 429 with `Retry-After: SECONDS` and an OpenAI `rate_limit_exceeded` error body.
    RateLimited {
        /// The `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// An error status with an OpenAI-style body `{"error": {message, type, param, code}}`:
    /// see [`Reply::server_error`], [`Reply::bad_request`], [`Reply::unauthorized`].
    Error {
        /// The HTTP status, e.g. 400, 401, 500, 503.
        status: u16,
        /// `error.type`, e.g. `invalid_request_error`, `server_error`.
        kind: String,
        /// `error.code` (`null` if `None`), e.g. `invalid_api_key`.
        code: Option<String>,
        /// `error.message`.
        message: String,
    },
    /// Sleeps `delay` (from when the request was read), then answers `then`.
    Slow {
        /// How long to wait before answering.
        delay: Duration,
        /// The answer after the wait.
        then: Box<Reply>,
    },
    /// 200 with `Content-Type: application/json` and a completion's JSON cut in half: not
    /// parseable, but correctly framed (`Content-Length` is the length of the cut body).
    Truncated,
    /// 200, a `chat.completion` with `"choices": []`.
    NoChoices,
    /// 200, a choice whose message has `content: null` and `refusal` set, `finish_reason: "stop"`
    /// (as OpenAI answers a refusal with structured outputs).
    Refusal(String),
    /// 200, a choice with `content: null` and `finish_reason: "content_filter"`.
    ContentFilter,
    /// Closes the connection without answering (after reading the request).
    Disconnect,
    /// Any other answer: status, extra headers (`Content-Length` is added) and body bytes.
    Raw {
        /// The status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Text { content, usage } => f.debug_struct("Text").field("content", content).field("usage", usage).finish(),
            Reply::Echo(_) => f.write_str("Echo(..)"),
            Reply::RateLimited { retry_after_secs } => f.debug_struct("RateLimited").field("retry_after_secs", retry_after_secs).finish(),
            Reply::Error { status, kind, code, message } => {
                f.debug_struct("Error").field("status", status).field("kind", kind).field("code", code).field("message", message).finish()
            }
            Reply::Slow { delay, then } => f.debug_struct("Slow").field("delay", delay).field("then", then).finish(),
            Reply::Truncated => f.write_str("Truncated"),
            Reply::NoChoices => f.write_str("NoChoices"),
            Reply::Refusal(r) => f.debug_tuple("Refusal").field(r).finish(),
            Reply::ContentFilter => f.write_str("ContentFilter"),
            Reply::Disconnect => f.write_str("Disconnect"),
            Reply::Raw { status, headers, body } => {
                f.debug_struct("Raw").field("status", status).field("headers", headers).field("body_len", &body.len()).finish()
            }
        }
    }
}

impl Reply {
    /// A completion with `content`, usage counted from the words.
    pub fn text(content: impl Into<String>) -> Reply {
        Reply::Text { content: content.into(), usage: None }
    }

    /// A completion with `content` and the given token counts.
    pub fn text_with_usage(content: impl Into<String>, prompt_tokens: u64, completion_tokens: u64) -> Reply {
        Reply::Text { content: content.into(), usage: Some((prompt_tokens, completion_tokens)) }
    }

    /// A completion whose content is `f(request body)`, e.g. [`prompt_text`] to echo the prompt.
    pub fn echo(f: impl Fn(&Value) -> String + Send + Sync + 'static) -> Reply {
        Reply::Echo(Arc::new(f))
    }

    /// 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        Reply::RateLimited { retry_after_secs }
    }

    /// 500, 502, 503 or 504 with OpenAI's wording for it (`type: server_error`).
    pub fn server_error(status: u16) -> Reply {
        let message = match status {
            503 => "The engine is currently overloaded, please try again later.",
            502 | 504 => "Bad gateway.",
            _ => "The server had an error while processing your request. Sorry about that!",
        };
        Reply::Error { status, kind: "server_error".into(), code: None, message: message.into() }
    }

    /// 400 `invalid_request_error` with `code` and `message`.
    pub fn bad_request(code: &str, message: &str) -> Reply {
        Reply::Error { status: 400, kind: "invalid_request_error".into(), code: Some(code.into()), message: message.into() }
    }

    /// 401 `invalid_api_key`.
    pub fn unauthorized() -> Reply {
        Reply::Error {
            status: 401,
            kind: "invalid_request_error".into(),
            code: Some("invalid_api_key".into()),
            message: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.".into(),
        }
    }

    /// `self`, answered after `delay`.
    pub fn after(self, delay: Duration) -> Reply {
        Reply::Slow { delay, then: Box::new(self) }
    }
}

/// The concatenated text of a request's `messages` (string contents and `text` parts), one line
/// per message as `role: text`: what an echo reply usually returns so a test can see the prompt.
pub fn prompt_text(request: &Value) -> String {
    let mut out = Vec::new();
    for m in request["messages"].as_array().into_iter().flatten() {
        let role = m["role"].as_str().unwrap_or("?");
        out.push(format!("{role}: {}", content_text(&m["content"])));
    }
    out.join("\n")
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// A server-side rate limit: at most `max` chat completions per fixed `window` (the first window
/// starts at the first request); past it, 429 with `Retry-After` = the seconds left in the window,
/// rounded up.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub max: usize,
    /// The window's length.
    pub window: Duration,
}

/// What the judge answers, by arrival order of the chat completion requests that reach it (a body
/// that is not JSON gets a 400, and the [`RateLimit`] a 429, before the script is consulted).
#[derive(Debug, Clone)]
pub struct Script {
    replies: Vec<Reply>,
    default: Reply,
    rate_limit: Option<RateLimit>,
    model: String,
}

impl Script {
    /// Answers `default` to every request not given its own reply by [`Script::then`].
    pub fn new(default: Reply) -> Script {
        Script { replies: Vec::new(), default, rate_limit: None, model: DEFAULT_MODEL.into() }
    }

    /// Answers `reply` to the next request in order: the first `then` is for request 0, the second
    /// for request 1, and so on; later requests get the default.
    pub fn then(mut self, reply: Reply) -> Script {
        self.replies.push(reply);
        self
    }

    /// Answers `reply` to the next `n` requests in order.
    pub fn then_n(mut self, n: usize, reply: Reply) -> Script {
        self.replies.extend(std::iter::repeat_n(reply, n));
        self
    }

    /// Enforces a [`RateLimit`] before the script: a request past the limit gets a 429 and does
    /// not consume a scripted reply. By default, no limit is set.
    pub fn rate_limit(mut self, max: usize, window: Duration) -> Script {
        self.rate_limit = Some(RateLimit { max, window });
        self
    }

    /// The model named in answers to requests without a `model`, and in `GET /v1/models`.
    /// Defaults to [`DEFAULT_MODEL`].
    pub fn model(mut self, model: impl Into<String>) -> Script {
        self.model = model.into();
        self
    }
}

/// One request the judge received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When its head and body had been read.
    pub at: Instant,
    /// When its answer had been written (or the connection closed); `None` while in flight.
    pub answered_at: Option<Instant>,
    /// Which connection it came on (0, 1, ... in accept order): equal for requests on a pooled
    /// connection.
    pub connection: usize,
    /// Its position among the chat completion requests, `None` for other paths.
    pub completion_index: Option<usize>,
    /// Its position in the [`Script`]: `None` if it never reached the script (another path, a body
    /// that is not JSON, or turned away by the [`RateLimit`]).
    pub script_index: Option<usize>,
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub raw_body: Vec<u8>,
    /// The body parsed as JSON; `None` if empty or not JSON.
    pub body: Option<Value>,
    /// The status answered (`0` for [`Reply::Disconnect`], or while in flight).
    pub status: u16,
    /// How many requests were in flight when this one arrived, itself included.
    pub in_flight: usize,
}

impl Recorded {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The key in `Authorization: Bearer KEY`.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }

    /// [`prompt_text`] of the body (empty if it is not JSON).
    pub fn prompt(&self) -> String {
        self.body.as_ref().map(prompt_text).unwrap_or_default()
    }
}

struct Shared {
    script: Script,
    model: String,
    stop: AtomicBool,
    records: Mutex<Vec<Recorded>>,
    completions: AtomicUsize,
    scripted: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    window: Mutex<Option<(Instant, usize)>>,
    /// Clones of the open connections' streams, to shut them down on drop.
    connections: Mutex<HashMap<usize, TcpStream>>,
    accepted: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake judge; stops (listener closed, open connections shut down) on drop.
pub struct FakeJudge {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeJudge").field("addr", &self.addr).field("count", &self.count()).finish()
    }
}

impl FakeJudge {
    /// Listens on `127.0.0.1:0` and answers as `script` says until dropped.
    pub fn start(script: Script) -> FakeJudge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 for the fake judge");
        let addr = listener.local_addr().expect("the fake judge's address");
        let shared = Arc::new(Shared {
            model: script.model.clone(),
            script,
            stop: AtomicBool::new(false),
            records: Mutex::new(Vec::new()),
            completions: AtomicUsize::new(0),
            scripted: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            window: Mutex::new(None),
            connections: Mutex::new(HashMap::new()),
            accepted: AtomicUsize::new(0),
        });
        let accept_shared = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("fake-judge-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawning the fake judge");
        FakeJudge { addr, shared, acceptor: Some(acceptor) }
    }

    /// The base URL a client is configured with: `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The listening address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order (all paths, chat completions or not).
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.records).clone()
    }

    /// The chat completion requests received so far, in arrival order.
    pub fn completions(&self) -> Vec<Recorded> {
        lock(&self.shared.records).iter().filter(|r| r.completion_index.is_some()).cloned().collect()
    }

    /// How many requests were received (all paths).
    pub fn count(&self) -> usize {
        lock(&self.shared.records).len()
    }

    /// The most requests that were in flight (read, not yet answered) at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Waits up to `within` until `n` requests have been answered; false if they were not.
    pub fn wait_for_answers(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if lock(&self.shared.records).iter().filter(|r| r.answered_at.is_some()).count() >= n {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FakeJudge {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor, which checks `stop` after every accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for conn in lock(&self.shared.connections).values() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let Ok(clone) = stream.try_clone() else { continue };
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
        lock(&shared.connections).insert(id, clone);
        let shared = shared.clone();
        let _ = std::thread::Builder::new().name(format!("fake-judge-conn-{id}")).spawn(move || {
            let _ = serve_connection(&stream, id, &shared);
            // Close it for real: the clone kept for `drop` would hold the socket open.
            let _ = stream.shutdown(Shutdown::Both);
            lock(&shared.connections).remove(&id);
        });
    }
}

/// A parsed request: method, path, headers, body.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads one request; `Ok(None)` at a clean end of file between requests.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let Some(line) = read_crlf_line(reader)? else { return Ok(None) };
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("bad request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad("unsupported HTTP version"));
    }
    let mut headers = Vec::new();
    loop {
        let line = read_crlf_line(reader)?.ok_or_else(|| bad("end of file in the headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut req = Request { method: method.to_owned(), path: path.to_owned(), headers, body: Vec::new() };
    if req.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_crlf_line(reader)?.ok_or_else(|| bad("end of file in a chunked body"))?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                while read_crlf_line(reader)?.is_some_and(|l| !l.is_empty()) {}
                break;
            }
            let start = req.body.len();
            req.body.resize(start + size, 0);
            reader.read_exact(&mut req.body[start..])?;
            let mut crlf = [0; 2];
            reader.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(bad("chunk not followed by CRLF"));
            }
        }
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
        req.body.resize(len, 0);
        reader.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// An answer ready to write.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Answer {
        Answer { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_string().into_bytes() }
    }
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn serve_connection(stream: &TcpStream, connection: usize, shared: &Shared) -> io::Result<()> {
    let mut writer = stream;
    let mut reader = BufReader::new(stream);
    loop {
        let req = match read_request(&mut reader) {
            Ok(Some(req)) => req,
            Ok(None) => return Ok(()),
            Err(e) => {
                let answer = Answer::json(400, &error_body(&format!("malformed HTTP request: {e}"), "invalid_request_error", None));
                let _ = write_answer(&mut writer, &answer, true);
                return Err(e);
            }
        };
        let in_flight = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        let at = Instant::now();
        let is_completion = req.method == "POST" && req.path.split('?').next() == Some("/v1/chat/completions");
        let completion_index = is_completion.then(|| shared.completions.fetch_add(1, Ordering::SeqCst));
        let body: Option<Value> = serde_json::from_slice(&req.body).ok();
        let record = {
            let mut records = lock(&shared.records);
            records.push(Recorded {
                at,
                answered_at: None,
                connection,
                completion_index,
                script_index: None,
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
                raw_body: req.body.clone(),
                body: body.clone(),
                status: 0,
                in_flight,
            });
            records.len() - 1
        };
        let close = req.header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let answer = match completion_index {
            Some(index) => match (&body, rate_limited(shared, at)) {
                (_, Some(retry)) => answer_for(&Reply::rate_limited(retry), None, shared, at, index),
                (Some(body), None) => {
                    let position = shared.scripted.fetch_add(1, Ordering::SeqCst);
                    lock(&shared.records)[record].script_index = Some(position);
                    let reply = shared.script.replies.get(position).unwrap_or(&shared.script.default);
                    answer_for(reply, Some(body), shared, at, index)
                }
                (None, None) => {
                    let err =
                        error_body("We could not parse the JSON body of your request.", "invalid_request_error", Some("invalid_json"));
                    Some(Answer::json(400, &err))
                }
            },
            None if req.method == "POST" && req.path == "/v1/embeddings" => Some(embeddings_answer(body.as_ref(), &shared.model)),
            None if req.method == "GET" && req.path == "/v1/models" => Some(Answer::json(
                200,
                &json!({"object": "list", "data": [{"id": shared.model, "object": "model", "created": 0, "owned_by": "fake-judge"}]}),
            )),
            None => {
                Some(Answer::json(404, &error_body(&format!("Invalid URL ({} {})", req.method, req.path), "invalid_request_error", None)))
            }
        };
        // Recorded, and out of flight, before the client can see the answer: a client that reads
        // it and sends the next request (on another pooled connection) is never counted as two.
        {
            let mut records = lock(&shared.records);
            records[record].answered_at = Some(Instant::now());
            records[record].status = answer.as_ref().map_or(0, |a| a.status);
        }
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        match &answer {
            Some(answer) => write_answer(&mut writer, answer, close)?,
            None => writer.shutdown(Shutdown::Both)?,
        }
        if answer.is_none() || close || shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}

/// `Some(retry_after_secs)` if the rate limit turns this request away.
fn rate_limited(shared: &Shared, now: Instant) -> Option<u64> {
    let limit = shared.script.rate_limit?;
    let mut window = lock(&shared.window);
    let (start, count) = window.get_or_insert((now, 0));
    if now.duration_since(*start) >= limit.window {
        (*start, *count) = (now, 0);
    }
    if *count < limit.max {
        *count += 1;
        return None;
    }
    let left = limit.window.saturating_sub(now.duration_since(*start));
    Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
}

fn words(s: &str) -> u64 {
    (s.split_whitespace().count() as u64).max(1)
}

fn completion(id: usize, model: &str, message: Value, finish_reason: &str, usage: (u64, u64)) -> Value {
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    json!({
        "id": format!("chatcmpl-fake{id}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
        "system_fingerprint": "fp_fake_judge",
    })
}

/// The answer for `reply`; `None` to close the connection instead.
fn answer_for(reply: &Reply, body: Option<&Value>, shared: &Shared, at: Instant, id: usize) -> Option<Answer> {
    let model = body.and_then(|b| b["model"].as_str()).unwrap_or(&shared.model).to_owned();
    let prompt_tokens = words(&body.map(prompt_text).unwrap_or_default());
    let text = |content: &str, usage: Option<(u64, u64)>| {
        let message = json!({"role": "assistant", "content": content, "refusal": null});
        let usage = usage.unwrap_or((prompt_tokens, words(content)));
        Answer::json(200, &completion(id, &model, message, "stop", usage))
    };
    Some(match reply {
        Reply::Text { content, usage } => text(content, *usage),
        Reply::Echo(f) => text(&f(body.unwrap_or(&Value::Null)), None),
        Reply::RateLimited { retry_after_secs } => {
            let err = error_body(
                &format!("Rate limit reached for requests. Please try again in {retry_after_secs}s."),
                "requests",
                Some("rate_limit_exceeded"),
            );
            let mut answer = Answer::json(429, &err);
            answer.headers.push(("Retry-After".into(), retry_after_secs.to_string()));
            answer
        }
        Reply::Error { status, kind, code, message } => Answer::json(*status, &error_body(message, kind, code.as_deref())),
        Reply::Slow { delay, then } => {
            let until = at + *delay;
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(10)));
            }
            if shared.stop.load(Ordering::SeqCst) {
                return None;
            }
            return answer_for(then, body, shared, at, id);
        }
        Reply::Truncated => {
            let mut answer = text("this answer is cut off", None);
            answer.body.truncate(answer.body.len() / 2);
            answer
        }
        Reply::NoChoices => {
            let mut v = completion(id, &model, Value::Null, "stop", (prompt_tokens, 0));
            v["choices"] = json!([]);
            Answer::json(200, &v)
        }
        Reply::Refusal(refusal) => {
            let message = json!({"role": "assistant", "content": null, "refusal": refusal});
            Answer::json(200, &completion(id, &model, message, "stop", (prompt_tokens, words(refusal))))
        }
        Reply::ContentFilter => {
            let message = json!({"role": "assistant", "content": null, "refusal": null});
            Answer::json(200, &completion(id, &model, message, "content_filter", (prompt_tokens, 0)))
        }
        Reply::Disconnect => return None,
        Reply::Raw { status, headers, body } => Answer { status: *status, headers: headers.clone(), body: body.clone() },
    })
}

fn write_answer(w: &mut impl Write, answer: &Answer, close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", answer.status, reason(answer.status));
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    head.push_str(if close { "Connection: close\r\n\r\n" } else { "Connection: keep-alive\r\n\r\n" });
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&answer.body);
    w.write_all(&bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::Connection;

    const T: Duration = Duration::from_secs(10);

    fn conn(judge: &FakeJudge) -> Connection {
        Connection::open(&judge.addr().to_string(), T).unwrap()
    }

    fn chat(prompt: &str) -> Value {
        json!({"model": "judge-model", "temperature": 0, "messages": [
            {"role": "system", "content": "You grade answers."},
            {"role": "user", "content": prompt},
        ]})
    }

    fn post(c: &mut Connection, body: &Value) -> crate::http1::Response {
        c.post_json("/v1/chat/completions", &[("Authorization", "Bearer sk-test")], body).unwrap()
    }

    #[test]
    fn a_text_reply_is_an_openai_completion() {
        let judge = FakeJudge::start(Script::new(Reply::text("The answer is correct.")));
        let r = post(&mut conn(&judge), &chat("is 2+2=4 right?"));
        assert_eq!((r.status, r.reason.as_str(), r.header("content-type")), (200, "OK", Some("application/json")));
        let v = r.json().unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(v["model"], "judge-model", "the requested model is named in the answer");
        assert_eq!(v["choices"][0]["message"]["content"], "The answer is correct.");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        // "system: You grade answers.\nuser: is 2+2=4 right?" is 8 words; the answer 4.
        assert_eq!(v["usage"], json!({"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12}));
    }

    #[test]
    fn usage_can_be_scripted_and_a_request_without_model_gets_the_scripts() {
        let judge = FakeJudge::start(Script::new(Reply::text_with_usage("ok", 100, 7)).model("m1"));
        let r = post(&mut conn(&judge), &json!({"messages": [{"role": "user", "content": "hi"}]}));
        let v = r.json().unwrap();
        assert_eq!((v["model"].as_str(), v["usage"]["total_tokens"].as_u64()), (Some("m1"), Some(107)));
        let models = conn(&judge).request("GET", "/v1/models", &[], b"").unwrap().json().unwrap();
        assert_eq!(models["data"][0]["id"], "m1");
    }

    #[test]
    fn the_script_goes_by_arrival_order_then_the_default_on_one_kept_alive_connection() {
        let script = Script::new(Reply::text("default")).then(Reply::server_error(503)).then(Reply::text("second"));
        let judge = FakeJudge::start(script);
        let mut c = conn(&judge);
        let statuses: Vec<(u16, String)> = (0..4)
            .map(|i| {
                let r = post(&mut c, &chat(&format!("q{i}")));
                assert_eq!(r.header("connection"), Some("keep-alive"));
                let content = r.json().ok().and_then(|v| v["choices"][0]["message"]["content"].as_str().map(str::to_owned));
                (r.status, content.unwrap_or_default())
            })
            .collect();
        assert_eq!(statuses, [(503, String::new()), (200, "second".into()), (200, "default".into()), (200, "default".into())]);
        let reqs = judge.requests();
        assert_eq!((judge.count(), judge.connections()), (4, 1));
        assert!(reqs.iter().all(|r| r.connection == 0));
        assert_eq!(reqs.iter().map(|r| r.completion_index).collect::<Vec<_>>(), [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [503, 200, 200, 200]);
        assert!(reqs.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(reqs[2].prompt(), "system: You grade answers.\nuser: q2");
    }

    #[test]
    fn connection_close_is_honoured() {
        let judge = FakeJudge::start(Script::new(Reply::text("x")));
        let mut c = conn(&judge);
        let body = chat("q").to_string();
        let r = c.request("POST", "/v1/chat/completions", &[("Connection", "close")], body.as_bytes()).unwrap();
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        assert!(c.is_closed_by_peer());
    }

    #[test]
    fn rate_limited_is_429_with_retry_after_and_an_openai_error() {
        let judge = FakeJudge::start(Script::new(Reply::text("x")).then(Reply::rate_limited(3)));
        let mut c = conn(&judge);
        let r = post(&mut c, &chat("q"));
        assert_eq!((r.status, r.reason.as_str(), r.header("retry-after")), (429, "Too Many Requests", Some("3")));
        let v = r.json().unwrap();
        assert_eq!((v["error"]["code"].as_str(), v["error"]["type"].as_str()), (Some("rate_limit_exceeded"), Some("requests")));
        assert!(v["error"]["message"].as_str().unwrap().contains("3s"));
        assert_eq!(post(&mut c, &chat("q")).status, 200, "the connection stays usable after a 429");
    }

    #[test]
    fn server_and_client_errors_have_openai_error_bodies() {
        let script = Script::new(Reply::text("x"))
            .then(Reply::server_error(500))
            .then(Reply::server_error(503))
            .then(Reply::bad_request("context_length_exceeded", "This model's maximum context length is 2048 tokens."))
            .then(Reply::unauthorized());
        let judge = FakeJudge::start(script);
        let mut c = conn(&judge);
        let want = [
            (500, "Internal Server Error", "server_error", None),
            (503, "Service Unavailable", "server_error", None),
            (400, "Bad Request", "invalid_request_error", Some("context_length_exceeded")),
            (401, "Unauthorized", "invalid_request_error", Some("invalid_api_key")),
        ];
        for (status, reason, kind, code) in want {
            let r = post(&mut c, &chat("q"));
            assert_eq!((r.status, r.reason.as_str()), (status, reason));
            let v = r.json().unwrap();
            assert_eq!((v["error"]["type"].as_str(), v["error"]["code"].as_str()), (Some(kind), code));
            assert!(v["error"]["param"].is_null());
            assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    #[test]
    fn a_slow_reply_waits_and_concurrent_requests_are_counted_in_flight() {
        let delay = Duration::from_millis(300);
        let judge = FakeJudge::start(Script::new(Reply::text("slow").after(delay)));
        let started = Instant::now();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let addr = judge.addr().to_string();
                std::thread::spawn(move || {
                    let mut c = Connection::open(&addr, T).unwrap();
                    let t = Instant::now();
                    let r = post(&mut c, &chat("q"));
                    (r.status, t.elapsed())
                })
            })
            .collect();
        for h in handles {
            let (status, took) = h.join().unwrap();
            assert_eq!(status, 200);
            assert!(took >= delay, "answered after {took:?}, before the {delay:?} delay");
        }
        // Three connections served in parallel: all answered in well under 3 delays.
        assert!(started.elapsed() < delay * 3, "took {:?}: the requests were served one at a time", started.elapsed());
        assert_eq!((judge.max_in_flight(), judge.connections()), (3, 3));
        for r in judge.requests() {
            assert!(r.answered_at.unwrap().duration_since(r.at) >= delay);
        }
    }

    #[test]
    fn a_sequential_client_is_never_more_than_one_in_flight() {
        let judge = FakeJudge::start(Script::new(Reply::text("x").after(Duration::from_millis(20))));
        let mut c = conn(&judge);
        for _ in 0..3 {
            assert_eq!(post(&mut c, &chat("q")).status, 200);
        }
        assert_eq!(judge.max_in_flight(), 1);
        assert!(judge.requests().iter().all(|r| r.in_flight == 1));
    }

    #[test]
    fn truncated_json_is_framed_but_does_not_parse() {
        let judge = FakeJudge::start(Script::new(Reply::text("next")).then(Reply::Truncated));
        let mut c = conn(&judge);
        let r = post(&mut c, &chat("q"));
        assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
        assert!(r.text().starts_with("{\""), "{:?}", r.text());
        assert!(r.json().is_err(), "the body parsed: {:?}", r.text());
        assert_eq!(r.header("content-length").unwrap(), r.body.len().to_string());
        // The framing is right: the next answer on the connection reads cleanly.
        assert_eq!(post(&mut c, &chat("q")).json().unwrap()["choices"][0]["message"]["content"], "next");
    }

    #[test]
    fn no_choices_refusal_and_content_filter() {
        let script = Script::new(Reply::text("x"))
            .then(Reply::NoChoices)
            .then(Reply::Refusal("I can't grade that.".into()))
            .then(Reply::ContentFilter);
        let judge = FakeJudge::start(script);
        let mut c = conn(&judge);
        let v = post(&mut c, &chat("q")).json().unwrap();
        assert_eq!((v["object"].as_str(), v["choices"].as_array().map(Vec::len)), (Some("chat.completion"), Some(0)));
        let v = post(&mut c, &chat("q")).json().unwrap();
        let choice = &v["choices"][0];
        assert!(choice["message"]["content"].is_null());
        assert_eq!((choice["message"]["refusal"].as_str(), choice["finish_reason"].as_str()), (Some("I can't grade that."), Some("stop")));
        let v = post(&mut c, &chat("q")).json().unwrap();
        let choice = &v["choices"][0];
        assert!(choice["message"]["content"].is_null() && choice["message"]["refusal"].is_null());
        assert_eq!(choice["finish_reason"], "content_filter");
    }

    #[test]
    fn echo_sees_the_request_and_headers_are_recorded() {
        let judge = FakeJudge::start(Script::new(Reply::echo(|req| format!("{}|{}", req["temperature"], prompt_text(req)))));
        let mut c = conn(&judge);
        let r = post(&mut c, &chat("grade: 42"));
        let v = r.json().unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "0|system: You grade answers.\nuser: grade: 42");
        let rec = &judge.requests()[0];
        assert_eq!((rec.method.as_str(), rec.path.as_str()), ("POST", "/v1/chat/completions"));
        assert_eq!(rec.bearer(), Some("sk-test"));
        assert_eq!(rec.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(rec.body.as_ref().unwrap(), &chat("grade: 42"));
        assert_eq!(rec.raw_body, chat("grade: 42").to_string().into_bytes());
    }

    #[test]
    fn echo_of_content_parts() {
        let judge = FakeJudge::start(Script::new(Reply::echo(prompt_text)));
        let body = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]});
        let v = post(&mut conn(&judge), &body).json().unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "user: ab");
    }

    #[test]
    fn a_chunked_request_body_is_read() {
        let judge = FakeJudge::start(Script::new(Reply::echo(prompt_text)));
        let mut c = conn(&judge);
        let body = chat("chunked").to_string();
        let (a, b) = body.split_at(10);
        let wire = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
        c.stream().write_all(wire.as_bytes()).unwrap();
        let r = c.read_response().unwrap();
        assert_eq!(r.json().unwrap()["choices"][0]["message"]["content"], "system: You grade answers.\nuser: chunked");
        assert_eq!(post(&mut c, &chat("after")).status, 200, "the connection is in sync after a chunked body");
    }

    #[test]
    fn not_json_unknown_paths_and_bad_http() {
        let judge = FakeJudge::start(Script::new(Reply::text("x")));
        let mut c = conn(&judge);
        let r = c.request("POST", "/v1/chat/completions", &[], b"{not json").unwrap();
        assert_eq!((r.status, r.json().unwrap()["error"]["code"].as_str()), (400, Some("invalid_json")));
        let r = c.request("POST", "/v1/completions", &[], b"{}").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(judge.completions().len(), 1, "only chat completions take a script index");
        let mut raw = conn(&judge);
        raw.stream().write_all(b"garbage\r\n\r\n").unwrap();
        assert_eq!(raw.read_response().unwrap().status, 400);
        assert!(raw.is_closed_by_peer());
    }

    #[test]
    fn disconnect_closes_without_an_answer() {
        let judge = FakeJudge::start(Script::new(Reply::text("x")).then(Reply::Disconnect));
        let mut c = conn(&judge);
        let err = c.post_json("/v1/chat/completions", &[], &chat("q")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(judge.wait_for_answers(1, T));
        assert_eq!(judge.requests()[0].status, 0);
        assert_eq!(post(&mut conn(&judge), &chat("q")).status, 200);
    }

    #[test]
    fn the_rate_limit_turns_away_past_max_per_window_then_admits_again() {
        let window = Duration::from_millis(1500);
        let judge = FakeJudge::start(Script::new(Reply::text("x")).then(Reply::text("first")).rate_limit(2, window));
        let mut c = conn(&judge);
        let first = post(&mut c, &chat("q"));
        assert_eq!(first.json().unwrap()["choices"][0]["message"]["content"], "first");
        assert_eq!(post(&mut c, &chat("q")).status, 200);
        let r = post(&mut c, &chat("q"));
        assert_eq!((r.status, r.header("retry-after")), (429, Some("2")), "1.5 s left, rounded up");
        std::thread::sleep(window);
        assert_eq!(post(&mut c, &chat("q")).status, 200, "a new window admits again");
        let reqs = judge.requests();
        assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 429, 200]);
        assert_eq!(reqs.iter().map(|r| r.script_index).collect::<Vec<_>>(), [Some(0), Some(1), None, Some(2)]);
    }

    #[test]
    fn dropping_stops_the_listener_and_closes_idle_connections() {
        let judge = FakeJudge::start(Script::new(Reply::text("x")));
        let addr = judge.addr();
        let mut idle = conn(&judge);
        assert_eq!(post(&mut idle, &chat("q")).status, 200);
        drop(judge);
        assert!(idle.is_closed_by_peer(), "a pooled connection sees the server go away");
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    #[test]
    fn dropping_cuts_a_slow_reply_short() {
        let judge = FakeJudge::start(Script::new(Reply::text("x").after(Duration::from_secs(60))));
        let mut c = conn(&judge);
        let addr = judge.addr();
        let started = Instant::now();
        let body = chat("q").to_string();
        let head = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        c.stream().write_all(head.as_bytes()).unwrap();
        while judge.count() == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(judge);
        assert!(c.read_response().is_err());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
