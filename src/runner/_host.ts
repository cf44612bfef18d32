/**
 * The runtime adapter of the CLI and the runner: the only place above `ffi/` that touches `Deno.*`
 * (in {@link denoHost}) or the global `process` of Bun and Node (in {@link nodeHost}).
 *
 * Why not `node:process` and `node:fs` here, as elsewhere? Start-up time: in Deno 2.9 the first
 * `node:` import initialises the Node compatibility layer, which costs 15–30 ms — more than the
 * whole budget of `hako run` over `deno run`. The CLI's own path therefore uses Deno's namespace
 * when it is there, and hako's primitives (which do use `node:`) are loaded only when a script
 * needs them.
 *
 * @module
 */
import type { FileFacts } from "../_trusted_path.ts";

/** What the CLI and the runner need from the runtime. */
export interface Host {
  /** `"deno"`, `"bun"` or `"node"`. */
  readonly runtime: string;
  /** The runtime's version, e.g. `"2.9.6"`. */
  readonly runtimeVersion: string;
  /** True inside a binary made by `deno compile` or `bun build --compile`. */
  readonly compiled: boolean;
  /** The command-line arguments after the program (`hako run x.ts` → `["run", "x.ts"]`). */
  args(): string[];
  /**
   * The name the program was started as (argv[0], a link's own name; Deno, which does not keep it:
   * its executable's path): how `dist/hako` knows it runs as `dist/hako-runc`.
   */
  programName(): string;
  /** An environment variable, or undefined. */
  env(name: string): string | undefined;
  /** The current directory. */
  cwd(): string;
  /** Reads a UTF-8 file synchronously. @throws The runtime's not-found error (`code` / `name` says which). */
  readTextFile(path: string): string;
  /** The names in a directory (unsorted). @throws The runtime's not-found error (`code` / `name` says which). */
  readDir(path: string): string[];
  /** `lstat`: a path's owner, permission bits and type; undefined when nothing is there. */
  lstat(path: string): FileFacts | undefined;
  /** The path with its symlinks resolved. @throws When it leads nowhere. */
  realPath(path: string): string;
  /** The user this process runs as (its real uid). */
  uid(): number;
  /** Writes text to stdout, synchronously. */
  stdout(text: string): void;
  /** Writes text to stderr, synchronously. */
  stderr(text: string): void;
  /** Ends the process with `code`. */
  exit(code: number): never;
  /** Makes `Deno.args` / `process.argv` look as if `script` had been run directly with `args`. */
  setScriptArgs(script: string, args: readonly string[]): void;
  /** Calls `handler` for an uncaught exception or unhandled rejection (instead of the runtime's report). */
  onUncaught(handler: (error: unknown) => void): void;
  /**
   * Makes sure the engine runs without GC/JIT helper threads, which a forked child could wait on
   * forever (see `ffi/fork.ts`). Under Bun, whose JavaScriptCore reads its `BUN_JSC_*` options only
   * at start-up, a process started without {@link BUN_JSC_SINGLE_THREADED} replaces itself once
   * (`execve` of `/proc/self/exe` with its own argv and those variables added) and this call does
   * not return; if that cannot be done it returns and the process runs on as it is. Under Deno
   * (whose flag comes from the command line or `bin/hako`) and Node it does nothing.
   * Call it first thing, before loading anything heavy. `execve`: the call that replaces the
   * process (default Bun's `process.execve`, which closes every fd above 2; a caller that must keep
   * fds open across it gives its own, e.g. `Process.execve`).
   */
  ensureSingleThreaded(execve?: Execve): void;
  /**
   * The argv that runs this same hako again (the runtime, its flags and the CLI's entry point, as
   * this process was started) with `args` as hako's arguments: how `hako start` starts the
   * supervisor with whatever runtime and flags the CLI itself runs under.
   */
  selfArgv(args: readonly string[]): string[];
  /**
   * A full, synchronous garbage collection that gives free heap pages back to the system, where
   * the runtime allows it (Deno: V8's `gc` made available for this; Bun: `Bun.gc(true)`). For a
   * long-lived process after a burst of work (the supervisor after starting a fleet): V8 keeps
   * the heap it grew for the burst otherwise. Does nothing where neither is available.
   */
  collectGarbage(): void;
  /**
   * For a process that runs long (the supervisor): the engine's JIT tier-up thresholds back to
   * normal. `dist/hako` starts with them raised 100× (`bun build --compile-jit-policy`, see
   * tools/build.sh): a command that runs once and exits spent ~10 ms of CPU compiling code it ran
   * a few times. Bun's `Bun.unsafe.setJITPolicy(1)`; nothing elsewhere.
   */
  normalJit(): void;
}

