"""The `best_of_group` example built to a component by the kit and scored by the real server as a
`groups = true` reward: interleaved groups in one request are gathered and scored group by group,
a raising group fails whole and spares the others, and the offline scorer agrees with `run`."""

from __future__ import annotations

import io
import json

import pytest

from conftest import EXAMPLES, build_plugin, score_file, start_server, stop_server, write_config
from reward_kit import cli

LIMITS = {"instance_reuse": 1000, "memory_mib": 128, "fuel": 1_000_000_000, "timeout_ms": 5000}
SOURCE = EXAMPLES / "best_of_group" / "best_of_group.py"
ROLLOUTS = EXAMPLES / "best_of_group" / "rollouts.jsonl"


@pytest.fixture(scope="module")
def wasm():
    return build_plugin(SOURCE)


@pytest.fixture(scope="module")
def records():
    return {r["id"]: r for r in map(json.loads, ROLLOUTS.read_text().splitlines())}


def native(config="{}"):
    """`python -m reward_kit run` on the example file (its groups are consecutive lines)."""
    out = io.StringIO()
    cli.run_file(SOURCE, ROLLOUTS, config, out)
    return {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}


@pytest.fixture
def server(server_bin, wasm, tmp_path):
    config = write_config(tmp_path / "rewards.toml", {
        "best_of_group": {"plugin": wasm, "groups": True, "limits": LIMITS},
        "best_of_group_partial": {"plugin": wasm, "groups": True, "limits": LIMITS, "config": {"partial": 0.5}},
    })
    s = start_server(server_bin, config)
    yield s
    stop_server(s)


def assert_matches_native(results, expected):
    for r in results:
        n = expected[r["id"]]
        assert r["status"] == n["status"], r
        assert r["score"] == pytest.approx(n["score"]), r
        assert r["metrics"] == pytest.approx(n["metrics"]), r


def test_interleaved_groups_are_scored_group_by_group(server, records):
    # q1 (plain shape, grouped by prompt) and q2 (Nova shape, with a system turn) alternate.
    order = ["q1-long", "q2-a", "q1-short", "q2-b", "q1-wrong", "q2-c", "q1-none", "q2-d"]
    got = server.post("/v1/score", {"reward": "best_of_group", "rollouts": [records[i] for i in order]})["results"]
    assert [r["id"] for r in got] == order
    assert {r["id"] for r in got if r["score"] == 1.0} == {"q1-short", "q2-b", "q2-d"}
    assert all(r["status"] == "OK" for r in got)
    assert {r["id"]: r["metrics"]["correct"] for r in got} == {
        "q1-long": 1.0, "q2-a": 1.0, "q1-short": 1.0, "q2-b": 1.0, "q1-wrong": 0.0, "q2-c": 0.0, "q1-none": 0.0, "q2-d": 1.0,
    }
    assert_matches_native(got, native())

    # Scored alone, q2-a is its group's shortest correct answer: the score depends on the group.
    alone = server.post("/v1/score", {"reward": "best_of_group", "rollouts": [records["q2-a"]]})["results"]
    assert alone[0]["score"] == 1.0

    partial = server.post("/v1/score", {"reward": "best_of_group_partial", "rollouts": [records[i] for i in order]})["results"]
    assert {r["id"]: r["score"] for r in partial}["q1-long"] == 0.5
    assert_matches_native(partial, native('{"partial": 0.5}'))


def test_a_raising_group_fails_whole_and_spares_the_others(server, records):
    order = ["mixed-1", "q1-long", "noref-1", "q1-short", "mixed-2", "noref-2"]
    got = {r["id"]: r for r in server.post("/v1/score", {"reward": "best_of_group", "rollouts": [records[i] for i in order]})["results"]}
    for rid in ("mixed-1", "mixed-2"):
        assert got[rid]["status"] == "PLUGIN_ERROR"
        assert "Traceback (most recent call last)" in got[rid]["error"]
        assert "ValueError: the group's references disagree" in got[rid]["error"]
    for rid in ("noref-1", "noref-2"):
        assert got[rid]["status"] == "INVALID_INPUT" and "no reference answer" in got[rid]["error"]
    # The q1 group here is two rollouts: the shorter correct one wins, the other scores 0.
    assert (got["q1-short"]["status"], got["q1-short"]["score"]) == ("OK", 1.0)
    assert (got["q1-long"]["status"], got["q1-long"]["score"]) == ("OK", 0.0)


def test_offline_score_agrees_with_run(server_bin, wasm, tmp_path):
    config = write_config(tmp_path / "rewards.toml", {"best_of_group": {"plugin": wasm, "groups": True, "limits": LIMITS}})
    rows = score_file(server_bin, config, "best_of_group", ROLLOUTS, tmp_path / "out.jsonl")
    expected = native()
    assert [r["id"] for r in rows] == list(expected)
    assert_matches_native(rows, expected)
