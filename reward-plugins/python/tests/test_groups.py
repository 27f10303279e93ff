"""Group rewards natively: the `@group_reward` contract (list parameters, one result per rollout,
a group failing as a whole), the component's `score_batch` for a group reward (one call, no meter),
and `run` grouping a JSONL file by `group` or prompt the way the server does."""

from __future__ import annotations

import io
import json
import sys
import types

import pytest

import conftest  # noqa: F401  (puts the kit on sys.path)
from conftest import EXAMPLES
from reward_kit import ConfigError, GroupRewardFunction, InvalidInput, Message, Rollout, Score, group_reward, reward
from reward_kit import cli, registry


@pytest.fixture(autouse=True)
def _isolated_registry():
    before = list(registry._REGISTERED)
    yield
    registry._REGISTERED[:] = before


def rollouts(*completions, prompt="q", reference=None):
    return [Rollout(f"r{i}", [Message("user", prompt), Message("assistant", c)], c, reference, {"k": i}) for i, c in enumerate(completions)]


# ---- the contract ------------------------------------------------------------------------------


def test_the_function_gets_the_group_as_lists_in_order():
    seen = {}

    @group_reward(name="sees", metrics=["rank"], config={"scale": 1.0})
    def sees(ids, completions, conversations, prompts, references, metadatas, rollouts, config):
        seen.update(ids=ids, completions=completions, roles=[[m.role for m in c] for c in conversations], prompts=prompts,
                    references=references, metadatas=metadatas, rollouts=rollouts, config=config)
        ranked = sorted(range(len(completions)), key=lambda i: len(completions[i]))
        return [(config["scale"] * ranked.index(i), {"rank": ranked.index(i)}) for i in range(len(completions))]

    group = rollouts("ccc", "a", "bb", prompt="2+2?", reference={"answer": 4})
    scores = sees.score_group(group, {"scale": 2.0})
    assert seen["ids"] == ["r0", "r1", "r2"]
    assert seen["completions"] == ["ccc", "a", "bb"]
    assert seen["roles"] == [["user", "assistant"]] * 3
    assert seen["prompts"] == ["2+2?"] * 3
    assert seen["references"] == [{"answer": 4}] * 3
    assert seen["metadatas"] == [{"k": 0}, {"k": 1}, {"k": 2}]
    assert seen["rollouts"] == group and seen["config"] == {"scale": 2.0}
    assert [s.value for s in scores] == [4.0, 0.0, 2.0]
    assert [s.rewards for s in scores] == [{"rank": 2}, {"rank": 0}, {"rank": 1}]
    assert isinstance(sees, GroupRewardFunction) and repr(sees) == "<group reward sees 0.1.0>"


def test_results_take_every_shape_a_reward_returns():
    @group_reward(name="shapes", metrics=["m", "d"])
    def shapes(completions):
        return [1, 0.5, (0.25, {"m": 1}), Score(0.75, metrics={"d": 2.0}, reason="why")]

    got = shapes.run_group(rollouts("a", "b", "c", "d"), "{}")
    assert [k for k, _ in got] == ["ok"] * 4
    assert [p.value for _, p in got] == [1, 0.5, 0.25, 0.75]
    assert got[2][1].rewards == {"m": 1} and got[3][1].metrics == {"d": 2.0} and got[3][1].reason == "why"
    # The plugin's path keeps a bare number bare, as `@reward`'s does.
    assert shapes.run_group_parsed(rollouts("a", "b", "c", "d"), {})[0] == ("ok", 1)


def test_invalid_input_fails_every_rollout_of_the_group():
    @group_reward(name="picky")
    def picky(references):
        if None in references:
            raise InvalidInput("a rollout of the group has no reference")
        return [1.0] * len(references)

    assert picky.run_group(rollouts("a", "b", "c"), "{}") == [("invalid", "a rollout of the group has no reference")] * 3
    assert [k for k, _ in picky.run_group(rollouts("a", "b", reference=1), "{}")] == ["ok", "ok"]
    with pytest.raises(InvalidInput):
        picky.score_group(rollouts("a"))


