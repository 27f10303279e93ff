//! A real OpenAI-compatible LLM server for judge tests: `python3 -m llama_cpp.server` (the
//! llama-cpp-python package) serving a small GGUF model on a loopback port. `scripts/setup-judge.sh`
//! installs both; CI runs it before the host's tests.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ChildGuard;
use crate::http1::Connection;

/// The environment variable naming the GGUF model to serve.
pub const ENV_JUDGE_MODEL: &str = "REWARD_JUDGE_MODEL";

/// Set to `1` to make [`LlamaServer::start_or_skip`] skip (`scripts/test.sh --quick` does: it
/// installs no Python packages). CI's full run never sets it, so there the tests run for real.
pub const ENV_JUDGE_SKIP: &str = "REWARD_JUDGE_SKIP";

/// How long the server may take to answer `GET /v1/models` (loading the model; a 135M model
/// takes a few seconds, a cold disk cache more).
pub const LLAMA_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The context size the server is started with (`--n_ctx`).
pub const LLAMA_N_CTX: u32 = 2048;

/// The file `scripts/setup-judge.sh` extracts the model to.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// What to run when the server or its model is missing.
const SETUP_HINT: &str = "run scripts/setup-judge.sh (installs llama-cpp-python[server] and fetches the model)";

/// The model [`LlamaServer::start`] serves: `$REWARD_JUDGE_MODEL`, or the path
/// `scripts/setup-judge.sh` prints by default, `~/.cache/reward-server/models/SmolLM2-135M-Instruct.Q4_1.gguf`.
pub fn judge_model_path() -> PathBuf {
    if let Some(path) = std::env::var_os(ENV_JUDGE_MODEL).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/reward-server/models").join(DEFAULT_MODEL_FILE)
}

/// A running `python3 -m llama_cpp.server` on `127.0.0.1`; killed on drop.
#[derive(Debug)]
pub struct LlamaServer {
    /// The process.
    pub process: ChildGuard,
    /// The model it serves.
    pub model: PathBuf,
    addr: String,
}

impl LlamaServer {
    /// Serves [`judge_model_path`]; see [`LlamaServer::start_with`].
    pub fn start() -> LlamaServer {
        LlamaServer::start_with(&judge_model_path(), &[])
    }

    /// [`LlamaServer::start`], or `None` (saying so on stderr) if `REWARD_JUDGE_SKIP=1`: for
    /// tests on the real judge, as `let Some(judge) = LlamaServer::start_or_skip() else { return };`.
    pub fn start_or_skip() -> Option<LlamaServer> {
        if std::env::var(ENV_JUDGE_SKIP).is_ok_and(|v| v == "1") {
            eprintln!("{ENV_JUDGE_SKIP}=1: skipping a test on the real judge (llama_cpp.server)");
            return None;
        }
        Some(LlamaServer::start())
    }

    /// Runs `python3 -m llama_cpp.server --model MODEL --host 127.0.0.1 --port P --n_ctx 2048 EXTRA...`
    /// on a free port and returns once `GET /v1/models` answers 200 and a 1-token warm-up
    /// completion has been answered (the first completion is much slower than the next ones).
    ///
    /// # Panics
    ///
    /// If the model file is missing, the process exits early (e.g. llama-cpp-python is not
    /// installed: the message names `scripts/setup-judge.sh` and shows the end of its stderr), or
    /// it does not answer within [`LLAMA_START_TIMEOUT`].
    pub fn start_with(model: &Path, extra: &[&str]) -> LlamaServer {
        assert!(model.is_file(), "the judge model {} does not exist ({ENV_JUDGE_MODEL}): {SETUP_HINT}", model.display());
        // The port is free when probed; the server binds it a moment later (a small race, as for
        // any server without a port-0 report: llama_cpp.server prints no port).
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("probing a free port").port();
        let mut child = Command::new("python3")
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--n_ctx", &LLAMA_N_CTX.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 -m llama_cpp.server: {e}; {SETUP_HINT}"));
        // The server logs a lot (model metadata, one line per request): keep only the tail, for
        // the panic message.
        let tail = Arc::new(Mutex::new(Vec::<String>::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = sink.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == 40 {
                    tail.remove(0);
                }
                tail.push(line);
            }
        });
        let mut process = ChildGuard::new(child);
        let addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = Connection::open(&addr, Duration::from_secs(5))
                .and_then(|mut c| c.request("GET", "/v1/models", &[], b""))
                .is_ok_and(|r| r.status == 200);
            if ready {
                let server = LlamaServer { process, model: model.to_owned(), addr };
                server.warm_up(&tail);
                return server;
            }
            let exited = process.child().try_wait().expect("polling llama_cpp.server");
            if exited.is_some() || started.elapsed() > LLAMA_START_TIMEOUT {
                // Let the stderr reader catch up with the last lines.
                std::thread::sleep(Duration::from_millis(200));
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                let what = match exited {
                    Some(status) => format!("exited ({status}) before answering"),
                    None => format!("did not answer GET /v1/models within {LLAMA_START_TIMEOUT:?}"),
                };
                let hint = if tail.contains("No module named") { format!("; {SETUP_HINT}") } else { String::new() };
                panic!("python3 -m llama_cpp.server --model {} {what}{hint}\nits stderr ends:\n{tail}", model.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One 1-token completion, so that the tests' first call is not the slow one: the first
    /// completion after start took 1 to 8 s here (2 busy cores), later ones about 80 ms.
    fn warm_up(&self, tail: &Mutex<Vec<String>>) {
        let body = serde_json::json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0});
        let answer = Connection::open(&self.addr, LLAMA_START_TIMEOUT).and_then(|mut c| c.post_json("/v1/chat/completions", &[], &body));
        match answer {
            Ok(r) if r.status == 200 => {}
            other => {
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                panic!("llama_cpp.server's warm-up completion failed: {other:?}\nits stderr ends:\n{tail}");
            }
        }
    }

    /// The base URL a client is configured with: `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The model name to put in requests (llama_cpp.server answers to any; this is the one
    /// `GET /v1/models` lists: the model path as given).
    pub fn model_name(&self) -> String {
        self.model.display().to_string()
    }
}
