# Sourced by the setup scripts: apt_install WHO PACKAGE... installs the Debian packages named (none:
# nothing), quietly, with sudo when not root; WHO prefixes the one line it prints.
apt_install() {
  local who="$1"
  shift
  [ "$#" -gt 0 ] || return 0
  echo "$who: installing $*" >&2
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
