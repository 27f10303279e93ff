//! The real server binary on loopback, for end-to-end tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `reward-server serve`; killed on drop unless stopped.
pub struct Server {
    pub child: Option<Child>,
    pub grpc: String,
    pub http: String,
}

impl Server {
    /// Starts the server with `config` and extra flags; returns once it listens.
    pub fn start(config: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reward-server"))
            .args(["serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--cache-dir")
            .arg(super::cache_dir())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting reward-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("server did not report listening within 60 s (exit: {:?})", child.try_wait());
            });
            if let Some(rest) = line.strip_prefix("reward-server listening: ") {
                let mut grpc = String::new();
                let mut http = String::new();
                for part in rest.split_whitespace() {
                    if let Some(v) = part.strip_prefix("grpc=") {
                        grpc = format!("http://{v}");
                    } else if let Some(v) = part.strip_prefix("http=") {
                        http = v.to_owned();
                    }
                }
                return Server { child: Some(child), grpc, http };
            }
        }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
