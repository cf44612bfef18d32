/**
 * The container's setup inside the child, as an ordered list of named steps. The order is data,
 * and each step says why it sits where it does. The child runs them synchronously (it is a fork of
 * the runtime: no event loop), and a failing step is reported to the parent as
 * `{ step, message, syscall, code }` over a close-on-exec pipe.
 *
 * @module
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Capability, keepBounding, type KeepPlan, keepPlan, keepSets } from "../capability.ts";
import { sethostname } from "../hostname.ts";
import * as Mount from "../mount.ts";
import { CLONE_NEWCGROUP, CLONE_NEWTIME, namespaceFlags, setns } from "../namespace.ts";
import { exec, resetSignalsForExec, waitpid2 } from "../process.ts";
import { setrlimit } from "../rlimit.ts";
import { loadSeccomp } from "../seccomp.ts";
import { setgroups, setresgid, setresuid } from "../user.ts";
import { chdir } from "../dir.ts";
import { setLinkUp } from "../../ffi/net.ts";
import { addAddress, setLinkUp as netlinkLinkUp } from "../network.ts";
import { ensureMountPoint, secureJoin } from "./_paths.ts";
import { closeFd, pipe, report, writeAll } from "./_pipe.ts";
import { forkProcess } from "../../ffi/fork.ts";
import { describeHook, hookArgv } from "./hooks.ts";
import { makedev, mknod } from "./_devices.ts";
import { addressOf, check, errno, libc } from "../../ffi/libc.ts";
import { SYS } from "../../ffi/syscalls.ts";
import { cstr, cstrArray, type CStringArray } from "../../ffi/cstring.ts";
import { encodeMountAttr, MOUNT_ATTR_RDONLY, statvfsBuffer, statvfsFlags } from "../../ffi/structs.ts";
import { detect, type Layout } from "../cgroup/layout.ts";
import { SyscallError } from "../errors.ts";
import type { ResolvedSpec } from "./validate.ts";
import { consolePlan, type ConsoleRequest, runConsole } from "./_console.ts";

/** What the steps share. */
export interface SetupContext {
  readonly spec: ResolvedSpec;
  /** True when the child runs in a new user namespace (mknod is not allowed there). */
  readonly userns: boolean;
  /** The child's end of the status pipe (the forked child reports the pid of its own child there). */
  readonly statusFd?: number;
  /** With `-t`: the console socket (and window size) of the console step (see `_console.ts`). */
  readonly console?: ConsoleRequest;
}

