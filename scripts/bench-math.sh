#!/usr/bin/env bash
# The math reward (sandboxed, through the real binary) against math-verify, side by side on one
# core each (issue 17, section 2): pairs/s and their ratio, agreement with the labels, false
# equivalences, instructions per pair, and every disagreement. Figures: BENCHMARKS.md, math section.
#
#   scripts/bench-math.sh            # CPU=1 REPEAT=20 by default; reports land in target/bench/math/
#
# Installs math-verify (bench/math/requirements.txt) into target/bench/venv-math on first use.
# Not part of CI: it needs math-verify and takes about two minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv=target/bench/venv-math
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import math_verify' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r bench/math/requirements.txt
fi
[ -x target/release/reward-server ] || flock /tmp/cargo-build.lock cargo build --release -p reward-server
[ -f target/plugins/math.wasm ] || flock /tmp/cargo-build.lock scripts/build-plugins.sh -p reward-math
exec "$venv/bin/python" bench/math/bench.py --cpu "${CPU:-1}" --repeat "${REPEAT:-20}" "$@"
