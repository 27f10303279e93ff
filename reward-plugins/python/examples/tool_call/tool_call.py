"""JSON tool-call grader.

The completion makes zero or more tool calls, written as JSON: one call `{"name", "arguments"}`, a
list of calls, `{"tool_calls": [...]}` (OpenAI style, with `function.name` and `arguments` as an
object or a JSON string), or Hermes-style `<tool_call>{...}</tool_call>` blocks; a code fence
around the JSON is fine, reasoning in `<think>` is skipped. The reference is the expected calls in
any of the same shapes (an object with `tool_calls` or `answer` holding them, or a JSON string).
The tools' JSON schemas come from the rollout's metadata (`tools`, OpenAI function format) or from
the config (`tools`).

Checks, each in [0, 1]:

- `schema_valid`: the share of predicted calls that name a known tool and whose arguments satisfy
  its parameter schema (required keys, no unknown keys unless allowed, JSON types, enums);
  without schemas, a call only has to be `{"name": str, "arguments": object}`,
- `name_f1`: F1 of the predicted tool names against the expected ones (as multisets),
- `param_similarity`: for expected calls matched to predicted ones (same name, in order), the mean
  similarity of their arguments (per key: equal values 1, numbers within `num_tol` relative 1,
  strings by token F1, lists and objects recursively; a missing or extra key 0); unmatched
  expected or predicted calls count 0,
- `call_order`: the longest common subsequence of the two name sequences over the longer one.

The score is the weighted mean `weights` of the four, 0 when the completion has no parsable JSON
(`parse_ok` 0). No calls expected and none made scores 1.
"""

import json
import re

from reward_kit import InvalidInput, Score, parse_json, reward, strip_reasoning

_TOOL_CALL_TAG_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_TOKEN_RE = re.compile(r"\w+")
_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
CHECKS = ("schema_valid", "name_f1", "param_similarity", "call_order")


def _check(config):
    weights = config["weights"]
    unknown = sorted(set(weights) - set(CHECKS))
    if unknown:
        raise ValueError(f"weights: unknown check(s) {unknown} (known: {', '.join(CHECKS)})")
    for k, w in weights.items():
        if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
            raise ValueError(f"weights.{k} must be a number >= 0, got {w!r}")
    if sum(weights.values()) <= 0:
        raise ValueError("weights: at least one weight must be positive")
    if config["num_tol"] < 0:
        raise ValueError(f"num_tol must be >= 0, got {config['num_tol']}")
    try:
        _tool_schemas(config["tools"], "config.tools")
    except InvalidInput as e:
        raise ValueError(str(e)) from None


@reward(
    name="tool_call",
    version="0.1.0",
    description="JSON tool calls: schema check, tool-name F1, parameter similarity, call order, weighted",
    metrics=["parse_ok", *CHECKS, "predicted_calls", "expected_calls"],
    config={
        "weights": {"schema_valid": 0.2, "name_f1": 0.3, "param_similarity": 0.3, "call_order": 0.2},
        "num_tol": 1e-6,
        "case_sensitive": False,
        "tools": [],
    },
    validate=_check,
)
def tool_call(completion, reference, metadata, config):
    expected = _expected_calls(reference)
    schemas = _tool_schemas(metadata.get("tools") or config["tools"], "metadata.tools") if isinstance(metadata, dict) else {}
    try:
        predicted = _calls_from_text(completion)
    except ValueError as e:
        return Score(
            0.0,
            rewards={"parse_ok": 0.0},
            metrics={"predicted_calls": 0.0, "expected_calls": float(len(expected))},
            reason=f"no tool calls could be read: {e}",
        )

    weights = config["weights"]
    checks = {
        "schema_valid": _schema_score(predicted, schemas),
        "name_f1": _name_f1([c[0] for c in predicted], [c[0] for c in expected]),
        "param_similarity": _param_score(predicted, expected, config),
        "call_order": _order_score([c[0] for c in predicted], [c[0] for c in expected]),
    }
    total = sum(weights.values())
    value = sum(weights.get(k, 0.0) * v for k, v in checks.items()) / total
    rewards = {"parse_ok": 1.0}
    rewards.update(checks)
    return Score(
        value,
        rewards=rewards,
        metrics={"predicted_calls": float(len(predicted)), "expected_calls": float(len(expected))},
        reason="predicted " + (", ".join(c[0] for c in predicted) or "no calls") + "; expected " + (", ".join(c[0] for c in expected) or "no calls"),
    )


# ---- reading calls ------------------------------------------------------------------------------


def _calls_from_text(text):
    """[(name, arguments)] from a completion; ValueError when there is no JSON to read."""
    body = strip_reasoning(text)
    tagged = _TOOL_CALL_TAG_RE.findall(body)
    if tagged:
        calls = []
        for i, block in enumerate(tagged):
            try:
                calls.extend(_normalise(json.loads(block), f"<tool_call> {i + 1}"))
            except ValueError as e:
                raise ValueError(f"<tool_call> {i + 1}: {e}") from None
        return calls
    return _normalise(parse_json(body), "the answer")


def _expected_calls(reference):
    if reference is None:
        raise InvalidInput("the rollout has no reference tool calls")
    value = reference
    if isinstance(value, dict) and "name" not in value:
        for key in ("tool_calls", "answer", "ground_truth", "calls"):
            if key in value:
                value = value[key]
                break
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as e:
            raise InvalidInput(f"the reference tool calls are not valid JSON: {e}") from None
    try:
        return _normalise(value, "the reference")
    except ValueError as e:
        raise InvalidInput(str(e)) from None


