#!/usr/bin/env bash
# The libcurl the HTTP stages link (DESIGN.md, "Which libcurl"): Debian's own curl source
# (apt-get source curl, with Debian's patches and ours, scripts/curl-patches/*.patch), built
# once per machine as a static library with only what vmpoold uses, and cached like the
# Kubernetes binaries. The Makefile calls it;
# a fresh machine needs only scripts/install-deps.sh first.
#
#   scripts/build-curl.sh dir      print the cache directory for this configuration
#   scripts/build-curl.sh build    build into it unless it is already there
#   scripts/build-curl.sh libs     print the link flags (after build)
#
# What is kept: HTTP/1.1, HTTP/2 (nghttp2, ALPN), HTTPS on OpenSSL 3 (static, like nghttp2
# and zlib), gzip/deflate answers (zlib), proxies (kubeconfig proxy-url http, https and
# socks5, and HTTPS_PROXY/NO_PROXY from the environment, as client-go honours them), Basic
# auth for proxies, the threaded resolver, the headers API. Left out: every other protocol,
# Unix sockets, IDN, PSL, brotli, zstd, GSS-API/Kerberos, NTLM, digest, LDAP, SSH, RTMP,
# cookies, alt-svc, HSTS, DoH, MIME, netrc. CURL_TLS=mbedtls builds on mbedTLS instead, for
# comparison only: bookworm's 2.28 cannot check an IP address in a server certificate (it
# fails on https://127.0.0.1 and in-cluster on the service IP) and has no TLS 1.3.
#
# The directory's name holds a hash of the options (REV, CURL_TLS, configure's), of our
# patches and of the installed versions of curl and of the libraries it links, so a curl, mbedTLS, OpenSSL,
# nghttp2 or zlib update (apt-get upgrade) makes the next `make` build a new one and relink.
# Environment: VMPOOLD_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/vmpoold), CURL_TLS
# (mbedtls or openssl), OPENSSL (lean, the default: scripts/build-openssl.sh builds a
# TLS-client-only static OpenSSL from Debian's openssl source into the same cache directory
# first, and curl links that; debian: Debian's own libssl.a and libcrypto.a), CURL_SRC (an
# unpacked curl source tree to build instead of apt-get source's, for a test: it is copied,
# then patched).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${VMPOOLD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmpoold}
tls=${CURL_TLS:-openssl}
ossl=${OPENSSL:-lean}

log() { printf 'build-curl: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

case $tls in
mbedtls) tlsdev=libmbedtls-dev; tlsopt=--with-mbedtls ;;
openssl) tlsdev=libssl-dev; tlsopt=--with-openssl ;;
*) die "CURL_TLS=$tls: mbedtls or openssl" ;;
esac
devs=("$tlsdev" libnghttp2-dev zlib1g-dev)
case $ossl in
debian) ;;
lean)
  # (mbedTLS has no lean variant: OPENSSL concerns CURL_TLS=openssl only)
  if [ "$tls" = openssl ]; then tls=openssl-lean devs+=(perl); fi ;;
*) die "OPENSSL=$ossl: lean or debian" ;;
esac

confopts=(
  --disable-shared --enable-static --disable-dependency-tracking --disable-silent-rules
  "$tlsopt" --with-nghttp2 --with-zlib
  --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs
  --enable-http --enable-proxy --enable-threaded-resolver --enable-headers-api --enable-ipv6
  --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict
  --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp
  --disable-gopher --disable-mqtt --disable-websockets --disable-unix-sockets
  --disable-cookies --disable-alt-svc --disable-hsts --disable-doh --disable-mime
  --disable-netrc --disable-ntlm --disable-ntlm-wb --disable-crypto-auth --disable-tls-srp
  --disable-libcurl-option --disable-manual --disable-get-easy-options
  --without-libidn2 --without-libpsl --without-brotli --without-zstd --without-gssapi
  --without-libssh2 --without-libssh --without-librtmp --without-libgsasl
  --without-hyper --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3
  --without-zsh-functions-dir --without-fish-functions-dir
)

# the installed versions of what goes into the build ("-" for one that is missing)
versions() {
  local p v
  for p in libcurl4 "${devs[@]}"; do
    v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || v=-
    printf '%s=%s ' "$p" "${v:--}"
  done
  # the lean OpenSSL: its script (options and steps); its source is apt-get source's, which an
  # upgrade of libssl-dev above stands for, as libcurl4's does for curl's
  if [ "$tls" = openssl-lean ]; then
    printf 'build-openssl=%s ' "$(sha256sum <"$here/build-openssl.sh" | cut -c1-12)"
  fi
  return 0
}

