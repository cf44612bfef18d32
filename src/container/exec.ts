/**
 * Runs a command inside an already running container — what `hako exec NAME -- cmd` and
 * `hako attach NAME` call. Like `runc exec` or `nsenter`: a forked child joins the container's
 * cgroups and namespaces, then forks again (a PID namespace applies only to children), and the
 * grandchild takes the container's user, workdir, rlimits, capabilities, no_new_privs and seccomp
 * filter — the same steps, from {@link SETUP_STEPS}, as the container's own command — and execs.
 *
 * ```
 * parent (event loop)          intermediate (host PID ns)             grandchild (container PID ns)
 * fork ───────────────────────▶ dup2 stdio, close other fds
 *                               join-cgroups: cgroup.procs ← own pid
 *                               join-namespaces: open all, then setns
 *                                 user ipc uts net pid cgroup time mnt
 *                               chdir("/")
 *                               fork ─────────────────────────────────▶ become-root, rlimits, workdir,
 *                               report {"pid": N}                       capabilities, user,
 *                               waitpid(N) ◀── exit status ──────────── no-new-privs, seccomp, execve
 * read reports until EOF        _exit(code) / kill(self, sig)
 * wait (WNOHANG + sleep) ◀──────┘
 * ```
 *
 * On x86-64 the children run no JavaScript ({@link execIn} tries `execNative` first): the first
 * child is a native program (`native.ts`'s `compileExecIn`) whose cgroups this process joins for it,
 * and it clones the command's process with `CLONE_PARENT`, so this process waits on the command
 * itself; the diagram is the forked path, still used without a native runner or rootless.
 *
 * Failures in either child reach the parent over a close-on-exec pipe as one JSON line naming
 * the step, and are thrown as a {@link SetupError} whose `cause` is the {@link SyscallError}
 * (call, errno). A successful execve closes the pipe, so EOF with no error means "running".
 *
 * @example Run `ls /` in a container, and an interactive shell
 * ```ts ignore
 * import { Container } from "./container.ts";
 * import { execIn } from "./exec.ts";
 * const c = await Container.create({ name: "web", rootfs: "/var/lib/hako/bb", command: "sleep 1000" });
 * await c.start();
 * const status = await execIn(c.pid, { argv: ["ls", "/"], spec: c.spec });
 * console.log(status.code); // 0
 * await execIn(c.pid, { argv: ["sh"], spec: c.spec, env: { TERM: "xterm" } }); // attach
 * ```
 * @module
 */
