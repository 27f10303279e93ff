#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test the reward server, then builds the
# built-in plugins. Idempotent: what is already there is not installed again.
#
# - the WebAssembly guest toolchain: rustup's wasm32-unknown-unknown target where it is installed,
#   otherwise Debian's rustc-web + rust-web-src (std for wasm32 is built from source);
#   the linker is always the rustup toolchain's wasm-component-ld (see ../shared/TOOLCHAIN.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

need_apt=()
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  for pkg in rustc-web rust-web-src; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
  done
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

"$root/scripts/build-plugins.sh"
