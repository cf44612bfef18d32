/**
 * Mounts: mount (with flags by name or mount(8)-style options), bind mounts (read-only ones
 * done right), propagation (private/slave/shared), umount, pivot_root, and `pivotRootInto` —
 * the whole safe sequence a container's child runs to switch to its root filesystem.
 *
 * Mount work belongs in a process with its own mount namespace (`Namespace.unshare("mount")` or
 * `Process.fork({ namespaces: ["mount"] }, …)`) whose `/` has been made private recursively, so
 * nothing propagates back to the host.
 *
 * @example A tmpfs and a read-only bind in a child with its own mount namespace
 * ```ts ignore
 * import { Mount, Process } from "./mod.ts";
 * const pid = Process.fork({ namespaces: ["mount"] }, () => {
 *   Mount.makePrivate("/", { recursive: true });
 *   Mount.mount("tmpfs", "/mnt", { type: "tmpfs", options: "nosuid,nodev,size=16m" });
 *   Mount.bind("/etc", "/mnt", { readonly: true });
 *   Process.exec("ls", "/mnt");
 * });
 * Process.waitpid2(pid);
 * ```
 * @module
 */
import { readlinkSync } from "node:fs";
import { addressOf, check, libc } from "../ffi/libc.ts";
import { cstr, cstrOrNull } from "../ffi/cstring.ts";
import { statvfsBuffer, statvfsFlags } from "../ffi/structs.ts";
import { SYS } from "../ffi/syscalls.ts";
import { ConfigError, SetupError } from "./errors.ts";
import {
  MNT_DETACH,
  MNT_EXPIRE,
  MNT_FORCE,
  MS_BIND,
  MS_DIRSYNC,
  MS_I_VERSION,
  MS_KERNMOUNT,
  MS_LAZYTIME,
  MS_MANDLOCK,
  MS_MOVE,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_POSIXACL,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
  ST_TO_MS,
  UMOUNT_NOFOLLOW,
} from "../ffi/constants.ts";

/** The `MS_*` and `MNT_*` flags (documented with their values in ffi/constants.ts). */
export {
  MNT_DETACH,
  MNT_EXPIRE,
  MNT_FORCE,
  MS_BIND,
  MS_DIRSYNC,
  MS_I_VERSION,
  MS_KERNMOUNT,
  MS_LAZYTIME,
  MS_MANDLOCK,
  MS_MOVE,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_POSIXACL,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
  UMOUNT_NOFOLLOW,
} from "../ffi/constants.ts";

/** Flag names accepted in `flags`/`options`, as mount(8) spells them. */
export const MOUNT_FLAGS: Readonly<Record<string, number>> = {
  ro: MS_RDONLY,
  rdonly: MS_RDONLY,
  readonly: MS_RDONLY,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
  sync: MS_SYNCHRONOUS,
  synchronous: MS_SYNCHRONOUS,
  remount: MS_REMOUNT,
  mand: MS_MANDLOCK,
  mandlock: MS_MANDLOCK,
  dirsync: MS_DIRSYNC,
  nosymfollow: MS_NOSYMFOLLOW,
  noatime: MS_NOATIME,
  nodiratime: MS_NODIRATIME,
  bind: MS_BIND,
  rbind: MS_BIND | MS_REC,
  move: MS_MOVE,
  rec: MS_REC,
  recursive: MS_REC,
  silent: MS_SILENT,
  posixacl: MS_POSIXACL,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  relatime: MS_RELATIME,
  iversion: MS_I_VERSION,
  strictatime: MS_STRICTATIME,
  lazytime: MS_LAZYTIME,
};

/** mount(8) options that mean "the default": no flag, not passed as data. */
const NO_OP_OPTIONS = new Set(["rw", "defaults", "suid", "dev", "exec", "async", "atime", "diratime", "nomand"]);

