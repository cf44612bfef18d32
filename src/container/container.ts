/**
 * The parent side of a container: create (validate, rootfs, cgroup, fork into new namespaces,
 * id maps, wait for the child's setup), start (let the child exec), wait, kill, stats and delete.
 *
 * The child and the parent talk over three close-on-exec pipes: `go` (parent → child, once the id
 * maps are written and the cgroup is joined), `start` (parent → child, on {@link Container.start})
 * and `status` (child → parent: one JSON line, `{"ready":true}` after every setup step, or
 * `{"error":{…}}` naming the step that failed; a successful execve closes it, so the parent sees
 * EOF).
 *
 * Most containers' children run no JavaScript: `native.ts` compiles the setup into a program of
 * system calls that a `CLONE_VM` child runs natively (`ffi/spawn.ts`); it reports with 12-byte
 * records instead of JSON lines. Specs that need code in the child are forked as before.
 *
 * @example
 * ```ts ignore
 * import { run } from "./src/container/container.ts";
 * const status = await run({ name: "demo", rootfs: { builder: "busybox", path: "/var/lib/hako/bb" }, command: "echo hi" });
 * console.log(status.code); // 0
 * ```
 * @module
 */
import process from "node:process";
import { readFileSync, writeFileSync } from "node:fs";
import { check, checkRetry, errno, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { AT_FDCWD, O_DIRECTORY, O_PATH, openat } from "../../ffi/at.ts";
import { passPreservedFds } from "./_preserve_fds.ts";
import { noPivotDetaches } from "./_no_pivot.ts";
import { forkProcess } from "../../ffi/fork.ts";
import {
  cloneIntoCgroupSupported,
  nativeSpawnSupported,
  nextReport,
  spawnProgram,
  spawnProgramInto,
} from "../../ffi/spawn.ts";
import { pidfdOpen, waitReadable } from "../../ffi/poll.ts";
import { receiveFd, setWindowSize, socketPair, type WindowSize } from "../../ffi/tty.ts";
export type { WindowSize };
import { SYS } from "../../ffi/syscalls.ts";
import { Group, type GroupStats } from "../cgroup/group.ts";
import { detect } from "../cgroup/layout.ts";
import { primeAttach } from "../cgroup/_prime.ts";
import { ConfigError, SetupError, SyscallError } from "../errors.ts";
import { assertValidTty } from "./_console.ts";
import { writeIdMap } from "../namespace.ts";
import {
  addAddress,
  createVethPair,
  deleteLink,
  hardenHostLink,
  hostClashProblem,
  hostNetworks,
  parseCidr,
  setLinkUp,
} from "../network.ts";
import { kill as killProcess, type ProcessStatus, waitpid2, WNOHANG } from "../process.ts";
import type { Signal } from "../signals.ts";
import { EventWatcher, runBootstrap, runHostCommand, runHostHook } from "./hooks.ts";
import { armPressure, resolveMemoryPressure } from "./memory_pressure.ts";
// (rootfs.ts, rootless.ts and tarball.ts — the builders, the tar and xz code, the rootless helpers — are
// imported by the branches that use them: an OCI bundle's container, `hako-runc create`, needs none)
import type { RootlessPlan } from "./rootless.ts";
import { type ChildError, closeFd, describe, pipe, setupError, writeAll } from "./_pipe.ts";
import { compileChild, type NativeChild } from "./native.ts";
import { realRootfs } from "./_paths.ts";
import {
  containerGroupSpec,
  existingCgroupDirs,
  makeOtherCgroups,
  removeEmptyDefaultParent,
  removeOtherCgroups,
  removeStaleCgroup,
  selfJoinDirs,
  startSystemdScope,
  stopSystemdScope,
} from "./_cgroup.ts";
import { type IdmappedMounts, prepareIdmappedMounts } from "./_idmap.ts";
import type { TmpfsCopies } from "./_tmpcopyup.ts";
import {
  cloneFlags,
  execCommand,
  firstClosedFd,
  type HostStepName,
  type PreparedExecFifo,
  prepareExecFifo,
  prepareSetup,
  runExecFifo,
  runStep,
  type SetupContext,
  stepsFor,
  targetInRootfs,
} from "./setup.ts";
import { isTmpcopyup } from "./_plain_mount.ts";
import { type ContainerFile, removeContainerFiles, writeContainerFiles } from "./_files.ts";
import type { ContainerSpec, ContainerStatus } from "./spec.ts";
import { type ResolvedSpec, resolveSpec, SpecError } from "./validate.ts";
import {
  CLOSE_RANGE_CLOEXEC,
  ECHILD,
  EINTR,
  O_CLOEXEC,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  POLLIN,
} from "../../ffi/constants.ts";

export type { ContainerStatus } from "./spec.ts";

/** Options of {@link Container.create} for callers that manage containers (the supervisor). */
export interface CreateOptions {
  /**
   * Host file descriptors to give the command as its stdin, stdout and stderr (instead of what
   * the spec's `stdio` says); the caller keeps and closes them. The supervisor passes /dev/null and
   * the container's log file.
   */
  readonly stdio?: { readonly stdin?: number; readonly stdout?: number; readonly stderr?: number };
  /**
   * Called right after the fork with the child's pid (before its setup), e.g. to record it; called
   * again with the container's init when the child clones it into a joined PID namespace.
   */
  readonly onForked?: (pid: number) => void;
  /**
   * A terminal of the container's own (`hako run -t`, OCI's `process.terminal`): a pty of the
   * container's devpts, opened inside by the `console` step, is the command's controlling
   * terminal and its stdin, stdout and stderr (the spec's `stdio` is then not used), and its
   * master is {@link Container.terminal}. `true`, or the window size to start with (otherwise
   * the kernel's 0×0 until the caller sets one with `TIOCSWINSZ`). A choice of the caller's, as
   * `stdio` is, so not a field of the spec; it needs the container's own devpts (a mount
   * namespace and the standard mounts), and cannot be combined with `stdio`.
   */
  readonly tty?: boolean | WindowSize;
  /**
   * OCI mode (`hako oci create`): an `O_PATH` fd of the exec FIFO. The child then skips the start
   * pipe and, as its last step before execve, blocks opening the FIFO for writing (see
   * `execFifoPlan` in setup.ts): {@link Container.start} is not used; `hako oci start` opens the
   * FIFO for reading instead. The caller keeps and closes the fd.
   */
  readonly execFifo?: number;
  /**
   * OCI hooks (`hako oci create`'s prestart, createRuntime, createContainer): called with the
   * child's pid when its setup reaches the hooks-sync step — every mount made, before pivot_root
   * (see setup.ts) — while the child waits; once it resolves the child goes on. What it throws
   * fails the create (rethrown as it is, after everything made is undone). Without it the child has
   * no sync point (the same program as before).
   */
  readonly onSync?: (pid: number) => Promise<void>;
  /**
   * OCI `startContainer` hooks (with `execFifo`): the child waits, after the FIFO's byte, for a
   * second one through the FIFO before execve (see setup.ts's `execFifoPlan`).
   */
  readonly startSync?: boolean;
  /**
   * OCI mode (runc's cgroupfs manager): the container's cgroup made in every mounted hierarchy its
   * group does not occupy too — named v1 ones (`name=systemd`), v1 controllers it sets nothing for
   * (cpuset, net_cls…), a hybrid host's cgroup2 tree — with its process in it (see
   * `makeOtherCgroups` in _cgroup.ts). Not with a systemd scope (systemd puts it there). Removed
   * with the container.
   */
  readonly otherCgroups?: boolean;
  /**
   * OCI `--preserve-fds N`: the caller's fds 3 … 2+N pass to the command as they are, as runc's
   * `ExtraFiles` (socket activation's `LISTEN_FDS`, podman's `--preserve-fds`). Each must be open
   * (a `ConfigError` names the first that is not, before anything is made); its close-on-exec flag
   * is cleared. The runtime's own fds above them close at exec as always.
   */
  readonly preserveFds?: number;
  /**
   * OCI `--no-pivot` (runc's `NoPivotRoot`), for a host whose root is a ramdisk, which pivot_root
   * cannot leave: the rootfs's mount is moved over `/` and chroot'ed into, and the host's mounts
   * are detached from the container's mount namespace where the kernel allows (see _no_pivot.ts).
   * Weaker than pivot_root: the host's root filesystem stays under the container's root, where a
   * process with `CAP_SYS_CHROOT` can climb out of the chroot to it (as with runc's and crun's).
   */
  readonly noPivot?: boolean;
  /**
   * How the spec's event hooks (`onStarted`, `onReady`, `onOom`…, see `EventWatcher`) are fired:
   * the restart count they report and where their failures go (default: 0, and stderr). The
   * supervisor passes its own.
   */
  readonly events?: { readonly restartCount?: number; readonly log?: (line: string) => void };
  /**
   * True when the caller publishes the spec's `network.ports` itself for the container's life
   * (`publishPorts` of mod.ts, which the supervisor and `hako run` use too): a container only makes
   * the veth, and someone who outlives it must hold the proxy. Without it a spec with ports is
   * refused (`network.ports`) rather than run with nothing published.
   */
  readonly portsPublished?: boolean;
}

/** Failures of {@link Container.create} that were a forked child's crash, worth making it again. */
const FORK_CRASHES = new WeakSet<Error>();

/** Runs `fail` (which throws) and marks what it throws as a forked child's crash. */
function forkCrash(fail: () => never): never {
  try {
    return fail();
  } catch (e) {
    if (e instanceof Error) FORK_CRASHES.add(e);
    throw e;
  }
}

/** Marks an error thrown by `CreateOptions.onSync` (rethrown as it is). */
const HOOK_FAILURE = Symbol("hako.hookFailure");

/** How long the parent waits for the child's setup (or exec) before killing it. */
const SETUP_TIMEOUT_MS = 30_000;

/**
 * Reads one byte; returns it, or -1 at EOF or on error. Runs in the forked child, so its EINTR
 * loop stays written out: no closure allocated there (see ffi/fork.ts).
 */
function readByte(fd: number): number {
  const one = new Uint8Array(1);
  for (;;) {
    const n = libc().read(fd, one, 1n);
    if (n === -1 && errno() === EINTR) continue;
    return n === 1 ? one[0]! : -1;
  }
}

/** Polls `fd` for input for up to `timeoutMs` (0: just check). */
function readable(fd: number, timeoutMs: number): boolean {
  const pfd = new Int32Array(2);
  const view = new DataView(pfd.buffer);
  pfd[0] = fd;
  view.setInt16(4, POLLIN, true);
  const n = checkRetry(() => libc().poll(new Uint8Array(pfd.buffer), 1n, timeoutMs), "poll", [fd]);
  // POLLIN, POLLHUP or POLLERR: a read will not block.
  return n > 0 && view.getInt16(6, true) !== 0;
}

/**
 * Reads the child's status: the parsed JSON line of a forked child, or — from a native child
 * (`native`) — its 12-byte record turned into the same shape (`{ ready }`, `{ error }`, or `{ pid }`
 * when the child cloned the container's init into a joined PID namespace); null at EOF with
 * nothing read. Bytes read past the first line stay in `pending` for the next call.
 * Does not block the event loop: waits with {@link waitReadable} until `timeoutMs` is over.
 * @throws {Error} "timeout" when the child said nothing in time.
 */
async function readStatus(
  fd: number,
  timeoutMs: number,
  native: NativeChild | undefined,
  pending: number[],
): Promise<Record<string, unknown> | null> {
  const until = Date.now() + timeoutMs;
  if (native) {
    const r = await nextReport(fd, until, "read the container's status pipe");
    if (r === "timeout") throw new Error(`no word from the child in ${timeoutMs} ms`);
    if (r === "eof") return null;
    if (r === "garbled") return { error: { step: "setup", message: "garbled report from the native child" } };
    if (r.ready) return { ready: true };
    if ("pid" in r) return { pid: r.pid };
    if ("sync" in r) return { sync: true };
    return { error: native.failure(r.op, r.errno) };
  }
  const buf = new Uint8Array(4096);
  while (!pending.includes(10)) {
    if (!readable(fd, 0)) {
      const left = until - Date.now();
      if (left <= 0 || !(await waitReadable(fd, left))) throw new Error(`no word from the child in ${timeoutMs} ms`);
      continue;
    }
    const n = checkRetry(
      () => libc().read(fd, buf, BigInt(buf.length)),
      "read",
      [fd],
      "read the container's status pipe",
    );
    if (n === 0) break;
    pending.push(...buf.subarray(0, n));
  }
  if (pending.length === 0) return null;
  const end = pending.indexOf(10);
  const line = new TextDecoder().decode(new Uint8Array(pending.splice(0, end === -1 ? pending.length : end + 1)))
    .trim();
  try {
    return JSON.parse(line);
  } catch {
    return { error: { step: "setup", message: `garbled report from the child: ${JSON.stringify(line)}` } };
  }
}

/** What the forked child does: synchronous only, and it never returns. */
function childMain(
  ctx: SetupContext,
  fds: {
    go: number;
    start: number;
    status: number;
    stdio: readonly [number, number, number];
    /** Its cgroup v1 `tasks` files: `0` written into each first (the native child's join, see there). */
    cgroupTasks?: ReadonlyArray<{ readonly fd: number; readonly shown: string }>;
  },
  closeInChild: readonly number[],
  fifo?: PreparedExecFifo,
): never {
  const { _exit, dup2, write } = libc();
  const report = (obj: unknown) => writeAll(fds.status, new TextEncoder().encode(JSON.stringify(obj) + "\n"));
  let code = 125;
  try {
    // (the fork has one thread: writing 0 moves the whole process, without the global lock)
    for (const t of fds.cgroupTasks ?? []) {
      try {
        if (write(t.fd, new Uint8Array([0x30]), 1n) !== 1) {
          throw new SyscallError("write", errno(), [t.shown, "0"], "move itself into its cgroup");
        }
      } catch (e) {
        report({ error: describe("join-cgroups", e) });
        _exit(126);
      }
      closeFd(t.fd);
    }
    for (const fd of closeInChild) closeFd(fd);
    if (readByte(fds.go) !== 1) _exit(125); // the parent gave up on us: it reports why
    closeFd(fds.go);
    let failed = false;
    for (const step of stepsFor(ctx)) {
      try {
        runStep(ctx, step);
      } catch (e) {
        report({ error: describe(step.name, e) });
        failed = true;
        break;
      }
    }
    if (failed) _exit(126);
    report({ ready: true });
    if (ctx.execFifo === undefined) {
      if (readByte(fds.start) !== 1) _exit(125);
      closeFd(fds.start);
    }
    try {
      fds.stdio.forEach((fd, target) => {
        if (fd >= 0 && fd !== target) check(dup2(fd, target), "dup2", [fd, target]);
      });
      // Nothing of the runtime's (its sockets, pipes, files: a supervisor's listening socket) may
      // reach the command: every fd above 2 closes at exec, the status pipe with them.
      check(
        Number(
          libc().syscall(
            BigInt(SYS.close_range),
            BigInt(firstClosedFd(ctx.preserveFds)),
            0xffffffffn,
            BigInt(CLOSE_RANGE_CLOEXEC),
            0n,
            0n,
          ),
        ),
        "close_range",
      );
      if (fifo) runExecFifo(fifo);
      execCommand(ctx.spec);
    } catch (e) {
      report({ error: describe("exec", e) });
      code = 127;
    }
  } catch (e) {
    try {
      report({ error: describe("child", e) });
    } catch { /* nothing left to tell */ }
  }
  _exit(code);
  throw new Error("unreachable");
}

/**
 * The host uid and gid of root inside the container (its files are its own): the id maps' entry
 * for 0 inside, or — without one — the entry of the spec's user; the caller's own without a user
 * namespace.
 */
function hostIdsOfRoot(spec: ResolvedSpec): { uid: number; gid: number } {
  if (!spec.newNamespaces.includes("user")) return { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 };
  const host = (map: ResolvedSpec["uidMap"], id: number) => {
    const e = map.find((m) => m.inside === 0) ?? map.find((m) => id >= m.inside && id < m.inside + m.size);
    return e ? e.outside + (e.inside === 0 ? 0 : id - e.inside) : 0;
  };
  return { uid: host(spec.uidMap, spec.user.uid), gid: host(spec.gidMap, spec.user.gid) };
}

/** Deletes the host end of a container's veth pair (and so both ends); gone already is fine. */
function deleteVethHostEnd(name: string): void {
  try {
    deleteLink(name);
  } catch (e) {
    if (!(e instanceof SyscallError && e.code === "ENODEV")) throw e;
  }
}

/**
 * A container: made by {@link Container.create} (set up, waiting), run by {@link Container.start},
 * reaped by {@link Container.wait}, undone by {@link Container.delete} (or `await using`).
 */
export class Container {
  /** The container's name. */
  readonly name: string;
  /** The spec with its defaults. */
  readonly spec: ResolvedSpec;
  /** The rootfs directory on the host. */
  readonly rootfs: string;
  /** The cgroup, when the spec has one. */
  readonly cgroup: Group | undefined;
  #pid: number;
  #startFd: number;
  #statusFd: number;
  #started = false;
  #status: ContainerStatus | undefined;
  #deleted = false;
  #afterStopDone = false;
  /** A native child's program: its memory is the child's until it has exec'd. */
  #native: NativeChild | undefined;
  /** Bytes of the status pipe read past the last report. */
  #pending: number[];
  /** With `tty`: the pty's master (-1: none, or closed). */
  #terminal = -1;
  /** The cgroups made in the other hierarchies (see CreateOptions.otherCgroups), removed with it. */
  #otherDirs: readonly string[] = [];
  /** How event hooks are fired (see CreateOptions.events). */
  #events: CreateOptions["events"];
  /** Fires the event hooks while the command runs (none when the spec has none). */
  #watcher: EventWatcher | undefined;

  private constructor(
    spec: ResolvedSpec,
    pid: number,
    group: Group | undefined,
    startFd: number,
    statusFd: number,
    native: NativeChild | undefined,
    pending: number[],
  ) {
    this.name = spec.name;
    this.spec = spec;
    this.rootfs = spec.rootfsPath;
    this.cgroup = group;
    this.#pid = pid;
    this.#startFd = startFd;
    this.#statusFd = statusFd;
    this.#native = native;
    this.#pending = pending;
  }

  /** The container's init process, as the host sees it. */
  get pid(): number {
    return this.#pid;
  }

  /**
   * With the `tty` option: the master of the container's pty (close-on-exec). What the command
   * writes to its terminal is read from it; what is written to it is the command's input; a
   * `TIOCSWINSZ` on it resizes the terminal (and signals SIGWINCH inside). Reads end with EIO once
   * no process inside holds the terminal. The container owns it: {@link Container.delete} closes it.
   * Undefined without a terminal, or once deleted.
   */
  get terminal(): number | undefined {
    return this.#terminal < 0 ? undefined : this.#terminal;
  }

  /** How it ended, once {@link Container.wait} (or delete) reaped it. */
  get status(): ContainerStatus | undefined {
    return this.#status;
  }

  /**
   * Validates the spec, prepares the rootfs and the cgroup, forks the child into its namespaces
   * and waits until its setup is done (it then waits for {@link Container.start}).
   * @throws {SpecError} For a bad spec, before anything is touched.
   * @throws {SetupError} Naming the step that failed (`rootfs`, `cgroup`, `id-maps`, a child step…);
   *   whatever was made is undone first.
   */
  static async create(input: ContainerSpec, options: CreateOptions = {}): Promise<Container> {
    // A forked child (a copy of the runtime) dies now and then before its first report — a crash
    // of the copy, not of anything the container asked for (see ffi/fork.ts): everything made is
    // undone by then, so the container is made again, twice at most.
    for (let attempt = 1;; attempt++) {
      try {
        return await Container.#createOnce(input, options);
      } catch (e) {
        if (attempt >= 3 || !(e instanceof SetupError && FORK_CRASHES.has(e))) throw e;
        FORK_CRASHES.delete(e);
      }
    }
  }

  static async #createOnce(input: ContainerSpec, options: CreateOptions): Promise<Container> {
    let spec = resolveSpec(input);
    assertValidTty(options.tty, spec);
    // (a security-relevant field is never a silent no-op: who holds the proxy must say so)
    if ((input.network?.ports?.length ?? 0) > 0 && options.portsPublished !== true) {
      throw new SpecError([{
        path: "network.ports",
        message:
          "published ports need a process that holds their proxy while the container runs: hako run, hako start and the supervisor do; a library caller calls publishPorts(spec) (mod.ts) first, closes it after, and passes { portsPublished: true } to Container.create",
      }]);
    }
    if (options.tty && options.stdio) {
      throw new ConfigError(
        "tty",
        "the terminal is the command's stdin, stdout and stderr: give tty or stdio, not both",
      );
    }
    passPreservedFds(options.preserveFds);
    // A cgroup the spec names must not exist: checked before anything is touched (and again by
    // the exclusive mkdir, for one made meanwhile).
    if (spec.cgroup?.name !== undefined && existingCgroupDirs(spec.cgroup.name).length) {
      throw new SpecError([{
        path: "cgroup.name",
        message: `cgroup ${spec.cgroup.name} exists already (${
          existingCgroupDirs(spec.cgroup.name)[0]
        }): a container's cgroup is its own, and hako never adopts one it did not make (its processes would be killed with the container's)`,
      }]);
    }
    // rootless: cgroup delegation and id-map helpers are checked before anything is touched
    const rootlessLib = spec.rootless ? await import("./rootless.ts") : undefined;
    const rootless: RootlessPlan | undefined = rootlessLib?.checkRootless(spec);
    const undo: Array<() => void> = [];
    // (named as hako plan names the host's steps; "setup" and "console": the parent's own parts)
    const fail = (step: HostStepName | "setup" | "console", e: unknown): never => {
      if (e instanceof SetupError) throw e;
      throw new SetupError(step, e instanceof Error ? e.message : String(e), { cause: e });
    };
    try {
      // rootfs
      const r = spec.rootfs;
      if (typeof r === "object" && "tarball" in r) {
        try {
          const { extractRootfs } = await import("./tarball.ts");
          await extractRootfs(r.tarball, r.path, { owner: r.owner });
        } catch (e) {
          fail("rootfs", e);
        }
      }
      if (typeof r === "object" && "image" in r) {
        // A writable layer of its own over the image, mounted at the rootfs's path (src/image/rw.ts)
        try {
          const { attachImage } = await import("../image/rw.ts");
          const layer = attachImage(r.image, spec.rootfsPath, spec.name);
          undo.push(() => layer.release());
        } catch (e) {
          fail("image", e);
        }
      }
      try {
        if (typeof r === "object" && "builder" in r) {
          (await import("./rootfs.ts")).buildRootfs(r.path, { builder: r.builder });
        }
        // From here on the rootfs is its real path, checked not to be (nor hold) the host's root.
        const real = realRootfs(spec.rootfsPath);
        if (real !== spec.rootfsPath) spec = { ...spec, rootfsPath: real };
      } catch (e) {
        fail("rootfs", e);
      }

      if (spec.hooks.bootstrap) {
        try {
          await runBootstrap(spec.hooks.bootstrap, spec.rootfsPath, input);
        } catch (e) {
          fail("bootstrap", e);
        }
      }

      // cgroup: every container gets one of its own, made new (never adopted; see _cgroup.ts).
      // A systemd scope is started with the child in it, after the clone (cgroup-attach).
      let group: Group | undefined;
      const cgroupName = spec.cgroupName;
      const scope = spec.cgroup?.systemd;
      let scopeStarted = false;
      if (cgroupName) {
        try {
          group = new Group(cgroupName, containerGroupSpec(spec.cgroup, { devices: !spec.rootless }));
          if (scope) {
            const there = existingCgroupDirs(cgroupName);
            if (there.length) throw new Error(`cgroup ${cgroupName} exists already (${there[0]}): a scope is new`);
          } else {
            if (spec.cgroup?.name === undefined) removeStaleCgroup(cgroupName);
            group.create({ exclusive: true });
          }
        } catch (e) {
          fail("cgroup", e);
        }
        const g = group!;
        undo.push(() => {
          // (a scope not started is nothing of ours: one of that name made meanwhile is another
          // container's, and deleting the group would kill its processes)
          if (scope && !scopeStarted) return;
          try {
            g.delete({ kill: true });
          } finally {
            if (scopeStarted) stopSystemdScope(scope!.unit);
          }
          removeEmptyDefaultParent(cgroupName);
        });
      }

      // The container's own /etc files, in its directory under the state directory (after the
      // cgroup: its exclusive mkdir is what keeps two containers of one name apart)
      let files: ContainerFile[] = [];
      try {
        undo.push(() => removeContainerFiles(spec.name));
        files = writeContainerFiles(spec, hostIdsOfRoot(spec));
      } catch (e) {
        fail("etc-files", e);
      }

      // pipes (and /dev/null for stdio "null", opened on the host side so any rootfs works)
      const fds: number[] = [];
      undo.push(() => fds.forEach(closeFd));
      const [goR, goW] = pipe();
      fds.push(goR, goW);
      const [startR, startW] = pipe();
      fds.push(startR, startW);
      const [statusR, statusW] = pipe();
      fds.push(statusR, statusW);
      let nullFd = -1;
      // With a terminal: the console socket, whose other end the console step sends the master to.
      const [consoleR, consoleW] = options.tty ? socketPair() : [-1, -1];
      if (options.tty) fds.push(consoleR, consoleW);
      // With OCI hooks: the sync pipe (parent → child) of the hooks-sync step.
      const [syncR, syncW] = options.onSync ? pipe() : [-1, -1];
      if (options.onSync) fds.push(syncR, syncW);
      if (spec.stdio === "null" && !options.stdio && !options.tty) {
        nullFd = check(libc().open(cstr("/dev/null"), O_RDWR | O_CLOEXEC, 0), "open", ["/dev/null"]);
        fds.push(nullFd);
      }
      const io = options.stdio;
      const stdio = [io?.stdin ?? nullFd, io?.stdout ?? nullFd, io?.stderr ?? nullFd] as const;

      // The rootfs, for the child to enter without walking the host's directories above it.
      let rootFd = -1;
      if (spec.newNamespaces.includes("mount")) {
        rootFd = openat(AT_FDCWD, spec.rootfsPath, O_PATH | O_DIRECTORY | O_CLOEXEC);
        fds.push(rootFd);
      }

      // Idmapped binds: copied and mapped here, where the kernel allows it (see _idmap.ts).
      let idmapped: IdmappedMounts | undefined;
      try {
        idmapped = prepareIdmappedMounts(spec.mounts, spec.uidMap, spec.gidMap);
      } catch (e) {
        fail("idmap-mounts", e);
      }
      if (idmapped) undo.push(() => idmapped!.close());
      // tmpcopyup tmpfs whose target holds files in the image: made and filled here (_tmpcopyup.ts)
      let filled: TmpfsCopies | undefined;
      if (rootFd >= 0 && spec.mounts.some(isTmpcopyup)) {
        try {
          const { prepareTmpfsCopies, tmpfsToFill } = await import("./_tmpcopyup.ts");
          const resolve = (target: string) => targetInRootfs(spec.rootfsPath, target);
          filled = prepareTmpfsCopies(spec.mounts, tmpfsToFill(spec.mounts, rootFd, resolve), rootFd, resolve);
        } catch (e) {
          fail("tmpcopyup", e);
        }
        if (filled) undo.push(() => filled!.close());
      }
      const detached = new Map([...(idmapped?.fds ?? []), ...(filled?.fds ?? [])]);

      // fork
      const ctx: SetupContext = {
        spec,
        userns: spec.newNamespaces.includes("user"),
        statusFd: statusW,
        files,
        ...(rootFd >= 0 ? { rootFd } : {}),
        ...(detached.size ? { detached } : {}),
        ...(options.tty ? { console: { socket: consoleW } } : {}),
        ...(options.execFifo !== undefined ? { execFifo: options.execFifo } : {}),
        ...(options.onSync ? { hooksSync: syncR } : {}),
        ...(options.execFifo !== undefined && options.startSync ? { startSync: true } : {}),
        ...(options.preserveFds ? { preserveFds: options.preserveFds } : {}),
        ...(options.noPivot ? { noPivot: noPivotDetaches(readFileSync("/proc/self/mountinfo", "utf8")) } : {}),
        // (made and joined below, before the go byte: see makeOtherCgroups)
        ...(group && options.otherCgroups && !scope ? { otherCgroups: true } : {}),
      };
      const closeInChild = [
        goW,
        startW,
        statusR,
        ...(options.tty ? [consoleR] : []),
        ...(options.onSync ? [syncW] : []),
      ];
      // OCI mode: every other mounted hierarchy too (name=systemd, cpuset without a limit, a
      // hybrid host's cgroup2 tree), as runc's cgroupfs manager (a systemd scope is in them by
      // systemd's doing): made now, joined with the group's below
      let otherDirs: string[] = [];
      if (group && options.otherCgroups && !scope) {
        try {
          otherDirs = makeOtherCgroups(group.name, group.paths);
        } catch (e) {
          fail("cgroup", e);
        }
        // (undone after the child is killed and reaped: the clone's undo is pushed later)
        undo.push(() => removeOtherCgroups(otherDirs));
      }
      // Its cgroup v1 directories the child (native or forked) joins by itself, first thing: no global lock
      // taken, no grace period waited for (_cgroup.ts's selfJoinDirs); the parent joins it to the
      // others after the clone.
      const joinDirs = group && !scope ? [...group.paths, ...otherDirs] : [];
      const { self: selfDirs, v2: v2Dirs } = !spec.rootless
        ? selfJoinDirs(joinDirs)
        : { self: [] as string[], v2: [] as string[] };
      // Its cgroup2 directory (a v2 host's, a hybrid host's tree in OCI mode): the clone puts the
      // child there (CLONE_INTO_CGROUP: no write, no lock) where the kernel can
      const intoDir = v2Dirs.length === 1 && cloneIntoCgroupSupported() ? v2Dirs[0] : undefined;
      let intoFd = -1;
      const cgroupTasks: Array<{ fd: number; shown: string }> = [];
      try {
        for (const d of selfDirs) {
          const fd = check(libc().open(cstr(`${d}/tasks`), O_WRONLY | O_CLOEXEC, 0), "open", [`${d}/tasks`]);
          fds.push(fd);
          cgroupTasks.push({ fd, shown: `${d.slice(0, d.length - group!.name.length)}…/tasks` });
        }
        if (intoDir) {
          intoFd = check(libc().open(cstr(intoDir), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0), "open", [intoDir]);
          fds.push(intoFd);
        }
      } catch (e) {
        fail("cgroup-attach", e);
      }
      // The attach's grace period, for a cgroup.procs write the parent makes, started now and
      // passed while the child is compiled (see _prime.ts: it lasts longer than what comes before
      // the clone, it is over a moment after); awaited before the clone. Not for a child forked
      // from this engine (no thread-pool write near a fork).
      const parentJoins = joinDirs.filter((d) => !selfDirs.includes(d) && d !== intoDir);
      const primed = parentJoins.length && nativeSpawnSupported() ? primeAttach(detect().mounts) : undefined;
      // A child that runs no JavaScript where the spec allows (see native.ts), else a fork.
      const native = compileChild(
        ctx,
        {
          root: rootFd,
          go: goR,
          start: startR,
          status: statusW,
          stdio,
          closeInChild,
          ...(options.tty ? { console: consoleW } : {}),
          ...(options.onSync ? { sync: syncR } : {}),
          ...(cgroupTasks.length ? { cgroupTasks } : {}),
        },
      );
      // (a forked child joins its v1 directories the same way, first thing; its cgroup2 one, if
      // any, is the parent's write: the fork is no clone3)
      const selfJoined = [...selfDirs];
      if (!native && intoFd >= 0) fds.splice(fds.indexOf(intoFd), 1), closeFd(intoFd), intoFd = -1;
      if (!native) prepareSetup(ctx); // the standard steps' kernel calls, made ready before the fork
      const fifo = !native && ctx.execFifo !== undefined
        ? prepareExecFifo(ctx.execFifo, ctx.startSync === true, ctx.preserveFds)
        : undefined;
      await primed;
      let pid: number;
      try {
        const into = native && intoFd >= 0 ? spawnProgramInto(native.program, cloneFlags(spec), intoFd) : undefined;
        if (into !== undefined) selfJoined.push(intoDir!);
        pid = into ?? (native ? spawnProgram(native.program, cloneFlags(spec)) : forkProcess(cloneFlags(spec)));
      } catch (e) {
        native?.release();
        // ECHILD: the intermediate fork of a namespace clone died (ffi/fork.ts)
        if (!native && e instanceof SyscallError && e.code === "ECHILD") forkCrash(() => fail("clone", e));
        return fail("clone", e);
      }
      if (pid === 0) {
        childMain(ctx, { go: goR, start: startR, status: statusW, stdio, cgroupTasks }, closeInChild, fifo);
      }
      undo.push(() => native?.release()); // runs after the child below is reaped
      undo.push(() => {
        try {
          killProcess(pid, "KILL");
        } catch { /* gone */ }
        try {
          waitpid2(pid);
        } catch { /* reaped */ }
      });
      options.onForked?.(pid);
      // The parent keeps only goW, startW and statusR (and the console socket's end).
      for (const fd of [goR, startR, statusW, nullFd, rootFd, consoleW, syncR]) closeFd(fd);
      for (const { fd } of cgroupTasks) closeFd(fd); // (the child's copies are its own)
      if (intoFd >= 0) closeFd(intoFd);
      idmapped?.close(); // (the child has its own copies of the fds)
      filled?.close();
      fds.length = 0;
      fds.push(goW, startW, statusR);
      if (options.tty) fds.push(consoleR);
      if (options.onSync) fds.push(syncW);

      if (ctx.userns) {
        try {
          if (rootless) rootlessLib!.writeRootlessIdMaps(pid, spec, rootless);
          else {
            // setgroups stays allowed, as runc and crun leave it: a daemon inside that drops to a
            // user with setgroups/initgroups (httpd -u, apache) needs it; root writes the maps.
            writeIdMap(pid, "gid", spec.gidMap, { allowSetgroups: true });
            writeIdMap(pid, "uid", spec.uidMap);
          }
        } catch (e) {
          fail("id-maps", e); // (named as hako plan names the step)
        }
      }
      if (group && scope) {
        try {
          startSystemdScope(scope, spec.name, group, pid, (w) => console.warn(`hako: warning: ${w}`));
          scopeStarted = true;
          group.create(); // (the directories systemd leaves to others; the limits written in all)
        } catch (e) {
          fail("cgroup", e);
        }
      }
      if (group) {
        try {
          group.attach(pid, { skip: selfJoined });
          // (OCI mode's other hierarchies)
          for (const d of otherDirs) {
            if (!selfJoined.includes(d)) writeFileSync(`${d}/cgroup.procs`, String(pid));
          }
        } catch (e) {
          fail("cgroup-attach", e);
        }
      }
      if (spec.veth) {
        // The pair is made now, while the child waits for the go byte: its container end goes
        // straight into the child's network namespace, and its "network" step configures it.
        const v = spec.veth;
        const field = v.hostAddress ? "hostAddress" : "containerAddress";
        const address = v.hostAddress ?? v.containerAddress;
        try {
          // The subnet again, right before the pair is made: another container may have taken it
          // since the spec was validated.
          const problem = address ? hostClashProblem(parseCidr(address), hostNetworks(), v.host) : undefined;
          if (problem) throw new SetupError("veth", `network.veth.${field}: ${problem}`);
          createVethPair(v.host, v.container, { peerNetnsPid: pid });
        } catch (e) {
          fail("veth", e);
        }
        undo.push(() => deleteVethHostEnd(v.host));
        try {
          // Hardened before it has an address or is up (see HOST_LINK_SYSCTLS).
          for (const w of hardenHostLink(v.host, { disableIpv6: v.disableHostIpv6 })) {
            console.warn(`hako: warning: ${w}`);
          }
          if (v.hostAddress) addAddress(v.host, v.hostAddress);
          setLinkUp(v.host);
        } catch (e) {
          fail("veth", e);
        }
      }
      if (!writeAll(goW, new Uint8Array([1]))) {
        const e = new SyscallError("write", errno(), ["go pipe"]);
        if (!native && e.code === "EPIPE") forkCrash(() => fail("setup", e)); // (the child is gone before its go)
        fail("setup", e);
      }
      closeFd(goW);
      fds.splice(fds.indexOf(goW), 1);
      let report: Record<string, unknown> | null;
      const pending: number[] = [];
      // (past the sync point the caller's hooks have run: a crash then is not made again)
      let synced = false;
      try {
        for (;;) {
          report = await readStatus(statusR, SETUP_TIMEOUT_MS, native, pending);
          if (report?.sync === true && options.onSync) {
            // The hooks-sync step: the child waits until the hooks have run (a failure is thrown
            // as it is: the caller's message, runc's words).
            await options.onSync(pid).catch((e) => {
              throw Object.assign(e instanceof Error ? e : new Error(String(e)), { [HOOK_FAILURE]: true });
            });
            if (!writeAll(syncW, new Uint8Array([1]))) throw new SyscallError("write", errno(), ["sync pipe"]);
            closeFd(syncW);
            fds.splice(fds.indexOf(syncW), 1);
            synced = true;
            continue;
          }
          const next = report?.pid;
          if (!(typeof next === "number" && Number.isInteger(next) && next > 0)) break;
          // Joining a PID namespace, the child cloned the container's init into it (our own child,
          // CLONE_PARENT) and exits: from here on the container is that process.
          const first = pid;
          pid = next;
          try {
            waitpid2(first);
          } catch { /* reaped */ }
          options.onForked?.(pid);
        }
      } catch (e) {
        if (e instanceof Error && HOOK_FAILURE in e) throw e;
        return fail("setup", e);
      }
      if (!report || !report.ready) {
        const err = report?.error as ChildError | undefined;
        if (err) throw setupError(err);
        const r = waitpid2(pid, WNOHANG);
        const e = new SetupError("setup", `the child ended before reporting${r.pid ? ` (${r.status})` : ""}`);
        // (a forked child that crashed — SIGSEGV, SIGBUS, SIGABRT, SIGILL — before saying anything)
        if (!native && !report && !synced && r.pid && [4, 6, 7, 11].includes(r.status.signal ?? 0)) {
          FORK_CRASHES.add(e);
        }
        throw e;
      }
      let terminal = -1;
      if (options.tty) {
        // Sent by the console step before its ready report: already queued.
        try {
          terminal = receiveFd(consoleR) ?? -1;
        } catch (e) {
          fail("console", e);
        }
        if (terminal < 0) fail("console", new Error("the child sent no terminal over the console socket"));
        undo.push(() => closeFd(terminal));
        if (typeof options.tty === "object") {
          try {
            setWindowSize(terminal, options.tty);
          } catch (e) {
            fail("console", e);
          }
        }
        closeFd(consoleR);
        fds.splice(fds.indexOf(consoleR), 1);
      }
      const c = new Container(spec, pid, group, startW, statusR, native, pending);
      c.#terminal = terminal;
      c.#events = options.events;
      c.#otherDirs = otherDirs;
      return c;
    } catch (e) {
      for (const u of undo.reverse()) {
        try {
          u();
        } catch { /* best effort: the original error matters */ }
      }
      throw e;
    }
  }

  /**
   * Lets the child exec the command, and waits (up to 30 s, without blocking the event loop)
   * until the exec happened.
   * @throws {SetupError} Step "exec" when execve failed (the child is reaped, the cgroup deleted).
   */
  async start(): Promise<void> {
    if (this.#deleted) throw new SetupError("start", `container ${this.name} is deleted`);
    if (this.#started) throw new SetupError("start", `container ${this.name} is already started`);
    this.#started = true;
    const beforeStart = this.spec.hooks.beforeStart;
    if (beforeStart) {
      try {
        await runHostHook(beforeStart, { pid: this.#pid, name: this.name, spec: this.spec }, {
          HAKO_PID: String(this.#pid),
          HAKO_NAME: this.name,
        });
      } catch (e) {
        try {
          this.#cleanup();
        } catch { /* the hook's error matters */ }
        throw new SetupError("beforeStart", e instanceof Error ? e.message : String(e), { cause: e });
      }
    }
    const ok = writeAll(this.#startFd, new Uint8Array([1]));
    closeFd(this.#startFd);
    this.#startFd = -1;
    let report: Record<string, unknown> | null = null;
    let error: Error | undefined;
    try {
      report = ok
        ? await readStatus(this.#statusFd, SETUP_TIMEOUT_MS, this.#native, this.#pending)
        : { error: { step: "exec", message: "the child is gone" } };
    } catch (e) {
      error = new SetupError("exec", (e as Error).message, { cause: e });
    }
    closeFd(this.#statusFd);
    this.#statusFd = -1;
    if (!error && !report?.error) {
      this.#native?.release(); // exec'd: the program's memory is free
      this.#native = undefined;
    }
    const err = report?.error as ChildError | undefined;
    if (err) error = setupError(err);
    if (error) {
      this.#cleanup();
      throw error;
    }
    this.#watch();
  }

  /** Starts firing the spec's event hooks (onStarted now; onReady, onOom… as they come). */
  #watch(): void {
    const hooks = this.spec.hooks, readiness = this.spec.readiness;
    if (!EventWatcher.wanted(hooks, readiness)) return;
    const memory = this.cgroup?.memory;
    const pressureSpec = resolveMemoryPressure(this.spec.memoryPressure);
    this.#watcher = new EventWatcher({
      name: this.name,
      pid: this.#pid,
      hooks,
      ...(readiness ? { readiness } : {}),
      ...(this.#events?.restartCount ? { restartCount: this.#events.restartCount } : {}),
      ...(this.#events?.log ? { log: this.#events.log, note: this.#events.log } : {}),
      ...(memory
        ? {
          oomKills: () => memory.oomKills(),
          memory: () => {
            const s = memory.stats();
            return { current: s.current, limit: s.limit ?? null };
          },
        }
        : {}),
      // (the kernel's notifications on its memory cgroup; hako's 90 % where they cannot be armed)
      pressure: () => {
        const usage = memory
          ? () => {
            const s = memory.stats();
            return { current: s.current, limit: s.limit ?? null };
          }
          : undefined;
        return armPressure(
          memory ? { dir: memory.path, version: memory.version } : undefined,
          pressureSpec,
          usage,
        );
      },
      pressureWindowMs: pressureSpec.windowMs,
    });
    this.#watcher.start();
  }

  /**
   * Waits for the container's process to end, without blocking the event loop for long: a pidfd
   * (Linux 5.3+) says when it ended (see {@link waitReadable}); without one, polls with WNOHANG,
   * backing off to 20 ms.
   * @returns Its exit code or signal, and the shell's code; and what its cgroup counted when it
   *   ended, read before the cgroup is removed (`oomKilled`: the memory limit killed it or one of
   *   its processes; `failedForks`: its pids limit refused forks).
   */
  async wait(): Promise<ContainerStatus> {
    let delay = 1;
    let pidfd: number | undefined;
    try {
      for (;;) {
        if (this.#status) {
          await this.#afterStop();
          return this.#status;
        }
        let r;
        try {
          r = waitpid2(this.#pid, WNOHANG);
        } catch (e) {
          if (this.#status) return this.#status;
          if (e instanceof SyscallError && e.errno === ECHILD) {
            throw new SetupError("wait", `container ${this.name} was reaped elsewhere`);
          }
          throw e;
        }
        if (r.pid !== 0) {
          this.#setStatus(r.status);
          continue;
        }
        // Not reaped yet, so the pid cannot have been reused: the pidfd is this process's.
        pidfd ??= pidfdOpen(this.#pid);
        if (pidfd >= 0) await waitReadable(pidfd, 1000);
        else {
          await new Promise((res) => setTimeout(res, delay));
          delay = Math.min(delay * 2, 20);
        }
      }
    } finally {
      if (pidfd !== undefined) closeFd(pidfd);
    }
  }

  /**
   * Checks, without waiting, whether the container's process has ended (and reaps it if so).
   * Run {@link Container.wait} (which returns at once then) or {@link Container.delete} after it
   * for the afterStop hook and the clean-up.
   * @returns How it ended, or undefined while it runs.
   */
  poll(): ContainerStatus | undefined {
    if (this.#status) return this.#status;
    if (!this.#started || this.#deleted) return undefined;
    const r = waitpid2(this.#pid, WNOHANG);
    if (r.pid !== 0) this.#setStatus(r.status);
    return this.#status;
  }

  /**
   * Sends a signal to the container's init. Note: PID 1 of a new PID namespace only gets signals
   * it handles, except KILL and STOP.
   */
  kill(sig: Signal = "TERM"): void {
    if (this.#status) return;
    killProcess(this.#pid, sig);
  }

  /** The cgroup's statistics (empty without a cgroup). */
  stats(): GroupStats {
    return this.cgroup?.stats() ?? {};
  }

  /**
   * Kills and reaps the process if it is still there and deletes the cgroup. Idempotent. A rootfs
   * made by a builder is kept (it is a cache).
   */
  delete(): void {
    if (this.#deleted) return;
    try {
      this.#cleanup();
    } finally {
      void this.#afterStop();
    }
  }

  /** `await using` support: {@link Container.delete}. */
  [Symbol.asyncDispose](): Promise<void> {
    this.delete();
    return Promise.resolve();
  }

  /**
   * Runs the afterStop hook, once, when the process has ended; a failure is reported with
   * console.error, never thrown. A sync command (or sync callback) is done when this returns.
   */
  #afterStop(): Promise<void> {
    if (this.#status && this.#watcher) {
      const w = this.#watcher;
      this.#watcher = undefined;
      const exited = w.exited(this.#status);
      return this.#afterStopHook().then(() => exited);
    }
    return this.#afterStopHook();
  }

  #afterStopHook(): Promise<void> {
    const hook = this.spec.hooks.afterStop;
    if (!hook || !this.#status || this.#afterStopDone) return Promise.resolve();
    this.#afterStopDone = true;
    const report = (e: unknown) =>
      console.error(`hako: afterStop hook of container ${this.name} failed: ${e instanceof Error ? e.message : e}`);
    const status = this.#status;
    try {
      if (typeof hook !== "function") {
        runHostCommand(hook, { HAKO_NAME: this.name, HAKO_STATUS: String(status.shellCode) });
        return Promise.resolve();
      }
      return Promise.resolve(hook({ name: this.name, status })).catch(report);
    } catch (e) {
      report(e);
      return Promise.resolve();
    }
  }

  #setStatus(s: ProcessStatus): void {
    // The cgroup's counters now, while it still exists (#cleanup removes it).
    let oomKilled = 0, failedForks = 0;
    try {
      oomKilled = this.cgroup?.memory?.oomKills() ?? 0;
      failedForks = this.cgroup?.pids?.failedForks() ?? 0;
    } catch { /* counters are extras: the exit status matters */ }
    this.#status = {
      code: s.code,
      signal: s.signal,
      shellCode: s.shellCode,
      ...(oomKilled > 0 ? { oomKilled } : {}),
      ...(failedForks > 0 ? { failedForks } : {}),
    };
  }

  #cleanup(): void {
    this.#deleted = true;
    closeFd(this.#startFd);
    closeFd(this.#statusFd);
    closeFd(this.#terminal);
    this.#startFd = this.#statusFd = this.#terminal = -1;
    let first: unknown;
    // The veth pair was made after the fork: undone before the process is killed.
    if (this.spec.veth) {
      try {
        deleteVethHostEnd(this.spec.veth.host);
      } catch (e) {
        first = e;
      }
    }
    if (!this.#status) {
      try {
        killProcess(this.#pid, "KILL");
      } catch { /* already gone */ }
      try {
        const r = waitpid2(this.#pid);
        if (r.pid) this.#setStatus(r.status);
      } catch { /* reaped elsewhere */ }
      this.#native?.release(); // the child is gone: its program's memory is free
      this.#native = undefined;
      this.#status ??= { code: null, signal: 9, shellCode: 137 };
    }
    try {
      this.cgroup?.delete({ kill: true });
      removeOtherCgroups(this.#otherDirs);
      if (this.cgroup) removeEmptyDefaultParent(this.cgroup.name);
    } catch (e) {
      first = e;
    }
    if (this.cgroup && this.spec.cgroup?.systemd) {
      try {
        stopSystemdScope(this.spec.cgroup.systemd.unit);
      } catch (e) {
        first ??= e;
      }
    }
    try {
      removeContainerFiles(this.name);
    } catch (e) {
      first ??= e;
    }
    if (first) throw first;
  }
}

/**
 * Creates, starts and waits for a container, then deletes it.
 * @returns How its process ended.
 * @throws {SpecError} For a bad spec. @throws {SetupError} When a setup step or the exec failed.
 */
export async function run(spec: ContainerSpec): Promise<ContainerStatus> {
  const c = await Container.create(spec);
  try {
    await c.start();
    return await c.wait();
  } finally {
    c.delete();
  }
}
