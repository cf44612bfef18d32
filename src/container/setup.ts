/**
 * The container's setup inside the child, as an ordered list of named steps, each a list of the
 * kernel calls it makes ({@link PreparedCall}). The order is data, and each step says why it sits
 * where it does. The child runs them synchronously (it is a fork of
 * the runtime: no event loop), and a failing step is reported to the parent as
 * `{ step, message, syscall, code }` over a close-on-exec pipe.
 *
 * @module
 */
import { sysctlPath } from "./_sysctl.ts";
import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join, normalize, relative } from "node:path";
import { keepBounding, type KeepPlan, keepPlan, keepSets } from "../capability.ts";
import { capabilityPlan, capabilityPlanLines, capabilitySetsFor } from "./_capsets.ts";
import { setdomainname, sethostname } from "../hostname.ts";
import * as Mount from "../mount.ts";
import { CLONE_NEWCGROUP, CLONE_NEWNS, CLONE_NEWTIME, namespaceFlags, setns } from "../namespace.ts";
import { exec, resetSignalsForExec, waitpid2 } from "../process.ts";
import { setrlimit } from "../rlimit.ts";
import { loadSeccomp } from "../seccomp.ts";
import { setgroups, setresgid, setresuid } from "../user.ts";
import { setLinkUp } from "../../ffi/net.ts";
import { addAddress, setLinkUp as netlinkLinkUp } from "../network.ts";
import { secureJoin } from "./_paths.ts";
import { parseOptions } from "../mount.ts";
import { needsGeneralMount, perMountFlags, propagationOptions } from "./_plain_mount.ts";
import { closeFd, pipe, report, writeAll } from "./_pipe.ts";
import type { ContainerFile } from "./_files.ts";
import { forkProcess } from "../../ffi/fork.ts";
import { describeHook, hookArgv } from "./hooks.ts";
import { makedev } from "./_devices.ts";
import { addressOf, check, errno, libc } from "../../ffi/libc.ts";
import { SYS } from "../../ffi/syscalls.ts";
import { cstr, cstrArray, type CStringArray } from "../../ffi/cstring.ts";
import { encodeMountAttr, MOUNT_ATTR_RDONLY, statvfsBuffer, statvfsFlags } from "../../ffi/structs.ts";
import { detect, type Layout } from "../cgroup/layout.ts";
import { Group } from "../cgroup/group.ts";
import { containerGroupSpec, otherCgroupDirs } from "./_cgroup.ts";
import { SetupError, SyscallError } from "../errors.ts";
import type { NamespaceName } from "../namespace.ts";
import type { ResolvedSpec } from "./validate.ts";
import type { MountSpec } from "./spec.ts";
import { isIdmapped, isTmpcopyup } from "./_plain_mount.ts";
import { consolePlan, type ConsoleRequest, runConsole } from "./_console.ts";
import { INIT_TARGET } from "./_init.ts";
import type { NoPivotDetach } from "./_no_pivot.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  CLONE_PARENT,
  CLOSE_RANGE_CLOEXEC,
  EACCES,
  EEXIST,
  EINTR,
  EINVAL,
  EIO,
  ENOENT,
  ENOSYS,
  ENOTDIR,
  EPERM,
  EROFS,
  MNT_DETACH,
  MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID,
  MOVE_MOUNT_F_EMPTY_PATH,
  MOVE_MOUNT_T_EMPTY_PATH,
  MS_BIND,
  MS_MOVE,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_NOSYMFOLLOW,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_STRICTATIME,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  PR_SET_DUMPABLE,
  PR_SET_NO_NEW_PRIVS,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  ST_TO_MS,
} from "../../ffi/constants.ts";

/** What the steps share. */
export interface SetupContext {
  readonly spec: ResolvedSpec;
  /** True when the child runs in a new user namespace (mknod is not allowed there). */
  readonly userns: boolean;
  /** The child's end of the status pipe (the forked child reports the pid of its own child there). */
  readonly statusFd?: number;
  /** The files hako made for the container, to bind over paths inside it (see `_files.ts`). */
  readonly files?: readonly ContainerFile[];
  /**
   * The parent's `O_PATH` fd of the rootfs (the child has the same number): the child enters the
   * rootfs through it, walking no host directory above it — root of a user namespace may not, and
   * hako's image stores are closed to all but root.
   */
  readonly rootFd?: number;
  /**
   * The detached mounts the parent made for spec mounts (a spec mount's index → its fd; the child
   * has the same numbers): the mapped copies of idmapped binds (`_idmap.ts`) and the filled tmpfs
   * of `tmpcopyup` ones whose target held files (`_tmpcopyup.ts`; one without an entry here is a
   * plain tmpfs). Attached as any captured source; the native program takes each in a slot filled
   * when it is run.
   */
  readonly detached?: ReadonlyMap<number, number>;
  /** With `-t`: the console socket (and window size) of the console step (see `_console.ts`). */
  readonly console?: ConsoleRequest;
  /**
   * OCI mode's exec FIFO (see {@link execFifoPlan}): an `O_PATH` fd of the FIFO in the OCI state
   * directory, opened by the parent on the host before the clone (the child has the same number).
   * With it the child does not wait for the start pipe: its last step before execve opens the FIFO
   * for writing, which blocks until `hako oci start` opens it for reading.
   */
  readonly execFifo?: number;
  /**
   * OCI hooks (`prestart`, `createRuntime`, `createContainer`): the child's end (read) of the sync
   * pipe. With it the hooks-sync step stops the child after its mounts, before pivot_root, says so
   * on the status pipe (`{"sync":true}`, a `SNC!` record natively) and waits for one byte from the
   * parent, which runs the hooks meanwhile (see src/oci/hooks.ts). Without it the step is not there.
   */
  readonly hooksSync?: number;
  /**
   * OCI `startContainer` hooks (with {@link execFifo}): once `hako oci start` has read the exec
   * FIFO's byte, the child waits for a second one — the FIFO opened again for reading — before
   * execve, while `start` runs the hooks in the container (see {@link execFifoPlan}).
   */
  readonly startSync?: boolean;
  /**
   * OCI `--preserve-fds N`: the caller's fds 3 … 2+N pass to the command as they are (runc's
   * `ExtraFiles`); the runtime's own fds above them close at exec as always. The parent checks
   * each is open and clears its close-on-exec flag before the clone (see `inheritFd`).
   */
  readonly preserveFds?: number;
  /**
   * OCI `--no-pivot`: instead of pivot_root, the rootfs's mount is moved over `/` and chroot'ed into
   * (the move-root step), and these host mounts are detached from the container's mount namespace
   * after the move (see _no_pivot.ts).
   */
  readonly noPivot?: readonly NoPivotDetach[];
  /**
   * OCI mode: the parent puts the container in a cgroup of its own in every mounted hierarchy,
   * not only those its group manages (`makeOtherCgroups` in _cgroup.ts, joined before the go byte), and
   * /sys/fs/cgroup shows each of them, as runc's does (cpuset, freezer, `name=systemd`…).
   */
  readonly otherCgroups?: boolean;
}

/**
 * The first fd the exec step closes (marks close-on-exec): 3, or past the caller's fds that
 * `--preserve-fds` passes on (see {@link SetupContext.preserveFds}).
 */
export function firstClosedFd(preserveFds = 0): number {
  return 3 + preserveFds;
}

/** The names of the child's setup steps, in {@link SETUP_STEPS}'s order. */
export type StepName =
  | "non-dumpable"
  | "time-namespace"
  | "join-namespaces"
  | "enter-pid-namespace"
  | "become-root"
  | "cgroup-namespace"
  | "enter-rootfs"
  | "mount-namespace"
  | "capture-propagating-sources"
  | "private-mounts"
  | "rootfs-bind"
  | "capture-host-sources"
  | "chroot-rootfs"
  | "mount-proc"
  | "mount-sys"
  | "mount-cgroup"
  | "mount-dev"
  | "mount-devpts"
  | "mount-shm"
  | "mount-mqueue"
  | "mount-init"
  | "mounts"
  | "etc-files"
  | "hostname"
  | "domainname"
  | "loopback"
  | "network"
  | "hooks-sync"
  | "pivot-root"
  | "move-root"
  | "root-propagation"
  | "sysctl"
  | "masked-paths"
  | "readonly-paths"
  | "readonly-rootfs"
  | "rlimits"
  | "workdir"
  | "new-session"
  | "provision"
  | "console"
  | "seccomp-privileged"
  | "capabilities"
  | "user"
  | "capability-sets"
  | "lookup-command"
  | "no-new-privs"
  | "seccomp";

/**
 * The steps the parent takes on the host around the child's (container.ts), as `hako plan` shows
 * them and a failure names them; each child step is a {@link StepName}.
 */
export type HostStepName =
  | "rootfs"
  | "image"
  | "bootstrap"
  | "cgroup"
  | "etc-files"
  | "idmap-mounts"
  | "tmpcopyup"
  | "clone"
  | "id-maps"
  | "cgroup-attach"
  | "veth";

/** One named step of the child's setup. */
export interface SetupStep {
  /** The name shown in errors and in `hako plan`. */
  readonly name: StepName;
  /**
   * True for the steps `hako exec` repeats for the process it starts in a running container
   * (exec.ts), in this order; the others it inherits by joining the container's namespaces, or
   * does its own way.
   */
  readonly exec?: true;
  /** Why it is here, in this order. */
  readonly why: string;
  /** Whether the step applies to this spec. */
  readonly when: (ctx: SetupContext) => boolean;
  /**
   * The kernel calls it makes, from the resolved spec: the forked child runs them ({@link runStep}),
   * the native path compiles them (native.ts), `hako plan` prints them. Read through
   * {@link stepCalls}, which keeps them per context.
   */
  readonly calls: (ctx: SetupContext) => readonly PreparedCall[];
}

const DEVICES = ["null", "zero", "full", "random", "urandom", "tty"] as const;
const DEVICE_NUMBERS: Record<(typeof DEVICES)[number], [number, number]> = {
  null: [1, 3],
  zero: [1, 5],
  full: [1, 7],
  random: [1, 8],
  urandom: [1, 9],
  tty: [5, 0],
};

/** The symlinks of a container's /dev: name → target. */
const DEV_LINKS: ReadonlyArray<readonly [string, string]> = [
  ["ptmx", "pts/ptmx"],
  ["fd", "/proc/self/fd"],
  ["stdin", "/proc/self/fd/0"],
  ["stdout", "/proc/self/fd/1"],
  ["stderr", "/proc/self/fd/2"],
  ["core", "/proc/kcore"],
];

/** Whether the host has /proc/kcore (a kernel built with CONFIG_PROC_KCORE), asked once. */
let kcore: boolean | undefined;

/**
 * The /dev links a container gets: {@link DEV_LINKS}, `core` only where the kernel has
 * /proc/kcore (as runc: no link to nothing).
 */
function devLinks(): ReadonlyArray<readonly [string, string]> {
  kcore ??= existsSync("/proc/kcore");
  return kcore ? DEV_LINKS : DEV_LINKS.filter(([link]) => link !== "core");
}

const has = (ctx: SetupContext, ns: string) => ctx.spec.newNamespaces.includes(ns as never);

/**
 * A kernel call of a setup step — every step is a list of them ({@link SetupStep.calls}), as
 * bubblewrap's setup is a list of `SetupOp`s — prepared by the parent before the fork
 * ({@link prepareSetup}): C strings encoded, flags as numbers, the message's arguments ready. The
 * forked child runs them through one interpreter ({@link runStep}), native.ts compiles them one op
 * at a time, and `hako plan` prints them ({@link planCall}). In the forked child every page V8
 * writes — a function's feedback, a fresh allocation — is a copy-on-write fault (≈ 2.5 µs each
 * here), so the less distinct code it runs, the faster it is ready. Code that must run as
 * JavaScript is an op of its own (`js`): it forces the fork.
 */
