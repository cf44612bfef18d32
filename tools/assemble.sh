#!/usr/bin/env bash
# Assembles a native runner with GNU as and objcopy from binutils, and prints its machine code as
# the hex string its TypeScript module embeds:
#   tools/assemble.sh                          ffi/spawn_x86_64.S  → RUNNER_X86_64_HEX (ffi/spawn.ts)
#   tools/assemble.sh ffi/spawn_aarch64.S      → RUNNER_AARCH64_HEX (ffi/spawn.ts)
#   tools/assemble.sh ffi/log_relay_x86_64.S   → LOG_RELAY_X86_64_HEX (ffi/log_relay.ts)
# The architecture comes from the file name (…_aarch64.S, else x86-64); the tools are the host's own
# as and objcopy where the host is that architecture, else the cross binutils
# (binutils-aarch64-linux-gnu's aarch64-linux-gnu-as, binutils-x86-64-linux-gnu's x86_64-linux-gnu-as).
# The .S files include
# ffi/_op_layout.inc (tools/gen_op_layout.ts). tests/spawn_test.ts and tests/logs_test.ts run this
# and compare.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
src=${1:-$here/ffi/spawn_x86_64.S}
case $src in
*_aarch64.S) arch=aarch64 flags=() ;;
*) arch=x86_64 flags=(--64) ;;
esac
if [ "$(uname -m)" = "$arch" ]; then
  as=(as "${flags[@]}") objcopy=objcopy
else
  as=("$arch-linux-gnu-as" "${flags[@]}") objcopy=$arch-linux-gnu-objcopy
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${as[@]}" -I "$here/ffi" -o "$tmp/runner.o" "$src"
"$objcopy" -O binary -j .text "$tmp/runner.o" "$tmp/runner.bin"
od -An -v -tx1 "$tmp/runner.bin" | tr -d ' \n'
echo
