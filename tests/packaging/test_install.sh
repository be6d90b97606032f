#!/usr/bin/env bash
# Packaging test (issue 11 item 7), no root and no network: make install into a DESTDIR
# (default PREFIX and a distribution's PREFIX=/usr), the installed programs run (--version,
# --help, a bad flag exits 78, the installed vmpoold finds its installed stages), the man
# pages pass groff's warnings and man finds them, the systemd unit passes systemd-analyze
# verify (else a check of its key lines), CPPFLAGS/LDFLAGS reach every compile and link,
# -Werror only with WERROR=1, and make uninstall leaves no file behind.
set -u
cd "$(dirname "$0")/../.."
T=$(mktemp -d /tmp/test_install.XXXXXX)
trap 'rm -rf "$T"' EXIT
# the make that runs this test (make check WERROR=1, say) must not hand its variables down:
# these checks are about what a plain make does
unset MAKEFLAGS MFLAGS MAKELEVEL WERROR
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
no() { fail=$((fail + 1)); echo "FAIL: $*"; }
mk() { make --no-print-directory "$@" >"$T/make.log" 2>&1 || { cat "$T/make.log" >&2; return 1; }; }

PROGS="vmpoold vmpool-watcher vmpool-planner vmpool-actuator vmpool-status vmpoolctl"
VERSION=$(sed -n 's/^#define VMPOOL_VERSION "\(.*\)"/\1/p' common/cli.h)

# files (not directories) under a tree, relative, sorted
files() { (cd "$1" && find . \( -type f -o -type l \) | sed 's|^\./||' | sort); }
expected() { # PREFIX-relative bindir man8dir unitdir
	for p in $PROGS; do echo "$1/$p"; done
	for p in $PROGS; do echo "$2/$p.8"; done
	echo "$3/vmpoold.service"
}

# --- 1. default PREFIX (/usr/local) under DESTDIR, then uninstall
D=$T/local
if mk install DESTDIR="$D"; then
	if [ "$(files "$D")" = "$(expected usr/local/bin usr/local/share/man/man8 usr/local/lib/systemd/system | sort)" ]; then
		ok "make install DESTDIR: programs, man pages and unit under /usr/local"
	else
		no "make install DESTDIR: unexpected files: $(files "$D" | tr '\n' ' ')"
	fi
	grep -qx "ExecStart=/usr/local/bin/vmpoold --run-dir %t/vmpoold --kubeconfig %d/kubeconfig \$VMPOOLD_ARGS" \
	    "$D/usr/local/lib/systemd/system/vmpoold.service" && ok "unit: ExecStart names the installed bindir" ||
	    no "unit: ExecStart: $(grep ExecStart "$D/usr/local/lib/systemd/system/vmpoold.service")"
	mk uninstall DESTDIR="$D" && [ -z "$(files "$D")" ] && ok "make uninstall leaves no file" ||
	    no "make uninstall left: $(files "$D" | tr '\n' ' ')"
else
	no "make install DESTDIR=$D failed"
fi

# --- 2. a distribution's layout: PREFIX=/usr, the installed programs run from there
D=$T/usr
mk install DESTDIR="$D" PREFIX=/usr || no "make install PREFIX=/usr failed"
B=$D/usr/bin
[ "$(files "$D")" = "$(expected usr/bin usr/share/man/man8 usr/lib/systemd/system | sort)" ] &&
    ok "PREFIX=/usr: /usr/bin, /usr/share/man/man8, /usr/lib/systemd/system" ||
    no "PREFIX=/usr: unexpected files: $(files "$D" | tr '\n' ' ')"
for p in $PROGS; do
	out=$(timeout 10 "$B/$p" --version 2>&1)
	[ $? -eq 0 ] && [ "$out" = "$p $VERSION" ] && ok "$p --version: $out" || no "$p --version: '$out'"
	timeout 10 "$B/$p" --help >"$T/help" 2>&1
	rc=$?
	[ $rc -eq 0 ] && grep -q "usage: $p" "$T/help" && ok "$p --help exits 0" || no "$p --help: exit $rc"
	want=78
	[ "$p" = vmpoolctl ] && want=2 # a command-line tool, not a stage (vmpoolctl(8))
	timeout 10 "$B/$p" --no-such-flag >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq $want ] && ok "$p --no-such-flag exits $rc" || no "$p --no-such-flag: exit $rc, want $want"
