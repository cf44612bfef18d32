/**
 * The op lists of a container's setup, read without root and without touching the kernel: the
 * native program (`nativeListing`, followed along the path where every call succeeds) and the
 * forked child's steps run against a recording double of libc (every symbol replaced for the
 * length of one synchronous call, so no libc call reaches the kernel; what goes through node:fs
 * still does, and only reads: setns opening a namespace file, a path resolved in the rootfs), both
 * as `{ step, call, args }` with their arguments made comparable. youki's recording syscall double
 * is the model.
 * @module
 */
import { libc, LIBC_SYMBOLS } from "../ffi/libc.ts";
import { SYS } from "../ffi/syscalls.ts";
import { DataAt, ProgramData, SlotValue } from "../ffi/spawn.ts";
import { capabilityPlan } from "../src/container/_capsets.ts";
import { keepPlan } from "../src/capability.ts";
import { nativeListing, type NativeOp } from "../src/container/native.ts";
import { runStep, type SetupContext, type SetupStep, stepsFor } from "../src/container/setup.ts";

/** An argument as compared: a number, a string (a C string), `hex:…` bytes, `<fd>`, `<ptr>`, null. */
export type Arg = number | string | null;

/** One kernel call of a step. */
export interface Op {
  readonly step: string;
  readonly call: string;
  readonly args: readonly Arg[];
}

/** The fds the double hands out (open, socket, open_tree…): told apart from other numbers. */
const FD_BASE = 900_000;
const isFd = (n: number) => n >= FD_BASE && n < FD_BASE + 10_000;

/** Names as both paths call them (the program's syscall names, libc's function names). */
const SAME: Readonly<Record<string, string>> = { prlimit64: "prlimit" };

const AT_FDCWD = -100;

/**
 * A program's `*at` call as the forked child's libc call of the same effect (the programs make
 * only the calls aarch64 has, ffi/spawn.ts): openat(AT_FDCWD, …) is open(…), mkdirat and mknodat
 * likewise, symlinkat(to, AT_FDCWD, path) is symlink(to, path), dup3(a, b, 0) is dup2(a, b).
 */
function asLibc(call: string, args: Arg[]): { call: string; args: Arg[] } {
  const at = { openat: "open", mkdirat: "mkdir", mknodat: "mknod" }[call];
  if (at && args[0] === AT_FDCWD) return { call: at, args: args.slice(1) };
  if (call === "symlinkat" && args[1] === AT_FDCWD) return { call: "symlink", args: [args[0]!, ...args.slice(2)] };
  if (call === "dup3" && (args[2] ?? 0) === 0) return { call: "dup2", args: args.slice(0, 2) };
  return { call: SAME[call] ?? call, args };
}

