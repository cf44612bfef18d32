/**
 * File system calls relative to a directory fd (the `*at` family, `openat2`, `statx`), for code
 * that must never be steered by a symlink it did not choose to follow — above all, writing a
 * rootfs from an untrusted tarball. Every wrapper retries on EINTR and throws a
 * {@link SyscallError} naming the call, the path (as the caller wants it shown) and errno.
 *
 * The struct layouts (`struct open_how`, `struct timespec[2]`, `struct statx`) live here; the flag
 * values (those that differ between x86_64 and aarch64, `O_DIRECTORY` and `O_NOFOLLOW`, included)
 * live in `ffi/constants.ts` and are re-exported here.
 *
 * @example Create a file under a directory fd, never through a symlink
 * ```ts ignore
 * import * as at from "./ffi/at.ts";
 * const root = at.openat(at.AT_FDCWD, "/tmp/root", at.O_RDONLY | at.O_DIRECTORY | at.O_CLOEXEC);
 * const dir = at.openat2(root, "etc", { flags: at.O_PATH | at.O_DIRECTORY | at.O_CLOEXEC, resolve: at.RESOLVE_BENEATH | at.RESOLVE_NO_SYMLINKS });
 * const fd = at.openat(dir, "hostname", at.O_WRONLY | at.O_CREAT | at.O_EXCL | at.O_NOFOLLOW | at.O_CLOEXEC, 0o644);
 * at.writeAll(fd, new TextEncoder().encode("box\n"));
 * at.close(fd); at.close(dir); at.close(root);
 * ```
 * @module
 */
import { SyscallError } from "./errno.ts";
import { addressOf, check, checkRetry, libc } from "./libc.ts";
import { cstr } from "./cstring.ts";
import { defineStruct, encodeMountAttr } from "./structs.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  EOVERFLOW,
  F_GETFD,
  F_SETFD,
  FD_CLOEXEC,
  FSCONFIG_CMD_CREATE,
  FSCONFIG_SET_FLAG,
  FSCONFIG_SET_STRING,
  FSMOUNT_CLOEXEC,
  FSOPEN_CLOEXEC,
  MOUNT_ATTR_IDMAP,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
} from "./constants.ts";
import { SYS } from "./syscalls.ts";

// The flags of the *at calls, re-exported from their one place (ffi/constants.ts) for the callers of this module.
export {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  RESOLVE_NO_XDEV,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
} from "./constants.ts";

/** `struct open_how { __u64 flags; __u64 mode; __u64 resolve; }` (linux/openat2.h). */
export const OPEN_HOW = defineStruct("struct open_how", { flags: "u64", mode: "u64", resolve: "u64" }, 24);

/** `struct timespec { time_t tv_sec; long tv_nsec; }` — utimensat takes two (atime, mtime). */
export const TIMESPEC = defineStruct("struct timespec", { sec: "i64", nsec: "long" }, 16);

/** `UTIME_OMIT` in `tv_nsec`: leave that time as it is. */
export const UTIME_OMIT = (1 << 30) - 2;

/** `struct statx` (linux/stat.h); each `struct statx_timestamp` is `{ __s64 tv_sec; __u32 tv_nsec; __s32 reserved; }`. */
export const STATX = defineStruct("struct statx", {
  mask: "u32",
  blksize: "u32",
  attributes: "u64",
  nlink: "u32",
  uid: "u32",
  gid: "u32",
  mode: "u16",
  spare0: "u16",
  ino: "u64",
  size: "u64",
  blocks: "u64",
  attributesMask: "u64",
  atimeSec: "i64",
  atimeNsec: "u32",
  atimeReserved: "i32",
  btimeSec: "i64",
  btimeNsec: "u32",
  btimeReserved: "i32",
  ctimeSec: "i64",
  ctimeNsec: "u32",
  ctimeReserved: "i32",
  mtimeSec: "i64",
  mtimeNsec: "u32",
  mtimeReserved: "i32",
  rdevMajor: "u32",
  rdevMinor: "u32",
  devMajor: "u32",
  devMinor: "u32",
  spare: ["u64", 14],
}, 256);

/** `STATX_BASIC_STATS`: everything `stat` returns. */
const STATX_BASIC_STATS = 0x7ff;

