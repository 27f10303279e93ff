#!/usr/bin/env bash
# The numbers of BENCHMARKS.md, on this machine, in one session, side by side:
#
#   python   plain-Python format+numeric checks in process (one core), and agreement with the
#            Rust `math` reward on the same corpus (every score must match)
#   equal    the Rust server vs the Python baseline (FastAPI + uvicorn) over the Nova Lambda JSON,
#            at equal cores: 1 core each (server pinned to cpu 1, load generator to cpu 0), then
#            2 workers each sharing both cores with the load generator
#   native   criterion, in process: the format checks natively vs sandboxed (format_sandbox), and
#            the ceiling: the Lambda request parsed, scored natively and answered (lambda_ceiling),
#            with the 1-core server of `equal` divided by it
#   rft      RFT step bursts (256 prompts x 8 generations = 2,048 rollouts a step, calls of 64,
#            4 rollout workers) at several in-flight levels; a p99 at half of peak (open loop)
#   memory   resident size (VmRSS) idle and the high-water mark (VmHWM) under load
#
# Usage: scripts/bench.sh [SECTION...]   (default: all; DURATION=10 seconds per run; NO_BUILD=1)
# Reports (loadtest JSON) are kept in target/bench/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
duration="${DURATION:-10}"
sections=("$@"); [ "${#sections[@]}" -gt 0 ] || sections=(python equal native sql rft memory)
out=target/bench
mkdir -p "$out"
lt=target/release/loadtest
rs=target/release/reward-server
rust_http=127.0.0.1:18080
py_http=127.0.0.1:18090

# NO_BUILD=1 runs the binaries already in target/release (e.g. while the tree does not build).
[ -n "${NO_BUILD:-}" ] || cargo build --release -p reward-server -p loadtest --quiet
[ -f target/plugins/format-loop.wasm ] || scripts/build-plugins.sh
if [ ! -x "$out/venv/bin/uvicorn" ]; then
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install -q -r bench/requirements.txt
fi

# The built-in rewards plus `format_numeric`: the very config of the criterion bench
# (reward-server/benches/format_sandbox.rs), one plugin call per rollout, for the native ratio.
sed "s#^plugin_dir = .*#plugin_dir = \"$root/target/plugins\"#" rewards.toml > "$out/rewards.toml"
cat >> "$out/rewards.toml" <<'EOF'

[rewards.format_numeric]
plugin = "format"
limits = { instance_reuse = 10_000 }
config = { required_tags = ["think", "answer"], answer_tag = "answer", max_chars = 16000, reference = { mode = "numeric", rel_tol = 1e-3 } }
EOF

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# field FILE a.b.c  -> the JSON value
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("/"): v=v[k]
print(v)' "$1" "$2"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
# thrpt CRITERION_OUTPUT GROUP/NAME -> criterion's middle throughput estimate, in elements/s
thrpt() { python3 - "$1" "$2" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(re.escape(sys.argv[2]) + r"\s.*?thrpt:\s*\[\S+ \S+ (\S+) (\S+)", text, re.S)
scale = {"elem/s": 1, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}
print(float(m.group(1)) * scale[m.group(2)] if m else 0)
EOF
}
# CPU seconds (user + system) used so far by a process and its children (uvicorn's workers).
cpu_s() { local t=0 p; for p in $1 $(pgrep -P "$1" || true); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  python3 -c "print($t / $(getconf CLK_TCK))"; }
kib() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/status"; }
# Resident KiB of a process and its children (uvicorn's workers).
tree_kib() { local sum=0 p; for p in $1 $(pgrep -P "$1" || true); do sum=$((sum + $(kib "$p" "$2"))); done; echo $sum; }

