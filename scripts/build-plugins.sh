#!/usr/bin/env bash
# Builds the guest plugins in reward-plugins/ to WebAssembly components and copies them to
# target/plugins/NAME.wasm. Uses rustup's wasm32-unknown-unknown target where it is installed;
# otherwise Debian's rustc-web with build-std (see ../shared/TOOLCHAIN.md; scripts/setup.sh
# installs it). Either way the linker is the rustup toolchain's wasm-component-ld, so the output
# is already a component.
#
# The Python interpreter component (reward-plugins/code/runner, world `program-runner` in
# reward-plugins/wit/programs.wit) is built with componentize-py to target/plugins/python-runner.wasm,
# only when its .py files or the WIT files are newer than the output (componentize takes ~15 s).
# With `-p CRATE` arguments it is built only when one of them is `-p python-runner` (a pseudo-crate:
# it is not passed to cargo; `-p python-runner` alone builds nothing else).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/reward-plugins"

nargs=$#
want_runner=0
cargo_args=()
if [ "$#" -eq 0 ]; then
  want_runner=1
else
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -p|--package)
        if [ "${2:-}" = python-runner ]; then want_runner=1; shift 2; continue; fi
        cargo_args+=("$1" ${2+"$2"})
        shift; [ "$#" -eq 0 ] || shift
        continue ;;
      -ppython-runner|--package=python-runner) want_runner=1 ;;
      *) cargo_args+=("$1") ;;
    esac
    shift
  done
fi

build_runner() {
  local src="$root/reward-plugins/code/runner" wit="$root/reward-plugins/wit"
  local dest="$root/target/plugins/python-runner.wasm"
  mkdir -p "$root/target/plugins"
  if [ -f "$dest" ] && [ -z "$(find "$src" -maxdepth 1 -name '*.py' -newer "$dest"; find "$wit" -name '*.wit' -newer "$dest")" ]; then
    echo "build-plugins: python-runner.wasm is up to date" >&2
    return
  fi
  local tool=()
  if command -v componentize-py >/dev/null 2>&1; then
    tool=(componentize-py)
  elif python3 -c 'import componentize_py' >/dev/null 2>&1; then
    tool=(python3 -m componentize_py)
  else
    echo "build-plugins: componentize-py is not installed: run scripts/setup.sh" >&2
    exit 1
  fi
  local tmp
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/python-runner.XXXXXX")"
  # The component bundles every file of its Python path: only the runner's modules go in (not
  # tests/ or __pycache__).
  mkdir -p "$tmp/app"
  cp "$src"/*.py "$tmp/app/"
  "${tool[@]}" -d "$wit" -w program-runner bindings "$tmp/bindings" >/dev/null
  if ! "${tool[@]}" -d "$wit" -w program-runner componentize --stub-wasi \
      -p "$tmp/app" -p "$tmp/bindings" app -o "$tmp/python-runner.wasm"; then
    rm -rf "$tmp"
    exit 1
  fi
  mv "$tmp/python-runner.wasm" "$dest"
  rm -rf "$tmp"
}

# `-p python-runner` alone: the runner, no Rust build.
if [ "$nargs" -gt 0 ] && [ "${#cargo_args[@]}" -eq 0 ]; then
  build_runner
  ls -l "$root/target/plugins"
  exit 0
fi

host_sysroot="$(rustc --print sysroot)"
lld_dir="$host_sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin"
[ -x "$lld_dir/wasm-component-ld" ] || { echo "build-plugins: no wasm-component-ld in $lld_dir" >&2; exit 1; }
shim="$root/target/wasm-ld-shim"
mkdir -p "$shim"
ln -sf "$lld_dir/rust-lld" "$shim/wasm-ld"   # wasm-component-ld looks for wasm-ld on PATH
export PATH="$shim:$PATH"
# simd128: memchr and regex use wasm SIMD for substring search (wasmtime enables SIMD by default).
export RUSTFLAGS="-C linker=$lld_dir/wasm-component-ld -C target-feature=+simd128"
export CARGO_TARGET_DIR="$root/target/guests"
# C inside guests (SQLite in the sql plugin, through sqlite-wasm-rs and the cc crate): clang 16
# with its wasm32 runtime, and an llvm-ar (scripts/setup.sh installs them).
wasm_cc="${CC_wasm32_unknown_unknown:-$(command -v clang-16 || command -v clang || true)}"
wasm_ar="${AR_wasm32_unknown_unknown:-$(command -v llvm-ar-16 || command -v llvm-ar || true)}"
if [ -z "$wasm_cc" ] || [ -z "$wasm_ar" ]; then
  echo "build-plugins: no clang-16 / llvm-ar for the C in the sql plugin: run scripts/setup.sh" >&2
  exit 1
fi
export CC_wasm32_unknown_unknown="$wasm_cc" AR_wasm32_unknown_unknown="$wasm_ar"
# clang 16 targets wasm32 without bulk memory, so SQLite's memcpy/memset were calls into a
# byte-loop memcpy in the guest; with it they are `memory.copy`/`memory.fill`, which wasmtime runs
# as native memmove/memset (wasmtime and Rust's wasm32 target both have bulk memory on by
# default). Measured: 8.3 % fewer instructions per SQL pair (BENCHMARKS.md, SQL reward).
export CFLAGS_wasm32_unknown_unknown="-mbulk-memory ${CFLAGS_wasm32_unknown_unknown:-}"

build() {
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    cargo build --release --target wasm32-unknown-unknown "$@"
  elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
      cargo build --release -Zbuild-std=std,panic_abort --target wasm32-unknown-unknown "$@"
  else
    echo "build-plugins: no wasm32 standard library: run scripts/setup.sh (installs rustc-web and rust-web-src)" >&2
    exit 1
  fi
}
# format-loop embeds the format plugin without that plugin's exports, and the group plugin
# (reward-group) embeds the format and math plugins the same way, so each builds on its own, and
# first: building them also writes a reward_format.wasm (reward_math.wasm) without exports, which a
# build of the format (math) plugin itself puts right. Built together with those plugins, cargo
# would unify their features and link the embedded plugins' exports into the embedding one. With
# no arguments: format-loop, the group plugin, then every other member of the workspace (the
# plugins and the limits guest). With arguments (`-p CRATE ...`): what they name (name
# reward-group in its own invocation), then the format and math plugins again, so
# target/plugins/format.wasm and math.wasm are never the export-less ones.
if [ "$nargs" -eq 0 ]; then
  build -p format-loop
  build -p reward-group
  build --workspace --exclude format-loop --exclude reward-group
else
  build "${cargo_args[@]}"
  build -p reward-format -p reward-math
fi

out="$root/target/plugins"
mkdir -p "$out"
for wasm in "$CARGO_TARGET_DIR"/wasm32-unknown-unknown/release/*.wasm; do
  name="$(basename "$wasm" .wasm)"
  name="${name#reward_}"
  cp "$wasm" "$out/${name//_/-}.wasm"
done
[ "$want_runner" -eq 0 ] || build_runner
ls -l "$out"