/** What {@link statx} reports. */
export interface FileStat {
  /** Type and permission bits (`S_IFMT` and `0o7777`). */
  readonly mode: number;
  /** Owner. */
  readonly uid: number;
  /** Group. */
  readonly gid: number;
  /** Hard links. */
  readonly nlink: number;
  /** Inode number. */
  readonly ino: bigint;
  /** Size in bytes. */
  readonly size: number;
  /** Last modification, whole seconds since the epoch. */
  readonly mtimeSec: bigint;
  /** Last modification, the nanoseconds past `mtimeSec`. */
  readonly mtimeNsec: number;
  /** The device the file is on, as `major:minor`. */
  readonly dev: string;
}

/** `openat2`'s `how`. */
export interface OpenHow {
  /** `O_*` flags. */
  readonly flags: number;
  /** Permission bits for `O_CREAT` (default 0). */
  readonly mode?: number;
  /** `RESOLVE_*` flags. */
  readonly resolve: number;
}

/** A time for {@link utimensat}: seconds and nanoseconds since the epoch, or "omit" (leave it). */
export type FileTime = { readonly sec: bigint | number; readonly nsec: number } | "omit";

/** Runs `call` until it succeeds or fails with something other than EINTR; errno is read at once. */
function retry(syscall: string, args: readonly unknown[], call: () => number | bigint): number {
  return checkRetry(call, syscall, args);
}

/**
 * openat(2).
 * @param dirfd The directory `path` is relative to ({@link AT_FDCWD}: the current directory).
 * @param path The path (a single name keeps every lookup under `dirfd`'s control).
 * @param flags `O_*` flags. @param mode Permission bits with `O_CREAT`.
 * @param shown The path as an error message shows it (default `path`).
 * @returns The new fd.
 * @throws {SyscallError} E.g. ELOOP for a symlink with `O_NOFOLLOW`, EEXIST with `O_CREAT|O_EXCL`.
 */
export function openat(dirfd: number, path: string, flags: number, mode = 0, shown = path): number {
  const p = cstr(path);
  return retry("openat", [shown], () => libc().openat(dirfd, p, flags, mode));
}

/**
 * openat2(2) (Linux 5.6): `openat` with `RESOLVE_*` rules for the whole lookup.
 * @param dirfd The directory `path` is resolved from. @param path The path.
 * @param how Flags, mode and resolve rules. @param shown The path as an error message shows it.
 * @returns The new fd.
 * @throws {SyscallError} ENOSYS on kernels before 5.6; ELOOP for a symlink under
 *   `RESOLVE_NO_SYMLINKS`; EXDEV for an escape under `RESOLVE_BENEATH`.
 */
export function openat2(dirfd: number, path: string, how: OpenHow, shown = path): number {
  const p = cstr(path);
  const h = new Uint8Array(OPEN_HOW.size);
  const v = new DataView(h.buffer);
  v.setBigUint64(OPEN_HOW.fields.flags.offset, BigInt(how.flags), true);
  v.setBigUint64(OPEN_HOW.fields.mode.offset, BigInt(how.mode ?? 0), true);
  v.setBigUint64(OPEN_HOW.fields.resolve.offset, BigInt(how.resolve), true);
  // `p` and `h` are referenced by the closure until the call returns.
  return retry(
    "openat2",
    [shown],
    () => libc().syscall(BigInt(SYS.openat2), BigInt(dirfd), addressOf(p), addressOf(h), BigInt(h.byteLength), 0n),
  );
}

/** mkdirat(2). @throws {SyscallError} EEXIST when the name is taken (by anything, a symlink included). */
export function mkdirat(dirfd: number, name: string, mode: number, shown = name): void {
  const p = cstr(name);
  retry("mkdirat", [shown], () => libc().mkdirat(dirfd, p, mode));
}

/**
 * mknodat(2): a device node or FIFO. `mode` holds the type (`S_IFCHR`, `S_IFBLK`, `S_IFIFO`).
 * @param dev glibc's `makedev(major, minor)` encoding.
 * @throws {SyscallError} EPERM without CAP_MKNOD (in a user namespace), EEXIST when the name is taken,
 *   EOVERFLOW for a major over 4095 or a minor over 2^20 - 1 (the kernel's 32-bit encoding).
 */