/** One named step of the child's setup. */
export interface SetupStep {
  /** The name shown in errors and in `hako plan`. */
  readonly name: string;
  /** Why it is here, in this order. */
  readonly why: string;
  /** Whether the step applies to this spec. */
  readonly when: (ctx: SetupContext) => boolean;
  /** The kernel calls it makes, for `hako plan`. */
  readonly plan: (ctx: SetupContext) => string[];
  /** Does it. */
  readonly run: (ctx: SetupContext) => void;
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

const inRoot = (ctx: SetupContext, p: string) => secureJoin(ctx.spec.rootfsPath, p);
const has = (ctx: SetupContext, ns: string) => ctx.spec.newNamespaces.includes(ns as never);

function mountIn(ctx: SetupContext, source: string, target: string, type: string, flags: string[], data?: string) {
  const where = inRoot(ctx, target);
  ensureMountPoint(where);
  Mount.mount(source, where, { type, flags, ...(data ? { data } : {}) });
}

/**
 * Mounts on `/dev/<name>` inside the fresh tmpfs the mount-dev step made: nothing there can be a
 * symlink planted by the image, so the path is joined directly and the directory made without the
 * lstat-per-component walk of {@link secureJoin}. In the forked child every touched page is a
 * copy-on-write fault (≈ 10 µs each here), and that walk's ENOENT exceptions cost ~150 faults.
 */
function mountInDev(ctx: SetupContext, name: string, source: string, type: string, flags: string[], data?: string) {
  const where = join(ctx.spec.rootfsPath, "dev", name);
  mkdirSync(where);
  Mount.mount(source, where, { type, flags, ...(data ? { data } : {}) });
}

/**
 * A kernel call of a standard step, prepared by the parent before the fork ({@link prepareSetup}):
 * C strings encoded, flags as numbers, the message's arguments ready. The forked child then runs
 * one small loop of libc calls ({@link runPrepared}) instead of the general `Mount.*` path (option
 * parsing, flag names for messages, path checks, new strings): in the child every page V8 writes —
 * a function's feedback, a fresh allocation — is a copy-on-write fault (≈ 2.5 µs each here), so
 * the less distinct code it runs, the faster it is ready.
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
  | { readonly op: "mkdir"; readonly path: Uint8Array; readonly shown: readonly unknown[] }
  | { readonly op: "symlink"; readonly to: Uint8Array; readonly path: Uint8Array; readonly shown: readonly unknown[] }
  | { readonly op: "chdir"; readonly path: Uint8Array; readonly shown: readonly unknown[] }
  /** pivot_root(".", "."), then the old root detached: the caller chdir'd into the new root. */
  | { readonly op: "pivot"; readonly dot: Uint8Array }
  /**
   * A masked path: an empty read-only tmpfs over it, or — ENOTDIR: it is a file — /dev/null bound
   * over it; ENOENT (not on this kernel) skips it. Trying the mount instead of an lstat first keeps
   * node:fs (and its exceptions) out of the child.
   */
  | { readonly op: "mask"; readonly dir: PreparedMount; readonly file: PreparedMount }
  /** A read-only path: bound onto itself (ENOENT skips it), then remounted read-only keeping its flags. */
  | { readonly op: "readonly"; readonly path: string; readonly bind: PreparedMount; readonly target: Uint8Array }
  /** An empty file made as a mount point (a device bound over it in a user namespace's /dev). */
  | { readonly op: "touch"; readonly path: Uint8Array; readonly shown: readonly unknown[] }
  /**
   * sysfs, or — refused (EPERM: a user namespace without a network namespace of its own may not
   * mount it) — the host's /sys bound read-only (`bind`, then remounted read-only at `target`).
   */
  | {
    readonly op: "sysfs";
    readonly sysfs: PreparedMount;
    readonly bind: PreparedMount;
    readonly path: string;
    readonly target: Uint8Array;
    /** The bound /sys's submounts (cgroup, securityfs, debugfs…) made read-only with it. */
    readonly tree: ReadonlyTree;
  }
  /**
   * Every mount at and under `path` made read-only at once (`mount_setattr(AT_RECURSIVE,
   * MOUNT_ATTR_RDONLY)`, Linux 5.12); a kernel without it (ENOSYS) keeps what the bind gave.
   */
  | ReadonlyTree;
type ReadonlyTree = {
  readonly op: "readonly-tree";
  readonly path: Uint8Array;
  readonly attr: Uint8Array;
  readonly shown: readonly unknown[];
};
type PreparedMount = Extract<PreparedCall, { op: "mount" }>;

/** The `MS_*` mount flags the standard steps use. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
  NOSYMFOLLOW: 0x100,
} as const;
const S_IFCHR = 0o020000;
const EPERM = 1;
const ENOENT = 2;
const ENOTDIR = 20;
const O_WRONLY_CREAT_CLOEXEC = 0o1 | 0o100 | 0o2000000;
const MNT_DETACH = 2;
const PR_SET_DUMPABLE = 4;
const CLONE_PARENT = 0x8000;
const EINTR = 4;

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

const AT_FDCWD = -100;
const AT_RECURSIVE = 0x8000;
const ENOSYS = 38;

function readonlyTree(path: string): ReadonlyTree {
  return {
    op: "readonly-tree",
    path: cstr(path),
    attr: encodeMountAttr(MOUNT_ATTR_RDONLY),
    shown: [unquoted("AT_FDCWD"), path, unquoted("AT_RECURSIVE"), unquoted("{MOUNT_ATTR_RDONLY}")],
  };
}

let hostCgroupLayout: Layout | null | undefined;

/**
 * The container's view of its cgroups at /sys/fs/cgroup, read-only (as runc and crun mount it):
 * on a cgroup v2 host one cgroup2 mount; on a v1 (or hybrid) host a tmpfs holding one cgroup
 * mount per hierarchy the host has (and the unified one), the host's symlinks (`cpu` →
 * `cpu,cpuacct`), then the tmpfs made read-only too. With a cgroup namespace of its own the
 * mounts show the container's subtree only. A user namespace without a cgroup namespace of its
 * own may not mount cgroup filesystems: an empty read-only tmpfs then hides what the host's /sys
 * brought.
 */
function cgroupMountCalls(ctx: SetupContext): PreparedCall[] {
  const dir = join(ctx.spec.rootfsPath, "sys/fs/cgroup");
  const ro = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  if (hostCgroupLayout === undefined) {
    try {
      hostCgroupLayout = detect();
    } catch {
      hostCgroupLayout = null;
    }
  }
  const layout = hostCgroupLayout;
  const mayMount = !ctx.userns || has(ctx, "cgroup");
  const tmpfsData = "mode=755,size=64k";
  const tmpfs = preparedMount("tmpfs", dir, "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, tmpfsData);
  const sealed = preparedMount(null, dir, null, MS.REMOUNT | ro, tmpfsData);
  if (!layout || !mayMount) return [tmpfs, sealed];
  if (layout.version === 2 && layout.unified === "/sys/fs/cgroup") {
    return [preparedMount("cgroup2", dir, "cgroup2", ro)];
  }
  const calls: PreparedCall[] = [tmpfs];
  const seen = new Set<string>();
  for (const m of layout.mounts) {
    const name = m.mountPoint.startsWith("/sys/fs/cgroup/") ? m.mountPoint.slice("/sys/fs/cgroup/".length) : "";
    if (!name || name.includes("/") || seen.has(name)) continue;
    if (m.version === 1 && m.subsystems.length === 0) continue; // a named hierarchy (name=systemd)
    seen.add(name);
    const where = join(dir, name);
    calls.push({ op: "mkdir", path: cstr(where), shown: [where, unquoted("0755")] });
    calls.push(
      m.version === 2
        ? preparedMount("cgroup2", where, "cgroup2", ro)
        : preparedMount("cgroup", where, "cgroup", ro, m.subsystems.join(",")),
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
  calls.push(sealed);
  return calls;
}

/** Prepared calls per step name, for the contexts {@link prepareSetup} saw. */
const preparedCalls = new WeakMap<SetupContext, ReadonlyMap<string, readonly PreparedCall[]>>();

/**
 * Prepares, in the parent before the fork, the kernel calls of the standard steps (private
 * mounts, rootfs bind, /proc, /sys, /dev and its devices, devpts, shm, mqueue, masked and
 * read-only paths) when they can be known in advance: a new mount namespace (in a new user
 * namespace too: devices bound instead of made, sysfs or else /sys bound), and a rootfs whose
 * /proc, /sys and /dev are plain directories. Other steps, and every
 * step of other containers, run their general code as before. Optional: without it the child
 * does the same calls the general way.
 */
export function prepareSetup(ctx: SetupContext): void {
  try {
    // Probed once and cached (the last capability, the bounding set), so the child's capability
    // steps do not probe the kernel (~40 prctl calls). (Rootless, the parent has none to plan.)
    keepPlan(ctx.spec.capabilities);
  } catch { /* the child plans for itself */ }
  try {
    prepareCalls(ctx);
  } catch {
    preparedCalls.delete(ctx); // the child's general code meets (and reports) whatever went wrong
  }
}

function prepareCalls(ctx: SetupContext): void {
  const spec = ctx.spec;
  if (!has(ctx, "mount")) return;
  const root = spec.rootfsPath;
  for (const d of ["proc", "sys", "dev"]) {
    const st = lstatSync(join(root, d), { throwIfNoEntry: false });
    if (!st?.isDirectory() || secureJoin(root, `/${d}`) !== join(root, d)) return;
  }
  const calls = new Map<string, PreparedCall[]>();
  calls.set("private-mounts", [preparedMount(null, "/", null, MS.REC | MS.PRIVATE)]);
  calls.set("rootfs-bind", [preparedMount(root, root, null, MS.BIND | MS.REC)]);
  if (spec.standardMounts) {
    const dev = join(root, "dev");
    calls.set("mount-proc", [preparedMount("proc", join(root, "proc"), "proc", MS.NOSUID | MS.NODEV | MS.NOEXEC)]);
    const sysfs = preparedMount("sysfs", join(root, "sys"), "sysfs", MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
    calls.set(
      "mount-sys",
      ctx.userns
        ? [{
          op: "sysfs",
          sysfs,
          bind: preparedMount("/sys", join(root, "sys"), null, MS.BIND | MS.REC),
          path: join(root, "sys"),
          target: cstr(join(root, "sys")),
          tree: readonlyTree(join(root, "sys")),
        }]
        : [sysfs],
    );
    calls.set("mount-cgroup", cgroupMountCalls(ctx));
    calls.set("mount-dev", [
      preparedMount("tmpfs", dev, "tmpfs", MS.NOSUID | MS.STRICTATIME, "mode=755,size=65536k"),
      ...DEVICES.flatMap((d): PreparedCall[] => {
        const [major, minor] = DEVICE_NUMBERS[d];
        const path = join(dev, d);
        // mknod is not allowed in a user namespace: the host's device is bound over an empty file
        if (ctx.userns) {
          return [{ op: "touch", path: cstr(path), shown: [path] }, preparedMount(`/dev/${d}`, path, null, MS.BIND)];
        }
        return [{
          op: "mknod",
          path: cstr(path),
          mode: S_IFCHR | 0o666,
          dev: makedev(major, minor),
          shown: [path, `c ${major}:${minor}`],
        }];
      }),
      ...DEV_LINKS.map(([link, to]): PreparedCall => ({
        op: "symlink",
        to: cstr(to),
        path: cstr(join(dev, link)),
        shown: [to, join(dev, link)],
      })),
    ]);
    const inDev = (name: string, source: string, type: string, flags: number, data?: string): PreparedCall[] => [
      { op: "mkdir", path: cstr(join(dev, name)), shown: [join(dev, name), unquoted("0755")] },
      preparedMount(source, join(dev, name), type, flags, data),
    ];
    calls.set(
      "mount-devpts",
      inDev("pts", "devpts", "devpts", MS.NOSUID | MS.NOEXEC, "newinstance,ptmxmode=0666,mode=0620"),
    );
    calls.set("mount-shm", inDev("shm", "shm", "tmpfs", MS.NOSUID | MS.NODEV | MS.NOEXEC, "mode=1777,size=65536k"));
    calls.set("mount-mqueue", inDev("mqueue", "mqueue", "mqueue", MS.NOSUID | MS.NODEV | MS.NOEXEC));
  }
  calls.set(
    "masked-paths",
    spec.maskedPaths.map((p) => ({
      op: "mask",
      dir: preparedMount("tmpfs", p, "tmpfs", MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC),
      file: preparedMount("/dev/null", p, null, MS.BIND),
    })),
  );
  calls.set(
    "readonly-paths",
    spec.readonlyPaths.map((p) => ({
      op: "readonly",
      path: p,
      bind: preparedMount(p, p, null, MS.BIND | MS.REC),
      target: cstr(p),
    })),
  );
  if (!spec.joinNamespaces.some((j) => j.type === "mount")) {
    // A new mount namespace of our own (not one joined): pivotRootInto's check that this is not
    // PID 1's namespace holds by construction, and / is already private and the rootfs bound.
    calls.set("pivot-root", [
      { op: "chdir", path: cstr(root), shown: [root] },
      { op: "pivot", dot: cstr(".") },
      { op: "chdir", path: cstr("/"), shown: ["/"] },
    ]);
  }
  preparedCalls.set(ctx, calls);
  if (spec.argv[0]?.includes("/")) {
    // A program given by its path needs no PATH search inside the container.
    const env = Object.entries(spec.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    preparedExec.set(spec, {
      file: cstr(spec.argv[0]),
      path: spec.argv[0],
      argv: cstrArray(spec.argv),
      envp: cstrArray(env),
    });
  }
}

/** execve's arguments, prepared by the parent (see {@link prepareSetup}); the buffers stay referenced here. */
const preparedExec = new WeakMap<
  ResolvedSpec,
  { readonly file: Uint8Array; readonly path: string; readonly argv: CStringArray; readonly envp: CStringArray }
>();

/** statvfs `ST_*` bit → `MS_*` flag (as src/mount.ts keeps a bind's flags across a remount). */
const ST_TO_MS: ReadonlyArray<readonly [number, number]> = [
  [0x1, MS.RDONLY],
  [0x2, MS.NOSUID],
  [0x4, MS.NODEV],
  [0x8, MS.NOEXEC],
  [0x400, MS.NOATIME],
  [0x800, MS.NODIRATIME],
  [0x1000, MS.RELATIME],
  [0x2000, MS.NOSYMFOLLOW],
];

function runCall(call: PreparedCall): void {
  const c = libc();
  switch (call.op) {
    case "mount":
      if (c.mount(call.source, call.target, call.type, call.flags, call.data) === -1) {
        throw new SyscallError("mount", errno(), call.shown);
      }
      return;
    case "mknod":
      if (c.mknod(call.path, call.mode, call.dev) === -1) throw new SyscallError("mknod", errno(), call.shown);
      return;
    case "mkdir":
      if (c.mkdir(call.path, 0o755) === -1) throw new SyscallError("mkdir", errno(), call.shown);
      return;
    case "symlink":
      if (c.symlink(call.to, call.path) === -1) throw new SyscallError("symlink", errno(), call.shown);
      return;
    case "chdir":
      if (c.chdir(call.path) === -1) throw new SyscallError("chdir", errno(), call.shown);
      return;
    case "pivot": {
      const dot = addressOf(call.dot);
      if (c.syscall(BigInt(SYS.pivot_root), dot, dot, 0n, 0n, 0n) === -1n) {
        throw new SyscallError("pivot_root", errno(), [".", "."]);
      }
      if (c.umount2(call.dot, MNT_DETACH) === -1) {
        throw new SyscallError("umount2", errno(), [".", unquoted("MNT_DETACH")]);
      }
      return;
    }
    case "mask": {
      const d = call.dir;
      if (c.mount(d.source, d.target, d.type, d.flags, d.data) !== -1) return;
      const e = errno();
      if (e === ENOENT) return; // not on this kernel
      if (e !== ENOTDIR) throw new SyscallError("mount", e, d.shown);
      return runCall(call.file);
    }
    case "touch": {
      const fd = c.open(call.path, O_WRONLY_CREAT_CLOEXEC, 0o644);
      if (fd === -1) throw new SyscallError("open", errno(), call.shown);
      c.close(fd);
      return;
    }
    case "sysfs": {
      const m = call.sysfs;
      if (c.mount(m.source, m.target, m.type, m.flags, m.data) !== -1) return;
      const e = errno();
      if (e !== EPERM) throw new SyscallError("mount", e, m.shown);
      runCall(call.bind);
      remountReadonly(call.target, call.path);
      return runCall(call.tree);
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
      const b = call.bind;
      if (c.mount(b.source, b.target, b.type, b.flags, b.data) === -1) {
        const e = errno();
        if (e === ENOENT) return; // not on this kernel
        throw new SyscallError("mount", e, b.shown);
      }
      return remountReadonly(call.target, call.path);
    }
  }
}

/** A bind mount remounted read-only, keeping its other flags (as src/mount.ts does). */
function remountReadonly(target: Uint8Array, path: string): void {
  const c = libc();
  const buf = statvfsBuffer();
  if (c.statvfs(target, buf) === -1) throw new SyscallError("statvfs", errno(), [path]);
  const st = statvfsFlags(buf);
  let flags = MS.REMOUNT | MS.BIND | MS.RDONLY;
  for (const [bit, ms] of ST_TO_MS) if (st & bit) flags |= ms;
  if (!(flags & (MS.NOATIME | MS.RELATIME))) flags |= MS.STRICTATIME;
  if (c.mount(null, target, null, BigInt(flags), null) === -1) {
    throw new SyscallError("mount", errno(), [
      unquoted("NULL"),
      path,
      unquoted("NULL"),
      unquoted(`0x${flags.toString(16)}`),
    ], `make the bind mount of ${path} on ${path} read-only`);
  }
}

/**
 * The calls {@link prepareSetup} prepared for `step`, for the native child (`native.ts`), which
 * turns them into system calls of its program; undefined when the step has none.
 */
export function preparedStepCalls(ctx: SetupContext, step: string): readonly PreparedCall[] | undefined {
  return preparedCalls.get(ctx)?.get(step);
}

/** Runs the step's prepared calls; false when it has none (then the step runs its general code). */
function runPrepared(ctx: SetupContext, step: string): boolean {
  const calls = preparedCalls.get(ctx)?.get(step);
  if (!calls) return false;
  for (const call of calls) runCall(call);
  return true;
}

/** The capability plan the capabilities step worked out, for the capability-sets step. */
const keepPlans = new WeakMap<SetupContext, KeepPlan>();

/** True when the spec's command runs as another user (or with other groups) than root. */
function changesUser(c: SetupContext): boolean {
  return c.spec.user.uid !== 0 || c.spec.user.gid !== 0 || c.spec.user.groups.length > 0;
}

/** The steps that confine the provision hook's child (as the container's command is confined). */
const PROVISION_CONFINED_BY = ["capabilities", "capability-sets", "no-new-privs", "seccomp"];

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
      for (const s of SETUP_STEPS) if (PROVISION_CONFINED_BY.includes(s.name) && s.when(c)) s.run(c);
      if (typeof hook !== "function") {
        code = 127;
        check(
          Number(libc().syscall(BigInt(SYS.close_range), 3n, 0xffffffffn, 4n, /* CLOEXEC */ 0n, 0n)),
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

/** Reads `fd` to EOF as UTF-8 (a short message from a child). */
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

/** The steps, in order. */
export const SETUP_STEPS: readonly SetupStep[] = [
  {
    name: "non-dumpable",
    why:
      "before anything else: until execve gives the command a memory of its own, no process in the namespaces this one joins or shares may open its /proc/PID/mem, environ, fd/ or exe (a native child shares hako's own memory; runc's CVE-2016-9962 and CVE-2019-5736)",
    when: () => true,
    plan: () => ["prctl(PR_SET_DUMPABLE, 0)"],
    run: () => void check(libc().prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n), "prctl", [unquoted("PR_SET_DUMPABLE"), 0]),
  },
  {
    name: "time-namespace",
    why:
      "a new time namespace cannot be asked of clone(2) (its flag is an exit-signal bit there): unshared here, it is the one the command enters at execve",
    when: (c) => has(c, "time"),
    plan: () => ["unshare(CLONE_NEWTIME)"],
    run: () => void check(libc().unshare(CLONE_NEWTIME), "unshare", [unquoted("CLONE_NEWTIME")]),
  },
  {
    name: "join-namespaces",
    why: "joining existing namespaces comes first, so everything after happens inside them",
    when: (c) => c.spec.joinNamespaces.length > 0,
    plan: (c) => c.spec.joinNamespaces.map((j) => `setns(open(${j.path}), ${j.type})`),
    run: (c) => c.spec.joinNamespaces.forEach((j) => setns(j.path, j.type)),
  },
  {
    name: "enter-pid-namespace",
    why:
      "setns into a PID namespace applies only to children: the rest of the setup and the command run in a child cloned into it, the caller's own (CLONE_PARENT), as runc's nsexec forks after setns; this child reports that pid and exits",
    when: (c) => c.spec.joinNamespaces.some((j) => j.type === "pid"),
    plan: () => ["clone(CLONE_PARENT): the rest runs in the child, inside the joined PID namespace", "exit_group(0)"],
    run: (c) => {
      const pid = forkProcess(CLONE_PARENT);
      if (pid === 0) return;
      if (c.statusFd !== undefined) report(c.statusFd, { pid });
      libc()._exit(0);
    },
  },
  {
    name: "become-root",
    why:
      "in a new user namespace the child carries its unmapped host ids until it sets them; root inside owns the other namespaces",
    when: (c) => c.userns,
    plan: () => ["setresgid(0, 0, 0)", "setresuid(0, 0, 0)"],
    run: () => {
      setresgid(0, 0, 0);
      setresuid(0, 0, 0);
    },
  },
  {
    name: "cgroup-namespace",
    why:
      "a cgroup namespace rooted at the container's own cgroup (the parent put this child there before the go byte), so /proc/self/cgroup and the cgroup mounts show the container's subtree, not the host's paths",
    when: (c) => has(c, "cgroup"),
    plan: () => ["unshare(CLONE_NEWCGROUP)"],
    run: () => void check(libc().unshare(CLONE_NEWCGROUP), "unshare", [unquoted("CLONE_NEWCGROUP")]),
  },
  {
    name: "private-mounts",
    why: "nothing mounted from here on may propagate to the host",
    when: (c) => has(c, "mount"),
    plan: () => ['mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)'],
    run: (c) => runPrepared(c, "private-mounts") || Mount.makePrivate("/", { recursive: true }),
  },
  {
    name: "rootfs-bind",
    why: "pivot_root needs the new root to be a mount point; binding it also lets it be made read-only later",
    when: (c) => has(c, "mount"),
    plan: (c) => [`mount("${c.spec.rootfsPath}", "${c.spec.rootfsPath}", MS_BIND|MS_REC)`],
    run: (c) => runPrepared(c, "rootfs-bind") || Mount.bind(c.spec.rootfsPath, c.spec.rootfsPath, { recursive: true }),
  },
  {
    name: "mount-proc",
    why: "a /proc of the container's own PID namespace (mounted before pivot_root, under the new root)",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) => [`mount("proc", "${inRoot(c, "/proc")}", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC)`],
    run: (c) => runPrepared(c, "mount-proc") || mountIn(c, "proc", "/proc", "proc", ["nosuid", "nodev", "noexec"]),
  },
  {
    name: "mount-sys",
    why:
      "sysfs read-only; a user namespace without its own net namespace may not mount sysfs, so /sys is bound instead",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) => [`mount("sysfs", "${inRoot(c, "/sys")}", "sysfs", MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC)`],
    run: (c) => {
      if (runPrepared(c, "mount-sys")) return;
      try {
        mountIn(c, "sysfs", "/sys", "sysfs", ["ro", "nosuid", "nodev", "noexec"]);
      } catch (e) {
        if (!c.userns) throw e;
        Mount.bind("/sys", inRoot(c, "/sys"), { recursive: true, readonly: true });
        runCall(readonlyTree(inRoot(c, "/sys")));
      }
    },
  },
  {
    name: "mount-cgroup",
    why:
      "the container's cgroups at /sys/fs/cgroup, read-only (as runc and crun mount them): a process inside may read its limits but not change, move or release anything",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) =>
      cgroupMountCalls(c).map((call) =>
        call.op === "mount"
          ? `mount(${call.shown.map((x) => typeof x === "string" ? JSON.stringify(x) : String(x)).join(", ")})`
          : call.op === "mkdir"
          ? `mkdir(${JSON.stringify(call.shown[0])})`
          : call.op === "symlink"
          ? `symlink(${JSON.stringify(call.shown[0])}, ${JSON.stringify(call.shown[1])})`
          : call.op
      ),
    run: (c) => runPrepared(c, "mount-cgroup") || cgroupMountCalls(c).forEach(runCall),
  },
  {
    name: "mount-dev",
    why:
      "a private /dev on tmpfs with only the default devices (null zero full random urandom tty, ptmx), not the host's",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (c) => [
      `mount("tmpfs", "${inRoot(c, "/dev")}", "tmpfs", MS_NOSUID|MS_STRICTATIME, "mode=755,size=65536k")`,
      ...DEVICES.map((d) =>
        c.userns
          ? `mount("/dev/${d}", "/dev/${d}", MS_BIND)`
          : `mknod("/dev/${d}", S_IFCHR|0666, ${DEVICE_NUMBERS[d].join(":")})`
      ),
      "symlink pts/ptmx → /dev/ptmx, /proc/self/fd → /dev/fd, stdin, stdout, stderr",
    ],
    run: (c) => {
      if (runPrepared(c, "mount-dev")) return;
      mountIn(c, "tmpfs", "/dev", "tmpfs", ["nosuid", "strictatime"], "mode=755,size=65536k");
      const dev = inRoot(c, "/dev");
      for (const d of DEVICES) {
        const path = join(dev, d);
        if (c.userns) {
          ensureMountPoint(path, true);
          Mount.bind(`/dev/${d}`, path);
        } else {
          const [major, minor] = DEVICE_NUMBERS[d];
          mknod(path, "c", 0o666, major, minor);
        }
      }
      for (const [link, to] of DEV_LINKS) symlinkSync(to, join(dev, link));
    },
  },
  {
    name: "mount-devpts",
    why: "a new devpts instance, so the container's terminals are its own",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (
      c,
    ) => [
      `mount("devpts", "${
        inRoot(c, "/dev/pts")
      }", "devpts", MS_NOSUID|MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")`,
    ],
    run: (c) =>
      runPrepared(c, "mount-devpts") ||
      mountInDev(c, "pts", "devpts", "devpts", ["nosuid", "noexec"], "newinstance,ptmxmode=0666,mode=0620"),
  },
  {
    name: "mount-shm",
    why: "POSIX shared memory of its own",
    when: (c) => has(c, "mount") && c.spec.standardMounts,
    plan: (
      c,
    ) => [`mount("shm", "${inRoot(c, "/dev/shm")}", "tmpfs", MS_NOSUID|MS_NODEV|MS_NOEXEC, "mode=1777,size=65536k")`],
    run: (c) =>
      runPrepared(c, "mount-shm") ||
      mountInDev(c, "shm", "shm", "tmpfs", ["nosuid", "nodev", "noexec"], "mode=1777,size=65536k"),
  },
  {
    name: "mount-mqueue",
    why: "POSIX message queues belong to the IPC namespace: only with a new one",
    when: (c) => has(c, "mount") && c.spec.standardMounts && has(c, "ipc"),
    plan: (c) => [`mount("mqueue", "${inRoot(c, "/dev/mqueue")}", "mqueue", MS_NOSUID|MS_NODEV|MS_NOEXEC)`],
    run: (c) =>
      runPrepared(c, "mount-mqueue") || mountInDev(c, "mqueue", "mqueue", "mqueue", ["nosuid", "nodev", "noexec"]),
  },
  {
    name: "mounts",
    why: "the spec's own mounts, after the standard ones so they can cover them",
    when: (c) => c.spec.mounts.length > 0,
    plan: (c) =>
      c.spec.mounts.map((m) =>
        `mount(${m.type === "bind" ? `"${m.source}"` : `"${m.source ?? m.type}"`}, "${inRoot(c, m.target)}", ${
          m.type === "bind" ? "MS_BIND" : `"${m.type}"`
        }${m.options?.length ? `, "${m.options.join(",")}"` : ""}${m.readonly ? ", ro" : ""})`
      ),
    run: (c) => {
      for (const m of c.spec.mounts) {
        const target = inRoot(c, m.target);
        if (m.type === "bind") {
          ensureMountPoint(target, !statSync(m.source!).isDirectory());
          const opts = m.options ?? [];
          Mount.bind(m.source!, target, {
            recursive: !opts.includes("norbind"),
            readonly: m.readonly || opts.includes("ro"),
          });
        } else {
          ensureMountPoint(target);
          Mount.mount(m.source ?? m.type, target, {
            type: m.type,
            options: [...(m.options ?? []), ...(m.readonly ? ["ro"] : [])].join(","),
          });
        }
      }
    },
  },
  {
    name: "network-etc",
    why:
      "name resolution inside: the host's resolv.conf and hosts bound read-only (generated files for a new network namespace are written by the parent before the fork, see writeNetworkEtc: root of a new user namespace may not write into a host-owned rootfs)",
    when: (c) => c.spec.networkEtc === "host",
    plan: () => ["bind /etc/resolv.conf and /etc/hosts read-only into the rootfs"],
    run: (c) => {
      for (const f of ["/etc/resolv.conf", "/etc/hosts"]) {
        if (!existsSync(f)) continue;
        const target = inRoot(c, f);
        ensureMountPoint(target, true);
        Mount.bind(f, target, { readonly: true });
      }
    },
  },
  {
    name: "hostname",
    why: "in the new UTS namespace",
    when: (c) => c.spec.hostname !== undefined,
    plan: (c) => [`sethostname("${c.spec.hostname}")`],
    run: (c) => sethostname(c.spec.hostname!),
  },
  {
    name: "loopback",
    why: "a new network namespace starts with lo down",
    when: (c) => c.spec.loopback && has(c, "net"),
    plan: () => ['ioctl(socket, SIOCSIFFLAGS, "lo" IFF_UP)'],
    run: () => setLinkUp("lo"),
  },
  {
    name: "network",
    why:
      "the container end of the veth pair (moved into this namespace by the parent before the go byte) gets its address and is set up; netlink still works before pivot_root",
    when: (c) => c.spec.veth !== undefined && has(c, "net"),
    plan: (c) => {
      const v = c.spec.veth!;
      return [
        ...(v.containerAddress
          ? [`netlink RTM_NEWADDR ${v.containerAddress} dev ${v.container} (IFA_LOCAL, IFA_ADDRESS)`]
          : []),
        `netlink RTM_NEWLINK ${v.container} IFF_UP`,
      ];
    },
    run: (c) => {
      const v = c.spec.veth!;
      if (v.containerAddress) addAddress(v.container, v.containerAddress);
      netlinkLinkUp(v.container);
    },
  },
  {
    name: "pivot-root",
    why: "switch to the rootfs; the old root is detached, so nothing of the host stays reachable",
    when: (c) => has(c, "mount"),
    plan: (c) => [`chdir("${c.spec.rootfsPath}")`, 'pivot_root(".", ".")', 'umount2(".", MNT_DETACH)', 'chdir("/")'],
    run: (c) => runPrepared(c, "pivot-root") || Mount.pivotRootInto(c.spec.rootfsPath),
  },
  {
    name: "masked-paths",
    why:
      "hide kernel interfaces a container must not read: /dev/null over files, an empty read-only tmpfs over directories",
    when: (c) => has(c, "mount") && c.spec.maskedPaths.length > 0,
    plan: (c) => c.spec.maskedPaths.map((p) => `mask ${p}`),
    run: (c) => {
      if (runPrepared(c, "masked-paths")) return;
      for (const p of c.spec.maskedPaths) {
        // not on this kernel: skipped (no exception: each costs copy-on-write faults in the child)
        const st = lstatSync(p, { throwIfNoEntry: false });
        if (!st) continue;
        if (st.isDirectory()) Mount.mount("tmpfs", p, { type: "tmpfs", flags: ["ro", "nosuid", "nodev", "noexec"] });
        else Mount.bind("/dev/null", p);
      }
    },
  },
  {
    name: "readonly-paths",
    why: "kernel knobs stay readable but not writable",
    when: (c) => has(c, "mount") && c.spec.readonlyPaths.length > 0,
    plan: (c) => c.spec.readonlyPaths.map((p) => `mount("${p}", "${p}", MS_BIND|MS_REC) + remount MS_RDONLY`),
    run: (c) => {
      if (runPrepared(c, "readonly-paths")) return;
      for (const p of c.spec.readonlyPaths) {
        if (!existsSync(p)) continue;
        Mount.bind(p, p, { recursive: true, readonly: true });
      }
    },
  },
  {
    name: "readonly-rootfs",
    why: "after every mount under / is made",
    when: (c) => c.spec.readonlyRootfs && has(c, "mount"),
    plan: () => ['mount(NULL, "/", MS_REMOUNT|MS_BIND|MS_RDONLY)'],
    run: () => Mount.remount("/", { bind: true, readonly: true }),
  },
  {
    name: "rlimits",
    why: "before privileges are dropped (raising a hard limit needs CAP_SYS_RESOURCE)",
    when: (c) => Object.keys(c.spec.rlimits).length > 0,
    plan: (c) =>
      Object.entries(c.spec.rlimits).map(([k, v]) =>
        `prlimit(0, RLIMIT_${k.toUpperCase().replace(/^RLIMIT_/, "")}, ${JSON.stringify(v)})`
      ),
    run: (c) => {
      for (const [k, v] of Object.entries(c.spec.rlimits)) {
        const [soft, hard] = Array.isArray(v) ? v : [v, v];
        setrlimit(k, soft, hard);
      }
    },
  },
  {
    name: "workdir",
    why: "inside the new root",
    when: () => true,
    plan: (c) => [`chdir("${c.spec.workdir}")`],
    run: (c) => chdir(c.spec.workdir),
  },
  {
    name: "new-session",
    why:
      "a session of its own, so no terminal of the caller's is its controlling tty (TIOCSTI into the caller's shell, CVE-2017-5226); a pty given with -t becomes its controlling tty in the console step",
    when: () => true,
    plan: () => ["setsid()"],
    run: () => void check(libc().setsid(), "setsid", []),
  },
  {
    name: "provision",
    why:
      "the spec's provision hook, inside the finished container (after pivot_root and the workdir), before the command; it runs in a child of its own with the container's capabilities, no_new_privs and seccomp filter and none of hako's fds (root inside, as a build step): code from the image never gets more than the container's command",
    when: (c) => c.spec.hooks.provision !== undefined,
    plan: (c) => [
      `fork: ${
        describeHook(c.spec.hooks.provision!, "{ spec }")
      } (synchronous), as root inside with the container's capabilities (${c.spec.capabilities.join(", ") || "none"})${
        c.spec.noNewPrivs ? ", no_new_privs" : ""
      }${c.spec.seccomp ? ", the seccomp filter" : ""}, fds above 2 closed`,
    ],
    run: (c) => runProvision(c),
  },
  {
    name: "console",
    why:
      "with -t: a pty of the container's own devpts (after pivot_root), the controlling terminal of the new session and the command's stdio, its master handed to hako over the console socket (SCM_RIGHTS, as runc's); after the provision hook (which gets no terminal), before the capabilities go (the slave is chowned to the command's user)",
    when: (c) => c.console !== undefined,
    plan: (c) => consolePlan(c.console!, c.spec.user.uid),
    run: (c) => runConsole(c.console!, c.spec.user.uid),
  },
  {
    name: "capabilities",
    why:
      "the bounding set trimmed while CAP_SETPCAP is still held; before a change of user, PR_SET_KEEPCAPS keeps the permitted set across it",
    when: () => true,
    plan: (c) => [
      `bounding set: ${c.spec.capabilities.join(", ") || "(none)"}`,
      ...(changesUser(c) ? ["prctl(PR_SET_KEEPCAPS, 1)"] : []),
    ],
    run: (c) => {
      const plan = keepPlan(c.spec.capabilities, {}, c.userns);
      keepPlans.set(c, plan);
      keepBounding(plan, { keepCaps: changesUser(c) });
    },
  },
  {
    name: "user",
    why:
      "the spec's user and groups (none but the spec's: the caller's supplementary groups never reach the container, as with runc), while CAP_SETUID and CAP_SETGID are still effective; rootless with setgroups denied, the groups cannot change and the kernel shows them unmapped",
    when: () => true,
    plan: (
      c,
    ) => [
      `setgroups([${c.spec.user.groups.join(", ")}])${c.spec.rootless ? " (EPERM: setgroups denied, skipped)" : ""}`,
      `setresgid(${c.spec.user.gid} ×3)`,
      `setresuid(${c.spec.user.uid} ×3)`,
    ],
    run: (c) => {
      try {
        setgroups(c.spec.user.groups);
      } catch (e) {
        if (!(c.spec.rootless && e instanceof SyscallError && e.errno === EPERM)) throw e;
      }
      setresgid(c.spec.user.gid, c.spec.user.gid, c.spec.user.gid);
      setresuid(c.spec.user.uid, c.spec.user.uid, c.spec.user.uid);
    },
  },
  {
    name: "capability-sets",
    why:
      "effective, permitted and inheritable set to the kept list, ambient cleared: after the change of user, which clears the effective set",
    when: () => true,
    plan: (c) => [`capset: ${c.spec.capabilities.join(", ") || "(none)"}`, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)"],
    // The plan of the capabilities step: checked while still privileged (after the change of user
    // the effective set is empty, and the checks would refuse what is already done).
    run: (c) => keepSets(keepPlans.get(c) ?? keepPlan(c.spec.capabilities, {}, c.userns)),
  },
  {
    name: "no-new-privs",
    why: "setuid binaries and file capabilities can no longer raise privileges",
    when: (c) => c.spec.noNewPrivs,
    plan: () => ["prctl(PR_SET_NO_NEW_PRIVS, 1)"],
    run: () => Capability.noNewPrivs(),
  },
  {
    name: "seccomp",
    why:
      "last before exec: the filter also judges hako's own setup calls (mount, pivot_root, setns…), so every one of them must be done; after no_new_privs, which lets an unprivileged process load it",
    when: (c) => c.spec.seccomp !== false,
    plan: (c) => {
      const profile = c.spec.seccomp as Exclude<ResolvedSpec["seccomp"], false>;
      const instructions = c.spec.seccompProgram!.byteLength / 8;
      return [
        `seccomp(SECCOMP_SET_MODE_FILTER, 0, {${instructions} BPF instructions: default ${profile.defaultAction}, ${profile.syscalls.length} rules})`,
      ];
    },
    // Compiled by the parent in resolveSpec: the child only loads it.
    run: (c) => loadSeccomp(c.spec.seccompProgram!),
  },
];

/**
 * For `networkEtc: "generate"`: writes the rootfs's /etc/hosts and /etc/hostname. Runs in the
 * parent (host root) before the fork, since root of a new user namespace may not write into a
 * rootfs owned by unmapped host ids.
 */
export function writeNetworkEtc(spec: ResolvedSpec): void {
  if (spec.networkEtc === false) return;
  const at = (p: string) => secureJoin(spec.rootfsPath, p);
  ensureMountPoint(at("/etc"));
  if (spec.networkEtc === "host") {
    // Only the mount points: the child binds the host's files over them.
    for (const f of ["/etc/resolv.conf", "/etc/hosts"]) if (existsSync(f)) ensureMountPoint(at(f), true);
    return;
  }
  const name = spec.hostname ?? spec.name;
  writeIfChanged(at("/etc/hosts"), `127.0.0.1\tlocalhost ${name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
  writeIfChanged(at("/etc/hostname"), `${name}\n`);
}

/**
 * Writes `text` to `path` unless it already holds exactly that: a rootfs shared by many containers
 * keeps its files, and each start saves a truncate-and-write (measured ≈ 0.5 ms a file here).
 */
function writeIfChanged(path: string, text: string): void {
  try {
    if (readFileSync(path, "utf8") === text) return;
  } catch { /* missing or unreadable: write it */ }
  writeFileSync(path, text);
}

/**
 * The clone flags of a container's namespaces. Two kinds are not among them: CLONE_NEWTIME (in
 * clone(2)'s flags its bit is part of the exit signal: the time-namespace step unshares it) and
 * CLONE_NEWCGROUP (a cgroup namespace is rooted where its maker is when it is made: the
 * cgroup-namespace step unshares it once the parent has put the child in its cgroup).
 */
export function cloneFlags(spec: ResolvedSpec): number {
  return namespaceFlags(spec.newNamespaces) & ~(CLONE_NEWTIME | CLONE_NEWCGROUP);
}

/** The steps that apply to `ctx`, in order. */
export function stepsFor(ctx: SetupContext): SetupStep[] {
  return SETUP_STEPS.filter((s) => s.when(ctx));
}

/** Execs the container's command (the last step); with what {@link prepareSetup} made, without a PATH search. */
export function execCommand(spec: ResolvedSpec): never {
  const p = preparedExec.get(spec);
  if (!p) return exec(spec.argv, [], { env: spec.env });
  resetSignalsForExec();
  libc().execve(p.file, new Uint8Array(p.argv.array.buffer), new Uint8Array(p.envp.array.buffer));
  throw new SyscallError("execve", errno(), [p.path]);
}
