#!/usr/bin/env bash
# Makes a fresh machine ready for the test suite, so that the README's `npm ci && sudo npm test`
# needs nothing installed by hand. tests/run.sh runs it first, with the test files it will run.
#
#  1. The host packages the tests use, from apt, only those missing (dpkg-query says which; when
#     nothing is missing this runs no apt-get at all and prints nothing):
#       busybox-static  the rootfs most kernel tests build (src/container/rootfs.ts, "busybox")
#       iproute2        `ip`, in the network tests and the demo's host rootfs
#       tini            /usr/bin/tini-static, what `--init` binds at /dev/init
#       gcc libc6-dev   static probes the attack tests compile (escape, seccomp, tty, network)
#       binutils        as and objcopy, which tests/spawn_test.ts assembles the native runner with
#       python3         the pty the terminal tests give the CLI
#       libseccomp2     libseccomp, which the seccomp tests compare hako's filters with
#       procps          `ps`, for the demo's host rootfs and tests/run.sh's leak check
#       podman          only when tests/oci_test.ts runs: podman drives hako as its OCI runtime
#       podman uidmap   when tests/oci_rootless_test.ts runs: rootless podman (newuidmap) drives dist/hako-runc
#       binutils-aarch64-linux-gnu  when tests/spawn_test.ts, spawn_aarch64_test.ts, fork_test.ts or
#                       log_relay_aarch64_test.ts runs: the aarch64 assembler the byte checks need (under CI=true
#                       that check fails, not skips, without it; on an aarch64 host, x86-64's instead)
#       gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static  when tests/spawn_aarch64_test.ts or
#                       fork_test.ts runs (not on an aarch64 host): the static harness that runs the aarch64 runner
#                       (and the aarch64 fork pass)
#                       under user-mode emulation (qemu-user-static: log_relay_aarch64_test.ts too)
#       libcap2-bin xz-utils  with podman, when tests/image_test.ts runs: it builds test images offline
#       containerd      only when tests/oci_ctr_test.ts runs: containerd (ctr) drives hako as its runc
#       zsh fish        only when tests/cli_more_test.ts runs: it checks the completion scripts' syntax
#       runc            only when tests/oci_hooks_test.ts runs: what it compares hako's OCI hooks with
#  2. dist/hako (tools/build.sh), when tests/dist_test.ts or oci_rootless_test.ts will run and the binary is missing or
#     older than its sources (dist_test.ts builds it too; this does it once, up front, and says so).
#
# One line per thing it does. It never fails the run: when it cannot install (not root, no
# apt-get, offline) it says so, and the tests that need the missing thing skip, saying why.
#
# Usage: tests/setup.sh [TEST_FILE…]   (no files: the whole suite)
# Environment: HAKO_TEST_NO_INSTALL=1 installs nothing (dist/hako is still built when needed);
#   HAKO_TEST_DEPS_DRY_RUN=1 only prints what it would do.
set -uo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(busybox-static iproute2 tini gcc libc6-dev binutils python3 libseccomp2 procps)

# True when the test files (none: the whole suite) include one of the given names.
runs_test() {
  local want=$1 f
  shift
  [ $# -eq 0 ] && return 0
  for f in "$@"; do
    case $f in "$want" | "./$want" | */"$want") return 0 ;; esac
  done
  return 1
}
if runs_test tests/oci_test.ts "$@"; then PACKAGES+=(podman); fi
if runs_test tests/oci_rootless_test.ts "$@"; then PACKAGES+=(podman uidmap); fi
if runs_test tests/spawn_test.ts "$@" || runs_test tests/spawn_aarch64_test.ts "$@" ||
  runs_test tests/log_relay_aarch64_test.ts "$@" || runs_test tests/fork_test.ts "$@"; then
  # (the other architecture's assembler: on an aarch64 host, x86-64's)
  if [ "$(uname -m)" = aarch64 ]; then PACKAGES+=(binutils-x86-64-linux-gnu); else PACKAGES+=(binutils-aarch64-linux-gnu); fi
fi
if { runs_test tests/spawn_aarch64_test.ts "$@" || runs_test tests/fork_test.ts "$@"; } && [ "$(uname -m)" != aarch64 ]; then
  PACKAGES+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
