#!/usr/bin/env python3
"""A native reference judge for the `code` reward's test sets: one fresh `python3` process per test.

This is the "correct isolated judge" the labels in testing/code/ are checked against, and runner (b)
of bench/code/bench.py. Nothing about the expected outputs ever enters the solution's process:

- stdin/stdout: `python3 -c <solution>` with the test's input on stdin; passes iff it exits 0 within
  the time limit and its stdout equals the expected output whitespace-normalised (trailing
  whitespace on each line and trailing blank lines ignored, as the reward does by default);
- call-based (`fn_name`): a small runner exec's the solution in a fresh process, calls the function
  with the test's positional arguments (read from stdin before the solution runs) and writes
  `json.dumps(result)` (taken before the solution could patch it) to a file; the result is parsed
  and compared here, in the judge, so a return value with a lying `__eq__` cannot pass;
- HumanEval: `<code>\\n<test>\\ncheck(<entry_point>)` as one program; passes iff it exits 0;
- MBPP: `<test_setup_code>\\n<code>\\n<assert>` as one program per assert.

Limits per test: --timeout seconds of wall time (default 2), an address-space limit (RLIMIT_AS,
default 1 GiB), and at most 1 MiB of stdout (more fails the test). A non-zero exit fails the test
(so does `sys.exit(1)` after a right answer; `sys.exit(0)` after one passes).

    python3 testing/code/judge.py FILE.jsonl [--labels FILE.labels.jsonl] [--timeout 2] [-j 2]

scores every rollout of FILE and, with --labels, compares each score with `expected_score`.
"""

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

PYTHON = sys.executable or "python3"
TIMEOUT_S = 2.0
MEMORY_BYTES = 1 << 30
OUTPUT_CAP = 1 << 20

FENCE = re.compile(r"```python[^\n]*\n(.*?)```", re.DOTALL)


def extract_code(answer: str) -> str:
    """The last ```python fenced block of the answer, or the whole answer if it has none."""
    blocks = FENCE.findall(answer)
    return blocks[-1] if blocks else answer


def normalise(s: str) -> str:
    """Each line as its whitespace-separated tokens, blank lines at both ends dropped: the code
    reward's default comparison (testlib's wcmp, as Codeforces-style judges compare)."""
    lines = [" ".join(line.split()) for line in s.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    while lines and lines[0] == "":
        lines.pop(0)
    return "\n".join(lines)


def _limits(memory_bytes):
    def set_limits():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return set_limits


def run_process(argv, stdin_text, timeout=TIMEOUT_S, memory_bytes=MEMORY_BYTES):
    """Runs argv in its own session; returns (status, stdout, stderr, returncode).

    status: OK (exited 0), EXIT_<code>, SIGNAL_<n>, TIMEOUT, OUTPUT_LIMIT."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, preexec_fn=_limits(memory_bytes))
    try:
        out, err = p.communicate(stdin_text.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return "TIMEOUT", "", "", None
    finally:
        try:  # threads or children left behind by the solution go with its process group
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if len(out) > OUTPUT_CAP:
        return "OUTPUT_LIMIT", "", err.decode(errors="replace")[-2000:], p.returncode
    status = "OK" if p.returncode == 0 else (f"SIGNAL_{-p.returncode}" if p.returncode < 0 else f"EXIT_{p.returncode}")
    return status, out.decode(errors="replace"), err.decode(errors="replace")[-2000:], p.returncode


def stdin_test(code, inp, expected, timeout=TIMEOUT_S):
    status, out, err, _ = run_process([PYTHON, "-c", code], inp, timeout)
    ok = status == "OK" and normalise(out) == normalise(expected)
    return ok, status if status != "OK" else ("PASS" if ok else "WRONG_ANSWER")


CALL_RUNNER = r"""
import json, sys
_dumps = json.dumps
_req = json.loads(sys.stdin.read())
_out = open(_req["result_path"], "w")
_write = _out.write
_ns = {"__name__": "__solution__"}
exec(compile(_req["code"], "<solution>", "exec"), _ns)
_fn = _ns.get(_req["fn_name"])
if _fn is None and "Solution" in _ns:
    _fn = getattr(_ns["Solution"](), _req["fn_name"])
_res = _fn(*_req["args"])
_write(_dumps(_res))
_out.close()
"""


def call_test(code, fn_name, args, expected, timeout=TIMEOUT_S):
    fd, path = tempfile.mkstemp(prefix="judge-", suffix=".json")
    os.close(fd)
    try:
        req = json.dumps({"code": code, "fn_name": fn_name, "args": args, "result_path": path})
        status, _, err, _ = run_process([PYTHON, "-c", CALL_RUNNER], req, timeout)
        if status != "OK":
            return False, status
        try:
            with open(path) as f:
                got = json.loads(f.read())
        except (ValueError, OSError):
            return False, "BAD_RESULT"
        ok = got == expected
        return ok, "PASS" if ok else "WRONG_ANSWER"
    finally:
        os.unlink(path)


def program_test(program, timeout):
    status, _, err, _ = run_process([PYTHON, "-c", program], "", timeout)
    return status == "OK", "PASS" if status == "OK" else status


def score_rollout(rollout, timeout=TIMEOUT_S):
    """(score, [verdict per test]) for one rollout in the reward's input format."""
    answer = rollout["messages"][-1]["content"]
    code = extract_code(answer)
    ref = rollout["reference_answer"]
    verdicts = []
    if "input_output" in ref:
        io = ref["input_output"]
        for i, (inp, exp) in enumerate(zip(io["inputs"], io["outputs"])):
            if io.get("fn_name"):
                verdicts.append(call_test(code, io["fn_name"], inp, exp, timeout))
            else:
                verdicts.append(stdin_test(code, inp, exp, timeout))
    elif "entry_point" in ref:
        program = code + "\n" + ref["test"] + "\n" + f"check({ref['entry_point']})\n"
        verdicts.append(program_test(program, max(timeout, 10.0)))
    elif "test_list" in ref:
        setup = ref.get("test_setup_code") or ""
        for t in ref["test_list"]:
            verdicts.append(program_test(setup + "\n" + code + "\n" + t + "\n", timeout))
    else:
        raise ValueError(f"{rollout.get('id')}: unknown reference_answer shape")
    n = len(verdicts) or 1
    return sum(ok for ok, _ in verdicts) / n, [v for _, v in verdicts]


def main():
    ap = argparse.ArgumentParser(description="native per-test-process judge for code reward JSONL")
    ap.add_argument("input")
    ap.add_argument("--labels", help="sidecar {id, expected_score, kind} to compare against")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S)
    ap.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args()
    with open(args.input) as f:
        rollouts = [json.loads(line) for line in f if line.strip()]
    labels = {}
    if args.labels:
        with open(args.labels) as f:
            labels = {r["id"]: r for r in map(json.loads, filter(str.strip, f))}
    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(lambda r: score_rollout(r, args.timeout), rollouts))
    bad = 0
    for r, (score, verdicts) in zip(rollouts, results):
        lab = labels.get(r["id"])
        mark = ""
        if lab is not None and abs(lab["expected_score"] - score) > 1e-6:
            bad += 1
            mark = f"  MISMATCH (expected {lab['expected_score']})"
        kind = lab["kind"] if lab else ""
        print(f"{r['id']:<34} {kind:<24} {score:.3f} {' '.join(verdicts)}{mark}")
    if labels:
        print(f"{len(rollouts) - bad}/{len(rollouts)} rollouts score as labelled")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
