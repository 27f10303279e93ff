"""The example Python plugins, built from source and scored by the real `reward-server score` on
JSONL files (Nova and plain shapes): scores, metrics and statuses, the sandbox's answers to a
plugin that raises and one that never returns, and the same numbers as the function run natively."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import EXAMPLES, KIT_ROOT, score_file, write_config
from reward_kit import cli

PYTHON_LIMITS = {"instance_reuse": 1000, "memory_mib": 128, "fuel": 1_000_000_000, "timeout_ms": 5000}


def run_sandboxed(server_bin, plugins, tmp_path, name, config=None, limits=None, input_path=None, extra=()):
    reward = {"plugin": plugins[name], "limits": limits or PYTHON_LIMITS}
    if config is not None:
        reward["config"] = config
    cfg = write_config(tmp_path / "rewards.toml", {name: reward})
    rows = score_file(server_bin, cfg, name, input_path or EXAMPLES / name / "rollouts.jsonl", tmp_path / "out.jsonl", *extra)
    return {r["id"]: r for r in rows}, rows


def run_native(name, config=None):
    import io

    out = io.StringIO()
    cli.run_file(EXAMPLES / name / f"{name}.py", EXAMPLES / name / "rollouts.jsonl", json.dumps(config or {}), out)
    return {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}


def assert_same_as_native(sandboxed, native):
    assert list(sandboxed) == list(native)
    for rid, n in native.items():
        s = sandboxed[rid]
        assert s["status"] == n["status"], rid
        assert s["score"] == pytest.approx(n["score"]), rid
        assert s.get("metrics", {}) == pytest.approx(n["metrics"]), rid


def test_finqa_scores_metrics_and_statuses(server_bin, plugins, tmp_path):
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "finqa")
    assert len(rows) == 8
    assert by_id["fq-exact"]["status"] == "OK" and by_id["fq-exact"]["score"] == pytest.approx(1.0)
    assert by_id["fq-exact"]["metrics"] == {"format_ok": 1.0, "correct": 1.0, "answer_found": 1.0, "rel_error": 0.0}
    # 0.125 against 12.5: percent/decimal confusion, half credit: 0.1 + 0.9 * 0.5.
    assert by_id["fq-decimal"]["score"] == pytest.approx(0.55)
    assert by_id["fq-rounded"]["score"] == pytest.approx(1.0)
    assert by_id["fq-wrong"]["score"] == pytest.approx(0.1)
    assert by_id["fq-noformat"]["metrics"]["format_ok"] == 0.0 and by_id["fq-noformat"]["score"] == pytest.approx(0.9)
    assert by_id["fq-units"]["score"] == pytest.approx(1.0)
    assert by_id["fq-yesno"]["score"] == pytest.approx(1.0)
    assert by_id["fq-noref"]["status"] == "INVALID_INPUT"
    assert "no reference answer" in by_id["fq-noref"]["error"]
    assert all(r["provenance"]["reward"] == "finqa" for r in rows)
    assert_same_as_native(by_id, run_native("finqa"))


def test_finqa_config_changes_the_score(server_bin, plugins, tmp_path):
    by_id, _ = run_sandboxed(server_bin, plugins, tmp_path, "finqa", config={"format_weight": 0.0, "percent_credit": 0.0})
    assert by_id["fq-decimal"]["score"] == pytest.approx(0.0)
    assert by_id["fq-noformat"]["score"] == pytest.approx(1.0)
    assert_same_as_native(by_id, run_native("finqa", {"format_weight": 0.0, "percent_credit": 0.0}))


def test_bad_config_is_refused_at_load(server_bin, plugins, tmp_path):
    import subprocess

    cfg = write_config(tmp_path / "rewards.toml", {"finqa": {"plugin": plugins["finqa"], "limits": PYTHON_LIMITS, "config": {"rel_tl": 0.1}}})
    proc = subprocess.run(
        [str(server_bin), "score", "--config", str(cfg), "--reward", "finqa", "--input", str(EXAMPLES / "finqa" / "rollouts.jsonl"), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 64, proc.stderr
    assert "unknown field `rel_tl`" in proc.stderr


def test_tool_call_scores_metrics_and_statuses(server_bin, plugins, tmp_path):
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "tool_call")
    assert len(rows) == 7
    exact = by_id["tc-exact"]
    assert exact["status"] == "OK" and exact["score"] == pytest.approx(1.0)
    assert {k: exact["metrics"][k] for k in ("schema_valid", "name_f1", "param_similarity", "call_order")} == {
        "schema_valid": 1.0, "name_f1": 1.0, "param_similarity": 1.0, "call_order": 1.0}
    # `unit: kelvin` breaks the enum: schema 0, one of two parameters right.
    bad = by_id["tc-badenum"]["metrics"]
    assert bad["schema_valid"] == 0.0 and bad["param_similarity"] == pytest.approx(0.5)
    assert by_id["tc-badenum"]["score"] == pytest.approx(0.3 * 1 + 0.3 * 0.5 + 0.2 * 1)
    assert by_id["tc-order"]["metrics"]["call_order"] == pytest.approx(0.5)
    assert by_id["tc-order"]["score"] == pytest.approx(0.9)
    assert by_id["tc-partial"]["metrics"]["param_similarity"] == pytest.approx(0.7)
    assert by_id["tc-garbage"]["score"] == 0.0 and by_id["tc-garbage"]["metrics"]["parse_ok"] == 0.0
    assert by_id["tc-none"]["score"] == pytest.approx(1.0)
    assert by_id["tc-noref"]["status"] == "INVALID_INPUT"
    assert_same_as_native(by_id, run_native("tool_call"))


def test_tool_call_weights_from_config(server_bin, plugins, tmp_path):
    weights = {"schema_valid": 0, "name_f1": 0, "param_similarity": 0, "call_order": 1}
    by_id, _ = run_sandboxed(server_bin, plugins, tmp_path, "tool_call", config={"weights": weights})
    assert by_id["tc-order"]["score"] == pytest.approx(0.5)
    assert by_id["tc-badenum"]["score"] == pytest.approx(1.0)


def test_raising_plugin_is_plugin_error_with_the_traceback(server_bin, plugins, tmp_path):
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "raises")
    assert [r["status"] for r in rows] == ["OK", "PLUGIN_ERROR", "OK", "INVALID_INPUT"]
    err = by_id["boom"]["error"]
    assert err.startswith('plugin "raises" version 0.1.0: Traceback (most recent call last):'), err
    # The researcher's frames, with their source lines, and the exception; not the kit's frames.
    assert 'File "raises.py", line' in err and "in words_per_sentence" in err
    assert "return len(text.split()) / sentences" in err
    assert err.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "reward_kit" not in err
    assert by_id["boom"]["score"] == 0.0  # on_error = zero (the default)
    # The rollout after the failure scores normally on the same instance.
    assert by_id["ok-2"]["score"] == pytest.approx(0.1) and by_id["ok-2"]["metrics"] == {"words": 2.0}
    assert by_id["bad-ref"]["error"].endswith("reference marked bad")


def test_looping_plugin_times_out_on_fuel_and_the_next_rollout_scores(server_bin, plugins, tmp_path):
    limits = dict(PYTHON_LIMITS, fuel=50_000_000)
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "loops", limits=limits)
    assert [r["status"] for r in rows] == ["OK", "TIMEOUT", "OK"]
    assert by_id["spin"]["instructions"] == 50_000_000
    assert "ran out of fuel" in by_id["spin"]["error"]
    assert by_id["fine-2"]["score"] == 1.0
    # Deterministic: the same rollout times out at the same instruction on a rerun.
    again, _ = run_sandboxed(server_bin, plugins, tmp_path, "loops", limits=limits)
    assert again["spin"]["instructions"] == by_id["spin"]["instructions"]


def test_looping_plugin_hits_the_wall_clock_deadline(server_bin, plugins, tmp_path):
    limits = dict(PYTHON_LIMITS, fuel=10**15, timeout_ms=300)
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "loops", limits=limits)
    assert [r["status"] for r in rows] == ["OK", "TIMEOUT", "OK"]
    assert "wall-clock deadline of 300 ms" in by_id["spin"]["error"]


def test_memory_cap_obeyed(server_bin, plugins, tmp_path):
    # The interpreter's snapshot and the finqa reward fit in 16 MiB of linear memory.
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "finqa", limits=dict(PYTHON_LIMITS, memory_mib=16))
    assert [r["status"] for r in rows].count("OK") == 7


def test_memory_cap_violated_is_out_of_memory(server_bin, plugins, tmp_path):
    # 8 MiB cannot hold the interpreter: every rollout is OUT_OF_MEMORY, not a crash.
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "finqa", limits=dict(PYTHON_LIMITS, memory_mib=8))
    assert {r["status"] for r in rows} == {"OUT_OF_MEMORY"}, rows[0]
    assert "memory" in rows[0]["error"]


def test_many_rollouts_reuse_one_instance_and_match_native(server_bin, plugins, tmp_path):
    """A larger file in both shapes, one worker thread, several batches on reused instances."""
    src = [json.loads(l) for l in (EXAMPLES / "finqa" / "rollouts.jsonl").read_text().splitlines()]
    big = tmp_path / "big.jsonl"
    with big.open("w") as f:
        for i in range(400):
            rec = dict(src[i % len(src)])
            rec["id"] = f"{rec['id']}-{i}"
            f.write(json.dumps(rec) + "\n")
    by_id, rows = run_sandboxed(server_bin, plugins, tmp_path, "finqa", input_path=big, extra=("--threads", "1", "--batch-size", "16"))
    assert len(rows) == 400
    native = run_native("finqa")
    for r in rows:
        base = r["id"].rsplit("-", 1)[0]
        assert r["status"] == native[base]["status"] and r["score"] == pytest.approx(native[base]["score"]), r["id"]
