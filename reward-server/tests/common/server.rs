//! The real server binary on loopback, for end-to-end tests.

use std::path::Path;
use std::time::Duration;

use reward_server_harness::ServerProcess;

/// A running `reward-server serve`; killed on drop unless waited for.
pub struct Server {
    process: ServerProcess,
    /// The gRPC endpoint, `http://127.0.0.1:PORT`.
    pub grpc: String,
    /// The HTTP base URL.
    pub http: String,
}

impl Server {
    /// Starts the server with `config` and extra flags; returns once it listens.
    pub fn start(config: &Path, extra: &[&str]) -> Server {
        let process = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_reward-server")), config, &super::cache_dir(), extra);
        Server { grpc: format!("http://{}", process.grpc_addr), http: process.http_url.clone(), process }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.process.process.pid()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.process.process.sigterm()
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        self.process.process.wait(within)
    }
}
