#!/usr/bin/env python3
"""tests/bench/memset.py PID...: the memory a set of processes holds together.

Prints "DISTINCT_KB ANON_KB FILE_KB": the resident pages of all of them, each physical page
counted once (a shared library's page mapped by five processes is one page, as the memory
cgroup of the pod they share is charged), split into anonymous and file-backed. Reads the
physical frame numbers from /proc/PID/pagemap, which only root sees: without them (or when a
process is gone) it prints nothing and exits 1.
"""
import struct
import sys

PAGE_KB = 4
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1


def frames(pid):
    """yields (pfn, anonymous) for every resident page of pid"""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pm:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if path == "[vsyscall]":
                continue
            anon = path == "" or path.startswith("[")
            pm.seek(lo // 4096 * 8)
            data = pm.read((hi - lo) // 4096 * 8)
            for (entry,) in struct.iter_unpack("<Q", data):
                if entry & PRESENT:
                    yield entry & PFN_MASK, anon


def main():
    seen = {}
    try:
        for pid in sys.argv[1:]:
            for pfn, anon in frames(pid):
                seen[pfn] = anon
    except OSError:
        return 1
    if not seen or 0 in seen:  # no frame numbers: not root
        return 1
    anon = sum(1 for a in seen.values() if a)
    try:
        print(len(seen) * PAGE_KB, anon * PAGE_KB, (len(seen) - anon) * PAGE_KB)
    except BrokenPipeError:  # the reader went (the benchmark stopped sampling)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
