/**
 * Processes: fork (optionally into new namespaces), wait, kill, exec, spawn and system — the
 * `Process` and `Kernel` of hacorb scripts.
 *
 * @example Fork a child that runs a callback, and wait for it
 * ```ts ignore
 * import { Process } from "./mod.ts";
 * const pid = Process.fork(() => console.log("hello from", Process.getpid()));
 * const { status } = Process.waitpid2(pid);
 * console.log(status.success); // true
 * ```
 * @module
 */
import { writeSync } from "node:fs";
import process from "node:process";
import { accessSync, constants as fsConstants } from "node:fs";
import { check, checkRetry, errno, libc, retryEintr } from "../ffi/libc.ts";
import { cstr, cstrArray } from "../ffi/cstring.ts";
import { forkProcess, inForkedChild } from "../ffi/fork.ts";
import { nativeSpawnSupported, readReport, spawnProgram, SyscallProgram } from "../ffi/spawn.ts";
import { pidfdOpen, waitReadable } from "../ffi/poll.ts";
import { ConfigError, SyscallError } from "./errors.ts";
import { capabilitiesBeforeExec } from "./capability.ts";
import { type Signal, signalName, signalNumber } from "./signals.ts";
import { type IdMapEntry, namespaceFlags, type NamespaceName, takePendingFlags, writeIdMap } from "./namespace.ts";
import { EINTR, EXEC_RESET_SIGNALS, O_CLOEXEC, WNOHANG } from "../ffi/constants.ts";

/** waitpid's options (documented with their values in ffi/constants.ts). */
export { WNOHANG, WUNTRACED } from "../ffi/constants.ts";

/** How a process ended (or stopped), decoded from a wait status. */
export interface ProcessStatus {
  /** The raw wait status. */
  readonly raw: number;
  /** True when the process called exit. */
  readonly exited: boolean;
  /** The exit code when `exited`, else null. */
  readonly code: number | null;
  /** True when a signal killed the process. */
  readonly signaled: boolean;
  /** The killing (or stopping) signal's number, else null. */
  readonly signal: number | null;
  /** True when the process is stopped, not ended. */
  readonly stopped: boolean;
  /** True when it exited with code 0. */
  readonly success: boolean;
  /** The exit status as a shell reports it: the code, or 128 + signal. */
  readonly shellCode: number;
  /** Ruby's name for `code`. */
  readonly exitstatus: number | null;
  /** Ruby's name for `signal` when signaled. */
  readonly termsig: number | null;
}

/** Decodes a raw wait status. */
export function decodeStatus(raw: number): ProcessStatus {
  const sig = raw & 0x7f;
  const exited = sig === 0;
  const stopped = (raw & 0xff) === 0x7f;
  const signaled = !exited && !stopped;
  const code = exited ? (raw >> 8) & 0xff : null;
  const signal = signaled ? sig : stopped ? (raw >> 8) & 0xff : null;
  return {
    raw,
    exited,
    code,
    signaled,
    signal,
    stopped,
    success: code === 0,
    shellCode: exited ? code! : 128 + (signal ?? 0),
    exitstatus: code,
    termsig: signaled ? signal : null,
    toString() {
      return exited ? `exit ${code}` : stopped ? `stopped (${signalName(signal!)})` : `killed by ${signalName(sig)}`;
    },
  } as ProcessStatus;
}

/** Options for {@link fork} into new namespaces. */
export interface ForkOptions {
  /** Namespaces the child starts in: names (`["pid", "uts"]`) or `CLONE_NEW*` flags. */
  readonly namespaces?: readonly NamespaceName[] | number;
  /** uid map written by the parent before the child runs (needs a new user namespace). */
  readonly uidMap?: readonly IdMapEntry[];
  /** gid map written by the parent before the child runs (needs a new user namespace). */
  readonly gidMap?: readonly IdMapEntry[];
}

