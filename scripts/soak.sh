#!/usr/bin/env bash
# The server under fire, on loopback (RELIABILITY.md, "Under fire"): a soak at 70 % of measured peak,
# a hostile plugin hammered while another reward is under load, and a plugin file replaced with
# garbage during a reload. Outside CI (it runs for minutes); reports JSON lines and a summary.
#
#   scripts/soak.sh [soak|faults|all]      SOAK_SECONDS=600 by default; FAULT_SECONDS=20
#
# Needs the release binaries (cargo build --release -p reward-server -p loadtest) and the built
# plugins (scripts/build-plugins.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
what="${1:-all}"
soak_seconds="${SOAK_SECONDS:-600}"
fault_seconds="${FAULT_SECONDS:-20}"
bin="$root/target/release"
out="${OUT_DIR:-$(mktemp -d)}"
mkdir -p "$out"
echo "soak: results in $out" >&2

# A config with the built-in rewards plus a hostile one over the limits guest, whose plugin file
# is a copy (so the reload fault can overwrite it).
work="$(mktemp -d)"
cp "$root/target/plugins/limits-guest.wasm" "$work/hostile.wasm"
cp "$root/target/plugins/format.wasm" "$work/format-copy.wasm"
sed "s|^plugin_dir = .*|plugin_dir = \"$root/target/plugins\"|" "$root/rewards.toml" > "$work/rewards.toml"
cat >> "$work/rewards.toml" <<EOF

[rewards.hostile]
plugin = "$work/hostile.wasm"
limits = { fuel = 200_000_000, memory_mib = 64, timeout_ms = 2000 }

[rewards.format_copy]
plugin = "$work/format-copy.wasm"
limits = { instance_reuse = 10_000 }
config = { required_tags = ["answer"] }
EOF

