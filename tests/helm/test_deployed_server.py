"""The real server binary, run exactly as the chart's Deployment declares it.

The chart is rendered; the reward-server container's command, args, env, ports and probes are taken
from the Deployment as they are. Each volumeMount becomes a directory under a temp "root", filled the
way the kubelet fills it (ConfigMaps and Secrets with the kubelet's atomic-writer layout: `..data`
symlink swapped on update), each image path (the binary, the built-in plugins) points at this
checkout's build, and listen addresses move to loopback ports. Then it is probed, called, its
ConfigMap is updated, and it is scaled in (preStop sleep, SIGTERM, drain) as the kubelet would.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helmtest import PLUGIN_DIR, SERVER_BIN, Rendered, merge

IMAGE_BINARY = "/usr/local/bin/reward-server"  # where the Dockerfile installs it
TOKEN = "k8s-test-token"

MATH_ROLLOUT = {
    "id": "finqa-1",
    "messages": [
        {"role": "user", "content": "Revenue grew from 120 to 135. Growth in percent?"},
        {"role": "assistant", "content": "<think>135/120 = 1.125</think><answer>12.5%</answer>"},
    ],
    "reference_answer": {"answer": "12.5"},
}

# A reward on the limits test guest: `work N` burns CPU proportional to N, then scores 1.
SLOW_REWARD = """
[rewards.slow]
plugin = "limits-guest"
limits = { fuel = 500_000_000_000, timeout_ms = 60_000 }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def atomic_write(directory: Path, files: dict[str, bytes], mode: int = 0o644):
    """Writes a ConfigMap/Secret volume as the kubelet's AtomicWriter does: the files go into a
    fresh `..<timestamp>` directory, `..data` is switched to it by rename, and each visible name is a
    symlink through `..data`."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for name, data in files.items():
        (stamp / name).write_bytes(data)
        (stamp / name).chmod(mode)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(stamp.name)
    os.rename(tmp_link, directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    if old:
        shutil.rmtree(directory / old)


@dataclass
class Pod:
    """The reward-server container of a rendered chart, running on this machine."""

    rendered: Rendered
    values: dict
    root: Path
    secrets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # container path -> host path
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> loopback port
    proc: subprocess.Popen | None = None
    argv: list[str] = field(default_factory=list)

    # ---- the filesystem --------------------------------------------------------------------

    def build(self):
        c, pod = self.rendered.container, self.rendered.pod
        # What the image holds (Dockerfile): the binary and the built-in plugins.
        assert c["command"][0] == IMAGE_BINARY, c["command"]
        self.paths[IMAGE_BINARY] = SERVER_BIN
        image_plugins = self.root / self.values["plugins"]["imageDir"].lstrip("/")
        image_plugins.mkdir(parents=True)
        for wasm in PLUGIN_DIR.glob("*.wasm"):
            shutil.copy(wasm, image_plugins / wasm.name)
        self.paths[self.values["plugins"]["imageDir"]] = image_plugins
        volumes = {v["name"]: v for v in pod["volumes"]}
        for m in c["volumeMounts"]:
            self.paths[m["mountPath"]] = self.root / m["mountPath"].lstrip("/")
        for m in c["volumeMounts"]:
            host = self.root / m["mountPath"].lstrip("/")
            vol = volumes[m["name"]]
            if "emptyDir" in vol:
                host.mkdir(parents=True, exist_ok=True)
            elif "configMap" in vol:
                self.write_configmap_volume(vol, host)
            elif "secret" in vol:
                self.write_secret_volume(vol, host)
            else:
                pytest.fail(f"volume {m['name']}: a kind this test does not know how to mount: {vol}")
        self.ports = {p["containerPort"]: free_port() for p in c["ports"]}

    def configmap_files(self, rendered: Rendered, vol: dict) -> dict[str, bytes]:
        cm = rendered.named("ConfigMap", vol["configMap"]["name"])
        # The rewards config names container paths (plugin_dir): translated like the args are. A
        # path that is on no volume and not in the image stays as it is, and fails to load.
        quoted = re.compile(r'"(/[^"]*)"')
        return {
            i["path"]: quoted.sub(lambda m: json.dumps(self.host_path(m.group(1))), cm["data"][i["key"]]).encode()
            for i in vol["configMap"]["items"]
        }

    def write_configmap_volume(self, vol, host):
        atomic_write(host, self.configmap_files(self.rendered, vol), vol["configMap"].get("defaultMode", 0o644))

    def write_secret_volume(self, vol, host):
        name = vol["secret"]["secretName"]
        found = [s for s in self.rendered.of_kind("Secret") if s["metadata"]["name"] == name]
        data = {k: base64.b64decode(v) for k, v in found[0]["data"].items()} if found else self.secrets[name]
        files = {i["path"]: data[i["key"]] for i in vol["secret"]["items"]}
        # defaultMode 0440 with fsGroup: here the test user owns the files, so owner-read suffices.
        atomic_write(host, files, vol["secret"]["defaultMode"] & 0o700 or 0o400)

    def update_configmap(self, rendered: Rendered):
        """What the kubelet does when `helm upgrade` changes the ConfigMap."""
        vol = next(v for v in rendered.pod["volumes"] if "configMap" in v)
        mount = next(m for m in rendered.container["volumeMounts"] if m["name"] == vol["name"])
        atomic_write(self.paths[mount["mountPath"]], self.configmap_files(rendered, vol))

    @property
    def token(self) -> str | None:
        """The bearer token in the pod's mounted auth Secret (the chart's generated one by default)."""
        flags = [a.split("=", 1)[1] for a in self.rendered.container["args"] if a.startswith("--auth-token-file=")]
        return Path(self.host_path(flags[0])).read_text().splitlines()[0].strip() if flags else None

    def host_path(self, path: str) -> str:
        for prefix in sorted(self.paths, key=len, reverse=True):
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return str(self.paths[prefix]) + path[len(prefix) :]
        return path

    def translate(self, value: str) -> str:
        """A container path or listen address, as this machine knows it."""
        m = re.fullmatch(r"(0\.0\.0\.0|\[::\]):(\d+)", value)
        if m:
            port = int(m.group(2))
            assert port in self.ports, f"listens on {value}, a port the container does not declare ({list(self.ports)})"
            return f"127.0.0.1:{self.ports[port]}"
        return self.host_path(value) if value.startswith("/") else value

    def translate_arg(self, a: str) -> str:
        if a.startswith("--") and "=" in a:
            flag, value = a.split("=", 1)
            return f"{flag}={self.translate(value)}"
        return self.translate(a)

    # ---- the process -----------------------------------------------------------------------

    def start(self):
        c = self.rendered.container
        self.argv = [self.translate_arg(a) for a in c["command"] + c.get("args", [])]
        # A container does not inherit this machine's settings (nor its RUST_LOG).
        env = {k: v for k, v in os.environ.items() if not k.startswith("REWARD_SERVER_") and k != "RUST_LOG"}
        # The image's environment (Dockerfile ENV); the pod's env overrides it.
        env["HOME"] = str(self.root / "home" / "nonroot")
        for e in c.get("env", []):
            assert "value" in e, f"env {e['name']} comes from a source this test does not model"
            env[e["name"]] = self.translate(e["value"])
        self.log = (self.root.parent / "server.log").open("wb")
        self.proc = subprocess.Popen(
            self.argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT
        )

    def logs(self, tail: int = 6000) -> str:
        self.log.flush()
        text = (self.root.parent / "server.log").read_text(errors="replace")
        return text[-tail:] if tail else text

    def log_levels(self) -> set[str]:
        """The levels of the server's log lines so far (tracing's `TIME LEVEL target: message`)."""
        plain = re.sub(r"\x1b\[[0-9;]*m", "", self.logs(tail=0))
        return set(re.findall(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR) ", plain, re.M))

    def url(self, port_name: str, path: str, scheme: str = "http") -> str:
        (p,) = [p for p in self.rendered.container["ports"] if p["name"] == port_name]
        return f"{scheme}://127.0.0.1:{self.ports[p['containerPort']]}{path}"

    def probe(self, kind: str) -> bool:
        """One run of the container's probe, judged as the kubelet judges it."""
        spec = self.rendered.container[kind]
        if "httpGet" in spec:
            g = spec["httpGet"]
            try:
                with urllib.request.urlopen(self.url(g["port"], g["path"], g["scheme"].lower()), timeout=spec["timeoutSeconds"]) as r:
                    return 200 <= r.status < 400
            except urllib.error.HTTPError as e:
                return 200 <= e.code < 400
            except OSError:
                return False
        pytest.fail(f"{kind}: only httpGet probes are exercised here: {spec}")

    def wait_started(self):
        spec = self.rendered.container["startupProbe"]
        deadline = time.monotonic() + spec["periodSeconds"] * spec["failureThreshold"]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode} before its startup probe passed\n"
                            f"argv: {self.argv}\n{self.logs()}")
            if self.probe("startupProbe"):
                return
            time.sleep(0.2)
        pytest.fail(f"startup probe did not pass within the chart's startup budget\nargv: {self.argv}\n{self.logs()}")

    def call(self, path: str, body=None, token: str | None = None, timeout: float = 60):
        """(status, parsed body) of a call to the http port."""
        req = urllib.request.Request(self.url("http", path), method="POST" if body is not None else "GET")
        if body is not None:
            req.data = json.dumps(body).encode()
            req.add_header("content-type", "application/json")
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text.decode(errors="replace")

    def inflight(self) -> float:
        with urllib.request.urlopen(self.url("http", "/metrics"), timeout=5) as r:
            text = r.read().decode()
        m = re.search(r'^reward_inflight_rollouts\{budget="cpu"\} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def deploy(chart, render, tmp_path):
    """deploy(values) -> a started Pod; killed at the end if the test left it running."""
    pods: list[Pod] = []

    def make(values: dict, secrets=None) -> Pod:
        if not SERVER_BIN.is_file():
            pytest.fail(f"server binary not found at {SERVER_BIN} (cargo build --release, or set REWARD_SERVER_BIN)")
        if not (PLUGIN_DIR / "format.wasm").is_file():
            pytest.fail(f"{PLUGIN_DIR} has no built plugins; run scripts/build-plugins.sh")
        workdir = tmp_path / f"pod{len(pods)}"
        pod = Pod(render(values), chart.merge_values(values), workdir / "root", secrets or {})
        pods.append(pod)
        pod.build()
        pod.start()
        pod.wait_started()
        return pod

    yield make
    for p in pods:
        p.stop()


# ------------------------------------------------------------------------------------------------


def test_serves_as_deployed(deploy, render):
    values = {
        "auth": {"enabled": True, "existingSecret": "rs-token"},
        "server": {"watchIntervalMs": 200},
    }
    pod = deploy(values, secrets={"rs-token": {"token": f"{TOKEN}\n".encode()}})

    assert pod.probe("livenessProbe"), pod.logs()
    assert pod.probe("readinessProbe"), pod.logs()
    # The gRPC containerPort is the one the server listens on.
    (grpc,) = [p for p in pod.rendered.container["ports"] if p["name"] == "grpc"]
    socket.create_connection(("127.0.0.1", pod.ports[grpc["containerPort"]]), timeout=5).close()

    # The built-in rewards, from the chart's ConfigMap, with the image's plugins.
    status, body = pod.call("/v1/rewards", token=TOKEN)
    assert status == 200, body
    names = {r["name"] for r in (body["rewards"] if isinstance(body, dict) else body)}
    assert {"math", "numeric_answer", "think_answer_format", "grounded_answer"} <= names

    # The token from the Secret's mounted file is required.
    status, body = pod.call("/v1/rewards/math/lambda", [MATH_ROLLOUT], token=TOKEN)
    assert status == 200, body
    assert body[0]["id"] == "finqa-1" and body[0]["aggregate_reward_score"] == pytest.approx(1.0)
    assert pod.call("/v1/rewards/math/lambda", [MATH_ROLLOUT])[0] == 401
    assert pod.call("/v1/rewards/math/lambda", [MATH_ROLLOUT], token="wrong")[0] == 401

    # Compiled plugins went to the emptyDir cache (the only writable place besides /tmp).
    cache = Path(pod.host_path(pod.values["artifactCache"].get("mountPath")))
    assert list(cache.glob("*.cwasm")), f"nothing cached in {cache}\n{pod.logs()}"

    # `helm upgrade` with a changed rewards config: the kubelet swaps the ConfigMap volume, the
    # server reloads it without a restart.
    new_config = pod.values["rewards"]["config"] + (
        '\n[rewards.answer_only]\nplugin = "format"\nconfig = { required_tags = ["answer"] }\n'
    )
    pod.update_configmap(render(merge(values, {"rewards": {"config": new_config}})))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = pod.call("/v1/rewards/answer_only/lambda", [MATH_ROLLOUT], token=TOKEN)
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200, f"the ConfigMap update was not picked up: {status} {body}\n{pod.logs()}"
    assert body[0]["aggregate_reward_score"] == pytest.approx(1.0)
    assert pod.proc.poll() is None, "reloading must not restart the server"

    # server.logLevel (default info) is the filter the server logs by.
    assert "INFO" in pod.log_levels() and "DEBUG" not in pod.log_levels(), pod.logs()

    pod.proc.send_signal(signal.SIGTERM)
    assert pod.proc.wait(timeout=pod.rendered.pod["terminationGracePeriodSeconds"]) == 0, pod.logs()


def test_defaults_require_the_generated_token_and_log_level_debug_logs_debug(deploy):
    """The default install's generated token, as the pod mounts it, is the one required; and
    server.logLevel=debug reaches the binary (the variable the chart sets is the one it reads)."""
    one_reward = '[rewards.think_answer_format]\nplugin = "format"\nconfig = { required_tags = ["think", "answer"] }\n'
    pod = deploy({"server": {"logLevel": "debug"}, "rewards": {"config": one_reward}})
    assert pod.token and len(pod.token) == 48
    assert pod.call("/v1/rewards")[0] == 401
    status, body = pod.call("/v1/rewards/think_answer_format/lambda", [MATH_ROLLOUT], token=pod.token)
    assert status == 200 and body[0]["aggregate_reward_score"] == pytest.approx(1.0), body
    assert "DEBUG" in pod.log_levels(), f"server.logLevel=debug logged no DEBUG line\n{pod.logs()}"


def test_scale_in_drains_in_flight_work(deploy, chart):
    """Kubelet's termination sequence: preStop sleep, SIGTERM, then SIGKILL at the grace period.
    An accepted request must finish, readiness must turn 503, new work must be refused, and the
    process must exit 0 well before SIGKILL."""
    values = {
        "rewards": {"config": chart.values["rewards"]["config"] + SLOW_REWARD},
        "drain": {"timeoutSeconds": 20, "preStopSleepSeconds": 1, "marginSeconds": 5},
        "server": {"cacheEntries": 0},
    }
    pod = deploy(values)
    c, spec = pod.rendered.container, pod.rendered.pod
    grace = spec["terminationGracePeriodSeconds"]
    prestop = c["lifecycle"]["preStop"]["sleep"]["seconds"]

    # Size a request to take a few seconds on this machine.
    t = time.monotonic()
    status, body = pod.call("/v1/rewards/slow/lambda", [{"id": "w", "messages": [{"role": "assistant", "content": "work 100000"}]}],
                            token=pod.token)
    assert status == 200 and body[0]["aggregate_reward_score"] == 1.0, body
    per_unit = max(time.monotonic() - t, 0.01) / 100_000
    n = int(min(max(3.0 / per_unit, 100_000), 5_000_000))

    result = {}

    def in_flight():
        rollout = {"id": "inflight", "messages": [{"role": "assistant", "content": f"work {n}"}]}
        result["started"] = time.monotonic()
        result["response"] = pod.call("/v1/rewards/slow/lambda", [rollout], token=pod.token, timeout=grace)
        result["finished"] = time.monotonic()

    worker = threading.Thread(target=in_flight)
    worker.start()
    deadline = time.monotonic() + 10
    while pod.inflight() < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pod.inflight() >= 1, "the slow request was never admitted"

    # Kubelet: the pod is deleted; preStop runs (the server still serves), then SIGTERM.
    terminating = time.monotonic()
    time.sleep(prestop)
    assert pod.probe("readinessProbe"), "the pod must stay ready during the preStop sleep"
    assert worker.is_alive(), f"the request finished too early to test the drain (work {n})"
    pod.proc.send_signal(signal.SIGTERM)

    deadline = time.monotonic() + 5
    while pod.probe("readinessProbe") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pod.probe("readinessProbe"), "readiness must fail once draining"
    assert worker.is_alive(), "the in-flight request must still be running when readiness flips"
    status, _ = pod.call("/v1/rewards/math/lambda", [MATH_ROLLOUT], token=pod.token, timeout=5)
    assert status == 503, f"new work while draining: {status}"
    assert pod.probe("livenessProbe") or pod.proc.poll() is not None, "a draining pod must not be killed by liveness"

    code = pod.proc.wait(timeout=max(grace - (time.monotonic() - terminating), 0.1))
    elapsed = time.monotonic() - terminating
    worker.join(timeout=5)
    assert code == 0, pod.logs()
    assert elapsed < grace, f"exited {elapsed:.1f}s after termination began; SIGKILL would come at {grace}s"
    status, body = result["response"]
    assert status == 200, f"the in-flight request was not finished by the drain: {status} {body}"
    assert body[0]["id"] == "inflight" and body[0]["aggregate_reward_score"] == 1.0, body
