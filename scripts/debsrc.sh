# scripts/debsrc.sh: sourced by the scripts that build from Debian's source packages
# (test-cluster.sh: kubernetes; build-curl.sh: curl; build-openssl.sh: openssl).
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

# debsrc_fetch PKG DIR: Debian's source of PKG (apt-get source, Debian's patches applied)
# unpacked in DIR; prints its directory, or says why not on stderr and returns 1
debsrc_fetch() {
  local pkg=$1 dir=$2 me src
  me=$(basename "$0" .sh)
  enable_deb_src
  printf '%s: apt-get source %s in %s\n' "$me" "$pkg" "$dir" >&2
  if ! (cd "$dir" && apt-get source -qq "$pkg" >"$dir/source.log" 2>&1); then
    printf "%s: apt-get source %s failed (deb-src for Debian's archive is needed; %s): %s\n" \
      "$me" "$pkg" "$dir/source.log" "$(tail -3 "$dir/source.log")" >&2
    return 1
  fi
  src=$(find "$dir" -maxdepth 1 -type d -name "$pkg-*" | head -1)
  [ -n "$src" ] || { printf '%s: no %s source directory after apt-get source in %s\n' "$me" "$pkg" "$dir" >&2; return 1; }
  echo "$src"
}
