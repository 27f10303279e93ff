"""What every reward needs: the last assistant turn, the final answer, a number, a JSON value, the
reference. Pure functions of text; the same natively and in the sandbox."""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Optional, Sequence

from .types import InvalidInput

__all__ = [
    "last_assistant_turn",
    "strip_reasoning",
    "extract_tag",
    "extract_boxed",
    "extract_code",
    "extract_answer",
    "parse_number",
    "parse_json",
    "parse_reference",
    "REFERENCE_KEYS",
]

ASSISTANT_ROLES = ("assistant", "nova_assistant")
# Keys of a JSON-object reference that hold the answer, in the order they are tried.
REFERENCE_KEYS = ("answer", "ground_truth", "solution", "label", "reference", "expected_answer")

_THINK_CLOSE_RE = re.compile(r"</(?:think|thinking|reasoning)>", re.IGNORECASE)
_THINK_BLOCK_RE = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_ANSWER_LINE_RE = re.compile(
    r"^[ \t>*#_]*(?:final[ \t]+answer|answer)[ \t*_]*[:：][ \t*_]*(.+?)[ \t*_]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_IS_RE = re.compile(r"\bthe (?:final )?answer is[:\s]*\**([^\n]+?)\**\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_GSM8K_RE = re.compile(r"^####\s*(.+?)\s*$", re.MULTILINE)
_NUMBER_RE = re.compile(
    r"""(?P<neg>[-−–(])?\s*[$€£¥]?\s*
        (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)
        (?:[eE](?P<exp>[-+]?\d+))?
        \s*\)?\s*(?P<pct>%|percent\b|pct\b)?
        \s*(?P<scale>thousand|million|billion|trillion|k\b|mn\b|bn\b)?""",
    re.VERBOSE | re.IGNORECASE,
)
_FRAC_RE = re.compile(r"^(-)?\s*\\[dt]?frac\{\s*(-?\d+(?:\.\d+)?)\s*\}\{\s*(-?\d+(?:\.\d+)?)\s*\}$")
_SLASH_RE = re.compile(r"^(-)?\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)$")
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}


def last_assistant_turn(messages: Iterable[Any]) -> str:
    """The text of the last `assistant` (or `nova_assistant`) turn; "" when there is none.
    Messages are anything with `.role` and `.content` (or dicts with those keys)."""
    last = ""
    for m in messages:
        role = m["role"] if isinstance(m, dict) else m.role
        if role in ASSISTANT_ROLES:
            last = m["content"] if isinstance(m, dict) else m.content
    return last


def strip_reasoning(text: str) -> str:
    """The text with its reasoning removed: `<think>…</think>` blocks (also `thinking`,
    `reasoning`), and everything up to a closing tag whose opening tag the chat template put in the
    prompt."""
    text = _THINK_BLOCK_RE.sub("", text)
    closes = list(_THINK_CLOSE_RE.finditer(text))
    if closes:
        text = text[closes[-1].end():]
    return text


def extract_tag(text: str, tag: str) -> Optional[str]:
    """The stripped content of the last complete `<tag>…</tag>`, or None."""
    close = f"</{tag}>"
    end = text.rfind(close)
    if end < 0:
        return None
    start = text.rfind(f"<{tag}>", 0, end)
    if start < 0:
        return None
    return text[start + len(tag) + 2:end].strip()


def extract_boxed(text: str) -> Optional[str]:
    """The content of the last `\\boxed{…}` (or `\\fbox{…}`), braces balanced, or None."""
    best = -1
    for marker in ("\\boxed{", "\\fbox{"):
        best = max(best, text.rfind(marker))
    if best < 0:
        return None
    i = text.index("{", best) + 1
    depth = 1
    j = i
    while j < len(text):
        c = text[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i:j].strip()
        j += 1
    return None


def extract_code(text: str, lang: Optional[str] = None) -> Optional[str]:
    """The body of the last fenced code block (```lang … ```), of that language when `lang` is
    given (case-insensitive), or None."""
    found = None
    for m in _FENCE_RE.finditer(text):
        if lang is None or m.group(1).lower() == lang.lower():
            found = m.group(2)
    return None if found is None else found.strip()