def _normalise(value, where):
    """A call, a list of calls or {"tool_calls": [...]} as [(name, arguments)]."""
    if isinstance(value, dict) and "tool_calls" in value:
        value = value["tool_calls"]
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    calls = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{where}: call {i + 1} is not an object")
        fn = item.get("function") if isinstance(item.get("function"), dict) else item
        name = fn.get("name")
        args = fn.get("arguments", fn.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                args = {"__unparsable__": args}
        if not isinstance(name, str):
            name = ""
        calls.append((name, args))
    return calls


def _tool_schemas(tools, where):
    """{name: parameters schema} from OpenAI-style tool definitions (or bare {name, parameters})."""
    schemas = {}
    if not isinstance(tools, list):
        raise InvalidInput(f"{where} must be a list of tool definitions")
    for i, t in enumerate(tools):
        fn = t.get("function", t) if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidInput(f"{where}[{i}] has no name")
        schemas[fn["name"]] = fn.get("parameters") or {"type": "object"}
    return schemas


# ---- checks -------------------------------------------------------------------------------------


def _schema_score(predicted, schemas):
    if not predicted:
        return 1.0
    ok = 0
    for name, args in predicted:
        if not name or not isinstance(args, dict) or "__unparsable__" in args:
            continue
        if schemas:
            schema = schemas.get(name)
            if schema is None or not _valid(args, schema):
                continue
        ok += 1
    return ok / len(predicted)


def _valid(value, schema):
    """A small JSON-schema subset: type, properties, required, additionalProperties, enum, items."""
    if not isinstance(schema, dict):
        return True
    if "enum" in schema and value not in schema["enum"]:
        return False
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        if not any(_is_type(value, t) for t in allowed):
            return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                return False
        extra = schema.get("additionalProperties", True)
        for key, v in value.items():
            if key in props:
                if not _valid(v, props[key]):
                    return False
            elif extra is False:
                return False
            elif isinstance(extra, dict) and not _valid(v, extra):
                return False
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return all(_valid(v, schema["items"]) for v in value)
    return True


def _is_type(value, t):
    py = _JSON_TYPES.get(t)
    if py is None:
        return True
    if isinstance(value, bool) and t in ("integer", "number"):
        return False
    if t == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, py)


def _name_f1(predicted, expected):
    if not predicted and not expected:
        return 1.0
    if not predicted or not expected:
        return 0.0
    remaining = {}
    for n in expected:
        remaining[n] = remaining.get(n, 0) + 1
    common = 0
    for n in predicted:
        if remaining.get(n, 0) > 0:
            remaining[n] -= 1
            common += 1
    if common == 0:
        return 0.0
    p, r = common / len(predicted), common / len(expected)
    return 2 * p * r / (p + r)


def _param_score(predicted, expected, config):
    if not predicted and not expected:
        return 1.0
    used = [False] * len(predicted)
    total = 0.0
    for name, args in expected:
        for j, (pname, pargs) in enumerate(predicted):
            if not used[j] and pname == name:
                used[j] = True
                total += _similarity(pargs, args, config)
                break
    return total / max(len(predicted), len(expected))


def _similarity(got, want, config):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return 0.0
        keys = set(want) | set(got)
        if not keys:
            return 1.0
        return sum(_similarity(got[k], want[k], config) if k in got and k in want else 0.0 for k in keys) / len(keys)
    if isinstance(want, list):
        if not isinstance(got, list):
            return 0.0
        if not want and not got:
            return 1.0
        n = max(len(want), len(got))
        return sum(_similarity(g, w, config) for g, w in zip(got, want)) / n
    if isinstance(want, bool) or isinstance(got, bool):
        return 1.0 if got is want else 0.0
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        err = abs(got - want)
        return 1.0 if err <= config["num_tol"] * max(1.0, abs(want)) else 0.0
    if isinstance(want, str) and isinstance(got, str):
        return _token_f1(got, want, config["case_sensitive"])
    if isinstance(want, (int, float)) and isinstance(got, str) or isinstance(want, str) and isinstance(got, (int, float)):
        # "5" for 5: right value, loosely typed.
        return 1.0 if str(got).strip() == str(want).strip() else 0.0
    return 1.0 if got == want else 0.0


def _token_f1(got, want, case_sensitive):
    if not case_sensitive:
        got, want = got.lower(), want.lower()
    if got.strip() == want.strip():
        return 1.0
    g, w = _TOKEN_RE.findall(got), _TOKEN_RE.findall(want)
    if not g or not w:
        return 0.0
    counts = {}
    for t in w:
        counts[t] = counts.get(t, 0) + 1
    common = 0
    for t in g:
        if counts.get(t, 0) > 0:
            counts[t] -= 1
            common += 1
    if common == 0:
        return 0.0
    p, r = common / len(g), common / len(w)
    return 2 * p * r / (p + r)


def _order_score(predicted, expected):
    if not predicted and not expected:
        return 1.0
    if not predicted or not expected:
        return 0.0
    # Longest common subsequence, O(n*m) on a handful of calls.
    prev = [0] * (len(expected) + 1)
    for p in predicted:
        cur = [0]
        for j, e in enumerate(expected):
            cur.append(prev[j] + 1 if p == e else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1] / max(len(predicted), len(expected))
