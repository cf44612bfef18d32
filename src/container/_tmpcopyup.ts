/**
 * `tmpcopyup` (runc's and crun's mount extension; podman's `--read-only` puts it on the tmpfs it
 * mounts at /tmp, /var/tmp and /run): the new tmpfs starts with a copy of what its target
 * directory held in the image, so a read-only container keeps /run's skeleton while writing there.
 *
 * The parent does it before the clone, as it makes idmapped binds (`_idmap.ts`): the tmpfs is made
 * detached (fsopen, fsmount: mounted nowhere, seen by no one), the image's directory is copied into
 * it — entries read from a directory opened inside the rootfs with no symlink followed, each
 * lstat'ed and recreated as what it is (a symlink as a symlink, never followed), with its owner and
 * mode — and the child inherits its fd and attaches it on the checked target (the `mounts` step),
 * on either path. A target that is missing or empty in the image needs no copy: the child mounts a
 * plain tmpfs there, as for any tmpfs.
 * @module
 */
import {
  chmodSync,
  constants as fsConstants,
  copyFileSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { AT_FDCWD, close, detachedMount, mknodat, openat2, setMountAttr } from "../../ffi/at.ts";
import {
  MOUNT_ATTR_NOATIME,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NODIRATIME,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOUNT_ATTR_RDONLY,
  MOUNT_ATTR_STRICTATIME,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  MS_STRICTATIME,
  O_CLOEXEC,
  O_DIRECTORY,
  O_RDONLY,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
} from "../../ffi/constants.ts";
import { parseOptions } from "../mount.ts";
import { SetupError } from "../errors.ts";
import { closeFd } from "./_pipe.ts";
import { isTmpcopyup } from "./_plain_mount.ts";
import type { MountSpec } from "./spec.ts";

/** The detached tmpfs copies made for a container: its spec mounts' indexes → their fds. */
export interface TmpfsCopies {
  /** A spec mount's index → the fd of its filled, detached tmpfs (inherited by the child). */
  readonly fds: ReadonlyMap<number, number>;
  /** Closes the parent's fds (after the clone: the child has its own). */
  close(): void;
}

/** How deep a copied tree may go (a hostile image's endless nesting fails, named, instead). */
const MAX_DEPTH = 128;

/**
 * The tmpfs parameters and mount attributes of a tmpfs's options (its data as fsconfig strings
 * and flags; nosuid, nodev, noexec, the atime rule, read-only as `MOUNT_ATTR_*`).
 */
export function tmpfsParams(options: readonly string[]): {
  params: Array<[string, string | undefined]>;
  attr: number;
  readonly: boolean;
} {
  const { flags, data } = parseOptions(options.filter((o) => o !== "tmpcopyup").join(","));
  const params: Array<[string, string | undefined]> = [];
  for (const d of data ? data.split(/,(?![0-9-])/) : []) {
    const eq = d.indexOf("=");
    params.push(eq < 0 ? [d, undefined] : [d.slice(0, eq), d.slice(eq + 1)]);
  }
  const attr = (flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) | (flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0) |
    (flags & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0) | (flags & MS_NOATIME ? MOUNT_ATTR_NOATIME : 0) |
    (flags & MS_STRICTATIME ? MOUNT_ATTR_STRICTATIME : 0) | (flags & MS_NODIRATIME ? MOUNT_ATTR_NODIRATIME : 0);
  return { params, attr, readonly: (flags & MS_RDONLY) !== 0 };
}

/**
 * Opens a target directory inside the rootfs (`rootFd` its root: absolute links stay inside; no
 * symlink followed at all — the parent resolved the target in the image already), or undefined
 * when it is not there or not a directory (nothing to copy).
 */
function openInRoot(rootFd: number, inside: string): number | undefined {
  try {
    return openat2(rootFd, inside, {
      flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC,
      resolve: RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw e;
  }
}

/**
 * Which of `mounts` need a copy: tmpfs with `tmpcopyup` whose target, resolved in the rootfs
 * (`resolve`, as the mounts step resolves it), is a directory with entries there.
 * @returns Their indexes.
 */
export function tmpfsToFill(
  mounts: readonly MountSpec[],
  rootFd: number,
  resolve: (target: string) => string,
): number[] {
  const out: number[] = [];
  mounts.forEach((m, i) => {
    if (!isTmpcopyup(m) || rootFd < 0) return;
    const fd = openInRoot(rootFd, resolve(m.target));
    if (fd === undefined) return;
    try {
      if (readdirSync(`/proc/self/fd/${fd}`).length) out.push(i);
    } finally {
      close(fd);
    }
  });
  return out;
}

/**
 * Makes the filled tmpfs of each of `indexes` (see {@link tmpfsToFill}).
 * @throws {SetupError} For the `tmpcopyup` host step, naming the mount and what failed.
 */
export function prepareTmpfsCopies(
  mounts: readonly MountSpec[],
  indexes: readonly number[],
  rootFd: number,
  resolve: (target: string) => string,
): TmpfsCopies | undefined {
  if (!indexes.length) return undefined;
  const fds = new Map<number, number>();
  const closeAll = () => {
    for (const fd of fds.values()) closeFd(fd);
    fds.clear();
  };
  try {
    for (const i of indexes) {
      const m = mounts[i]!;
      const at = resolve(m.target);
      try {
        const { params, attr, readonly } = tmpfsParams([...(m.options ?? []), ...(m.readonly ? ["ro"] : [])]);
        const src = openInRoot(rootFd, at);
        if (src === undefined) throw new Error(`${at} is gone from the rootfs since it was looked at`);
        try {
          // (the tmpfs's root gets the directory's mode unless the options give one, as runc's)
          if (!params.some(([k]) => k === "mode")) {
            params.push(["mode", (statSync(`/proc/self/fd/${src}`).mode & 0o7777).toString(8)]);
          }
          const mnt = detachedMount("tmpfs", params, attr);
          fds.set(i, mnt);
          copyTree(`/proc/self/fd/${src}`, `/proc/self/fd/${mnt}`, 0);
          if (readonly) setMountAttr(mnt, MOUNT_ATTR_RDONLY, 0, m.target);
        } finally {
          close(src);
        }
      } catch (e) {
        throw new SetupError(
          "tmpcopyup",
          `mounts[${i}] (tmpfs on ${m.target}, tmpcopyup from ${at} in the rootfs): ${(e as Error).message}`,
        );
      }
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  return { fds, close: closeAll };
}

/**
 * Copies the entries of directory `from` into directory `to` (both reached through an fd's magic
 * link, then by single names whose type was just lstat'ed: a symlink is made again, never
 * followed; a directory is entered only as a directory), each with its owner and mode, as runc's
 * CopyDirectory: directories, files, symlinks, FIFOs and device nodes (sockets are skipped).
 */
function copyTree(from: string, to: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new Error(`${from}: nested deeper than ${MAX_DEPTH} directories`);
  for (const name of readdirSync(from)) {
    const src = `${from}/${name}`, dst = `${to}/${name}`;
    const st = lstatSync(src);
    const mode = st.mode & 0o7777;
    if (st.isDirectory()) {
      mkdirSync(dst, { mode: 0o700 });
      copyTree(src, dst, depth + 1);
    } else if (st.isFile()) {
      copyFileSync(src, dst, fsConstants.COPYFILE_EXCL);
    } else if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(src), dst);
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      mknodat(AT_FDCWD, dst, (st.mode & 0o170000) | mode, BigInt(st.rdev));
    } else continue;
    lchownSync(dst, st.uid, st.gid);
    if (!st.isSymbolicLink()) chmodSync(dst, mode);
  }
}