/** Flag names in display order, for messages. */
const FLAG_DISPLAY: ReadonlyArray<readonly [number, string]> = [
  [MS_RDONLY, "MS_RDONLY"],
  [MS_NOSUID, "MS_NOSUID"],
  [MS_NODEV, "MS_NODEV"],
  [MS_NOEXEC, "MS_NOEXEC"],
  [MS_SYNCHRONOUS, "MS_SYNCHRONOUS"],
  [MS_REMOUNT, "MS_REMOUNT"],
  [MS_MANDLOCK, "MS_MANDLOCK"],
  [MS_DIRSYNC, "MS_DIRSYNC"],
  [MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"],
  [MS_NOATIME, "MS_NOATIME"],
  [MS_NODIRATIME, "MS_NODIRATIME"],
  [MS_BIND, "MS_BIND"],
  [MS_MOVE, "MS_MOVE"],
  [MS_REC, "MS_REC"],
  [MS_SILENT, "MS_SILENT"],
  [MS_POSIXACL, "MS_POSIXACL"],
  [MS_UNBINDABLE, "MS_UNBINDABLE"],
  [MS_PRIVATE, "MS_PRIVATE"],
  [MS_SLAVE, "MS_SLAVE"],
  [MS_SHARED, "MS_SHARED"],
  [MS_RELATIME, "MS_RELATIME"],
  [MS_KERNMOUNT, "MS_KERNMOUNT"],
  [MS_I_VERSION, "MS_I_VERSION"],
  [MS_STRICTATIME, "MS_STRICTATIME"],
  [MS_LAZYTIME, "MS_LAZYTIME"],
];

const PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;
/** Per-mount flags a bind ignores and a bind remount applies. */
const PER_MOUNT = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOSYMFOLLOW | MS_NOATIME | MS_NODIRATIME |
  MS_RELATIME | MS_STRICTATIME;
const ALL_FLAGS = FLAG_DISPLAY.reduce((a, [f]) => a | f, 0);

/** A value shown unquoted in a SyscallError message. */
const sym = (text: string) => Object.freeze({ toString: () => text });

/** Flags as `MS_BIND|MS_REC` for messages. */
export function flagNames(flags: number): string {
  const names = FLAG_DISPLAY.filter(([f]) => (flags & f) !== 0).map(([, n]) => n);
  const rest = flags & ~ALL_FLAGS;
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names.join("|") || "0";
}

/** A flag name, as in {@link MOUNT_FLAGS}. */
export type MountFlagName = keyof typeof MOUNT_FLAGS | string;

/**
 * Turns flags given as a number, a list of names, or a comma-separated string into a number.
 * @param flags `MS_NOSUID | MS_NODEV`, `["nosuid", "nodev"]` or `"nosuid,nodev"`.
 * @param path The field path for errors.
 * @returns The flag bits.
 * @throws {ConfigError} For an unknown name or a bad number.
 */
export function parseFlags(flags: number | string | readonly MountFlagName[], path = "flags"): number {
  if (typeof flags === "number") {
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
      throw new ConfigError(path, `must be a non-negative integer, got ${flags}`);
    }
    return flags;
  }
  const names = typeof flags === "string" ? flags.split(",").filter((s) => s.trim() !== "") : flags;
  let out = 0;
  names.forEach((raw, i) => {
    const name = String(raw).trim().toLowerCase().replace(/^ms_/, "");
    const f = MOUNT_FLAGS[name];
    if (f === undefined && !NO_OP_OPTIONS.has(name)) {
      throw new ConfigError(
        typeof flags === "string" ? path : `${path}[${i}]`,
        `unknown mount flag ${JSON.stringify(raw)}`,
      );
    }
    out |= f ?? 0;
  });
  return out;
}

/**
 * Splits mount(8)-style options (`"nosuid,nodev,mode=755,size=16m"`) into flags and the data
 * string the filesystem gets (`"mode=755,size=16m"`).
 * @param options The options text.
 * @returns `{ flags, data }`.
 */
export function parseOptions(options: string): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const raw of options.split(",")) {
    const opt = raw.trim();
    if (!opt) continue;
    const f = MOUNT_FLAGS[opt.toLowerCase()];
    if (f !== undefined) flags |= f;
    else if (!NO_OP_OPTIONS.has(opt.toLowerCase())) data.push(opt);
  }
  return { flags, data: data.join(",") };
}

