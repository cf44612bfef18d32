/**
 * The container's child as a program of system calls (`ffi/spawn.ts`): the same steps as
 * `setup.ts`, in the same order and with the same kernel calls, worked out in the parent before
 * the clone, so the child runs no JavaScript at all — no copy of the runtime's address space, no
 * copy-on-write faults, nothing for execve to tear down.
 *
 * {@link compileChild} returns undefined for a spec that needs code in the child (a step whose
 * op list has a `js` op: a provision hook, a veth; a spec mount with propagation or move
 * options), or where no native runner exists (neither x86-64 nor aarch64, or
 * `HAKO_NATIVE_SPAWN=0`): those containers are forked, and `setup.ts` interprets the same op
 * lists in the forked child.
 *
 * A program is compiled once per kind of container (see {@link ProgramCache}); the pipes' fds go
 * into slots, so the next container of that kind only fills them in.
 *
 * @module
 */
import {
  type BuiltProgram,
  holdNonDumpable,
  libcName,
  nativeSpawnSupported,
  pidRecord,
  type ProgramArg,
  type ProgramData,
  type ProgramLabel,
  type ProgramOp,
  type ProgramSlot,
  readyRecord,
  REPORT_BYTES,
  syncRecord,
  SyscallProgram,
} from "../../ffi/spawn.ts";
import { capHeader, encodeCapData, encodeRlimit } from "../../ffi/structs.ts";
import { CLONE_NEWTIME, NAMESPACE_FLAGS } from "../namespace.ts";
import { Capability, type KeepPlan } from "../capability.ts";
import { capabilityPlan } from "./_capsets.ts";
import { rlimitNumber, rlimitPair } from "../rlimit.ts";
import { SetupError, SyscallError } from "../errors.ts";
import { type ChildError, describe, setupError } from "./_pipe.ts";
import { compileConsole, type ConsoleRequest } from "./_console.ts";
import type { ContainerFile } from "./_files.ts";
import type { NoPivotDetach } from "./_no_pivot.ts";
import {
  bindFlagNames,
  cgroupViewKey,
  DEFAULT_PATH,
  execFifoPath,
  firstClosedFd,
  mountsShape,
  MS,
  PATHS_HINT,
  type PreparedCall,
  prepareSetup,
  type SetupContext,
  type SetupStep,
  stepCalls,
  type StepName,
  stepsFor,
  TARGET_HINT,
  TIMENS_OFFSETS,
} from "./setup.ts";
import {
  AF_INET,
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_RECURSIVE,
  CLONE_PARENT,
  CLONE_VM,
  CLOSE_RANGE_CLOEXEC,
  EACCES,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSYS,
  ENOTDIR,
  EPERM,
  EROFS,
  IFF_LOOPBACK,
  IFF_RUNNING,
  IFF_UP,
  MNT_DETACH,
  MOVE_MOUNT_F_EMPTY_PATH,
  MOVE_MOUNT_T_EMPTY_PATH,
  MS_MOVE,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  PR_CAP_AMBIENT,
  PR_CAP_AMBIENT_CLEAR_ALL,
  PR_CAP_AMBIENT_RAISE,
  PR_CAPBSET_DROP,
  PR_SET_DUMPABLE,
  PR_SET_KEEPCAPS,
  SECCOMP_SET_MODE_FILTER,
  SIGCHLD,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
} from "../../ffi/constants.ts";

/**
 * What a failed op of a native program is named after: a setup step, or a part of the program
 * around them (the wait for the go byte, the ready report, exec's own frame).
 */
export type ProgramStep = StepName | "child" | "ready" | "exec" | "exec-fifo" | "stdio" | "join-cgroups" | "fork";

/** What the parent needs to know about one op: the step it belongs to and how to name its failure. */
interface OpInfo {
  readonly step: ProgramStep;
  readonly syscall: string;
  readonly shown: readonly unknown[];
  readonly context?: string;
}

/** A compiled child: the program to clone, and how to read its reports. */
export interface NativeChild {
  /** The program; keep it referenced until the child has exec'd or been reaped. */
  readonly program: BuiltProgram;
  /** The report a failed op stands for. */
  failure(op: number, errno: number): ChildError;
  /** The size of one report record. */
  readonly reportBytes: number;
  /**
   * Gives the program's memory back for the next container of the same kind, and this process
   * its dumpable flag (see `holdNonDumpable`): call it once, when the child has exec'd (EOF on the
   * status pipe) or been reaped — never while it may still run.
   */
  release(): void;
}

/** The file descriptors the child is given (see container.ts). */
export interface NativeFds {
  /** The parent's O_PATH fd of the rootfs (see the enter-rootfs step), or -1 without a mount namespace. */
  readonly root: number;
  readonly go: number;
  readonly start: number;
  readonly status: number;
  readonly stdio: readonly [number, number, number];
  readonly closeInChild: readonly number[];
  /** With `-t`: the child's end of the console socket. */
  readonly console?: number;
  /** OCI hooks: the child's end of the sync pipe (see setup.ts's hooks-sync step). */
  readonly sync?: number;
  /**
   * The `tasks` files of the container's cgroup v1 directories, opened by the parent: the child
   * writes `0` into each as its first calls (moving itself in without the kernel's global lock:
   * _cgroup.ts's `selfJoinDirs`), then closes it. `shown`: the file as a failure names it, without
   * the container's name (the program is shared by a fleet of one kind).
   */
  readonly cgroupTasks?: ReadonlyArray<{ readonly fd: number; readonly shown: string }>;
}

/** A compiled program for one kind of container, and memory of finished runs to reuse. */
interface Template {
  readonly prog: SyscallProgram;
  readonly info: readonly OpInfo[];
  readonly slots: {
    readonly root: ProgramSlot;
    readonly go: ProgramSlot;
    readonly start: ProgramSlot;
    readonly status: ProgramSlot;
    readonly close: readonly ProgramSlot[];
    readonly stdio: ReadonlyArray<ProgramSlot | undefined>;
    readonly console?: ProgramSlot;
    readonly sync?: ProgramSlot;
    /** The cgroup v1 `tasks` files the child writes itself into ({@link NativeFds.cgroupTasks}). */
    readonly tasks: readonly ProgramSlot[];
    /** The detached mounts the parent makes (`inherit`): a spec mount's index → its fd's slot. */
    readonly inherited: ReadonlyMap<number, ProgramSlot>;
  };
  readonly free: BuiltProgram[];
  /** Whether what was resolved on the host when compiling (the spec's mount targets) still holds. */
  readonly valid: () => boolean;
}

/**
 * The fields of a resolved spec that decide a container's program (what its steps and its exec
 * read). The others are listed in {@link NOT_DECIDING} with the reason: a field added to
 * `ResolvedSpec` fails to type-check until it is put in one or the other.
 */
export const DECIDING = [
  "argv",
  "env",
  "workdir",
  "user",
  "rootfsPath",
  "newNamespaces",
  "joinNamespaces",
  "uidMap",
  "gidMap",
  "hostname",
  "domainname",
  "sysctl",
  "timeOffsets",
  "readonlyRootfs",
  "rootfsPropagation",
  "standardMounts",
  "writableSysfs",
  "writableCgroupfs",
  "shm",
  "devNoexec",
  "mounts",
  "devices",
  "networkEtc",
  "maskedPaths",
  "readonlyPaths",
  "capabilities",
  "capabilitySets",
  "ambientCapabilities",
  "rlimits",
  "noNewPrivs",
  "seccomp",
  "seccompProgram",
  "loopback",
  "rootless",
  "init",
] as const satisfies ReadonlyArray<keyof SetupContext["spec"]>;
type DecidingField = (typeof DECIDING)[number];

