#!/usr/bin/env bash
# make image: the vmpoold container image, built offline with Debian's umoci (no daemon, no
# base image, nothing pulled) and written as an OCI archive.
#
#   scripts/build-image.sh [OUT]     default OUT: build/vmpoold-image.oci.tar
#
# Content, nothing else: the programs in /usr/local/bin (bin/, built by `make all`: vmpoold,
# with the stages as links to it, and vmpoolctl; static programs by default, make
# LINK=static), the shared libraries the dynamic ones load (from ldd: none for static
# programs) and the dynamic loader at the paths ldd names,
# /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with user and group
# nonroot (65532). Config: user 65532:65532, entrypoint /usr/local/bin/vmpoold, labels
# org.opencontainers.image.* with the version from `git describe --always --dirty`.
# Push it with: skopeo copy oci-archive:build/vmpoold-image.oci.tar docker://REGISTRY/vmpoold:TAG
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
out=${1:-build/vmpoold-image.oci.tar}
work=build/image
programs=(vmpoold vmpool-watcher vmpool-planner vmpool-actuator vmpool-status vmpoolctl)
ca=/etc/ssl/certs/ca-certificates.crt

die() { echo "build-image: $*" >&2; exit 1; }

command -v umoci >/dev/null || die "umoci is missing: run scripts/install-deps.sh"
for p in "${programs[@]}"; do [ -x "bin/$p" ] || die "bin/$p is missing: run make all"; done
[ -r "$ca" ] || die "$ca is missing: install ca-certificates"

version=$(git describe --always --dirty 2>/dev/null || echo unknown)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# the commit time, not the build time, so that a rebuild of a commit gives the same labels
created=$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
tag=$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '_')

rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)

rm -rf "$work"
mkdir -p "$work"
umoci init --layout "$work/oci"
umoci new --image "$work/oci:$tag"
umoci unpack "${rootless[@]}" --image "$work/oci:$tag" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs

# PATH: the source file's path, copied (links resolved) to the same path in the rootfs
put() { # SRC DEST MODE
	install -D -m "$3" "$1" "$rootfs$2"
}

# a program that is a link in bin/ (the stages, links to vmpoold) is the same link here, so
# the containers share one file's pages
for p in "${programs[@]}"; do
	if [ -L "bin/$p" ]; then
		mkdir -p "$rootfs/usr/local/bin"
		ln -s "$(readlink "bin/$p")" "$rootfs/usr/local/bin/$p"
	else
		put "bin/$p" "/usr/local/bin/$p" 0755
	fi
done
# every library ldd resolves for a dynamic program, plus the loader (the line without
# "=>"), at ldd's path; a static program ("statically linked") needs none
dynamic=0 libs=""
for p in "${programs[@]}"; do
	if ldd "bin/$p" 2>/dev/null | grep -q '=>'; then
		dynamic=$((dynamic + 1))
		libs+=$(ldd "bin/$p" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')$'\n'
	fi
done
libs=$(printf '%s' "$libs" | sed '/^$/d' | sort -u)
[ "$dynamic" -eq 0 ] || [ -n "$libs" ] || die "ldd found no libraries for the dynamic programs"
for l in $libs; do put "$l" "$l" 0755; done
put "$ca" "$ca" 0644
mkdir -p "$rootfs/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

umoci repack --image "$work/oci:$tag" --history.created_by "scripts/build-image.sh $version" \
	"$work/bundle"
label() { printf -- '--config.label=org.opencontainers.image.%s=%s\n' "$1" "$2"; }
mapfile -t labels < <(
	label title vmpoold
	label description "Kubernetes controller for KubeVirt VirtualMachinePools (four stages, one pod)"
	label version "$version"
	label revision "$revision"
	label created "$created"
)
umoci config --image "$work/oci:$tag" --config.user 65532:65532 \
	--config.entrypoint /usr/local/bin/vmpoold --config.workingdir / \
	--config.env PATH=/usr/local/bin "${labels[@]}" --created "$created" \
	--history.created_by "umoci config"
umoci gc --layout "$work/oci"

# an OCI archive is the image layout as a tar (what skopeo's oci-archive: transport reads)
mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$created" \
	-C "$work/oci" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "build-image: $out (vmpoold:$tag, $(du -k "$out" | cut -f1) KB, ${#programs[@]} programs, $(printf '%s' "$libs" | grep -c .) libraries)"
