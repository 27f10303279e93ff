"""Fixtures for the gRPC integration tests.

The Python stubs are generated from `proto/reward/v1/reward.proto` with grpcio-tools into a temporary
directory at session start (nothing generated is committed). The server is the real binary
(`REWARD_SERVER_BIN`, default `<repo>/target/release/reward-server`), started on ephemeral ports;
its `reward-server listening: grpc=... http=...` line tells the ports. At the end each server gets
SIGTERM and must exit 0.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_FILE = PROTO_ROOT / "reward" / "v1" / "reward.proto"
SERVER_BIN = Path(os.environ.get("REWARD_SERVER_BIN", str(REPO_ROOT / "target" / "release" / "reward-server")))
PLUGIN_DIR = REPO_ROOT / "target" / "plugins"
GUEST_PLUGIN = PLUGIN_DIR / "limits-guest.wasm"
# Compiled plugins are cached here between runs, so a server starts in well under a second.
ARTIFACT_CACHE = REPO_ROOT / "target" / "test-artifact-cache"

STARTUP_TIMEOUT_S = float(os.environ.get("REWARD_SERVER_STARTUP_TIMEOUT", "60"))
SHUTDOWN_TIMEOUT_S = 30.0
LISTENING_RE = re.compile(r"^reward-server listening: grpc=(\S+) http=(\S+)$")

AUTH_TOKEN = "s3cret-test-token"


# --------------------------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The generated modules: `pb.pb2` (messages) and `pb.grpc` (stubs)."""
    out = tmp_path_factory.mktemp("stubs")
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(PROTO_FILE.relative_to(PROTO_ROOT)),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"protoc failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("reward.v1.reward_pb2")
        pb2_grpc = importlib.import_module("reward.v1.reward_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    assert Path(pb2.__file__).resolve().is_relative_to(out.resolve()), (
        f"imported {pb2.__file__}, not the freshly generated stubs in {out}"
    )
    return SimpleNamespace(pb2=pb2, grpc=pb2_grpc)


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    """One running reward-server."""

    name: str
    proc: subprocess.Popen
    stderr_path: Path
    grpc_addr: str = ""
    http_url: str = ""
    stdout_lines: list = field(default_factory=list)
    _channels: list = field(default_factory=list)

    def stderr(self, tail: int = 8000) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.stderr_path}: {e}>"
        return text[-tail:]

    def channel(self) -> grpc.Channel:
        ch = grpc.insecure_channel(self.grpc_addr)
        self._channels.append(ch)
        return ch

    def stub(self, pb):
        return pb.grpc.RewardServiceStub(self.channel())

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit code (killing it if it does not exit in time)."""
        for ch in self._channels:
            ch.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"server {self.name!r} did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM\n"
                    f"--- stderr ---\n{self.stderr()}"
                )
        return self.proc.returncode


def _clean_env() -> dict:
    # The server reads REWARD_SERVER_* variables as flag defaults; keep the caller's out of the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWARD_SERVER_")}
    env.setdefault("RUST_LOG", "info")
    return env


def start_server(name: str, workdir: Path, *, config: Path | None = None, extra_args=()) -> Server:
    """Starts the binary and waits for its listening line; fails the test with stderr if it doesn't come."""
    if not SERVER_BIN.is_file():
        pytest.fail(f"server binary not found at {SERVER_BIN} (build it with `cargo build --release`, or set REWARD_SERVER_BIN)")
    args = [
        str(SERVER_BIN),
        "serve",
        "--config",
        str(config or REPO_ROOT / "rewards.toml"),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--cache-dir",
        str(ARTIFACT_CACHE),
        "--watch-interval-ms",
        "0",
        *extra_args,
    ]
    stderr_path = workdir / f"{name}.stderr.log"
    stderr_file = open(stderr_path, "wb")
    proc = subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        env=_clean_env(),
    )
    stderr_file.close()
    server = Server(name=name, proc=proc, stderr_path=stderr_path)

    ready = threading.Event()

    def read_stdout():
        # Keeps draining stdout for the life of the process, so the server never blocks on a full pipe.
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            server.stdout_lines.append(line)
            m = LISTENING_RE.match(line)
            if m and not ready.is_set():
                server.grpc_addr, server.http_url = m.group(1), m.group(2)
                ready.set()
        ready.set()  # EOF: the process ended (or closed stdout) without the line

    threading.Thread(target=read_stdout, name=f"{name}-stdout", daemon=True).start()
    started = time.monotonic()
    ready.wait(STARTUP_TIMEOUT_S)
    if not server.grpc_addr:
        waited = time.monotonic() - started
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            why = f"did not print its listening line within the {STARTUP_TIMEOUT_S:.0f}s timeout (killed)"
        else:
            why = f"exited with code {proc.returncode} after {waited:.1f}s without printing its listening line"
        pytest.fail(
            f"server {name!r} {why}\n"
            f"command: {' '.join(args)}\n"
            f"--- stdout ---\n" + "\n".join(server.stdout_lines) + f"\n--- stderr ---\n{server.stderr()}"
        )
    return server