def extract_answer(text: str, tag: str = "answer", fallback: bool = False) -> Optional[str]:
    """The final answer of a completion, looked for in this order, after the reasoning is removed
    (see `strip_reasoning`):

    1. the last `<answer>…</answer>` (`tag`),
    2. the last `\\boxed{…}`,
    3. the last `Answer: …` / `Final answer: …` line, then "the answer is …",
    4. GSM8K's `#### …` line,
    5. the last fenced code block.

    None when nothing matches, or the whole stripped text with `fallback=True`.
    """
    body = strip_reasoning(text)
    found = extract_tag(body, tag) if tag else None
    if found is None:
        found = extract_boxed(body)
    if found is None:
        lines = _ANSWER_LINE_RE.findall(body)
        if lines:
            found = lines[-1].strip()
    if found is None:
        lines = _ANSWER_IS_RE.findall(body)
        if lines:
            found = lines[-1].strip()
    if found is None:
        lines = _GSM8K_RE.findall(body)
        if lines:
            found = lines[-1].strip()
    if found is None:
        found = extract_code(body)
    if found is None and fallback:
        found = body.strip()
    return found


def parse_number(text: Any, percent: str = "keep") -> Optional[float]:
    """The one number a short answer states, or None when it states none or several.

    Understands signs (also `(123)` accounting negatives and the Unicode minus), currency symbols,
    thousands separators, exponents, `%`, scale words (`2.5 million`, `3bn`), `\\frac{a}{b}`,
    `a/b` and `\\boxed{…}`. `percent="keep"` reads `12.5%` as 12.5; `"fraction"` as 0.125.
    Numbers (int, float) pass through; bool does not.
    """
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str):
        return None
    s = text.strip()
    boxed = extract_boxed(s)
    if boxed is not None:
        s = boxed
    s = s.strip().rstrip(".").strip()
    s = s.replace("\\%", "%").replace("\\$", "$").replace("\\,", "").replace("{,}", ",")
    m = _FRAC_RE.match(s) or _SLASH_RE.match(s)
    if m:
        den = float(m.group(3))
        if den == 0:
            return None
        v = float(m.group(2)) / den
        return -v if m.group(1) else v
    matches = list(_NUMBER_RE.finditer(s))
    if len(matches) != 1:
        return None
    m = matches[0]
    v = float(m.group("num").replace(",", ""))
    if m.group("exp"):
        v *= 10.0 ** int(m.group("exp"))
    if m.group("neg"):
        v = -v
    if m.group("scale"):
        v *= _SCALES[m.group("scale").lower()]
    if m.group("pct") and percent == "fraction":
        v /= 100.0
    return v


def parse_json(text: str) -> Any:
    """A JSON value from a model's text: the whole text, else the last fenced block, else the
    first balanced `{…}` or `[…]`. Raises ValueError naming why when there is none."""
    s = text.strip()
    try:
        return json.loads(s)
    except ValueError:
        pass
    fenced = extract_code(s)
    if fenced is not None:
        try:
            return json.loads(fenced)
        except ValueError as e:
            raise ValueError(f"the fenced block is not valid JSON: {e}") from None
    for open_, close in (("{", "}"), ("[", "]")):
        start = s.find(open_)
        if start < 0:
            continue
        span = _balanced(s, start, open_, close)
        if span is not None:
            try:
                return json.loads(span)
            except ValueError as e:
                raise ValueError(f"the {open_}…{close} span is not valid JSON: {e}") from None
    raise ValueError("no JSON value found")


def _balanced(s: str, start: int, open_: str, close: str) -> Optional[str]:
    depth = 0
    in_str = False
    escaped = False
    for i in range(start, len(s)):
        c = s[i]
        if in_str:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return s[start:i + 1]
    return None


def parse_reference(reference: Any, field: Optional[str] = None, keys: Sequence[str] = REFERENCE_KEYS, as_json: bool = False) -> Any:
    """The answer inside a dataset reference.

    A JSON object is looked into: `field` when given, else the first of `keys` present and not
    null. Anything else is the answer as it is. With `as_json=True` a string answer is parsed as
    JSON (datasets often store a tool call or a list as JSON text). Raises `InvalidInput` naming
    the problem when there is no answer, so the rollout is answered `INVALID_INPUT`.
    """
    value = reference
    if value is None:
        raise InvalidInput("the rollout has no reference answer")
    if isinstance(value, dict):
        if field is not None:
            if field not in value:
                raise InvalidInput(f"the reference has no field `{field}` (it has: {', '.join(sorted(value)) or 'none'})")
            value = value[field]
        else:
            for k in keys:
                if value.get(k) is not None:
                    value = value[k]
                    break
            else:
                raise InvalidInput(f"the reference has none of the fields {', '.join(keys)} (it has: {', '.join(sorted(value)) or 'none'})")
    if value is None:
        raise InvalidInput("the reference answer is null")
    if as_json and isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise InvalidInput(f"the reference answer is not valid JSON: {e}") from None
    return value
