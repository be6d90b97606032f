#!/usr/bin/env bash
# tests/bench/smaps_sampler.sh OUT [BINDIR]: every 3 s until killed, one line per sample in
# OUT: the seconds since the start, then per stage heap/anon/file/other, the Rss in kB of its
# [heap], of its other anonymous mappings, of its file-backed mappings and of the rest
# (stack, vdso), from /proc/PID/smaps. Only processes whose executable is BINDIR/vmpoold
# (or BINDIR/<stage>) count (two benchmarks on one machine). Run it beside tests/bench/bench_scale.sh to see
# what a stage's peak is made of.
set -u
out=$1 bindir=${2:-}
t0=$(date +%s)
pick() {
	local p exe
	for p in $(pgrep -x "$1"); do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null)
		# a stage runs BINDIR/vmpoold under its own name (a link), or its own executable
		if [ -z "$bindir" ] || [ "$exe" = "$bindir/$1" ] || [ "$exe" = "$bindir/vmpoold" ]; then
			echo "$p"
			return
		fi
	done
}
while :; do
	line="$(($(date +%s) - t0))"
	for s in vmpool-watcher vmpool-planner vmpool-actuator vmpool-status; do
		p=$(pick "$s")
		if [ -n "$p" ]; then
			a=$(awk '/^[0-9a-f]+-/ {name = $6; if (name == "") name = "anon"}
				/^Rss:/ {if (name == "[heap]") h += $2; else if (name == "anon") a += $2;
					else if (name ~ /^\//) f += $2; else o += $2}
				END {printf "%d/%d/%d/%d", h, a, f, o}' "/proc/$p/smaps" 2>/dev/null)
		else
			a=-
		fi
		line="$line ${s#vmpool-}=$a"
	done
	echo "$line" >>"$out"
	sleep 3
done