/** Options for {@link mount}. */
export interface MountOptions {
  /** The filesystem type (`"tmpfs"`, `"proc"`, …); omit for bind, move, remount and propagation changes. */
  readonly type?: string;
  /** Flags: a number (`MS_NOSUID | MS_NODEV`), names (`["nosuid", "nodev", "ro"]`) or `"nosuid,nodev"`. */
  readonly flags?: number | string | readonly MountFlagName[];
  /** mount(8)-style options: flag names become flags, the rest (`mode=755`) becomes `data`. */
  readonly options?: string;
  /** Filesystem-specific data (`"size=16m,mode=755"`), appended to what `options` leaves. */
  readonly data?: string;
  /** Read-only (MS_RDONLY); for a bind mount this takes a second, remount call. */
  readonly readonly?: boolean;
  /** Bind mount (MS_BIND). */
  readonly bind?: boolean;
  /** Recursive (MS_REC): with `bind`, also bind the mounts below the source. */
  readonly recursive?: boolean;
  /** Change an existing mount's flags (MS_REMOUNT). */
  readonly remount?: boolean;
}

function assertPath(value: unknown, path: string): asserts value is string {
  if (typeof value !== "string" || value === "") throw new ConfigError(path, "must be a non-empty path");
  if (value.includes("\0")) throw new ConfigError(path, "must not contain a NUL byte");
}

function rawMount(
  source: string | null,
  target: string,
  type: string | null,
  flags: number,
  data: string | null,
  context?: string,
): void {
  const shown: unknown[] = [source ?? sym("NULL"), target, type ?? sym("NULL")];
  if (flags) shown.push(sym(flagNames(flags)));
  if (data) shown.push(data);
  const ret = libc().mount(cstrOrNull(source), cstr(target), cstrOrNull(type), BigInt(flags), cstrOrNull(data));
  check(ret, "mount", shown, context);
}

/** The `MS_*` per-mount flags a mount has now (via statvfs), to keep them across a bind remount. */
function currentMountFlags(target: string): number {
  const buf = statvfsBuffer();
  check(libc().statvfs(cstr(target), buf), "statvfs", [target]);
  const st = statvfsFlags(buf);
  let flags = 0;
  for (const [s, m] of ST_TO_MS) if (st & s) flags |= m;
  if (!(flags & (MS_NOATIME | MS_RELATIME))) flags |= MS_STRICTATIME;
  return flags;
}

/**
 * mount(2), with flags by name and the bind-mount rules handled: per-mount flags given with a
 * new bind (`readonly`, nosuid, nodev, noexec, atime flags) are ignored by the kernel on the bind
 * itself, so they are applied by a second `MS_REMOUNT|MS_BIND` call that also keeps the flags
 * the mount already has. (Only the top mount of a recursive bind becomes read-only.)
 *
 * @param source What to mount: a device, a directory to bind, or a name such as `"proc"`; null for none.
 * @param target Where (an existing directory or file).
 * @param options Type, flags, data.
 * @throws {ConfigError} For a bad path, unknown flag, or flags that cannot go together.
 * @throws {SyscallError} When the kernel refuses, e.g. `mount("proc", "/x/proc", "proc"): EPERM (…)`.
 *
 * @example
 * ```ts ignore
 * Mount.mount("proc", "/rootfs/proc", { type: "proc", flags: ["nosuid", "nodev", "noexec"] });
 * ```
 */
