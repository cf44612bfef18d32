#!/usr/bin/env bash
# Builds dist/hako: one standalone executable (Bun's runtime with hako's CLI embedded) made by
# `bun build --compile`. It needs neither Deno, Bun, node_modules nor this checkout at run time:
# `dist/hako run script.ts` strips the script's types with amaro (embedded, WebAssembly inlined)
# and imports it as data: URLs (see src/runner/data_loader.ts).
#
# Works offline: without a --target, Bun compiles for the machine it runs on from its own
# executable. HAKO_TARGET=bun-linux-arm64 (etc.) cross-compiles, which downloads that target's
# runtime unless Bun has it cached. HAKO_OUT=path writes elsewhere than dist/hako.
#
# Beside it, dist/hako-runc: a hard link to the same file (no second copy), which runs `hako oci …`
# when started by that name — runc's command line for `podman --runtime` and containerd's
# `--runc-binary`, with no launcher in between (see hakoArgs in src/cli/main.ts).
#
# Run: npm run build · deno task build · bash tools/build.sh
set -euo pipefail
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd -P)
cd "$root"

bun=$root/node_modules/.bin/bun
if [ ! -x "$bun" ]; then
  bun=$(command -v bun 2>/dev/null) || {
    echo "build: bun not found: run 'npm ci' in $root, or install Bun" >&2
    exit 127
  }
fi
# amaro and es-module-lexer are bundled into the binary: they must be installed.
for dep in amaro es-module-lexer; do
  if [ ! -f "node_modules/$dep/package.json" ]; then
    echo "build: node_modules/$dep is missing: run 'npm ci' first" >&2
    exit 1
  fi
done

out=${HAKO_OUT:-dist/hako}
mkdir -p "$(dirname -- "$out")"
# npm: specifiers are for Deno (see src/container/tarball.ts); the Bun binary uses the bundled bare names.
# --splitting: each command (and amaro, 3.8 MB with its WebAssembly) is a chunk of its own, parsed
# only when used, not at every start (a single-file bundle costs `hako version` ~50 ms more).
# --bytecode: the chunks are stored precompiled for the embedded JavaScriptCore (~3 ms less a start).
# --compile-jit-policy=100: JavaScriptCore's JIT tier-up thresholds raised 100× from the start. A
# command runs once and exits: compiling the code it runs a few times cost it more than it gained
# (`hako-runc run` of a busybox /bin/true: user CPU 26 → 16 ms; see bench/NOTES.md). Hot loops still
# tier up (on-stack replacement); the supervisor, which runs long, sets them back (Host.normalJit).
flags=(--compile --compile-jit-policy=100 --splitting --format=esm --bytecode --external "npm:*")
if [ -n "${HAKO_TARGET:-}" ]; then flags+=("--target=$HAKO_TARGET"); fi

# Build next to the output and rename, so a running dist/hako is never overwritten in place.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
"$bun" build "${flags[@]}" src/cli/main.ts --outfile "$tmp" >/dev/null
mv -f "$tmp" "$out"
trap - EXIT
# The link is made beside the new file and renamed over the old one (a running hako-runc keeps its own).
runc_link="$(dirname -- "$out")/hako-runc"
ln -f "$out" "$runc_link.tmp.$$"
mv -f "$runc_link.tmp.$$" "$runc_link"

size=$(stat -c %s "$out")
if [ -n "${HAKO_TARGET:-}" ]; then
  echo "built $out for $HAKO_TARGET: $((size / 1024 / 1024)) MiB ($size bytes)"
  exit 0
fi
# A smoke test: the binary starts and knows it is compiled.
version=$("$out" version)
case $version in
  *compiled*) ;;
  *)
    echo "build: $out does not report itself as compiled: $version" >&2
    exit 1
    ;;
esac
runc_version=$("$runc_link" --version)
case $runc_version in
  hako-runc*) ;;
  *)
    echo "build: $runc_link does not answer as hako-runc: $runc_version" >&2
    exit 1
    ;;
esac
echo "built $out: $((size / 1024 / 1024)) MiB ($size bytes) — $version; $runc_link (a link to it)"
