#!/usr/bin/env bash
# Assembles ffi/spawn_x86_64.S (GNU as, objcopy from binutils) and prints the machine code as the
# hex string ffi/spawn.ts embeds as RUNNER_X86_64_HEX. tests/spawn_test.ts runs this and compares.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/runner.o" "$here/ffi/spawn_x86_64.S"
objcopy -O binary -j .text "$tmp/runner.o" "$tmp/runner.bin"
od -An -v -tx1 "$tmp/runner.bin" | tr -d ' \n'
echo
