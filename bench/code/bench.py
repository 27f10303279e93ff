#!/usr/bin/env python3
"""The `code` reward against veRL's prime_code and a process per test, side by side on ONE core.

    python3 bench/code/bench.py [--repeat 3] [--skip-ours] [--cpu 0] [--verl-labelled]

Corpus (the issue's shape): 20 rollouts x 5 stdin/stdout tests, generated deterministically (seed
7) from the problems of testing/code/labelled.py: 10 correct, 6 wrong-answer and 4 runtime-error
solutions, no hacks and no time-outs, so all three runners can agree; written to a temp JSONL
(--out/corpus.jsonl) in the reward's input format, with its labels (1 / 0 / 0 by construction).

Runners, each a separate process started under `taskset -c CPU` (children inherit the pinning):

(a) veRL 0.9.1 prime_code: `compute_score(completion, json.dumps(input_output), continuous=True)`,
    from verl/utils/reward_score/prime_code/ imported as a top-level package (its directory's
    parent on sys.path), never through the `verl` package root (which imports torch). It needs
    numpy only; verl and numpy are pip-installed with --no-deps into --deps on first use
    (bench/code/requirements.txt). In continuous mode it first runs all tests in one forked
    process (plus a multiprocessing Manager), and if any fails, every test again in its own.
(b) a process per test: `python3 -c <solution>` with the test's input on stdin, stdout compared
    whitespace-normalised (testing/code/judge.py, the labels' reference judge).
(c) ours: `reward-server score --config CFG --reward code --input corpus.jsonl -o out.jsonl -j 1
    --no-progress`, timed as a whole command; per-rollout `instructions` and `latency_us` from
    its output. UNTESTED until the binary has the `code` reward (--skip-ours leaves it out).

Each runner scores the corpus --repeat times (ids suffixed per copy); verdicts come from the first
copy, tests/s from all of them. Prints a markdown table: tests/s per runner and vs veRL, agreement
with the labels, and the score each runner gives each rollout. --verl-labelled also runs prime_code
over the hand-labelled set (testing/code/labelled.jsonl; not the time-outs, memory bombs or huge
output, which are slow or unsafe under it: it sets no memory limit) and prints how it scores
each, hacks included (not timed). --check-ours FILE... scores labelled files (testing/code/labelled.jsonl,
the outputs of testing/code/humaneval.py) through the server, all cores, and lists every rollout whose
score differs from its label (UNTESTED, like runner c); the exit code is 1 if any does.
"""

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTING = os.path.join(ROOT, "testing", "code")
sys.path.insert(0, TESTING)
import judge  # noqa: E402
import labelled  # noqa: E402


# ------------------------------------------------------------------------------------------------
# runners (run inside the pinned child process)

def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def n_tests(r):
    return len(r["reference_answer"]["input_output"]["inputs"])


def verl_tests(io):
    """input_output as prime_code wants it: stdin tests as they are; call-based tests with each
    input a string of one JSON value per line (one per argument) and each output a JSON string."""
    if not io.get("fn_name"):
        return {"inputs": list(io["inputs"]), "outputs": list(io["outputs"])}
    return {"fn_name": io["fn_name"], "inputs": ["\n".join(json.dumps(a) for a in args) for args in io["inputs"]],
            "outputs": [json.dumps(o) for o in io["outputs"]]}


def import_prime_code(deps):
    sys.path.insert(0, deps)  # numpy (and verl's files, whose root package is never imported)
    sys.path.insert(0, os.path.join(deps, "verl", "utils", "reward_score"))
    import prime_code

    assert "verl" not in sys.modules and "torch" not in sys.modules
    return prime_code


def runner_verl(args, rollouts):
    prime_code = import_prime_code(args.deps)
    scores, errors = {}, {}
    tests = 0
    t0 = time.perf_counter()
    for k in range(args.repeat):
        for r in rollouts:
            text = r["messages"][-1]["content"]
            cases = json.dumps(verl_tests(r["reference_answer"]["input_output"]))
            try:
                s, _ = prime_code.compute_score(text, cases, continuous=True)
                s = float(s)
            except Exception as e:  # noqa: BLE001 - a crash of the checker is recorded, not fatal
                s, errors[r["id"]] = None, f"{type(e).__name__}: {e}"
            if k == 0:
                scores[r["id"]] = s
            tests += n_tests(r)
    wall = time.perf_counter() - t0
    # veRL's default (binary) mode, once, untimed: what it does on a failing solution
    default = {}
    for r in rollouts:
        cases = json.dumps(verl_tests(r["reference_answer"]["input_output"]))
        try:
            s, _ = prime_code.compute_score(r["messages"][-1]["content"], cases)
            default[r["id"]] = float(s)
        except Exception as e:  # noqa: BLE001
            default[r["id"]] = f"{type(e).__name__}: {e}"
    return {"scores": scores, "errors": errors, "tests": tests, "wall_s": wall, "default_mode": default}


