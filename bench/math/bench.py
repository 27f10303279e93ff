#!/usr/bin/env python3
"""The math reward against math-verify, side by side, on one core each (issue 17, section 2).

Runs, in one go and on the same corpus (the hand-labelled pairs of
reward-plugins/math/tests/labelled.jsonl and the seeded generated pairs of bench/math/gen.py):

- ours: the sandboxed `math_equivalence` reward (the math plugin in wasmtime) through the real
  binary's offline scorer, `taskset -c CPU reward-server score -j 1`; once for the verdicts, the
  instructions (fuel) and the statuses, and once over the corpus repeated --repeat times for speed;
- math-verify (`math_verify.parse` on both sides, then `verify(gold, prediction)`, defaults), in
  this process pinned to the same CPU, after a short warm-up.

Prints and writes (to --out): pairs per second for both and the ratio, agreement with the labels,
false equivalences (a near miss judged equivalent), the most instructions any pair took against the
fuel budget, the statuses, and every pair on which the two disagree (disagreements.jsonl), which
bench/math/DISAGREEMENTS.md judges by hand. Run it through scripts/bench-math.sh, which installs
math-verify from bench/math/requirements.txt into its own venv.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402

UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


def load_corpus(labelled_path, seed, n):
    pairs = []
    with open(labelled_path) as f:
        for i, line in enumerate(l for l in f if l.strip()):
            p = json.loads(line)
            pairs.append({"id": f"L{i + 1:04d}", "set": "labelled", **p})
    for i, p in enumerate(gen.generate(seed, n)):
        pairs.append({"id": f"G{i + 1:04d}", "set": "generated", **p})
    return pairs


def rollout_line(p, id_):
    return json.dumps({"id": id_, "prompt": "Solve.", "completion": p["prediction"], "reference": p["gold"]}) + "\n"


def toml_value(v):
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v)


def math_only_config(args):
    """The reward exactly as the rewards config defines it, alone (other plugins not needed)."""
    import tomllib

    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(args.config))
    reward = cfg["rewards"][args.reward]
    path = os.path.join(args.out, "rewards.toml")
    with open(path, "w") as f:
        f.write(f"# Written by bench/math/bench.py from {args.config}: the `{args.reward}` reward alone.\n")
        f.write(f"plugin_dir = {json.dumps(os.path.join(base, cfg.get('plugin_dir', '.')))}\n\n")
        f.write(f"[rewards.{args.reward}]\n")
        for k, v in reward.items():
            f.write(f"{k} = {toml_value(v)}\n")
    fuel = reward.get("limits", {}).get("fuel", args.fuel)
    return path, fuel


def run_ours(args, pairs):
    config, args.fuel = math_only_config(args)
    corpus = os.path.join(args.out, "corpus.jsonl")
    with open(corpus, "w") as f:
        for p in pairs:
            f.write(rollout_line(p, p["id"]))
    scored = os.path.join(args.out, "ours.jsonl")
    cmd = ["taskset", "-c", str(args.cpu), args.server, "score", "--config", config, "--reward", args.reward,
           "--input", corpus, "-o", scored, "-j", "1", "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode not in (0, 1):
        sys.exit(f"bench-math: {' '.join(cmd)} exited {res.returncode}:\n{res.stderr}")
    out = {}
    with open(scored) as f:
        for line in f:
            r = json.loads(line)
            out[r["id"]] = r
    # Speed: the corpus repeated, so that start-up (reading the config, loading the cached
    # compiled plugin) is a small part of the run; every line is still scored (no score cache).
    timing = os.path.join(args.out, "timing.jsonl")
    with open(timing, "w") as f:
        for k in range(args.repeat):
            for p in pairs:
                f.write(rollout_line(p, f"{p['id']}-{k}"))
    n = len(pairs) * args.repeat
    t0 = time.perf_counter()
    res = subprocess.run(cmd[:10] + [timing, "-o", os.path.join(args.out, "timing-scored.jsonl"), "-j", "1", "--no-progress"],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"(\d+) rollouts in ([\d.]+) s \((\d+) rollouts/s\)", res.stderr + res.stdout)
    scorer_rate = float(m.group(3)) if m else None
    return out, {"pairs": n, "wall_s": wall, "pairs_per_s_wall": n / wall, "pairs_per_s_scorer": scorer_rate}


def run_math_verify(args, pairs):
    os.sched_setaffinity(0, {args.cpu})
    import logging

    logging.disable(logging.CRITICAL)  # math-verify logs every parse failure and timeout
    from math_verify import parse, verify

    def gold_of(g):
        return parse(g if ("\\boxed" in g or UNESCAPED_DOLLAR.search(g)) else f"${g}$")

    def judge(p):
        try:
            return bool(verify(gold_of(p["gold"]), parse(p["prediction"])))
        except Exception:  # a crash in parsing or sympy is a "not equivalent", as in training
            return False

    for p in pairs[: args.warmup]:
        judge(p)
    verdicts, slowest = {}, (0.0, None)
    t0 = time.perf_counter()
    for p in pairs:
        s = time.perf_counter()
        verdicts[p["id"]] = judge(p)
        d = time.perf_counter() - s
        if d > slowest[0]:
            slowest = (d, p["id"])
    wall = time.perf_counter() - t0
    return verdicts, {"pairs": len(pairs), "wall_s": wall, "pairs_per_s": len(pairs) / wall,
                      "slowest_pair_s": slowest[0], "slowest_pair": slowest[1]}


def tally(pairs, said):
    n = len(pairs)
    agree = sum(1 for p in pairs if said[p["id"]] == p["equivalent"])
    near = [p for p in pairs if not p["equivalent"]]
    fe = [p["id"] for p in near if said[p["id"]]]
    missed = sum(1 for p in pairs if p["equivalent"] and not said[p["id"]])
    return {"pairs": n, "equivalent": n - len(near), "near_misses": len(near), "agree": agree,
            "agreement": round(agree / n, 4), "false_equivalences": len(fe), "false_equivalence_ids": fe,
            "missed": missed}


def main():
    ap = argparse.ArgumentParser(description="math reward vs math-verify, one core each")
    ap.add_argument("--server", default="target/release/reward-server")
    ap.add_argument("--config", default="rewards.toml")
    ap.add_argument("--reward", default="math_equivalence")
    ap.add_argument("--labelled", default="reward-plugins/math/tests/labelled.jsonl")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--generated", type=int, default=2400)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20, help="copies of the corpus in our speed run")
    ap.add_argument("--warmup", type=int, default=50, help="math-verify pairs judged before timing")
    ap.add_argument("--fuel", type=int, default=1_000_000_000, help="the reward's fuel per rollout when its limits set none (the host default)")
    ap.add_argument("--out", default="target/bench/math")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    pairs = load_corpus(args.labelled, args.seed, args.generated)
    ours_rows, ours_speed = run_ours(args, pairs)
    mv, mv_speed = run_math_verify(args, pairs)

    ours = {i: (r["status"] == "OK" and r["score"] == 1.0) for i, r in ours_rows.items()}
    statuses = {}
    for r in ours_rows.values():
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    instr = max(ours_rows.values(), key=lambda r: r.get("instructions", 0))
    report = {"ours_speed": ours_speed, "math_verify_speed": mv_speed,
              "ratio": ours_speed["pairs_per_s_wall"] / mv_speed["pairs_per_s"],
              "ratio_scorer": (ours_speed["pairs_per_s_scorer"] or 0) / mv_speed["pairs_per_s"],
              "max_instructions": instr.get("instructions"), "max_instructions_pair": instr["id"],
              "fuel_budget": args.fuel, "ours_statuses": statuses, "sets": {}}
    for name in ("labelled", "generated", "all"):
        sub = [p for p in pairs if name == "all" or p["set"] == name]
        report["sets"][name] = {"ours": tally(sub, ours), "math_verify": tally(sub, mv)}

    dis = []
    for p in pairs:
        if ours[p["id"]] != mv[p["id"]]:
            r = ours_rows[p["id"]]
            dis.append({"id": p["id"], "gold": p["gold"], "prediction": p["prediction"], "label": p["equivalent"],
                        "ours": ours[p["id"]], "math_verify": mv[p["id"]], "right": "ours" if ours[p["id"]] == p["equivalent"] else "math-verify",
                        "note": p.get("note") or f"{p['family']}/{p['kind']}", "our_reason": r.get("reason") or r.get("error")})
    report["disagreements"] = len(dis)
    report["disagreements_ours_right"] = sum(1 for d in dis if d["right"] == "ours")
    with open(os.path.join(args.out, "disagreements.jsonl"), "w") as f:
        for d in dis:
            f.write(json.dumps(d) + "\n")
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)

    print(f"math reward vs math-verify, one core each (cpu {args.cpu}); {len(pairs)} pairs")
    print(f"  ours (sandboxed, reward-server score -j 1): {ours_speed['pairs_per_s_wall']:,.0f} pairs/s wall-clock "
          f"({ours_speed['pairs']} pairs in {ours_speed['wall_s']:.2f} s, start-up included); scorer's own count "
          f"{ours_speed['pairs_per_s_scorer']:,.0f}/s")
    print(f"  math-verify 0.9.0: {mv_speed['pairs_per_s']:,.1f} pairs/s ({mv_speed['pairs']} pairs in {mv_speed['wall_s']:.1f} s; "
          f"slowest pair {mv_speed['slowest_pair_s']:.2f} s, {mv_speed['slowest_pair']})")
    print(f"  ratio: {report['ratio']:,.0f}x (wall-clock), {report['ratio_scorer']:,.0f}x (scorer's count)")
    print(f"  most instructions for one pair: {report['max_instructions']:,} ({instr['id']}) of a fuel budget of {args.fuel:,}; statuses {statuses}")
    for name, s in report["sets"].items():
        o, m = s["ours"], s["math_verify"]
        print(f"  {name}: {o['pairs']} pairs ({o['near_misses']} near misses): agreement ours {o['agree']}/{o['pairs']} = {o['agreement']:.3f}, "
              f"math-verify {m['agree']}/{m['pairs']} = {m['agreement']:.3f}; false equivalences ours {o['false_equivalences']}, "
              f"math-verify {m['false_equivalences']}; missed ours {o['missed']}, math-verify {m['missed']}")
    print(f"  disagreements between the two: {len(dis)} (ours right on {report['disagreements_ours_right']}), "
          f"listed in {os.path.join(args.out, 'disagreements.jsonl')}")


if __name__ == "__main__":
    main()