export type PreparedCall =
  | {
    readonly op: "mount";
    readonly source: Uint8Array | null;
    readonly target: Uint8Array;
    readonly type: Uint8Array | null;
    readonly flags: bigint;
    readonly data: Uint8Array | null;
    readonly shown: readonly unknown[];
  }
  | {
    readonly op: "mknod";
    readonly path: Uint8Array;
    readonly mode: number;
    readonly dev: bigint;
    readonly shown: readonly unknown[];
  }
  /** mkdir 0755; with `exist`, one that is there already is fine (EEXIST). */
  | { readonly op: "mkdir"; readonly path: Uint8Array; readonly shown: readonly unknown[]; readonly exist?: boolean }
  | { readonly op: "symlink"; readonly to: Uint8Array; readonly path: Uint8Array; readonly shown: readonly unknown[] }
  | { readonly op: "chdir"; readonly path: Uint8Array; readonly shown: readonly unknown[] }
  /** pivot_root(".", "."), then the old root detached: the caller chdir'd into the new root. */
  | { readonly op: "pivot"; readonly dot: Uint8Array }
  /**
   * OCI `--no-pivot`: out of the chroot (through the held host root), the rootfs's mount (held)
   * moved over `/`, the host's mounts detached (a proc or sysfs one the kernel keeps: covered by
   * an empty tmpfs), then `chroot(".")` into the moved rootfs.
   */
  | {
    readonly op: "move-root";
    readonly dot: Uint8Array;
    readonly slash: Uint8Array;
    readonly tmpfs: Uint8Array;
    readonly detach: readonly { readonly path: Uint8Array; readonly shown: string; readonly cover: boolean }[];
  }
  /**
   * A recursive copy of the mounts at the working directory attached over it
   * (`open_tree(OPEN_TREE_CLONE|AT_RECURSIVE)`, `move_mount`), then entered (`fchdir`).
   */
  | { readonly op: "rootfs-mount"; readonly dot: Uint8Array; readonly empty: Uint8Array }
  /**
   * A host path a mount inside the rootfs binds from, taken as a detached copy of its mount
   * (`open_tree(OPEN_TREE_CLONE)`, recursive or not) before the child chroots into the rootfs, and
   * held under `id` until {@link PreparedCall} `attach` (or `release`) uses it.
   */
  | {
    readonly op: "capture";
    readonly id: string;
    /** The step that attaches it (a failure is that step's). */
    readonly step: StepName;
    readonly source: Uint8Array;
    readonly recursive: boolean;
    readonly shown: readonly unknown[];
  }
  /**
   * A captured mount attached at `target`, a path inside the rootfs resolved in the chroot
   * (`move_mount`), then made read-only when asked (keeping its other flags).
   */
  | {
    readonly op: "attach";
    readonly id: string;
    readonly target: Uint8Array;
    readonly path: string;
    readonly readonly: boolean;
    readonly empty: Uint8Array;
    /** `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC` a bind mount's options add, in the same remount. */
    readonly flags?: number;
    /**
     * A held target fd (`open-target`'s id): the mount is moved onto it (`MOVE_MOUNT_T_EMPTY_PATH`),
     * and made read-only (with `flags`) before, on the detached copy (`mount_setattr(fd, "",
     * AT_EMPTY_PATH, attr)`; before Linux 5.12, ENOSYS: remounted at `path` after).
     */
    readonly at?: string;
    /** With `at`: the `struct mount_attr` of `readonly` and `flags`. */
    readonly attr?: Uint8Array;
  }
  /**
   * A detached mount the parent made (an idmapped bind's, a filled tmpfs's: see
   * {@link SetupContext.detached}), inherited as `fd`, held
   * under `id` as a `capture`'s is (undefined in a plan made without one).
   */
  | { readonly op: "inherit"; readonly id: string; readonly fd: number | undefined; readonly shown: readonly unknown[] }
  /** A captured mount not used after all (closed). */
  | { readonly op: "release"; readonly id: string }
  /**
   * A spec mount's target opened and held under `id` (an `O_PATH` fd: `openat2(AT_FDCWD, path,
   * how)`, {@link TARGET_HOW}: no symlink followed, so the object opened is the one at the path the
   * parent resolved and checked in the image — see {@link specMountCalls}); the mount is then made
   * on the fd (`attach` or `mount-at` with `at: id`), not on a path walked again.
   */
  | {
    readonly op: "open-target";
    readonly id: string;
    readonly path: Uint8Array;
    readonly how: Uint8Array;
    readonly shown: readonly unknown[];
  }
  /**
   * A directory of a spec mount's target made inside its parent, opened first as a target is (no
   * symlink followed): `openat2(parent)`, `mkdirat(fd, name, 0755)` (EEXIST is fine), `close`.
   */
  | {
    readonly op: "mkdir-in";
    readonly parent: Uint8Array;
    readonly name: Uint8Array;
    readonly how: Uint8Array;
    readonly shown: readonly unknown[];
  }
  /**
   * A file system mounted on a held target fd (`open-target`'s `at`): `fchdir(fd)`, the mount on
   * `"."`, `chdir("/")` back to the chroot's root, `close(fd)`.
   */
  | {
    readonly op: "mount-at";
    readonly at: string;
    readonly mount: PreparedMount;
    readonly dot: Uint8Array;
    readonly slash: Uint8Array;
  }
  /**
   * The host's root held (an O_PATH fd, for pivot-root to leave the chroot by), then `chroot(".")`
   * into the rootfs's mount: from here on every path — and every symlink in the image — resolves
   * inside the rootfs.
   */
  | { readonly op: "chroot-in"; readonly dot: Uint8Array; readonly slash: Uint8Array }
  /** A bind mount remounted read-only, keeping its other flags. */
  | { readonly op: "remount-ro"; readonly target: Uint8Array; readonly path: string }
  /**
   * A spec mount whose options need the general `Mount.mount` (bind, move, remount: see
   * _plain_mount.ts), made on the held target fd (`at`, an `open-target`'s id) as `mount-at` is:
   * `fchdir(fd)`, `Mount.mount(source, ".", …)`, `chdir("/")`. A new bind's per-mount flags (ro,
   * nosuid…) are a remount of the bind just made, which `"."` does not reach (it names the
   * directory under it): the path is walked again with no symlink followed, which steps onto the
   * mount at its end, and the remount made there (a directory swapped meanwhile is no mount root:
   * EINVAL). The forked child only.
   */
  | {
    readonly op: "mount-options";
    readonly source: string;
    readonly target: string;
    readonly type: string;
    readonly options: string;
    readonly at: string;
  }
  /**
   * The workdir: `openat2(AT_FDCWD, path, O_PATH|O_DIRECTORY, RESOLVE_NO_MAGICLINKS)`, `fchdir`,
   * `close`; before Linux 5.6 (ENOSYS) a plain chdir. No magic link is followed: a workdir of
   * `/proc/self/fd/N` (or a symlink of the image's to it) would else make the cwd a directory the
   * runtime holds open on the host, outside the container's root (runc's CVE-2024-21626).
   */
  | { readonly op: "chdir-in"; readonly path: Uint8Array; readonly how: Uint8Array; readonly shown: readonly unknown[] }
  /**
   * A masked path, made on the fd of what is there (`openat2(AT_FDCWD, path, how)`,
   * {@link PATHS_HOW}: no magic link followed), never on the path walked again: `fchdir(fd)` and an
   * empty read-only tmpfs mounted on `"."` (`dir`), or — fchdir ENOTDIR: it is a file — the host's
   * /dev/null moved onto the fd (`file`: its copy captured before the chroot, attached at `id`);
   * ENOENT (not on this kernel) skips it, and the copy is closed (`release`). Trying the calls
   * instead of an lstat first keeps node:fs (and its exceptions) out of the child.
   */
  | {
    readonly op: "mask";
    readonly path: Uint8Array;
    readonly how: Uint8Array;
    /** The id the opened fd is held under for `file`. */
    readonly id: string;
    readonly shown: readonly unknown[];
    readonly dir: PreparedMount;
    readonly dot: Uint8Array;
    readonly slash: Uint8Array;
    readonly file: Extract<PreparedCall, { op: "attach" }>;
    readonly release: Extract<PreparedCall, { op: "release" }>;
  }
  /**
   * A read-only path, made on the fd of what is there (`openat2(AT_FDCWD, path, how)`,
   * {@link PATHS_HOW}; ENOENT skips it): a copy of its mount taken from that fd
   * (`open_tree(fd, "", OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH)`, held as `attach.id`), then
   * `attach`: made read-only while detached and moved back onto the fd (held as `attach.at`).
   */
  | {
    readonly op: "readonly";
    readonly path: string;
    readonly target: Uint8Array;
    readonly how: Uint8Array;
    readonly empty: Uint8Array;
    readonly shown: readonly unknown[];
    readonly attach: Extract<PreparedCall, { op: "attach" }>;
  }
  /**
   * An empty file made as a mount point (a device bound over it in a user namespace's /dev); one
   * that exists where the file system is read-only (EACCES, EROFS) is left as it is.
   */
  | {
    readonly op: "touch";
    readonly path: Uint8Array;
    readonly shown: readonly unknown[];
    /** A spec mount's target: opened by `openat2(AT_FDCWD, path, how)`, no symlink followed. */
    readonly how?: Uint8Array;
  }
  /**
   * sysfs, or — refused (EPERM: a user namespace without a network namespace of its own may not
   * mount it) — the host's /sys bound read-only (`bind`, then remounted read-only at `target`).
   */
  | {
    readonly op: "sysfs";
    readonly sysfs: PreparedMount;
    /** The captured host /sys (`capture` id) to attach instead. */
    readonly bind: string;
    readonly empty: Uint8Array;
    readonly path: string;
    readonly target: Uint8Array;
    /** The bound /sys's submounts (cgroup, securityfs, debugfs…) made read-only with it. */
    readonly tree: ReadonlyTree;
  }
  /**
   * Every mount at and under `path` made read-only at once (`mount_setattr(AT_RECURSIVE,
   * MOUNT_ATTR_RDONLY)`, Linux 5.12); a kernel without it (ENOSYS) keeps what the bind gave.
   */
  | ReadonlyTree
  /** prctl(option, arg): PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS… (`name`: the option's name, for messages). */
  | { readonly op: "prctl"; readonly option: number; readonly arg: number; readonly name: string }
  /** unshare(flag) of one namespace kind (`name`: `CLONE_NEWNS`…). */
  | { readonly op: "unshare"; readonly flag: number; readonly name: string }
  /**
   * The time namespace's clock offsets written to {@link TIMENS_OFFSETS} in one write; with
   * `dumpable`, the open is made while dumpable (see {@link timensNeedsDumpable}).
   */
  | { readonly op: "timens-offsets"; readonly text: string; readonly dumpable: boolean }
  /** An existing namespace joined by its path (opened, setns, closed). */
  | { readonly op: "setns"; readonly path: string; readonly type: NamespaceName }
  /**
   * The rest of the setup continued in a child cloned as the caller's own (`CLONE_PARENT`), which
   * reports its pid on the status pipe; this process exits (a joined PID namespace).
   */
  | { readonly op: "clone-parent" }
  /** setresuid or setresgid, all three ids to `id`. */
  | { readonly op: "setresuid" | "setresgid"; readonly id: number }
  /** setgroups(groups); with `epermOk` (rootless, setgroups denied), EPERM leaves them as they are. */
  | { readonly op: "setgroups"; readonly groups: readonly number[]; readonly epermOk: boolean }
  /** fchdir into the rootfs through the parent's O_PATH fd of it (`path`: for messages). */
  | { readonly op: "enter-rootfs"; readonly path: string }
  | { readonly op: "sethostname"; readonly name: string }
  | { readonly op: "setdomainname"; readonly name: string }
  /**
   * The command found as execve will look for it (its path, or each of `candidates` in turn):
   * faccessat(X_OK), a candidate missing or refused passes to the next; the last one's failure is
   * the step's.
   */
  | { readonly op: "lookup"; readonly cmd: string; readonly candidates: readonly string[] }
  /** A sysctl written: open(path, O_WRONLY), write(value) whole, close. */
  | { readonly op: "sysctl"; readonly key: string; readonly path: string; readonly value: string }
  /**
   * A sync point (see {@link SetupContext.hooksSync}): "at the sync point" written on the status
   * pipe, then one byte read from the sync pipe (anything else: the parent gave up).
   */
  | { readonly op: "sync" }
  /** lo set up (an ioctl on a datagram socket). */
  | { readonly op: "loopback-up" }
  /** prlimit(0, name, limit): `limit` as the spec gives it (one value, or soft and hard). */
  | { readonly op: "rlimit"; readonly name: string; readonly limit: ResolvedSpec["rlimits"][string] }
  | { readonly op: "setsid" }
  /** With -t: the console step's pty (see `_console.ts`). */
  | { readonly op: "console"; readonly request: ConsoleRequest; readonly uid: number }
  /**
   * The bounding set trimmed to the capability plan's (worked out by whoever runs it: the forked
   * child, or the parent compiling the native program); with `keepCaps`, PR_SET_KEEPCAPS after.
   */
  | { readonly op: "bounding"; readonly keepCaps: boolean }
  /** The effective, permitted, inheritable sets set and the ambient set cleared and raised (the same plan). */
  | { readonly op: "capsets" }
  /** The seccomp filter (compiled by the parent in resolveSpec) loaded. */
  | { readonly op: "seccomp"; readonly program: Uint8Array }
  /**
   * Code that must run as JavaScript in the child (the provision hook, netlink): the forked child
   * runs it; its presence forces the fork on the native path. `lines`: what `hako plan` shows.
   */
  | {
    readonly op: "js";
    readonly why: string;
    readonly lines: readonly string[];
    readonly run: (ctx: SetupContext) => void;
  };
type ReadonlyTree = {
  readonly op: "readonly-tree";
  readonly path: Uint8Array;
  readonly attr: Uint8Array;
  readonly shown: readonly unknown[];
};
type PreparedMount = Extract<PreparedCall, { op: "mount" }>;

/** The `MS_*` mount flags the standard steps use. */
export const MS = {
  RDONLY: MS_RDONLY,
  NOSUID: MS_NOSUID,
  NODEV: MS_NODEV,
  NOEXEC: MS_NOEXEC,
  REMOUNT: MS_REMOUNT,
  NOATIME: MS_NOATIME,
  NODIRATIME: MS_NODIRATIME,
  BIND: MS_BIND,
  REC: MS_REC,
  PRIVATE: MS_PRIVATE,
  RELATIME: MS_RELATIME,
  STRICTATIME: MS_STRICTATIME,
  NOSYMFOLLOW: MS_NOSYMFOLLOW,
} as const;
const O_PATH_DIRECTORY_CLOEXEC = O_PATH | O_DIRECTORY | O_CLOEXEC;
const O_WRONLY_CREAT_CLOEXEC = O_WRONLY | O_CREAT | O_CLOEXEC;
const O_WRONLY_CLOEXEC = O_WRONLY | O_CLOEXEC;
const O_RDONLY_CLOEXEC = O_RDONLY | O_CLOEXEC;

/** A value shown unquoted in a SyscallError message. */
const unquoted = (text: string) => Object.freeze({ toString: () => text });

function preparedMount(source: string | null, target: string, type: string | null, flags: number, data?: string) {
  const shown: unknown[] = [source ?? unquoted("NULL"), target, type ?? unquoted("NULL")];
  if (flags) shown.push(unquoted(`0x${flags.toString(16)}`));
  if (data) shown.push(data);
  return {
    op: "mount",
    source: source === null ? null : cstr(source),
    target: cstr(target),
    type: type === null ? null : cstr(type),
    flags: BigInt(flags),
    data: data ? cstr(data) : null,
    shown,
  } as const;
}

function readonlyTree(path: string): ReadonlyTree {
  return {
    op: "readonly-tree",
    path: cstr(path),
    attr: encodeMountAttr(MOUNT_ATTR_RDONLY),
    shown: [unquoted("AT_FDCWD"), path, unquoted("AT_RECURSIVE"), unquoted("{MOUNT_ATTR_RDONLY}")],
  };
}

let hostCgroupLayout: Layout | null | undefined;

function hostLayout(): Layout | null {
  if (hostCgroupLayout === undefined) {
    try {
      hostCgroupLayout = detect();
    } catch {
      hostCgroupLayout = null;
    }
  }
  return hostCgroupLayout;
}

/**
 * The container's own cgroup directories, each with its hierarchy's name under /sys/fs/cgroup
 * (`""` for a cgroup2 mount there), for a container in the host's cgroup namespace: they are bound
 * at /sys/fs/cgroup, read-only, in place of the hierarchies (runc's binds on v1, the view docker's
 * default cgroup namespace gives on v2). A cgroup filesystem mounted there would show the whole
 * hierarchy: every host cgroup, its processes and its limits. Hierarchies where the container has
 * no cgroup of its own are left empty. Not for a container that is not host root (it mounts
 * nothing there without a cgroup namespace: see {@link cgroupMountCalls}).
 */
function ownCgroupBinds(ctx: SetupContext): Array<{ id: string; source: string; name: string }> {
  return has(ctx, "cgroup") || notHostRoot(ctx) ? [] : ownCgroupDirs(ctx);
}

/**
 * The hierarchies the container has a cgroup of its own in (see {@link ownCgroupBinds}): the
 * only ones shown at /sys/fs/cgroup. In another (a v1 controller without a limit, a hybrid host's
 * cgroup2 tree) it is still in its caller's cgroup, where its cgroup namespace is rooted too: a
 * mount there would show the caller's subtree — the whole host tree when that is the root.
 */
function ownCgroupDirs(ctx: SetupContext): Array<{ id: string; source: string; name: string }> {
  const layout = hostLayout();
  const cgroupName = ctx.spec.cgroupName;
  if (!layout || !cgroupName) return [];
  let dirs: string[];
  try {
    dirs = new Group(cgroupName, containerGroupSpec(ctx.spec.cgroup, { devices: !ctx.spec.rootless })).paths;
  } catch {
    return [];
  }
  if (ctx.otherCgroups) dirs = [...dirs, ...otherCgroupDirs(cgroupName, dirs)];
  const out: Array<{ id: string; source: string; name: string }> = [];
  for (const m of layout.mounts) {
    const name = m.mountPoint === "/sys/fs/cgroup"
      ? ""
      : m.mountPoint.startsWith("/sys/fs/cgroup/")
      ? m.mountPoint.slice("/sys/fs/cgroup/".length)
      : undefined;
    if (name === undefined || name.includes("/") || out.some((b) => b.name === name)) continue;
    const source = `${m.mountPoint}/${cgroupName}`;
    if (dirs.includes(source)) out.push({ id: `cgroup:${name || "unified"}`, source, name });
  }
  return out;
}

/**
 * What of the container's cgroups its program holds (part of the program cache's key, native.ts):
 * the hierarchies /sys/fs/cgroup shows a cgroup of its own in — the spec's limits decide those (a
 * cpuset limit gives a cpuset directory) — and, without a cgroup namespace, the host directories
 * bound there, which name the cgroup. Empty where no mount step shows them.
 */
export function cgroupViewKey(ctx: SetupContext): { readonly shown: string[]; readonly bound: string[] } {
  if (!ctx.spec.standardMounts || !has(ctx, "mount")) return { shown: [], bound: [] };
  return {
    shown: ownCgroupDirs(ctx).map((d) => d.name),
    bound: ownCgroupBinds(ctx).map((b) => b.source),
  };
}

/**
 * The container's view of its cgroups at /sys/fs/cgroup, read-only (as runc and crun mount it):
 * on a cgroup v2 host one cgroup2 mount; on a v1 (or hybrid) host a tmpfs holding one cgroup
 * mount per hierarchy the host has (and the unified one), the host's symlinks (`cpu` →
 * `cpu,cpuacct`), then the tmpfs made read-only too. With a cgroup namespace of its own the
 * mounts show the container's subtree only; without one, the container's own directories are
 * bound instead ({@link ownCgroupBinds}), never a whole hierarchy. A user namespace without a cgroup namespace of its
 * own may not mount cgroup filesystems: an empty read-only tmpfs then hides what the host's /sys
 * brought.
 */