/** The fields of a resolved spec that do not decide the program, and why. */
export const NOT_DECIDING: Readonly<Record<Exclude<keyof SetupContext["spec"], DecidingField>, string>> = {
  name: "the parent's: the state directory, the cgroup's name, the plan's title",
  rootfs: "how the rootfs is made (rootfsPath, which the program enters, is in the key)",
  cgroup: "the parent makes and joins the cgroup; what its limits show at /sys/fs/cgroup is ProgramKey.cgroups",
  cgroupName: "the parent makes and joins the cgroup; the directories bound at /sys/fs/cgroup are ProgramKey.cgroups",
  stdio: "the stdio fds given decide it (ProgramKey.stdio)",
  hooks: "the host's hooks run in the parent; the provision hook is a step (ProgramKey.steps)",
  veth: "the parent makes it; the network step it adds is in ProgramKey.steps",
  readiness: "the host's: probed by the library or the supervisor once the container runs",
  memoryPressure: "the host's: watched by the library or the supervisor once the container runs",
  execPath: "exec's alone (an OCI hook's path: execIn's `path`), whose programs are not cached",
};

/**
 * What decides a container's native program: the key of {@link ProgramCache}. Two containers with
 * equal keys run the same program, only its fds (slots) differ.
 */
export interface ProgramKey {
  /** The spec's fields the steps and exec read (the seccomp program by identity: `#n`). */
  readonly spec: {
    readonly [K in DecidingField]: K extends "seccompProgram" ? string | null : SetupContext["spec"][K];
  };
  /** The steps that apply (a provision hook, a veth, a console add theirs). */
  readonly steps: readonly StepName[];
  /** True in a new user namespace (devices bound, not made). */
  readonly userns: boolean;
  /** The capability plan: the bounding set's drops and the sets, as the caller's kernel has them. */
  readonly capabilities: {
    readonly mask: string;
    readonly drops: readonly number[];
    readonly sets: readonly string[] | null;
  };
  /** Per stdio fd: not given (`-`), given as itself (`=`), or dup'ed onto it. */
  readonly stdio: readonly string[];
  /** How many fds the child closes first. */
  readonly closes: number;
  /** The container's files bound in (their sources, targets, read-only or not). */
  readonly files: readonly ContainerFile[];
  /** The console's window size (a constant of the program), or null. */
  readonly consoleSize: ConsoleRequest["size"] | null;
  /** The exec fifo's fd number (in the program's path), or null. */
  readonly execFifo: number | null;
  /** Whether the program stops at the hooks-sync step (OCI prestart/createRuntime/createContainer hooks). */
  readonly hooksSync: boolean;
  /** Whether it waits for a second byte of the exec fifo (OCI startContainer hooks). */
  readonly startSync: boolean;
  /** How many of the caller's fds from 3 on pass to the command (OCI `--preserve-fds`). */
  readonly preserveFds: number;
  /** OCI `--no-pivot`'s host mounts to detach (paths, covered or not), or null: pivot_root. */
  readonly noPivot: readonly NoPivotDetach[] | null;
  /** Whether /sys/fs/cgroup shows every hierarchy (OCI's `otherCgroups`). */
  readonly otherCgroups: boolean;
  /**
   * The hierarchies /sys/fs/cgroup shows the container's own cgroup in, and the host directories
   * bound there without a cgroup namespace (setup.ts's `cgroupViewKey`).
   */
  readonly cgroups: { readonly shown: readonly string[]; readonly bound: readonly string[] };
  /** The cgroup v1 `tasks` files the child writes itself into, as shown ({@link NativeFds.cgroupTasks}). */
  readonly selfJoin: readonly string[];
}

/**
 * The compiled programs of one process, by {@link ProgramKey}: a process that starts many
 * containers of one kind compiles the program once, and reuses the memory of children that have
 * exec'd. Kept from the second container of a kind on: a fleet of containers that all differ
 * (names, ports, rootfs) would otherwise fill it with programs never run again, garbage that grows
 * a long-lived supervisor's heap.
 */
export class ProgramCache {
  readonly #templates = new Map<string, Template>();
  /** Kinds seen once, so that the second of a kind is kept. */
  readonly #seen = new Set<string>();
  /** Kinds whose steps turned out to need the forked child. */
  readonly #notNative = new Set<string>();
  /**
   * Programs a child may still run: referenced here until released, so that a Container dropped
   * without delete() leaves its child's memory leaked rather than reused under it.
   */
  readonly #running = new Set<BuiltProgram>();
  readonly #seccompIds = new WeakMap<Uint8Array, number>();
  #nextSeccompId = 1;
  readonly #maxTemplates: number;
  readonly #maxSeen: number;

  constructor(options: { readonly maxTemplates?: number; readonly maxSeen?: number } = {}) {
    this.#maxTemplates = options.maxTemplates ?? 8;
    this.#maxSeen = options.maxSeen ?? 32;
  }

  /** The key of `ctx`'s program, with the capability plan and the fds' shape it is compiled for. */
  key(
    ctx: SetupContext,
    plan: KeepPlan,
    stdio: readonly string[],
    closes: number,
    selfJoin: readonly string[] = [],
  ): ProgramKey {
    const spec = ctx.spec;
    const fields = Object.fromEntries(DECIDING.map((k) => {
      if (k !== "seccompProgram") return [k, spec[k] ?? null];
      const program = spec.seccompProgram;
      if (!program) return [k, null];
      let id = this.#seccompIds.get(program);
      if (id === undefined) this.#seccompIds.set(program, id = this.#nextSeccompId++);
      return [k, `#${id}`];
    })) as ProgramKey["spec"];
    return {
      spec: fields,
      steps: stepsFor(ctx).map((s) => s.name),
      userns: ctx.userns,
      capabilities: {
        mask: String(plan.mask),
        drops: plan.drops,
        sets: plan.sets ? Object.values(plan.sets).map(String) : null,
      },
      stdio,
      closes,
      files: ctx.files ?? [],
      consoleSize: ctx.console?.size ?? null,
      execFifo: ctx.execFifo ?? null,
      hooksSync: ctx.hooksSync !== undefined,
      startSync: ctx.startSync === true,
      preserveFds: ctx.preserveFds ?? 0,
      noPivot: ctx.noPivot ?? null,
      otherCgroups: ctx.otherCgroups === true,
      cgroups: cgroupViewKey(ctx),
      selfJoin,
    };
  }

  /** A kept program of this kind whose host-side checks still hold, or undefined. */
  get(key: ProgramKey): Template | undefined {
    const k = keyText(key);
    const t = this.#templates.get(k);
    if (t && !t.valid()) {
      this.#templates.delete(k); // a mount target or source changed since: compile again
      return undefined;
    }
    return t;
  }

  /** True when this kind turned out to need the forked child. */
  notNative(key: ProgramKey): boolean {
    return this.#notNative.has(keyText(key));
  }

