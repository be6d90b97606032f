#!/usr/bin/env bash
# A lean static OpenSSL for the programs' libcurl (issue 9, memory), built from
# Debian's own openssl source (apt-get source openssl, Debian's patches applied by
# dpkg-source) with only what a TLS client of the Kubernetes API needs, and every function
# and object in its own section (-ffunction-sections -fdata-sections), so that the
# programs' -Wl,--gc-sections keeps only what is reached. Debian's libcrypto.a is built
# without them: a program linking it keeps every function of every object file it touches.
#
#   scripts/build-openssl.sh build PREFIX  configure, make build_libs, install_dev into PREFIX
#                                          (scripts/build-curl.sh calls it: OPENSSL=lean, the
#                                          default)
#
# (build-curl.sh puts this script's hash, so its options and steps, in its cache directory's
# name: a change here builds a new one)
#
# What is kept: TLS 1.2 and 1.3 (client and server code: libssl has no client-only option),
# X.509 verification (IP-address SANs included), RSA, EC (P-256/P-384/P-521, x25519,
# Ed25519/Ed448), AES (GCM, CBC, CTR...), ChaCha20-Poly1305, SHA-1/SHA-2/SHA-3, HMAC, HKDF,
# the error strings, the configuration file (/usr/lib/ssl/openssl.cnf, Debian's openssldir,
# a link to /etc/ssl/openssl.cnf) and Debian's target (debian-amd64: security level 2,
# -fzero-call-used-regs=used-gpr) and its hardening flags (dpkg-buildflags).
# What is left out: SSL 3, TLS 1.0/1.1, DTLS, SRP, PSK, engines, modules (the providers are
# built in), DSO, deprecated APIs, compression, OCSP, CMS, CMP, TS, CT, SRTP, NPN, DH and DSA
# keys, DES, and the legacy algorithms (MD2/MD4/MDC2/RMD160/Whirlpool, RC2/RC4/RC5, IDEA,
# SEED, Blowfish, CAST, Camellia, ARIA, SM2/SM3/SM4, GOST), binary-field curves, SipHash,
# scrypt, BLAKE2, SIV, OCB, CMAC, async, ui-console, file names in error records.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

log() { printf 'build-openssl: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

osslopts=(
  no-shared no-tests no-module no-dso no-engine no-legacy no-deprecated
  no-ssl3 no-ssl3-method no-tls1 no-tls1-method no-tls1_1 no-tls1_1-method
  no-dtls no-dgram no-sctp no-srp no-psk no-srtp no-nextprotoneg no-ssl-trace
  no-comp no-zlib no-ocsp no-cms no-cmp no-ts no-ct no-rfc3779
  no-dh no-dsa no-des no-ec2m no-sm2 no-sm3 no-sm4 no-gost
  no-md2 no-md4 no-mdc2 no-rmd160 no-whirlpool no-blake2
  no-rc2 no-rc4 no-rc5 no-idea no-seed no-bf no-cast no-camellia no-aria
  no-siphash no-scrypt no-siv no-ocb no-cmac
  no-async no-ui-console no-filenames no-uplink no-capieng no-padlockeng no-afalgeng
  no-devcryptoeng no-loadereng no-multiblock no-rdrand
)

build() {
  local prefix=$1 work src arch
  work=$(mktemp -d "${TMPDIR:-/tmp}/vmpoold-openssl.XXXXXX")
  src=$(debsrc_fetch openssl "$work") || exit 1
  arch=$(dpkg --print-architecture)
  log "building a lean static OpenSSL from $src into $prefix"
  unset MAKEFLAGS MFLAGS MAKELEVEL
  mkdir -p "$work/build"
  (
    cd "$work/build"
    # Debian's target, paths and hardening flags (CFLAGS replaces the target's -O3 as
    # Debian's build does), plus a section per function and per object
    CFLAGS="$(dpkg-buildflags --get CFLAGS) -ffunction-sections -fdata-sections" \
      CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
      "$src/Configure" --prefix="$prefix" --openssldir=/usr/lib/ssl --libdir=lib \
      "${osslopts[@]}" "debian-$arch" >"$work/configure.log" 2>&1 ||
      { tail -20 "$work/configure.log" >&2; die "Configure failed ($work/configure.log)"; }
    # without debugging information, as Debian ships its libcrypto.a (dh_strip): it is not
    # loaded at run time, but doubled vmpoold on disk (17.1 against 8.1 MB) and in the image
    { make -j"${JOBS:-$(nproc)}" build_libs && make install_dev &&
      strip --strip-debug "$prefix/lib/libcrypto.a" "$prefix/lib/libssl.a"; } >"$work/make.log" 2>&1 ||
      { tail -20 "$work/make.log" >&2; die "make failed ($work/make.log)"; }
    perl configdata.pm -o -d >"$prefix/configdata.txt" 2>/dev/null || true
  )
  echo "openssl source: $(basename "$src") $(sed -n 's/^Version: //p' "$work"/openssl_*.dsc)" >"$prefix/VERSIONS"
  rm -rf "$work"
}

# shellcheck source=scripts/debsrc.sh
. "$here/debsrc.sh"

case ${1:-} in
build) [ -n "${2:-}" ] || die "usage: $0 build PREFIX"; build "$2" ;;
*) die "usage: $0 build PREFIX" ;;
esac