function cgroupMountCalls(ctx: SetupContext): PreparedCall[] {
  const dir = "/sys/fs/cgroup"; // (inside the rootfs: the child has chroot'ed into it)
  const ro = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  // The container's own cgroups and the tmpfs around them: read-only but where the spec says
  // writableCgroupfs (runc remounts its tmpfs read-only only for a bundle's `ro`)
  const ownFlags = ctx.spec.writableCgroupfs ? MS.NOSUID | MS.NODEV | MS.NOEXEC : ro;
  const layout = hostLayout();
  const mayMount = !notHostRoot(ctx) || has(ctx, "cgroup");
  const tmpfsData = "mode=755,size=64k";
  const tmpfs = preparedMount("tmpfs", dir, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, tmpfsData);
  const sealed: PreparedCall[] = ctx.spec.writableCgroupfs
    ? []
    : [preparedMount(null, dir, null, MS.REMOUNT | ro, tmpfsData)];
  if (!layout || !mayMount) return [tmpfs, ...sealed];
  // In the host's cgroup namespace: the container's own directories, bound (see ownCgroupBinds);
  // in its own: the hierarchies it has a cgroup of its own in (see ownCgroupDirs).
  const own = has(ctx, "cgroup") ? undefined : new Map(ownCgroupBinds(ctx).map((b) => [b.name, b.id]));
  const owned = new Set(ownCgroupDirs(ctx).map((d) => d.name));
  const bind = (id: string, where: string): PreparedCall => ({
    op: "attach",
    id,
    target: cstr(where),
    path: where,
    readonly: !ctx.spec.writableCgroupfs,
    empty: EMPTY,
    flags: MS.NOSUID | MS.NODEV | MS.NOEXEC,
  });
  if (layout.version === 2 && layout.unified === "/sys/fs/cgroup") {
    if (!own) return [preparedMount("cgroup2", dir, "cgroup2", ownFlags)];
    return own.has("") ? [bind(own.get("")!, dir)] : [tmpfs, ...sealed];
  }
  const calls: PreparedCall[] = [tmpfs];
  const seen = new Set<string>();
  for (const m of layout.mounts) {
    const name = m.mountPoint.startsWith("/sys/fs/cgroup/") ? m.mountPoint.slice("/sys/fs/cgroup/".length) : "";
    if (!name || name.includes("/") || seen.has(name)) continue;
    // (a named hierarchy, name=systemd: shown only where the container has a cgroup there, OCI's)
    if (m.version === 1 && m.subsystems.length === 0 && !(own ?? owned).has(name)) continue;
    seen.add(name);
    const where = join(dir, name);
    calls.push({ op: "mkdir", path: cstr(where), shown: [where, unquoted("0755")] });
    if (own) {
      if (own.has(name)) calls.push(bind(own.get(name)!, where));
      continue;
    }
    if (!owned.has(name)) continue;
    calls.push(
      m.version === 2 ? preparedMount("cgroup2", where, "cgroup2", ownFlags) : preparedMount(
        "cgroup",
        where,
        "cgroup",
        ownFlags,
        m.subsystems.length ? m.subsystems.join(",") : `none,name=${m.name}`,
      ),
    );
  }
  // The host's aliases of co-mounted hierarchies (cpu -> cpu,cpuacct).
  let entries: string[] = [];
  try {
    entries = readdirSync("/sys/fs/cgroup");
  } catch { /* none */ }
  for (const e of entries) {
    const host = join("/sys/fs/cgroup", e);
    if (!lstatSync(host, { throwIfNoEntry: false })?.isSymbolicLink()) continue;
    const to = readlinkSync(host);
    if (to.includes("/") || !seen.has(to)) continue;
    calls.push({ op: "symlink", to: cstr(to), path: cstr(join(dir, e)), shown: [to, join(dir, e)] });
  }
  // Where a spec mount goes under /sys/fs/cgroup — podman --systemd's bind of the name=systemd
  // hierarchy at /sys/fs/cgroup/systemd (as runc makes it) — its directory in the tmpfs, made
  // before the tmpfs is sealed: the mounts step, later, could not.
  for (const m of ctx.spec.mounts) {
    const target = normalize(`/${m.target}`);
    if (!target.startsWith(`${dir}/`)) continue;
    const name = target.slice(dir.length + 1).split("/")[0]!;
    if (seen.has(name)) continue;
    seen.add(name);
    const where = join(dir, name);
    calls.push({ op: "mkdir", path: cstr(where), shown: [where, unquoted("0755")], exist: true });
  }
  calls.push(...sealed);
  return calls;
}

/** A path of the rootfs as the child sees it once chroot'ed into it (symlinks resolved inside it). */
function inside(ctx: SetupContext, p: string): string {
  return targetInRootfs(ctx.spec.rootfsPath, p);
}

/** A spec mount's target as the mounts step resolves it in the rootfs (its symlinks followed inside). */
export function targetInRootfs(rootfsPath: string, target: string): string {
  return `/${relative(rootfsPath, secureJoin(rootfsPath, normalize(`/${target}`)))}`;
}

const EMPTY = cstr("");

/** The workdir's `struct open_how` (see the `chdir-in` call). */
const WORKDIR_HOW = (() => {
  const how = new BigUint64Array([BigInt(O_PATH | O_DIRECTORY | O_CLOEXEC), 0n, BigInt(RESOLVE_NO_MAGICLINKS)]);
  return new Uint8Array(how.buffer);
})();

/**
 * The bind mounts of the container's files ({@link SetupContext.files}): its own read-write (as
 * docker's), the host's read-only. Their sources were captured before the chroot
 * ({@link hostSourceCaptures}). Each target — resolved in the image by the parent, which refused
 * one inside /proc (`_files.ts`) — is opened as a spec mount's is ({@link TARGET_HOW}: no symlink
 * followed, so one a volume over /etc holds, or a sibling swaps in, is refused) and the copy is
 * moved onto that fd, made read-only before while detached: what runc does for docker's /etc
 * binds, which reach it as spec mounts (libcontainer/rootfs_linux.go, CVE-2025-52881).
 */
export function fileMountCalls(ctx: SetupContext): PreparedCall[] {
  return (ctx.files ?? []).flatMap((f, i): PreparedCall[] => {
    const at = `/${relative(ctx.spec.rootfsPath, f.target)}`;
    const target = `etc-target:${i}`;
    return [
      { op: "open-target", id: target, path: cstr(at), how: TARGET_HOW, shown: [at, unquoted("O_PATH"), NO_SYMLINKS] },
      {
        op: "attach",
        id: `file:${i}`,
        target: cstr(at),
        path: at,
        readonly: f.readonly,
        empty: EMPTY,
        at: target,
        attr: encodeMountAttr(f.readonly ? MOUNT_ATTR_RDONLY : 0),
      },
    ];
  });
}

/**
 * True when the child is not root of the host: in a new user namespace, or hako itself runs in a
 * nested one (rootless podman's: `spec.rootless` with uid 0). It may not make device nodes (the
 * host's are bound instead), mount sysfs without a network namespace of its own (/sys is bound
 * then) nor cgroup hierarchies without a cgroup namespace, as runc's rootless containers.
 */
function notHostRoot(ctx: SetupContext): boolean {
  return ctx.userns || ctx.spec.rootless;
}

/**
 * The spec's device nodes (`devices`), in the fresh /dev tmpfs (nothing there is the image's): the
 * directories above each, then the node — mknod with its mode (kept whatever the umask), or, in a
 * user namespace where mknod of a device is not allowed, the host's node at the same path bound
 * over an empty file (captured before the chroot), as runc does; a FIFO is made with mknod either
 * way.
 */
function deviceNodeCalls(ctx: SetupContext): PreparedCall[] {
  return ctx.spec.devices.flatMap((d, i): PreparedCall[] => {
    const parts = d.path.split("/").filter(Boolean); // ["dev", …, name]
    const dirs = parts.slice(1, -1).map((_, k) => `/${parts.slice(0, k + 2).join("/")}`); // (/dev/net for /dev/net/tun)
    const made: PreparedCall[] = dirs.map((dir) => ({
      op: "mkdir",
      path: cstr(dir),
      shown: [dir, unquoted("0755")],
      exist: true,
    }));
    const mode = d.fileMode ?? 0o666;
    if (d.type !== "p" && notHostRoot(ctx)) {
      return [
        ...made,
        { op: "touch", path: cstr(d.path), shown: [d.path] },
        { op: "attach", id: `devnode:${i}`, target: cstr(d.path), path: d.path, readonly: false, empty: EMPTY },
      ];
    }
    const kind = d.type === "p" ? S_IFIFO : d.type === "b" ? S_IFBLK : S_IFCHR;
    const [major, minor] = d.type === "p" ? [0, 0] : [d.major ?? 0, d.minor ?? 0];
    return [...made, {
      op: "mknod",
      path: cstr(d.path),
      mode: kind | mode,
      dev: makedev(major, minor),
      shown: [d.path, d.type === "p" ? "p" : `${d.type === "b" ? "b" : "c"} ${major}:${minor}`],
    }];
  });
}

/** An `open_tree(OPEN_TREE_CLONE)` of a host path, held under `id` for the step that attaches it. */
function captureCall(step: StepName, id: string, source: string, recursive: boolean): PreparedCall {
  return {
    op: "capture",
    id,
    step,
    source: cstr(source),
    recursive,
    shown: [source, unquoted(`OPEN_TREE_CLONE${recursive ? "|AT_RECURSIVE" : ""}`)],
  };
}

/** The propagation options that keep a bind in touch with its host source: shared and slave ones. */
const HOST_PROPAGATION = new Set(["shared", "rshared", "slave", "rslave"]);

/** Whether a spec mount is a bind whose propagation options keep it in touch with the host source. */
function propagatesWithHost(m: MountSpec): boolean {
  return m.type === "bind" && !isIdmapped(m) && (m.options ?? []).some((o) => HOST_PROPAGATION.has(o));
}

/**
 * Every host path a mount inside the rootfs binds from, captured before the child chroots into the
 * rootfs: /sys and the default devices in a user namespace, the spec's bind mounts' sources, the
 * container's files. `propagating`: only the spec's binds with a shared or slave propagation
 * option ({@link propagatesWithHost}), captured right after the mount namespace is made, while its
 * mounts are still the host's peers — so the copy joins the source's peer group, and `rshared`
 * (Kubernetes' Bidirectional) or `rslave` (HostToContainer) has a host to propagate with, as with
 * runc; every other source is captured after the namespace went private, so the copy is private.
 */
function hostSourceCaptures(ctx: SetupContext, propagating: boolean): PreparedCall[] {
  if (propagating) {
    return ctx.spec.mounts.flatMap((m, i) =>
      m.type === "bind" && propagatesWithHost(m)
        ? [captureCall("mounts", `mount:${i}`, m.source!, !(m.options ?? []).includes("norbind"))]
        : []
    );
  }
  const capture = captureCall;
  const out: PreparedCall[] = [];
  if (ctx.spec.standardMounts && notHostRoot(ctx)) {
    out.push(capture("mount-sys", "sys", "/sys", true));
    for (const d of DEVICES) out.push(capture("mount-dev", `dev/${d}`, `/dev/${d}`, false));
    // (the spec's device nodes: the host's at the same path, bound in the mount-dev step)
    ctx.spec.devices.forEach((d, i) => {
      if (d.type !== "p") out.push(capture("mount-dev", `devnode:${i}`, d.path, false));
    });
  }
  ctx.spec.mounts.forEach((m, i) => {
    if (isIdmapped(m)) {
      // (copied and mapped by the parent, which may: see _idmap.ts)
      out.push({
        op: "inherit",
        id: `mount:${i}`,
        fd: ctx.detached?.get(i),
        shown: [
          m.source!,
          unquoted(`idmapped by the parent${(m.options ?? []).includes("ridmap") ? ", recursively" : ""}`),
        ],
      });
    } else if (isFilledTmpfs(ctx, m, i)) {
      // (made and filled by the parent: see _tmpcopyup.ts)
      out.push({
        op: "inherit",
        id: `mount:${i}`,
        fd: ctx.detached?.get(i),
        shown: ["tmpfs", unquoted(`filled from ${m.target} by the parent (tmpcopyup)`)],
      });
    } else if (m.type === "bind" && !propagatesWithHost(m)) {
      out.push(capture("mounts", `mount:${i}`, m.source!, !(m.options ?? []).includes("norbind")));
    }
  });
  if (ctx.spec.standardMounts && has(ctx, "mount")) {
    for (const b of ownCgroupBinds(ctx)) out.push(capture("mount-cgroup", b.id, b.source, false));
  }
  (ctx.files ?? []).forEach((f, i) => out.push(capture("etc-files", `file:${i}`, f.source, false)));
  if (ctx.spec.init) out.push(capture("mount-init", "init", ctx.spec.init, false));
  // The /dev/null masked files are bound from: the host's, taken now. The container's own /dev/null
  // is not to be trusted by then: a volume mounted over /dev (through an image's symlink, or a
  // shared volume's race) can make it a symlink to /proc/sys/kernel/core_pattern, which the bind
  // would follow and leave writable at a masked path (runc's CVE-2025-31133, fixed there by
  // checking /dev/null before binding it).
  if (has(ctx, "mount")) {
    ctx.spec.maskedPaths.forEach((_, i) => out.push(capture("masked-paths", `mask:${i}`, "/dev/null", false)));
  }
  return out;
}

/**
 * Refuses a spec mount whose target, resolved in the rootfs, is inside /proc (runc's
 * `checkProcMount`): a mount over /proc/self/fd, /proc/sys… would redirect what the setup opens or
 * writes there (runc's CVE-2019-16884, CVE-2025-52881), named so or through a symlink of the
 * image's. lxcfs's files are allowed, and a proc filesystem at /proc itself.
 * @throws {SetupError} For the `mounts` step, naming the mount.
 */
function assertNoProcMounts(ctx: SetupContext): void {
  ctx.spec.mounts.forEach((m, i) => {
    const at = inside(ctx, normalize(`/${m.target}`));
    if ((at === "/proc" && m.type !== "proc") || (at.startsWith("/proc/") && !PROC_MOUNTS.has(at))) {
      throw new SetupError(
        "mounts",
        `mounts[${i}].target ${JSON.stringify(m.target)}${
          at !== m.target ? ` (${at} in the rootfs, through its symlinks)` : ""
        } is inside /proc: not allowed (but lxcfs's ${[...PROC_MOUNTS].join(", ")})`,
      );
    }
  });
}

/** The files under /proc a spec mount may cover: lxcfs's (runc's `checkProcMount` list). */
const PROC_MOUNTS = new Set([
  "/proc/cpuinfo",
  "/proc/diskstats",
  "/proc/meminfo",
  "/proc/stat",
  "/proc/swaps",
  "/proc/uptime",
  "/proc/loadavg",
  "/proc/slabinfo",
  "/proc/net/dev",
  "/proc/sys/kernel/ns_last_pid",
]);

// Which options a plain mount(2) makes and which need the general Mount.mount: _plain_mount.ts,
// the one rule (the OCI runtime decides its re-exec by it too). (A copy of it with the mask
// 0xf0000, which left MS_SHARED out and put MS_POSIXACL in, once sent a "shared" option to the
// native program's plain mount(2) and the others to the forked path's Mount.mount — and on both
// a mount(2) with a propagation flag changes the propagation of the mount at its target and
// mounts nothing, so neither made the filesystem asked for.)

/**
 * How a spec mount's target (and each directory above it) is opened in the child:
 * `RESOLVE_NO_SYMLINKS` (magic links included). The parent resolved the target in the image, with
 * its symlinks, and checked it ({@link assertNoProcMounts}); what the child meets on the way that
 * the parent did not see — a symlink a volume holds (the parent looks at the image, before any
 * volume is mounted), or one a container sharing the volume or the rootfs swaps in meanwhile — is
 * refused (ELOOP) rather than followed: inside the chroot such a link reaches the container's own
 * /proc (/proc/sys/kernel, /proc/1/root to the host: the chroot is no barrier into /proc). The
 * chroot is the root of the walk (the path is absolute and normalized: no `..`). runc resolves
 * its targets inside the root through file descriptors too and mounts on the fd it checked
 * (libcontainer/rootfs_linux.go, CVE-2025-52881); it follows a volume's symlinks inside the root
 * and checks the result is not on procfs — hako, whose native child cannot compare an fstatfs,
 * follows none (a target through a volume's symlink is refused, naming it).
 */
