#!/usr/bin/env bash
# Runs the whole test suite and ends with the plain line "N passed, N failed, N skipped".
# Usage: tests/run.sh [deno test args…]   (as root for the kernel tests; they skip otherwise)
set -uo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-node_modules/.bin/deno}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --single-threaded: no V8 helper threads, so a forked child can never wait on one (see ffi/fork.ts).
DENO_V8_FLAGS=--single-threaded,--expose-gc "$DENO" test -A --no-prompt "$@" tests/ 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
summary=$(printf '%s\n' "$plain" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
passed=$(printf '%s' "$summary" | sed -nE 's/.* ([0-9]+) passed.*/\1/p')
failed=$(printf '%s' "$summary" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
skipped=$(printf '%s' "$summary" | sed -nE 's/.* ([0-9]+) ignored.*/\1/p')
echo
printf '%s\n' "$plain" | grep -E '^SKIP ' | sort -u || true
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
if [ -z "$summary" ]; then echo "tests/run.sh: the test run printed no summary (exit $rc)" >&2; exit 1; fi
[ "$rc" -eq 0 ] && [ "${failed:-0}" -eq 0 ]
