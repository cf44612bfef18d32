#!/usr/bin/env bash
# The forked-path lane: the container (and its options), exec and spawn tests (and the escape attempts) run again with
# HAKO_NATIVE_SPAWN=0, so every container, exec and Process.spawn takes the forked child
# (src/container/setup.ts run in a fork of the runtime) instead of the native syscall program —
# the path a spec with a provision hook, a veth or mounts under /proc, /sys or /dev always takes,
# and the one a non-x86-64 host takes for everything. Under both runtimes, through tests/run.sh
# (which passes the environment on), ending with the same summary line.
# Usage: tests/fork_lane.sh [TEST_FILE…]   (default: the files below; as root, or the kernel tests skip)
# A test that compares both paths sets HAKO_NATIVE_SPAWN itself for each case and restores it.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  files=("$@")
else
  files=(tests/container_test.ts tests/container_options_test.ts tests/exec_test.ts tests/spawn_test.ts tests/escape_test.ts)
fi
echo "== forked-path lane: HAKO_NATIVE_SPAWN=0 ${files[*]}"
HAKO_NATIVE_SPAWN=0 exec bash tests/run.sh "${files[@]}"