export function mknodat(dirfd: number, name: string, mode: number, dev: bigint, shown = name): void {
  // The syscall takes the device as an unsigned int: refuse what would be cut, as glibc does.
  if (dev < 0n || dev > 0xffff_ffffn) {
    throw new SyscallError("mknodat", EOVERFLOW, [shown, `0${(mode >>> 0).toString(8)}`]);
  }
  const p = cstr(name);
  retry(
    "mknodat",
    [shown, `0${(mode >>> 0).toString(8)}`],
    () => libc().syscall(BigInt(SYS.mknodat), BigInt(dirfd), addressOf(p), BigInt(mode), dev, 0n),
  );
}

/** symlinkat(2): `name` under `dirfd` becomes a symlink to `target` (stored as is, never resolved). */
export function symlinkat(target: string, dirfd: number, name: string, shown = name): void {
  const t = cstr(target), p = cstr(name);
  retry("symlinkat", [target, shown], () => libc().symlinkat(t, dirfd, p));
}

/**
 * linkat(2) with flags 0: a hard link to `oldName` itself (a symlink is linked, not followed).
 * @throws {SyscallError} EEXIST when `newName` is taken, EPERM for a directory.
 */
export function linkat(
  oldDirfd: number,
  oldName: string,
  newDirfd: number,
  newName: string,
  shown: readonly [string, string] = [oldName, newName],
): void {
  const o = cstr(oldName), n = cstr(newName);
  retry("linkat", shown, () => libc().linkat(oldDirfd, o, newDirfd, n, 0));
}

/** unlinkat(2); with {@link AT_REMOVEDIR} an empty directory. @throws {SyscallError} ENOTEMPTY, EISDIR, ENOENT. */
export function unlinkat(dirfd: number, name: string, flags: number, shown = name): void {
  const p = cstr(name);
  retry("unlinkat", [shown], () => libc().unlinkat(dirfd, p, flags));
}

/** fchownat(2); pass {@link AT_SYMLINK_NOFOLLOW} to change a symlink itself. */
export function fchownat(dirfd: number, name: string, uid: number, gid: number, flags: number, shown = name): void {
  const p = cstr(name);
  retry("fchownat", [shown, uid, gid], () => libc().fchownat(dirfd, p, uid, gid, flags));
}

/**
 * fchmodat(2) with flags 0, which follows a symlink at `name`: call it only on a name known not
 * to be one (Linux cannot chmod a symlink).
 */
export function fchmodat(dirfd: number, name: string, mode: number, shown = name): void {
  const p = cstr(name);
  retry("fchmodat", [shown, `0${mode.toString(8)}`], () => libc().fchmodat(dirfd, p, mode, 0));
}

/** fchown(2) on an open (not `O_PATH`) fd. */
export function fchown(fd: number, uid: number, gid: number, shown = `fd ${fd}`): void {
  retry("fchown", [shown, uid, gid], () => libc().fchown(fd, uid, gid));
}

/** fchmod(2) on an open (not `O_PATH`) fd. */
export function fchmod(fd: number, mode: number, shown = `fd ${fd}`): void {
  retry("fchmod", [shown, `0${mode.toString(8)}`], () => libc().fchmod(fd, mode));
}

function timespecs(atime: FileTime, mtime: FileTime): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(TIMESPEC.size * 2);
  const v = new DataView(buf.buffer);
  [atime, mtime].forEach((t, i) => {
    const base = i * TIMESPEC.size;
    v.setBigInt64(base + TIMESPEC.fields.sec.offset, t === "omit" ? 0n : BigInt(t.sec), true);
    v.setBigInt64(base + TIMESPEC.fields.nsec.offset, BigInt(t === "omit" ? UTIME_OMIT : t.nsec), true);
  });
  return buf;
}

/** utimensat(2); pass {@link AT_SYMLINK_NOFOLLOW} to set a symlink's own times. */
export function utimensat(
  dirfd: number,
  name: string,
  atime: FileTime,
  mtime: FileTime,
  flags: number,
  shown = name,
): void {
  const p = cstr(name), ts = timespecs(atime, mtime);
  retry("utimensat", [shown], () => libc().utimensat(dirfd, p, ts, flags));
}

/** futimens(3) on an open (not `O_PATH`) fd. */
export function futimens(fd: number, atime: FileTime, mtime: FileTime, shown = `fd ${fd}`): void {
  const ts = timespecs(atime, mtime);
  retry("futimens", [shown], () => libc().futimens(fd, ts));
}