done
# the stages are links to vmpoold, which runs the program its name says and refuses others
for p in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
	[ -L "$B/$p" ] && [ "$(readlink "$B/$p")" = vmpoold ] && ok "$p: a link to vmpoold" ||
	    no "$p: not a link to vmpoold ($(ls -l "$B/$p" 2>&1))"
done
ln -s vmpoold "$B/vmpool-bogus"
timeout 10 "$B/vmpool-bogus" --help >/dev/null 2>"$T/err"
rc=$?
[ $rc -eq 78 ] && grep -q "started as 'vmpool-bogus'" "$T/err" && ok "vmpoold under another name exits 78" ||
    no "vmpoold as vmpool-bogus: exit $rc: $(cat "$T/err")"
rm -f "$B/vmpool-bogus"
for p in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
	timeout 10 "$B/$p" --v=x >/dev/null 2>"$T/err"
	rc=$?
	[ $rc -eq 78 ] && grep -q 'bad value for --v' "$T/err" && ok "$p --v=x exits 78" || no "$p --v=x: exit $rc"
done
# the installed supervisor starts the installed stages: each refuses the kubeconfig (78),
# so vmpoold exits 78 without restarting them
mkdir -m 700 "$T/run"
timeout 30 "$B/vmpoold" --kubeconfig "$T/no-such-kubeconfig" --run-dir "$T/run" >/dev/null 2>"$T/sv.log"
rc=$?
[ $rc -eq 78 ] && grep -q "$B/vmpool-watcher" "$T/sv.log" &&
    ok "installed vmpoold runs the installed stages, exits 78 on a bad kubeconfig" ||
    no "installed vmpoold: exit $rc: $(tail -3 "$T/sv.log")"

# --- 3. man pages: no groff warning, man renders and finds each
M=$D/usr/share/man
for p in $PROGS; do
	f=$M/man8/$p.8
	w=$(groff -man -ww -z "$f" 2>&1)
	[ -z "$w" ] && ok "$p.8: groff -man -ww: no warning" || no "$p.8: groff: $w"
	MANWIDTH=80 man -l "$f" 2>/dev/null | grep -q '^NAME' && ok "$p.8: man -l renders it" || no "$p.8: man -l"
	[ "$(MANPATH=$M man -w "$p" 2>/dev/null)" = "$f" ] && ok "$p.8: man finds it in the installed mandir" ||
	    no "$p.8: MANPATH=$M man -w $p: $(MANPATH=$M man -w "$p" 2>&1)"
done
# the control case: a page with a broken request is caught
printf '.TH X 8\n.SH NAME\nx \\- y\n.BOGUS z\n' >"$T/bad.8"
[ -n "$(groff -man -ww -z "$T/bad.8" 2>&1)" ] && ok "groff -ww catches a bad page" || no "groff -ww missed a bad page"

# --- 4. the systemd unit
U=$D/usr/lib/systemd/system/vmpoold.service
for line in "RestartPreventExitStatus=78" "RuntimeDirectory=vmpoold" "RuntimeDirectoryMode=0700" \
    "ExecStart=/usr/bin/vmpoold --run-dir %t/vmpoold --kubeconfig %d/kubeconfig \$VMPOOLD_ARGS" \
    "KillMode=mixed" "Restart=on-failure"; do
	grep -qxF -- "$line" "$U" && ok "unit: $line" || no "unit lacks $line"
done
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify needs the ExecStart binary and the Documentation man page: point both at DESTDIR
	mkdir -p "$T/sd"
	sed "s|=/usr/bin/|=$B/|" "$U" >"$T/sd/vmpoold.service"
	MANPATH=$M timeout 60 systemd-analyze verify "$T/sd/vmpoold.service" >"$T/verify" 2>&1 &&
	    ok "systemd-analyze verify: clean" || no "systemd-analyze verify: $(cat "$T/verify")"
	sed "s|=/usr/bin/vmpoold|=$T/nonexistent|" "$U" >"$T/sd/vmpoold.service"
	MANPATH=$M timeout 60 systemd-analyze verify "$T/sd/vmpoold.service" >/dev/null 2>&1 &&
	    no "systemd-analyze verify missed a missing ExecStart" || ok "systemd-analyze verify catches a missing ExecStart"
