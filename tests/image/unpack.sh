#!/usr/bin/env bash
# tests/image/unpack.sh ARCHIVE DIR: unpack the one image of an OCI archive (make image) with
# umoci; DIR/rootfs is its root file system, DIR/config.json the runtime config umoci wrote,
# DIR/oci the image layout.
set -euo pipefail
archive=$1 dir=$2
[ -f "$archive" ] || { echo "unpack: $archive not found (make image)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir/oci"
tar -xf "$archive" -C "$dir/oci"
tag=$(umoci ls --layout "$dir/oci")
[ "$(printf '%s\n' "$tag" | wc -l)" -eq 1 ] && [ -n "$tag" ] ||
	{ echo "unpack: want one image in $archive, found: $tag" >&2; exit 1; }
rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)
umoci unpack "${rootless[@]}" --image "$dir/oci:$tag" "$dir/bundle" >/dev/null
mv "$dir/bundle/rootfs" "$dir/rootfs"
mv "$dir/bundle/config.json" "$dir/config.json"
rm -rf "$dir/bundle"