function runChild(fn: () => unknown): never {
  const { _exit } = libc();
  let code = 0;
  try {
    const r = fn();
    if (r instanceof Promise) {
      r.catch(() => {});
      throw new TypeError(
        "Process.fork: the callback returned a Promise; the child can only run synchronous code (no await)",
      );
    }
  } catch (e) {
    const text = e instanceof Error ? (e.stack ?? String(e)) : String(e);
    try {
      writeSync(2, `${text}\n`);
    } catch { /* stderr closed */ }
    code = 1;
  }
  _exit(code);
  throw new Error("unreachable");
}

/**
 * Forks a child that runs `fn` synchronously and then `_exit(0)`s; an exception in `fn` prints its
 * stack and exits 1. With `options.namespaces` the child is cloned straight into new namespaces
 * (this is how PID, user and time namespaces work from a multithreaded runtime). Namespaces
 * deferred by `Namespace.unshare` in the parent are added to this fork.
 *
 * In the child only synchronous code runs: no `await`, no timers.
 *
 * @param optionsOrFn The options, or `fn` directly.
 * @param fn What the child runs.
 * @returns The child's pid.
 * @throws {SyscallError} When fork/clone or writing the id maps fails.
 * @throws {ConfigError} When id maps are given without a user namespace.
 *
 * @example New PID and UTS namespaces
 * ```ts ignore
 * const pid = Process.fork({ namespaces: ["pid", "uts"] }, () => {
 *   console.log(Process.getpid()); // 1
 * });
 * Process.waitpid(pid);
 * ```
 */
export function fork(fn: () => unknown): number;
/** Forks a child into the namespaces of `options`, running `fn`. See the first overload. */
export function fork(options: ForkOptions, fn: () => unknown): number;
export function fork(optionsOrFn: ForkOptions | (() => unknown), fn?: () => unknown): number {
  const options: ForkOptions = typeof optionsOrFn === "function" ? {} : optionsOrFn;
  const body = typeof optionsOrFn === "function" ? optionsOrFn : fn;
  if (typeof body !== "function") throw new ConfigError("fork", "needs a function for the child to run");
  const requested = namespaceFlags(options.namespaces ?? []);
  const mapped = (options.uidMap?.length ?? 0) + (options.gidMap?.length ?? 0) > 0;
  const flags = requested | takePendingFlags();
  if (mapped && !(flags & 0x10000000)) {
    throw new ConfigError("fork.namespaces", 'uidMap/gidMap need a new user namespace ("user")');
  }
  if (!mapped) {
    const pid = forkProcess(flags);
    if (pid === 0) runChild(body);
    return pid;
  }
  // The child waits on a pipe until the parent has written its id maps.
  const { pipe2, read, close } = libc();
  const fds = new Int32Array(2);
  check(pipe2(fds, O_CLOEXEC), "pipe2");
  const [rd, wr] = [fds[0]!, fds[1]!];
  let pid: number;
  try {
    pid = forkProcess(flags);
  } catch (e) {
    close(rd), close(wr);
    throw e;
  }
  if (pid === 0) {
    close(wr);
    const one = new Uint8Array(1);
    // In the forked child: the loop stays written out (no closure allocated between fork and exec).
    while (read(rd, one, 1n) === -1 && errno() === EINTR);
    close(rd);
    if (one[0] !== 1) libc()._exit(125); // the parent failed to map us: it reports why
    runChild(() => {
      // Become root of the new user namespace when the maps give it a root (as runc does):
      // until then the child still carries its unmapped host ids and shows as "nobody".
      const { setresgid, setresuid } = libc();
      if (options.gidMap?.some((e) => e.inside === 0)) check(setresgid(0, 0, 0), "setresgid", [0]);
      if (options.uidMap?.some((e) => e.inside === 0)) check(setresuid(0, 0, 0), "setresuid", [0]);
      return body();
    });
  }
  close(rd);
  try {
    if (options.gidMap?.length) writeIdMap(pid, "gid", options.gidMap);
    if (options.uidMap?.length) writeIdMap(pid, "uid", options.uidMap);
    libc().write(wr, new Uint8Array([1]), 1n);
  } catch (e) {
    close(wr);
    kill(pid, "KILL");
    waitpid(pid);
    throw e;
  }
  close(wr);
  return pid;
}

