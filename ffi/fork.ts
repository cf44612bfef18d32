/**
 * Fork-safety for a V8 process, and fork/clone that let the child keep running synchronous
 * TypeScript.
 *
 * V8 maps its heap with `MADV_DONTFORK`, so a plain `fork()` child finds its heap missing and
 * dies with SIGSEGV. Before each fork we `madvise(MADV_DOFORK)` every span of the address space
 * between the `VM_IO` mappings (`[vvar]`, `[vvar_vclock]`, which refuse the advice and would stop
 * the walk). The spans are computed once; holes inside a span only make madvise return ENOMEM
 * after it has advised every mapping. V8's GC helper threads are disabled at load time, so a
 * child that collects garbage never waits on a thread that fork left behind.
 *
 * The pass must be the last thing before the fork: a page the engine maps after it (its heap
 * growing for any allocation, even the iterator of the pass's own loop) is `MADV_DONTFORK` again,
 * and the child dies at its first allocation there. So on x86-64 and aarch64 the pass is machine
 * code (`fork_advise_*.S`) that runs inside glibc's `fork()` as its `pthread_atfork` prepare
 * handler, and right before each raw clone in the same call: no JavaScript runs in between.
 * (Measured: 15 of 20 forks whose parent allocated after a JavaScript pass died; none with this.)
 *
 * Under Bun the same holds for JavaScriptCore: its heap needs the same `MADV_DOFORK` preparation
 * (without it the child crashes too), and its collector, marker and JIT threads are kept off by
 * the `BUN_JSC_*` options in {@link BUN_SINGLE_THREADED_ENV}, which Bun reads only at start-up.
 *
 * In the child only synchronous code may run (FFI calls, sync fs), ending in `execve` or `_exit`:
 * the event loop's threads do not exist there.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { errno, libc, nativeFunction } from "./libc.ts";
import { HOST_ARCH, mapCode } from "./_code_page.ts";
import { SyscallError } from "./errno.ts";
import { SYS } from "./syscalls.ts";
import {
  CLONE_NEWTIME,
  CLONE_PARENT,
  ECHILD,
  EINTR,
  EINVAL,
  ENOMEM,
  MADV_DOFORK,
  O_CLOEXEC,
  SIG_BLOCK,
  SIG_SETMASK,
  SIGCHLD,
} from "./constants.ts";

/**
 * The environment that keeps Bun's JavaScriptCore from using helper threads for GC and JIT (the
 * counterpart of Deno's `--v8-flags=--single-threaded`). Bun reads `BUN_JSC_*` options only when
 * it starts, so they must be in its environment. Without them a forked child whose GC runs may
 * wait forever on a collector or marker thread that fork left behind (seen: the first fork hung
 * when parent and child both forced a full GC; 2 of 30 children that allocated ~3M objects hung).
 * `useWarmUpMarkedBlocks` is a helper thread that hands out pre-faulted heap blocks once a process
 * has allocated 64 of them: a child that asks it for one would wait forever (a suspect for about
 * 1 child in thousands seen parked in pthread_cond_wait); the parallel constraint solver uses
 * helper threads too.
 */
export const BUN_SINGLE_THREADED_ENV: Readonly<Record<string, string>> = {
  BUN_JSC_useConcurrentGC: "0",
  BUN_JSC_numberOfGCMarkers: "1",
  BUN_JSC_useConcurrentJIT: "0",
  BUN_JSC_useParallelMarkingConstraintSolver: "0",
  BUN_JSC_useWarmUpMarkedBlocks: "0",
};

/** True when `actual` is the JSC option value `wanted` ("0" also matches "false"/"no"). */
function sameJscOption(actual: string | undefined, wanted: string): boolean {
  if (actual === undefined) return false;
  const norm = (v: string) => v.trim().toLowerCase().replace(/^(false|no)$/, "0").replace(/^(true|yes)$/, "1");
  return norm(actual) === norm(wanted);
}

// (Bun first: under Bun, `Deno` may be the runner's shim for scripts, which throws on use)
const underDeno = !("Bun" in globalThis) && typeof Deno !== "undefined";

/**
 * True when the engine runs without GC/JIT helper threads: under Deno, V8 with
 * `--v8-flags=--single-threaded` (on the command line or in `DENO_V8_FLAGS`); under Bun, JSC with
 * {@link BUN_SINGLE_THREADED_ENV} in the environment. Flags set after the engine has started do
 * not reach the GC and compiler already configured: a child that allocates may then wait forever
 * on a helper thread fork left behind (seen: a hang within 50 forks with GC in the parent).
 */
