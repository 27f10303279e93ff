#!/usr/bin/env python3
"""The Python baseline: a reward server of the kind people run today (FastAPI + uvicorn, like
OpenRLHF's remote reward-model server or a reward Lambda handler run locally), computing the same
checks as the built-in `math` reward in plain Python:

- format (`think_answer_format`): `<think>` then `<answer>`, each opened and closed exactly once,
  non-blank, in order, the completion at most 16,000 characters;
- correctness (`numeric_answer`): the answer after the reasoning (the last `<answer>...</answer>`,
  else "the answer is ..."), parsed as a number (`$`, `,`, `%`), compared with the reference with
  abs_tol 1e-6 / rel_tol 1e-3, a x100 / /100 slip paid 0.5;
- score: 0.1 * fmt + 0.9 * (correct if fmt else 0).

It serves the Nova reward-Lambda JSON at the same path as the Rust server,
POST /v1/rewards/{name}/lambda, with the same metrics_list entries.

Usage:
  uvicorn --app-dir bench python_reward_server:app --port 18090 --workers 2   # serve
  python3 bench/python_reward_server.py bench FILE.jsonl [BATCH]             # in-process rollouts/s
"""
import json
import math
import re
import sys
import time

MAX_CHARS = 16000
ABS_TOL = 1e-6
REL_TOL = 1e-3
_TAG = {name: (re.compile(f"<{name}>"), re.compile(f"</{name}>")) for name in ("think", "answer")}
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_ANSWER_IS = re.compile(r"(?i)the (?:final )?answer is\s*:?\s*([^\n]+)")
_NUMBER = re.compile(r"^[+-]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?%?$")


def format_checks(completion):
    """(length_ok, tags_in_order)."""
    text = completion.strip()
    length_ok = 1 <= len(text) <= MAX_CHARS
    last_end = 0
    tags_ok = True
    for name in ("think", "answer"):
        opens = [m.start() for m in _TAG[name][0].finditer(completion)]
        closes = [m.start() for m in _TAG[name][1].finditer(completion)]
        if len(opens) != 1 or len(closes) != 1 or not (last_end <= opens[0] < closes[0]):
            tags_ok = False
            break
        inner = completion[opens[0] + len(name) + 2:closes[0]]
        if not inner.strip():
            tags_ok = False
            break
        last_end = closes[0] + len(name) + 3
    return length_ok, tags_ok


def extract_answer(completion):
    """The answer after the reasoning, or None."""
    text = _THINK_BLOCK.sub("", completion)
    if "<think>" in text:  # unclosed: the rest is reasoning
        text = text[:text.index("<think>")]
    if "</think>" in text:  # the template opened it: everything before is reasoning
        text = text[text.rindex("</think>") + len("</think>"):]
    answers = _ANSWER.findall(text)
    if answers and answers[-1].strip():
        return answers[-1].strip()
    m = None
    for m in _ANSWER_IS.finditer(text):
        pass
    if m:
        return m.group(1).strip().rstrip(".")
    return text.strip() or None


def parse_number(s):
    """(value, has_percent) or None."""
    s = s.strip().replace("\u2212", "-")
    if not s or not _NUMBER.match(s) or not any(c.isdigit() for c in s):
        return None
    pct = s.endswith("%")
    try:
        v = float(s.rstrip("%").replace("$", "").replace(",", ""))
    except ValueError:
        return None
    return (v, pct) if math.isfinite(v) else None


def close(a, r):
    return a == r or abs(a - r) <= ABS_TOL or abs(a - r) <= REL_TOL * abs(r)


def tier_of(a, r):
    if abs(a - r) <= 1e-12 * max(abs(a), abs(r), 1e-300):
        return 4
    if abs(a - r) <= ABS_TOL:
        return 3
    if abs(a - r) <= REL_TOL * abs(r):
        return 2
    return 0


def numeric_tier(answer, reference):
    """4 exact, 3/2 within tolerance, 1 percent slip, 0 wrong (same tiers as the plugin)."""
    a, r = parse_number(answer), parse_number(reference)
    if a is None or r is None:
        return 0
    (av, ap), (rv, rp) = a, r
    applied = (av / 100 if ap else av, rv / 100 if rp else rv)
    pairs = [applied] if ap == rp else [applied, (av, rv)]  # one-sided %: a unit, also as written
    best = max(tier_of(x, y) for x, y in pairs)
    if best:
        return best
    x, y = applied
    return 1 if (tier_of(x * 100, y) or tier_of(x / 100, y)) else 0


CREDIT = {4: 1.0, 3: 1.0, 2: 1.0, 1: 0.5, 0: 0.0}


def reference_text(ref):
    if isinstance(ref, dict):
        for key in ("answer", "ground_truth", "solution", "label"):
            if ref.get(key) is not None:
                return str(ref[key])
        return ""
    return "" if ref is None else str(ref)


def score(item):
    """One Nova Lambda item -> its answer."""
    messages = item.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content", "")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    ref = item.get("reference_answer")
    if ref is None and isinstance(item.get("metadata"), dict):
        ref = item["metadata"].get("reference_answer")
    length_ok, tags_ok = format_checks(content)
    fmt = 1.0 if (length_ok and tags_ok) else 0.0
    answer = extract_answer(content)
    tier = numeric_tier(answer, reference_text(ref)) if answer else 0
    correct = CREDIT[tier]
    total = 0.1 * fmt + 0.9 * (correct if fmt >= 1 else 0.0)

    def m(name, value, kind="Reward"):
        return {"name": name, "value": float(value), "type": kind}

    return {
        "id": item.get("id", ""),
        "aggregate_reward_score": total,
        "metrics_list": [
            m("correct", correct), m("correct.length_ok", length_ok),
            m("correct.answer_found", answer is not None, "Metric"), m("correct.format_ok", 1.0),
            m("correct.answer_correct", correct), m("correct.numeric_tier", tier, "Metric"),
            m("fmt", fmt), m("fmt.length_ok", length_ok), m("fmt.tags_in_order", tags_ok), m("fmt.format_ok", fmt),
        ],
    }


def score_payload(payload):
    items = payload if isinstance(payload, list) else [payload]
    return [score(i) for i in items]


try:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.post("/v1/rewards/{name}/lambda")
    async def lambda_endpoint(name: str, request: Request):
        payload = await request.json()
        return JSONResponse(score_payload(payload))

    @app.get("/healthz")
    async def healthz():
        return "ok"
except ImportError:  # the in-process bench needs only the standard library
    app = None


def bench(path, batch=64, seconds=5.0):
    """Rollouts per second scoring FILE (Nova JSONL) in this process, batches of BATCH, one core."""
    items = [json.loads(line) for line in open(path)]
    batches = [items[i:i + batch] for i in range(0, len(items) - batch + 1, batch)]
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for b in batches:
            score_payload(b)
            done += len(b)
    took = time.perf_counter() - start
    print(json.dumps({"rollouts": done, "seconds": round(took, 3), "rollouts_per_s": round(done / took)}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "bench":
        bench(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 64)
    else:
        print(__doc__)
