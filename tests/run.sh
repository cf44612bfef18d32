#!/usr/bin/env bash
# Runs the test suite under Deno and then under Bun, prints each run's summary, and ends with the
# plain line "N passed, N failed, N skipped" counting both runs. Exits non-zero if either run fails.
# Usage: tests/run.sh [TEST_FILE…]   (default: every tests/*_test.ts; as root for the kernel tests,
#                                      which skip otherwise)
# Environment: RUNTIMES="deno bun" picks the runs; DENO, BUN name the binaries; DENO_TEST_ARGS and
# BUN_TEST_ARGS add flags to one run (e.g. DENO_TEST_ARGS="--filter fork" BUN_TEST_ARGS="-t fork");
# BUN_SKIP="tests/a_test.ts …" is a stopgap that leaves files out of the Bun run only (printed loudly).
# First, tests/setup.sh installs the host packages the tests use when missing (apt, as root) and
# builds dist/hako when the dist tests will run (HAKO_TEST_NO_INSTALL=1: install nothing).
set -uo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-node_modules/.bin/deno}
BUN=${BUN:-node_modules/.bin/bun}
RUNTIMES=${RUNTIMES:-deno bun}
if [ $# -gt 0 ]; then files=("$@"); else files=(tests/*_test.ts); fi
bash tests/setup.sh "${files[@]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

total_passed=0 total_failed=0 total_skipped=0 status=0 skips="" summaries=""

# The controllers on a cgroup v1 hierarchy of their own that no mount shows: a hierarchy a test
# mounted and left behind (one whose cgroups were still dying at its umount outlives it), which
# takes its controller from cgroup2 on a hybrid host until someone mounts and unmounts it again.
unmounted_v1() {
  awk 'NR > 1 && $2 != 0 { print $1 }' /proc/cgroups | while read -r c; do
    awk -v c="$c" '$0 ~ / - cgroup / { n = split($NF, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) f = 1 }
      END { exit f ? 1 : 0 }' /proc/self/mountinfo && echo "$c"
  done
}
v1_before=$(unmounted_v1)

# record RUNTIME RC PASSED FAILED SKIPPED: adds one run's counts (a run without a summary failed).
record() {
  local name=$1 rc=$2 passed=$3 failed=$4 skipped=$5
  if [ -z "$passed$failed" ]; then
    echo "tests/run.sh: the $name run printed no summary (exit $rc)" >&2
    passed=0 failed=1 skipped=${skipped:-0}
  fi
  passed=${passed:-0} failed=${failed:-0} skipped=${skipped:-0}
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
  [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] || status=1
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
  summaries+="$name: $passed passed, $failed failed, $skipped skipped"$'\n'
}

for runtime in $RUNTIMES; do
  case $runtime in
  deno)
    printf '\n== deno test (%s)\n' "$("$DENO" --version | head -n 1)"
    # --single-threaded: no V8 helper threads, so a forked child can never wait on one (see ffi/fork.ts).
    DENO_V8_FLAGS=--single-threaded,--expose-gc "$DENO" test -A --no-prompt ${DENO_TEST_ARGS:-} "${files[@]}" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
    summary=$(printf '%s\n' "$plain" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
    record deno "$rc" \
      "$(printf '%s' "$summary" | sed -nE 's/.* ([0-9]+) passed.*/\1/p')" \
      "$(printf '%s' "$summary" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')" \
      "$(printf '%s' "$summary" | sed -nE 's/.* ([0-9]+) ignored.*/\1/p')"
    ;;
  bun)
    printf '\n== bun test (bun %s)\n' "$("$BUN" --version)"
    bun_files=()
    for f in "${files[@]}"; do
      if [[ " ${BUN_SKIP:-} " == *" $f "* ]]; then
        echo "!! tests/run.sh: NOT RUN UNDER BUN (BUN_SKIP): $f"
        skips+="SKIP (bun) $f: listed in BUN_SKIP"$'\n'
        continue
      fi
      # bun test treats an argument as a path (not a name filter) only when it starts with ./ or /.
      case $f in /* | ./*) bun_files+=("$f") ;; *) bun_files+=("./$f") ;; esac
    done
    # The BUN_JSC_* options keep JavaScriptCore's GC and JIT on the main thread, so a forked child
    # can never wait on a helper thread (ffi/fork.ts: BUN_SINGLE_THREADED_ENV).
    BUN_JSC_useConcurrentGC=0 BUN_JSC_numberOfGCMarkers=1 BUN_JSC_useConcurrentJIT=0 \
      BUN_JSC_useParallelMarkingConstraintSolver=0 BUN_JSC_useWarmUpMarkedBlocks=0 \
      "$BUN" test ${BUN_TEST_ARGS:-} "${bun_files[@]}" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    plain=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
    count() { printf '%s\n' "$plain" | sed -nE "s/^ *([0-9]+) $1\$/\\1/p" | tail -n 1; }
    todo=$(count todo)
    skipped=$(count skip)
    [ -n "$skipped$todo" ] && skipped=$((${skipped:-0} + ${todo:-0}))
    record bun "$rc" "$(count pass)" "$(count fail)" "$skipped"
    ;;
  *)
    echo "tests/run.sh: unknown runtime '$runtime' in RUNTIMES" >&2
    record "$runtime" 1 0 1 0
    continue
    ;;
  esac
  skips+=$(printf '%s\n' "$plain" | grep -E '^SKIP ' || true)$'\n'
done

# No leaks: whatever the tests made must be gone (cgroups, mounts, processes named hako-test…).
leaks=$(
  find /sys/fs/cgroup -maxdepth 3 -type d -iname 'hako*' 2>/dev/null
  grep -i hako /proc/self/mountinfo 2>/dev/null | awk '{print "mount " $5}'
  ps -eo pid=,args= 2>/dev/null | grep -E '[h]ako-(test|demo)' | sed 's/^/process /'
  # (a hierarchy destroyed a moment after its umount is not one: looked at again after a second)
  if [ -n "$(comm -13 <(printf '%s\n' "$v1_before" | sort) <(unmounted_v1 | sort))" ]; then sleep 1; fi
  comm -13 <(printf '%s\n' "$v1_before" | sort) <(unmounted_v1 | sort) | grep . |
    sed 's/^/a cgroup v1 hierarchy mounted nowhere, with the controller /'
)
if [ -n "$leaks" ]; then
  printf '\n!! tests/run.sh: the suite left these behind:\n%s\n' "$leaks"
  total_failed=$((total_failed + 1))
  status=1
else
  total_passed=$((total_passed + 1))
  summaries+="no leftovers: no hako cgroups, mounts, processes or unmounted v1 hierarchies after the suite"$'\n'
fi

echo
printf '%s' "$skips" | grep -v '^$' | sort -u || true
printf '%s' "$summaries"
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$status"