export const singleThreaded: boolean = (() => {
  if (!underDeno) {
    return Object.entries(BUN_SINGLE_THREADED_ENV).every(([k, v]) => sameJscOption(process.env[k], v));
  }
  let cmdline = "";
  try {
    cmdline = readFileSync("/proc/self/cmdline", "utf8");
  } catch { /* no /proc */ }
  const flags = `${cmdline.split("\0").filter((a) => a.startsWith("--v8-flags=")).join(",")},${
    Deno.env.get("DENO_V8_FLAGS") ?? ""
  }`;
  return /--single[-_]threaded(?![-_])/.test(flags);
})();

if (!singleThreaded && underDeno) {
  // Best effort: fewer helper threads are used from here on. (node:v8 is loaded only here, where
  // it is used: a static import costs every process that loads this module, Bun's `hako-runc
  // create` included, which never needs it. Loading it lazily once seemed to make forked children
  // die: it only moved where the heap grew, into the window the native pass now closes.)
  try {
    (process.getBuiltinModule("node:v8") as typeof import("node:v8")).setFlagsFromString("--single-threaded-gc");
  } catch { /* not V8 */ }
}

let warned = false;
function warnOnce(): void {
  if (warned || singleThreaded) return;
  warned = true;
  if (!underDeno) {
    const env = Object.entries(BUN_SINGLE_THREADED_ENV).map(([k, v]) => `${k}=${v}`).join(" ");
    console.error(
      `hako: Bun was started without ${env}: a forked child that allocates much may hang in JavaScriptCore's GC. ` +
        `Run \`env ${env} bun …\`, or use \`hako run\`.`,
    );
    return;
  }
  console.error(
    "hako: Deno was started without --v8-flags=--single-threaded: a forked child that allocates much may hang " +
      "in V8's GC. Run `deno run -A --v8-flags=--single-threaded …`, set DENO_V8_FLAGS=--single-threaded, or use `hako run`.",
  );
}

const ALL_SIGNALS = new Uint8Array(128).fill(0xff);

let spans: Array<readonly [bigint, bigint]> | undefined;
let forkedChild = false;

/**
 * The fork pass's machine code, assembled from `ffi/fork_advise_x86_64.S` (`bash tools/assemble.sh
 * ffi/fork_advise_x86_64.S` prints this string; tests/fork_test.ts checks it against the source).
 */
export const FORK_ADVISE_X86_64_HEX: string =
  "eb2e00000000000000000000000000005756e8190000005e5f4885f67411b83800000031f631d24531d24531c00f05c34c8d" +
  "0dc9ff00004d8b014983c1084531d24d85c07425b81c000000498b39498b7108ba0b0000000f054883f8ea75034989c24983" +
  "c11049ffc8ebd64c89d0c3";

/**
 * The machine code of `ffi/fork_advise_aarch64.S` (checked by tests/fork_test.ts). Run under
 * qemu-user only, never on aarch64 hardware so far.
 */
export const FORK_ADVISE_AARCH64_HEX: string =
  "12000014000000000000000000000000fd7bbea9e00701a90c000094e92b41a9fd7bc2a80a0100b4e00309aae1031faae203" +
  "1faae3031faae4031faa881b80d2010000d4c0035fd6c9fd07102a8540f8eb031faa4a0100b42005c1a8620180d2281d80d2" +
  "010000d41f5800b141000054eb0300aa4a0500d1f7ffff17e0030baac0035fd6";

/** Where the .S files read their table (`TABLE`): 64 KiB after the code, the largest page size away. */
const TABLE_AT = 0x10000n;
/** The table: a count, then (address, length) pairs. */
const TABLE_BYTES = 4096n;
/** The spans the table holds (more, and the rest are advised from JavaScript: see prepareFork). */
const MAX_NATIVE_SPANS = Number((TABLE_BYTES - 8n) / 16n);

/** The native pass, once mapped and registered with glibc's fork (null: none on this host). */
interface NativePass {
  /** The spans table's address (64 KiB after the code). */
  readonly table: bigint;
  /**
   * The pass, then (`clone` 1n) a raw `clone(flags, 0, 0, 0, 0)`: its raw result (pid, 0 in the
   * child, -errno); or (`clone` 0n) the pass's result: 0, or -EINVAL when a span met a VM_IO mapping.
   */
  readonly adviseClone: (flags: bigint, clone: bigint) => unknown;
  /** The spans the table holds now. */
  written?: Array<readonly [bigint, bigint]>;
}
let nativePassState: NativePass | null | undefined;

