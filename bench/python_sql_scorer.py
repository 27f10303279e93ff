"""A plain-Python text-to-SQL scorer of the BIRD kind (execution accuracy with sqlite3), run on the
same database and (gold, predicted) pairs as the sandboxed `sql` plugin's benchmark, for the ratio
in BENCHMARKS.md.

    cargo bench -p reward-server --bench sql_sandbox     # writes target/bench/sql/
    python3 bench/python_sql_scorer.py target/bench/sql [--rounds 20] [--cache-gold]

Per pair: execute the prediction and the gold on the database, compare the sets of rows (BIRD's
rule), score 1 / 0.1 (executes) / 0 like the plugin's default. One connection per database, kept
open (the cheapest way to do it in Python; BIRD's own script opens one per query). No sandbox, no
fuel, no parse checks, no synthesised databases: the least such a Python scorer does.
`--cache-gold` keeps each gold query's rows, as the plugin does per instance (the predictions of
a GRPO group share their gold), so the gold runs once per question instead of once per pair.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path


def rows(conn: sqlite3.Connection, sql: str) -> set:
    return set(conn.execute(sql).fetchall())


def score(conn: sqlite3.Connection, gold: str, predicted: str, gold_rows: dict | None) -> float:
    """`gold_rows`: the gold queries' rows seen so far, or None to run the gold every time."""
    try:
        got = rows(conn, predicted)
    except sqlite3.Error:
        return 0.0
    if gold_rows is None:
        want = rows(conn, gold)
    elif (want := gold_rows.get(gold)) is None:
        want = gold_rows[gold] = rows(conn, gold)
    return 1.0 if got == want else 0.1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path, help="the directory the sql_sandbox bench wrote (pairs.jsonl, DB.sqlite)")
    ap.add_argument("--rounds", type=int, default=20, help="passes over the pairs [default: 20]")
    ap.add_argument("--cache-gold", action="store_true", help="run each gold query once and keep its rows")
    args = ap.parse_args()
    pairs = [json.loads(line) for line in (args.dir / "pairs.jsonl").read_text().splitlines() if line.strip()]
    conns = {}
    for p in pairs:
        if p["db_id"] not in conns:
            uri = f"file:{args.dir / (p['db_id'] + '.sqlite')}?mode=ro"
            conns[p["db_id"]] = sqlite3.connect(uri, uri=True)
    scores = [score(conns[p["db_id"]], p["gold"], p["predicted"], None) for p in pairs]
    started = time.perf_counter()
    for _ in range(args.rounds):
        # A fresh cache each pass, as a fresh plugin instance starts with none.
        gold_rows = {} if args.cache_gold else None
        for p in pairs:
            score(conns[p["db_id"]], p["gold"], p["predicted"], gold_rows)
    elapsed = time.perf_counter() - started
    n = args.rounds * len(pairs)
    label = "python sqlite3 scorer" + (", gold rows cached" if args.cache_gold else ", gold run every pair")
    print(f"{label}: {n} pairs in {elapsed:.2f} s: {n / elapsed:,.0f} pairs/s "
          f"(matches {scores.count(1.0)}, executes only {scores.count(0.1)}, failed {scores.count(0.0)} of {len(pairs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