start_rust() { # CPUS WORKERS
  taskset -c "$1" "$rs" serve --config "$out/rewards.toml" --http-addr "$rust_http" --grpc-addr 127.0.0.1:15051 --workers "$2" \
    --cache-entries 0 --watch-interval-ms 0 > "$out/rust-server.log" 2>&1 &
  rust_pid=$!; pids+=("$rust_pid")
  for _ in $(seq 300); do grep -q listening "$out/rust-server.log" && return; sleep 0.1; done
  echo "rust server did not start" >&2; exit 1
}
start_python() { # CPUS WORKERS
  taskset -c "$1" "$out/venv/bin/uvicorn" --app-dir bench python_reward_server:app --host 127.0.0.1 \
    --port "${py_http#*:}" --workers "$2" --log-level warning > "$out/python-server.log" 2>&1 &
  py_pid=$!; pids+=("$py_pid")
  for _ in $(seq 300); do curl -sf "http://$py_http/healthz" >/dev/null && return; sleep 0.1; done
  echo "python server did not start" >&2; exit 1
}
stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
load() { # CPUS NAME ADDR ARGS... -> target/bench/NAME.json ($reward, default math)
  local cpus=$1 name=$2 addr=$3; shift 3
  taskset -c "$cpus" "$lt" run --target lambda --addr "$addr" --reward "${reward:-math}" --batch 64 --quiet \
    --json "$out/$name.json" "$@" > "$out/$name.txt"
}
has() { local s; for s in "${sections[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u +%F)"
echo "corpus: format, seed 1, 4,096 rollouts, reasoning lognormal around 2 KB; reward math; batches of 64; server score cache off"
"$lt" corpus --corpus format -n 4096 --seed 1 --out "$out/format.jsonl"

if has python; then
  echo; echo "== python: plain Python in process, one core"
  taskset -c 1 "$out/venv/bin/python" bench/python_reward_server.py bench "$out/format.jsonl" 64 | tee "$out/python-inprocess.json"
  "$rs" score --reward math --input "$out/format.jsonl" --output "$out/format.scores.jsonl" --no-progress 2>/dev/null || true
  python3 - "$out" <<'EOF'
import json, sys
sys.path.insert(0, "bench")
import python_reward_server as p
out = sys.argv[1]
items = [json.loads(l) for l in open(f"{out}/format.jsonl")]
rust = [json.loads(l) for l in open(f"{out}/format.scores.jsonl")]
bad = sum(abs(p.score(i)["aggregate_reward_score"] - r["score"]) > 1e-9 for i, r in zip(items, rust))
print(f"agreement: Python and the Rust math reward differ on {bad} of {len(items)} rollouts")
sys.exit(1 if bad else 0)
EOF
fi

if has equal; then
  for cores in 1 2; do
    if [ "$cores" = 1 ]; then srv=1; gen=0; workers=1; label="1 core each (server on cpu 1, loadtest on cpu 0)"
    else srv=0,1; gen=0,1; workers=2; label="2 workers each, server and loadtest sharing cpus 0-1"; fi
    echo; echo "== equal cores: $label; closed loop, 16 callers, ${duration}s"
    start_rust "$srv" "$workers"
    load "$gen" "rust-${cores}core-warmup" "$rust_http" -c 16 -d 2
    c0=$(cpu_s "$rust_pid"); load "$gen" "rust-${cores}core" "$rust_http" -c 16 -d "$duration"; c1=$(cpu_s "$rust_pid")
    echo "$c0 $c1" > "$out/rust-${cores}core.cpu"
    if [ "$cores" = 1 ]; then
      c0=$(cpu_s "$rust_pid"); reward=format_numeric load "$gen" "rust-1core-format_numeric" "$rust_http" -c 16 -d "$duration"
      c1=$(cpu_s "$rust_pid"); echo "$c0 $c1" > "$out/rust-1core-format_numeric.cpu"
    fi
    stop "$rust_pid"
    start_python "$srv" "$workers"
    load "$gen" "python-${cores}core-warmup" "$py_http" -c 16 -d 2
    c0=$(cpu_s "$py_pid"); load "$gen" "python-${cores}core" "$py_http" -c 16 -d "$duration"; c1=$(cpu_s "$py_pid")
    echo "$c0 $c1" > "$out/python-${cores}core.cpu"
    stop "$py_pid"
    r=$(field "$out/rust-${cores}core.json" throughput/rollouts_per_s)
    p=$(field "$out/python-${cores}core.json" throughput/rollouts_per_s)
    for s in rust python; do
      f="$out/$s-${cores}core.json"
      read -r c0 c1 < "$out/$s-${cores}core.cpu"
      per_cpu=$(python3 -c "print(round($(field "$f" rollouts/answered) / max($c1 - $c0, 1e-9)))")
      echo "$per_cpu" > "$out/$s-${cores}core.per_cpu"
      printf '%-7s %8.0f rollouts/s  %8s rollouts per server CPU-second  errors %s  p50 %s ms  p99 %s ms\n' "$s" \
        "$(field "$f" throughput/rollouts_per_s)" "$per_cpu" "$(field "$f" requests/errors)" "$(field "$f" latency_ms/p50)" "$(field "$f" latency_ms/p99)"
    done
    echo "ratio rust/python at $cores core(s): $(ratio "$r" "$p")x rollouts/s, $(ratio "$(cat "$out/rust-${cores}core.per_cpu")" "$(cat "$out/python-${cores}core.per_cpu")")x rollouts per CPU-second"
    if [ "$cores" = 1 ]; then
      f="$out/rust-1core-format_numeric.json"; read -r c0 c1 < "$out/rust-1core-format_numeric.cpu"
      per_cpu=$(python3 -c "print(round($(field "$f" rollouts/answered) / max($c1 - $c0, 1e-9)))")
      echo "$per_cpu" > "$out/rust-1core-format_numeric.per_cpu"
      printf 'rust, reward format_numeric (the criterion config, one plugin call): %8.0f rollouts/s  %s rollouts per server CPU-second\n' \
        "$(field "$f" throughput/rollouts_per_s)" "$per_cpu"
    fi
  done
fi

if has native; then
  echo; echo "== native: the format checks natively vs sandboxed, in process (criterion, one thread)"
  cargo bench -p reward-server --bench format_sandbox -- --noplot 2>/dev/null | tee "$out/criterion.txt" \
    | grep -E '^format_2kb|thrpt' || true
  echo; echo "== native ceiling: the Lambda request of 64 rollouts handled in process, parsing and answering included"
  cargo bench -p reward-server --bench lambda_ceiling -- --noplot 2>/dev/null | tee "$out/criterion-ceiling.txt" \
    | grep -E '^lambda_format|thrpt' || true
  if [ -f "$out/rust-1core-format_numeric.per_cpu" ]; then
    r=$(field "$out/rust-1core-format_numeric.json" throughput/rollouts_per_s)
    c=$(cat "$out/rust-1core-format_numeric.per_cpu")
    for way in native_values native_typed server_path_in_process; do
      native=$(thrpt "$out/criterion-ceiling.txt" "lambda_format_batch64/$way")
      [ "${native%.*}" != 0 ] || continue
      echo "server on 1 core over HTTP (format_numeric, same corpus) vs $way ($native rollouts/s):" \
        "$(ratio "$r" "$native")x (rollouts/s), $(ratio "$c" "$native")x (rollouts per CPU-second)"
    done
  fi
fi

if has rft; then
  echo; echo "== RFT step bursts: 256 prompts x 8 generations = 2,048 rollouts/step in calls of 64, 4 workers; server 2 workers, all sharing 2 cores"
  start_rust 0,1 2
  printf '%-10s %10s %10s %10s %12s %12s %12s\n' "in-flight" "rollouts/s" "step p50" "step max" "call p50" "call p99" "service p99"
  for f in 1 2 4 8 16; do
    taskset -c 0,1 "$lt" rft --target lambda --addr "$rust_http" --reward math --batch 64 --quiet \
      --global-batch-size 256 --number-generation 8 --workers 4 --in-flight "$f" --steps 5 \
      --json "$out/rft-inflight$f.json" > /dev/null
    j="$out/rft-inflight$f.json"
    printf '%-10s %10.0f %10s %10s %12s %12s %12s\n' "4x$f" "$(field "$j" throughput/rollouts_per_s)" "$(field "$j" step_ms/p50)" \
      "$(field "$j" step_ms/max)" "$(field "$j" latency_ms/p50)" "$(field "$j" latency_ms/p99)" "$(field "$j" service_time_ms/p99)"
  done
  echo; echo "== p99 of a 64-rollout call at half of peak (open loop, Poisson, latency from intended send)"
  load 0,1 peak "$rust_http" -c 32 -d "$duration"
  peak=$(field "$out/peak.json" throughput/requests_per_s)
  half=$(python3 -c "print(round($peak/2, 1))")
  load 0,1 half-peak "$rust_http" -c 64 --rate "$half" --poisson -d "$duration"
  echo "peak $(field "$out/peak.json" throughput/rollouts_per_s) rollouts/s ($peak calls/s, closed loop 32 callers)"
  echo "at $half calls/s: p50 $(field "$out/half-peak.json" latency_ms/p50) ms, p99 $(field "$out/half-peak.json" latency_ms/p99) ms, p99.9 $(field "$out/half-peak.json" latency_ms/p99.9) ms (service-time p99 $(field "$out/half-peak.json" service_time_ms/p99) ms), errors $(field "$out/half-peak.json" requests/errors)"
  stop "$rust_pid"
fi

if has sql; then
  echo; echo "== sql: the sandboxed plugin vs the same code natively vs a plain-Python sqlite3 scorer (BIRD kind)"
  cargo bench -p reward-server --bench sql_sandbox -- --noplot 2>/dev/null | tee "$out/criterion-sql.txt" \
    | grep -E '^sql_spider|thrpt' || true
  python3 "$root/bench/python_sql_scorer.py" "$root/target/bench/sql" --rounds 20
  python3 "$root/bench/python_sql_scorer.py" "$root/target/bench/sql" --rounds 20 --cache-gold
fi

if has memory; then
  echo; echo "== memory (KiB): idle after start, high-water mark after ${duration}s of 16 callers"
  start_rust 0,1 2
  sleep 1; r_idle=$(kib "$rust_pid" VmRSS)
  load 0,1 mem-rust "$rust_http" -c 16 -d "$duration"
  r_load=$(kib "$rust_pid" VmHWM)
  stop "$rust_pid"
  start_python 0,1 2
  sleep 1; p_idle=$(tree_kib "$py_pid" VmRSS)
  load 0,1 mem-python "$py_http" -c 16 -d "$duration"
  p_load=$(tree_kib "$py_pid" VmHWM)
  stop "$py_pid"
  echo "rust   (1 process, 2 workers):            idle VmRSS $r_idle, under load VmHWM $r_load"
  echo "python (uvicorn master + 2 workers, sum): idle VmRSS $p_idle, under load VmHWM $p_load"
fi