function nativePass(): NativePass | null {
  if (nativePassState !== undefined) return nativePassState;
  if (process.arch !== "x64" && process.arch !== "arm64") return nativePassState = null;
  const code = mapCode(HOST_ARCH === "aarch64" ? FORK_ADVISE_AARCH64_HEX : FORK_ADVISE_X86_64_HEX, "the fork pass", {
    at: TABLE_AT,
    bytes: TABLE_BYTES,
  });
  const adviseClone = nativeFunction(code + 16n, { parameters: ["i64", "i64"], result: "i64" });
  const pass: NativePass = { table: code + TABLE_AT, adviseClone };
  // The spans go in before glibc may call the handler (an empty table does nothing meanwhile).
  writeTable(pass, spans ??= computeSpans());
  // glibc's pthread_atfork (a compat symbol now): the prepare handler runs inside every fork(),
  // after the fork handlers registered before it and before the malloc locks and the syscall.
  if (libc().__register_atfork(code, 0n, 0n, 0n) !== 0) {
    throw new SyscallError("pthread_atfork", ENOMEM, [], "register the fork pass");
  }
  return nativePassState = pass;
}

/** Writes `list` into the native pass's table (count, then address and length pairs). */
function writeTable(pass: NativePass, list: Array<readonly [bigint, bigint]>): void {
  if (pass.written === list) return;
  const n = Math.min(list.length, MAX_NATIVE_SPANS);
  const words = new BigUint64Array(1 + 2 * n);
  for (let i = 0; i < n; i++) [words[1 + 2 * i], words[2 + 2 * i]] = list[i]!;
  // The count last: a table read half-written (it never is: one thread writes, and glibc calls the
  // handler on this same thread) would advise the spans already there.
  const body = new Uint8Array(words.buffer, 8);
  libc().memcpy(pass.table + 8n, body, BigInt(body.length));
  words[0] = BigInt(n);
  libc().memcpy(pass.table, new Uint8Array(words.buffer, 0, 8), 8n);
  pass.written = list;
}

/** The address-space spans between `VM_IO` mappings, read from /proc/self/smaps. */
function computeSpans(): Array<readonly [bigint, bigint]> {
  const io: Array<readonly [bigint, bigint]> = [];
  let top = 0n;
  let current: readonly [bigint, bigint] | undefined;
  for (const line of readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (m) {
      current = [BigInt(`0x${m[1]}`), BigInt(`0x${m[2]}`)];
      // [vsyscall] lives above the user address space: ignore it.
      if (current[1] > top && current[0] < 0xffff_0000_0000_0000n) top = current[1];
    } else if (current && line.startsWith("VmFlags:") && / io(?= |$)/.test(line)) {
      io.push(current);
    }
  }
  // The top of the user address space: the next power of two above the highest mapping.
  let limit = 1n;
  while (limit < top) limit <<= 1n;
  io.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Array<readonly [bigint, bigint]> = [];
  let start = 0x1000n;
  for (const [a, b] of io) {
    if (a > start) out.push([start, a - start]);
    if (b > start) start = b;
  }
  if (limit > start) out.push([start, limit - start]);
  return out;
}

/**
 * Marks the whole address space (but `VM_IO` mappings) `MADV_DOFORK`, so the next fork copies
 * V8's heap. Cheap after the first call; call it right before every fork.
 */
export function prepareFork(): void {
  spans ??= computeSpans();
  const pass = nativePass();
  if (pass) {
    writeTable(pass, spans);
    if (pass.adviseClone(0n, 0n) === -BigInt(EINVAL)) {
      // A new VM_IO mapping appeared inside a span: recompute once and advise again.
      writeTable(pass, spans = computeSpans());
      pass.adviseClone(0n, 0n);
    }
    // (never seen: more VM_IO mappings than the table holds; the rest from here, as before)
    for (const [addr, len] of spans.slice(MAX_NATIVE_SPANS)) libc().madvise(addr, len, MADV_DOFORK);
    return;
  }
  const { madvise } = libc();
  for (const [addr, len] of spans) {
    if (madvise(addr, len, MADV_DOFORK) === -1 && errno() === EINVAL) {
      // A new VM_IO mapping appeared inside a span: recompute once and retry.
      spans = computeSpans();
      for (const [a, l] of spans) madvise(a, l, MADV_DOFORK);
      return;
    }
  }
}

/** True in a child created by {@link forkProcess}: single-threaded, no event loop. */
export function inForkedChild(): boolean {
  return forkedChild;
}