/**
 * statx(2): the file at `name` under `dirfd` (with {@link AT_SYMLINK_NOFOLLOW}, a symlink itself;
 * with {@link AT_EMPTY_PATH} and `""`, the fd itself).
 * @throws {SyscallError} ENOENT and the like.
 */
export function statx(dirfd: number, name: string, flags: number, shown = name): FileStat {
  const p = cstr(name);
  const buf = new Uint8Array(STATX.size);
  retry(
    "statx",
    [shown],
    () =>
      libc().syscall(
        BigInt(SYS.statx),
        BigInt(dirfd),
        addressOf(p),
        BigInt(flags),
        BigInt(STATX_BASIC_STATS),
        addressOf(buf),
      ),
  );
  const v = new DataView(buf.buffer);
  const f = STATX.fields;
  return {
    mode: v.getUint16(f.mode.offset, true),
    uid: v.getUint32(f.uid.offset, true),
    gid: v.getUint32(f.gid.offset, true),
    nlink: v.getUint32(f.nlink.offset, true),
    ino: v.getBigUint64(f.ino.offset, true),
    size: Number(v.getBigUint64(f.size.offset, true)),
    mtimeSec: v.getBigInt64(f.mtimeSec.offset, true),
    mtimeNsec: v.getUint32(f.mtimeNsec.offset, true),
    dev: `${v.getUint32(f.devMajor.offset, true)}:${v.getUint32(f.devMinor.offset, true)}`,
  };
}

/** Writes all of `bytes` to `fd` (looping over short writes). */
export function writeAll(fd: number, bytes: Uint8Array, shown = `fd ${fd}`): void {
  const { write } = libc();
  let done = 0;
  while (done < bytes.byteLength) {
    const rest = bytes.subarray(done, done + Math.min(bytes.byteLength - done, 1 << 30));
    done += checkRetry(() => write(fd, rest, BigInt(rest.byteLength)), "write", [shown]);
  }
}

/**
 * fsetxattr(2): sets the extended attribute `name` of the file open as `fd` (never through a path).
 * @param fd The file. @param name The attribute (`security.capability`, `user.x`…).
 * @param value Its bytes, as they are. @param shown The path as an error message shows it.
 * @throws {SyscallError} E.g. ENOTSUP where the file system keeps no such attribute.
 */
export function fsetxattr(fd: number, name: string, value: Uint8Array, shown = `fd ${fd}`): void {
  const n = cstr(name);
  retry("fsetxattr", [shown, name], () => libc().fsetxattr(fd, n, value, BigInt(value.byteLength), 0));
}

/**
 * An idmapped detached copy of the mount at `path`: `open_tree(OPEN_TREE_CLONE|OPEN_TREE_CLOEXEC
 * [|AT_RECURSIVE])`, then `mount_setattr(MOUNT_ATTR_IDMAP)` with the user namespace `usernsFd` —
 * files owned on disk by an id that namespace maps show as the id inside it. Attached later with
 * move_mount(2) (by a child that inherits the fd). The caller must be privileged over the file
 * system (root on the host), and the file system must allow idmapped mounts (ext4, xfs, btrfs,
 * tmpfs… since Linux 5.12–6.3).
 * @param path The source (a host path). @param usernsFd An open `/proc/PID/ns/user`.
 * @param recursive `ridmap`: the whole subtree copied and mapped; else the mount alone (its
 *   submounts stay unmapped, so they are left out: a copy of the mount alone).
 * @returns The detached mount's fd.
 * @throws {SyscallError} open_tree's or mount_setattr's (EINVAL: the file system cannot be
 *   idmapped; EPERM: not privileged over it).
 */
export function idmappedTree(path: string, usernsFd: number, recursive: boolean): number {
  const p = cstr(path);
  const fd = retry(
    "open_tree",
    [path, `OPEN_TREE_CLONE${recursive ? "|AT_RECURSIVE" : ""}`],
    () =>
      libc().syscall(
        BigInt(SYS.open_tree),
        BigInt(AT_FDCWD),
        addressOf(p),
        BigInt(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0)),
        0n,
        0n,
      ),
  );
  const attr = encodeMountAttr(MOUNT_ATTR_IDMAP, 0, usernsFd);
  const empty = cstr("");
  try {
    retry(
      "mount_setattr",
      [path, `MOUNT_ATTR_IDMAP${recursive ? ", AT_RECURSIVE" : ""}`],
      () =>
        libc().syscall(
          BigInt(SYS.mount_setattr),
          BigInt(fd),
          addressOf(empty),
          BigInt(AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0)),
          addressOf(attr),
          BigInt(attr.byteLength),
        ),
    );
  } catch (e) {
    libc().close(fd);
    throw e;
  }
  return fd;
}

