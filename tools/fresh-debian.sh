#!/usr/bin/env bash
# Runs a command on a fresh Debian 12 — a debootstrap minbase (no busybox, ps, ip, gcc, tini nor
# python3) with this checkout's HEAD at /root/hako and the host's node and npm — to check that the
# README's commands need nothing installed by hand. The default command is the README's two,
# without sudo (it runs as root): npm ci && npm run demo, then npm ci && npm test.
#
# It runs in a private mount namespace, pivoted into the tree (not chrooted: the kernel refuses
# user namespaces to a chrooted process), with /proc, /sys (the cgroups) and /dev of the host, so
# the kernel tests run; nothing it mounts is seen outside. The tree is kept for the next run.
#
# Usage: sudo tools/fresh-debian.sh [--offline] [DIR] [-- COMMAND]
#   DIR        where the Debian tree goes (default /var/tmp/hako-fresh-debian); made if missing
#   --offline  run COMMAND without a network (a namespace with loopback only): tests/setup.sh
#              cannot install, and the tests that need what is missing must skip, saying why
# Needs root, debootstrap (apt-get install debootstrap) and the network for the tree and npm ci.
set -euo pipefail
here=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd -P)
net=()
if [ "${1:-}" = --offline ]; then
  net=(--net)
  shift
fi
dir=/var/tmp/hako-fresh-debian
if [ $# -gt 0 ] && [ "$1" != -- ]; then
  dir=$1
  shift
fi
[ "${1:-}" = -- ] && shift
command=${*:-"npm ci && npm run demo && npm ci && npm test"}

[ "$(id -u)" -eq 0 ] || {
  echo "fresh-debian: needs root" >&2
  exit 1
}
command -v debootstrap >/dev/null || {
  echo "fresh-debian: needs debootstrap (apt-get install debootstrap)" >&2
  exit 1
}

if [ ! -e "$dir/etc/debian_version" ]; then
  echo "fresh-debian: debootstrap --variant=minbase bookworm $dir"
  debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$dir.debootstrap.log" 2>&1 || {
    echo "fresh-debian: debootstrap failed, see $dir.debootstrap.log" >&2
    exit 1
  }
fi

# Node and npm as the host has them (the README asks for npm): the node binary and npm's package.
node=$(command -v node)
npm_root=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
cp "$node" "$dir/usr/bin/node"
mkdir -p "$dir/usr/lib/node_modules"
rm -rf "$dir/usr/lib/node_modules/npm"
cp -a "$npm_root" "$dir/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/bin/npm"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
# The host's certificate authorities (a proxy's too), for npm's downloads.
mkdir -p "$dir/etc/ssl/certs"
cp "${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}" "$dir/etc/ssl/certs/hako-host-ca.crt" 2>/dev/null || true

# This checkout's HEAD (what is committed), over what a previous run left (node_modules stays).
mkdir -p "$dir/root/hako"
git -C "$here" archive HEAD | tar -x -C "$dir/root/hako"

echo "fresh-debian: in $dir: $command"
exec unshare --mount --propagation private "${net[@]}" bash -c '
set -e
dir=$1
mount --bind "$dir" "$dir"
mount -t proc proc "$dir/proc"
mount --rbind /sys "$dir/sys"
mount --rbind /dev "$dir/dev"
mount -t tmpfs tmpfs "$dir/run"
mkdir -p "$dir/.oldroot"
cd "$dir"
pivot_root . .oldroot
umount -l /.oldroot
exec /usr/sbin/chroot . /usr/bin/env -i HOME=/root TERM=dumb \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/hako-host-ca.crt \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c "cd /root/hako && $2"
' fresh-debian "$dir" "$command"