export function mount(source: string | null, target: string, options: MountOptions = {}): void {
  if (source !== null && source !== undefined) assertPath(source, "mount.source");
  assertPath(target, "mount.target");
  if (options.type !== undefined) assertPath(options.type, "mount.type");
  let flags = options.flags === undefined ? 0 : parseFlags(options.flags, "mount.flags");
  const parsed = options.options === undefined ? { flags: 0, data: "" } : parseOptions(options.options);
  flags |= parsed.flags;
  if (options.readonly) flags |= MS_RDONLY;
  if (options.bind) flags |= MS_BIND;
  if (options.recursive) flags |= MS_REC;
  if (options.remount) flags |= MS_REMOUNT;
  const data = [parsed.data, options.data ?? ""].filter(Boolean).join(",") || null;
  if (data?.includes("\0")) throw new ConfigError("mount.data", "must not contain a NUL byte");

  const propagation = flags & PROPAGATION;
  if (propagation) {
    if (propagation & (propagation - 1)) {
      throw new ConfigError(
        "mount.flags",
        `only one of shared, private, slave, unbindable at a time (${flagNames(propagation)})`,
      );
    }
    if (flags & ~(PROPAGATION | MS_REC | MS_SILENT)) {
      throw new ConfigError(
        "mount.flags",
        `a propagation change (${flagNames(propagation)}) cannot be combined with ${
          flagNames(flags & ~(PROPAGATION | MS_REC | MS_SILENT))
        }`,
      );
    }
    rawMount(null, target, null, flags, null);
    return;
  }
  if ((flags & MS_MOVE) && (flags & (MS_BIND | MS_REMOUNT))) {
    throw new ConfigError("mount.flags", "move cannot be combined with bind or remount");
  }
  if ((flags & MS_BIND) && !(flags & MS_REMOUNT)) {
    assertPath(source, "mount.source");
    rawMount(source, target, options.type ?? null, flags & ~PER_MOUNT, data);
    if (flags & PER_MOUNT) {
      const remount = MS_REMOUNT | MS_BIND | (flags & PER_MOUNT);
      rawMount(
        null,
        target,
        null,
        remount | (currentMountFlags(target) & ~remountConflicts(flags)),
        null,
        `make the bind mount of ${source} on ${target} ${flagNames(flags & PER_MOUNT)}`,
      );
    }
    return;
  }
  rawMount(source ?? null, target, options.type ?? null, flags, data);
}

/** Atime flags the caller set replace the mount's current ones rather than adding to them. */
function remountConflicts(flags: number): number {
  return flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME) ? MS_NOATIME | MS_RELATIME | MS_STRICTATIME : 0;
}

/** Options for {@link bind}. */
export interface BindOptions {
  /** Make the bind read-only (a second, remount call). */
  readonly readonly?: boolean;
  /** Also bind the mounts below `source` (`mount --rbind`); default false, like `mount --bind`. */
  readonly recursive?: boolean;
  /** More per-mount flags for the bind (`["nosuid", "nodev"]`). */
  readonly flags?: number | string | readonly MountFlagName[];
}

/**
 * Bind-mounts `source` on `target` (hacorb's `bind_mount`); with `readonly` the bind is then
 * remounted read-only, keeping its other flags.
 * @param source The file or directory to bind.
 * @param target Where (must exist, of the same kind).
 * @param options `readonly`, `recursive`, more `flags`.
 * @throws {ConfigError} For a bad path or flag. @throws {SyscallError} When a mount call fails.
 */
export function bind(source: string, target: string, options: BindOptions = {}): void {
  const opts: MountOptions = { bind: true, readonly: options.readonly ?? false, recursive: options.recursive ?? false };
  mount(source, target, options.flags === undefined ? opts : { ...opts, flags: options.flags });
}

/** hacorb's spelling of {@link bind}. @throws {ConfigError} @throws {SyscallError} */
export const bind_mount: typeof bind = bind;

/**
 * Changes an existing mount's flags (MS_REMOUNT), e.g. to make it read-only.
 * @param target The mount point.
 * @param options Flags, data, `readonly`, and `bind: true` to change only the per-mount flags of a bind.
 * @throws {ConfigError} @throws {SyscallError}
 */
export function remount(target: string, options: Omit<MountOptions, "remount"> = {}): void {
  mount(null, target, { ...options, remount: true });
}

/**
 * Moves a mount to another place (MS_MOVE).
 * @throws {ConfigError} @throws {SyscallError} EINVAL when `source` is not a mount point.
 */
export function move(source: string, target: string): void {
  assertPath(source, "move.source");
  mount(source, target, { flags: MS_MOVE });
}

