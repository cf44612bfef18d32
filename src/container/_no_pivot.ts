/**
 * OCI `--no-pivot` (runc's `NoPivotRoot`): a root filesystem on a ramdisk (the initramfs a live
 * system or a minikube ISO runs from) cannot be pivoted away from, so the container's root is the
 * rootfs's mount moved over `/` (`mount(".", "/", MS_MOVE)`) and entered with `chroot(".")`, as runc
 * and crun do. Unlike pivot_root this leaves the host's mounts in the container's mount namespace,
 * under its root: a process with `CAP_SYS_CHROOT` can climb out of a chroot to them. What the host
 * had mounted is therefore detached from the namespace after the move, where the kernel allows:
 *
 * - every full `proc` and `sysfs` mount (runc's list): the kernel allows a new procfs or sysfs
 *   mount in a user namespace only where one is already fully visible in the mount namespace, so
 *   a host one left there would let the container mount an unmasked /proc. Where it may not be
 *   detached (a mount locked in a user namespace: EINVAL, EPERM), an empty tmpfs covers it, as
 *   runc does;
 * - every other mount directly on the host's root mount (hako's addition: runc keeps them), with
 *   the mounts under it (`MNT_DETACH`): what a chroot escape finds is the host's root filesystem
 *   alone. A locked one stays (the kernel refuses).
 *
 * The list is taken from the caller's `/proc/self/mountinfo` before the clone: the container's
 * mount namespace starts as a copy of the caller's. Pure (no system call here).
 *
 * @module
 */

/** One host mount the move-root step detaches from the container's mount namespace. */
export interface NoPivotDetach {
  /** The mount point, absolute, as the caller sees it (resolved from the host's root). */
  readonly path: string;
  /** A full proc or sysfs: covered by an empty tmpfs where it may not be detached. */
  readonly cover: boolean;
}

/** Undoes mountinfo's octal escapes (`\040` is a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

interface Line {
  readonly id: string;
  readonly parent: string;
  readonly root: string;
  readonly point: string;
  readonly fstype: string;
}

function parseLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (f.length < 7 || dash < 0 || dash + 1 >= f.length) continue;
    const point = unescape(f[4]!);
    if (!point.startsWith("/")) continue;
    lines.push({ id: f[0]!, parent: f[1]!, root: unescape(f[3]!), point, fstype: f[dash + 1]! });
  }
  return lines;
}

/**
 * The host mounts to detach after the move (see the module's notes), from mountinfo text: the full
 * proc and sysfs mounts first (in mountinfo order, so one under another host mount goes while its
 * path still leads to it), then the other mounts on the root's mount, one detach per mount (a
 * path's topmost mount goes first, then the one under it).
 * @param mountinfo The caller's `/proc/self/mountinfo`.
 */
export function noPivotDetaches(mountinfo: string): NoPivotDetach[] {
  const lines = parseLines(mountinfo);
  // The caller's root: the topmost mount at "/" (none mounted over it at "/").
  const roots = lines.filter((l) => l.point === "/");
  const root = roots.find((r) => !roots.some((o) => o !== r && o.parent === r.id));
  const detaches: NoPivotDetach[] = [];
  const taken = new Set<string>(); // mount ids
  for (const l of lines) {
    if (l.point === "/" || l.root !== "/" || (l.fstype !== "proc" && l.fstype !== "sysfs")) continue;
    taken.add(l.id);
    detaches.push({ path: l.point, cover: true });
  }
  if (!root) return detaches;
  for (const top of lines) {
    if (top.parent !== root.id || top.point === "/") continue;
    for (let m: Line | undefined = top; m; m = lines.find((c) => c.parent === m!.id && c.point === top.point)) {
      if (taken.has(m.id)) continue;
      taken.add(m.id);
      detaches.push({ path: top.point, cover: false });
    }
  }
  return detaches;
}