import { accessSync, constants as fsConstants, existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import process from "node:process";
import { check, errno, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { forkProcess } from "../../ffi/fork.ts";
import { detect } from "../cgroup/layout.ts";
import { writeKnob } from "../cgroup/_fs.ts";
import { primeAttach, primeSettled } from "../cgroup/_prime.ts";
import { chdir } from "../dir.ts";
import { ConfigError, fsError, SetupError, SyscallError } from "../errors.ts";
import { NAMESPACE_FLAGS, type NamespaceName } from "../namespace.ts";
import { kill as killProcess, type ProcessStatus, wait, waitpid2 } from "../process.ts";
import { setrlimit } from "../rlimit.ts";
import { idProblem } from "../user.ts";
import { inNestedUserNamespace } from "../_userns.ts";
import { compileSeccomp, DEFAULT_SECCOMP_PROFILE } from "../seccomp.ts";
import { type ChildError, closeFd, describe, pipe, readReports, report, setupError } from "./_pipe.ts";
import { compileExecIn, type NativeExec } from "./native.ts";
import { passPreservedFds } from "./_preserve_fds.ts";
import {
  cloneIntoCgroupSupported,
  holdNonDumpable,
  nativeSpawnSupported,
  nextReport,
  spawnProgram,
  spawnProgramInto,
} from "../../ffi/spawn.ts";
import { O_DIRECTORY } from "../../ffi/at.ts";
import { selfJoinDirs } from "./_cgroup.ts";
import { receiveFd, socketPair, type WindowSize } from "../../ffi/tty.ts";
import { assertValidTty, type ConsoleRequest } from "./_console.ts";
import { execCommand, runStep, SETUP_STEPS, type SetupContext, type SetupStep } from "./setup.ts";
import { DEFAULT_CAPABILITIES } from "./spec.ts";
import type { ResolvedSpec } from "./validate.ts";
import {
  EINTR,
  O_CLOEXEC,
  O_RDONLY,
  O_WRONLY,
  PR_SET_DUMPABLE,
  SIG_IGN,
  SIG_SETMASK,
  SIGINT,
  SIGQUIT,
} from "../../ffi/constants.ts";

/** Options for {@link execIn}. */
export interface ExecOptions {
  /** argv to run (looked up in the container's PATH, inside, when not absolute). */
  readonly argv: readonly string[];
  /**
   * The program to execve, absolute, inside, when it is not `argv[0]` (then `argv` is its whole
   * argv, `argv[0]` included, as execv's): an OCI hook's `path` and `args`.
   */
  readonly path?: string;
  /**
   * The container's resolved spec (e.g. `Container.spec`), when known: the command gets its env,
   * workdir, user, capabilities, rlimits, no_new_privs and seccomp program — what the container's
   * own command got. Without it: `PATH` and `HOME=/root`, workdir `/`, uid 0, the default
   * capabilities, no_new_privs and the default seccomp profile (never more than a default
   * container gets).
   */
  readonly spec?: ResolvedSpec;
  /** Extra environment on top of the spec's. */
  readonly env?: Readonly<Record<string, string>>;
  /** The working directory inside (default: the spec's workdir, or `/`). */
  readonly workdir?: string;
  /**
   * Who runs the command, inside (default: the spec's user, or 0:0). `gid` defaults to `uid`;
   * with `user` set, no supplementary groups are kept from the spec.
   */
  readonly user?: { readonly uid: number; readonly gid?: number };
  /** An fd of the caller that becomes the command's stdin (default: inherited). */
  readonly stdin?: number;
  /** An fd of the caller that becomes the command's stdout (default: inherited). */
  readonly stdout?: number;
  /** An fd of the caller that becomes the command's stderr (default: inherited). */
  readonly stderr?: number;
  /**
   * Called once the command has been exec'd, with its pid as the host sees it (to forward signals
   * to it, or to watch it). If it throws, the command is killed and the error rethrown.
   */
  readonly onStart?: (pid: number) => void;
  /**
   * Called right before a forked (JavaScript) child is made, when the native program cannot be
   * used: hako's CLI re-executes there with Bun's engine single-threaded (`Host.ensureSingleThreaded`).
   */
  readonly beforeFork?: () => void;
  /** How long the setup in the children may take before they are killed (default 30 000 ms). */
  readonly timeoutMs?: number;
  /**
   * A terminal of the container's own for the command (`hako exec -t`): its process opens a pty
   * of the container's devpts after joining the mount namespace (the `console` step), makes it its
   * controlling terminal and its stdin, stdout and stderr, and sends the master to this process,
   * which hands it to {@link ExecOptions.onTerminal}. `true`, or the window size it starts with
   * (set before the command execs). Not with `stdin`, `stdout` or `stderr`.
   */
  readonly tty?: boolean | WindowSize;
  /**
   * With `tty` (required then): called with the pty's master (close-on-exec) once the command has
   * exec'd, before `onStart`. The caller owns it: relay it (reads end with EIO once no process
   * holds the terminal), then close it. If it throws, the command is killed and the error rethrown.
   */
  readonly onTerminal?: (master: number) => void;
  /**
   * Called with a note on what the exec leaves out and why (a rootless caller's cgroups it cannot
   * join), before the command starts; the CLI prints it to stderr.
   */
  readonly onNote?: (note: string) => void;
  /**
   * The caller does not wait for the command (`hako oci exec --detach`, whose caller — a
   * containerd shim — reaps it as a child subreaper): on the forked path the intermediate child
   * exits once the command is forked instead of waiting for it, so the command's parent becomes
   * that subreaper, as runc leaves it (the native path's command is the caller's own child anyway,
   * `CLONE_PARENT`). The caller exits in `onStart`; the status returned is then not the command's.
   */
  readonly detach?: boolean;
  /**
   * OCI `exec --preserve-fds N`: the caller's fds 3 … 2+N pass to the command as they are (each
   * must be open; see `Container.create`'s `preserveFds`).
   */
  readonly preserveFds?: number;
}

/** What the children do, computed by the parent from /proc before the fork. */
export interface ExecPlan {
  /** The container's init, as the host sees it. */
  readonly pid: number;
  /** The `cgroup.procs` files the intermediate child writes its pid into, in /proc/PID/cgroup order. */
  readonly cgroupProcs: readonly string[];
  /**
   * The `cgroup.procs` files of the container's cgroups a rootless caller cannot write (not
   * delegated to it: the host's v1 hierarchies), left out of {@link cgroupProcs}.
   */
  readonly skippedCgroups: readonly string[];
  /** The namespaces to join (those that differ from the caller's), in the order they are joined. */
  readonly namespaces: readonly { readonly type: NamespaceName; readonly path: string }[];
  /** The profile the command gets (spec with the options applied). */
  readonly profile: ExecProfile;
}

/** The parts of a {@link ResolvedSpec} that the exec steps read. */
export type ExecProfile = Pick<
  ResolvedSpec,
  | "argv"
  | "execPath"
  | "env"
  | "workdir"
  | "user"
  | "capabilities"
  | "capabilitySets"
  | "ambientCapabilities"
  | "rlimits"
  | "noNewPrivs"
  | "seccomp"
  | "seccompProgram"
  | "rootless"
>;

/**
 * The namespace join order: user first (joining it gives the capabilities over the namespaces it
 * owns), mount last (after it, /proc/PID paths may resolve to the container's /proc). Every fd is
 * opened before the first setns for the same reason.
 */
const JOIN_ORDER: readonly NamespaceName[] = ["user", "ipc", "uts", "net", "pid", "cgroup", "time", "mount"];

/**
 * The container steps the grandchild runs: those setup.ts marks `exec: true`, in
 * {@link SETUP_STEPS}'s order — become-root (in a user namespace the joined process still carries
 * its unmapped host ids), rlimits (before privileges go), workdir, new-session, console,
 * capabilities (the bounding set), user, capability-sets, no-new-privs, seccomp (last before exec).
 * One definition for both: the same steps, the same calls.
 */
export const EXEC_STEPS: readonly SetupStep[] = SETUP_STEPS.filter((s) => s.exec);

const SETUP_TIMEOUT_MS = 30_000;

/**
 * Checks `pid` and the options, collecting every problem.
 * @throws {ConfigError} Naming the field (`pid`, `argv`, `env.X`, `workdir`, `user.uid`, `stdout`…).
 */
export function assertValidExec(pid: number, opts: ExecOptions): void {
  const problems: string[] = [];
  const bad = (path: string, message: string) => problems.push(`${path}: ${message}`);
  if (!Number.isInteger(pid) || pid <= 0) bad("pid", `must be a positive integer, got ${pid}`);
  else if (!existsSync(`/proc/${pid}`)) bad("pid", `no process ${pid}`);
  if (!Array.isArray(opts?.argv) || opts.argv.length === 0) bad("argv", "is empty: give the command to run");
  else {
    opts.argv.forEach((a, i) => {
      if (typeof a !== "string") bad(`argv[${i}]`, "must be a string");
      else if (a.includes("\0")) bad(`argv[${i}]`, "must not contain a NUL character");
    });
    if (opts.argv[0] === "") bad("argv[0]", "must not be empty");
  }
  if (opts?.path !== undefined) {
    if (typeof opts.path !== "string" || !opts.path.startsWith("/") || opts.path.includes("\0")) {
      bad("path", "must be an absolute path without a NUL character");
    }
  }
  for (const [k, v] of Object.entries(opts?.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) bad(`env.${k}`, "is not a valid variable name");
    if (typeof v !== "string" || v.includes("\0")) bad(`env.${k}`, "must be a string without NUL");
  }
  if (opts?.workdir !== undefined && (typeof opts.workdir !== "string" || !opts.workdir.startsWith("/"))) {
    bad("workdir", `must be an absolute path, got ${JSON.stringify(opts.workdir)}`);
  }
  if (opts?.user !== undefined) {
    const uid = idProblem(opts.user?.uid);
    if (uid) bad("user.uid", uid);
    const gid = opts.user?.gid === undefined ? undefined : idProblem(opts.user.gid);
    if (gid) bad("user.gid", gid);
  }
  for (const k of ["stdin", "stdout", "stderr"] as const) {
    const v = opts?.[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) bad(k, `must be a file descriptor, got ${v}`);
    if (v !== undefined && opts.tty) bad(k, "cannot be given with tty: the terminal is the command's stdio");
  }
  try {
    assertValidTty(opts?.tty);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    bad(e.path, e.message.slice(e.path.length + 2));
  }
  if (opts?.tty && typeof opts.onTerminal !== "function") {
    bad("onTerminal", "is required with tty: it receives the terminal's master");
  }
  if (problems.length === 1) {
    const [path, ...rest] = problems[0]!.split(": ");
    throw new ConfigError(path!, rest.join(": "));
  }
  if (problems.length) throw new ConfigError("", `${problems.length} problems:\n  ${problems.join("\n  ")}`);
}

/** The namespace files of `pid` that differ from the caller's, in {@link JOIN_ORDER}. */
function namespacesToJoin(pid: number): ExecPlan["namespaces"] {
  const out: Array<{ type: NamespaceName; path: string }> = [];
  for (const type of JOIN_ORDER) {
    const file = type === "mount" ? "mnt" : type;
    const path = `/proc/${pid}/ns/${file}`;
    let theirs: string, ours: string;
    try {
      ours = readlinkSync(`/proc/self/ns/${file}`);
    } catch {
      continue; // this kernel has no such namespace kind
    }
    try {
      theirs = readlinkSync(path);
    } catch (e) {
      const err = fsError(e, "readlink", path, `read the namespaces of process ${pid}`);
      const why = err instanceof SyscallError && err.code === "ENOENT"
        ? `process ${pid} has exited (its namespaces are gone)`
        : err.message;
      throw new SetupError("join-namespaces", why, { cause: err });
    }
    if (theirs !== ours) out.push({ type, path });
  }
  return out;
}

/** Whether the caller lacks the host's root: not uid 0, or uid 0 of a nested user namespace (src/_userns.ts). */
function callerRootless(): boolean {
  return (process.geteuid?.() ?? 0) !== 0 || inNestedUserNamespace((path) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return undefined;
    }
  });
}

