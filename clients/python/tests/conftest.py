"""Fixtures: the real reward-server binary on loopback, on ephemeral ports.

The binary is `REWARD_SERVER_BIN` (default `<repo>/target/release/reward-server`); the plugins
come from `<repo>/target/plugins` (scripts/build-plugins.sh). A server prints
`reward-server listening: grpc=ADDR http=URL` once both listeners are bound; that line gives the
ports. Session servers get SIGTERM at the end and must exit 0.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("REWARD_SERVER_BIN", REPO / "target" / "release" / "reward-server"))
PLUGINS = REPO / "target" / "plugins"
CACHE = REPO / "target" / "test-artifact-cache"
READY = re.compile(r"^reward-server listening: grpc=(\S+) http=(\S+)$")

# The limits guest (reward-plugins/testing/limits-guest) picks its behaviour from the completion:
# `panic` traps, `invalid` is INVALID_INPUT, `work N` computes for a while, anything else scores
# its length. `guest` fails as 0 (`zero`), `guest_abstain` with no score.
GUEST_CONFIG = """\
[rewards.guest]
plugin = "{plugin}"

[rewards.guest_abstain]
plugin = "{plugin}"
on_error = "abstain"

[rewards.slow]
plugin = "{plugin}"
limits = {{ fuel = 20_000_000_000, timeout_ms = 60000 }}
"""


class Server:
    def __init__(self, proc: subprocess.Popen, log: Path):
        self.proc, self.log = proc, log
        self.grpc = self.http = ""

    @property
    def grpc_url(self) -> str:
        return f"grpc://{self.grpc}"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as r:
            return r.read().decode()

    def requests(self, reward: str, transport: str = "http") -> int:
        """Requests the server answered for `reward` on `transport`, any outcome."""
        pat = re.compile(rf'^reward_requests_total\{{reward="{re.escape(reward)}",transport="{transport}",outcome="[^"]*"\}} (\d+)$')
        return sum(int(m.group(1)) for line in self.metrics().splitlines() if (m := pat.match(line)))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start(workdir: Path, name: str, config: Path, *args: str) -> Server:
    if not BIN.is_file():
        pytest.fail(f"no server binary at {BIN}: run `cargo build --release -p reward-server`, or set REWARD_SERVER_BIN")
    log = workdir / f"{name}.log"
    cmd = [str(BIN), "serve", "--config", str(config), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
           "--cache-dir", str(CACHE), "--watch-interval-ms", "0", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARD_SERVER_")}
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
    server = Server(proc, log)
    ready = threading.Event()

    def drain_stdout():
        for raw in proc.stdout:
            m = READY.match(raw.decode(errors="replace").strip())
            if m:
                server.grpc, server.http = m.groups()
                ready.set()
        ready.set()

    threading.Thread(target=drain_stdout, daemon=True).start()
    ready.wait(60)
    if not server.http:
        proc.kill()
        pytest.fail(f"server {name} did not start: {' '.join(cmd)}\n{log.read_text(errors='replace')[-4000:]}")
    return server


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def guest_config(workdir) -> Path:
    plugin = PLUGINS / "limits-guest.wasm"
    if not plugin.is_file():
        pytest.fail(f"{plugin} is missing: run scripts/build-plugins.sh")
    path = workdir / "guest.toml"
    path.write_text(GUEST_CONFIG.format(plugin=plugin))
    return path


@pytest.fixture(scope="session")
def session_servers():
    started: list[tuple[str, Server]] = []
    yield started
    bad = [f"{name} exited {code}" for name, s in started if (code := s.stop()) != 0]
    assert not bad, bad


@pytest.fixture(scope="session")
def server(workdir, guest_config, session_servers) -> Server:
    """The limits guest's rewards, plus nothing else: deterministic OK and failed rollouts."""
    s = start(workdir, "guest", guest_config)
    session_servers.append(("guest", s))
    return s


@pytest.fixture(scope="session")
def builtin(workdir, session_servers) -> Server:
    """The built-in rewards of rewards.toml."""
    s = start(workdir, "builtin", REPO / "rewards.toml")
    session_servers.append(("builtin", s))
    return s


@pytest.fixture
def fresh(workdir, guest_config):
    """Starts a server for one test (for overload and drain); stopped after it."""
    mine: list[Server] = []

    def make(*args: str) -> Server:
        s = start(workdir, f"fresh{len(mine)}-{time.monotonic_ns()}", guest_config, *args)
        mine.append(s)
        return s

    yield make
    for s in mine:
        s.stop()


@pytest.fixture(params=["http", "grpc"])
def url(request, server) -> str:
    return server.http if request.param == "http" else server.grpc_url
