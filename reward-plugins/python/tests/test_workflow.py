"""The researcher's path: scaffold a plugin, test it natively, build it, score a file with it, and
hand it to a running server without a restart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ARTIFACT_CACHE, KIT_ROOT, REPO_ROOT, build_plugin, score_file, start_server, stop_server, write_config

REWARD_KIT = KIT_ROOT / "reward-kit"
LIMITS = {"instance_reuse": 1000, "memory_mib": 128}


def kit(*args, cwd=None):
    proc = subprocess.run([str(REWARD_KIT), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600,
                          env=dict(os.environ, PYTHON=sys.executable))
    return proc


def test_new_python_plugin_tests_builds_and_scores(server_bin, tmp_path):
    proc = kit("new", "my_reward", "--lang", "python", "--dir", tmp_path)
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "my_reward"
    assert sorted(p.name for p in folder.iterdir()) == ["my_reward.py", "rewards.toml", "sample.jsonl", "test_my_reward.py"]
    assert "reward-kit build my_reward.py" in proc.stderr
    # The generated native tests pass as generated.
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_reward.py"],
                           cwd=folder, capture_output=True, text=True, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    # Build with the command the README gives, then score the sample with the generated config.
    proc = kit("build", "my_reward.py", "-o", "my_reward.wasm", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "my_reward.wasm").stat().st_size > 1 << 20
    rows = score_file(server_bin, folder / "rewards.toml", "my_reward", folder / "sample.jsonl", tmp_path / "out.jsonl")
    assert [(r["id"], r["status"], r["score"]) for r in rows] == [("s1", "OK", 1.0), ("s2", "OK", 0.0), ("s3", "OK", 1.0)]
    assert rows[0]["metrics"] == {"correct": 1.0, "answer_found": 1.0}


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    assert kit("new", "Bad-Name", "--dir", tmp_path).returncode == 64
    assert kit("new", "dup", "--dir", tmp_path).returncode == 0
    proc = kit("new", "dup", "--dir", tmp_path)
    assert proc.returncode == 64 and "already exists" in proc.stderr


def test_build_errors_are_reported(tmp_path):
    none = tmp_path / "nothing.py"
    none.write_text("x = 1\n")
    proc = kit("build", none, "-o", tmp_path / "n.wasm")
    assert proc.returncode == 64 and "no @reward function defined" in proc.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module_anywhere\n")
    proc = kit("build", broken, "-o", tmp_path / "b.wasm")
    assert proc.returncode == 64 and "not_a_module_anywhere" in proc.stderr
    proc = kit("build", tmp_path / "missing.py")
    assert proc.returncode == 64 and "no such file" in proc.stderr


def test_new_rust_plugin_joins_the_workspace(tmp_path):
    ws = tmp_path / "reward-plugins"
    (ws / "sdk").mkdir(parents=True)
    (ws / "Cargo.toml").write_text('[workspace]\nresolver = "3"\nmembers = ["sdk", "format"]\n')
    proc = kit("new", "my_rust", "--lang", "rust", "--dir", ws)
    assert proc.returncode == 0, proc.stderr
    assert 'members = ["sdk", "format", "my_rust"]' in (ws / "Cargo.toml").read_text()
    cargo = (ws / "my_rust" / "Cargo.toml").read_text()
    assert 'name = "reward-my-rust"' in cargo and "reward-sdk.workspace = true" in cargo
    lib = (ws / "my_rust" / "src" / "lib.rs").read_text()
    assert 'name: "my_rust".into()' in lib and "reward_sdk::export_reward!(Plugin);" in lib
    assert "{{" not in cargo + lib


@pytest.mark.skipif(os.environ.get("REWARD_KIT_TEST_RUST") != "1", reason="set REWARD_KIT_TEST_RUST=1 to cargo-test the Rust template (compiles the SDK natively)")
def test_rust_template_passes_its_own_tests(tmp_path):
    ws = tmp_path / "reward-plugins"
    ws.mkdir()
    src = REPO_ROOT / "reward-plugins"
    shutil.copytree(src / "sdk", ws / "sdk", ignore=shutil.ignore_patterns("target"))
    shutil.copytree(src / "wit", ws / "wit")
    shutil.copy2(src / "Cargo.lock", ws / "Cargo.lock")
    text = (src / "Cargo.toml").read_text()
    import re

    (ws / "Cargo.toml").write_text(re.sub(r"members\s*=\s*\[[^\]]*\]", 'members = ["sdk"]', text))
    assert kit("new", "tmpl_check", "--lang", "rust", "--dir", ws).returncode == 0
    proc = subprocess.run(["cargo", "test", "--quiet", "-p", "reward-tmpl-check"], cwd=ws, capture_output=True, text=True, timeout=1200,
                          env=dict(os.environ, CARGO_TARGET_DIR=str(REPO_ROOT / "target" / "guests-native"), CARGO_BUILD_JOBS="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_running_server_picks_up_a_new_python_plugin_on_reload(server_bin, plugins, tmp_path):
    """A server runs `finqa`; a researcher writes and builds a new reward, adds it to the config and
    asks for a reload: the new reward answers, the old one keeps answering, and no restart happened."""
    config = write_config(tmp_path / "rewards.toml", {"finqa": {"plugin": plugins["finqa"], "limits": LIMITS}})
    server = start_server(server_bin, config, "--watch-interval-ms", "0")
    try:
        pid = server.proc.pid
        assert [r["name"] for r in server.get("/v1/rewards")["rewards"]] == ["finqa"]
        missing = server.post("/v1/score", {"reward": "shout", "rollouts": [{"prompt": "p", "completion": "HI"}]})
        assert missing.get("http_status", 200) >= 400

        # Write, build (the kit's command), configure.
        source = tmp_path / "shout.py"
        source.write_text(
            "from reward_kit import reward\n\n"
            "@reward(name=\"shout\", metrics=[\"upper\"], config={\"bonus\": 0.0})\n"
            "def shout(completion, config):\n"
            "    upper = sum(c.isupper() for c in completion) / max(1, sum(c.isalpha() for c in completion))\n"
            "    return min(1.0, upper + config[\"bonus\"]), {\"upper\": upper}\n"
        )
        wasm = build_plugin(source)
        write_config(config, {
            "finqa": {"plugin": plugins["finqa"], "limits": LIMITS},
            "shout": {"plugin": wasm, "limits": LIMITS, "config": {"bonus": 0.25}},
        })
        reloaded = server.post("/v1/admin/reload")
        assert reloaded.get("reloaded") is True, reloaded
        assert sorted(reloaded["rewards"]) == ["finqa", "shout"]

        got = server.post("/v1/score", {"reward": "shout", "rollouts": [
            {"id": "a", "prompt": "p", "completion": "HELLO"},
            {"id": "b", "prompt": "p", "completion": "hello"},
            {"id": "c", "prompt": "p", "completion": "HEllo"},
        ]})["results"]
        assert [(r["id"], r["status"]) for r in got] == [("a", "OK"), ("b", "OK"), ("c", "OK")]
        assert [r["score"] for r in got] == pytest.approx([1.0, 0.25, 0.65])
        assert got[2]["metrics"]["upper"] == pytest.approx(0.4)
        old = server.post("/v1/rewards/finqa/lambda", [{"id": "f", "messages": [
            {"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>t</think><answer>12.5</answer>"}],
            "reference_answer": {"answer": "12.5"}}])
        assert old[0]["id"] == "f" and old[0]["aggregate_reward_score"] == pytest.approx(1.0)

        # A config the plugin refuses is refused as a whole; the running rewards stay.
        write_config(config, {"shout": {"plugin": wasm, "limits": LIMITS, "config": {"bonsu": 1}}})
        refused = server.post("/v1/admin/reload")
        assert refused.get("reloaded") is False and "bonsu" in refused["error"]
        assert sorted(r["name"] for r in server.get("/v1/rewards")["rewards"]) == ["finqa", "shout"]
        assert server.proc.pid == pid and server.proc.poll() is None
    finally:
        stop_server(server)
