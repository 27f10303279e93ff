"""The kit natively: helpers, the `@reward` contract (parameters, return shapes, config checks,
errors and tracebacks) and the example rewards as plain functions."""

from __future__ import annotations

import json
import math

import pytest

import conftest  # noqa: F401  (puts the kit on sys.path)
from reward_kit import (
    ConfigError,
    InvalidInput,
    Message,
    Rollout,
    Score,
    extract_answer,
    extract_boxed,
    extract_code,
    last_assistant_turn,
    parse_json,
    parse_number,
    parse_reference,
    reward,
    strip_reasoning,
)
from reward_kit import registry


@pytest.fixture(autouse=True)
def _isolated_registry():
    before = list(registry._REGISTERED)
    yield
    registry._REGISTERED[:] = before


# ---- helpers ---------------------------------------------------------------------------------


def test_last_assistant_turn_takes_the_last_answer_of_either_role():
    msgs = [Message("user", "q"), Message("assistant", "first"), Message("user", "again"), Message("nova_assistant", "second")]
    assert last_assistant_turn(msgs) == "second"
    assert last_assistant_turn([{"role": "assistant", "content": "d"}]) == "d"
    assert last_assistant_turn([Message("user", "q")]) == ""


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>maybe <answer>1</answer></think><answer>2</answer>", "2"),
        ("reasoning ... </think> <answer> 7 </answer>", "7"),
        ("so \\boxed{\\frac{3}{4}} done", "\\frac{3}{4}"),
        ("work\nFinal Answer: 42\n", "42"),
        ("**Answer:** 12.5%", "12.5%"),
        ("Thus the answer is 9.", "9"),
        ("steps\n#### 72", "72"),
        ("```json\n{\"a\": 1}\n```", "{\"a\": 1}"),
        ("no marker at all", None),
        ("<think>only thinking</think>", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_fallback_and_nested_boxed():
    assert extract_answer("<think>x</think> plain text ", fallback=True) == "plain text"
    assert extract_boxed("\\boxed{a{b}c} and \\boxed{d}") == "d"
    assert extract_boxed("\\boxed{x^{2}}") == "x^{2}"
    assert extract_boxed("\\boxed{unclosed") is None
    assert strip_reasoning("<think>a</think>b<reasoning>c</reasoning>d") == "bd"


def test_extract_code_by_language():
    text = "```python\nprint(1)\n```\n```sql\nSELECT 1\n```"
    assert extract_code(text) == "SELECT 1"
    assert extract_code(text, "PYTHON") == "print(1)"
    assert extract_code(text, "rust") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12.5", 12.5),
        ("$1,234.50", 1234.5),
        ("-3", -3.0),
        ("(3.2)", -3.2),
        ("−4", -4.0),
        ("12.5%", 12.5),
        ("2.5 million", 2.5e6),
        ("3bn", 3e9),
        ("1.5e3", 1500.0),
        ("\\frac{3}{4}", 0.75),
        ("-1/4", -0.25),
        ("\\boxed{7}", 7.0),
        ("The total is 42.", 42.0),
        (".5", 0.5),
        (7, 7.0),
        ("1 or 2", None),
        ("none", None),
        ("1/0", None),
        (True, None),
        (None, None),
    ],
)
def test_parse_number(text, expected):
    got = parse_number(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_parse_number_percent_as_fraction():
    assert parse_number("12.5%", percent="fraction") == pytest.approx(0.125)
    assert parse_number("12.5", percent="fraction") == pytest.approx(12.5)


def test_parse_json_finds_the_value():
    assert parse_json('{"a": 1}') == {"a": 1}
    assert parse_json('Here:\n```json\n[1, 2]\n```') == [1, 2]
    assert parse_json('call {"name": "f", "args": {"s": "}"}} now') == {"name": "f", "args": {"s": "}"}}
    with pytest.raises(ValueError, match="no JSON value"):
        parse_json("nothing here")
    with pytest.raises(ValueError, match="fenced block"):
        parse_json("```\n{bad\n```")


def test_parse_reference_shapes_and_errors():
    assert parse_reference({"answer": "5"}) == "5"
    assert parse_reference({"answer": None, "ground_truth": 3}) == 3
    assert parse_reference({"x": 1, "y": 2}, field="y") == 2
    assert parse_reference("7") == "7"
    assert parse_reference('[{"name": "f"}]', as_json=True) == [{"name": "f"}]
    with pytest.raises(InvalidInput, match="no reference"):
        parse_reference(None)
    with pytest.raises(InvalidInput, match="none of the fields"):
        parse_reference({"other": 1})
    with pytest.raises(InvalidInput, match="no field `z`"):
        parse_reference({"x": 1}, field="z")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_reference("{oops", as_json=True)


# ---- Rollout ---------------------------------------------------------------------------------


def test_rollout_from_both_jsonl_shapes():
    nova = Rollout.from_json({"id": "n", "messages": [{"role": "user", "content": "q"},
                                                       {"role": "nova_assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
                              "reference_answer": {"answer": 1}, "extra": 5})
    assert (nova.id, nova.completion, nova.reference, nova.metadata, nova.prompt) == ("n", "ab", {"answer": 1}, {"extra": 5}, "q")
    old = Rollout.from_json({"messages": [{"role": "assistant", "content": "x"}], "metadata": {"reference_answer": 3}}, index=4)
    assert (old.id, old.reference) == ("line-5", 3)
    plain = Rollout.from_json({"prompt": "p", "completion": "c", "reference": "r"})
    assert (plain.completion, plain.reference, plain.prompt) == ("c", "r", "p")


def test_rollout_reference_text_is_parsed_lazily_and_bad_json_is_invalid_input():
    r = Rollout(id="x", completion="c", reference_text='{"answer": 2}', metadata_text="")
    assert r.reference == {"answer": 2} and r.metadata == {}
    bad = Rollout(reference_text="{nope", metadata_text="{}")
    with pytest.raises(InvalidInput, match="reference is not valid JSON"):
        bad.reference
    assert Rollout(reference_text="null", metadata_text="null").reference is None


# ---- @reward ---------------------------------------------------------------------------------


def test_parameters_are_passed_by_name():
    seen = {}

    @reward(name="probe", metrics=["n"])
    def probe(config, id, prompt, messages, metadata, reference, completion, rollout):
        seen.update(config=config, id=id, prompt=prompt, n=len(messages), metadata=metadata, reference=reference, completion=completion, rollout=rollout)
        return 0.5

    r = Rollout("r1", [Message("user", "q"), Message("assistant", "a")], "a", {"answer": 1}, {"k": 2})
    assert probe.score(r).value == 0.5
    assert seen["id"] == "r1" and seen["prompt"] == "q" and seen["n"] == 2 and seen["metadata"] == {"k": 2}
    assert seen["reference"] == {"answer": 1} and seen["completion"] == "a" and seen["rollout"] is r and seen["config"] == {}


def test_unknown_parameter_is_refused_at_definition():
    with pytest.raises(TypeError, match="unknown parameter.*answer"):
        @reward(name="bad")
        def bad(answer):
            return 1


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="snake_case"):
        reward(name="Bad-Name")
    with pytest.raises(ValueError, match="metric names"):
        reward(name="ok", metrics=["Not OK"])


@pytest.mark.parametrize(
    "ret, value, rewards",
    [
        (1, 1.0, {}),
        (True, 1.0, {}),
        (0.25, 0.25, {}),
        ((0.5, {"a": 1}), 0.5, {"a": 1}),
        ((0.5, {"a": 1}, "why"), 0.5, {"a": 1}),
        (Score(0.7, rewards={"a": 0.7}), 0.7, {"a": 0.7}),
    ],
)
def test_return_shapes(ret, value, rewards):
    @reward(name="shapes", metrics=["a"])
    def shapes():
        return ret

    kind, score = shapes.run(Rollout(), "{}")
    assert kind == "ok" and score.value == value and score.rewards == rewards


@pytest.mark.parametrize(
    "ret, message",
    [
        (float("nan"), "must be finite"),
        (math.inf, "must be finite"),
        ("1.0", "returns a number"),
        (None, "returns a number"),
        ((1.0, [1]), "dict of rewards"),
        (Score(1.0, metrics={"a": "x"}), "metric `a` must be a number"),
        (Score(1.0, metrics={"undeclared": 1}), "metric `undeclared` is not declared"),
    ],
)
def test_bad_returns_fail_with_a_message(ret, message):
    @reward(name="bad_returns", metrics=["a"])
    def bad_returns():
        return ret

    kind, text = bad_returns.run(Rollout(), "{}")
    assert kind == "failed" and message in text


def test_errors_become_failed_with_a_traceback_or_invalid():
    @reward(name="errs")
    def errs(completion):
        if completion == "invalid":
            raise InvalidInput("bad rollout")
        if completion == "chain":
            try:
                {}["k"]
            except KeyError as e:
                raise RuntimeError("wrapped") from e
        return helper(completion)

    def helper(c):
        return int(c)

    assert errs.run(Rollout(completion="3"), "") == ("ok", Score(3))
    assert errs.run(Rollout(completion="invalid"), "") == ("invalid", "bad rollout")
    kind, tb = errs.run(Rollout(completion="x"), "")
    assert kind == "failed"
    assert tb.startswith("Traceback (most recent call last):\n")
    assert "in helper\n    return int(c)" in tb
    assert tb.endswith("ValueError: invalid literal for int() with base 10: 'x'")
    assert "registry.py" not in tb  # the kit's own frames are left out
    kind, tb = errs.run(Rollout(completion="chain"), "")
    assert "KeyError: 'k'" in tb and "direct cause" in tb and tb.endswith("RuntimeError: wrapped")


def test_config_defaults_types_unknown_keys_and_validate():
    def check(c):
        if c["tol"] < 0:
            raise ValueError(f"tol must be >= 0, got {c['tol']}")

    @reward(name="cfg", config={"tol": 0.1, "mode": "exact", "strict": False, "tags": [], "any": None}, validate=check)
    def cfg(config):
        return config["tol"]

    assert cfg.parse_config("") == {"tol": 0.1, "mode": "exact", "strict": False, "tags": [], "any": None}
    assert cfg.parse_config('{"tol": 1, "any": {"x": 1}}')["tol"] == 1
    assert cfg.score(Rollout(), '{"tol": 0.5}').value == 0.5
    for text, message in [
        ('{"tl": 1}', "unknown field `tl` (known: any, mode, strict, tags, tol)"),
        ('{"tol": "1"}', "`tol` must be a number"),
        ('{"tol": true}', "`tol` must be a number"),
        ('{"strict": 1}', "`strict` must be a boolean"),
        ('{"tags": "a"}', "`tags` must be a list"),
        ('{"tol": -1}', "tol must be >= 0, got -1"),
        ("[1]", "config must be a JSON object"),
        ("{oops", "config is not valid JSON"),
    ]:
        with pytest.raises(ConfigError, match=None) as e:
            cfg.parse_config(text)
        assert message in str(e.value), (text, str(e.value))
    # A refused config fails every rollout (the host checks configs at load, so this is a backstop).
    assert cfg.run(Rollout(), '{"tl": 1}')[0] == "failed"


def test_config_without_declared_keys_accepts_any_object():
    @reward(name="free")
    def free(config):
        return len(config)

    assert free.score(Rollout(), '{"a": 1, "b": 2}').value == 2


# ---- examples, natively ----------------------------------------------------------------------


def _load(name):
    from conftest import EXAMPLES
    from reward_kit import cli

    return cli.load_reward(EXAMPLES / name / f"{name}.py")


def test_finqa_natively():
    finqa = _load("finqa")
    score = lambda c, r, cfg=None: finqa.score(Rollout(completion=c, reference=r), json.dumps(cfg or {}))  # noqa: E731
    ok = "<think>t</think><answer>{}</answer>"
    assert score(ok.format("12.5%"), "12.5").value == pytest.approx(1.0)
    assert score(ok.format("0.125"), "12.5%").value == pytest.approx(0.55)
    assert score(ok.format("12.35"), 12.3456).value == pytest.approx(1.0)
    assert score(ok.format("12"), 12.3456).value == pytest.approx(0.1)  # 2 significant figures: not paid
    assert score(ok.format("0"), 0).value == pytest.approx(1.0)
    assert score(ok.format("No."), {"answer": "no"}).value == pytest.approx(1.0)
    assert score(ok.format("yes"), {"answer": "no"}).value == pytest.approx(0.1)
    assert score("<answer>5</answer>", 5, {"require_think": False}).rewards["format_ok"] == 1.0
    with pytest.raises(InvalidInput, match="neither a number nor yes/no"):
        score(ok.format("1"), "blue")
    with pytest.raises(ConfigError, match="format_weight must be in"):
        finqa.parse_config('{"format_weight": 2}')


def test_tool_call_natively():
    tc = _load("tool_call")
    call = lambda name, **args: {"name": name, "arguments": args}  # noqa: E731
    ref = [call("a", x=1), call("b", y="hello world")]
    s = tc.score(Rollout(completion=json.dumps(ref), reference=ref), "{}")
    assert s.value == pytest.approx(1.0)
    # One extra call: name F1 = 0.8, parameters 2/3, order 2/3.
    s = tc.score(Rollout(completion=json.dumps(ref + [call("c")]), reference=ref), "{}")
    assert s.rewards["name_f1"] == pytest.approx(0.8)
    assert s.rewards["param_similarity"] == pytest.approx(2 / 3)
    assert s.rewards["call_order"] == pytest.approx(2 / 3)
    # Arguments as a JSON string (OpenAI), string values by token F1.
    pred = {"tool_calls": [{"function": {"name": "b", "arguments": json.dumps({"y": "hello"})}}]}
    s = tc.score(Rollout(completion=json.dumps(pred), reference=[call("b", y="hello world")]), "{}")
    assert s.rewards["param_similarity"] == pytest.approx(2 * 1 * 0.5 / 1.5)
    # A schema from the config: an unknown tool fails the schema check.
    cfg = json.dumps({"tools": [{"name": "a", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}]})
    s = tc.score(Rollout(completion=json.dumps([call("a", x=1.0), call("zz")]), reference=[call("a", x=1)]), cfg)
    assert s.rewards["schema_valid"] == pytest.approx(0.5)
    s = tc.score(Rollout(completion=json.dumps([call("a", x="1")]), reference=[call("a", x=1)]), cfg)
    assert s.rewards["schema_valid"] == 0.0
    with pytest.raises(ConfigError, match="weights: unknown check"):
        tc.parse_config('{"weights": {"speed": 1}}')
    with pytest.raises(ConfigError, match="at least one weight"):
        tc.parse_config('{"weights": {"name_f1": 0}}')
