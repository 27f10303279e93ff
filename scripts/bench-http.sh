#!/usr/bin/env bash
# HTTP throughput and latency of the Nova Lambda endpoint under wrk: batches of 64 rollouts of
# 2 KB through the `math` reward (format + numeric answer). The score cache is off, so every
# rollout is scored. Prints the machine's core count, requests/s, rollouts/s and latency
# percentiles per concurrency level.
#
# Usage: scripts/bench-http.sh [DURATION_SECONDS] [CONNECTIONS...]   (defaults: 15, 4 16 64)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${1:-15}"; shift || true
levels=("$@"); [ "${#levels[@]}" -gt 0 ] || levels=(4 16 64)
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cd "$root"
cargo build --release -p reward-server --quiet
[ -f target/plugins/format.wasm ] || scripts/build-plugins.sh
mkdir -p target/bench
payload=target/bench/lambda-64x2k.json
python3 bench/make_payload.py 64 2048 "$payload"
target/release/reward-server serve --http-addr 127.0.0.1:18080 --grpc-addr 127.0.0.1:15051 \
  --cache-entries 0 --watch-interval-ms 0 > target/bench/server.log 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening target/bench/server.log && break; sleep 0.1; done
url=http://127.0.0.1:18080/v1/rewards/math/lambda
curl -sf "$url" -H 'content-type: application/json' --data-binary @"$payload" | python3 -c \
  'import json,sys; r=json.load(sys.stdin); assert len(r)==64 and all(x["aggregate_reward_score"]==1.0 for x in r[::3]), r[:2]'
echo "cores: $(nproc); payload: 64 rollouts, $(stat -c %s "$payload") bytes; reward: math; cache: off"
for c in "${levels[@]}"; do
  out=$(wrk -t2 -c"$c" -d"${duration}s" -s bench/lambda.lua "$url" -- "$payload")
  rps=$(echo "$out" | awk '/^requests\/s/ {print $2}')
  echo "connections $c: $(echo "$out" | grep -E '^requests/s' ) rollouts/s $(python3 -c "print(round($rps*64))")"
  echo "$out" | grep -E '^p(50|90|99) ' | sed 's/^/    /'
done
