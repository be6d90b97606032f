#!/usr/bin/env bash
# tests/image/test_image.sh [ARCHIVE]: checks the image that `make image` wrote (default
# build/vmpoold-image.oci.tar): unpacked with umoci, its files are exactly the programs (a
# link in bin/ a link to the same name), the
# libraries ldd names for the dynamic ones with their loader (none for static programs,
# make's default), the CA bundle, /etc/passwd and /etc/group; its
# config runs as 65532:65532 and carries the org.opencontainers.image.* labels with the
# version git describes; every program runs inside the root file system alone (chroot as
# 65532 when root, else a static program as it is and a dynamic one through the image's own
# loader with only the image's libraries).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
archive=${1:-build/vmpoold-image.oci.tar}
programs=(vmpoold vmpool-watcher vmpool-planner vmpool-actuator vmpool-status vmpoolctl)
ca=/etc/ssl/certs/ca-certificates.crt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 failed=0

check() { # NAME CMD...
	local name=$1; shift
	if "$@" >"$tmp/out" 2>&1; then
		pass=$((pass + 1)); echo "ok   image/$name"
	else
		failed=$((failed + 1)); echo "FAIL image/$name"; sed 's/^/     /' "$tmp/out" | tail -15
	fi
}

unpacked() { bash tests/image/unpack.sh "$archive" "$tmp/img"; }

# the image config blob (manifest -> config)
config() {
	local oci=$tmp/img/oci m
	m=$(jq -r '.manifests[0].digest' "$oci/index.json" | sed 's/sha256://')
	jq -r '.config.digest' "$oci/blobs/sha256/$m" | sed 's/sha256://' |
		{ read -r c; cat "$oci/blobs/sha256/$c"; }
}

expected_files() {
	{
		for p in "${programs[@]}"; do
			echo "/usr/local/bin/$p"
			ldd "bin/$p" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
		done
		printf '%s\n' "$ca" /etc/passwd /etc/group
	} | sort -u
}

files_exact() {
	local have want
	have=$(cd "$tmp/img/rootfs" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
	want=$(expected_files)
	[ "$have" == "$want" ] || { diff <(echo "$want") <(echo "$have"); return 1; }
	# nothing but directories besides those files
	[ -z "$(cd "$tmp/img/rootfs" && find . ! -type f ! -type l ! -type d)" ] || return 1
	local p
	for p in "${programs[@]}"; do # the stages: links to vmpoold, as in bin/
		[ "$(readlink "$tmp/img/rootfs/usr/local/bin/$p")" = "$(readlink "bin/$p")" ] ||
			{ echo "/usr/local/bin/$p: link '$(readlink "$tmp/img/rootfs/usr/local/bin/$p")', bin/$p: '$(readlink "bin/$p")'"; return 1; }
	done
}

libs_same() { # the copies are the host's files, byte for byte
	local f
	for f in $(expected_files); do
		case $f in /etc/passwd | /etc/group) continue ;; /usr/local/bin/*) src=bin/${f##*/} ;; *) src=$f ;; esac
		cmp -s "$src" "$tmp/img/rootfs$f" || { echo "$f differs from $src"; return 1; }
	done
}

user_65532() {
	local c; c=$(config)
	[ "$(echo "$c" | jq -r .config.User)" == "65532:65532" ] || { echo "user: $(echo "$c" | jq .config.User)"; return 1; }
	grep -qx 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' "$tmp/img/rootfs/etc/passwd" &&
		grep -qx 'nonroot:x:65532:' "$tmp/img/rootfs/etc/group"
}

labels() {
	local c want rev
	c=$(config)
	want=$(git describe --always --dirty)
	rev=$(git rev-parse HEAD)
	echo "$c" | jq -e --arg v "$want" --arg r "$rev" '.config.Labels as $l |
		$l["org.opencontainers.image.version"] == $v and
		$l["org.opencontainers.image.revision"] == $r and
		$l["org.opencontainers.image.title"] == "vmpoold" and
		($l["org.opencontainers.image.created"] | test("^[0-9]{4}-"))' >/dev/null ||
		{ echo "want version $want revision $rev; labels: $(echo "$c" | jq -c .config.Labels)"; return 1; }
}

# PROGRAM -h inside the image: usage on stdout, exit 0
runs() {
	local p r=$tmp/img/rootfs
	for p in "${programs[@]}"; do
		if [ "$(id -u)" -eq 0 ]; then
			chroot --userspec=65532:65532 "$r" "/usr/local/bin/$p" -h >"$tmp/usage" 2>&1 ||
				{ echo "$p -h failed in chroot"; return 1; }
		elif ! ldd "bin/$p" 2>/dev/null | grep -q '=>'; then # static
			env -i "$r/usr/local/bin/$p" -h >"$tmp/usage" 2>&1 || { echo "$p -h failed"; return 1; }
		else
			"$r/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$r/lib/x86_64-linux-gnu" \
				"$r/usr/local/bin/$p" -h >"$tmp/usage" 2>&1 || { echo "$p -h failed"; return 1; }
		fi
		grep -q "^usage: $p" "$tmp/usage" || { echo "$p -h: $(head -2 "$tmp/usage")"; return 1; }
	done
}

# bad input: an archive that is not an image is refused with a clear message
bad_archive() {
	echo junk >"$tmp/junk.tar"
	! bash tests/image/unpack.sh "$tmp/junk.tar" "$tmp/junk" 2>"$tmp/err" && [ -s "$tmp/err" ]
}

if check unpack unpacked; then
	check files_exact files_exact
	check libs_same libs_same
	check user_65532 user_65532
	check labels labels
	check runs runs
fi
check bad_archive bad_archive
echo "image: $pass passed, $failed failed"
[ "$failed" -eq 0 ]