/**
 * The `cgroup.procs` files for every hierarchy `pid` is in, from /proc/PID/cgroup: v1 lines
 * `N:ctrl,ctrl:/path` under the mount of their first controller, the v2 line `0::/path` under the
 * cgroup2 mount. Hierarchies that are not mounted, named v1 hierarchies (`name=systemd`), and
 * cgroups outside the caller's cgroup namespace are left out.
 */
function cgroupProcsFiles(pid: number): string[] {
  const file = `/proc/${pid}/cgroup`;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new SetupError("join-cgroups", `cannot read ${file}`, { cause: fsError(e, "read", file) });
  }
  let layout;
  try {
    layout = detect();
  } catch {
    return []; // no cgroup filesystem mounted: nothing to join
  }
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line);
    if (!m) continue;
    const [, id, ctrls, path] = m;
    // (a cgroup outside the caller's cgroup namespace shows as "/.."…: it cannot be named from
    // here, and the path would lead out of the hierarchy: that one is not joined)
    if (path!.split("/").includes("..")) continue;
    const rel = path === "/" ? "" : path!;
    if (id === "0" && ctrls === "") {
      if (layout.unified) out.push(`${layout.unified}${rel}/cgroup.procs`);
      continue;
    }
    // (a named hierarchy, name=systemd: the container's cgroup there too, as runc's exec joins
    // every path of the container's — on a legacy host systemd tracks a scope's processes there)
    const named = ctrls!.startsWith("name=")
      ? layout.mounts.find((m) => m.version === 1 && m.name === ctrls!.slice(5))?.mountPoint
      : undefined;
    const mount = named ?? ctrls!.split(",").map((c) => layout.v1[c]).find((p) => p !== undefined);
    if (mount) out.push(`${mount}${rel}/cgroup.procs`);
  }
  return out;
}