/**
 * A new filesystem mounted nowhere (fsopen, fsconfig, fsmount: Linux 5.2): the fd of its detached
 * mount, which no one else can reach — fill it through `/proc/self/fd/N/…`, then attach it with
 * move_mount. Made by the caller's mount namespace's user namespace (it needs CAP_SYS_ADMIN there).
 * @param fstype The filesystem type ("tmpfs").
 * @param params Its parameters: `[key, value]`, or `[key, undefined]` for a flag (as `mount -o`'s data).
 * @param attr `MOUNT_ATTR_*` of the mount (nosuid, nodev, noexec, the atime rule).
 * @returns The mount's fd (close-on-exec).
 * @throws {SyscallError} Naming the call and the parameter (EINVAL for one the filesystem refuses).
 */
export function detachedMount(
  fstype: string,
  params: ReadonlyArray<readonly [string, string | undefined]>,
  attr: number,
): number {
  const type = cstr(fstype);
  const fs = retry(
    "fsopen",
    [fstype],
    () => libc().syscall(BigInt(SYS.fsopen), addressOf(type), BigInt(FSOPEN_CLOEXEC), 0n, 0n, 0n),
  );
  try {
    for (const [key, value] of params) {
      const k = cstr(key), v = value === undefined ? undefined : cstr(value);
      retry(
        "fsconfig",
        [fstype, value === undefined ? key : `${key}=${value}`],
        () =>
          libc().syscall(
            BigInt(SYS.fsconfig),
            BigInt(fs),
            BigInt(v ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG),
            addressOf(k),
            v ? addressOf(v) : 0n,
            0n,
          ),
      );
    }
    retry(
      "fsconfig",
      [fstype, "FSCONFIG_CMD_CREATE"],
      () => libc().syscall(BigInt(SYS.fsconfig), BigInt(fs), BigInt(FSCONFIG_CMD_CREATE), 0n, 0n, 0n),
    );
    return retry(
      "fsmount",
      [fstype],
      () => libc().syscall(BigInt(SYS.fsmount), BigInt(fs), BigInt(FSMOUNT_CLOEXEC), BigInt(attr), 0n, 0n),
    );
  } finally {
    libc().close(fs);
  }
}

/**
 * mount_setattr(2) on a mount's fd (the mount alone): `set` attributes set, `clear` cleared.
 * @throws {SyscallError}
 */
export function setMountAttr(fd: number, set: number, clear = 0, shown = `fd ${fd}`): void {
  const attr = encodeMountAttr(set, clear);
  const empty = cstr("");
  retry(
    "mount_setattr",
    [shown],
    () =>
      libc().syscall(
        BigInt(SYS.mount_setattr),
        BigInt(fd),
        addressOf(empty),
        BigInt(AT_EMPTY_PATH),
        addressOf(attr),
        BigInt(attr.byteLength),
      ),
  );
}

/**
 * Makes `fd` (one the caller was given, open) pass to the programs this process's children
 * exec: its close-on-exec flag cleared (`fcntl(F_SETFD)`), as runc's `--preserve-fds` hands fds
 * over. Bun marks every inherited fd above 3 close-on-exec when it starts.
 * @throws {SyscallError} EBADF when `fd` is not open.
 */
export function inheritFd(fd: number): void {
  const { syscall } = libc();
  const flags = check(
    Number(syscall(BigInt(SYS.fcntl), BigInt(fd), BigInt(F_GETFD), 0n, 0n, 0n)),
    "fcntl",
    [fd, "F_GETFD"],
  );
  if (flags & FD_CLOEXEC) {
    check(
      Number(syscall(BigInt(SYS.fcntl), BigInt(fd), BigInt(F_SETFD), BigInt(flags & ~FD_CLOEXEC), 0n, 0n)),
      "fcntl",
      [fd, "F_SETFD"],
    );
  }
}

/** close(2). EINTR is not retried (Linux has closed the fd by then). */
export function close(fd: number): void {
  libc().close(fd);
}