/** An execve(2): replaces the process, or throws. */
export type Execve = (file: string, argv: string[], env: Record<string, string>) => void;

/** The kind of file `lstat` saw (pure). */
function kindOf(st: { isFile: boolean; isDirectory: boolean; isSymlink: boolean }): FileFacts["kind"] {
  return st.isSymlink ? "symlink" : st.isDirectory ? "dir" : st.isFile ? "file" : "other";
}

/** True for the runtime's "no such file" and "not a directory" errors. */
function isMissing(e: unknown): boolean {
  const err = e as { code?: string; name?: string };
  return isNotFound(e) || err?.code === "ENOTDIR" || err?.name === "NotADirectory";
}

/**
 * The environment that keeps Bun's JavaScriptCore single-threaded: a copy of `ffi/fork.ts`'s
 * `BUN_SINGLE_THREADED_ENV`, kept here so that the CLI can re-exec before it loads `ffi/`
 * (`tests/dist_test.ts` checks that the two agree).
 */
export const BUN_JSC_SINGLE_THREADED: Readonly<Record<string, string>> = {
  BUN_JSC_useConcurrentGC: "0",
  BUN_JSC_numberOfGCMarkers: "1",
  BUN_JSC_useConcurrentJIT: "0",
  BUN_JSC_useParallelMarkingConstraintSolver: "0",
  BUN_JSC_useWarmUpMarkedBlocks: "0",
};

/** Set in the environment of the re-executed process, so that it never re-executes again. */
const REEXEC_GUARD = "HAKO_BUN_REEXEC";

/**
 * The environment variables of {@link BUN_JSC_SINGLE_THREADED} that `env` lacks or sets otherwise
 * (pure; `"0"` also matches `"false"`/`"no"`, as JSC reads it).
 */
export function missingJscOptions(env: Readonly<Record<string, string | undefined>>): string[] {
  const norm = (v: string) => v.trim().toLowerCase().replace(/^(false|no)$/, "0").replace(/^(true|yes)$/, "1");
  return Object.entries(BUN_JSC_SINGLE_THREADED).filter(([k, v]) => env[k] === undefined || norm(env[k]!) !== v)
    .map(([k]) => k);
}

/**
 * The argv to re-execute this process with (pure): its own, from `/proc/self/cmdline` (NUL-separated,
 * so the runtime's flags, the script and every argument come back as they were), or, without it, one
 * made from `process`: in a `bun build --compile` binary `process.argv` is `["bun",
 * "/$bunfs/root/…", …args]`, and the binary takes only the arguments after its own name.
 */
export function reexecArgv(
  cmdline: string | undefined,
  p: { argv: readonly string[]; execPath: string; execArgv?: readonly string[] },
  compiled: boolean,
): string[] {
  if (cmdline) {
    const argv = cmdline.split("\0");
    if (argv.at(-1) === "") argv.pop();
    if (argv.length > 0) return argv;
  }
  return compiled ? [p.execPath, ...p.argv.slice(2)] : [p.execPath, ...(p.execArgv ?? []), ...p.argv.slice(1)];
}

/**
 * {@link Host.selfArgv}'s pure part: this process's argv from `/proc/self/cmdline`, with its last
 * `hakoArgCount` arguments (hako's own, after the entry point) replaced by `args`.
 */
export function selfArgvFrom(cmdline: string, hakoArgCount: number, args: readonly string[]): string[] {
  const argv = cmdline.split("\0");
  if (argv.at(-1) === "") argv.pop();
  return [...argv.slice(0, argv.length - hakoArgCount), ...args];
}

interface NodeProcess {
  argv: string[];
  argv0?: string;
  execArgv?: string[];
  env: Record<string, string | undefined>;
  execPath: string;
  execve?(file: string, args: string[], env: Record<string, string | undefined>): never;
  versions: Record<string, string | undefined>;
  cwd(): string;
  getuid?(): number;
  exit(code: number): never;
  stdout: { fd: number };
  on(event: string, fn: (e: unknown) => void): void;
  getBuiltinModule?(name: string): unknown;
}

