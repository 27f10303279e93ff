#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test the reward server, then builds the
# built-in plugins. Idempotent: what is already there is not installed again.
#
# - the WebAssembly guest toolchain: rustup's wasm32-unknown-unknown target where it is installed,
#   otherwise Debian's rustc-web + rust-web-src (std for wasm32 is built from source);
#   the linker is always the rustup toolchain's wasm-component-ld (see ../shared/TOOLCHAIN.md);
# - clang 16 and llvm-ar for the C inside the sql plugin (SQLite);
# - componentize-py, for the Python interpreter component (reward-plugins/code/runner).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

need_apt=()
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  for pkg in rustc-web rust-web-src; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
fi
# The sql plugin compiles SQLite's C for wasm32 (sqlite-wasm-rs through the cc crate): clang 16,
# its wasm32 runtime library, lld, and llvm-ar (llvm-16).
for pkg in clang-16 lld-16 libclang-rt-16-dev-wasm32 llvm-16; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# componentize-py (below) comes from PyPI: pip itself may be missing (Debian's python3 without
# python3-pip, as in the Dockerfile's build image).
if ! python3 -c 'import componentize_py' >/dev/null 2>&1 && ! python3 -m pip --version >/dev/null 2>&1; then
  need_apt+=(python3-pip)
fi
# shellcheck source=scripts/apt-install.sh
. "$(dirname "$0")/apt-install.sh"
apt_install setup "${need_apt[@]}"

# componentize-py builds the Python interpreter component (target/plugins/python-runner.wasm); the
# same pin as reward-plugins/python/requirements.txt.
if ! python3 -c 'import componentize_py' >/dev/null 2>&1; then
  echo "setup: installing componentize-py" >&2
  # A Debian python3 is "externally managed" (PEP 668): pip refuses without this; others ignore it.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check componentize-py==0.25.1
fi

"$root/scripts/build-plugins.sh"
