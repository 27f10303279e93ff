//! Test support for this workspace's end-to-end tests: the real `reward-server serve` started on
//! ephemeral loopback ports (its addresses read from the line it prints when it listens), and
//! child processes that are killed when the test drops them, pass or panic; and, for the judge
//! (reward plugins asking an LLM through the host), a scripted fake OpenAI-compatible server
//! ([`fake_judge::FakeJudge`]) and a real one on a small model ([`LlamaServer`]).
#![deny(missing_docs)]

pub mod fake_judge;
pub mod http1;
mod llama;

pub use llama::{DEFAULT_MODEL_FILE, ENV_JUDGE_MODEL, ENV_JUDGE_SKIP, LLAMA_N_CTX, LLAMA_START_TIMEOUT, LlamaServer, judge_model_path};

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to report that it listens (compiling plugins on a cold cache).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// The process, until [`ChildGuard::wait`] took it.
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the process was already waited for")
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.0.as_ref().expect("the process was already waited for").id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("running kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `within` for the process to exit and returns its exit code; kills it and
    /// panics if it does not.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.0.take().expect("the process was already waited for");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the process") {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("process {} did not exit within {within:?}", child.id());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `reward-server serve` on loopback; killed on drop unless waited for.
#[derive(Debug)]
pub struct ServerProcess {
    /// The process.
    pub process: ChildGuard,
    /// The gRPC listener, `127.0.0.1:PORT`.
    pub grpc_addr: String,
    /// The HTTP listener's base URL as the server prints it (`http://127.0.0.1:PORT`, or `https://`).
    pub http_url: String,
}

impl ServerProcess {
    /// Runs `bin serve --config CONFIG --cache-dir CACHE EXTRA...` on ephemeral ports; returns once
    /// the server reports that it listens (panics after [`START_TIMEOUT`]).
    pub fn start(bin: &Path, config: &Path, cache_dir: &Path, extra: &[&str]) -> ServerProcess {
        let mut child = Command::new(bin)
            .args(["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--cache-dir")
            .arg(cache_dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut process = ChildGuard::new(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                let exit = process.child().try_wait();
                panic!("reward-server did not report listening within {START_TIMEOUT:?} (exit: {exit:?})");
            };
            if let Some((grpc_addr, http_url)) = parse_listening(&line) {
                return ServerProcess { process, grpc_addr, http_url };
            }
        }
    }
}

/// The addresses in `reward-server listening: grpc=ADDR http=URL`.
fn parse_listening(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("reward-server listening: ")?;
    let (mut grpc, mut http) = (None, None);
    for part in rest.split_whitespace() {
        if let Some(v) = part.strip_prefix("grpc=") {
            grpc = Some(v.to_owned());
        } else if let Some(v) = part.strip_prefix("http=") {
            http = Some(v.to_owned());
        }
    }
    Some((grpc?, http?))
}

#[cfg(test)]
mod tests {
    use super::parse_listening;

    #[test]
    fn the_listening_line_parses() {
        let line = "reward-server listening: grpc=127.0.0.1:5001 http=http://127.0.0.1:5002";
        assert_eq!(parse_listening(line), Some(("127.0.0.1:5001".into(), "http://127.0.0.1:5002".into())));
        assert_eq!(parse_listening("reward-server listening: grpc=127.0.0.1:1"), None);
        assert_eq!(parse_listening("something else"), None);
    }
}