def test_an_exception_fails_every_rollout_with_its_traceback():
    @group_reward(name="buggy")
    def buggy(completions):
        lengths = [len(c) for c in completions]
        return [1.0 / (n - 1) for n in lengths]

    got = buggy.run_group(rollouts("abc", "a"), "{}")
    assert [k for k, _ in got] == ["failed", "failed"] and got[0] == got[1]
    text = got[0][1]
    assert text.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError" in text and "return [1.0 / (n - 1) for n in lengths]" in text
    assert "registry.py" not in text  # the kit's frames are left out, as for @reward
    assert [round(p.value, 3) for _, p in buggy.run_group(rollouts("abc", "ab"), "{}")] == [0.5, 1.0]


@pytest.mark.parametrize("extra", [-1, 1])
def test_a_wrong_number_of_results_fails_every_rollout_naming_both_counts(extra):
    @group_reward(name="miscount", version="2.0.0")
    def miscount(completions):
        return [1.0] * (len(completions) + extra)

    got = miscount.run_group(rollouts("a", "b", "c"), "{}")
    want = f'plugin "miscount" version 2.0.0: the group reward returned {3 + extra} results for a group of 3 rollouts'
    assert got == [("failed", want)] * 3
    with pytest.raises(ValueError, match=f"returned {3 + extra} results for a group of 3"):
        miscount.score_group(rollouts("a", "b", "c"))


def test_a_bad_result_fails_the_whole_group_naming_it():
    @group_reward(name="leaky", metrics=["ok_metric"])
    def leaky(completions):
        return [(1.0, {"ok_metric": 1}), (1.0, {"undeclared": 1}), float("nan")]

    got = leaky.run_group(rollouts("a", "b", "c"), "{}")
    assert len(got) == 3 and all(k == "failed" for k, _ in got)
    assert got[0][1].startswith("result 1 (rollout 'r1') of the group: ValueError: metric `undeclared` is not declared")
    assert "@group_reward(metrics=[...])" in got[0][1]

    @group_reward(name="not_a_list")
    def not_a_list(completions):
        return 1.0

    assert not_a_list.run_group(rollouts("a"), "{}")[0][0] == "failed"
    assert "returns a list with one result per rollout, got float" in not_a_list.run_group(rollouts("a"), "{}")[0][1]


def test_config_is_checked_as_for_a_reward():
    def positive(cfg):
        if cfg["k"] <= 0:
            raise ValueError("k: must be positive")

    @group_reward(name="configured", config={"k": 1}, validate=positive)
    def configured(completions, config):
        return [config["k"]] * len(completions)

    assert [p.value for _, p in configured.run_group(rollouts("a", "b"), '{"k": 3}')] == [3, 3]
    with pytest.raises(ConfigError, match="unknown field `j`"):
        configured.parse_config({"j": 1})
    assert configured.run_group(rollouts("a", "b"), '{"k": 0}') == [("failed", "config refused: k: must be positive")] * 2


def test_parameters_are_the_plural_ones_and_an_empty_group_calls_nothing():
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['completion'\]; a @group_reward function takes any of"):
        @group_reward(name="singular")
        def singular(completion):
            return []

    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['completions'\]; a @reward function"):
        @reward(name="plural")
        def plural(completions):
            return 0.0

    calls = []

    @group_reward(name="counted")
    def counted(completions):
        calls.append(completions)
        return [0.0] * len(completions)

    assert counted.run_group_parsed([], {}) == []
    assert calls == []
    assert counted.score(rollouts("x")[0]).value == 0.0 and calls == [["x"]]


# ---- the component's score_batch ---------------------------------------------------------------


@pytest.fixture
def guest(monkeypatch):
    """Imports `reward_kit._guest` over stand-ins for componentize-py's generated bindings:
    `guest(with_meter)` returns the module and the list of meter calls it made. Without the meter
    the bindings are those of the world without imports, as the kit builds a group reward."""
    calls = []

    def load(with_meter):
        ok = type("Ok", (), {"__init__": lambda self, v: setattr(self, "value", v)})
        err = type("Err", (Exception,), {"__init__": lambda self, v: setattr(self, "value", v)})

        class Record:
            def __init__(self, *args):
                self.args = args

        wit = types.SimpleNamespace(
            MetricKind=types.SimpleNamespace(REWARD="reward", METRIC="metric"),
            Score=Record, Metric=Record, PluginInfo=Record, Rollout=Record,
            RolloutError_InvalidInput=lambda m: ("invalid", m), RolloutError_Failed=lambda m: ("failed", m),
        )
        world = types.ModuleType("wit_world")
        world.exports = types.SimpleNamespace(Reward=object, reward=wit)
        modules = {
            "componentize_py_types": types.SimpleNamespace(Ok=ok, Err=err),
            "wit_world": world,
            "wit_world.exports": world.exports,
            "wit_world.exports.reward": wit,
        }
        if with_meter:
            meter = types.SimpleNamespace(begin=lambda i: calls.append(("begin", i)), end=lambda i: calls.append(("end", i)))
            modules["wit_world.imports"] = types.SimpleNamespace(meter=meter)
            modules["wit_world.imports.meter"] = meter
        else:
            monkeypatch.setitem(sys.modules, "wit_world.imports", None)  # an import of it fails
        for name, module in modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.delitem(sys.modules, "reward_kit._guest", raising=False)
        import reward_kit._guest as g

        return g, calls

    yield load
    sys.modules.pop("reward_kit._guest", None)