else
	echo "(systemd-analyze not installed: the unit's key lines only)"
fi
mk uninstall DESTDIR="$D" PREFIX=/usr && [ -z "$(files "$D")" ] && ok "PREFIX=/usr: make uninstall leaves no file" ||
    no "PREFIX=/usr: make uninstall left: $(files "$D" | tr '\n' ' ')"

# --- 5. CPPFLAGS, LDFLAGS and WERROR reach every command (make -n: nothing is built)
make --no-print-directory -n -B all CPPFLAGS=-DPKG_TEST_CPP LDFLAGS=-Wl,-z,pkgtest >"$T/n" 2>&1
compiles=$(grep -cE '^(cc|gcc|clang)\b.* -c ' "$T/n")
links=$(grep -cE '^(cc|gcc|clang)\b.* -o bin/' "$T/n")
[ "$compiles" -gt 20 ] && [ "$(grep -E '^(cc|gcc|clang)\b.* -c ' "$T/n" | grep -vc -- -DPKG_TEST_CPP)" -eq 0 ] &&
    ok "CPPFLAGS in all $compiles compiles" || no "CPPFLAGS missing from some of $compiles compiles"
# three links: vmpoold (the supervisor and the four stages, which are links to it), vmpoolctl
# and the simulator
[ "$links" -eq 3 ] && [ "$(grep -E '^(cc|gcc|clang)\b.* -o bin/' "$T/n" | grep -vc -- -Wl,-z,pkgtest)" -eq 0 ] &&
    ok "LDFLAGS in all $links links" || no "LDFLAGS missing from some of $links links"
! grep -q -- -Werror "$T/n" && ok "no -Werror by default" || no "-Werror without WERROR=1"
make --no-print-directory -n -B all WERROR=1 2>&1 | grep -E '^(cc|gcc|clang)\b.* -c ' | grep -vq -- -Werror &&
    no "WERROR=1: a compile without -Werror" || ok "WERROR=1: -Werror in every compile"

# the hot functions first (Makefile LLD=yes where lld is, DESIGN.md "Hot code first"): a
# static bin/vmpoold is linked by lld, and the first 300 functions supervisor/vmpoold.order
# names that it has all lie in the first quarter of its text
mk bin/vmpoold || no "make bin/vmpoold failed"
if ! readelf -lW bin/vmpoold | grep -q INTERP && command -v ld.lld >/dev/null; then
	readelf -p .comment bin/vmpoold | grep -q 'Linker: .*LLD' && ok "bin/vmpoold linked by lld" ||
		no "bin/vmpoold not linked by lld though the machine has it"
	far=$(python3 - bin/vmpoold supervisor/vmpoold.order <<'PY'
import subprocess, sys
exe, order = sys.argv[1], sys.argv[2]
sec = [l.split() for l in subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True).stdout.splitlines()]
t0, size = next((int(f[i + 2], 16), int(f[i + 4], 16)) for f in sec for i in range(len(f)) if f[i] == ".text")
addr = {}
for line in subprocess.run(["nm", "--defined-only", exe], capture_output=True, text=True).stdout.splitlines():
    f = line.split()
    if len(f) == 3 and f[1] in "tTwW":
        addr.setdefault(f[2], int(f[0], 16))
names = [n for n in (l.strip() for l in open(order)) if n and not n.startswith("#") and n in addr][:300]
print(sum(1 for n in names if addr[n] >= t0 + size // 4) if len(names) == 300 else "too few names")
PY
)
	[ "$far" = 0 ] && ok "the hot functions first: the order file's first 300 in the first quarter of the text" ||
		no "the hot functions first: $far of the order file's first 300 functions beyond the first quarter of the text"
else
	echo "skip: the hot functions first (a static link with lld only)"
fi

echo "packaging: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
