# scripts/debsrc.sh: sourced by the scripts that build from Debian's source packages
# (test-cluster.sh: kubernetes; build-curl.sh: curl).
# shellcheck shell=bash

# enable_deb_src: add deb-src lines for the archive the machine already uses for binaries
# (once per machine; apt-get update after)
enable_deb_src() {
  local f=/etc/apt/sources.list.d/vmpoold-src.sources
  [ -f "$f" ] && return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  printf '%s: enabling deb-src for Debian'"'"'s sources\n' "$(basename "$0")" >&2
  # the same archives the machine already uses for binaries
  local uris
  uris=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)
  [ -n "$uris" ] || uris=http://deb.debian.org/debian
  local suite
  suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  $sudo tee "$f" >/dev/null <<SRC
Types: deb-src
URIs: $uris
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $sudo apt-get update -qq
}