/**
 * Waits for a child, blocking the calling thread (and so the event loop).
 * @param pid The child (-1: any child).
 * @param flags `WNOHANG`, `WUNTRACED`.
 * @returns The reaped pid, or 0 with WNOHANG when nothing changed.
 * @throws {SyscallError} ECHILD when there is no such child.
 */
export function waitpid(pid: number, flags = 0): number {
  return waitpid2(pid, flags).pid;
}

/**
 * Like {@link waitpid}, and also returns the decoded status (hacorb's `waitpid2`).
 * @returns `{ pid, status }`; with WNOHANG and nothing to report, `pid` is 0 and `status` is null.
 */
export function waitpid2(pid: number, flags = 0): { pid: number; status: ProcessStatus } {
  const st = new Int32Array(1);
  const { waitpid: wp } = libc();
  const r = checkRetry(() => wp(pid, st, flags), "waitpid", [pid]);
  return { pid: r, status: (r === 0 ? null : decodeStatus(st[0]!)) as ProcessStatus };
}

/**
 * Waits for a child without blocking the event loop: a pidfd (Linux 5.3+) says when it ended,
 * then it is reaped with WNOHANG (without pidfd: polls with WNOHANG, backing off to 20 ms).
 * @returns The decoded status.
 */
export async function wait(pid: number): Promise<ProcessStatus> {
  const pidfd = pid > 0 ? pidfdOpen(pid) : -1;
  try {
    let delay = 1;
    for (;;) {
      const r = waitpid2(pid, WNOHANG);
      if (r.pid !== 0) return r.status;
      if (pidfd >= 0) await waitReadable(pidfd, 1000);
      else {
        await new Promise((res) => setTimeout(res, delay));
        delay = Math.min(delay * 2, 20);
      }
    }
  } finally {
    if (pidfd >= 0) libc().close(pidfd);
  }
}

/**
 * Sends a signal. Node's order `kill(pid, "TERM")`; Ruby's `kill("TERM", pid, …)` also works.
 * @throws {SyscallError} ESRCH when the process is gone, EPERM when not allowed.
 */
export function kill(pid: number, signal?: Signal): void;
/** Ruby's order: `kill("TERM", pid, …)`. */
export function kill(signal: string, ...pids: number[]): void;
export function kill(a: number | string, ...rest: Array<Signal | undefined>): void {
  const pairs: Array<[number, number]> = typeof a === "string"
    ? rest.map((p) => [Number(p), signalNumber(a)])
    : [[a, signalNumber(rest[0] ?? "TERM")]];
  for (const [pid, sig] of pairs) check(libc().kill(pid, sig), "kill", [pid, signalName(sig)]);
}

/** The calling process's pid (also correct in a forked child). */
export function getpid(): number {
  return libc().getpid();
}

/** The parent's pid. */
export function getppid(): number {
  return libc().getppid();
}

/** Ends the process at once with `code`, running no handlers (`_exit(2)`). */
export function _exit(code = 0): never {
  libc()._exit(code);
  throw new Error("unreachable");
}

