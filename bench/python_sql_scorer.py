"""A plain-Python text-to-SQL scorer of the BIRD kind (execution accuracy with sqlite3), run on the
same database and (gold, predicted) pairs as the sandboxed `sql` plugin's benchmark, for the ratio
in BENCHMARKS.md.

    cargo bench -p reward-server --bench sql_sandbox     # writes target/bench/sql/
    python3 bench/python_sql_scorer.py target/bench/sql [--rounds 20]

Per pair: execute the prediction and the gold on the database, compare the sets of rows (BIRD's
rule), score 1 / 0.1 (executes) / 0 like the plugin's default. One connection per database, kept
open (the cheapest way to do it in Python; BIRD's own script opens one per query). No sandbox, no
fuel, no parse checks, no synthesised databases: the floor of what a Python scorer costs.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path


def score(conn: sqlite3.Connection, gold: str, predicted: str) -> float:
    try:
        got = set(conn.execute(predicted).fetchall())
    except sqlite3.Error:
        return 0.0
    want = set(conn.execute(gold).fetchall())
    return 1.0 if got == want else 0.1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="the directory the sql_sandbox bench wrote (pairs.jsonl, DB.sqlite)")
    ap.add_argument("--rounds", type=int, default=20, help="passes over the pairs [default: 20]")
    args = ap.parse_args()
    pairs = [json.loads(line) for line in (args.dir / "pairs.jsonl").read_text().splitlines() if line.strip()]
    conns = {}
    for p in pairs:
        if p["db_id"] not in conns:
            uri = f"file:{args.dir / (p['db_id'] + '.sqlite')}?mode=ro"
            conns[p["db_id"]] = sqlite3.connect(uri, uri=True)
    scores = [score(conns[p["db_id"]], p["gold"], p["predicted"]) for p in pairs]
    started = time.perf_counter()
    for _ in range(args.rounds):
        for p in pairs:
            score(conns[p["db_id"]], p["gold"], p["predicted"])
    elapsed = time.perf_counter() - started
    n = args.rounds * len(pairs)
    print(f"python sqlite3 scorer: {n} pairs in {elapsed:.2f} s: {n / elapsed:,.0f} pairs/s "
          f"(matches {scores.count(1.0)}, executes only {scores.count(0.1)}, failed {scores.count(0.0)} of {len(pairs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