  /** Remembers that this kind needs the forked child (a mount under /dev, say). */
  markNotNative(key: ProgramKey): void {
    const k = keyText(key);
    if (this.#notNative.size >= this.#maxSeen) this.#notNative.delete(this.#notNative.values().next().value!);
    this.#notNative.add(k);
  }

  /** A freshly compiled program of this kind: kept if it is the second of its kind. */
  offer(key: ProgramKey, template: Template): void {
    const k = keyText(key);
    if (this.#seen.delete(k)) {
      if (this.#templates.size >= this.#maxTemplates) this.#templates.delete(this.#templates.keys().next().value!);
      this.#templates.set(k, template);
    } else {
      if (this.#seen.size >= this.#maxSeen) this.#seen.delete(this.#seen.values().next().value!);
      this.#seen.add(k);
    }
  }

  /** Marks a built program as run by a child (until {@link release}). */
  running(built: BuiltProgram): void {
    this.#running.add(built);
  }

  /** A child is done with `built`: its memory is kept for the next of its kind. */
  release(template: Template, built: BuiltProgram): void {
    this.#running.delete(built);
    if (template.free.length < MAX_FREE) template.free.push(built);
  }
}

/** A key as the maps hold it (every field of it, in its interface's order). */
function keyText(key: ProgramKey): string {
  return JSON.stringify(key);
}

const MAX_FREE = 4;

/** This process's programs. */
const programs = new ProgramCache();

const O_WRONLY_CREAT_CLOEXEC = O_WRONLY | O_CREAT | O_CLOEXEC;
const O_PATH_DIRECTORY_CLOEXEC = O_PATH | O_DIRECTORY | O_CLOEXEC; // (the running architecture's: its runner runs the program)
const SOCK_DGRAM_CLOEXEC = SOCK_DGRAM | SOCK_CLOEXEC;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP_LOOPBACK_RUNNING = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
const O_RDONLY_CLOEXEC = O_RDONLY | O_CLOEXEC;
const O_WRONLY_CLOEXEC = O_WRONLY | O_CLOEXEC;
/** access(2)'s `X_OK`. */
const X_OK = 1;

/** A value shown unquoted in a SyscallError message. */
const unquoted = (text: string) => Object.freeze({ toString: () => text });

/** How many containers (and execIn calls) this process gave a native child (tests check which path ran). */
export const nativeChildren: { count: number } = { count: 0 };

/**
 * The native child of `ctx`, or undefined when it needs JavaScript in the child (then call
 * `prepareSetup(ctx)` and fork). Checks made now instead of in the child (a capability that is not
 * permitted, a bad rlimit) throw here, before the clone.
 * @throws {SetupError} Naming the step that cannot succeed, as the child would have reported it.
 */
export function compileChild(ctx: SetupContext, fds: NativeFds): NativeChild | undefined {
  const spec = ctx.spec;
  // (Rootless containers too: their capabilities are planned for root of the new user namespace,
  // whatever the parent holds.)
  if (!nativeSpawnSupported()) return undefined;
  const steps = stepsFor(ctx);
  let plan: KeepPlan;
  try {
    plan = capabilityPlan(spec, ctx.userns);
  } catch (e) {
    throw setupError(describe("capabilities", e));
  }
  const stdioShape = fds.stdio.map((fd, target) => (fd < 0 ? "-" : fd === target ? "=" : "dup"));
  const selfJoin = (fds.cgroupTasks ?? []).map((t) => t.shown);
  const key = programs.key(ctx, plan, stdioShape, fds.closeInChild.length, selfJoin);
  let t = programs.get(key);
  if (!t) {
    if (programs.notNative(key)) return undefined;
    prepareSetup(ctx);
    const compiled = compile(ctx, steps, plan, stdioShape, fds.closeInChild.length, selfJoin);
    if (!compiled) {
      programs.markNotNative(key); // the next of its kind forks without trying
      return undefined;
    }
    t = compiled;
    programs.offer(key, compiled);
  }
  const template = t;
  const built = template.free.pop() ?? template.prog.build();
  built.reportTo(fds.status);
  built.set(template.slots.root, fds.root);
  built.set(template.slots.go, fds.go);
  built.set(template.slots.start, fds.start);
  built.set(template.slots.status, fds.status);
  template.slots.close.forEach((slot, i) => built.set(slot, fds.closeInChild[i]!));
  template.slots.stdio.forEach((slot, i) => slot && built.set(slot, fds.stdio[i]!));
  if (template.slots.console) built.set(template.slots.console, fds.console!);
  if (template.slots.sync) built.set(template.slots.sync, fds.sync!);
  template.slots.tasks.forEach((slot, i) => built.set(slot, fds.cgroupTasks![i]!.fd));
  for (const [i, slot] of template.slots.inherited) {
    const fd = ctx.detached?.get(i);
    if (fd === undefined) throw new SetupError("mounts", `mounts[${i}]: no detached mount was made for it (hako bug)`);
    built.set(slot, fd);
  }
  programs.running(built);
  nativeChildren.count++;
  // The child shares this process's memory and makes it non-dumpable (its first step).
  const releaseDumpable = holdNonDumpable();
  let released = false;
  return {
    program: built,
    reportBytes: REPORT_BYTES,
    failure: (op, errno) => failureOf(template.info, op, errno, "child"),
    release() {
      if (released) return;
      released = true;
      releaseDumpable();
      programs.release(template, built);
    },
  };
}

/** One op of a container's native program and the step it belongs to (see {@link nativeListing}). */
export type NativeOp = ProgramOp & {
  /** The step, as a failure of this op names it (undefined for a jump). */
  readonly step: ProgramStep | undefined;
  /** The call and arguments a failure of this op shows. */
  readonly shown?: readonly unknown[];
};

/**
 * The native program of `ctx` as a list of ops, each with its step: compiled as for a container
 * (stdio inherited, the capability steps from `plan`), never built nor run, so it needs no root
 * and touches no kernel — for the tests that compare it with the forked child's calls and with
 * `hako plan` (the recording double the review asked for). Undefined where the child must be
 * forked (a provision hook, a veth, a mount with propagation options…).
 * `selfJoin`: the cgroup v1 `tasks` files the child writes itself into (as {@link NativeFds.cgroupTasks} shows them).
 * @throws {SetupError} For a step that cannot succeed, as {@link compileChild}.
 */
export function nativeListing(
  ctx: SetupContext,
  plan: KeepPlan,
  selfJoin: readonly string[] = [],
): NativeOp[] | undefined {
  const t = compile(ctx, stepsFor(ctx), plan, ["=", "=", "="], 0, selfJoin);
  return t?.prog.listing().map((op, i) => ({
    ...op,
    step: t.info[i]?.step,
    ...(t.info[i] ? { shown: t.info[i]!.shown } : {}),
  }));
}

/** Compiles the program of one kind of container; undefined when a step cannot run natively. */
function compile(
  ctx: SetupContext,
  steps: readonly SetupStep[],
  plan: KeepPlan,
  stdioShape: readonly string[],
  closes: number,
  selfJoin: readonly string[] = [],
): Template | undefined {
  const r = new Recorder("child");
  const { p, call } = r;
  const checks: Array<() => boolean> = [];
  const emit: Emit = {
    call,
    check: (c) => checks.push(c),
    remountReadonly(target, shown, add = MS.RDONLY) {
      const i = p.remountReadonly(target, MS.REMOUNT | MS.BIND | add);
      r.note(
        i,
        "mount",
        [unquoted("NULL"), shown, unquoted("NULL"), unquoted(`MS_REMOUNT|MS_BIND|${bindFlagNames(add)}`)],
        `make the bind mount of ${shown} on ${shown} ${add === MS.RDONLY ? "read-only" : bindFlagNames(add)}`,
      );
    },
    plan,
    ...holds(),
    asStep: (step, append) => {
      const was = r.step;
      r.step = step;
      append();
      r.step = was;
    },
    rootFd: () => p.value(slots.root),
    continueInChild() {
      const record = pidRecord(p);
      const rest = p.label();
      const i = p.clone(CLONE_VM | CLONE_PARENT | SIGCHLD, p.stack(), rest, p.at(record, 4));
      r.note(i, "clone", [unquoted("CLONE_VM|CLONE_PARENT")]);
      call("write", [p.value(slots.status), record, REPORT_BYTES], ["status pipe"], { expect: REPORT_BYTES });
      call("exit_group", [0], [0]);
      p.place(rest);
    },
  };
  const slots = {
    root: p.slot(),
    go: p.slot(),
    start: p.slot(),
    status: p.slot(),
    close: Array.from({ length: closes }, () => p.slot()),
    stdio: stdioShape.map((s) => (s === "dup" ? p.slot() : undefined)),
    ...(ctx.console ? { console: p.slot() } : {}),
    ...(ctx.hooksSync !== undefined ? { sync: p.slot() } : {}),
    tasks: selfJoin.map(() => p.slot()),
    inherited: new Map<number, ProgramSlot>(),
  };
  emit.inherit = (index) => {
    const slot = p.slot();
    slots.inherited.set(index, slot);
    return slot;
  };
  if (slots.console) emit.console = p.value(slots.console);
  if (slots.sync) {
    const sync = slots.sync;
    // (setup.ts's runCall "sync": the same two calls, and the close)
    emit.sync = () => {
      call("write", [p.value(slots.status), syncRecord(p), REPORT_BYTES], ["status pipe"], { expect: REPORT_BYTES });
      call(
        "read",
        [p.value(sync), p.bytes(new Uint8Array(8)), 1],
        ["sync pipe"],
        { expect: 1 },
        "wait for the parent's hooks",
      );
      call("close", [p.value(sync)], ["sync pipe"]);
    };
  }

  // Into its cgroup v1 directories first, by itself (see NativeFds.cgroupTasks): the parent
  // joins it to the others, or the clone did, before the go byte.
  if (slots.tasks.length) {
    r.step = "join-cgroups";
    const zero = p.bytes(new TextEncoder().encode("0"));
    slots.tasks.forEach((slot, i) => {
      call("write", [p.value(slot), zero, 1], [selfJoin[i], "0"], { expect: 1 }, "move itself into its cgroup");
      call("close", [p.value(slot)], [selfJoin[i]]);
    });
    r.step = "child";
  }
  for (const slot of slots.close) call("close", [p.value(slot)], [unquoted("the parent's end of a pipe")]);
  const scratch = p.bytes(new Uint8Array(8));
  call("read", [p.value(slots.go), scratch, 1], ["go pipe"], { expect: 1 }, "wait for the parent's go");
  call("close", [p.value(slots.go)], ["go pipe"]);

  if (!r.steps(ctx, steps, emit)) return undefined;
  if (ctx.spec.mounts.length > 0) {
    // (the spec mounts' targets resolved in the rootfs, and whether each bind source is a file)
    const shape = mountsShape(ctx);
    checks.push(() => mountsShape(ctx) === shape);
  }

  r.step = "ready";
  call("write", [p.value(slots.status), readyRecord(p), REPORT_BYTES], ["status pipe"], { expect: REPORT_BYTES });
  r.step = "exec";
  // OCI mode: no start byte; the exec-fifo step below waits for `hako oci start` instead.
  if (ctx.execFifo === undefined) {
    call("read", [p.value(slots.start), scratch, 1], ["start pipe"], { expect: 1 }, "wait for the parent's start");
  }
  slots.stdio.forEach((slot, target) => {
    if (slot) call("dup3", [p.value(slot), target, 0], [unquoted("stdio"), target]);
  });
  // Nothing of the runtime's may reach the command: every fd above 2 closes at exec (but the
  // caller's that OCI's --preserve-fds passes on).
  const from = firstClosedFd(ctx.preserveFds);
  call("close_range", [from, 0xffffffff, CLOSE_RANGE_CLOEXEC], [
    from,
    unquoted("~0U"),
    unquoted("CLOSE_RANGE_CLOEXEC"),
  ]);
  for (const [i, syscall, shown] of p.resetSignals()) r.note(i, syscall, shown);
  if (ctx.execFifo !== undefined) {
    // The exec-fifo step (setup.ts's runExecFifo): blocks until `hako oci start` reads the FIFO.
    r.step = "exec-fifo";
    // Every fd but stdio, the preserved ones and the FIFO's closes before the wait (see setup.ts's
    // execFifoPlan).
    const n = ctx.execFifo;
    if (n > from) call("close_range", [from, n - 1, 0], [from, n - 1, 0]);
    call("close_range", [n + 1, 0xffffffff, 0], [n + 1, unquoted("~0U"), 0]);
    const fifo = p.slot();
    const path = execFifoPath(ctx.execFifo);
    call("openat", [AT_FDCWD, p.cstring(path), O_WRONLY_CLOEXEC, 0], [path, unquoted("O_WRONLY|O_CLOEXEC")], {
      store: fifo,
    }, "open the exec fifo");
    call("write", [p.value(fifo), p.bytes(new Uint8Array([0x30])), 1], [path], { expect: 1 }, "exec fifo");
    if (ctx.startSync) {
      // startContainer hooks: the FIFO again, for reading, until `start` has run them (see setup.ts's
      // runExecFifo)
      call("close", [p.value(fifo)], [path]);
      call("openat", [AT_FDCWD, p.cstring(path), O_RDONLY_CLOEXEC, 0], [path, unquoted("O_RDONLY|O_CLOEXEC")], {
        store: fifo,
      }, "wait for the startContainer hooks");
      call(
        "read",
        [p.value(fifo), p.bytes(new Uint8Array(8)), 1],
        [path],
        { expect: 1 },
        "wait for the startContainer hooks",
      );
    }
    r.step = "exec";
  }
  compileExec(ctx, p, call);
  const valid = () => {
    try {
      return checks.every((c) => c());
    } catch {
      return false; // (compiling again meets the error and reports it)
    }
  };
  return { prog: p, info: r.info, slots, free: [], valid };
}

/** A compiled `execIn`: the program to clone, and how to name a failed op. */
export interface NativeExec {
  /** The program; keep it referenced until the command has exec'd or both children are reaped. */
  readonly program: BuiltProgram;
  /** The report a failed op stands for. */
  failure(op: number, errno: number): ChildError;
}

/**
 * `execIn` (exec.ts) as a program: the first child joins the container's namespaces (its cgroups
 * are joined by the parent, which writes the child's pid before the go byte), then clones the
 * command's process with `CLONE_PARENT` — the caller's own child, in the joined PID namespace —
 * reports its pid and exits; the command's process runs `steps` and execs. Undefined where the
 * forked path must run it (no native runner).
 * @throws {SetupError} For a step that cannot succeed (a capability not permitted).
 */
export function compileExecIn(
  profile: SetupContext["spec"],
  namespaces: ReadonlyArray<{ readonly path: string; readonly flag: number }>,
  steps: readonly SetupStep[],
  fds: {
    readonly go: number;
    readonly status: number;
    readonly stdio: ReadonlyArray<number | undefined>;
    readonly console?: ConsoleRequest;
    /** How many of the caller's fds from 3 on pass to the command (OCI `--preserve-fds`). */
    readonly preserveFds?: number;
    /** The container's cgroup v1 `tasks` files the child writes itself into ({@link NativeFds.cgroupTasks}). */
    readonly cgroupTasks?: ReadonlyArray<{ readonly fd: number; readonly shown: string }>;
  },
  userns: boolean,
): NativeExec | undefined {
  // setns into a time namespace needs a caller that shares its memory with no other task.
  if (!nativeSpawnSupported() || namespaces.some((n) => n.flag === CLONE_NEWTIME)) return undefined;
  const ctx: SetupContext = { spec: profile, userns, ...(fds.console ? { console: fds.console } : {}) };
  let plan: KeepPlan;
  try {
    plan = capabilityPlan(profile, userns);
  } catch (e) {
    throw setupError(describe("capabilities", e));
  }
  const r = new Recorder("non-dumpable");
  const { p, call } = r;
  // First of all: this child and the command's process share the caller's memory until execve,
  // and they join a live container, whose processes must not reach it through /proc/PID.
  call("prctl", [PR_SET_DUMPABLE, 0, 0, 0, 0], [unquoted("PR_SET_DUMPABLE"), 0]);
  r.step = "stdio";
  const emit: Emit = {
    call,
    check: () => {},
    remountReadonly: () => {
      throw new SetupError("exec", "an exec step asked for a read-only remount (hako bug)");
    },
    plan,
    ...holds(),
    asStep: (_step, append) => append(),
    ...(fds.console ? { console: fds.console.socket } : {}),
  };
  fds.stdio.forEach((fd, target) => {
    if (fd !== undefined && fd !== target) call("dup3", [fd, target, 0], [fd, target], {}, `redirect fd ${target}`);
  });
  // Nothing of the runtime's may reach the command: every fd above 2 closes at exec (but the
  // caller's that OCI's --preserve-fds passes on).
  const from = firstClosedFd(fds.preserveFds);
  call("close_range", [from, 0xffffffff, CLOSE_RANGE_CLOEXEC], [
    from,
    unquoted("~0U"),
    unquoted("CLOSE_RANGE_CLOEXEC"),
  ]);
  r.step = "join-cgroups";
  // (its v1 directories by itself, without the kernel's global lock: the parent joins the others)
  const zero = p.bytes(new TextEncoder().encode("0"));
  for (const t of fds.cgroupTasks ?? []) {
    call("write", [t.fd, zero, 1], [t.shown, "0"], { expect: 1 }, "move itself into the container's cgroup");
    call("close", [t.fd], [t.shown]);
  }
  call("read", [fds.go, p.bytes(new Uint8Array(8)), 1], ["go pipe"], { expect: 1 }, "wait for the parent's go");
  r.step = "join-namespaces";
  // Every fd first: after setns(user) or setns(mnt), /proc/PID may no longer be reachable.
  const nsFds = namespaces.map((ns) => {
    const slot = p.slot();
    call(
      "openat",
      [AT_FDCWD, p.cstring(ns.path), O_RDONLY_CLOEXEC, 0],
      [ns.path],
      { store: slot },
      "open the container's namespace",
    );
    return slot;
  });
  namespaces.forEach((ns, i) => {
    call("setns", [p.value(nsFds[i]!), ns.flag], [ns.path], {}, "join the container's namespace");
  });
  call("chdir", [p.cstring("/")], ["/"]);
  r.step = "fork";
  const record = pidRecord(p);
  const command = p.label();
  const i = p.clone(CLONE_VM | CLONE_PARENT | SIGCHLD, p.stack(), command, p.at(record, 4));
  r.note(i, "clone", [unquoted("CLONE_VM|CLONE_PARENT")]);
  call("write", [fds.status, record, REPORT_BYTES], ["status pipe"], { expect: REPORT_BYTES });
  call("exit_group", [0], [0]);
  p.place(command);
  if (!r.steps(ctx, steps, emit)) return undefined;
  r.step = "exec";
  for (const [k, syscall, shown] of p.resetSignals()) r.note(k, syscall, shown);
  compileExec(ctx, p, call);
  const program = p.build();
  program.reportTo(fds.status);
  nativeChildren.count++;
  return {
    program,
    failure: (op, errno) => failureOf(r.info, op, errno, "exec"),
  };
}

/** Appends one system call, recording its step and how to name its failure; @returns its op index. */
type Call = (
  name: Parameters<SyscallProgram["call"]>[0],
  args: readonly ProgramArg[],
  shown: readonly unknown[],
  options?: Parameters<SyscallProgram["call"]>[2],
  context?: string,
) => number;

/** What the step compilers append with. */
interface Emit {
  readonly call: Call;
  /**
   * A read-only remount of a mount point keeping its other flags (as `Mount.bind(…, { readonly: true })`);
   * `add`: the flags set (default `MS_RDONLY`; a bind's nosuid, nodev, noexec too).
   */
  readonly remountReadonly: (target: ProgramData, shown: string, add?: number) => void;
  /** The capability plan, worked out by the caller. */
  readonly plan: KeepPlan;
  /** With `-t`: the child's end of the console socket, as an argument (a slot's value, or a number). */
  console?: ProgramArg;
  /** The hooks-sync step's calls (the container's program with a sync pipe only). */
  sync?: () => void;
  /** Adds a check that what this step resolved on the host still holds (run for every container). */
  readonly check: (holds: () => boolean) => void;
  /**
   * Clones the rest of the program into a child of the caller's (`CLONE_PARENT`), which reports
   * its pid and exits (the container's program only: exec's programs clone on their own).
   */
  readonly continueInChild?: () => void;
  /** The rootfs fd's slot, as an argument (the container's program only). */
  readonly rootFd?: () => ProgramArg;
  /** Keeps a slot holding an fd under a name, for a later op (captured mounts, the host root…). */
  readonly hold: (id: string, slot: ProgramSlot) => void;
  /** The slot held under a name. */
  readonly held: (id: string) => ProgramSlot;
  /**
   * A slot the parent fills with the fd of spec mount `index`'s detached mount when it runs the
   * program (the container's program only: see `_idmap.ts`).
   */
  inherit?: (index: number) => ProgramSlot;
  /** Appends ops that belong to another step (their failure is named as that step's). */
  readonly asStep: (step: StepName, append: () => void) => void;
}

/** A program being written, and what each of its ops stands for (its step, call and arguments). */
class Recorder {
  readonly p = new SyscallProgram();
  readonly info: OpInfo[] = [];
  /** The step the next ops belong to. */
  step: ProgramStep;

  constructor(step: ProgramStep) {
    this.step = step;
  }

  /** Appends a system call of the current step (see {@link Call}). */
  readonly call: Call = (name, args, shown, options = {}, context) => {
    const i = this.p.call(name, args, options);
    this.note(i, libcName(name), shown, context);
    return i;
  };

  /** Records what op `i` stands for, in the current step. */
  note(i: number, syscall: string, shown: readonly unknown[], context?: string): void {
    this.info[i] = { step: this.step, syscall, shown, ...(context ? { context } : {}) };
  }

  /**
   * Appends the calls of each step of `steps` that applies to `ctx`; false when one cannot run
   * natively.
   * @throws {SetupError} What the child would have reported for the step (a bad limit, say).
   */
  steps(ctx: SetupContext, steps: readonly SetupStep[], emit: Emit): boolean {
    for (const s of steps) {
      if (!s.when(ctx)) continue;
      this.step = s.name;
      try {
        if (!compileStep(ctx, s.name, this.p, emit)) return false;
      } catch (e) {
        throw setupError(describe(s.name, e));
      }
    }
    return true;
  }
}

/** The report a failed op stands for (`errno` 0: the call returned an unexpected result). */
function failureOf(info: readonly OpInfo[], op: number, errno: number, unknownStep: string): ChildError {
  const i = info[op];
  if (!i) return { step: unknownStep, message: `the native child failed at op ${op}: errno ${errno}` };
  if (errno === 0) {
    return { step: i.step, message: `${i.syscall} returned an unexpected result${i.context ? ` (${i.context})` : ""}` };
  }
  return describe(i.step, new SyscallError(i.syscall, errno, i.shown, i.context));
}

/** A program's named slots (see {@link Emit.hold}). */
function holds(): Pick<Emit, "hold" | "held"> {
  const slots = new Map<string, ProgramSlot>();
  return {
    hold: (id, slot) => void slots.set(id, slot),
    held: (id) => {
      const slot = slots.get(id);
      if (!slot) throw new SetupError("setup", `no fd held as ${id} (hako bug)`);
      return slot;
    },
  };
}

/** Appends one step's calls, one op at a time; false when one cannot run natively. */
function compileStep(ctx: SetupContext, name: StepName, p: SyscallProgram, emit: Emit): boolean {
  return stepCalls(ctx, name).every((c) => compilePrepared(c, p, emit));
}

/**
 * One prepared call of setup.ts as system calls (the forked child's `runCall` makes the same);
 * false when it cannot run natively (JavaScript, a mount with propagation options, a step the
 * program has no means for).
 */
function compilePrepared(c: PreparedCall, p: SyscallProgram, emit: Emit): boolean {
  const { call } = emit;
  const mount = (m: Extract<PreparedCall, { op: "mount" }>, onErrno?: ReadonlyArray<readonly [number, ProgramLabel]>) =>
    call(
      "mount",
      [m.source && p.bytes(m.source), p.bytes(m.target), m.type && p.bytes(m.type), m.flags, m.data && p.bytes(m.data)],
      m.shown,
      onErrno ? { onErrno } : {},
    );
  // Out of the chroot through the held host root, into the rootfs's mount again (pivot, move-root).
  const leaveChroot = (dot: ProgramData) => {
    const hostRoot = emit.held("host-root"), rootfs = emit.held("rootfs");
    call("fchdir", [p.value(hostRoot)], [unquoted("host root")]);
    call("chroot", [dot], ["."], {}, "leave the chroot");
    call("fchdir", [p.value(rootfs)], [unquoted("rootfs")]);
    call("close", [p.value(hostRoot)], [unquoted("host root")]);
    call("close", [p.value(rootfs)], [unquoted("rootfs")]);
  };
  switch (c.op) {
    case "prctl":
      call("prctl", [c.option, c.arg, 0, 0, 0], [unquoted(c.name), c.arg]);
      return true;
    case "unshare":
      call("unshare", [c.flag], [unquoted(c.name)]);
      return true;
    case "timens-offsets": {
      // (as setup.ts: both clocks in one write, before any process enters the namespace)
      const bytes = new TextEncoder().encode(c.text);
      const fd = p.slot();
      if (c.dumpable) call("prctl", [PR_SET_DUMPABLE, 1, 0, 0, 0], [unquoted("PR_SET_DUMPABLE"), 1]);
      call("openat", [AT_FDCWD, p.cstring(TIMENS_OFFSETS), O_WRONLY_CLOEXEC, 0], [TIMENS_OFFSETS], { store: fd });
      if (c.dumpable) call("prctl", [PR_SET_DUMPABLE, 0, 0, 0, 0], [unquoted("PR_SET_DUMPABLE"), 0]);
      call("write", [p.value(fd), p.bytes(bytes), bytes.length], [TIMENS_OFFSETS, c.text], { expect: bytes.length });
      call("close", [p.value(fd)], [TIMENS_OFFSETS]);
      return true;
    }
    case "sysctl": {
      // (as setup.ts's writeSysctl: the value whole in one write)
      const bytes = new TextEncoder().encode(c.value);
      const fd = p.slot();
      call("openat", [AT_FDCWD, p.cstring(c.path), O_WRONLY_CLOEXEC, 0], [c.path], { store: fd });
      call("write", [p.value(fd), p.bytes(bytes), bytes.length], [c.path, c.value], { expect: bytes.length });
      call("close", [p.value(fd)], [c.path]);
      return true;
    }
    case "lookup": {
      // (as setup.ts's lookupCommand: a candidate missing or refused passes to the next)
      const done = p.label();
      c.candidates.forEach((path, i) => {
        const last = i === c.candidates.length - 1;
        if (last) {
          call("faccessat", [AT_FDCWD, p.cstring(path), X_OK, 0], [c.candidates.length > 1 ? c.cmd : path]);
          return;
        }
        const next = p.label();
        call("faccessat", [AT_FDCWD, p.cstring(path), X_OK, 0], [path], { onErrno: [[ENOENT, next], [EACCES, next]] });
        p.jump(done);
        p.place(next);
      });
      p.place(done);
      return true;
    }
    case "setns": {
      const fd = p.slot();
      call("openat", [AT_FDCWD, p.cstring(c.path), O_RDONLY_CLOEXEC, 0], [c.path], { store: fd });
      call("setns", [p.value(fd), NAMESPACE_FLAGS[c.type]], [c.path]);
      call("close", [p.value(fd)], [c.path]);
      return true;
    }
    case "clone-parent":
      if (!emit.continueInChild) return false;
      emit.continueInChild();
      return true;
    case "setresgid":
    case "setresuid":
      call(c.op, [c.id, c.id, c.id], [c.id, c.id, c.id]);
      return true;
    case "setgroups": {
      // Rootless with setgroups denied (EPERM), the groups cannot change (as the forked child's).
      const next = p.label();
      call(
        "setgroups",
        [c.groups.length, p.bytes(new Uint8Array(new Uint32Array(c.groups).buffer))],
        [`[${c.groups.join(", ")}]`],
        c.epermOk ? { onErrno: [[EPERM, next]] } : {},
      );
      p.place(next);
      return true;
    }
    case "enter-rootfs":
      if (!emit.rootFd) return false;
      call("fchdir", [emit.rootFd()], [c.path], {}, "enter the rootfs");
      return true;
    case "setdomainname": {
      const bytes = new TextEncoder().encode(c.name);
      call("setdomainname", [p.bytes(bytes), bytes.length], [c.name]);
      return true;
    }
    case "sethostname": {
      const bytes = new TextEncoder().encode(c.name);
      call("sethostname", [p.bytes(bytes), bytes.length], [c.name]);
      return true;
    }
    case "loopback-up": {
      const s = p.slot();
      call("socket", [AF_INET, SOCK_DGRAM_CLOEXEC, 0], [unquoted("AF_INET"), unquoted("SOCK_DGRAM")], { store: s });
      const ifr = new Uint8Array(40);
      ifr.set(new TextEncoder().encode("lo"));
      new DataView(ifr.buffer).setInt16(16, IFF_UP_LOOPBACK_RUNNING, true);
      call("ioctl", [p.value(s), SIOCSIFFLAGS, p.bytes(ifr)], [unquoted("SIOCSIFFLAGS"), "lo", unquoted("IFF_UP")]);
      call("close", [p.value(s)], [unquoted("socket")]);
      return true;
    }
    case "rlimit": {
      const [soft, hard] = Array.isArray(c.limit) ? c.limit : [c.limit, c.limit];
      const n = rlimitNumber(c.name);
      const { cur, max } = rlimitPair(soft, hard, `rlimits.${c.name}`);
      call("prlimit64", [0, n, p.bytes(encodeRlimit(cur, max)), null], [
        0,
        unquoted(`RLIMIT_${c.name.toUpperCase().replace(/^RLIMIT_/, "")}`),
        unquoted(`{${cur}, ${max}}`),
      ]);
      return true;
    }
    case "setsid":
      call("setsid", [], []);
      return true;
    case "sync":
      if (!emit.sync) return false;
      emit.sync();
      return true;
    case "console":
      if (emit.console === undefined) return false;
      compileConsole(p, call, emit.console, c.uid, c.request.size);
      return true;
    case "bounding":
      for (const n of emit.plan.drops) {
        call("prctl", [PR_CAPBSET_DROP, n, 0, 0, 0], [unquoted("PR_CAPBSET_DROP"), n], {}, "Capability.keep");
      }
      if (c.keepCaps) call("prctl", [PR_SET_KEEPCAPS, 1, 0, 0, 0], [unquoted("PR_SET_KEEPCAPS"), 1]);
      return true;
    case "capsets":
      compileCapsets(emit.plan, call, p);
      return true;
    case "seccomp": {
      const filter = p.bytes(c.program);
      const fprog = new Uint8Array(16);
      new DataView(fprog.buffer).setUint16(0, c.program.byteLength / 8, true);
      call(
        "seccomp",
        [SECCOMP_SET_MODE_FILTER, 0, p.bytes(fprog, [[8, filter]])],
        ["SECCOMP_SET_MODE_FILTER", 0, `${c.program.byteLength / 8} instructions`],
        {},
        "load the seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)",
      );
      return true;
    }
    case "mount":
      mount(c);
      return true;
    case "mknod": {
      const path = p.bytes(c.path);
      call("mknodat", [AT_FDCWD, path, c.mode, c.dev], c.shown);
      // The mode asked for, whatever the umask took away (see _devices.ts).
      call("fchmodat", [AT_FDCWD, path, c.mode & 0o7777, 0], [
        c.shown[0],
        unquoted(`0${(c.mode & 0o7777).toString(8)}`),
      ]);
      return true;
    }
    case "mkdir": {
      const next = p.label();
      call("mkdirat", [AT_FDCWD, p.bytes(c.path), 0o755], c.shown, c.exist ? { onErrno: [[EEXIST, next]] } : {});
      p.place(next);
      return true;
    }
    case "symlink":
      call("symlinkat", [p.bytes(c.to), AT_FDCWD, p.bytes(c.path)], c.shown);
      return true;
    case "chdir":
      call("chdir", [p.bytes(c.path)], c.shown);
      return true;
    case "chdir-in": {
      // (the forked path's calls: setup.ts; before Linux 5.6, ENOSYS: a plain chdir)
      const fd = p.slot(), plain = p.label(), end = p.label();
      const path = p.bytes(c.path);
      call("openat2", [AT_FDCWD, path, p.bytes(c.how), c.how.length], [...c.shown, unquoted("RESOLVE_NO_MAGICLINKS")], {
        store: fd,
        onErrno: [[ENOSYS, plain]],
      });
      call("fchdir", [p.value(fd)], c.shown);
      call("close", [p.value(fd)], c.shown);
      p.jump(end);
      p.place(plain);
      call("chdir", [path], c.shown);
      p.place(end);
      return true;
    }
    case "rootfs-mount": {
      const tree = p.slot();
      const dot = p.bytes(c.dot);
      call("open_tree", [AT_FDCWD, dot, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE], [
        ".",
        unquoted("OPEN_TREE_CLONE|AT_RECURSIVE"),
      ], { store: tree });
      call("move_mount", [p.value(tree), p.bytes(c.empty), AT_FDCWD, dot, MOVE_MOUNT_F_EMPTY_PATH], [
        unquoted("tree"),
        "",
        unquoted("AT_FDCWD"),
        ".",
      ]);
      call("fchdir", [p.value(tree)], [unquoted("tree")]);
      emit.hold("rootfs", tree); // (pivot-root enters it again, out of the chroot)
      return true;
    }
    case "inherit": {
      // (a detached mount the parent made before the clone, inherited: its fd fills a slot)
      const index = Number(c.id.slice("mount:".length));
      if (!emit.inherit || !Number.isInteger(index)) return false;
      emit.hold(c.id, emit.inherit(index));
      return true;
    }
    case "capture": {
      const fd = p.slot();
      const flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (c.recursive ? AT_RECURSIVE : 0);
      emit.asStep(c.step, () => call("open_tree", [AT_FDCWD, p.bytes(c.source), flags], c.shown, { store: fd }));
      emit.hold(c.id, fd);
      return true;
    }
    case "attach": {
      if (c.at !== undefined) {
        // (as setup.ts's attachAt: read-only while detached, then moved onto the checked target's
        // fd; before Linux 5.12, mount_setattr ENOSYS: remounted at the path once attached)
        const fd = emit.held(c.id), target = emit.held(c.at), empty = p.bytes(c.empty);
        const late = p.label(), end = p.label();
        const move = () =>
          call("move_mount", [
            p.value(fd),
            empty,
            p.value(target),
            empty,
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
          ], [
            unquoted(c.id),
            "",
            unquoted(c.at!),
            c.path,
          ]);
        const add = (c.readonly ? MS.RDONLY : 0) | (c.flags ?? 0);
        if (add) {
          call("mount_setattr", [p.value(fd), empty, AT_EMPTY_PATH, p.bytes(c.attr!), c.attr!.byteLength], [
            unquoted(c.id),
            "",
            unquoted("AT_EMPTY_PATH"),
            c.path,
          ], { onErrno: [[ENOSYS, late]] });
        }
        move();
        if (add) {
          p.jump(end);
          p.place(late);
          move();
          emit.remountReadonly(p.bytes(c.target), c.path, add);
          p.place(end);
        }
        call("close", [p.value(fd)], [unquoted(c.id)]);
        call("close", [p.value(target)], [unquoted(c.at)]);
        return true;
      }
      const fd = emit.held(c.id);
      const target = p.bytes(c.target);
      call("move_mount", [p.value(fd), p.bytes(c.empty), AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH], [
        unquoted(c.id),
        "",
        unquoted("AT_FDCWD"),
        c.path,
      ]);
      call("close", [p.value(fd)], [unquoted(c.id)]);
      if (c.readonly || c.flags) {
        emit.remountReadonly(target, c.path, (c.readonly ? MS.RDONLY : 0) | (c.flags ?? 0));
      }
      return true;
    }
    case "release":
      call("close", [p.value(emit.held(c.id))], [unquoted(c.id)]);
      return true;
    case "open-target": {
      // (as setup.ts: no symlink followed, the fd held for the mount on it)
      const fd = p.slot();
      call("openat2", [AT_FDCWD, p.bytes(c.path), p.bytes(c.how), c.how.length], c.shown, { store: fd }, TARGET_HINT);
      emit.hold(c.id, fd);
      return true;
    }
    case "mkdir-in": {
      const fd = p.slot(), next = p.label();
      const parent = new TextDecoder().decode(c.parent.subarray(0, -1));
      call(
        "openat2",
        [AT_FDCWD, p.bytes(c.parent), p.bytes(c.how), c.how.length],
        [parent, unquoted("O_PATH|O_DIRECTORY"), unquoted("RESOLVE_NO_SYMLINKS")],
        { store: fd },
        TARGET_HINT,
      );
      call("mkdirat", [p.value(fd), p.bytes(c.name), 0o755], c.shown, { onErrno: [[EEXIST, next]] });
      p.place(next);
      call("close", [p.value(fd)], [parent]);
      return true;
    }
    case "mount-at": {
      const fd = emit.held(c.at), m = c.mount;
      call("fchdir", [p.value(fd)], [unquoted(c.at), m.shown[1]]);
      call(
        "mount",
        [m.source && p.bytes(m.source), p.bytes(c.dot), m.type && p.bytes(m.type), m.flags, m.data && p.bytes(m.data)],
        m.shown,
      );
      call("chdir", [p.bytes(c.slash)], ["/"]);
      call("close", [p.value(fd)], [unquoted(c.at)]);
      return true;
    }
    case "chroot-in": {
      const fd = p.slot();
      call("openat", [AT_FDCWD, p.bytes(c.slash), O_PATH_DIRECTORY_CLOEXEC, 0], ["/", unquoted("O_PATH|O_DIRECTORY")], {
        store: fd,
      });
      emit.hold("host-root", fd);
      call("chroot", [p.bytes(c.dot)], ["."], {}, "chroot into the rootfs");
      return true;
    }
    case "remount-ro":
      emit.remountReadonly(p.bytes(c.target), c.path);
      return true;
    case "mount-options": // (the general Mount.mount: forked)
    case "js":
      return false;
    case "move-root": {
      // (as setup.ts: out of the chroot, the rootfs's mount moved over "/", the host's mounts
      // detached, a kept proc or sysfs covered, then chroot into the moved rootfs)
      const dot = p.bytes(c.dot), tmpfs = p.bytes(c.tmpfs);
      leaveChroot(dot);
      call("mount", [dot, p.bytes(c.slash), null, MS_MOVE, null], [".", "/", null, unquoted("MS_MOVE")]);
      for (const d of c.detach) {
        const next = p.label(), path = p.bytes(d.path), shown = [d.shown, unquoted("MNT_DETACH")];
        // (two errno rules a call: a path gone meanwhile, ENOENT, is the access check's)
        call("faccessat", [AT_FDCWD, path, 0, 0], [d.shown, unquoted("F_OK")], { onErrno: [[ENOENT, next]] });
        if (!d.cover) {
          call("umount2", [path, MNT_DETACH], shown, { onErrno: [[EINVAL, next], [EPERM, next]] });
        } else {
          const cover = p.label();
          call("umount2", [path, MNT_DETACH], shown, { onErrno: [[EINVAL, cover], [EPERM, cover]] });
          p.jump(next);
          p.place(cover);
          call("mount", [tmpfs, path, tmpfs, 0, null], ["tmpfs", d.shown, "tmpfs", 0], {}, "cover a host mount kept");
        }
        p.place(next);
      }
      call("chroot", [dot], ["."], {}, "into the moved rootfs");
      return true;
    }
    case "pivot": {
      const dot = p.bytes(c.dot);
      leaveChroot(dot);
      call("pivot_root", [dot, dot], [".", "."]);
      call("umount2", [dot, MNT_DETACH], [".", unquoted("MNT_DETACH")]);
      return true;
    }
    case "mask": {
      // (as setup.ts: made on the fd opened, no magic link followed) An empty read-only tmpfs
      // mounted on "." in the directory; fchdir ENOTDIR: a file, /dev/null moved onto its fd;
      // ENOENT: not on this kernel.
      // (the file's /dev/null is the host's, captured before the chroot: see hostSourceCaptures)
      const fd = p.slot(), file = p.label(), unused = p.label(), end = p.label(), d = c.dir;
      call("openat2", [AT_FDCWD, p.bytes(c.path), p.bytes(c.how), c.how.length], c.shown, {
        store: fd,
        onErrno: [[ENOENT, unused]],
      }, PATHS_HINT);
      call("fchdir", [p.value(fd)], [c.shown[0]], { onErrno: [[ENOTDIR, file]] });
      call(
        "mount",
        [d.source && p.bytes(d.source), p.bytes(c.dot), d.type && p.bytes(d.type), d.flags, d.data && p.bytes(d.data)],
        d.shown,
      );
      call("chdir", [p.bytes(c.slash)], ["/"]);
      call("close", [p.value(fd)], [c.shown[0]]);
      p.place(unused);
      compilePrepared(c.release, p, emit);
      p.jump(end);
      p.place(file);
      emit.hold(c.id, fd);
      compilePrepared(c.file, p, emit);
      p.place(end);
      return true;
    }
    case "touch": {
      const fd = p.slot(), there = p.label();
      // (there already, read-only: a mount point as it is; a spec mount's target: no symlink followed)
      const opts = { store: fd, onErrno: [[EACCES, there], [EROFS, there]] as const };
      if (c.how) call("openat2", [AT_FDCWD, p.bytes(c.path), p.bytes(c.how), c.how.length], c.shown, opts, TARGET_HINT);
      else call("openat", [AT_FDCWD, p.bytes(c.path), O_WRONLY_CREAT_CLOEXEC, 0o644], c.shown, opts);
      call("close", [p.value(fd)], c.shown);
      p.place(there);
      return true;
    }
    case "sysfs": {
      // sysfs; EPERM (a user namespace without its own network namespace): the host's /sys, read-only
      const bind = p.label(), end = p.label();
      mount(c.sysfs, [[EPERM, bind]]);
      compilePrepared({ op: "release", id: c.bind }, p, emit);
      p.jump(end);
      p.place(bind);
      compilePrepared(
        { op: "attach", id: c.bind, target: c.target, path: c.path, readonly: true, empty: c.empty },
        p,
        emit,
      );
      compilePrepared(c.tree, p, emit);
      p.place(end);
      return true;
    }
    case "readonly-tree": {
      const end = p.label();
      call("mount_setattr", [AT_FDCWD, p.bytes(c.path), AT_RECURSIVE, p.bytes(c.attr), c.attr.byteLength], c.shown, {
        onErrno: [[ENOSYS, end]], // (before Linux 5.12: what the bind gave)
      });
      p.place(end);
      return true;
    }
    case "readonly": {
      // (as setup.ts: a copy of the mount taken from the fd opened, read-only, moved back onto it)
      const fd = p.slot(), tree = p.slot(), end = p.label();
      call("openat2", [AT_FDCWD, p.bytes(c.target), p.bytes(c.how), c.how.length], c.shown, {
        store: fd,
        onErrno: [[ENOENT, end]], // (not on this kernel)
      }, PATHS_HINT);
      call(
        "open_tree",
        [p.value(fd), p.bytes(c.empty), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH],
        [c.path, unquoted("OPEN_TREE_CLONE|AT_RECURSIVE|AT_EMPTY_PATH")],
        { store: tree },
      );
      emit.hold(c.attach.id, tree), emit.hold(c.attach.at!, fd);
      compilePrepared(c.attach, p, emit);
      p.place(end);
      return true;
    }
  }
}

/** The capability plan's sets set, the ambient set cleared and raised (as capability.ts's keepSets). */
function compileCapsets(plan: KeepPlan, call: Call, p: SyscallProgram): void {
  const context = "Capability.keep";
  const m = plan.mask;
  const sets = plan.sets ?? { effective: m, permitted: m, inheritable: m, ambient: plan.ambient ? m : 0n };
  const hex = (x: bigint) => `0x${x.toString(16)}`;
  call(
    "capset",
    [
      p.bytes(capHeader(0)),
      p.bytes(encodeCapData({ effective: sets.effective, permitted: sets.permitted, inheritable: sets.inheritable })),
    ],
    [unquoted(`e=${hex(sets.effective)} p=${hex(sets.permitted)} i=${hex(sets.inheritable)}`)],
    {},
    context,
  );
  const next = p.label();
  // EINVAL: a kernel without ambient capabilities, nothing to clear
  call("prctl", [PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0], [unquoted("PR_CAP_AMBIENT_CLEAR_ALL")], {
    onErrno: [[EINVAL, next]],
  }, context);
  p.place(next);
  for (let n = 0; n < 64; n++) {
    if ((sets.ambient >> BigInt(n)) & 1n) {
      call(
        "prctl",
        [PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n, 0, 0],
        [unquoted("PR_CAP_AMBIENT_RAISE"), unquoted(Capability.nameOf(n))],
        {},
        context,
      );
    }
  }
}

/** execve of the command: its path, or each PATH directory in turn (as execvp, after pivot_root). */
function compileExec(ctx: SetupContext, p: SyscallProgram, call: Call): void {
  const spec = ctx.spec;
  const argv = p.cstrings(spec.argv);
  const envp = p.cstrings(
    Object.entries(spec.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`),
  );
  // (an OCI hook's `path`, its `args` the whole argv: execv's semantics, as runc's hooks)
  const cmd = spec.execPath ?? spec.argv[0]!;
  if (cmd.includes("/")) {
    call("execve", [p.cstring(cmd), argv, envp], [cmd]);
    return;
  }
  const dirs = (spec.env.PATH ?? DEFAULT_PATH).split(":").map((d) => d || ".");
  dirs.forEach((d, i) => {
    const last = i === dirs.length - 1;
    const next = p.label();
    call(
      "execve",
      [p.cstring(`${d.replace(/\/$/, "")}/${cmd}`), argv, envp],
      [last ? cmd : `${d}/${cmd}`],
      last ? {} : { onErrno: [[ENOENT, next], [EACCES, next]] },
    );
    p.place(next);
  });
}