start_server() {
  local log="$1"; shift
  "$bin/reward-server" serve --config "$work/rewards.toml" \
    --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --cache-entries 0 --watch-interval-ms 500 "$@" >"$log.out" 2>"$log.err" &
  server_pid=$!
  for _ in $(seq 1 600); do
    if grep -q "reward-server listening" "$log.out" 2>/dev/null; then break; fi
    sleep 0.1
  done
  http="$(sed -n 's/.*http=http:\/\/\([^ ]*\).*/\1/p' "$log.out")"
  [ -n "$http" ] || { echo "soak: the server did not start:"; cat "$log.err"; exit 1; }
}
stop_server() { kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$server_pid/status"; }
fds() { ls "/proc/$server_pid/fd" | wc -l; }
field() { python3 -c "import json,sys; d=json.load(open('$1')); print(eval('d' + sys.argv[1]))" "$2"; }

peak() {
  "$bin/loadtest" run --target lambda --addr "$http" --reward "$1" -c 16 -d 5 -q --json "$out/peak-$1.json" >/dev/null
  field "$out/peak-$1.json" "['throughput']['requests_per_s']"
}

soak() {
  start_server "$out/soak"
  local peak_rps rate
  peak_rps="$(peak math)"
  rate="$(python3 -c "print(max(1, int($peak_rps * 0.7)))")"
  echo "soak: peak $peak_rps calls/s of 64 rollouts (math, lambda door); soaking at $rate calls/s for $soak_seconds s" >&2
  local start_rss start_fds max_rss=0 max_fds=0
  start_rss="$(rss_kb)"; start_fds="$(fds)"
  "$bin/loadtest" run --target lambda --addr "$http" --reward math --rate "$rate" --poisson -c 64 \
    -d "$soak_seconds" -q --json "$out/soak.json" >/dev/null &
  local load=$!
  while kill -0 "$load" 2>/dev/null; do
    local r f; r="$(rss_kb)"; f="$(fds)"
    [ "$r" -gt "$max_rss" ] && max_rss="$r"
    [ "$f" -gt "$max_fds" ] && max_fds="$f"
    echo "$(date +%s) rss_kb=$r fds=$f" >> "$out/soak-samples.txt"
    sleep 10
  done
  wait "$load"
  sleep 2
  local end_rss end_fds; end_rss="$(rss_kb)"; end_fds="$(fds)"
  echo "{\"soak_seconds\": $soak_seconds, \"peak_calls_per_s\": $peak_rps, \"rate\": $rate, \"errors\": $(field "$out/soak.json" "['requests']['errors']"), \"calls\": $(field "$out/soak.json" "['requests']['sent']"), \"p99_ms\": $(field "$out/soak.json" "['latency_ms']['p99']"), \"rss_kb\": {\"start\": $start_rss, \"peak\": $max_rss, \"end\": $end_rss}, \"fds\": {\"start\": $start_fds, \"peak\": $max_fds, \"end\": $end_fds}}" | tee "$out/soak-summary.json"
  stop_server
}

faults() {
  start_server "$out/faults"
  local peak_rps rate
  peak_rps="$(peak math)"
  # While the hostile reward is busy, math keeps all workers but the one the hostile reward may
  # hold (server/fair.rs): on 2 cores that is one worker, so math runs at a rate one worker
  # carries (35 % of the two-worker peak), solo and then beside the hostile reward.
  rate="$(python3 -c "print(max(1, int($peak_rps * 0.35)))")"
  echo "faults: peak $peak_rps calls/s; math at $rate calls/s (35 % of peak), solo then beside the hostile reward" >&2
  "$bin/loadtest" run --target lambda --addr "$http" --reward math --rate "$rate" --poisson -c 64 -d "$fault_seconds" -q --json "$out/solo.json" >/dev/null
  # The hostile reward: every misbehaviour the limits guest knows, 2 calls/s of 8 rollouts each.
  local hostile_pids=()
  for bad in loop alloc panic meter-refill meter-past meter-glue-spin deep stack; do
    "$bin/loadtest" run --target lambda --addr "$http" --reward hostile --batch 8 --fixed-completion "$bad" \
      --rate 2 -c 4 -d "$fault_seconds" -q --json "$out/hostile-$bad.json" >/dev/null &
    hostile_pids+=($!)
  done
  "$bin/loadtest" run --target lambda --addr "$http" --reward math --rate "$rate" --poisson -c 64 -d "$fault_seconds" -q --json "$out/beside.json" >/dev/null
  wait "${hostile_pids[@]}" || true
  # Clients that hang up mid-request: curl with a 5 ms timeout against slow work, many times.
  local hung=0
  for _ in $(seq 1 200); do
    curl -s -m 0.005 "http://$http/v1/rewards/hostile/lambda" -H 'content-type: application/json' \
      -d '[{"id":"x","messages":[{"role":"assistant","content":"work 100000"}],"reference_answer":"1"}]' >/dev/null || hung=$((hung+1))
  done
  # A plugin file replaced with garbage during a reload, under load: the old version keeps serving.
  "$bin/loadtest" run --target lambda --addr "$http" --reward format_copy --rate 50 -c 16 -d 6 -q --json "$out/reload.json" >/dev/null &
  local reload_load=$!
  sleep 2
  head -c 100000 /dev/urandom > "$work/format-copy.wasm"
  sleep 2
  wait "$reload_load"
  local reload_errors; reload_errors="$(curl -s "http://$http/metrics" | sed -n 's/^reward_reloads_total{outcome="error"} //p')"
  local alive; alive="$(curl -s -o /dev/null -w '%{http_code}' "http://$http/healthz")"
  curl -s "http://$http/metrics" | grep -E '^reward_(queue_wait|work_unit)_seconds_(sum|count)' > "$out/sharing.txt" || true
  stop_server
  # The same math load on a server of one worker: what math alone gets from the worker the
  # hostile reward leaves it.
  cp "$root/target/plugins/format.wasm" "$work/format-copy.wasm"
  start_server "$out/faults-one-worker" --workers 1
  "$bin/loadtest" run --target lambda --addr "$http" --reward math --rate "$rate" --poisson -c 64 -d "$fault_seconds" -q --json "$out/solo-one-worker.json" >/dev/null
  python3 - "$out" "$hung" "${reload_errors:-0}" "$alive" <<'PY'
import json, sys, glob, os
out, hung, reload_errors, alive = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
load = lambda n: json.load(open(os.path.join(out, n)))
solo, beside, reload, one = load("solo.json"), load("beside.json"), load("reload.json"), load("solo-one-worker.json")
p99 = lambda d: d["latency_ms"]["p99"]
hostile = {os.path.basename(p)[8:-5]: load(os.path.basename(p)) for p in glob.glob(os.path.join(out, "hostile-*.json"))}
print(json.dumps({
    "math_p99_ms": {"solo": p99(solo), "solo_one_worker": p99(one), "beside_hostile": p99(beside),
                    "ratio_to_solo": round(p99(beside) / max(p99(solo), 1e-9), 3),
                    "ratio_to_solo_one_worker": round(p99(beside) / max(p99(one), 1e-9), 3)},
    "math_p50_ms": {"solo": solo["latency_ms"]["p50"], "solo_one_worker": one["latency_ms"]["p50"], "beside_hostile": beside["latency_ms"]["p50"]},
    "math_errors": {"solo": solo["requests"]["errors"], "beside_hostile": beside["requests"]["errors"], "solo_one_worker": one["requests"]["errors"]},
    "sharing": open(os.path.join(out, "sharing.txt")).read().splitlines(),
    "hostile_calls": {k: {"sent": v["requests"]["sent"], "ok": v["requests"]["ok"], "statuses": v["rollouts"]["not_ok_by_status"]} for k, v in sorted(hostile.items())},
    "clients_hung_up": hung,
    "reload_with_garbage": {"reload_errors": reload_errors, "calls": reload["requests"]["sent"], "errors": reload["requests"]["errors"]},
    "server_alive": alive,
}, indent=1))
PY
  stop_server
}

case "$what" in
  soak) soak ;;
  faults) faults ;;
  all) faults; soak ;;
  *) echo "usage: scripts/soak.sh [soak|faults|all]" >&2; exit 64 ;;
esac