const SHELL_META = /[*?{}[\]<>()~&|\\$;'`"\n#=%]/;

/** Splits a Ruby-style command: a string with shell syntax runs under `/bin/sh -c`. */
export function commandArgv(command: string | readonly string[], args: readonly string[] = []): string[] {
  if (typeof command !== "string") return [...command, ...args];
  if (args.length > 0) return [command, ...args];
  if (SHELL_META.test(command)) return ["/bin/sh", "-c", command];
  const argv = command.trim().split(/\s+/).filter(Boolean);
  if (argv.length === 0) throw new ConfigError("command", "is empty");
  return argv;
}

/**
 * Finds `file` in `PATH` the way execvp does (a name with a slash is used as is).
 * @returns The path, or undefined when not found.
 */
export function which(
  file: string,
  path = process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
): string | undefined {
  if (file.includes("/")) return file;
  for (const dir of path.split(":")) {
    const candidate = `${dir || "."}/${file}`;
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch { /* next */ }
  }
  return undefined;
}

/** Options for {@link exec}. */
export interface ExecOptions {
  /** The environment (default: the current one). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Replaces the process with a program (execve with a PATH lookup). A single string with shell
 * syntax runs under `/bin/sh -c`, as Ruby's `exec` does. Signal dispositions the runtime changed
 * (SIGPIPE ignored) and the signal mask are reset first, so the program starts clean.
 *
 * Right before execve, a pending `Capability.keep(list, { atExec: true })` is applied, and the
 * first exec after hacorb-style `Capability#set`/`set_flag` calls that execve would undo (root
 * regains the bounding set) prints a `hako: warning:` (see `src/capability.ts`).
 * @throws {SyscallError} When execve fails (ENOENT: no such program), or the pending keep cannot be applied.
 */
export function exec(command: string | readonly string[], ...args: string[]): never;
/** exec with explicit arguments and options (`env`). */
export function exec(command: string | readonly string[], args: readonly string[], options: ExecOptions): never;
export function exec(command: string | readonly string[], ...rest: unknown[]): never {
  const [args, options] = Array.isArray(rest[0])
    ? [rest[0] as string[], (rest[1] ?? {}) as ExecOptions]
    : [rest as string[], {} as ExecOptions];
  const argv = commandArgv(command, args);
  const env = options.env ?? (process.env as Record<string, string>);
  const file = which(argv[0]!, env.PATH) ?? argv[0]!;
  capabilitiesBeforeExec();
  execFile(file, argv, env);
}

/**
 * execve(2) of `file` (a path, no PATH search) with `argv` and `env` as given: the signals reset
 * first, no capability step, and every fd without close-on-exec passed on — unlike Bun's
 * `process.execve`, which closes every fd above 2 (hako's OCI mode re-executes itself with it when
 * it must hand fds to a container: `--preserve-fds`).
 * @throws {SyscallError} When execve fails.
 */
export function execve(file: string, argv: readonly string[], env: Readonly<Record<string, string>>): never {
  return execFile(file, argv, env);
}

/** execve of `file` with `argv` and `env`, the signals reset first; no capability step. */
function execFile(file: string, argv: readonly string[], env: Readonly<Record<string, string>>): never {
  const argvC = cstrArray(argv);
  const envC = cstrArray(Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`));
  resetSignals();
  const { execve } = libc();
  execve(cstr(file), new Uint8Array(argvC.array.buffer), new Uint8Array(envC.array.buffer));
  throw new SyscallError("execve", errno(), [file]);
}

/** Restores default signal dispositions the runtime changed, and unblocks every signal. */
/**
 * What {@link exec} does to signals right before execve: the dispositions a runtime set go back to
 * their defaults and the mask is cleared. For callers that prepared execve's arguments themselves.
 */
export function resetSignalsForExec(): void {
  resetSignals();
}

function resetSignals(): void {
  const { signal, sigprocmask } = libc();
  // (the native runner's list, ffi/spawn.ts's resetSignals: one policy on both paths)
  for (const sig of EXEC_RESET_SIGNALS) signal(sig, 0n);
  sigprocmask(2, /* SIG_SETMASK */ new Uint8Array(128), null);
}

/**
 * Runs a command and waits for it, synchronously (Ruby's `system`). Works in a forked child too.
 * @returns true when it exited 0, false when it failed, null when it could not be run.
 */
export function system(command: string | readonly string[], ...args: string[]): boolean | null {
  let pid: number;
  try {
    pid = spawn(commandArgv(command, args));
  } catch (e) {
    if (e instanceof SyscallError && e.syscall === "execve") return null;
    throw e;
  }
  return waitpid2(pid).status.success;
}

/** Options for {@link spawn}. */
export interface SpawnOptions {
  /** The environment (default: the current one). */
  readonly env?: Readonly<Record<string, string>>;
  /** The working directory (default: the current one). */
  readonly cwd?: string;
  /** New namespaces for the program (no id maps: in a new user namespace it is nobody). */
  readonly namespaces?: ForkOptions["namespaces"];
}

/**
 * Starts a program in a new process and returns its pid, without waiting (Ruby's `Process.spawn`);
 * reap it with {@link waitpid} or {@link wait}. Unlike `fork` + `exec`, the runtime is not forked:
 * the child shares the parent's memory and runs only the system calls prepared for it (chdir,
 * signal dispositions back to their defaults, execve — see `ffi/spawn.ts`), so it costs what
 * `posix_spawn` costs, and may start in new namespaces. A program that cannot be run (not found,
 * not executable) throws here, in the parent. The program is found in the `PATH` of `env`.
 * (On architectures without hako's native runner, it forks.)
 *
 * @param command A program and its arguments, or one string (with shell syntax: run by /bin/sh).
 * @param args More arguments, or the options.
 * @returns The child's pid.
 * @throws {SyscallError} When the program cannot be run (`execve`, `chdir`) or clone fails.
 *
 * @example Run a command and wait for it
 * ```ts ignore
 * const pid = Process.spawn(["sleep", "1"], { namespaces: ["uts"] });
 * const { status } = Process.waitpid2(pid);
 * ```
 */
export function spawn(command: string | readonly string[], options?: SpawnOptions): number;
/** Starts `command` with `args` (see the first overload). */
export function spawn(command: string | readonly string[], args: readonly string[], options?: SpawnOptions): number;
export function spawn(
  command: string | readonly string[],
  argsOrOptions?: readonly string[] | SpawnOptions,
  maybeOptions: SpawnOptions = {},
): number {
  const [args, options] = Array.isArray(argsOrOptions)
    ? [argsOrOptions as readonly string[], maybeOptions]
    : [[], (argsOrOptions ?? {}) as SpawnOptions];
  const argv = commandArgv(command, args);
  const env = options.env ?? (process.env as Record<string, string>);
  const file = which(argv[0]!, env.PATH) ?? argv[0]!;
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  const flags = namespaceFlags(options.namespaces ?? []);
  const { pipe2, read, close } = libc();
  const fds = new Int32Array(2);
  check(pipe2(fds, O_CLOEXEC), "pipe2");
  const [rd, wr] = [fds[0]!, fds[1]!];
  let wrOpen = true;
  const closeWr = () => {
    if (wrOpen) close(wr);
    wrOpen = false;
  };
  let pid: number;
  try {
    if (nativeSpawnSupported()) {
      const p = new SyscallProgram();
      const ops: Array<[string, unknown[]]> = [];
      if (options.cwd !== undefined) ops[p.call("chdir", [p.cstring(options.cwd)])] = ["chdir", [options.cwd]];
      for (const [i, syscall, shown] of p.resetSignals()) ops[i] = [syscall, shown];
      ops[p.call("execve", [p.cstring(file), p.cstrings(argv), p.cstrings(envp)])] = ["execve", [file]];
      const built = p.build();
      built.reportTo(wr);
      pid = spawnProgram(built, flags);
      // The program's memory is the child's until it has exec'd: the read below waits for that.
      closeWr();
      const r = readReport(rd);
      void built.memory;
      if (r && !r.ready && "op" in r) {
        waitpid(pid);
        const [call, callArgs] = ops[r.op] ?? ["spawn", []];
        throw new SyscallError(call, r.errno, callArgs);
      }
      return pid;
    }
    pid = forkProcess(flags);
    if (pid === 0) {
      try {
        if (options.cwd !== undefined) check(libc().chdir(cstr(options.cwd)), "chdir", [options.cwd]);
        execFile(file, argv, env); // a spawned command, not this process's exec: no capability step
      } catch (e) {
        const n = new Int32Array([
          e instanceof SyscallError ? e.errno : 2,
          e instanceof SyscallError && e.syscall === "chdir" ? 1 : 0,
        ]);
        libc().write(wr, new Uint8Array(n.buffer), 8n);
      }
      libc()._exit(127);
    }
    closeWr();
    const buf = new Int32Array(2);
    const got = retryEintr(() => read(rd, new Uint8Array(buf.buffer), 8n));
    if (got === 8) {
      waitpid(pid);
      throw buf[1] ? new SyscallError("chdir", buf[0]!, [options.cwd]) : new SyscallError("execve", buf[0]!, [file]);
    }
    return pid;
  } finally {
    close(rd);
    closeWr();
  }
}

/** True in a child made by {@link fork}: only synchronous code may run. */
export function isForkedChild(): boolean {
  return inForkedChild();
}