const TARGET_HOW = openHow(O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
const TARGET_DIR_HOW = openHow(O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
const TARGET_FILE_HOW = openHow(O_WRONLY | O_CREAT | O_CLOEXEC, 0o644, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
const NO_SYMLINKS = unquoted("RESOLVE_NO_SYMLINKS");
/**
 * How a masked or read-only path is opened, after pivot_root (the container's root is the root of
 * the walk): `RESOLVE_NO_MAGICLINKS`. The mount is made on the fd opened, so a symlink swapped in
 * after the open changes nothing; an ordinary symlink met on the way is followed, as runc follows
 * them (its maskPaths opens with O_PATH, its readonlyPath binds by path), since it cannot leave the
 * container's root and these mounts only take access away — but a magic link (/proc/1/root of a
 * container in the host's pid namespace, /proc/self/fd/N) is refused: it leads out of the root.
 * (runc's statfs checks are of /dev/null's inode, not of the masked path's file system: a masked
 * path may be anywhere an OCI config names, so none is made here either.)
 */
const PATHS_HOW = openHow(O_PATH | O_CLOEXEC, 0, RESOLVE_NO_MAGICLINKS);

/** A `struct open_how` for openat2(2). */
function openHow(flags: number, mode: number, resolve: number): Uint8Array {
  return new Uint8Array(new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]).buffer);
}

/** `MS_*` read-only and bind flags as `MOUNT_ATTR_*` (the same bits: RDONLY 1, NOSUID 2, NODEV 4, NOEXEC 8). */
function mountAttrOf(flags: number): number {
  return (flags & MS.RDONLY ? MOUNT_ATTR_RDONLY : 0) | (flags & MS.NOSUID ? MOUNT_ATTR_NOSUID : 0) |
    (flags & MS.NODEV ? MOUNT_ATTR_NODEV : 0) | (flags & MS.NOEXEC ? MOUNT_ATTR_NOEXEC : 0);
}

/**
 * The spec's own mounts, inside the chroot: each target resolved in the rootfs by the parent, its
 * missing directories (or empty file) made, each opened with no symlink followed
 * ({@link TARGET_HOW}), then the mount made on the target's fd — a bind from its captured source,
 * made read-only when asked (on the detached copy, before it is attached); a filesystem with its
 * options.
 */
export function specMountCalls(ctx: SetupContext): PreparedCall[] {
  const out: PreparedCall[] = [];
  ctx.spec.mounts.forEach((m, i) => {
    const at = inside(ctx, normalize(`/${m.target}`));
    // (a source that is not there fails where it is captured, named as this step's)
    const file = m.type === "bind" && !(statSync(m.source!, { throwIfNoEntry: false })?.isDirectory() ?? true);
    const parts = at.split("/").filter(Boolean);
    for (let k = 1; k <= parts.length - (file ? 1 : 0); k++) {
      const parent = `/${parts.slice(0, k - 1).join("/")}`, name = parts[k - 1]!;
      out.push({
        op: "mkdir-in",
        parent: cstr(parent),
        name: cstr(name),
        how: TARGET_DIR_HOW,
        shown: [join(parent, name), unquoted("0755")],
      });
    }
    if (file) out.push({ op: "touch", path: cstr(at), shown: [at], how: TARGET_FILE_HOW });
    const id = `target:${i}`;
    out.push({ op: "open-target", id, path: cstr(at), how: TARGET_HOW, shown: [at, unquoted("O_PATH"), NO_SYMLINKS] });
    if (isFilledTmpfs(ctx, m, i)) {
      // (its options were the parent's to apply: a detached tmpfs with its attributes, filled)
      out.push({ op: "attach", id: `mount:${i}`, target: cstr(at), path: at, readonly: false, empty: EMPTY, at: id });
      const all = m.options ?? [];
      for (const o of propagationOptions(all, parseOptions)) {
        out.push(preparedMount(null, at, null, parseOptions(o).flags));
      }
      return;
    }
    if (m.type === "bind") {
      const readonly = m.readonly === true || (m.options ?? []).includes("ro");
      // nosuid, nodev, noexec: set with read-only (as runc's bind remount does)
      const flags = (m.options ?? []).reduce((f, o) => f | (BIND_FLAGS[o] ?? 0), 0);
      out.push({
        op: "attach",
        id: `mount:${i}`,
        target: cstr(at),
        path: at,
        readonly,
        empty: EMPTY,
        ...(flags ? { flags } : {}),
        at: id,
        attr: encodeMountAttr(mountAttrOf((readonly ? MS.RDONLY : 0) | flags)),
      });
      // (its propagation options once attached, by path, as a filesystem's below)
      for (const o of propagationOptions(m.options ?? [], parseOptions)) {
        out.push(preparedMount(null, at, null, parseOptions(o).flags));
      }
      return;
    }
    // Propagation options ("shared", "rslave", "private", "unbindable"…) apart, as runc's and
    // crun's: the filesystem is mounted with the other options, then each propagation option is
    // a mount(NULL, target, NULL, flag) of its own, in order — plain calls, on either path.
    // (tmpcopyup with nothing to copy — the target missing or empty in the image — is a plain
    // tmpfs, whose root takes the directory's mode when the options give none, as runc's)
    const all = [...(m.options ?? []).filter((o) => o !== "tmpcopyup"), ...(m.readonly ? ["ro"] : [])];
    const rootMode = isTmpcopyup(m) && !all.some((o) => o.startsWith("mode="))
      ? copiedRootMode(join(ctx.spec.rootfsPath, at))
      : undefined;
    if (rootMode !== undefined) all.push(`mode=${rootMode.toString(8)}`);
    const propagation = propagationOptions(all, parseOptions);
    const options = all.filter((o) => !propagation.includes(o)).join(",");
    const { flags, data } = parseOptions(options);
    if (needsGeneralMount(all, parseOptions)) {
      // (the general Mount.mount, on the held fd: forked path only)
      out.push({ op: "mount-options", source: m.source ?? m.type, target: at, type: m.type, options, at: id });
    } else {
      out.push({
        op: "mount-at",
        at: id,
        mount: preparedMount(m.source ?? m.type, at, m.type, flags, data || undefined),
        dot: DOT,
        slash: SLASH,
      });
    }
    // (by path: the mount is there now; a propagation change moves no mount — a swap on the way
    // could only change another mount's propagation, inside the container's mount namespace)
    for (const o of propagation) out.push(preparedMount(null, at, null, parseOptions(o).flags));
  });
  return out;
}
const DOT = cstr("."), SLASH = cstr("/");

/**
 * What a compiled program of `ctx` took from the rootfs and the host when it was made (the spec
 * mounts' resolved targets, whether each bind source is a file): a program is reused only while
 * this is unchanged.
 */
export function mountsShape(ctx: SetupContext): string {
  return JSON.stringify(ctx.spec.mounts.map((m, i) => [
    inside(ctx, normalize(`/${m.target}`)),
    m.type === "bind" ? statSync(m.source!, { throwIfNoEntry: false })?.isDirectory() ?? null : null,
    isFilledTmpfs(ctx, m, i),
    isTmpcopyup(m) ? copiedRootMode(join(ctx.spec.rootfsPath, inside(ctx, normalize(`/${m.target}`)))) ?? null : null,
  ]));
}

/**
 * The mode a `tmpcopyup` tmpfs's root takes when its options give none: that of its target
 * directory in the image (`hostPath`: the rootfs's path and the resolved target), as runc sets
 * it; undefined when the target is not a directory there (the tmpfs's default, 1777).
 */
function copiedRootMode(hostPath: string): number | undefined {
  const st = lstatSync(hostPath, { throwIfNoEntry: false });
  return st?.isDirectory() ? st.mode & 0o7777 : undefined;
}

/** Whether spec mount `i` is a `tmpcopyup` tmpfs the parent made and filled (see {@link SetupContext.detached}). */
function isFilledTmpfs(ctx: SetupContext, m: MountSpec, i: number): boolean {
  return isTmpcopyup(m) && ctx.detached?.has(i) === true;
}

/**
 * Out of the chroot (through the held host root) and into the rootfs's mount (held by rootfs-bind),
 * pivot_root into it, the old root detached; then the chdir to the new root.
 */
const PIVOT: PreparedCall = { op: "pivot", dot: cstr(".") };
const CHDIR_ROOT: PreparedCall = { op: "chdir", path: cstr("/"), shown: ["/"] };

/** OCI `--no-pivot`'s move of the rootfs over `/` (see {@link SetupContext.noPivot}). */
function moveRoot(detaches: readonly NoPivotDetach[]): PreparedCall {
  return {
    op: "move-root",
    dot: cstr("."),
    slash: cstr("/"),
    tmpfs: cstr("tmpfs"),
    detach: detaches.map((d) => ({ path: cstr(d.path), shown: d.path, cover: d.cover })),
  };
}
/** The rootfs's mount attached over itself and entered (see the rootfs-bind step). */
const ROOTFS_MOUNT: PreparedCall = { op: "rootfs-mount", dot: cstr("."), empty: cstr("") };
const CHROOT_IN: PreparedCall = { op: "chroot-in", dot: cstr("."), slash: cstr("/") };

/** Whether a spec mount's target is `path` (it then takes the place of hako's own mount there). */
function hasMountAt(ctx: SetupContext, path: string): boolean {
  return ctx.spec.mounts.some((m) => normalize(`/${m.target}`).replace(/(.)\/+$/, "$1") === path);
}

/** Each context's calls, per step (see {@link stepCalls}). */
const preparedCalls = new WeakMap<SetupContext, Map<StepName, readonly PreparedCall[]>>();
/** Each context's mount steps' calls, built together (see {@link buildCalls}). */
const mountCalls = new WeakMap<SetupContext, ReadonlyMap<StepName, readonly PreparedCall[]>>();

/** A mount step's calls: its part of {@link buildCalls}'s. */
const fromMounts = (step: StepName) => (ctx: SetupContext): readonly PreparedCall[] => {
  let calls = mountCalls.get(ctx);
  if (!calls) mountCalls.set(ctx, calls = buildCalls(ctx));
  return calls.get(step) ?? [];
};

/**
 * Prepares, in the parent before the fork, the kernel calls of every step that applies (the same
 * {@link stepCalls} the child would make itself), and execve's arguments. Optional: a child
 * without them builds the calls itself.
 */
export function prepareSetup(ctx: SetupContext): void {
  if (has(ctx, "mount")) assertNoProcMounts(ctx);
  try {
    // Probed once and cached (the last capability, the bounding set), so the child's capability
    // steps do not probe the kernel (~40 prctl calls). (Rootless, the parent has none to plan.)
    keepPlan(capabilitySetsFor(ctx.spec).bounding);
  } catch { /* the child plans for itself */ }
  for (const step of stepsFor(ctx)) {
    try {
      stepCalls(ctx, step.name);
    } catch { /* the child meets (and reports) whatever went wrong, in that step */ }
  }
  prepareExec(ctx.spec);
}

/** execve's arguments, when the program is given by its path (see {@link preparedExec}). */
function prepareExec(spec: ResolvedSpec): void {
  const file = spec.execPath ?? spec.argv[0];
  if (file?.includes("/")) {
    // A program given by its path needs no PATH search inside the container.
    const env = Object.entries(spec.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    preparedExec.set(spec, {
      file: cstr(file),
      path: file,
      argv: cstrArray(spec.argv),
      envp: cstrArray(env),
    });
  }
}

/**
 * The kernel calls of the mount steps, by step. From chroot-rootfs on, the child's root is the
 * rootfs's mount: every target is a path inside it, resolved there — a symlink the image (or
 * another container sharing the rootfs) plants cannot take a mount out of it — and host sources
 * are the copies captured before.
 */
function buildCalls(ctx: SetupContext): Map<StepName, PreparedCall[]> {
  const spec = ctx.spec;
  const calls = new Map<StepName, PreparedCall[]>();
  if (!has(ctx, "mount")) return calls;
  calls.set("capture-propagating-sources", hostSourceCaptures(ctx, true));
  calls.set("private-mounts", [preparedMount(null, "/", null, MS.REC | MS.PRIVATE)]);
  calls.set("capture-host-sources", hostSourceCaptures(ctx, false));
  calls.set("chroot-rootfs", [CHROOT_IN]);
  const mkdirp = (path: string): PreparedCall => ({
    op: "mkdir",
    path: cstr(path),
    shown: [path, unquoted("0755")],
    exist: true,
  });
  if (spec.standardMounts) {
    const dev = "/dev";
    calls.set("mount-proc", [
      mkdirp("/proc"),
      preparedMount("proc", "/proc", "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC),
    ]);
    // (read-only but where the spec says writableSysfs: --privileged's; rootless binds the host's read-only below)
    const sysfs = preparedMount(
      "sysfs",
      "/sys",
      "sysfs",
      (spec.writableSysfs ? 0 : MS.RDONLY) | MS.NOSUID | MS.NODEV | MS.NOEXEC,
    );
    calls.set("mount-sys", [
      mkdirp("/sys"),
      notHostRoot(ctx)
        ? {
          op: "sysfs",
          sysfs,
          bind: "sys",
          empty: EMPTY,
          path: "/sys",
          target: cstr("/sys"),
          tree: readonlyTree("/sys"),
        }
        : sysfs,
    ]);
    calls.set("mount-cgroup", cgroupMountCalls(ctx));
    calls.set("mount-dev", [
      mkdirp(dev),
      // (noexec where the spec asks: podman's bundles do)
      preparedMount(
        "tmpfs",
        dev,
        "tmpfs",
        MS.NOSUID | MS.STRICTATIME | (spec.devNoexec ? MS.NOEXEC : 0),
        "mode=755,size=65536k",
      ),
      ...DEVICES.flatMap((d): PreparedCall[] => {
        const [major, minor] = DEVICE_NUMBERS[d];
        const path = join(dev, d);
        // mknod is not allowed in a user namespace: the host's device is bound over an empty file
        if (notHostRoot(ctx)) {
          return [
            { op: "touch", path: cstr(path), shown: [path] },
            { op: "attach", id: `dev/${d}`, target: cstr(path), path, readonly: false, empty: EMPTY },
          ];
        }
        return [{
          op: "mknod",
          path: cstr(path),
          mode: S_IFCHR | 0o666,
          dev: makedev(major, minor),
          shown: [path, `c ${major}:${minor}`],
        }];
      }),
      ...devLinks().map(([link, to]): PreparedCall => ({
        op: "symlink",
        to: cstr(to),
        path: cstr(join(dev, link)),
        shown: [to, join(dev, link)],
      })),
      ...deviceNodeCalls(ctx),
    ]);
    // (inside the fresh tmpfs of mount-dev: nothing there is the image's)
    const inDev = (name: string, source: string, type: string, flags: number, data?: string): PreparedCall[] => [
      { op: "mkdir", path: cstr(join(dev, name)), shown: [join(dev, name), unquoted("0755")] },
      preparedMount(source, join(dev, name), type, flags, data),
    ];
    calls.set(
      "mount-devpts",
      // gid=5 (tty) as runc: new terminals belong to the tty group — where gid 5 means something
      // inside (mapped, in a user namespace).
      inDev(
        "pts",
        "devpts",
        "devpts",
        MS.NOSUID | MS.NOEXEC,
        `newinstance,ptmxmode=0666,mode=0620${
          !ctx.userns || spec.gidMap.some((e) => 5 >= e.inside && 5 < e.inside + e.size) ? ",gid=5" : ""
        }`,
      ),
    );
    calls.set("mount-shm", inDev("shm", "shm", "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, "mode=1777,size=65536k"));
    calls.set("mount-mqueue", inDev("mqueue", "mqueue", "mqueue", MS.NOSUID | MS.NODEV | MS.NOEXEC));
  }
  if (spec.init) {
    // docker's --init: the host's static init, read-only (the container's root must not write the
    // host's binary), over an empty file in the fresh /dev tmpfs; its source was captured before.
    calls.set("mount-init", [
      { op: "touch", path: cstr(INIT_TARGET), shown: [INIT_TARGET] },
      { op: "attach", id: "init", target: cstr(INIT_TARGET), path: INIT_TARGET, readonly: true, empty: EMPTY },
    ]);
  }
  calls.set("mounts", specMountCalls(ctx));
  calls.set("etc-files", fileMountCalls(ctx));
  if (ctx.noPivot) calls.set("move-root", [moveRoot(ctx.noPivot), CHDIR_ROOT]);
  else calls.set("pivot-root", [PIVOT, CHDIR_ROOT]);
  if (spec.rootfsPropagation) {
    calls.set("root-propagation", [preparedMount(null, "/", null, parseOptions(spec.rootfsPropagation).flags)]);
  }
  calls.set(
    "masked-paths",
    spec.maskedPaths.map((p, i) => ({
      op: "mask",
      path: cstr(p),
      how: PATHS_HOW,
      id: `mask-target:${i}`,
      shown: [p, unquoted("O_PATH"), unquoted("RESOLVE_NO_MAGICLINKS")],
      dir: preparedMount("tmpfs", p, "tmpfs", MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC),
      dot: DOT,
      slash: SLASH,
      file: {
        op: "attach",
        id: `mask:${i}`,
        target: cstr(p),
        path: p,
        readonly: false,
        empty: EMPTY,
        at: `mask-target:${i}`,
        attr: encodeMountAttr(0),
      },
      release: { op: "release", id: `mask:${i}` },
    })),
  );
  calls.set(
    "readonly-paths",
    spec.readonlyPaths.map((p, i) => ({
      op: "readonly",
      path: p,
      target: cstr(p),
      how: PATHS_HOW,
      empty: EMPTY,
      shown: [p, unquoted("O_PATH"), unquoted("RESOLVE_NO_MAGICLINKS")],
      // (the top mount read-only, as runc's readonlyPath remount: a mount below it keeps its own)
      attach: {
        op: "attach",
        id: `ro:${i}`,
        target: cstr(p),
        path: p,
        readonly: true,
        empty: EMPTY,
        at: `ro-target:${i}`,
        attr: encodeMountAttr(MOUNT_ATTR_RDONLY),
      },
    })),
  );
  return calls;
}

/** execve's arguments, prepared by the parent (see {@link prepareSetup}); the buffers stay referenced here. */
const preparedExec = new WeakMap<
  ResolvedSpec,
  { readonly file: Uint8Array; readonly path: string; readonly argv: CStringArray; readonly envp: CStringArray }
>();

/** The fds the (forked) child holds between steps: captured mounts, the host root, the rootfs's mount. */
const held = new Map<string, number>();

/** The forked child's interpreter of one prepared call (the native path compiles the same, native.ts). */
function runCall(ctx: SetupContext, call: PreparedCall): void {
  const c = libc();
  switch (call.op) {
    case "prctl":
      check(c.prctl(call.option, BigInt(call.arg), 0n, 0n, 0n), "prctl", [unquoted(call.name), call.arg]);
      return;
    case "unshare":
      check(c.unshare(call.flag), "unshare", [unquoted(call.name)]);
      return;
    case "timens-offsets":
      return writeTimensOffsets(call.text, call.dumpable);
    case "sysctl":
      return writeSysctl(call.path, call.value);
    case "lookup":
      return lookupCommand(call.cmd, call.candidates);
    case "setns":
      return setns(call.path, call.type);
    case "clone-parent": {
      const pid = forkProcess(CLONE_PARENT);
      if (pid === 0) return;
      if (ctx.statusFd !== undefined) report(ctx.statusFd, { pid });
      c._exit(0);
      return;
    }
    case "setresgid":
      return setresgid(call.id, call.id, call.id);
    case "setresuid":
      return setresuid(call.id, call.id, call.id);
    case "setgroups":
      try {
        setgroups(call.groups);
      } catch (e) {
        if (!(call.epermOk && e instanceof SyscallError && e.errno === EPERM)) throw e;
      }
      return;
    case "enter-rootfs":
      check(c.fchdir(ctx.rootFd!), "fchdir", [call.path], "enter the rootfs");
      return;
    case "sethostname":
      return sethostname(call.name);
    case "setdomainname":
      return setdomainname(call.name);
    case "loopback-up":
      return setLinkUp("lo");
    case "sync": {
      if (ctx.statusFd === undefined || ctx.hooksSync === undefined) {
        throw new SetupError("hooks-sync", "no sync pipe (hako bug)");
      }
      writeAll(ctx.statusFd, new TextEncoder().encode('{"sync":true}\n'));
      const one = new Uint8Array(1);
      let n: number;
      for (;;) {
        n = c.read(ctx.hooksSync, one, 1n);
        if (n !== -1 || errno() !== EINTR) break;
      }
      if (n === -1) throw new SyscallError("read", errno(), [unquoted("sync pipe")], "wait for the parent's hooks");
      if (n !== 1) throw new SetupError("hooks-sync", "the parent gave up at the sync point (its hooks failed)");
      c.close(ctx.hooksSync);
      return;
    }
    case "rlimit": {
      const [soft, hard] = Array.isArray(call.limit) ? call.limit : [call.limit, call.limit];
      return setrlimit(call.name, soft, hard);
    }
    case "setsid":
      check(c.setsid(), "setsid", []);
      return;
    case "console":
      return runConsole(call.request, call.uid);
    case "bounding": {
      const plan = capabilityPlan(ctx.spec, ctx.userns);
      keepPlans.set(ctx, plan);
      return keepBounding(plan, { keepCaps: call.keepCaps });
    }
    case "capsets":
      // The plan of the bounding op: checked while still privileged (after the change of user the
      // effective set is empty, and the checks would refuse what is already done).
      return keepSets(keepPlans.get(ctx) ?? capabilityPlan(ctx.spec, ctx.userns));
    case "seccomp":
      return loadSeccomp(call.program);
    case "js":
      return call.run(ctx);
    case "mount":
      if (c.mount(call.source, call.target, call.type, call.flags, call.data) === -1) {
        throw new SyscallError("mount", errno(), call.shown);
      }
      return;
    case "mknod":
      if (c.mknod(call.path, call.mode, call.dev) === -1) throw new SyscallError("mknod", errno(), call.shown);
      // The mode asked for, whatever the umask took away (see _devices.ts).
      if (c.fchmodat(AT_FDCWD, call.path, call.mode & 0o7777, 0) === -1) {
        throw new SyscallError("fchmodat", errno(), [call.shown[0], unquoted(`0${(call.mode & 0o7777).toString(8)}`)]);
      }
      return;
    case "mkdir":
      if (c.mkdir(call.path, 0o755) === -1) {
        const e = errno();
        if (!(call.exist && e === EEXIST)) throw new SyscallError("mkdir", e, call.shown);
      }
      return;
    case "symlink":
      if (c.symlink(call.to, call.path) === -1) throw new SyscallError("symlink", errno(), call.shown);
      return;
    case "chdir":
      if (c.chdir(call.path) === -1) throw new SyscallError("chdir", errno(), call.shown);
      return;
    case "chdir-in": {
      const fd = Number(c.syscall(
        BigInt(SYS.openat2),
        BigInt(AT_FDCWD),
        addressOf(call.path),
        addressOf(call.how),
        BigInt(call.how.length),
        0n,
      ));
      if (fd === -1) {
        const e = errno();
        if (e !== ENOSYS) throw new SyscallError("openat2", e, [...call.shown, unquoted("RESOLVE_NO_MAGICLINKS")]);
        if (c.chdir(call.path) === -1) throw new SyscallError("chdir", errno(), call.shown);
        return;
      }
      try {
        if (c.fchdir(fd) === -1) throw new SyscallError("fchdir", errno(), call.shown);
      } finally {
        c.close(fd);
      }
      return;
    }
    case "rootfs-mount": {
      const tree = Number(c.syscall(
        BigInt(SYS.open_tree),
        BigInt(AT_FDCWD),
        addressOf(call.dot),
        BigInt(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
        0n,
        0n,
      ));
      if (tree === -1) throw new SyscallError("open_tree", errno(), [".", unquoted("OPEN_TREE_CLONE|AT_RECURSIVE")]);
      try {
        const moved = c.syscall(
          BigInt(SYS.move_mount),
          BigInt(tree),
          addressOf(call.empty),
          BigInt(AT_FDCWD),
          addressOf(call.dot),
          BigInt(MOVE_MOUNT_F_EMPTY_PATH),
        );
        if (moved === -1n) {
          throw new SyscallError("move_mount", errno(), [unquoted("tree"), "", unquoted("AT_FDCWD"), "."]);
        }
        if (c.fchdir(tree) === -1) throw new SyscallError("fchdir", errno(), [unquoted("tree")]);
      } catch (e) {
        c.close(tree);
        throw e;
      }
      held.set("rootfs", tree); // (pivot-root enters it again, out of the chroot)
      return;
    }
    case "inherit": {
      if (call.fd === undefined) {
        throw Object.assign(new SetupError("mounts", `${call.shown[0]}: no detached mount was made for it`), {
          forStep: "mounts",
        });
      }
      held.set(call.id, call.fd);
      return;
    }
    case "capture": {
      const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (call.recursive ? AT_RECURSIVE : 0);
      const fd = Number(
        c.syscall(BigInt(SYS.open_tree), BigInt(AT_FDCWD), addressOf(call.source), BigInt(flags), 0n, 0n),
      );
      if (fd === -1) throw Object.assign(new SyscallError("open_tree", errno(), call.shown), { forStep: call.step });
      held.set(call.id, fd);
      return;
    }
    case "attach": {
      if (call.at !== undefined) return attachAt(call);
      const fd = held.get(call.id)!;
      held.delete(call.id);
      try {
        const r = c.syscall(
          BigInt(SYS.move_mount),
          BigInt(fd),
          addressOf(call.empty),
          BigInt(AT_FDCWD),
          addressOf(call.target),
          BigInt(MOVE_MOUNT_F_EMPTY_PATH),
        );
        if (r === -1n) {
          throw new SyscallError("move_mount", errno(), [unquoted(call.id), "", unquoted("AT_FDCWD"), call.path]);
        }
      } finally {
        c.close(fd);
      }
      if (call.readonly || call.flags) {
        remountReadonly(call.target, call.path, (call.readonly ? MS.RDONLY : 0) | (call.flags ?? 0));
      }
      return;
    }
    case "open-target": {
      const fd = openat2(AT_FDCWD, call.path, call.how);
      if (fd === -1) throw new SyscallError("openat2", errno(), call.shown, TARGET_HINT);
      held.set(call.id, fd);
      return;
    }
    case "mkdir-in": {
      const fd = openat2(AT_FDCWD, call.parent, call.how);
      if (fd === -1) {
        throw new SyscallError(
          "openat2",
          errno(),
          [text(call.parent), unquoted("O_PATH|O_DIRECTORY"), NO_SYMLINKS],
          TARGET_HINT,
        );
      }
      try {
        if (c.mkdirat(fd, call.name, 0o755) === -1) {
          const e = errno();
          if (e !== EEXIST) throw new SyscallError("mkdirat", e, call.shown);
        }
      } finally {
        c.close(fd);
      }
      return;
    }
    case "mount-at": {
      const fd = held.get(call.at)!;
      held.delete(call.at);
      const m = call.mount;
      try {
        if (c.fchdir(fd) === -1) throw new SyscallError("fchdir", errno(), [unquoted(call.at), m.shown[1]]);
        const e = c.mount(m.source, call.dot, m.type, m.flags, m.data) === -1 ? errno() : 0;
        if (c.chdir(call.slash) === -1) throw new SyscallError("chdir", errno(), ["/"]);
        if (e) throw new SyscallError("mount", e, m.shown);
      } finally {
        c.close(fd);
      }
      return;
    }
    case "release": {
      const fd = held.get(call.id);
      held.delete(call.id);
      if (fd !== undefined) c.close(fd);
      return;
    }
    case "chroot-in": {
      const fd = c.open(call.slash, O_PATH_DIRECTORY_CLOEXEC, 0);
      if (fd === -1) throw new SyscallError("open", errno(), ["/", unquoted("O_PATH|O_DIRECTORY")]);
      held.set("host-root", fd);
      if (c.chroot(call.dot) === -1) throw new SyscallError("chroot", errno(), ["."], "chroot into the rootfs");
      return;
    }
    case "remount-ro":
      return remountReadonly(call.target, call.path);
    case "mount-options":
      return mountOptionsAt(call);
    case "move-root": {
      const hostRoot = held.get("host-root"), rootfs = held.get("rootfs");
      if (hostRoot === undefined || rootfs === undefined) {
        throw new SetupError("move-root", "no rootfs mount is held (hako bug)");
      }
      held.delete("host-root"), held.delete("rootfs");
      try {
        if (c.fchdir(hostRoot) === -1) throw new SyscallError("fchdir", errno(), [unquoted("host root")]);
        if (c.chroot(call.dot) === -1) throw new SyscallError("chroot", errno(), ["."], "leave the chroot");
        if (c.fchdir(rootfs) === -1) throw new SyscallError("fchdir", errno(), [unquoted("rootfs")]);
      } finally {
        c.close(hostRoot), c.close(rootfs);
      }
      if (c.mount(call.dot, call.slash, null, BigInt(MS_MOVE), null) === -1) {
        throw new SyscallError("mount", errno(), [".", "/", null, unquoted("MS_MOVE")]);
      }
      for (const d of call.detach) {
        // (gone meanwhile: nothing to detach; the native program checks so too)
        if (c.faccessat(AT_FDCWD, d.path, 0, 0) === -1) {
          const e = errno();
          if (e === ENOENT) continue;
          throw new SyscallError("faccessat", e, [d.shown, unquoted("F_OK")]);
        }
        if (c.umount2(d.path, MNT_DETACH) === 0) continue;
        const e = errno();
        if (!d.cover && (e === EINVAL || e === EPERM)) continue;
        if (e !== EINVAL && e !== EPERM) throw new SyscallError("umount2", e, [d.shown, unquoted("MNT_DETACH")]);
        if (c.mount(call.tmpfs, d.path, call.tmpfs, 0n, null) === -1) {
          throw new SyscallError("mount", errno(), ["tmpfs", d.shown, "tmpfs", 0], "cover a host mount kept");
        }
      }
      if (c.chroot(call.dot) === -1) throw new SyscallError("chroot", errno(), ["."], "into the moved rootfs");
      return;
    }
    case "pivot": {
      const dot = addressOf(call.dot);
      // Out of the chroot through the held host root, into the rootfs's mount again: pivot_root
      // refuses a caller whose root is the new root itself.
      const hostRoot = held.get("host-root"), rootfs = held.get("rootfs");
      if (hostRoot !== undefined && rootfs !== undefined) {
        if (c.fchdir(hostRoot) === -1) throw new SyscallError("fchdir", errno(), [unquoted("host root")]);
        if (c.chroot(call.dot) === -1) throw new SyscallError("chroot", errno(), ["."], "leave the chroot");
        if (c.fchdir(rootfs) === -1) throw new SyscallError("fchdir", errno(), [unquoted("rootfs")]);
        held.delete("host-root"), held.delete("rootfs");
        c.close(hostRoot), c.close(rootfs);
      }
      if (c.syscall(BigInt(SYS.pivot_root), dot, dot, 0n, 0n, 0n) === -1n) {
        throw new SyscallError("pivot_root", errno(), [".", "."]);
      }
      if (c.umount2(call.dot, MNT_DETACH) === -1) {
        throw new SyscallError("umount2", errno(), [".", unquoted("MNT_DETACH")]);
      }
      return;
    }
    case "mask": {
      const fd = openat2(AT_FDCWD, call.path, call.how);
      if (fd === -1) {
        const e = errno();
        runCall(ctx, call.release); // (not on this kernel (ENOENT): the copy unused)
        if (e === ENOENT) return;
        throw new SyscallError("openat2", e, call.shown, PATHS_HINT);
      }
      if (c.fchdir(fd) === -1) {
        const e = errno();
        if (e === ENOTDIR) {
          held.set(call.id, fd);
          return attachAt(call.file); // (a file: the host's /dev/null moved onto it)
        }
        c.close(fd), runCall(ctx, call.release);
        throw new SyscallError("fchdir", e, [call.shown[0]]);
      }
      const d = call.dir;
      try {
        const e = c.mount(d.source, call.dot, d.type, d.flags, d.data) === -1 ? errno() : 0;
        if (c.chdir(call.slash) === -1) throw new SyscallError("chdir", errno(), ["/"]);
        if (e) throw new SyscallError("mount", e, d.shown);
      } finally {
        c.close(fd), runCall(ctx, call.release); // (a directory masked: the copy unused)
      }
      return;
    }
    case "touch": {
      const fd = call.how ? openat2(AT_FDCWD, call.path, call.how) : c.open(call.path, O_WRONLY_CREAT_CLOEXEC, 0o644);
      if (fd === -1) {
        const e = errno();
        if (e === EACCES || e === EROFS) return; // (there already, read-only: a mount point as it is)
        throw new SyscallError("open", e, call.shown);
      }
      c.close(fd);
      return;
    }
    case "sysfs": {
      const m = call.sysfs;
      if (c.mount(m.source, m.target, m.type, m.flags, m.data) !== -1) {
        return runCall(ctx, { op: "release", id: call.bind });
      }
      const e = errno();
      if (e !== EPERM) throw new SyscallError("mount", e, m.shown);
      runCall(ctx, {
        op: "attach",
        id: call.bind,
        target: call.target,
        path: call.path,
        readonly: true,
        empty: call.empty,
      });
      return runCall(ctx, call.tree);
    }
    case "readonly-tree": {
      const r = c.syscall(
        BigInt(SYS.mount_setattr),
        BigInt(AT_FDCWD),
        addressOf(call.path),
        BigInt(AT_RECURSIVE),
        addressOf(call.attr),
        BigInt(call.attr.byteLength),
      );
      if (r === -1n) {
        const e = errno();
        if (e !== ENOSYS) throw new SyscallError("mount_setattr", e, call.shown);
      }
      return;
    }
    case "readonly": {
      const fd = openat2(AT_FDCWD, call.target, call.how);
      if (fd === -1) {
        const e = errno();
        if (e === ENOENT) return; // not on this kernel
        throw new SyscallError("openat2", e, call.shown, PATHS_HINT);
      }
      const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH;
      const tree = Number(c.syscall(BigInt(SYS.open_tree), BigInt(fd), addressOf(call.empty), BigInt(flags), 0n, 0n));
      if (tree === -1) {
        const e = errno();
        c.close(fd);
        throw new SyscallError("open_tree", e, [call.path, unquoted("OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH")]);
      }
      held.set(call.attach.id, tree), held.set(call.attach.at!, fd);
      return attachAt(call.attach);
    }
    default: {
      const unknown: never = call; // (every op kind has its case: a new one fails to type-check here)
      throw new SetupError("setup", `an op of unknown kind ${JSON.stringify(unknown)} (hako bug)`);
    }
  }
}

/** openat2(2) through libc's syscall(): the fd, or -1 (errno set). */
function openat2(dirfd: number, path: Uint8Array, how: Uint8Array): number {
  return Number(
    libc().syscall(
      BigInt(SYS.openat2),
      BigInt(dirfd),
      addressOf(path),
      addressOf(how),
      BigInt(how.byteLength),
      0n,
    ),
  );
}

/** What an ELOOP on a spec mount's target means (see {@link TARGET_HOW}). */
export const TARGET_HINT: string =
  "a mount target is opened with no symlink followed: the parent resolved it in the image; a symlink met now (a volume's, or one swapped in) is refused";

/** A new bind's per-mount flags in `options` (0: none, or not a new bind): see {@link mountOptionsAt}. */
function bindFlagsOf(options: string): number {
  const { flags } = parseOptions(options);
  return flags & MS.BIND && !(flags & MS.REMOUNT) ? flags & perMountFlags(parseOptions) : 0;
}

/** The options of `Mount.mount`'s call on the held fd: a new bind's per-mount flags left for after. */
function firstCallOptions(options: string): string {
  const later = bindFlagsOf(options);
  return later ? options.split(",").filter((o) => !(parseOptions(o).flags & later)).join(",") : options;
}

/** `MS_*` flags by name, for `hako plan`. */
function flagNamesOf(flags: number): string {
  return Object.entries(MS).filter(([, f]) => flags & f).map(([n]) => `MS_${n}`).join("|");
}

/**
 * A `mount-options` call (see {@link PreparedCall}): `Mount.mount` on the held target fd, then a
 * new bind's per-mount flags on the bind, reached by walking the path again with no symlink
 * followed.
 */
function mountOptionsAt(call: Extract<PreparedCall, { op: "mount-options" }>): void {
  const fd = held.get(call.at)!;
  held.delete(call.at);
  const later = bindFlagsOf(call.options), options = firstCallOptions(call.options);
  inDir(fd, [unquoted(call.at), call.target], () => Mount.mount(call.source, ".", { type: call.type, options }));
  if (!later) return;
  const top = openat2(AT_FDCWD, cstr(call.target), TARGET_HOW);
  if (top === -1) {
    throw new SyscallError("openat2", errno(), [call.target, unquoted("O_PATH"), NO_SYMLINKS], TARGET_HINT);
  }
  inDir(top, [call.target], () => remountReadonly(DOT, call.target, later));
}

/** `fn` run with the working directory at `fd` (then back at "/"), and `fd` closed: `fn`'s error first. */
function inDir(fd: number, shown: readonly unknown[], fn: () => void): void {
  const c = libc();
  let error: unknown;
  if (c.fchdir(fd) === -1) error = new SyscallError("fchdir", errno(), shown);
  else {
    try {
      fn();
    } catch (e) {
      error = e;
    }
    if (c.chdir(SLASH) === -1) error ??= new SyscallError("chdir", errno(), ["/"]);
  }
  c.close(fd);
  if (error !== undefined) throw error;
}

/** What an ELOOP on a masked or read-only path means (see {@link PATHS_HOW}). */
export const PATHS_HINT: string =
  "a masked or read-only path is opened with no magic link followed (/proc/PID/root, /proc/self/fd/N lead out of the container's root)";

/**
 * A captured bind made read-only (with its flags) while detached, then moved onto its held target
 * fd; before Linux 5.12 (mount_setattr ENOSYS) remounted at its path once attached.
 */
function attachAt(call: Extract<PreparedCall, { op: "attach" }>): void {
  const c = libc();
  const fd = held.get(call.id)!, target = held.get(call.at!)!;
  held.delete(call.id), held.delete(call.at!);
  let late = false;
  try {
    if (call.readonly || call.flags) {
      const r = c.syscall(
        BigInt(SYS.mount_setattr),
        BigInt(fd),
        addressOf(call.empty),
        BigInt(AT_EMPTY_PATH),
        addressOf(call.attr!),
        BigInt(call.attr!.byteLength),
      );
      if (r === -1n) {
        const e = errno();
        if (e !== ENOSYS) {
          throw new SyscallError("mount_setattr", e, [unquoted(call.id), "", unquoted("AT_EMPTY_PATH"), call.path]);
        }
        late = true;
      }
    }
    const r = c.syscall(
      BigInt(SYS.move_mount),
      BigInt(fd),
      addressOf(call.empty),
      BigInt(target),
      addressOf(call.empty),
      BigInt(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
    );
    if (r === -1n) {
      throw new SyscallError("move_mount", errno(), [unquoted(call.id), "", unquoted(call.at!), call.path]);
    }
  } finally {
    c.close(fd), c.close(target);
  }
  if (late) remountReadonly(call.target, call.path, (call.readonly ? MS.RDONLY : 0) | (call.flags ?? 0));
}

/**
 * A bind mount remounted read-only, keeping its other flags (as src/mount.ts does); `add`: the
 * flags set (default `MS_RDONLY`; a bind's nosuid, nodev, noexec too).
 */
function remountReadonly(target: Uint8Array, path: string, add: number = MS.RDONLY): void {
  const c = libc();
  const buf = statvfsBuffer();
  if (c.statvfs(target, buf) === -1) throw new SyscallError("statvfs", errno(), [path]);
  const st = statvfsFlags(buf);
  let flags = MS.REMOUNT | MS.BIND | add;
  for (const [bit, ms] of ST_TO_MS) if (st & bit) flags |= ms;
  if (!(flags & (MS.NOATIME | MS.RELATIME))) flags |= MS.STRICTATIME;
  if (c.mount(null, target, null, BigInt(flags), null) === -1) {
    throw new SyscallError("mount", errno(), [
      unquoted("NULL"),
      path,
      unquoted("NULL"),
      unquoted(`0x${flags.toString(16)}`),
    ], `make the bind mount of ${path} on ${path} ${add === MS.RDONLY ? "read-only" : bindFlagNames(add)}`);
  }
}

/**
 * The kernel calls of a step: those {@link prepareSetup} prepared, or — a child the parent
 * prepared nothing for — built now (and kept for the context).
 */
export function stepCalls(ctx: SetupContext, step: StepName): readonly PreparedCall[] {
  let byStep = preparedCalls.get(ctx);
  if (!byStep) preparedCalls.set(ctx, byStep = new Map());
  let calls = byStep.get(step);
  if (!calls) {
    const s = STEP_BY_NAME.get(step);
    if (!s) throw new SetupError(step, "no such setup step (hako bug)");
    byStep.set(step, calls = s.calls(ctx));
  }
  return calls;
}

/** Runs a step in the forked child: its calls, one by one, through the one interpreter ({@link runCall}). */
export function runStep(ctx: SetupContext, step: SetupStep): void {
  for (const call of stepCalls(ctx, step.name)) runCall(ctx, call);
}

/** A step's calls as `hako plan` shows them: each call by {@link planCall}. */
export function stepPlan(ctx: SetupContext, step: SetupStep): string[] {
  return stepCalls(ctx, step.name).flatMap((call) => planCall(ctx, call));
}

const q = (x: unknown) => (typeof x === "string" ? JSON.stringify(x) : String(x));
const shownArgs = (shown: readonly unknown[]) => shown.map(q).join(", ");
const text = (b: Uint8Array) => new TextDecoder().decode(b.subarray(0, -1));

/** One prepared call as `hako plan` shows it (one formatter per op kind). */
export function planCall(ctx: SetupContext, call: PreparedCall): string[] {
  switch (call.op) {
    case "mount":
    case "mknod":
    case "mkdir":
    case "symlink":
    case "readonly-tree":
      return [`${call.op === "readonly-tree" ? "mount_setattr" : call.op}(${shownArgs(call.shown)})`];
    case "touch":
      return [
        `${call.how ? "openat2" : "open"}(O_CREAT${call.how ? ", RESOLVE_NO_SYMLINKS" : ""})(${shownArgs(call.shown)})`,
      ];
    case "chdir":
      return [`chdir(${q(text(call.path))})`];
    case "chdir-in":
      return [
        `openat2(AT_FDCWD, ${
          q(text(call.path))
        }, O_PATH|O_DIRECTORY, RESOLVE_NO_MAGICLINKS) → fd; fchdir(fd); close(fd)`,
      ];
    case "capture":
      return [`open_tree(${shownArgs(call.shown)})  (held as ${call.id})`];
    case "inherit":
      return [`(inherited: ${shownArgs(call.shown)})  (held as ${call.id})`];
    case "attach":
      if (call.at !== undefined) {
        return [
          ...(call.readonly || call.flags
            ? [
              `mount_setattr(${call.id}, "", AT_EMPTY_PATH, ${
                bindFlagNames((call.readonly ? MS.RDONLY : 0) | (call.flags ?? 0))
              })`,
            ]
            : []),
          `move_mount(${call.id}, "", ${call.at}, "", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH)  (${
            q(call.path)
          })`,
        ];
      }
      return [
        `move_mount(${call.id}, "", AT_FDCWD, ${q(call.path)}, MOVE_MOUNT_F_EMPTY_PATH)${
          call.readonly || call.flags
            ? ` + remount ${bindFlagNames((call.readonly ? MS.RDONLY : 0) | (call.flags ?? 0))}`
            : ""
        }`,
      ];
    case "release":
      return [`close(${call.id})`];
    case "open-target":
      return [`openat2(AT_FDCWD, ${q(text(call.path))}, O_PATH, RESOLVE_NO_SYMLINKS)  (held as ${call.id})`];
    case "mkdir-in":
      return [
        `mkdirat(openat2(AT_FDCWD, ${q(text(call.parent))}, O_PATH|O_DIRECTORY, RESOLVE_NO_SYMLINKS), ${
          q(text(call.name))
        }, 0755)`,
      ];
    case "mount-at":
      return [
        `fchdir(${call.at}); mount(${
          shownArgs([call.mount.shown[0], ".", ...call.mount.shown.slice(2)])
        }); chdir("/")  (${q(call.mount.shown[1])})`,
      ];
    case "sysfs":
      return [
        `mount(${shownArgs(call.sysfs.shown)}); EPERM: move_mount(${call.bind}, "", AT_FDCWD, ${
          q(call.path)
        }) + remount MS_RDONLY + mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)`,
      ];
    case "mount-options":
      return [
        `fchdir(${call.at}); Mount.mount(${q(call.source)}, ".", ${q(call.type)}, ${
          q(firstCallOptions(call.options))
        }); chdir("/")  (${q(call.target)})`,
        ...(bindFlagsOf(call.options)
          ? [
            `openat2(AT_FDCWD, ${q(call.target)}, O_PATH, RESOLVE_NO_SYMLINKS) → fd; fchdir(fd); remount ${
              flagNamesOf(bindFlagsOf(call.options))
            }; chdir("/")`,
          ]
          : []),
      ];
    case "rootfs-mount":
      return [
        'open_tree(AT_FDCWD, ".", OPEN_TREE_CLONE|AT_RECURSIVE)',
        'move_mount(tree, "", AT_FDCWD, ".", MOVE_MOUNT_F_EMPTY_PATH)',
        "fchdir(tree)  (held for pivot-root)",
      ];
    case "chroot-in":
      return ['open("/", O_PATH|O_DIRECTORY)  (held for pivot-root)', 'chroot(".")'];
    case "move-root":
      return [
        'fchdir(host root), chroot("."), fchdir(rootfs mount)  (out of the chroot)',
        'mount(".", "/", NULL, MS_MOVE)',
        ...call.detach.map((d) =>
          `faccessat(AT_FDCWD, ${q(d.shown)}, F_OK)  (ENOENT: the next), umount2(${q(d.shown)}, MNT_DETACH)${
            d.cover
              ? `  (kept by the kernel: mount("tmpfs", ${q(d.shown)}, "tmpfs", 0))`
              : "  (kept by the kernel: left)"
          }`
        ),
        'chroot(".")',
      ];
    case "pivot":
      return [
        'fchdir(host root), chroot("."), fchdir(rootfs mount)  (out of the chroot)',
        'pivot_root(".", ".")',
        'umount2(".", MNT_DETACH)',
      ];
    case "remount-ro":
      return [
        `statvfs(${q(call.path)})`,
        `mount(NULL, ${q(call.path)}, NULL, MS_REMOUNT|MS_BIND|MS_RDONLY and the flags it has)`,
      ];
    case "mask":
      return [
        `openat2(AT_FDCWD, ${q(text(call.path))}, O_PATH, RESOLVE_NO_MAGICLINKS) → fd (ENOENT: skipped)`,
        `fchdir(fd); mount(${shownArgs([call.dir.shown[0], ".", ...call.dir.shown.slice(2)])}); chdir("/")  (mask ${
          text(call.path)
        })`,
        `ENOTDIR: move_mount(${call.file.id}, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH|MOVE_MOUNT_T_EMPTY_PATH)  (the host's /dev/null)`,
      ];
    case "readonly":
      return [
        `openat2(AT_FDCWD, ${q(call.path)}, O_PATH, RESOLVE_NO_MAGICLINKS) → fd (ENOENT: skipped)`,
        `open_tree(fd, "", OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH)  (held as ${call.attach.id})`,
        ...planCall(ctx, call.attach),
      ];
    case "prctl":
      return [`prctl(${call.name}, ${call.arg})`];
    case "unshare":
      return [`unshare(${call.name})`];
    case "sysctl":
      return [`open(${q(call.path)}, O_WRONLY)`, `write(${q(call.value)})`];
    case "lookup":
      return call.candidates.map((c, i) =>
        `faccessat(AT_FDCWD, ${q(c)}, X_OK)${i < call.candidates.length - 1 ? "  (ENOENT, EACCES: the next)" : ""}`
      );
    case "timens-offsets":
      return [
        ...(call.dumpable ? ["prctl(PR_SET_DUMPABLE, 1)"] : []),
        `open(${q(TIMENS_OFFSETS)}, O_WRONLY)`,
        ...(call.dumpable ? ["prctl(PR_SET_DUMPABLE, 0)"] : []),
        `write(${q(call.text)})`,
      ];
    case "setns":
      return [`setns(open(${call.path}), ${call.type})`];
    case "clone-parent":
      return ["clone(CLONE_PARENT): the rest runs in the child, inside the joined PID namespace", "exit_group(0)"];
    case "setresgid":
    case "setresuid":
      return [`${call.op}(${call.id}, ${call.id}, ${call.id})`];
    case "setgroups":
      return [`setgroups([${call.groups.join(", ")}])${call.epermOk ? " (EPERM: setgroups denied, skipped)" : ""}`];
    case "enter-rootfs":
      return [`fchdir(rootfs fd)  (${call.path})`];
    case "sethostname":
      return [`sethostname(${q(call.name)})`];
    case "setdomainname":
      return [`setdomainname(${q(call.name)})`];
    case "loopback-up":
      return ['ioctl(socket, SIOCSIFFLAGS, "lo" IFF_UP)'];
    case "sync":
      return [
        "write(status pipe, sync)  (the parent runs the prestart, createRuntime, createContainer hooks)",
        "read(sync pipe, 1)",
        "close(sync pipe)",
      ];
    case "rlimit":
      return [`prlimit(0, RLIMIT_${call.name.toUpperCase().replace(/^RLIMIT_/, "")}, ${JSON.stringify(call.limit)})`];
    case "setsid":
      return ["setsid()"];
    case "console":
      return consolePlan(call.request, call.uid);
    case "bounding":
      return [
        `bounding set: ${capabilitySetsFor(ctx.spec).bounding.join(", ") || "(none)"}`,
        ...(call.keepCaps ? ["prctl(PR_SET_KEEPCAPS, 1)"] : []),
      ];
    case "capsets":
      return capabilityPlanLines(ctx.spec);
    case "seccomp": {
      const profile = ctx.spec.seccomp as Exclude<ResolvedSpec["seccomp"], false>;
      return [
        `seccomp(SECCOMP_SET_MODE_FILTER, 0, {${
          call.program.byteLength / 8
        } BPF instructions: default ${profile.defaultAction}, ${profile.syscalls.length} rules})`,
      ];
    }
    case "js":
      return [...call.lines, `(JavaScript in the child: ${call.why}; so the child is forked, not a native program)`];
  }
}

/** The capability plan the capabilities step worked out, for the capability-sets step. */
const keepPlans = new WeakMap<SetupContext, KeepPlan>();

/** True when the spec's command runs as another user (or with other groups) than root. */
function changesUser(c: SetupContext): boolean {
  return c.spec.user.uid !== 0 || c.spec.user.gid !== 0 || c.spec.user.groups.length > 0;
}

/** The steps that confine the provision hook's child (as the container's command is confined). */
const PROVISION_CONFINED_BY: readonly StepName[] = ["capabilities", "capability-sets", "no-new-privs", "seccomp"];

/**
 * Runs the provision hook in a forked child confined as the container's command will be (its
 * capabilities, no_new_privs, seccomp; fds above 2 closed at exec, and closed before a callback
 * runs), as root inside; waits for it.
 * @throws {Error} Naming the hook and how it failed.
 */
function runProvision(c: SetupContext): void {
  const hook = c.spec.hooks.provision!;
  const [r, w] = pipe();
  const pid = forkProcess(0);
  if (pid === 0) {
    let code = 1;
    try {
      closeFd(r);
      for (const s of SETUP_STEPS) if (PROVISION_CONFINED_BY.includes(s.name) && s.when(c)) runStep(c, s);
      if (typeof hook !== "function") {
        code = 127;
        check(
          Number(libc().syscall(BigInt(SYS.close_range), 3n, 0xffffffffn, BigInt(CLOSE_RANGE_CLOEXEC), 0n, 0n)),
          "close_range",
        );
        exec(hookArgv(hook), [], { env: c.spec.env });
      }
      // Every fd of the runtime closed but the pipe for a failure's message (closed at exit).
      const closeRange = (from: number, to: number) =>
        from <= to &&
        check(Number(libc().syscall(BigInt(SYS.close_range), BigInt(from), BigInt(to), 0n, 0n, 0n)), "close_range");
      closeRange(3, w - 1);
      closeRange(w + 1, 0xffffffff);
      const result = hook({ spec: c.spec }) as unknown;
      if (result && typeof (result as { then?: unknown }).then === "function") {
        throw new Error(
          "the provision callback returned a promise: it runs in the forked child and must be synchronous",
        );
      }
      code = 0;
    } catch (e) {
      writeAll(w, new TextEncoder().encode(e instanceof Error ? e.message : String(e)));
    }
    libc()._exit(code);
  }
  closeFd(w);
  const { status } = waitpid2(pid);
  const said = readText(r);
  closeFd(r);
  if (status.success) return;
  const what = typeof hook === "function" ? "the provision callback" : JSON.stringify(hookArgv(hook));
  if (said) throw new Error(said);
  throw new Error(
    `${what} ${
      status.signal !== null
        ? `was killed by signal ${status.signal}`
        : status.code === 127
        ? "could not be run (exit 127)"
        : `exited with ${status.code}`
    }`,
  );
}

/**
 * Reads `fd` to EOF as UTF-8 (a short message from a child). Runs in the forked child (a setup
 * step), so its EINTR loop stays written out: no closure allocated there (see ffi/fork.ts).
 */
function readText(fd: number): string {
  const out: number[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = libc().read(fd, buf, BigInt(buf.length));
    if (n === -1 && errno() === EINTR) continue;
    if (n <= 0 || out.length > 65536) break;
    out.push(...buf.subarray(0, n));
  }
  return new TextDecoder().decode(new Uint8Array(out)).trim();
}

/** The file a process writes the offsets of the time namespace it made (for its children) to. */
export const TIMENS_OFFSETS = "/proc/self/timens_offsets";

/** What is written to {@link TIMENS_OFFSETS} (pure): one line per clock, seconds and nanoseconds. */
export function timensOffsetsText(spec: Pick<ResolvedSpec, "timeOffsets">): string {
  const o = spec.timeOffsets ?? { monotonic: 0, boottime: 0 };
  return `monotonic ${o.monotonic} 0\nboottime ${o.boottime} 0\n`;
}

/**
 * True when the offsets file must be opened while this process is dumpable: a rootless child's
 * /proc/self files belong to root while it is not (the non-dumpable step), and its own uid may not
 * open them. It is made dumpable for the open alone, as runc's nsexec does around the id maps in a
 * new user namespace; nothing has joined the container's namespaces yet (join-namespaces comes
 * after), and the write is allowed by the capabilities of the open's credentials there.
 */
export function timensNeedsDumpable(spec: Pick<ResolvedSpec, "rootless" | "timeOffsets">): boolean {
  return spec.rootless && spec.timeOffsets !== undefined;
}

/** Writes the time offsets `text` to this process's {@link TIMENS_OFFSETS} in one write (the kernel parses one buffer). */
function writeTimensOffsets(text: string, dumpable: boolean): void {
  const { open, prctl } = libc();
  if (dumpable) check(prctl(PR_SET_DUMPABLE, 1n, 0n, 0n, 0n), "prctl", [unquoted("PR_SET_DUMPABLE"), 1]);
  const fd = open(cstr(TIMENS_OFFSETS), O_WRONLY_CLOEXEC, 0);
  const openErrno = fd === -1 ? errno() : 0;
  if (dumpable) check(prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n), "prctl", [unquoted("PR_SET_DUMPABLE"), 0]);
  if (fd === -1) throw new SyscallError("open", openErrno, [TIMENS_OFFSETS]);
  writeWholeAndClose(fd, TIMENS_OFFSETS, text);
}

/** Writes `text` in one write(2) to `fd` (open on `path`), which must take it whole, then closes it. */
function writeWholeAndClose(fd: number, path: string, text: string): void {
  const { close, write } = libc();
  try {
    const bytes = new TextEncoder().encode(text);
    const n = write(fd, bytes, BigInt(bytes.length));
    if (n !== bytes.length) throw new SyscallError("write", n === -1 ? errno() : EIO, [path, text]);
  } finally {
    close(fd);
  }
}

/** execvp's PATH when the spec's env has none. */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** access(2)'s `X_OK`. */
const X_OK = 1;

/**
 * Where execve will look for the command (pure): its path when it has a `/`, else each directory of
 * the spec's PATH (an empty one is `.`), as execvp and native.ts's compileExec.
 */
export function commandCandidates(spec: Pick<ResolvedSpec, "argv" | "env">): string[] {
  const cmd = spec.argv[0]!;
  if (cmd.includes("/")) return [cmd];
  return (spec.env.PATH ?? DEFAULT_PATH).split(":").map((d) => `${(d || ".").replace(/\/$/, "")}/${cmd}`);
}

/** The forked child's lookup (native.ts compiles the same calls). @throws {SyscallError} The last candidate's failure. */
function lookupCommand(cmd: string, candidates: readonly string[]): void {
  const c = libc();
  for (const [i, path] of candidates.entries()) {
    if (c.faccessat(AT_FDCWD, cstr(path), X_OK, 0) === 0) return;
    const e = errno();
    if (i < candidates.length - 1 && (e === ENOENT || e === EACCES)) continue;
    throw new SyscallError("faccessat", e, [i === candidates.length - 1 && candidates.length > 1 ? cmd : path]);
  }
}

/** Writes a sysctl's value whole (the forked child's; native.ts compiles the same calls). */
function writeSysctl(path: string, value: string): void {
  const fd = libc().open(cstr(path), O_WRONLY_CLOEXEC, 0);
  if (fd === -1) throw new SyscallError("open", errno(), [path]);
  writeWholeAndClose(fd, path, value);
}

/**
 * The exec-fifo step (OCI mode, `hako oci create`): the child's last call before execve — after
 * the ready report, every setup step and the signal reset — is a blocking
 * `open("/proc/self/fd/N", O_WRONLY|O_CLOEXEC)` of the FIFO whose `O_PATH` fd N the parent opened
 * on the host (through the container's own /proc after pivot_root: nothing of the host is looked
 * up by path inside), then a one-byte write. `create` exits while the child waits there, as runc's
 * `runc init` waits on its `exec.fifo`; `start` opens the FIFO for reading, which lets the open
 * return, and reads the byte. The fd is close-on-exec: the reader sees EOF once the command runs.
 *
 * Before it waits, every fd but stdio and the FIFO's is closed (not only marked close-on-exec):
 * the runtime's own fds, among them its copies of the pipes `create`'s caller gave it, would else
 * stay open until `start`. containerd's shim reads `create`'s output until EOF when the container
 * has a terminal (go-runc's `cmdOutput`), so it would wait forever. runc's init holds only its
 * stdio and the FIFO there too.
 * @returns The step's calls, for `hako plan` and the tests.
 */
export function execFifoPlan(fd: number, startSync = false, preserveFds = 0): string[] {
  const from = firstClosedFd(preserveFds);
  return [
    ...(fd > from ? [`close_range(${from}, ${fd - 1}, 0)`] : []),
    `close_range(${fd + 1}, ~0U, 0)`,
    `open("/proc/self/fd/${fd}", O_WRONLY|O_CLOEXEC) → fifo  (blocks until start)`,
    'write(fifo, "0", 1)',
    // startContainer hooks: start runs them once it has read the "0", then writes a byte back
    // through the same FIFO (runc runs them in its init, after the FIFO and before execve)
    ...(startSync
      ? [
        "close(fifo)",
        `open("/proc/self/fd/${fd}", O_RDONLY|O_CLOEXEC) → fifo  (blocks until start has run the startContainer hooks)`,
        "read(fifo, 1)",
      ]
      : []),
  ];
}

/** The path the exec-fifo step opens: the FIFO's `O_PATH` fd, seen through /proc. */
export function execFifoPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/**
 * The exec-fifo step in the forked child (see {@link execFifoPlan}); the native child runs the same
 * two calls (native.ts).
 * @throws {SyscallError} When the open or the write fails.
 */
export function runExecFifo(fifo: PreparedExecFifo): void {
  const c = libc();
  const closeRange = (from: number, to: number) =>
    check(Number(c.syscall(BigInt(SYS.close_range), BigInt(from), BigInt(to), 0n, 0n, 0n)), "close_range");
  if (fifo.fd > fifo.from) closeRange(fifo.from, fifo.fd - 1);
  closeRange(fifo.fd + 1, 0xffffffff);
  let w: number;
  for (;;) {
    w = c.open(fifo.path, O_WRONLY_CLOEXEC, 0);
    if (w !== -1 || errno() !== EINTR) break;
  }
  if (w === -1) {
    throw new SyscallError("open", errno(), [fifo.shown, unquoted("O_WRONLY|O_CLOEXEC")], "open the exec fifo");
  }
  if (c.write(w, fifo.byte, 1n) !== 1) throw new SyscallError("write", errno(), [fifo.shown], "exec fifo");
  // (close-on-exec: closed by the execve that follows)
  if (!fifo.startSync) return;
  c.close(w);
  let r: number;
  for (;;) {
    r = c.open(fifo.path, O_RDONLY_CLOEXEC, 0);
    if (r !== -1 || errno() !== EINTR) break;
  }
  if (r === -1) {
    throw new SyscallError(
      "open",
      errno(),
      [fifo.shown, unquoted("O_RDONLY|O_CLOEXEC")],
      "wait for the startContainer hooks",
    );
  }
  let n: number;
  for (;;) {
    n = c.read(r, fifo.byte, 1n);
    if (n !== -1 || errno() !== EINTR) break;
  }
  if (n !== 1) {
    throw new SyscallError("read", n === -1 ? errno() : EIO, [fifo.shown], "wait for the startContainer hooks");
  }
}

/** The exec-fifo step's buffers, made by the parent before the fork (the forked child allocates nothing). */
export interface PreparedExecFifo {
  readonly fd: number;
  /** startContainer hooks: a second byte waited for (see {@link execFifoPlan}). */
  readonly startSync: boolean;
  /** The first fd closed before the wait ({@link firstClosedFd}: the preserved fds stay). */
  readonly from: number;
  readonly path: Uint8Array;
  readonly shown: string;
  readonly byte: Uint8Array;
}

/** Prepares {@link runExecFifo}'s buffers for the FIFO's fd. */
export function prepareExecFifo(fd: number, startSync = false, preserveFds = 0): PreparedExecFifo {
  return {
    fd,
    startSync,
    from: firstClosedFd(preserveFds),
    path: cstr(execFifoPath(fd)),
    shown: execFifoPath(fd),
    byte: new Uint8Array([0x30]),
  };
}

/** A bind mount's options that are flags of its remount (runc's bind remount). */
const BIND_FLAGS: Readonly<Record<string, number>> = { nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC };

/** `MS_RDONLY|MS_NOSUID…` for a remount's added flags. */
export function bindFlagNames(flags: number): string {
  const names = [["MS_RDONLY", MS.RDONLY], ["MS_NOSUID", MS.NOSUID], ["MS_NODEV", MS.NODEV], [
    "MS_NOEXEC",
    MS.NOEXEC,
  ]] as const;
  return names.filter(([, f]) => flags & f).map(([n]) => n).join("|");
}

/** The steps, in order. */
export const SETUP_STEPS: readonly SetupStep[] = [
  {
    name: "non-dumpable",
    why:
      "before anything else: until execve gives the command a memory of its own, no process in the namespaces this one joins or shares may open its /proc/PID/mem, environ, fd/ or exe (a native child shares hako's own memory; runc's CVE-2016-9962 and CVE-2019-5736)",
    when: () => true,
    calls: () => [{ op: "prctl", option: PR_SET_DUMPABLE, arg: 0, name: "PR_SET_DUMPABLE" }],
  },
  {
    name: "time-namespace",
    why:
      "a new time namespace cannot be asked of clone(2) (its flag is an exit-signal bit there): unshared here, it is the one the command enters at execve; its clock offsets (timeOffsets, OCI's linux.timeOffsets) are written now, before any process enters it (the kernel refuses them after)",
    when: (c) => has(c, "time"),
    calls: (c) => [
      { op: "unshare", flag: CLONE_NEWTIME, name: "CLONE_NEWTIME" },
      ...(c.spec.timeOffsets
        ? [{ op: "timens-offsets", text: timensOffsetsText(c.spec), dumpable: timensNeedsDumpable(c.spec) } as const]
        : []),
    ],
  },
  {
    name: "join-namespaces",
    why: "joining existing namespaces comes first, so everything after happens inside them",
    when: (c) => c.spec.joinNamespaces.length > 0,
    // opened and joined one by one, in the spec's order
    calls: (c) => c.spec.joinNamespaces.map((j) => ({ op: "setns", path: j.path, type: j.type })),
  },
  {
    name: "enter-pid-namespace",
    why:
      "setns into a PID namespace applies only to children: the rest of the setup and the command run in a child cloned into it, the caller's own (CLONE_PARENT), as runc's nsexec forks after setns; this child reports that pid and exits",
    when: (c) => c.spec.joinNamespaces.some((j) => j.type === "pid"),
    calls: () => [{ op: "clone-parent" }],
  },
  {
    name: "become-root",
    exec: true,
    why:
      "in a new user namespace the child carries its unmapped host ids until it sets them; root inside owns the other namespaces",
    when: (c) => c.userns,
    calls: () => [{ op: "setresgid", id: 0 }, { op: "setresuid", id: 0 }],
  },
  {
    name: "cgroup-namespace",
    why:
      "a cgroup namespace rooted at the container's own cgroup (the parent put this child there before the go byte), so /proc/self/cgroup and the cgroup mounts show the container's subtree, not the host's paths",
    when: (c) => has(c, "cgroup"),
    calls: () => [{ op: "unshare", flag: CLONE_NEWCGROUP, name: "CLONE_NEWCGROUP" }],
  },
  {
    name: "enter-rootfs",
    why:
      "into the rootfs through the parent's O_PATH fd of it, walking no host directory above it: root of a user namespace may not pass through hako's image stores, which are closed to everyone but root",
    when: (c) => has(c, "mount"),
    calls: (c) => [{ op: "enter-rootfs", path: c.spec.rootfsPath }],
  },
  {
    name: "mount-namespace",
    why:
      "a mount namespace of its own, made once inside the rootfs (not at clone time), so the working directory is the rootfs's mount in the new namespace",
    when: (c) => has(c, "mount"),
    calls: () => [{ op: "unshare", flag: CLONE_NEWNS, name: "CLONE_NEWNS" }],
  },
  {
    name: "capture-propagating-sources",
    why:
      "the sources of the spec's binds with a shared or slave propagation option (rshared: Kubernetes' Bidirectional, rslave: HostToContainer), copied while the new namespace's mounts are still the host's peers, so each copy stays in its source's peer group; every other source is taken after the namespace goes private",
    when: (c) => has(c, "mount") && c.spec.mounts.some(propagatesWithHost),
    calls: fromMounts("capture-propagating-sources"),
  },
  {
    name: "private-mounts",
    why: "nothing mounted from here on may propagate to the host",
    when: (c) => has(c, "mount"),
    calls: fromMounts("private-mounts"),
  },
  {
    name: "rootfs-bind",
    why:
      "pivot_root needs the new root to be a mount point: a recursive copy of the rootfs's mounts is attached over it (open_tree + move_mount, no path above it walked) and becomes the working directory; it can be made read-only later",
    when: (c) => has(c, "mount"),
    calls: () => [ROOTFS_MOUNT],
  },
  {
    name: "capture-host-sources",
    why:
      "the host paths the mounts below bind from (/sys and the devices in a user namespace, the spec's bind sources, the container's files), taken as detached copies of their mounts before the chroot hides the host",
    when: (c) => has(c, "mount") && hostSourceCaptures(c, false).length > 0,
    calls: fromMounts("capture-host-sources"),
  },
  {
    name: "chroot-rootfs",
    why:
      "into the rootfs's mount before any mount in it: every target below is a path inside the rootfs, resolved there, so no symlink of the image's — nor one a container sharing the rootfs swaps in meanwhile — takes a mount onto the host (what runc does through /proc/self/fd); pivot-root leaves it through the held host root",
    when: (c) => has(c, "mount"),
    calls: fromMounts("chroot-rootfs"),
  },
  {
    name: "mount-proc",
    why: "a /proc of the container's own PID namespace (mounted before pivot_root, under the new root)",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    calls: fromMounts("mount-proc"),
  },
  {
    name: "mount-sys",
    why:
      "sysfs read-only; a user namespace without its own net namespace may not mount sysfs, so the host's /sys is bound instead, read-only with every mount under it",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    calls: fromMounts("mount-sys"),
  },
  {
    name: "mount-cgroup",
    why:
      "the container's cgroups at /sys/fs/cgroup, read-only (as runc and crun mount them): a process inside may read its limits but not change, move or release anything",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    calls: fromMounts("mount-cgroup"),
  },
  {
    name: "mount-dev",
    why:
      "a private /dev on tmpfs with only the default devices (null zero full random urandom tty, ptmx), not the host's",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    calls: fromMounts("mount-dev"),
  },
  {
    name: "mount-devpts",
    why: "a new devpts instance, so the container's terminals are its own",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    calls: fromMounts("mount-devpts"),
  },
  {
    name: "mount-shm",
    why:
      "POSIX shared memory of its own (not with shm: false, docker's --ipc none; a spec mount at /dev/shm takes its place: a pod's shared one, another size)",
    when: (c) => has(c, "mount") && c.spec.standardMounts && c.spec.shm && !hasMountAt(c, "/dev/shm"),
    calls: fromMounts("mount-shm"),
  },
  {
    name: "mount-mqueue",
    why:
      "POSIX message queues belong to the IPC namespace: only with a new one (a spec mount at /dev/mqueue takes its place)",
    when: (c) => has(c, "mount") && c.spec.standardMounts && has(c, "ipc") && !hasMountAt(c, "/dev/mqueue"),
    calls: fromMounts("mount-mqueue"),
  },
  {
    name: "mount-init",
    why:
      "init: true (docker's --init): the host's static init bound read-only at /dev/init, in the container's own /dev, to run as PID 1 with the command as its child: it gets and forwards every signal and reaps zombies",
    when: (c) => c.spec.init !== undefined && has(c, "mount") && c.spec.standardMounts,
    calls: fromMounts("mount-init"),
  },
  {
    name: "mounts",
    why:
      "the spec's own mounts, after the standard ones so they can cover them; each target (and each directory made above it) opened with no symlink followed and the mount made on that fd, so a symlink a volume holds or a sibling swaps in cannot move it into /proc or onto the host",
    when: (c) => c.spec.mounts.length > 0,
    calls: fromMounts("mounts"),
  },
  {
    name: "etc-files",
    why:
      "the container's own /etc/hosts, /etc/hostname and /etc/resolv.conf — written by the parent into the container's directory under the state directory, never into the rootfs — or the host's resolv.conf and hosts read-only (networkEtc: \"host\"), bound over the mount points the parent made (none inside /proc), each opened with no symlink followed and the file moved onto that fd",
    when: (c) => (c.files?.length ?? 0) > 0,
    calls: fromMounts("etc-files"),
  },
  {
    name: "hostname",
    why: "in the new UTS namespace",
    when: (c) => c.spec.hostname !== undefined,
    calls: (c) => [{ op: "sethostname", name: c.spec.hostname! }],
  },
  {
    name: "domainname",
    why: "the NIS domain name, in the new UTS namespace (OCI's domainname)",
    when: (c) => c.spec.domainname !== undefined,
    calls: (c) => [{ op: "setdomainname", name: c.spec.domainname! }],
  },
  {
    name: "loopback",
    why: "a new network namespace starts with lo down",
    when: (c) => c.spec.loopback && has(c, "net"),
    calls: () => [{ op: "loopback-up" }],
  },
  {
    name: "network",
    why:
      "the container end of the veth pair (moved into this namespace by the parent before the go byte) gets its address and is set up; netlink still works before pivot_root",
    when: (c) => c.spec.veth !== undefined && has(c, "net"),
    // (netlink through network.ts: JavaScript, so the child is forked)
    calls: (c) => [{
      op: "js",
      why: "the netlink messages are built by network.ts",
      lines: networkLines(c),
      run: (c) => {
        const v = c.spec.veth!;
        if (v.containerAddress) addAddress(v.container, v.containerAddress);
        netlinkLinkUp(v.container);
      },
    }],
  },
  {
    name: "hooks-sync",
    why:
      "OCI hooks only: the parent runs prestart and createRuntime (in the runtime's namespaces), then createContainer (in the container's), while the child waits here — after every mount, before pivot_root, so a hook that enters the mount namespace (nvidia-container-toolkit's) still finds the rootfs at its host path and its mounts under it are the container's (runc's syncParentHooks)",
    when: (c) => c.hooksSync !== undefined,
    calls: () => [{ op: "sync" }],
  },
  {
    name: "pivot-root",
    why: "switch to the rootfs; the old root is detached, so nothing of the host stays reachable",
    when: (c) => has(c, "mount") && c.noPivot === undefined,
    calls: fromMounts("pivot-root"),
  },
  {
    name: "move-root",
    why:
      "OCI --no-pivot (a host root on a ramdisk cannot be pivoted from): the rootfs's mount moved over / and chroot'ed into, as runc; then the host's proc and sysfs mounts, and every mount on its root, detached from the namespace where the kernel allows (a kept proc or sysfs covered by a tmpfs), so a process that climbs out of the chroot finds the host's root filesystem alone",
    when: (c) => has(c, "mount") && c.noPivot !== undefined,
    calls: fromMounts("move-root"),
  },
  {
    name: "root-propagation",
    why:
      "rootfsPropagation (OCI's linux.rootfsPropagation) given to the new root and, for an r- value, every mount under it — after pivot_root: the root's mount is the container's own copy, so a shared root makes new peer groups, none of them the host's",
    when: (c) => c.spec.rootfsPropagation !== undefined && has(c, "mount"),
    calls: fromMounts("root-propagation"),
  },
  {
    name: "sysctl",
    why:
      "the spec's namespaced sysctls, written through the container's own /proc in its namespaces (the kernel picks the writer's namespace, so the parent cannot write them without joining, and root of a nested user namespace could not come back), before /proc/sys is made read-only",
    when: (c) => c.spec.sysctl.length > 0,
    calls: (c) => c.spec.sysctl.map(({ key, value }) => ({ op: "sysctl", key, path: sysctlPath(key), value })),
  },
  {
    name: "masked-paths",
    why:
      "hide kernel interfaces a container must not read: /dev/null over files, an empty read-only tmpfs over directories; each path opened with no magic link followed and the mount made on that fd, not on the path walked again",
    when: (c) => has(c, "mount") && c.spec.maskedPaths.length > 0,
    calls: fromMounts("masked-paths"),
  },
  {
    name: "readonly-paths",
    why:
      "kernel knobs stay readable but not writable: each path opened with no magic link followed, a copy of its mount taken from that fd, made read-only while detached, moved back onto it",
    when: (c) => has(c, "mount") && c.spec.readonlyPaths.length > 0,
    calls: fromMounts("readonly-paths"),
  },
  {
    name: "readonly-rootfs",
    why: "after every mount under / is made",
    when: (c) => c.spec.readonlyRootfs && has(c, "mount"),
    // The rootfs's own flags (nosuid, nodev…) kept, as the native program's remount does: a bind
    // remount sets the flags it is given, so leaving them out would clear them (and fail with
    // EPERM in a user namespace, where they are locked; runc retries with statfs's flags then).
    calls: () => [{ op: "remount-ro", target: cstr("/"), path: "/" }],
  },
  {
    name: "rlimits",
    exec: true,
    why: "before privileges are dropped (raising a hard limit needs CAP_SYS_RESOURCE)",
    when: (c) => Object.keys(c.spec.rlimits).length > 0,
    calls: (c) => Object.entries(c.spec.rlimits).map(([name, limit]) => ({ op: "rlimit", name, limit })),
  },
  {
    name: "workdir",
    exec: true,
    why: "inside the new root",
    when: () => true,
    calls: (c) => [{ op: "chdir-in", path: cstr(c.spec.workdir), how: WORKDIR_HOW, shown: [c.spec.workdir] }],
  },
  {
    name: "new-session",
    exec: true,
    why:
      "a session of its own, so no terminal of the caller's is its controlling tty (TIOCSTI into the caller's shell, CVE-2017-5226); a pty given with -t becomes its controlling tty in the console step",
    when: () => true,
    calls: () => [{ op: "setsid" }],
  },
  {
    name: "provision",
    why:
      "the spec's provision hook, inside the finished container (after pivot_root and the workdir), before the command; it runs in a child of its own with the container's capabilities, no_new_privs and seccomp filter and none of hako's fds (root inside, as a build step): code from the image never gets more than the container's command",
    when: (c) => c.spec.hooks.provision !== undefined,
    calls: (
      c,
    ) => [{
      op: "js",
      why: "the hook is a callback, or a command forked and waited for",
      lines: provisionLines(c),
      run: runProvision,
    }],
  },
  {
    name: "console",
    exec: true,
    why:
      "with -t: a pty of the container's own devpts (after pivot_root), the controlling terminal of the new session and the command's stdio, its master handed to hako over the console socket (SCM_RIGHTS, as runc's); after the provision hook (which gets no terminal), before the capabilities go (the slave is chowned to the command's user)",
    when: (c) => c.console !== undefined,
    calls: (c) => [{ op: "console", request: c.console!, uid: c.spec.user.uid }],
  },
  {
    name: "seccomp-privileged",
    exec: true,
    why:
      "without no_new_privs the kernel loads a filter only for a process holding CAP_SYS_ADMIN, so it is loaded now, before any capability goes (as runc does): the filter then also judges the calls that drop them and change the user, which a profile must allow (docker's and podman's do); with no_new_privs it comes last instead (the seccomp step)",
    when: (c) => c.spec.seccomp !== false && !c.spec.noNewPrivs,
    calls: (c) => [{ op: "seccomp", program: c.spec.seccompProgram! }],
  },
  {
    name: "capabilities",
    exec: true,
    why:
      "the bounding set trimmed while CAP_SETPCAP is still held; before a change of user, PR_SET_KEEPCAPS keeps the permitted set across it",
    when: () => true,
    calls: (c) => [{ op: "bounding", keepCaps: changesUser(c) }],
  },
  {
    name: "user",
    exec: true,
    why:
      "the spec's user and groups (none but the spec's: the caller's supplementary groups never reach the container, as with runc), while CAP_SETUID and CAP_SETGID are still effective; rootless with setgroups denied, the groups cannot change and the kernel shows them unmapped",
    when: () => true,
    calls: (c) => [
      { op: "setgroups", groups: c.spec.user.groups, epermOk: c.spec.rootless },
      { op: "setresgid", id: c.spec.user.gid },
      { op: "setresuid", id: c.spec.user.uid },
    ],
  },
  {
    name: "capability-sets",
    exec: true,
    why:
      "effective, permitted and inheritable sets set, the ambient set cleared and raised (a non-root user's named capabilities, or the spec's ambient set): after the change of user, which clears the effective set",
    when: () => true,
    calls: () => [{ op: "capsets" }],
  },
  {
    name: "lookup-command",
    why:
      "OCI create: the command is looked for now, as the container's user, so a missing one fails create with runc's words (podman's 127) instead of the container dying after start with no one to tell",
    when: (c) => c.execFifo !== undefined && c.spec.execPath === undefined,
    calls: (c) => [{ op: "lookup", cmd: c.spec.argv[0]!, candidates: commandCandidates(c.spec) }],
  },
  {
    name: "no-new-privs",
    exec: true,
    why: "setuid binaries and file capabilities can no longer raise privileges",
    when: (c) => c.spec.noNewPrivs,
    calls: () => [{ op: "prctl", option: PR_SET_NO_NEW_PRIVS, arg: 1, name: "PR_SET_NO_NEW_PRIVS" }],
  },
  {
    name: "seccomp",
    exec: true,
    why:
      "last before exec: the filter also judges hako's own setup calls (mount, pivot_root, setns…), so every one of them must be done; after no_new_privs, which lets an unprivileged process load it (without no_new_privs: the seccomp-privileged step)",
    when: (c) => c.spec.seccomp !== false && c.spec.noNewPrivs,
    // Compiled by the parent in resolveSpec: the child only loads it.
    calls: (c) => [{ op: "seccomp", program: c.spec.seccompProgram! }],
  },
];

/** The steps by name. */
const STEP_BY_NAME: ReadonlyMap<StepName, SetupStep> = new Map(SETUP_STEPS.map((s) => [s.name, s]));

/** The provision step's line in `hako plan`. */
function provisionLines(c: SetupContext): string[] {
  return [
    `fork: ${
      describeHook(c.spec.hooks.provision!, "{ spec }")
    } (synchronous), as root inside with the container's capabilities (${c.spec.capabilities.join(", ") || "none"})${
      c.spec.noNewPrivs ? ", no_new_privs" : ""
    }${c.spec.seccomp ? ", the seccomp filter" : ""}, fds above 2 closed`,
  ];
}

/** The network step's lines in `hako plan`. */
function networkLines(c: SetupContext): string[] {
  const v = c.spec.veth!;
  return [
    ...(v.containerAddress
      ? [`netlink RTM_NEWADDR ${v.containerAddress} dev ${v.container} (IFA_LOCAL, IFA_ADDRESS)`]
      : []),
    `netlink RTM_NEWLINK ${v.container} IFF_UP`,
  ];
}

/**
 * The clone flags of a container's namespaces. Three kinds are not among them: CLONE_NEWTIME (in
 * clone(2)'s flags its bit is part of the exit signal: the time-namespace step unshares it),
 * CLONE_NEWCGROUP (a cgroup namespace is rooted where its maker is when it is made: the
 * cgroup-namespace step unshares it once the parent has put the child in its cgroup) and
 * CLONE_NEWNS (the mount-namespace step unshares it once the child is in the rootfs, so its
 * working directory is the rootfs's mount in the new namespace).
 */
export function cloneFlags(spec: ResolvedSpec): number {
  return namespaceFlags(spec.newNamespaces) & ~(CLONE_NEWTIME | CLONE_NEWCGROUP | CLONE_NEWNS);
}

/** The steps that apply to `ctx`, in order. */
export function stepsFor(ctx: SetupContext): SetupStep[] {
  return SETUP_STEPS.filter((s) => s.when(ctx));
}

/** Execs the container's command (the last step); with what {@link prepareSetup} made, without a PATH search. */
export function execCommand(spec: ResolvedSpec): never {
  if (!preparedExec.has(spec) && spec.execPath) prepareExec(spec);
  const p = preparedExec.get(spec);
  if (!p) return exec(spec.argv, [], { env: spec.env });
  resetSignalsForExec();
  libc().execve(p.file, new Uint8Array(p.argv.array.buffer), new Uint8Array(p.envp.array.buffer));
  throw new SyscallError("execve", errno(), [p.path]);
}