/** Options for the propagation changes. */
export interface PropagationOptions {
  /** Also change every mount below `target` (default false, like `mount --make-private`). */
  readonly recursive?: boolean;
}

function propagate(target: string, flag: number, options: PropagationOptions): void {
  assertPath(target, "target");
  rawMount(null, target, null, flag | (options.recursive ? MS_REC : 0), null);
}

/**
 * Makes a mount private: mount events no longer propagate to or from its peers. Run
 * `makePrivate("/", { recursive: true })` first in a new mount namespace.
 * @throws {ConfigError} @throws {SyscallError} EINVAL when `target` is not a mount point.
 */
export function makePrivate(target: string, options: PropagationOptions = {}): void {
  propagate(target, MS_PRIVATE, options);
}

/** Makes a mount a slave: it receives events from its master but sends none. @throws {ConfigError} @throws {SyscallError} */
export function makeSlave(target: string, options: PropagationOptions = {}): void {
  propagate(target, MS_SLAVE, options);
}

/** Makes a mount shared with its peers. @throws {ConfigError} @throws {SyscallError} */
export function makeShared(target: string, options: PropagationOptions = {}): void {
  propagate(target, MS_SHARED, options);
}

/** Makes a mount unbindable. @throws {ConfigError} @throws {SyscallError} */
export function makeUnbindable(target: string, options: PropagationOptions = {}): void {
  propagate(target, MS_UNBINDABLE, options);
}

/** hacorb's `make_private`. @throws {ConfigError} @throws {SyscallError} */
export function make_private(target: string): void {
  makePrivate(target);
}

/** hacorb's `make_rprivate`: {@link makePrivate} recursively. @throws {ConfigError} @throws {SyscallError} */
export function make_rprivate(target: string): void {
  makePrivate(target, { recursive: true });
}

/** hacorb's `make_rslave`: {@link makeSlave} recursively. @throws {ConfigError} @throws {SyscallError} */
export function make_rslave(target: string): void {
  makeSlave(target, { recursive: true });
}

/** Options for {@link umount}. */
export interface UmountOptions {
  /** Detach now, finish when no longer busy (MNT_DETACH, `umount -l`). */
  readonly lazy?: boolean;
  /** Same as `lazy`. */
  readonly detach?: boolean;
  /** Force (MNT_FORCE). */
  readonly force?: boolean;
  /** Mark for expiry (MNT_EXPIRE). */
  readonly expire?: boolean;
  /** Do not follow `target` if it is a symlink (UMOUNT_NOFOLLOW). */
  readonly noFollow?: boolean;
}

/**
 * Unmounts (umount2).
 * @param target The mount point.
 * @param options `lazy`/`detach`, `force`, `expire`, `noFollow`.
 * @throws {ConfigError} For a bad path. @throws {SyscallError} EBUSY when in use, EINVAL when not a mount point.
 */
export function umount(target: string, options: UmountOptions = {}): void {
  assertPath(target, "umount.target");
  const flags = (options.lazy || options.detach ? MNT_DETACH : 0) | (options.force ? MNT_FORCE : 0) |
    (options.expire ? MNT_EXPIRE : 0) | (options.noFollow ? UMOUNT_NOFOLLOW : 0);
  const shown: unknown[] = [target];
  if (flags) shown.push(sym(umountFlagNames(flags)));
  check(libc().umount2(cstr(target), flags), "umount2", shown);
}

function umountFlagNames(flags: number): string {
  return ([[MNT_FORCE, "MNT_FORCE"], [MNT_DETACH, "MNT_DETACH"], [MNT_EXPIRE, "MNT_EXPIRE"], [
    UMOUNT_NOFOLLOW,
    "UMOUNT_NOFOLLOW",
  ]] as const).filter(([f]) => flags & f).map(([, n]) => n).join("|");
}