def host_rollout(rid, completion):
    return types.SimpleNamespace(id=rid, messages=[], completion=completion, reference="null", metadata="{}")


def test_score_batch_of_a_group_reward_is_one_call_without_meter(guest, monkeypatch):
    g, meter_calls = guest(with_meter=False)
    groups = []

    @group_reward(name="lengths", metrics=["n"])
    def lengths(completions):
        groups.append(list(completions))
        return [(float(len(c)), {"n": i}) for i, c in enumerate(completions)]

    monkeypatch.setattr(registry, "_REGISTERED", [lengths])
    g.bind(types.SimpleNamespace(__name__="lengths_mod"))
    out = g.Reward().score_batch("{}", [host_rollout("a", "xx"), host_rollout("b", "xyz")])
    assert groups == [["xx", "xyz"]] and meter_calls == []
    assert [o.value.args[0] for o in out] == [2.0, 3.0]
    assert [[m.args for m in o.value.args[1]] for o in out] == [[("n", 0.0, "reward")], [("n", 1.0, "reward")]]

    # A refused config fails every rollout, still without meter calls.
    out = g.Reward().score_batch("[1]", [host_rollout("a", "xx"), host_rollout("b", "y")])
    assert [o.value for o in out] == [("failed", "config refused: config must be a JSON object, got list")] * 2
    assert meter_calls == []


def test_a_group_reward_with_the_meter_fails_the_build(guest, monkeypatch):
    g, _calls = guest(with_meter=True)

    @group_reward(name="wrong_world")
    def wrong_world(completions):
        return [0.0] * len(completions)

    monkeypatch.setattr(registry, "_REGISTERED", [wrong_world])
    with pytest.raises(RuntimeError, match="a @group_reward must be built for the world without `meter`"):
        g.bind(types.SimpleNamespace(__name__="wrong_world_mod"))


def test_score_batch_of_a_reward_still_meters_each_rollout(guest, monkeypatch):
    g, meter_calls = guest(with_meter=True)

    @reward(name="one_each")
    def one_each(completion):
        return float(len(completion))

    monkeypatch.setattr(registry, "_REGISTERED", [one_each])
    g.bind(types.SimpleNamespace(__name__="one_each_mod"))
    out = g.Reward().score_batch("{}", [host_rollout("a", "xx"), host_rollout("b", "xyz")])
    assert [o.value.args[0] for o in out] == [2.0, 3.0]
    assert meter_calls == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


# ---- run: a JSONL file, group by group ---------------------------------------------------------


def run_lines(tmp_path, source, records, config="{}"):
    path = tmp_path / "in.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    out = io.StringIO()
    counts = cli.run_file(source, path, config, out)
    return [json.loads(line) for line in out.getvalue().splitlines()], counts


@pytest.fixture
def sizes_source(tmp_path):
    """A group reward that answers each rollout with its group's size and its place in it."""
    source = tmp_path / "sizes.py"
    source.write_text(
        "from reward_kit import Score, group_reward\n\n"
        "@group_reward(name='sizes', metrics=['place'])\n"
        "def sizes(ids):\n"
        "    return [Score(len(ids), metrics={'place': i}) for i in range(len(ids))]\n"
    )
    return source