/**
 * fork(2), or — when `cloneFlags` has namespace flags — a raw `clone(2)` with fork semantics
 * (no new stack: the child returns here like fork's child does). The raw clone is what lets a
 * multithreaded runtime create PID, user and time namespaces for its child. Inside a forked child
 * the raw clone is always used (see below).
 *
 * @param cloneFlags `CLONE_NEW*` flags, or 0 for a plain fork.
 * @returns The child's pid in the parent, 0 in the child.
 * @throws {SyscallError} When fork or clone fails.
 */
export function forkProcess(cloneFlags = 0): number {
  warnOnce();
  // CLONE_NEWTIME's bit is part of the exit signal in clone(2)'s flags: the child enters a new
  // time namespace itself, below.
  const newTime = (cloneFlags & CLONE_NEWTIME) !== 0;
  cloneFlags &= ~CLONE_NEWTIME;
  const { fork, sigprocmask } = libc();
  // Block every signal across the fork: the child must not run a runtime's signal handler (no
  // thread serves it there) before it has put the dispositions back to their defaults.
  const saved = new Uint8Array(128);
  sigprocmask(SIG_BLOCK, ALL_SIGNALS, saved);
  // glibc's fork() takes every malloc arena lock first, so the child's heap is consistent — but in
  // a child made by a raw clone, another (now vanished) thread may hold an arena lock forever and
  // fork() would wait on it. There, and whenever namespace flags are asked for, clone directly.
  let ret: number, err = 0;
  if (cloneFlags !== 0 && !forkedChild && CLONE_VIA_FORK) [ret, err] = cloneViaFork(cloneFlags);
  else if (cloneFlags === 0 && !forkedChild) {
    prepareFork(); // and again inside fork(), natively (see the module's notes)
    ret = fork();
    if (ret === -1) err = errno();
  } else [ret, err] = rawClone(BigInt(cloneFlags | SIGCHLD));
  if (ret === 0) {
    forkedChild = true;
    resetHandledSignals();
    if (newTime) enterNewTimeNamespace();
  }
  sigprocmask(SIG_SETMASK, saved, null);
  if (ret === -1) {
    throw new SyscallError(cloneFlags ? "clone" : "fork", err, cloneFlags ? [`0x${cloneFlags.toString(16)}`] : []);
  }
  return ret;
}

/**
 * A raw clone from the multithreaded runtime copies whatever another thread was in the middle of:
 * glibc's fork() takes every malloc arena lock and runs the fork handlers first, so its child is
 * consistent, but a raw clone's is not. Under Bun this left about 1 in 40 namespace clones under
 * load parked forever on a lock of JavaScriptCore's allocator; under Deno about 1 forked container
 * child in 100–1000 died of SIGSEGV before its first report — only ever after a raw clone with
 * namespace flags, never after the glibc fork() of `Process.fork` (thousands per test run).
 * {@link cloneViaFork} forks a single-threaded intermediate (glibc's fork), which clones the real
 * child with CLONE_PARENT (so the caller is its parent and reaps it) and exits. It costs one more
 * fork; containers rarely take this path now (see `ffi/spawn.ts`).
 */
const CLONE_VIA_FORK = true;

/**
 * The namespace clone through an intermediate fork (see {@link CLONE_VIA_FORK}). Runs with
 * signals blocked. Returns `[pid, 0]` in the caller, `[0, 0]` in the child, `[-1, errno]` on failure.
 */
function cloneViaFork(cloneFlags: number): [number, number] {
  // The intermediate (a copy of the runtime) dies now and then before it clones (a page missing
  // in the copy, see above): nothing exists yet then, so it is tried again. After its "about to
  // clone" word, a death is reported (ECHILD): the real child may exist.
  for (let attempt = 1;; attempt++) {
    const r = cloneViaForkOnce(cloneFlags);
    if (r !== "died before clone" || attempt >= 3) return r === "died before clone" ? [-1, ECHILD] : r;
  }
}

const ABOUT_TO_CLONE = -0x7fffffff;

