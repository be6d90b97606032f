#!/usr/bin/env bash
# Installs what vmpoold needs to build, test and run: the C libraries, the test tools and
# the toolchain for the local control plane. libcurl is built from Debian's curl source
# (scripts/build-curl.sh: dpkg-dev for apt-get source, and the static libraries it links:
# libssl-dev, libnghttp2-dev, zlib1g-dev); `make CURL=system` needs libcurl4-openssl-dev.
# clang and libclang-rt-dev (on bookworm it brings libclang-rt-14-dev, whose
# libclang_rt.fuzzer is libFuzzer's runtime) build the fuzz targets; lld links the static
# programs with their hot functions first (Makefile LLD, supervisor/vmpoold.order).
# wrk measures the API server's raw VM create and delete limits in make bench (not in make test).
# groff-base and man-db check the man pages (tests/packaging; systemd-analyze is used if there).
# prometheus brings promtool, which the e2e case metrics_scrape checks the /metrics pages with.
# Idempotent: installs only what is missing.
set -euo pipefail

pkgs=(
  build-essential pkg-config
  libevent-dev libssl-dev libmsgpack-dev libjson-c-dev libcmocka-dev libyaml-dev
  libnghttp2-dev zlib1g-dev
  clang-format
  clang libclang-rt-dev lld
  curl openssl ca-certificates procps jq yq python3
  etcd-server golang-go golang-github-modern-go-reflect2-dev
  dpkg-dev rsync
  groff-base man-db
  umoci skopeo buildah
  wrk
  prometheus
)
# kubectl: whatever the machine has, else Debian's (same 1.20 line as the test cluster)
command -v kubectl >/dev/null 2>&1 || pkgs+=(kubernetes-client)

# kustomize v2.0.3, as kubectl 1.20 embeds it, for tests/deploy when the machine's kubectl is
# newer: Debian's kubernetes-client unpacked into the cache (not installed: it would clash)
kubectl_120() {
	local dir=${XDG_CACHE_HOME:-$HOME/.cache}/vmpoold/kubectl-1.20 tmp
	[ -x "$dir/kubectl" ] && return 0
	kubectl version --client 2>/dev/null | grep -q 'v1\.20\.' && return 0
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq kubernetes-client >/dev/null 2>&1) ||
		{ echo "install-deps: apt-get download kubernetes-client failed (tests/deploy uses one kustomize only)" >&2; rm -rf "$tmp"; return 0; }
	dpkg -x "$tmp"/kubernetes-client_*.deb "$tmp/root"
	mkdir -p "$dir"
	cp "$tmp/root/usr/bin/kubectl" "$dir/kubectl"
	rm -rf "$tmp"
}

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { kubectl_120; exit 0; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
kubectl_120