interface SyncFs {
  lstatSync(path: string): {
    uid: number;
    mode: number;
    isFile(): boolean;
    isDirectory(): boolean;
    isSymbolicLink(): boolean;
  };
  realpathSync(path: string): string;
  readFileSync(path: string, encoding: "utf8"): string;
  readdirSync(path: string): string[];
  existsSync(path: string): boolean;
  writeSync(fd: number, text: string): number;
}

/** The host for Deno: everything through the `Deno` namespace, nothing that loads Node compatibility. */
function denoHost(): Host {
  const enc = new TextEncoder();
  const write = (w: { writeSync(b: Uint8Array): number }, text: string) => {
    let buf = enc.encode(text);
    while (buf.length > 0) buf = buf.subarray(w.writeSync(buf));
  };
  const argc = Deno.args.length; // hako's own arguments, before a script's replace them
  return {
    runtime: "deno",
    runtimeVersion: Deno.version.deno,
    compiled: Deno.build.standalone === true,
    args: () => [...Deno.args],
    programName: () => Deno.execPath(),
    env: (name) => Deno.env.get(name),
    cwd: () => Deno.cwd(),
    readTextFile: (path) => Deno.readTextFileSync(path),
    readDir: (path) => Array.from(Deno.readDirSync(path), (e) => e.name),
    lstat(path) {
      try {
        const st = Deno.lstatSync(path);
        return { uid: st.uid ?? -1, mode: (st.mode ?? 0) & 0o7777, kind: kindOf(st) };
      } catch (e) {
        if (isMissing(e)) return undefined;
        throw e;
      }
    },
    realPath: (path) => Deno.realPathSync(path),
    uid: () => Deno.uid() ?? -1,
    stdout: (text) => write(Deno.stdout, text),
    stderr: (text) => write(Deno.stderr, text),
    exit: (code) => Deno.exit(code),
    setScriptArgs(script, args) {
      try {
        Object.defineProperty(Deno, "args", { value: Object.freeze([...args]), configurable: true });
      } catch { /* a Deno whose args cannot be replaced: ARGV and process.argv still are */ }
      patchProcessArgv(() => [Deno.execPath(), script, ...args]);
    },
    onUncaught(handler) {
      globalThis.addEventListener("error", (e) => {
        e.preventDefault();
        handler(e.error);
      });
      globalThis.addEventListener("unhandledrejection", (e) => {
        e.preventDefault();
        handler(e.reason);
      });
    },
    ensureSingleThreaded() {},
    selfArgv: (args) => selfArgvFrom(Deno.readTextFileSync("/proc/self/cmdline"), argc, args),
    collectGarbage() {
      v8Gc ??= exposeV8Gc();
      v8Gc?.();
    },
    normalJit() {},
  };
}

let v8Gc: (() => void) | null | undefined;

/**
 * V8's `gc()`, made available at run time: the `--expose-gc` flag, then a new context, whose
 * global object has it (the flag applies to contexts made after it is set). Null when that fails.
 */
