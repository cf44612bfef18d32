#!/usr/bin/env bash
# Assembles ffi/spawn_x86_64.S (or the .S file given, e.g. ffi/log_relay_x86_64.S) with GNU as and
# objcopy from binutils, and prints the machine code as the hex string its TypeScript module embeds
# (RUNNER_X86_64_HEX in ffi/spawn.ts, LOG_RELAY_X86_64_HEX in ffi/log_relay.ts). tests/spawn_test.ts
# and tests/logs_test.ts run this and compare.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$here/ffi/spawn_x86_64.S}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/runner.o" "$src"
objcopy -O binary -j .text "$tmp/runner.o" "$tmp/runner.bin"
od -An -v -tx1 "$tmp/runner.bin" | tr -d ' \n'
echo