function bytesArg(b: Uint8Array): Arg {
  const body = b.length > 0 && b[b.length - 1] === 0 ? b.subarray(0, -1) : b;
  if (body.length > 0 && body.every((x) => x >= 0x20 && x !== 0x7f)) return new TextDecoder().decode(body);
  return `hex:${[...b].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

function numberArg(n: number | bigint): Arg {
  if (typeof n === "bigint") {
    if (n > 0xffff_ffffn || n < -0x8000_0000n) return "<ptr>"; // an address (addressOf a buffer)
    n = Number(n);
  }
  return isFd(n) ? "<fd>" : n;
}

/** A native program's argument, as compared. */
function nativeArg(a: unknown): Arg {
  if (a === null || a === undefined) return null;
  if (typeof a === "number" || typeof a === "bigint") return numberArg(a);
  if (a instanceof SlotValue) return "<fd>"; // (an fd the program keeps in a slot)
  if (a instanceof DataAt) return "<ptr>";
  if (a instanceof ProgramData) return a.pointers.length || a.top ? "<ptr>" : bytesArg(a.bytes);
  throw new TypeError(`an argument of unknown kind: ${String(a)}`);
}

/** A libc argument of the forked child, as compared. */
function libcArg(a: unknown): Arg {
  if (a === null || a === undefined) return null;
  if (typeof a === "number" || typeof a === "bigint") return numberArg(a);
  if (ArrayBuffer.isView(a)) return bytesArg(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  if (typeof a === "object") return "<ptr>"; // (a pointer object)
  throw new TypeError(`an argument of unknown kind: ${String(a)}`);
}

/**
 * Trailing zeros and NULLs dropped: a call's unused arguments (`syscall` passes six, the program
 * as many as it names).
 */
function trim(args: Arg[]): Arg[] {
  while (args.length && (args[args.length - 1] === 0 || args[args.length - 1] === null)) args.pop();
  return args;
}

/**
 * The calls of the native program of `ctx`, along the path where every call succeeds (a jump
 * taken, a clone's child followed: the container goes on there), up to its execve; undefined when
 * the child must be forked.
 */
export function nativeOps(ctx: SetupContext): Op[] | undefined {
  lastCapProbed();
  const listing = nativeListing(ctx, planFor(ctx));
  if (!listing) return undefined;
  return successPath(listing);
}

/** The ops run when every call succeeds, from op 0 to the first execve. */
export function successPath(listing: readonly NativeOp[]): Op[] {
  const out: Op[] = [];
  for (let i = 0, n = 0; i < listing.length; n++) {
    if (n > 100_000) throw new Error("the program loops");
    const op = listing[i]!;
    if (op.kind === "jump") {
      i = op.to;
      continue;
    }
    if (op.kind === "clone") {
      out.push({ step: op.step!, call: "clone", args: [op.flags] });
      i = op.child;
      continue;
    }
    if (op.kind === "remount-readonly") {
      // statfs(path), then the remount keeping the flags it found
      const path = nativeArg(op.path);
      out.push({ step: op.step!, call: "statvfs", args: [path, "*"] });
      out.push({ step: op.step!, call: "mount", args: [null, path, null, "*"] });
      i++;
      continue;
    }
    const libcCall = asLibc(op.name, op.args.map(nativeArg));
    out.push({ step: op.step!, call: libcCall.call, args: trim(libcCall.args) });
    if (op.name === "execve") break;
    i++;
  }
  return out;
}

/**
 * The capability plan both paths get: worked out under the double as the forked child's
 * capabilities step works it out (`capabilityPlan(spec, userns)`: the caller as root with every
 * capability; its bounding set as capability.ts has it, read once and kept), so the two lists do
 * not depend on who runs the test, nor on what an earlier test left in that cache.
 */
function planFor(ctx: SetupContext) {
  return withDouble(() => capabilityPlan(ctx.spec, ctx.userns)).value;
}

/** The kernel's last capability, probed once for real (capability.ts keeps it) before any double. */
function lastCapProbed(): void {
  keepPlan([], {}, true);
}

const PR_CAPBSET_READ = 23;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_IS_SET = 1;

/** What the double answers a read with (the caller's state, as root with every capability). */
function answer(name: string, args: unknown[], result: string, nextFd: () => number): unknown {
  if (name === "capget") {
    (args[1] as Uint8Array).fill(0xff); // every capability in every set
    return 0;
  }
  if (name === "prctl" && Number(args[0]) === PR_CAPBSET_READ) return 1;
  if (name === "prctl" && Number(args[0]) === PR_CAP_AMBIENT && Number(args[1]) === PR_CAP_AMBIENT_IS_SET) return 0;
  if (name === "getpid") return 4242;
  const fdLike = name === "open" || name === "socket" || name === "dup" ||
    (name === "syscall" && [SYS.open_tree, SYS.openat2].includes(Number(args[0])));
  // (read and write: done in full, as a pipe's byte is; the hooks-sync step reads and writes)
  const value = fdLike ? nextFd() : name === "read" || name === "write" ? Number(args[2]) : 0;
  if (result === "void") return undefined;
  if (result === "pointer") return null;
  if (/64|size/.test(result)) return BigInt(value);
  return value;
}

/** The double's planning reads: the native program makes them in the parent, before the clone. */
export const PROBES: ReadonlyArray<(op: Op) => boolean> = [
  (op) => op.call === "capget",
  (op) =>
    op.call === "prctl" && (op.args[0] === PR_CAPBSET_READ ||
      (op.args[0] === PR_CAP_AMBIENT && op.args[1] === PR_CAP_AMBIENT_IS_SET)),
  (op) => op.call === "getpid",
];

/**
 * Runs `fn` with every libc symbol replaced by the recording double (restored after, even when it
 * throws): each call is recorded under `step()` and answered as the kernel would answer root with
 * every capability, touching nothing. `fn` must be synchronous.
 * @returns What `fn` returned, and the calls it made (the planning reads, {@link PROBES}, left out).
 */
export function withDouble<T>(fn: () => T, step: () => string = () => ""): { value: T; ops: Op[] } {
  lastCapProbed(); // for real, before the double answers every probe (one test file's double, then another's real drops)
  const table = libc() as unknown as Record<string, unknown>;
  const saved = new Map(Object.keys(LIBC_SYMBOLS).map((k) => [k, table[k]] as const));
  const sysName = new Map(Object.entries(SYS).map(([k, v]) => [v as number, k] as const));
  const out: Op[] = [];
  let fd = FD_BASE;
  try {
    for (const [name, def] of Object.entries(LIBC_SYMBOLS)) {
      table[name] = (...args: unknown[]) => {
        const call = name === "syscall" ? sysName.get(Number(args[0])) ?? `syscall(${args[0]})` : name;
        const shown = name === "syscall" ? args.slice(1) : args;
        out.push({ step: step(), call: SAME[call] ?? call, args: trim(shown.map(libcArg)) });
        return answer(name, args, (def as { result: string }).result, () => fd++);
      };
    }
    const value = fn();
    return { value, ops: out.filter((op) => !PROBES.some((p) => p(op))) };
  } finally {
    for (const [k, v] of saved) table[k] = v;
  }
}

/**
 * Runs `steps` (default: the container's, {@link stepsFor}) as the forked child would, each call
 * to libc recorded and answered by the double instead of the kernel. Steps in `skip` are not run
 * (they fork: a double cannot follow both sides), only named.
 */
export function forkedOps(
  ctx: SetupContext,
  options: { readonly steps?: readonly SetupStep[]; readonly skip?: readonly string[] } = {},
): Op[] {
  const steps = (options.steps ?? stepsFor(ctx)).filter((s) => s.when(ctx));
  lastCapProbed();
  let step = "";
  const skipped: Op[] = [];
  const { ops } = withDouble(() => {
    for (const s of steps) {
      step = s.name;
      if (options.skip?.includes(s.name)) {
        skipped.push({ step, call: "(not run: it forks)", args: [] });
        continue;
      }
      runStep(ctx, s);
    }
  }, () => step);
  // (a skipped step's marker sits where it ran: before the next step's calls)
  const out: Op[] = [];
  for (const s of steps) {
    out.push(...skipped.filter((o) => o.step === s.name), ...ops.filter((o) => o.step === s.name));
  }
  return out;
}