function exposeV8Gc(): (() => void) | null {
  try {
    const p = (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process;
    const v8 = p?.getBuiltinModule?.("node:v8") as { setFlagsFromString(flags: string): void } | undefined;
    const vm = p?.getBuiltinModule?.("node:vm") as { runInNewContext(code: string): unknown } | undefined;
    if (!v8 || !vm) return null;
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    return typeof gc === "function" ? gc as () => void : null;
  } catch {
    return null;
  }
}

/**
 * Sets `process.argv` without touching `process` when nothing has yet (touching it loads Deno's Node
 * compatibility layer): the global's getter is wrapped to patch argv on first use.
 */
function patchProcessArgv(argv: () => string[]): void {
  const desc = Object.getOwnPropertyDescriptor(globalThis, "process");
  const patch = (p: NodeProcess | undefined) => {
    if (p && Array.isArray(p.argv)) p.argv.splice(0, p.argv.length, ...argv());
    return p;
  };
  if (desc?.get && desc.configurable) {
    let done = false;
    Object.defineProperty(globalThis, "process", {
      ...desc,
      get() {
        const p = desc.get!.call(globalThis) as NodeProcess | undefined;
        if (!done) done = true, patch(p);
        return p;
      },
    });
  } else {
    patch((globalThis as { process?: NodeProcess }).process);
  }
}

/** The host for Bun and Node: the global `process`, and `node:fs` through `process.getBuiltinModule`. */
function nodeHost(process: NodeProcess): Host {
  const fs = () => process.getBuiltinModule!("node:fs") as SyncFs;
  const isBun = typeof process.versions.bun === "string";
  const mainUrl = import.meta.url;
  const compiled = mainUrl.includes("/$bunfs/") || mainUrl.includes("/~BUN/");
  const argc = process.argv.length - 2; // hako's own arguments, before a script's replace them
  return {
    runtime: isBun ? "bun" : "node",
    runtimeVersion: (isBun ? process.versions.bun : process.versions.node) ?? "unknown",
    // Bun's compiled binaries serve their modules from the virtual /$bunfs/ directory.
    compiled,
    args: () => process.argv.slice(2),
    programName: () => process.argv0 ?? process.execPath,
    env: (name) => process.env[name],
    cwd: () => process.cwd(),
    readTextFile: (path) => fs().readFileSync(path, "utf8"),
    readDir: (path) => fs().readdirSync(path),
    lstat(path) {
      try {
        const st = fs().lstatSync(path);
        const kind = kindOf({ isFile: st.isFile(), isDirectory: st.isDirectory(), isSymlink: st.isSymbolicLink() });
        return { uid: st.uid, mode: st.mode & 0o7777, kind };
      } catch (e) {
        if (isMissing(e)) return undefined;
        throw e;
      }
    },
    realPath: (path) => fs().realpathSync(path),
    uid: () => process.getuid?.() ?? -1,
    stdout: (text) => void fs().writeSync(1, text),
    stderr: (text) => void fs().writeSync(2, text),
    exit: (code) => process.exit(code),
    setScriptArgs(script, args) {
      process.argv.splice(1, process.argv.length - 1, script, ...args);
    },
    onUncaught(handler) {
      process.on("uncaughtException", handler);
      process.on("unhandledRejection", handler);
    },
    ensureSingleThreaded(execve) {
      if (!isBun) return;
      const again = process.env[REEXEC_GUARD] !== undefined;
      delete process.env[REEXEC_GUARD]; // not for the script's children
      if (again || missingJscOptions(process.env).length === 0 || typeof process.execve !== "function") return;
      let cmdline: string | undefined;
      try {
        cmdline = fs().readFileSync("/proc/self/cmdline", "utf8");
      } catch { /* no /proc: then no /proc/self/exe either */ }
      const exe = fs().existsSync("/proc/self/exe") ? "/proc/self/exe" : process.execPath;
      try {
        const env = { ...process.env, ...BUN_JSC_SINGLE_THREADED, [REEXEC_GUARD]: "1" };
        (execve ?? process.execve)(exe, reexecArgv(cmdline, process, compiled), env as Record<string, string>);
      } catch { /* run on; ffi/fork.ts warns before a fork */ }
    },
    selfArgv: (args) => selfArgvFrom(fs().readFileSync("/proc/self/cmdline", "utf8"), argc, args),
    collectGarbage() {
      const bun = (globalThis as { Bun?: { gc?(force: boolean): void } }).Bun;
      if (bun?.gc) return bun.gc(true);
      (globalThis as { gc?: () => void }).gc?.();
    },
    normalJit() {
      const bun = (globalThis as { Bun?: { unsafe?: { setJITPolicy?(scale: number): void } } }).Bun;
      bun?.unsafe?.setJITPolicy?.(1);
    },
  };
}

let current: Host | undefined;

/** The host this process runs on (made once). */
export function host(): Host {
  if (current) return current;
  const g = globalThis as { Deno?: unknown; process?: NodeProcess };
  // (Bun first: under Bun, `Deno` may be the runner's shim — see installDenoShim)
  current = !("Bun" in globalThis) && typeof g.Deno === "object" && g.Deno !== null ? denoHost() : nodeHost(g.process!);
  return current;
}

/** True when `e` is the runtime's "file not found" error. */
export function isNotFound(e: unknown): boolean {
  const err = e as { code?: string; name?: string };
  return err?.code === "ENOENT" || err?.name === "NotFound";
}