def _stop_and_check(server: Server):
    code = server.stop()
    assert code == 0, (
        f"server {server.name!r} exited with {code} after SIGTERM, expected 0\n--- stderr ---\n{server.stderr()}"
    )


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory):
    """Starts extra servers; each is stopped with SIGTERM at session end and must exit 0."""
    workdir = tmp_path_factory.mktemp("servers")
    started: list[Server] = []

    def make(name: str, **kwargs) -> Server:
        s = start_server(name, workdir, **kwargs)
        started.append(s)
        return s

    make.workdir = workdir
    yield make
    errors = []
    for s in started:
        try:
            _stop_and_check(s)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n\n".join(errors)


@pytest.fixture(scope="session")
def server(server_factory) -> Server:
    """The server with the built-in rewards (rewards.toml)."""
    return server_factory("builtin")


@pytest.fixture(scope="session")
def guest_config(tmp_path_factory) -> Path:
    """A rewards config using the limits test guest (behaviour chosen by the completion)."""
    if not GUEST_PLUGIN.is_file():
        pytest.fail(f"{GUEST_PLUGIN} is missing; build it with scripts/build-plugins.sh")
    path = tmp_path_factory.mktemp("guest-config") / "rewards.toml"
    path.write_text(
        # Fuel-limited: `loop` ends as TIMEOUT after exactly 20,000,000 instructions.
        "[rewards.guest]\n"
        f'plugin = "{GUEST_PLUGIN}"\n'
        "limits = { fuel = 20000000 }\n"
        "\n"
        # Enough fuel for `work 200000` (about 2.4e9 instructions, a few tenths of a second) to
        # finish and score 1.0; under `guest` it would run out of fuel after a few milliseconds.
        "[rewards.guest_work]\n"
        f'plugin = "{GUEST_PLUGIN}"\n'
        "limits = { fuel = 50000000000, timeout_ms = 30000 }\n"
    )
    return path


@pytest.fixture(scope="session")
def guest_server(server_factory, guest_config) -> Server:
    return server_factory("guest", config=guest_config)


@pytest.fixture(scope="session")
def auth_server(server_factory) -> Server:
    return server_factory("auth", extra_args=["--auth-token", AUTH_TOKEN])


@pytest.fixture
def stub(server, pb):
    return server.stub(pb)


@pytest.fixture
def guest_stub(guest_server, pb):
    return guest_server.stub(pb)


# Server-side limits: a short request timeout and a small per-request cap.
LIMITS_REQUEST_TIMEOUT_MS = 300
LIMITS_MAX_ROLLOUTS = 5


@pytest.fixture(scope="session")
def limits_server(server_factory, guest_config) -> Server:
    return server_factory(
        "limits",
        config=guest_config,
        extra_args=[
            "--request-timeout-ms",
            str(LIMITS_REQUEST_TIMEOUT_MS),
            "--max-rollouts-per-request",
            str(LIMITS_MAX_ROLLOUTS),
        ],
    )