/**
 * pivot_root(2): makes `newRoot` the root of the caller's mount namespace and moves the old root
 * to `putOld` (which must be at or below `newRoot`). `newRoot` must be a mount point, and
 * neither it nor its parent may be shared. Prefer {@link pivotRootInto}.
 * @param newRoot The new root (a mount point).
 * @param putOld Where the old root goes (at or below `newRoot`; `"."` with `newRoot` `"."` stacks it there).
 * @param context What hako was doing, prefixed to an error message.
 * @throws {ConfigError} For a bad path. @throws {SyscallError} EINVAL/EBUSY when the rules above are broken.
 */
export function pivotRoot(newRoot: string, putOld: string, context?: string): void {
  assertPath(newRoot, "pivotRoot.newRoot");
  assertPath(putOld, "pivotRoot.putOld");
  const a = cstr(newRoot), b = cstr(putOld);
  const ret = libc().syscall(BigInt(SYS.pivot_root), addressOf(a), addressOf(b), 0n, 0n, 0n);
  keepAlive(a, b); // the kernel read the strings through their addresses: keep them referenced until now
  check(ret, "pivot_root", [newRoot, putOld], context);
}

/** Holds buffers whose addresses were passed to C until the call has returned. */
function keepAlive(..._buffers: Uint8Array[]): void {}

/** Options for {@link pivotRootInto}. */
export interface PivotRootIntoOptions {
  /**
   * Run even when the caller seems to share the mount namespace of PID 1 (the host's). Without
   * it that is refused: the sequence would change the host's mount propagation and root.
   */
  readonly unsafeAllowInitialNamespace?: boolean;
}

/**
 * Switches the calling process to `dir` as its root, the safe way: make `/` private
 * recursively (nothing propagates back to the host), bind `dir` onto itself (pivot_root needs a
 * mount point), `chdir(dir)`, `pivot_root(".", ".")` (the old root ends up stacked under the new
 * one, so no put_old directory is needed), detach the old root with `umount2(".", MNT_DETACH)`,
 * and `chdir("/")`. Mounts already made under `dir` (proc, dev, …) come along.
 *
 * Needs its own mount namespace: it refuses to run in PID 1's.
 *
 * @param dir The new root filesystem (a directory).
 * @param options See {@link PivotRootIntoOptions}.
 * @throws {ConfigError} For a bad path. @throws {SetupError} In PID 1's mount namespace.
 * @throws {SyscallError} With the failing step as context.
 *
 * @example
 * ```ts ignore
 * Process.fork({ namespaces: ["mount", "pid"] }, () => {
 *   Mount.pivotRootInto("/var/lib/hako/debian");
 *   Process.exec("/bin/sh");
 * });
 * ```
 */
export function pivotRootInto(dir: string, options: PivotRootIntoOptions = {}): void {
  assertPath(dir, "pivotRootInto.dir");
  if (!options.unsafeAllowInitialNamespace && sharesInitMountNamespace()) {
    throw new SetupError(
      "pivot_root",
      `refusing to pivot into ${dir} in PID 1's mount namespace (it would change the host's root and mount ` +
        `propagation): unshare a mount namespace first (Process.fork({ namespaces: ["mount"] }, …))`,
    );
  }
  const ctx = (step: string) => `pivotRootInto(${JSON.stringify(dir)}): ${step}`;
  rawMount(null, "/", null, MS_REC | MS_PRIVATE, null, ctx("make / private recursively"));
  rawMount(dir, dir, null, MS_BIND | MS_REC, null, ctx("bind the new root onto itself"));
  check(libc().chdir(cstr(dir)), "chdir", [dir], ctx("enter the new root"));
  pivotRoot(".", ".", ctx("pivot"));
  check(libc().umount2(cstr("."), MNT_DETACH), "umount2", [".", sym("MNT_DETACH")], ctx("detach the old root"));
  check(libc().chdir(cstr("/")), "chdir", ["/"], ctx("chdir to the new /"));
}

/** True when /proc shows that the caller shares PID 1's mount namespace (and is not PID 1). */
function sharesInitMountNamespace(): boolean {
  if (libc().getpid() === 1) return false;
  try {
    return readlinkSync("/proc/self/ns/mnt") === readlinkSync("/proc/1/ns/mnt");
  } catch {
    return false; // no /proc (or no access to PID 1's): cannot tell
  }
}
