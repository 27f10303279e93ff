#!/usr/bin/env bash
# A CPU-bound reward's throughput and p99 alone, and while a judge reward is saturated at its rate
# limit, side by side in one run (issue 19's benchmark). The server runs `math` (the built-in
# composite) on one CPU worker pinned to core 0; wrk posts Lambda batches (64 x 2 KB) from core 1.
# In the "with judge" rounds a second wrk floods the `judged` reward (the limits guest's `judge`
# behaviour) whose judge, a scripted stand-in answering at once, is limited to 600 requests per
# minute: every judge call waits on the limit, holding a judge-pool thread, never a CPU worker.
#
#   bench/judge/bench.sh [ROUNDS] [SECONDS]      (defaults 3 rounds of 12 s each way)
#
# Needs a release build (cargo build --release --workspace --examples), the plugins
# (scripts/build-plugins.sh) and wrk.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-3}" secs="${2:-12}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
bin="$root/target/release/reward-server"
payload="$root/target/bench/lambda-64x2k.json"
[ -f "$payload" ] || { mkdir -p "$root/target/bench"; python3 "$root/bench/make_payload.py" 64 2048 "$payload"; }

"$root/target/release/examples/fake_judge" 1 > "$work/judge.url" &
for _ in $(seq 50); do [ -s "$work/judge.url" ] && break; sleep 0.1; done
url="$(cat "$work/judge.url")"
sed "s#^plugin_dir = .*#plugin_dir = \"$root/target/plugins\"#" "$root/rewards.toml" > "$work/rewards.toml"
cat >> "$work/rewards.toml" <<TOML

[judges.j]
url = "$url"
model = "bench"
requests_per_minute = 600
cache_entries = 0

[rewards.judged]
plugin = "$root/target/plugins/limits-guest.wasm"
judge = "j"
TOML
taskset -c 0 "$bin" serve --config "$work/rewards.toml" --cache-entries 0 --workers 1 \
  --http-addr 127.0.0.1:18090 --grpc-addr 127.0.0.1:18091 > "$work/server.log" 2>&1 &
for _ in $(seq 300); do curl -sf http://127.0.0.1:18090/readyz >/dev/null && break; sleep 0.1; done

cpu_run() {
  taskset -c 1 wrk -t1 -c16 -d"${secs}s" --latency -s "$root/bench/lambda.lua" \
    http://127.0.0.1:18090/v1/rewards/math/lambda -- "$payload" | awk '/^requests\/s/ {print $2} /^p99/ {print $2}' | paste -sd' '
}
# Warm-up.
taskset -c 1 wrk -t1 -c16 -d3s -s "$root/bench/lambda.lua" http://127.0.0.1:18090/v1/rewards/math/lambda -- "$payload" >/dev/null
echo "round  mode        batches/s  rollouts/s  p99_ms"
for r in $(seq "$rounds"); do
  read -r rps p99 < <(cpu_run)
  printf "%5d  alone       %9.1f  %10.0f  %6s\n" "$r" "$rps" "$(echo "$rps * 64" | bc)" "$p99"
  taskset -c 1 wrk -t1 -c32 -d"$((secs + 6))s" --timeout 60s -s "$root/bench/judge/judged.lua" http://127.0.0.1:18090 > "$work/judged.out" &
  flood=$!
  sleep 3
  read -r rps p99 < <(cpu_run)
  printf "%5d  with judge  %9.1f  %10.0f  %6s\n" "$r" "$rps" "$(echo "$rps * 64" | bc)" "$p99"
  wait "$flood" || true
  calls=$(curl -s http://127.0.0.1:18090/metrics | awk '/^reward_judge_calls_total\{judge="j",outcome="ok"\}/ {print $2}')
  echo "       judge flood: $(head -1 "$work/judged.out"); judge calls answered so far: ${calls:-0}"
done