def test_run_groups_consecutive_lines_by_group_else_by_prompt(tmp_path, sizes_source):
    rows, counts = run_lines(tmp_path, sizes_source, [
        {"id": "a1", "prompt": "p", "completion": "1"},
        {"id": "a2", "prompt": "p", "completion": "2"},
        # Named: a group of its own, even though its prompt is `p` and its name is a prompt's text.
        {"id": "n1", "group": "p", "prompt": "p", "completion": "3"},
        {"id": "n2", "group": "p", "prompt": "other", "completion": "4"},
        {"id": "m1", "messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "5"}]},
        "not json",
        {"id": "m2", "messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "6"}]},
        {"id": "num", "group": 7, "completion": "7"},
    ])
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == ["a1", "a2", "n1", "n2", "m1", "line-6", "m2", "num"]
    # m1 and m2 have a1's prompt (`user: p`, the plain shape's prompt turn), but that group ended
    # at n1: a group's lines must be consecutive, as offline in the server.
    assert (by_id["a1"]["score"], by_id["a2"]["score"]) == (2.0, 2.0)
    assert (by_id["a1"]["metrics"], by_id["a2"]["metrics"]) == ({"place": 0.0}, {"place": 1.0})
    assert (by_id["n1"]["score"], by_id["n2"]["score"]) == (2.0, 2.0)
    for rid in ("m1", "m2"):
        assert by_id[rid]["status"] == "INVALID_INPUT"
        assert "its group began on line 1 and ended before it" in by_id[rid]["error"]
    assert by_id["line-6"]["status"] == "INVALID_INPUT"
    assert by_id["num"]["score"] == 1.0 and by_id["num"]["status"] == "OK"
    assert counts == {"OK": 5, "INVALID_INPUT": 3}


def test_run_keys_the_prompt_on_every_message_before_the_answer(tmp_path, sizes_source):
    def nova(rid, system, answer):
        return {"id": rid, "messages": [{"role": "system", "content": system}, {"role": "user", "content": "q"},
                                        {"role": "assistant", "content": answer}]}

    rows, _ = run_lines(tmp_path, sizes_source, [nova("a", "brief", "1"), nova("b", "brief", "2"), nova("c", "think", "3")])
    assert [r["score"] for r in rows] == [2.0, 2.0, 1.0]


def test_run_refuses_a_group_over_512(tmp_path, sizes_source):
    rows, counts = run_lines(tmp_path, sizes_source, [{"id": str(i), "group": "big", "completion": "x"} for i in range(513)]
                             + [{"id": "small", "completion": "y"}])
    assert counts == {"INVALID_INPUT": 513, "OK": 1}
    assert "a group of 513 rollouts (from line 1) is over the 512" in rows[0]["error"]


def test_run_keeps_group_out_of_the_metadata(tmp_path):
    r = Rollout.from_json({"id": "x", "completion": "c", "group": "g", "k": 1})
    assert r.metadata == {"k": 1}


def test_best_of_group_example_natively():
    source = EXAMPLES / "best_of_group" / "best_of_group.py"
    out = io.StringIO()
    counts = cli.run_file(source, EXAMPLES / "best_of_group" / "rollouts.jsonl", "{}", out)
    by_id = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert counts == {"OK": 8, "PLUGIN_ERROR": 2, "INVALID_INPUT": 2}
    winners = {rid for rid, r in by_id.items() if r["status"] == "OK" and r["score"] == 1.0}
    # The shortest correct answer of each prompt's group; q2-b and q2-d tie.
    assert winners == {"q1-short", "q2-b", "q2-d"}
    assert by_id["q1-long"]["metrics"]["correct"] == 1.0 and by_id["q1-long"]["score"] == 0.0
    assert by_id["q1-wrong"]["metrics"]["correct"] == 0.0
    for rid in ("mixed-1", "mixed-2"):
        assert "ValueError: the group's references disagree" in by_id[rid]["error"]
    assert by_id["noref-1"]["error"] == by_id["noref-2"]["error"] == "the rollout has no reference answer"

    out = io.StringIO()
    cli.run_file(source, EXAMPLES / "best_of_group" / "rollouts.jsonl", '{"partial": 0.5}', out)
    partial = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert partial["q1-long"]["score"] == 0.5 and partial["q2-a"]["score"] == 0.5 and partial["q1-wrong"]["score"] == 0.0
    with pytest.raises(ConfigError, match="partial: must be between 0 and 1"):
        cli.load_reward(source).parse_config({"partial": 2})


def test_the_build_picks_the_world_by_the_reward_kind(tmp_path):
    assert cli.reward_kind(EXAMPLES / "best_of_group" / "best_of_group.py", []) == "group"
    assert cli.reward_kind(EXAMPLES / "finqa" / "finqa.py", []) == "reward"
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    assert cli.reward_kind(broken, []) == "reward"
