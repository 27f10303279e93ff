//! Helpers shared by the integration tests: ports, child processes, the real server binary.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use reward_server_harness::ServerProcess;

/// The workspace root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts a server on a free port (`spawn` is given the port) and waits until it listens there.
/// A port is free when [`free_port`] picks it, but another process (a parallel test's server)
/// may bind it before this one does: then the port answers for the other while this one exits,
/// so the child must still be running a moment after the port answers. Such a start is retried
/// on another port, up to five times.
pub fn start_on_free_port(what: &str, mut spawn: impl FnMut(u16) -> Child) -> (u16, Child) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        wait_port(port, what, &mut child);
        std::thread::sleep(Duration::from_millis(300));
        if child.try_wait().unwrap().is_none() {
            return (port, child);
        }
    }
    panic!("{what} exited after its port answered, five times: each port was taken by another process");
}

/// Waits until something accepts connections on the port; a child that exits first fails.
pub fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited before listening on port {port}: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on port {port} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[allow(unused_imports)]
pub use reward_server_harness::ChildGuard;

/// Fails with a clear message when a tool the tests need is missing.
pub fn require_tool(program: &str, install: &str) {
    let found = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false);
    assert!(found, "`{program}` is not on PATH: install it with `{install}` (see rft-launch/tests/requirements.txt)");
}

/// The real `reward-server` binary: `$REWARD_SERVER_BIN`, else the workspace's release build.
pub fn server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("REWARD_SERVER_BIN") {
        return p.into();
    }
    let p = repo_root().join("target/release/reward-server");
    assert!(p.exists(), "{} is missing: run `cargo build --release -p reward-server` first", p.display());
    p
}

/// A built guest plugin, `target/plugins/NAME.wasm`.
pub fn plugin_path(name: &str) -> PathBuf {
    let path = repo_root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run scripts/build-plugins.sh first", path.display());
    path
}

/// A running `reward-server serve` on loopback.
pub struct Server {
    pub proc: ServerProcess,
    /// `127.0.0.1:PORT` of the gRPC listener.
    pub grpc: String,
    /// The HTTP base URL (`http://127.0.0.1:PORT`).
    pub http: String,
}

impl Server {
    pub fn start(config: &Path, extra: &[&str]) -> Server {
        let proc = ServerProcess::start(&server_bin(), config, &repo_root().join("target/test-artifact-cache"), extra);
        Server { grpc: proc.grpc_addr.clone(), http: proc.http_url.clone(), proc }
    }
}

/// The published Nova recipes (`../shared/nova-recipes` next to the repository), or `None` with a
/// note on stderr: tests that need them skip when `../shared` is absent (CI copies it there).
pub fn nova_recipes(test: &str) -> Option<PathBuf> {
    let dir = repo_root().parent().unwrap().join("shared/nova-recipes");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{test}: skipped, needs the published recipes at {}", dir.display());
        None
    }
}

/// Runs `python3 script args...` with `stdin`, returns its stdout; fails the test with stderr.
pub fn python(script: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (pip install -r rft-launch/tests/requirements.txt)");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed (pip install -r rft-launch/tests/requirements.txt?):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