function cloneViaForkOnce(cloneFlags: number): [number, number] | "died before clone" {
  const { fork, pipe2, read, write, close, waitpid, _exit } = libc();
  const fds = new Int32Array(2);
  if (pipe2(fds, O_CLOEXEC) === -1) return [-1, errno()];
  const [rd, wr] = [fds[0]!, fds[1]!];
  // Everything the intermediate uses is made here, so it allocates as little as it can.
  const words = new Int32Array(2);
  const bytes = new Uint8Array(words.buffer);
  const first = bytes.subarray(0, 4);
  const before = new Uint8Array(new Int32Array([ABOUT_TO_CLONE]).buffer);
  const st = new Int32Array(1);
  const flags = BigInt(cloneFlags | CLONE_PARENT | SIGCHLD);
  // MADV_DOFORK right before fork(), after this function's allocations: a page the engine maps
  // between the two (its heap growing for a new array) would be MADV_DONTFORK again and missing in
  // the intermediate, which then dies of SIGSEGV at its first allocation (seen: 1 namespace clone
  // in 5 under `hako run -t`, ~1 in 20 from a script; none in 180 with this order). Where the pass
  // is native it runs again inside fork(), after the last JavaScript.
  prepareFork();
  const mid = fork();
  if (mid === -1) {
    const e = errno();
    close(rd), close(wr);
    return [-1, e];
  }
  if (mid === 0) {
    // The intermediate: single-threaded, with a consistent heap. Its own new pages too must reach
    // the real child (as above: rawClone's pass is the last thing before the clone).
    write(wr, before, 4n);
    const [pid, e] = rawClone(flags);
    if (pid === 0) {
      close(rd), close(wr);
      return [0, 0]; // the real child
    }
    words[0] = pid === -1 ? -e : pid;
    write(wr, first, 4n);
    _exit(0);
  }
  close(wr);
  let got = 0;
  // These EINTR loops stay written out, not retryEintr: the signals are blocked and the pages
  // prepared for this fork (see prepareFork), so nothing is allocated here that need not be (no
  // closure), as in the intermediate above.
  for (;;) {
    const n = read(rd, bytes.subarray(got), BigInt(8 - got));
    if (n === -1 && errno() === EINTR) continue;
    if (n <= 0) break;
    got += n;
    if (got === 8) break;
  }
  close(rd);
  while (waitpid(mid, st, 0) === -1 && errno() === EINTR);
  if (got < 4) return "died before clone";
  if (got < 8) return [-1, ECHILD]; // the intermediate died while it cloned
  const pid = words[1]!;
  return pid < 0 ? [-1, -pid] : [pid, 0];
}

/**
 * `clone(flags, 0, 0, 0, 0)` with fork semantics (the child returns here too), the fork pass made
 * right before it: natively in the same call where the pass is native, else from JavaScript.
 * Returns `[pid, 0]` in the caller, `[0, 0]` in the child, `[-1, errno]` on failure.
 */
function rawClone(flags: bigint): [number, number] {
  const pass = nativePass();
  if (pass) {
    // The table as prepareFork would leave it, then the pass and the clone in one native call.
    prepareFork();
    const r = Number(pass.adviseClone(flags, 1n));
    return r < 0 ? [-1, -r] : [r, 0];
  }
  prepareFork();
  const r = Number(libc().syscall(BigInt(SYS.clone), flags, 0n, 0n, 0n, 0n));
  return r === -1 ? [-1, errno()] : [r, 0];
}

/**
 * In a fresh (single-threaded) child: unshare a time namespace, which is for children only, then
 * setns into it, so the child itself is in it. Exits 125 with a message when that fails: the
 * child must not return into its parent's code.
 */
function enterNewTimeNamespace(): void {
  const { unshare, open, setns, close, _exit } = libc();
  const file = "/proc/self/ns/time_for_children";
  const fail = (call: string, e: number, args: unknown[]): never => {
    console.error(`hako: ${new SyscallError(call, e, args, "enter a new time namespace").message}`);
    return _exit(125) as never;
  };
  if (unshare(CLONE_NEWTIME) !== 0) fail("unshare", errno(), ["CLONE_NEWTIME"]);
  const fd = open(new TextEncoder().encode(`${file}\0`), O_CLOEXEC, 0);
  if (fd < 0) fail("open", errno(), [file]);
  const ok = setns(fd, CLONE_NEWTIME) === 0;
  const e = errno();
  close(fd);
  if (!ok) fail("setns", e, [file, "CLONE_NEWTIME"]);
}

/**
 * In a fresh child, before any of its JavaScript: every signal with a handler goes back to SIG_DFL
 * (a runtime's handler would run on a thread the child does not have); ignored ones stay ignored
 * until the child's execve, which resets `EXEC_RESET_SIGNALS` (constants.ts) as the native runner does
 * (src/process.ts). Two moments, one policy for what the program gets.
 */
function resetHandledSignals(): void {
  const { sigaction, signal } = libc();
  const old = new BigUint64Array(19); // struct sigaction is 152 bytes; the handler comes first
  for (let sig = 1; sig < 32; sig++) {
    if (sig === 9 || sig === 19) continue;
    if (sigaction(sig, null, new Uint8Array(old.buffer)) === 0 && old[0]! > 1n) signal(sig, 0n);
  }
}