fi
if runs_test tests/log_relay_aarch64_test.ts "$@" && [ "$(uname -m)" != aarch64 ]; then PACKAGES+=(qemu-user-static); fi
# tests/image_test.ts builds its images offline with podman (and setcap/getcap, xz for its layers)
if runs_test tests/image_test.ts "$@"; then PACKAGES+=(podman libcap2-bin xz-utils); fi
if runs_test tests/oci_ctr_test.ts "$@"; then PACKAGES+=(containerd); fi
if runs_test tests/cli_more_test.ts "$@"; then PACKAGES+=(zsh fish); fi
if runs_test tests/oci_hooks_test.ts "$@"; then PACKAGES+=(runc); fi
dry=${HAKO_TEST_DEPS_DRY_RUN:-}
say() { echo "tests/setup.sh: $*"; }

# ---- 1. host packages ----------------------------------------------------------------------------

# The last error or warning apt printed.
last_error() { grep -E '^(E|W): ' "$1" | tail -n 1; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

install_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "not Debian or Ubuntu (no dpkg-query/apt-get): installing nothing; tests that need busybox-static, tini, gcc, python3 … skip if those are missing"
    return 0
  fi
  local missing=() p
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0 # the fast path: nothing to do, nothing printed
  if [ -n "${HAKO_TEST_NO_INSTALL:-}" ]; then
    say "HAKO_TEST_NO_INSTALL is set: not installing ${missing[*]}; the tests that need them skip"
    return 0
  fi
  if [ -n "$dry" ]; then
    say "would run: apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "not root: cannot install ${missing[*]} (run the suite with sudo); the tests that need them skip"
    return 0
  fi
  say "installing ${missing[*]} (apt-get)"
  local log
  log=$(mktemp)
  # A fresh VM often runs unattended-upgrades at boot: wait for its dpkg lock rather than fail.
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300)
  local install=("${apt[@]}" install -y -qq --no-install-recommends)
  if ! "${apt[@]}" update -qq >"$log" 2>&1; then
    say "apt-get update failed (offline? $(last_error "$log")); the tests that need ${missing[*]} skip"
  elif "${install[@]}" "${missing[@]}" >>"$log" 2>&1; then
    say "installed ${missing[*]}"
  else
    # A package apt does not know (e.g. tini outside Ubuntu's universe) fails the whole install:
    # then once more without the ones it named, so the others still come.
    local unknown=() rest=()
    mapfile -t unknown < <(sed -nE "s/^E: Unable to locate package (.+)\$/\1/p; s/^E: Package '([^']+)' has no installation candidate\$/\1/p" "$log")
    for p in "${missing[@]}"; do [[ " ${unknown[*]} " == *" $p "* ]] || rest+=("$p"); done
    if [ ${#unknown[@]} -gt 0 ] && [ ${#rest[@]} -gt 0 ] && "${install[@]}" "${rest[@]}" >>"$log" 2>&1; then
      say "installed ${rest[*]}; apt-get does not know ${unknown[*]}; the tests that need them skip"
    else
      say "apt-get could not install ${missing[*]} (offline? $(last_error "$log")); the tests that need them skip"
    fi
  fi
  rm -f "$log"
}

# ---- 2. dist/hako --------------------------------------------------------------------------------

dist_wanted() { runs_test tests/dist_test.ts "$@" || runs_test tests/oci_rootless_test.ts "$@"; }

# True when dist/hako is missing or older than a source it is built from (dist_test.ts's rule).
dist_stale() {
  [ -e dist/hako ] || return 0
  local p
  for p in src ffi mod.ts package.json tools/build.sh; do
    [ -e "$p" ] || continue
    [ -n "$(find "$p" \( -name '*.ts' -o -name '*.json' -o -path tools/build.sh \) -newer dist/hako -print -quit)" ] &&
      return 0
  done
  return 1
}

build_dist() {
  dist_wanted "$@" && dist_stale || return 0
  local why="missing"
  [ -e dist/hako ] && why="older than its sources"
  if [ -n "$dry" ]; then
    say "would build dist/hako ($why): bash tools/build.sh"
    return 0
  fi
  say "building dist/hako ($why): bash tools/build.sh"
  local out
  if out=$(bash tools/build.sh 2>&1); then
    say "${out##*$'\n'}"
  else
    say "tools/build.sh failed: ${out##*$'\n'} (tests/dist_test.ts says why it skips or fails)"
  fi
}

install_packages
build_dist "$@"
exit 0