/** The profile the command gets: the spec (or the defaults) with the options on top. */
function profileFor(opts: ExecOptions): ExecProfile {
  const spec = opts.spec;
  const base: ExecProfile = spec ?? {
    argv: [],
    env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" },
    workdir: "/",
    user: { uid: 0, gid: 0, groups: [] },
    capabilities: DEFAULT_CAPABILITIES,
    rlimits: {},
    noNewPrivs: true,
    seccomp: DEFAULT_SECCOMP_PROFILE,
    // (compiled once a process, through root's cache across processes: a cold `hako exec` skips it)
    seccompProgram: compileSeccomp(DEFAULT_SECCOMP_PROFILE, { capabilities: DEFAULT_CAPABILITIES, cache: true }),
    rootless: callerRootless(),
  };
  return {
    argv: [...opts.argv],
    ...(opts.path ? { execPath: opts.path } : {}),
    env: { ...base.env, ...opts.env },
    workdir: opts.workdir ?? base.workdir,
    user: opts.user ? { uid: opts.user.uid, gid: opts.user.gid ?? opts.user.uid, groups: [] } : base.user,
    // The container's capabilities; the sets follow the user the command runs as (capabilitySetsFor):
    // `--user 1000` gets the capabilities the spec names in its ambient set, as the container's
    // own non-root command would.
    capabilities: base.capabilities,
    ...(base.capabilitySets ? { capabilitySets: base.capabilitySets } : {}),
    ...(base.ambientCapabilities ? { ambientCapabilities: base.ambientCapabilities } : {}),
    rlimits: base.rlimits,
    noNewPrivs: base.noNewPrivs,
    seccomp: base.seccomp,
    seccompProgram: base.seccompProgram,
    rootless: base.rootless,
  };
}

/**
 * Validates and computes what {@link execIn} will do for `pid` (reads /proc; changes nothing).
 * @param pid The container's init, as the host sees it.
 * @param opts What to run, and how.
 * @returns The cgroups and namespaces to join, and the profile of the command.
 * @throws {ConfigError} For a bad option or a pid that does not exist.
 * @throws {SetupError} Step `join-namespaces` or `join-cgroups` when /proc cannot be read (the
 *   process has exited).
 */
