#!/usr/bin/env bash
# Fails when a C file differs from what clang-format (.clang-format) makes of it.
set -u
[ $# -gt 0 ] || exit 0
command -v clang-format >/dev/null || { echo "check-format: clang-format missing" >&2; exit 1; }
bad=0
for f in "$@"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "check-format: $f is not formatted (run: make format)" >&2
    bad=1
  fi
done
exit $bad