# our changes to curl's source, applied in this order after Debian's (each one says why)
patches=("$here"/curl-patches/*.patch)

# what makes a build differ: change REV with the build steps below (3: a section per
# function and per object, so that a static link keeps only what it reaches and can put the
# functions vmpoold runs together: scripts/hot-order.sh)
REV=3
cache_dir() {
  local key
  key=$(printf '%s\n' "$REV" "$tls" "${confopts[*]}" "$(versions)" "$(cat "${patches[@]}")" |
    sha256sum | cut -c1-12)
  printf '%s/curl-%s-%s\n' "$cache" "$tls" "$key"
}

# the link flags of the result: libcurl.a and its dependencies' .a (the machine also has
# their shared libraries, which -l alone would pick), the system libraries as they are
libs() {
  local d f out=()
  d=$(cache_dir)
  [ -f "$d/.built" ] || die "$d is not built: scripts/build-curl.sh build"
  for f in $(PKG_CONFIG_PATH=$d/lib/pkgconfig pkg-config --static --libs libcurl); do
    [[ " ${out[*]} " == *" $f "* || " ${out[*]} " == *" -l:lib${f#-l}.a "* ||
      " ${out[*]} " == *"/openssl/lib/lib${f#-l}.a "* ]] && continue
    case $f in
    -L*) ;;
    -lcurl) out+=("$d/lib/libcurl.a") ;;
    -lssl | -lcrypto)
      if [ "$tls" = openssl-lean ]; then out+=("$d/openssl/lib/lib${f#-l}.a"); else out+=("-l:lib${f#-l}.a"); fi ;;
    -lpthread | -ldl | -lrt | -lm | -lc | -pthread) out+=("$f") ;;
    -l*) out+=("-l:lib${f#-l}.a") ;;
    *) out+=("$f") ;;
    esac
  done
  echo "${out[@]}"
}

build() {
  local d work src p missing=()
  d=$(cache_dir)
  [ -f "$d/.built" ] && return 0
  mkdir -p "$cache"
  # one build at a time (two worktrees, make -j): the second waits and finds it done
  exec 9>"$d.lock"
  flock 9
  [ -f "$d/.built" ] && return 0
  for p in "${devs[@]}" dpkg-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || die "${missing[*]} missing: run scripts/install-deps.sh (make deps)"
  work=$(mktemp -d "${TMPDIR:-/tmp}/vmpoold-curl.XXXXXX")
  if [ -n "${CURL_SRC:-}" ]; then
    src=$work/$(basename "$CURL_SRC")
    cp -a "$CURL_SRC" "$src"
  else
    src=$(debsrc_fetch curl "$work") || exit 1
  fi
  for p in "${patches[@]}"; do
    patch -p1 -N -s -d "$src" <"$p" >"$work/patch.log" 2>&1 ||
      die "$(basename "$p") does not apply to $(basename "$src") ($work/patch.log): $(tail -3 "$work/patch.log")"
  done
  log "building a static libcurl ($tls) from $src into $d (once per machine: under a minute, and about 2 more for a lean OpenSSL)"
  # not the flags of the make that called us (make test's -B and WERROR=1, a CFLAGS=...)
  unset MAKEFLAGS MFLAGS MAKELEVEL
  rm -rf "$d"
  mkdir -p "$work/build"
  local withssl=$tlsopt
  if [ "$tls" = openssl-lean ]; then
    local t0=$SECONDS
    JOBS=${JOBS:-$(nproc)} bash "$here/build-openssl.sh" build "$d/openssl" ||
      die "the lean OpenSSL did not build"
    log "lean OpenSSL built in $((SECONDS - t0)) s"
    withssl=--with-openssl=$d/openssl
  fi
  (
    cd "$work/build"
    # curl's configure as shipped: Debian's changes to configure.ac concern the GnuTLS and
    # NSS flavours, LDAP, GSS-API and zsh, all left out here, so no autoreconf is needed
    # (AM_MAINTAINER_MODE: make does not try to regenerate it)
    CFLAGS="$(dpkg-buildflags --get CFLAGS) -ffunction-sections -fdata-sections" \
      CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
      "$src/configure" --prefix="$d" "${confopts[@]/#$tlsopt/$withssl}" >"$work/configure.log" 2>&1 ||
      { tail -20 "$work/configure.log" >&2; die "configure failed ($work/configure.log)"; }
    { make -C lib -j"${JOBS:-$(nproc)}" && make -C lib install && make -C include install &&
      make install-binSCRIPTS install-pkgconfigDATA; } >"$work/make.log" 2>&1 ||
      { tail -20 "$work/make.log" >&2; die "make failed ($work/make.log)"; }
  )
  { echo "source: $(basename "$src") $(sed -n 's/^Version: //p' "$work"/curl_*.dsc 2>/dev/null)"
    echo "patches: $(basename -a "${patches[@]}" | tr '\n' ' ')"
    versions; echo; } >"$d/VERSIONS"
  cp "$work/build/lib/curl_config.h" "$d/curl_config.h"
  touch "$d/.built"
  rm -rf "$work"
  log "cached in $d: $("$d/bin/curl-config" --version), $("$d/bin/curl-config" --features | tr '\n' ' ')"
}

# shellcheck source=scripts/debsrc.sh
. "$here/debsrc.sh"

case ${1:-} in
dir) cache_dir ;;
build) build ;;
libs) libs ;;
*) die "usage: $0 dir|build|libs" ;;
esac