export function planExec(pid: number, opts: ExecOptions): ExecPlan {
  assertValidExec(pid, opts);
  const all = cgroupProcsFiles(pid);
  // Rootless (or root of a nested user namespace, rootless podman's): the cgroups the caller cannot
  // write are not joined (the command stays in the caller's own there), as runc does for a rootless
  // container without cgroup delegation (its rootless cgroup manager ignores the join's EACCES);
  // root joins every one or fails.
  const rootless = callerRootless();
  const cgroupProcs = rootless ? all.filter(writable) : all;
  return {
    pid,
    cgroupProcs,
    skippedCgroups: all.filter((f) => !cgroupProcs.includes(f)),
    namespaces: namespacesToJoin(pid),
    profile: profileFor(opts),
  };
}

function writable(path: string): boolean {
  try {
    accessSync(path, fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Closes every fd but `keep` (the caller's runtime fds must not reach the container). */
function closeOtherFds(keep: readonly number[]): void {
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return;
  }
  const { close } = libc();
  for (const name of fds) {
    const fd = Number(name);
    if (Number.isInteger(fd) && !keep.includes(fd)) close(fd);
  }
}

/**
 * The first child: joins the cgroups and namespaces, forks the grandchild, waits for it and ends
 * the way it ended. Synchronous only; never returns.
 */
function intermediateMain(
  plan: ExecPlan,
  opts: ExecOptions,
  statusW: number,
  term?: ConsoleRequest,
  v1Dirs: readonly string[] = [],
): never {
  const { _exit, dup2, open, write, setns, getpid, waitpid, kill, signal, sigprocmask, prctl } = libc();
  let step = "non-dumpable";
  try {
    // First of all: this copy of the runtime (its memory, environment and fds) joins a live
    // container, whose processes must not reach it through /proc/PID; the grandchild inherits it.
    check(prctl(PR_SET_DUMPABLE, 0n, 0n, 0n, 0n), "prctl", ["PR_SET_DUMPABLE", 0]);
    step = "stdio";
    for (const [fd, target] of [[opts.stdin, 0], [opts.stdout, 1], [opts.stderr, 2]] as const) {
      if (fd !== undefined && fd !== target) check(dup2(fd, target), "dup2", [fd, target], `redirect fd ${target}`);
    }
    const preserved = Array.from({ length: opts.preserveFds ?? 0 }, (_, i) => 3 + i);
    closeOtherFds([0, 1, 2, statusW, ...preserved, ...(term ? [term.socket] : [])]);

    step = "join-cgroups";
    const self = String(getpid());
    // (libc's calls, not node:fs: in this forked copy every fd of the runtime's is closed behind
    // its back, and Deno's node:fs wrote a cgroup.procs write to a preserved fd)
    const pidText = new TextEncoder().encode(self);
    const zero = new TextEncoder().encode("0");
    for (const procs of plan.cgroupProcs) {
      // A v1 directory by its tasks file, 0: this fork has one thread, which moves itself — the
      // kernel's global lock not taken (_cgroup.ts's selfJoinDirs); else (or where that file may
      // not be opened) its pid into cgroup.procs
      const dir = procs.slice(0, -"/cgroup.procs".length);
      const tasks = v1Dirs.includes(dir) ? open(cstr(`${dir}/tasks`), O_WRONLY | O_CLOEXEC, 0) : -1;
      const [fd, file, text] = tasks >= 0 ? [tasks, `${dir}/tasks`, zero] : [
        check(open(cstr(procs), O_WRONLY | O_CLOEXEC, 0), "open", [procs], "join the container's cgroup"),
        procs,
        pidText,
      ] as const;
      let n: number;
      while ((n = Number(write(fd, text, BigInt(text.length)))) === -1 && errno() === EINTR);
      if (n === -1) throw new SyscallError("write", errno(), [file], "join the container's cgroup");
      closeFd(fd);
    }

    step = "join-namespaces";
    // Every fd first: after setns(user) or setns(mnt), /proc/PID may no longer be reachable.
    const fds: Array<{ type: NamespaceName; path: string; fd: number }> = [];
    for (const ns of plan.namespaces) {
      const fd = check(
        open(cstr(ns.path), O_RDONLY | O_CLOEXEC, 0),
        "open",
        [ns.path],
        "open the container's namespace",
      );
      fds.push({ ...ns, fd });
    }
    for (const ns of fds) {
      check(setns(ns.fd, NAMESPACE_FLAGS[ns.type]), "setns", [ns.path], `join the container's ${ns.type} namespace`);
      closeFd(ns.fd);
    }
    // setns(CLONE_NEWNS) already puts root and cwd at the namespace's root (the pivot_root'ed
    // rootfs); chdir("/") makes the cwd explicit whether or not a mount namespace was joined.
    chdir("/");

    step = "fork";
    const child = forkProcess(0); // a raw clone here: this process is itself a forked child
    if (child === 0) grandchildMain(plan, statusW, term);
    report(statusW, { pid: child });
    closeFd(statusW);
    if (opts.detach) _exit(0); // (the command goes to the caller's subreaper: see ExecOptions.detach)

    // The terminal's ^C and ^\ are for the command (in the same process group): this process
    // only relays how it ended.
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    const st = new Int32Array(1);
    // (a forked process: the EINTR loop stays written out, no closure allocated here; see ffi/fork.ts)
    while (waitpid(child, st, 0) === -1 && errno() === EINTR);
    const raw = st[0]!;
    const sig = raw & 0x7f;
    if (sig === 0) _exit((raw >> 8) & 0xff);
    // Killed by a signal: die of the same one (without a core dump of the runtime), else 128+sig.
    try {
      setrlimit("CORE", 0);
    } catch { /* a core is not worse than no status */ }
    signal(sig, 0n);
    sigprocmask(SIG_SETMASK, new Uint8Array(128), null);
    kill(getpid(), sig);
    _exit(128 + sig);
  } catch (e) {
    report(statusW, { error: describe(step, e) });
  }
  _exit(125);
  throw new Error("unreachable");
}

/** The grandchild, in the container's PID namespace: the container's steps, then execve. */
function grandchildMain(plan: ExecPlan, statusW: number, term?: ConsoleRequest): never {
  // Only the fields of ExecProfile are read by EXEC_STEPS and execCommand.
  const ctx: SetupContext = {
    spec: plan.profile as ResolvedSpec,
    userns: plan.namespaces.some((n) => n.type === "user"),
    ...(term ? { console: term } : {}),
  };
  let step = "setup";
  let code = 126;
  try {
    for (const s of EXEC_STEPS) {
      if (!s.when(ctx)) continue;
      step = s.name;
      runStep(ctx, s);
    }
    step = "exec";
    code = 127;
    execCommand(ctx.spec);
  } catch (e) {
    report(statusW, { error: describe(step, e) });
  }
  libc()._exit(code);
  throw new Error("unreachable");
}

/** Kills (if there) and reaps the intermediate child; also kills the grandchild when known. */
function abandon(child: number, grandchild: number | undefined): void {
  for (const p of [grandchild, child]) {
    if (p === undefined) continue;
    try {
      killProcess(p, "KILL");
    } catch { /* gone */ }
  }
  try {
    waitpid2(child);
  } catch { /* reaped */ }
}

/**
 * Runs `argv` inside the container whose init is `pid` and waits for it, like `runc exec`: the
 * command joins the container's cgroups and namespaces and gets its user, workdir, rlimits,
 * capabilities, no_new_privs and seccomp filter (from `opts.spec`). stdio is inherited unless
 * `stdin`/`stdout`/`stderr` are given, so an interactive shell works on the caller's terminal.
 * The event loop is never blocked: the setup report and the exit are polled.
 *
 * A command that cannot be run (not found, not executable) throws a {@link SetupError} with step
 * `exec` (its `cause` is the execve SyscallError, e.g. ENOENT) — never a bare exit code 127.
 *
 * @param pid The container's init, as the host sees it (`Container.pid`).
 * @param opts The command and how to run it.
 * @returns How the command ended: `code`, or `signal` and `shellCode` 128+signal.
 * @throws {ConfigError} Before anything is done: empty argv, bad options, no process `pid`.
 * @throws {SetupError} Naming the step that failed (`join-cgroups`, `join-namespaces`, `fork`,
 *   `become-root`, `workdir`, `capabilities`, `user`, `capability-sets`, `seccomp`, `exec`…); `cause` carries the
 *   call and errno.
 *
 * @example
 * ```ts ignore
 * const status = await execIn(c.pid, { argv: ["sh", "-c", "exit 7"], spec: c.spec });
 * console.log(status.code); // 7
 * ```
 */
export async function execIn(pid: number, opts: ExecOptions): Promise<ProcessStatus> {
  const plan = planExec(pid, opts);
  passPreservedFds(opts.preserveFds);
  if (plan.skippedCgroups.length) {
    opts.onNote?.(
      `not joining the container's cgroups that uid ${
        process.geteuid?.() ?? 0
      } cannot write (rootless, not delegated): ${
        plan.skippedCgroups.map((f) => f.replace(/\/cgroup\.procs$/, "")).join(", ")
      }; the command stays in the caller's own there`,
    );
  }
  if (!opts.tty) return await execPlanned(plan, opts);
  // The console socket: the command's process sends the pty's master over it.
  const [consoleR, consoleW] = socketPair();
  try {
    const size = typeof opts.tty === "object" ? { rows: opts.tty.rows, columns: opts.tty.columns } : undefined;
    return await execPlanned(plan, opts, { socket: consoleW, ...(size ? { size } : {}) }, consoleR);
  } finally {
    closeFd(consoleR), closeFd(consoleW);
  }
}

/**
 * With a terminal: takes the master the command's process sent (before it exec'd) off the
 * console socket and hands it to `onTerminal`.
 * @throws {SetupError} Step `console` when none came.
 */
function deliverTerminal(consoleR: number, opts: ExecOptions): void {
  let master: number | undefined;
  try {
    master = receiveFd(consoleR);
  } catch (e) {
    throw new SetupError("console", e instanceof Error ? e.message : String(e), { cause: e });
  }
  if (master === undefined) throw new SetupError("console", "the command's process sent no terminal");
  try {
    opts.onTerminal!(master);
  } catch (e) {
    closeFd(master);
    throw e;
  }
}

/**
 * Whether {@link execIn} into a container of `spec` forks a JavaScript child rather than running
 * native programs: no native runner (another architecture, `HAKO_NATIVE_SPAWN=0`), or a time
 * namespace to join (native.ts's `compileExecIn`). hako's CLI makes Bun's engine single-threaded
 * first then (`beforeFork` is the safety net).
 * @param spec The container's resolved spec.
 */
export function execForksJs(spec: ResolvedSpec): boolean {
  const time = spec.newNamespaces.includes("time") || spec.joinNamespaces.some((j) => j.type === "time");
  return !nativeSpawnSupported() || time;
}

/** {@link execIn} once planned (and, with a terminal, its console socket made). */
async function execPlanned(
  plan: ExecPlan,
  opts: ExecOptions,
  term?: ConsoleRequest,
  consoleR = -1,
): Promise<ProcessStatus> {
  const native = await execNative(plan, opts, term, consoleR);
  if (native) return native;
  await primeSettled(); // (a caller's early prime: no thread-pool write in flight at the fork)
  // (its v1 directories, which the intermediate joins by itself: found here, before the fork)
  const v1Dirs = selfJoinDirs(plan.cgroupProcs.map((f) => f.slice(0, -"/cgroup.procs".length))).self;
  opts.beforeFork?.();
  const [statusR, statusW] = pipe();
  let child: number;
  try {
    child = forkProcess(0);
  } catch (e) {
    closeFd(statusR), closeFd(statusW);
    throw new SetupError("fork", e instanceof Error ? e.message : String(e), { cause: e });
  }
  if (child === 0) {
    closeFd(statusR);
    intermediateMain(plan, opts, statusW, term, v1Dirs);
  }
  closeFd(statusW);
  let grandchild: number | undefined;
  let reports: Record<string, unknown>[];
  try {
    reports = await readReports(statusR, opts.timeoutMs ?? SETUP_TIMEOUT_MS, (o) => {
      if (typeof o.pid === "number") grandchild = o.pid;
    });
  } catch (e) {
    abandon(child, grandchild);
    throw new SetupError("exec", e instanceof Error ? e.message : String(e), { cause: e });
  } finally {
    closeFd(statusR);
  }
  const failure = reports.find((r) => r.error)?.error as Parameters<typeof setupError>[0] | undefined;
  if (failure) {
    await wait(child);
    throw setupError(failure);
  }
  if (grandchild === undefined) {
    const status = await wait(child);
    throw new SetupError("exec", `the child ended before the command started (${status})`);
  }
  try {
    if (term) deliverTerminal(consoleR, opts);
    opts.onStart?.(grandchild);
  } catch (e) {
    abandon(child, grandchild);
    throw e;
  }
  return await wait(child);
}

/**
 * {@link execIn} with native children (see `native.ts`'s `compileExecIn`): no fork of the
 * runtime. The first child's cgroups are joined by this process before its go byte; the command's
 * process is this process's own child (`CLONE_PARENT`), waited on directly. Undefined when the
 * forked path must run it.
 */
async function execNative(
  plan: ExecPlan,
  opts: ExecOptions,
  term?: ConsoleRequest,
  consoleR = -1,
): Promise<ProcessStatus | undefined> {
  const [goR, goW] = pipe();
  const [statusR, statusW] = pipe();
  const fds = [goR, goW, statusR, statusW];
  const closeAll = () => fds.splice(0).forEach(closeFd);
  // The container's cgroups: its v1 directories joined by the child itself, its cgroup2 one at the
  // clone (CLONE_INTO_CGROUP) — neither takes the kernel's global lock (_cgroup.ts's
  // selfJoinDirs); what is left, the parent writes after the clone
  const procsDir = (f: string) => f.slice(0, -"/cgroup.procs".length);
  const classified = nativeSpawnSupported()
    ? selfJoinDirs(plan.cgroupProcs.map(procsDir))
    : { self: [] as string[], v2: [] as string[] };
  // (a file it may not open — a delegated subtree whose tasks file is not the caller's — is left
  // to the parent's cgroup.procs write, which names any error)
  const self: string[] = [];
  const cgroupTasks: Array<{ fd: number; shown: string }> = [];
  for (const d of classified.self) {
    const fd = libc().open(cstr(`${d}/tasks`), O_WRONLY | O_CLOEXEC, 0);
    if (fd < 0) continue;
    fds.push(fd);
    self.push(d);
    cgroupTasks.push({ fd, shown: `${d}/tasks` });
  }
  const v2 = classified.v2;
  let intoFd = v2.length === 1 && cloneIntoCgroupSupported()
    ? libc().open(cstr(v2[0]!), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
    : -1;
  if (intoFd >= 0) fds.push(intoFd);
  else intoFd = -1;
  const parentJoins = (into: boolean) =>
    plan.cgroupProcs.filter((f) => !self.includes(procsDir(f)) && !(into && procsDir(f) === v2[0]));
  // The join's grace period, for a write the parent makes: started now and passed while the child
  // is compiled (_prime.ts)
  const primed = parentJoins(intoFd >= 0).length ? primeAttach(detect().mounts) : undefined;
  let native: NativeExec | undefined;
  try {
    native = compileExecIn(
      plan.profile as ResolvedSpec,
      plan.namespaces.map((n) => ({ path: n.path, flag: NAMESPACE_FLAGS[n.type] })),
      EXEC_STEPS,
      {
        go: goR,
        status: statusW,
        stdio: [opts.stdin, opts.stdout, opts.stderr],
        ...(term ? { console: term } : {}),
        ...(opts.preserveFds ? { preserveFds: opts.preserveFds } : {}),
        ...(cgroupTasks.length ? { cgroupTasks } : {}),
      },
      plan.namespaces.some((n) => n.type === "user"),
    );
  } catch (e) {
    closeAll();
    throw e;
  }
  await primed;
  if (!native) {
    closeAll();
    return undefined;
  }
  let child: number;
  // The children share this process's memory and make it non-dumpable: given back once they are done.
  const releaseDumpable = holdNonDumpable();
  let bornIn = false;
  try {
    const into = intoFd >= 0 ? spawnProgramInto(native.program, 0, intoFd) : undefined;
    bornIn = into !== undefined;
    child = into ?? spawnProgram(native.program, 0);
  } catch (e) {
    releaseDumpable();
    closeAll();
    throw new SetupError("fork", e instanceof Error ? e.message : String(e), { cause: e });
  }
  // The parent keeps goW and statusR (the child has its own copies of the cgroup fds).
  for (const fd of fds) if (fd !== goW && fd !== statusR) closeFd(fd);
  fds.splice(0, fds.length, goW, statusR);
  let grandchild: number | undefined;
  let failure: ChildError | undefined;
  try {
    try {
      for (const procs of parentJoins(bornIn)) writeKnob(procs, String(child), "join the container's cgroup");
    } catch (e) {
      throw new SetupError("join-cgroups", e instanceof Error ? e.message : String(e), { cause: e });
    }
    libc().write(goW, new Uint8Array([1]), 1n);
    closeFd(goW);
    fds.splice(fds.indexOf(goW), 1);
    // Records until EOF: the command's pid, or a failed op; EOF when every copy of the write end
    // is closed (the first child's exit, the command's execve).
    const until = Date.now() + (opts.timeoutMs ?? SETUP_TIMEOUT_MS);
    for (;;) {
      const r = await nextReport(statusR, until, "read the exec status pipe");
      if (r === "timeout") {
        throw new SetupError("exec", `no word from the child in ${opts.timeoutMs ?? SETUP_TIMEOUT_MS} ms`);
      }
      if (r === "eof") break;
      if (r === "garbled") continue;
      if ("pid" in r) grandchild = r.pid;
      else if (!r.ready && "op" in r) failure ??= native.failure(r.op, r.errno);
    }
  } catch (e) {
    abandon(child, grandchild);
    if (grandchild !== undefined) await wait(grandchild).catch(() => {});
    releaseDumpable();
    throw e;
  } finally {
    fds.splice(0).forEach(closeFd);
  }
  // EOF: the first child is gone and the command has exec'd (a memory of its own) or failed.
  releaseDumpable();
  void native.program; // its memory was the children's until the EOF above
  await wait(child); // the first child, gone once it reported
  if (failure) {
    if (grandchild !== undefined) await wait(grandchild);
    throw setupError(failure);
  }
  if (grandchild === undefined) throw new SetupError("exec", "the child ended before the command started");
  try {
    if (term) deliverTerminal(consoleR, opts);
    opts.onStart?.(grandchild);
  } catch (e) {
    try {
      killProcess(grandchild, "KILL");
    } catch { /* gone */ }
    await wait(grandchild);
    throw e;
  }
  return await wait(grandchild);
}
