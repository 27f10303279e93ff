"""Fixtures for the Python plugin kit's tests.

The example plugins are built from source with the kit's own build command (componentize-py) and
scored by the real server binary (`REWARD_SERVER_BIN`, default `<repo>/target/release/reward-server`).
Builds are kept in `<repo>/target/python-plugins/`, keyed by the sha256 of everything that goes
into them (the reward's file, the kit's guest modules, the WIT, componentize-py's version), so a
rerun with nothing changed reuses them; `REWARD_KIT_REBUILD=1` forces fresh builds. Compiled
artifacts are shared with the other suites in `<repo>/target/test-artifact-cache`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import pytest

KIT_ROOT = Path(__file__).resolve().parents[1]  # reward-plugins/python
REPO_ROOT = KIT_ROOT.parents[1]
EXAMPLES = KIT_ROOT / "examples"
SERVER_BIN = Path(os.environ.get("REWARD_SERVER_BIN", str(REPO_ROOT / "target" / "release" / "reward-server")))
BUILD_DIR = REPO_ROOT / "target" / "python-plugins"
ARTIFACT_CACHE = REPO_ROOT / "target" / "test-artifact-cache"
LISTENING_RE = re.compile(r"^reward-server listening: grpc=(\S+) http=(\S+)$")

sys.path.insert(0, str(KIT_ROOT))

from reward_kit import cli  # noqa: E402


def _componentize_py_version() -> str:
    try:
        from importlib.metadata import version

        return version("componentize-py")
    except Exception:  # noqa: BLE001
        return "unknown"


def _build_key(source: Path) -> str:
    h = hashlib.sha256()
    h.update(source.read_bytes())
    for name in cli.GUEST_MODULES:
        h.update((cli.KIT_DIR / name).read_bytes())
    h.update((cli.DEFAULT_WIT / "reward.wit").read_bytes())
    h.update(_componentize_py_version().encode())
    h.update((cli.KIT_DIR / "cli.py").read_bytes())
    return h.hexdigest()[:16]


def build_plugin(source: Path) -> Path:
    """Builds a reward file with `python -m reward_kit build` (the researcher's command), reusing
    an identical earlier build."""
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    out = BUILD_DIR / f"{source.stem}-{_build_key(source)}.wasm"
    if out.exists() and os.environ.get("REWARD_KIT_REBUILD") != "1":
        return out
    tmp = out.with_suffix(".wasm.tmp")
    proc = subprocess.run(
        [sys.executable, "-m", "reward_kit", "build", str(source), "-o", str(tmp)],
        cwd=KIT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"build of {source} failed:\n{proc.stderr}"
    tmp.replace(out)
    return out


@pytest.fixture(scope="session")
def server_bin() -> Path:
    if not SERVER_BIN.is_file():
        pytest.fail(f"no reward-server binary at {SERVER_BIN}: build it (cargo build --release -p reward-server) or set REWARD_SERVER_BIN")
    return SERVER_BIN


@pytest.fixture(scope="session")
def plugins() -> Dict[str, Path]:
    """The example plugins, built from source: {name: .wasm path}."""
    return {name: build_plugin(EXAMPLES / name / f"{name}.py") for name in ("finqa", "tool_call", "raises", "loops")}


def write_config(path: Path, rewards: Dict[str, dict]) -> Path:
    """A rewards TOML from {name: {plugin, groups, limits, config, on_error}} (inline tables)."""
    lines = []
    for name, r in rewards.items():
        lines.append(f"[rewards.{name}]")
        lines.append(f"plugin = {json.dumps(str(r['plugin']))}")
        if r.get("groups"):
            lines.append("groups = true")
        if "on_error" in r:
            lines.append(f"on_error = {json.dumps(r['on_error'])}")
        if "limits" in r:
            lines.append("limits = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in r["limits"].items()) + " }")
        if "config" in r:
            lines.append(f"config = {_toml_inline(r['config'])}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def _toml_inline(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def score_file(server_bin: Path, config: Path, reward: str, input_path: Path, out: Path, *extra: str) -> List[dict]:
    """Runs `reward-server score` and returns the output lines, parsed."""
    proc = subprocess.run(
        [str(server_bin), "score", "--config", str(config), "--reward", reward, "--input", str(input_path), "--output", str(out),
         "--cache-dir", str(ARTIFACT_CACHE), "--no-progress", *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"reward-server score exited {proc.returncode}:\n{proc.stderr}"
    return [json.loads(line) for line in out.read_text().splitlines()]


@dataclass
class Server:
    proc: subprocess.Popen
    http: str

    def post(self, path: str, body: Optional[dict] = None, timeout: float = 120.0) -> dict:
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.http + path, data=data, headers={"content-type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return {"http_status": e.code, **json.loads(e.read() or b"{}")}

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.http + path, timeout=30) as resp:
            return json.loads(resp.read())


def start_server(server_bin: Path, config: Path, *extra: str) -> Server:
    """`reward-server serve` on ephemeral loopback ports; returns once it listens."""
    proc = subprocess.Popen(
        [str(server_bin), "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--config", str(config),
         "--cache-dir", str(ARTIFACT_CACHE), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    found: List[str] = []

    def read() -> None:
        for line in proc.stdout:
            m = LISTENING_RE.match(line.strip())
            if m and not found:
                found.append(m.group(2))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server did not start (exit {proc.poll()})")
        time.sleep(0.05)
    http = found[0]
    if not http.startswith("http"):
        http = "http://" + http
    return Server(proc, http)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        assert server.proc.wait(timeout=30) == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
