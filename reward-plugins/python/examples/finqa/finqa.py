"""FinQA-style numeric answer grader.

The model reasons in `<think>`, answers in `<answer>`; the answer is a number (a percentage, an
amount with a currency sign and thousands separators, a ratio, ...) or, for some questions, yes/no.
The score is `format_weight * format_ok + (1 - format_weight) * correct`, where `correct` pays:

- 1 when the number matches within `abs_tol` or `rel_tol` (relative to the reference),
- 1 when it matches the reference rounded to the answer's own decimal places (a model that writes
  12.35 for 12.3456 answered at the precision it chose) and `allow_rounding` is on,
- `percent_credit` when it is off by exactly a factor of 100 (12.5 against 0.125: the percent sign
  dropped or added),
- 0 otherwise. A yes/no reference is compared as a word.
"""

import re

from reward_kit import InvalidInput, Score, extract_answer, extract_tag, parse_number, parse_reference, reward, strip_reasoning

_SCALE_WORD_RE = re.compile(r"(?i)\b(?:thousand|million|billion|trillion|k|mn|bn)\b")
_YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}


def _check(config):
    for key in ("format_weight", "percent_credit"):
        if not 0.0 <= config[key] <= 1.0:
            raise ValueError(f"{key} must be in [0, 1], got {config[key]}")
    for key in ("abs_tol", "rel_tol"):
        if config[key] < 0:
            raise ValueError(f"{key} must be >= 0, got {config[key]}")


@reward(
    name="finqa",
    version="0.1.0",
    description="FinQA-style numeric answer: tolerance, rounding, percent/decimal confusion, <think>/<answer> format",
    metrics=["format_ok", "correct", "answer_found", "rel_error"],
    config={"format_weight": 0.1, "abs_tol": 1e-6, "rel_tol": 1e-3, "allow_rounding": True, "percent_credit": 0.5, "require_think": True},
    validate=_check,
)
def finqa(completion, reference, config):
    expected_raw = parse_reference(reference)
    has_think = extract_tag(completion, "think") is not None or not config["require_think"]
    tagged = extract_tag(strip_reasoning(completion), "answer")
    format_ok = has_think and tagged is not None and tagged != ""
    answer = tagged if tagged is not None else extract_answer(completion)

    word = _YES_NO.get(str(expected_raw).strip().lower())
    rel_error = None
    if word is not None:
        got = _YES_NO.get((answer or "").strip().rstrip(".").lower())
        correct = 1.0 if got == word else 0.0
    else:
        expected = parse_number(expected_raw)
        if expected is None:
            raise InvalidInput(f"the reference {expected_raw!r} is neither a number nor yes/no")
        value = parse_number(answer) if answer is not None else None
        correct, rel_error = _grade(value, expected, answer or "", config)

    value = config["format_weight"] * float(format_ok) + (1.0 - config["format_weight"]) * correct
    metrics = {"answer_found": float(answer is not None)}
    if rel_error is not None:
        metrics["rel_error"] = min(rel_error, 1e6)
    return Score(
        value,
        rewards={"format_ok": float(format_ok), "correct": correct},
        metrics=metrics,
        reason=f"answer {answer!r:.60}, reference {expected_raw!r:.60}" + ("" if format_ok else "; format: <think> and a non-empty <answer> expected"),
    )


def _grade(value, expected, answer_text, config):
    """(credit, relative error) of a parsed number against the reference."""
    if value is None:
        return 0.0, None
    err = abs(value - expected)
    rel = err / abs(expected) if expected != 0 else (0.0 if err == 0 else err)
    if err <= config["abs_tol"] or rel <= config["rel_tol"]:
        return 1.0, rel
    # "1,234.5 million" against a table in millions: the unit word is not part of the number.
    if _SCALE_WORD_RE.search(answer_text):
        for factor in (1e3, 1e6, 1e9, 1e12):
            if _close(value / factor, expected, config):
                return 1.0, abs(value / factor - expected) / abs(expected) if expected else 0.0
    if config["allow_rounding"]:
        places, sig = _precision(answer_text)
        # Rounded at the answer's own precision, if that keeps at least 3 significant figures
        # (12.3 for 12.3456 is paid; 12 is not).
        if places is not None and sig >= 3 and round(expected, places) == round(value, places):
            return 1.0, rel
    if config["percent_credit"] > 0:
        for factor in (100.0, 0.01):
            if _close(value / factor, expected, config):
                return config["percent_credit"], rel
    return 0.0, rel


def _close(value, expected, config):
    err = abs(value - expected)
    return err <= config["abs_tol"] or (expected != 0 and err / abs(expected) <= config["rel_tol"])


def _precision(text):
    """(decimal places, significant figures) the answer was written with: 12.35 -> (2, 4),
    1,234 -> (0, 4), 0.013 -> (3, 2); (None, 0) when it is not one plain decimal number."""
    digits = "".join(c for c in text if c.isdigit() or c == ".")
    if not digits or digits.count(".") > 1 or "e" in text.lower() or "/" in text:
        return None, 0
    places = len(digits.split(".", 1)[1]) if "." in digits else 0
    sig = len(digits.replace(".", "").lstrip("0"))
    return places, sig