def runner_proc(args, rollouts):
    scores, tests = {}, 0
    t0 = time.perf_counter()
    for k in range(args.repeat):
        for r in rollouts:
            code = judge.extract_code(r["messages"][-1]["content"])
            io = r["reference_answer"]["input_output"]
            ok = [judge.stdin_test(code, i, o, args.timeout)[0] for i, o in zip(io["inputs"], io["outputs"])]
            if k == 0:
                scores[r["id"]] = sum(ok) / len(ok)
            tests += len(ok)
    return {"scores": scores, "tests": tests, "wall_s": time.perf_counter() - t0}


def runner_verl_labelled(args, rollouts):
    mem = 4 << 30  # prime_code sets no memory limit of its own
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    prime_code = import_prime_code(args.deps)
    out = {}
    for r in rollouts:
        cases = json.dumps(verl_tests(r["reference_answer"]["input_output"]))
        try:
            s, _ = prime_code.compute_score(r["messages"][-1]["content"], cases, continuous=True)
            out[r["id"]] = float(s)
        except Exception as e:  # noqa: BLE001
            out[r["id"]] = f"{type(e).__name__}: {e}"
    return {"scores": out}


# ------------------------------------------------------------------------------------------------
# orchestration

def ensure_deps(deps):
    if os.path.exists(os.path.join(deps, "verl", "utils", "reward_score", "prime_code", "__init__.py")) and \
            os.path.isdir(os.path.join(deps, "numpy")):
        return
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", deps, "-r", os.path.join(HERE, "requirements.txt")]
    print("installing:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)


def pinned_runner(args, name, corpus):
    result = os.path.join(args.out, f"{name}.json")
    cmd = ["taskset", "-c", str(args.cpu), sys.executable, os.path.abspath(__file__), "--runner", name, "--corpus", corpus,
           "--result", result, "--repeat", str(args.repeat), "--deps", args.deps, "--timeout", str(args.timeout)]
    print("$ " + " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True)
    with open(result) as f:
        return json.load(f)


def toml_value(v):
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def code_only_config(args):
    """The `code` reward alone, as --config defines it, or a bare `plugin = "code"` if it has none."""
    import tomllib

    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(args.config))
    reward = cfg.get("rewards", {}).get(args.reward, {"plugin": "code"})
    path = os.path.join(args.out, "rewards.toml")
    with open(path, "w") as f:
        f.write(f"# Written by bench/code/bench.py from {args.config}: the `{args.reward}` reward alone.\n")
        f.write(f"plugin_dir = {json.dumps(os.path.join(base, cfg.get('plugin_dir', 'target/plugins')))}\n\n")
        f.write(f"[rewards.{args.reward}]\n")
        for k, v in reward.items():
            f.write(f"{k} = {toml_value(v)}\n")
    return path


def run_ours(args, rollouts):
    """UNTESTED: written against `reward-server score` as documented in README.md (Offline scoring)."""
    config = code_only_config(args)
    timing = os.path.join(args.out, "ours-input.jsonl")
    with open(timing, "w") as f:
        for k in range(args.repeat):
            for r in rollouts:
                f.write(json.dumps({**r, "id": r["id"] if k == 0 else f"{r['id']}#{k}"}) + "\n")
    scored = os.path.join(args.out, "ours.jsonl")
    cmd = ["taskset", "-c", str(args.cpu), args.server, "score", "--config", config, "--reward", args.reward,
           "--input", timing, "-o", scored, "-j", "1", "--no-progress"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode not in (0, 1):
        sys.exit(f"bench-code: {' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")
    rows = {r["id"]: r for r in load(scored)}
    scores = {r["id"]: (rows[r["id"]]["score"] if rows[r["id"]].get("status") == "OK" else 0.0) for r in rollouts}
    statuses = {}
    for row in rows.values():
        statuses[row.get("status")] = statuses.get(row.get("status"), 0) + 1
    m = re.search(r"(\d+) rollouts in ([\d.]+) s", res.stderr + res.stdout)
    instr = [row.get("instructions") for row in rows.values() if row.get("instructions") is not None]
    lat = [row.get("latency_us") for row in rows.values() if row.get("latency_us") is not None]
    return {"scores": scores, "tests": sum(n_tests(r) for r in rollouts) * args.repeat, "wall_s": wall,
            "scorer_s": float(m.group(2)) if m else None, "statuses": statuses,
            "instructions_per_rollout": {r["id"]: rows[r["id"]].get("instructions") for r in rollouts},
            "latency_us_per_rollout": {r["id"]: rows[r["id"]].get("latency_us") for r in rollouts},
            "instructions_mean": sum(instr) / len(instr) if instr else None,
            "latency_us_mean": sum(lat) / len(lat) if lat else None}


def check_ours(args, path):
    """UNTESTED: score a labelled rollouts file (with its FILE.labels.jsonl) through the server and
    compare each rollout's score with expected_score. Not timed; all cores are fine here."""
    config = code_only_config(args)
    labels_path = path[: -len(".jsonl")] + ".labels.jsonl"
    labels = {x["id"]: x for x in load(labels_path)}
    scored = os.path.join(args.out, "check-" + os.path.basename(path))
    cmd = [args.server, "score", "--config", config, "--reward", args.reward, "--input", path, "-o", scored, "--no-progress"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode not in (0, 1):
        sys.exit(f"bench-code: {' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")
    rows = load(scored)
    bad = []
    for row in rows:
        lab = labels[row["id"]]
        s = row.get("score") if row.get("status") == "OK" else 0.0
        if s is None or abs(s - lab["expected_score"]) > 1e-6:
            bad.append((row, lab))
    print(f"\n## ours on {path}: {len(rows) - len(bad)}/{len(rows)} rollouts score as labelled\n")
    if bad:
        print("| rollout | kind | label | ours | status | error |")
        print("| --- | --- | ---: | ---: | --- | --- |")
        for row, lab in bad:
            print(f"| {row['id']} | {lab['kind']} | {lab['expected_score']:.2f} | {fmt(row.get('score'))} | "
                  f"{row.get('status')} | {(row.get('error') or '')[:80]} |")
    return not bad


def fmt(s):
    if s is None:
        return "error"
    if isinstance(s, str):
        return s[:75]
    return f"{s:.2f}"


def main():
    ap = argparse.ArgumentParser(description="code reward vs veRL prime_code vs a process per test, one core")
    ap.add_argument("--repeat", type=int, default=3, help="times each runner scores the corpus for speed")
    ap.add_argument("--skip-ours", action="store_true", help="leave out runner (c), the reward-server binary")
    ap.add_argument("--cpu", type=int, default=0, help="the one core every measured process is pinned to")
    ap.add_argument("--server", default=os.path.join(ROOT, "target", "release", "reward-server"))
    ap.add_argument("--config", default=os.path.join(ROOT, "rewards.toml"))
    ap.add_argument("--reward", default="code")
    ap.add_argument("--deps", default=os.path.join(ROOT, "target", "bench", "code", "pkgs"), help="pip --target dir for verl + numpy")
    ap.add_argument("--out", default=None, help="work dir (corpus, per-runner results); default: a temp dir")
    ap.add_argument("--timeout", type=float, default=judge.TIMEOUT_S, help="runner (b): seconds per test")
    ap.add_argument("--verl-labelled", action="store_true", help="also score testing/code/labelled.jsonl with prime_code")
    ap.add_argument("--check-ours", nargs="*", default=[], metavar="FILE",
                    help="also score these labelled files (each with FILE.labels.jsonl) through the server, e.g. "
                         "testing/code/labelled.jsonl and humaneval.py's outputs; untimed")
    ap.add_argument("--runner", choices=["verl", "proc", "verl-labelled"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.runner:  # inside a pinned child
        fn = {"verl": runner_verl, "proc": runner_proc, "verl-labelled": runner_verl_labelled}[args.runner]
        res = fn(args, load(args.corpus))
        res["affinity"] = sorted(os.sched_getaffinity(0))
        with open(args.result, "w") as f:
            json.dump(res, f)
        return

    args.out = args.out or tempfile.mkdtemp(prefix="bench-code-")
    os.makedirs(args.out, exist_ok=True)
    ensure_deps(args.deps)
    pairs = labelled.bench_rollouts()
    corpus = os.path.join(args.out, "corpus.jsonl")
    labelled.write(corpus, os.path.join(args.out, "corpus.labels.jsonl"), pairs)
    rollouts = [r for r, _ in pairs]
    labels = {lab["id"]: lab for _, lab in pairs}

    results = {"veRL prime_code (continuous)": pinned_runner(args, "verl", corpus),
               "process per test": pinned_runner(args, "proc", corpus)}
    if not args.skip_ours:
        results["ours (reward-server, -j 1)"] = run_ours(args, rollouts)

    tests = sum(n_tests(r) for r in rollouts)
    print(f"# code reward bench: {len(rollouts)} rollouts x 5 stdin/stdout tests = {tests} tests, x{args.repeat} repeats")
    print(f"\nEvery measured process pinned with `taskset -c {args.cpu}` (one core; children inherit it). "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
          f"Work dir: {args.out}\n")
    verl_rate = results["veRL prime_code (continuous)"]["tests"] / results["veRL prime_code (continuous)"]["wall_s"]
    print("| runner | tests | wall s | tests/s | vs veRL | rollouts agreeing with labels |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, res in results.items():
        rate = res["tests"] / res["wall_s"]
        agree = sum(1 for r in rollouts if res["scores"].get(r["id"]) is not None
                    and abs(res["scores"][r["id"]] - labels[r["id"]]["expected_score"]) < 1e-9)
        print(f"| {name} | {res['tests']} | {res['wall_s']:.2f} | {rate:.1f} | {rate / verl_rate:.2f}x | {agree}/{len(rollouts)} |")
    if "ours (reward-server, -j 1)" in results:
        o = results["ours (reward-server, -j 1)"]
        ratio = (o["tests"] / o["wall_s"]) / verl_rate
        same = all(o["scores"].get(r["id"]) is not None and results["veRL prime_code (continuous)"]["scores"].get(r["id"]) is not None
                   and abs(o["scores"][r["id"]] - results["veRL prime_code (continuous)"]["scores"][r["id"]]) < 1e-9 for r in rollouts)
        print(f"\nissue target, >= 50x veRL's tests/s with the same verdicts: {ratio:.1f}x, verdicts "
              f"{'the same on all' if same else 'NOT the same on all'} {len(rollouts)} rollouts: "
              f"{'met' if ratio >= 50 and same else 'not met'}")
        print(f"\nours: statuses {o['statuses']}, mean instructions per rollout {o['instructions_mean']}, "
              f"mean latency {o['latency_us_mean']} us, scorer's own time {o['scorer_s']} s")

    names = list(results)
    print("\n| rollout | kind | label | " + " | ".join(names) + " | veRL default mode |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in names) + " | --- |")
    for r in rollouts:
        i = r["id"]
        print(f"| {i} | {labels[i]['kind']} | {labels[i]['expected_score']:.2f} | "
              + " | ".join(fmt(results[n]["scores"].get(i)) for n in names)
              + f" | {fmt(results['veRL prime_code (continuous)']['default_mode'].get(i))} |")
    errs = results["veRL prime_code (continuous)"].get("errors")
    if errs:
        print(f"\nveRL continuous mode raised on: {errs}")

    if args.verl_labelled:
        skip = {"timeout", "timeout_partial", "memory_bomb", "output_limit"}
        lab_rows = load(os.path.join(TESTING, "labelled.jsonl"))
        lab_labels = {x["id"]: x for x in load(os.path.join(TESTING, "labelled.labels.jsonl"))}
        keep = [r for r in lab_rows if lab_labels[r["id"]]["kind"] not in skip]
        path = os.path.join(args.out, "labelled-for-verl.jsonl")
        with open(path, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")
        vl = pinned_runner(args, "verl-labelled", path)["scores"]
        print(f"\n## veRL prime_code (continuous) on the hand-labelled set ({len(keep)} rollouts; "
              f"skipped kinds: {', '.join(sorted(skip))})\n")
        print("| rollout | kind | label | veRL |")
        print("| --- | --- | ---: | ---: |")
        n_agree = 0
        for r in keep:
            lab = lab_labels[r["id"]]
            s = vl.get(r["id"])
            ok = isinstance(s, float) and abs(s - lab["expected_score"]) < 1e-6
            n_agree += ok
            print(f"| {r['id']} | {lab['kind']} | {lab['expected_score']:.2f} | {fmt(s)}{'' if ok else ' **differs**'} |")
        print(f"\nveRL agrees with {n_agree}/{len(keep)} labels")

    checks_ok = all([check_ours(args, p) for p in args.check_ours])

    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump({"repeat": args.repeat, "cpu": args.cpu, "results": results}, f, indent=1)
    sys.exit(0 if checks_ok else 1)


if __name__ == "__main__":
    main()
