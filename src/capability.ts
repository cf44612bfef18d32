/**
 * Linux capabilities: names and numbers, reading a process's five sets, and the container way of
 * keeping only a few (bounding set dropped first, then effective = permitted = inheritable, ambient
 * cleared or raised), plus hacorb's `Capability.new` / `set` / `set_flag` spelling.
 *
 * Capabilities belong to a thread. In a forked child (single-threaded) that is the process; in the
 * runtime's own process only the calling thread changes, so change capabilities in the child that
 * goes on to exec.
 *
 * @example Keep three capabilities in a child, then exec
 * ```ts ignore
 * import { Capability, Process } from "./mod.ts";
 * const pid = Process.fork(() => {
 *   Capability.keep(["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]);
 *   Process.exec("/bin/sh");
 * });
 * Process.waitpid2(pid);
 * ```
 * @module
 */
import { readFileSync, writeSync } from "node:fs";
import process from "node:process";
import { check, errno, libc } from "../ffi/libc.ts";
import { capDataBuffer, capHeader, type CapSets, decodeCapData, encodeCapData } from "../ffi/structs.ts";
import { ConfigError, fsError, SyscallError } from "./errors.ts";
import {
  EINVAL,
  EPERM,
  PR_CAP_AMBIENT,
  PR_CAP_AMBIENT_CLEAR_ALL,
  PR_CAP_AMBIENT_IS_SET,
  PR_CAP_AMBIENT_LOWER,
  PR_CAP_AMBIENT_RAISE,
  PR_CAPBSET_DROP,
  PR_CAPBSET_READ,
  PR_GET_KEEPCAPS,
  PR_GET_NO_NEW_PRIVS,
  PR_GET_SECUREBITS,
  PR_SET_KEEPCAPS,
  PR_SET_NO_NEW_PRIVS,
} from "../ffi/constants.ts";

/** A capability's canonical name, e.g. `"CAP_CHOWN"`. */
export type CapabilityName = typeof Capability.NAMES[number];

/**
 * A capability as a script may write it: `"CAP_CHOWN"`, `"chown"` (any case, prefix optional),
 * `"CAP_41"` for one newer than hako knows, or its number.
 */
export type CapabilityLike = CapabilityName | string | number;

/** All five capability sets of a thread, as canonical names in number order. */
export interface CapabilityState {
  /** The capabilities the thread uses now. */
  readonly effective: string[];
  /** The capabilities it may make effective. */
  readonly permitted: string[];
  /** The capabilities preserved across execve (with file or ambient capabilities). */
  readonly inheritable: string[];
  /** The limit on what execve may grant. */
  readonly bounding: string[];
  /** The capabilities kept across execve of an unprivileged program. */
  readonly ambient: string[];
}

/** Options for {@link Capability.keep}. */
export interface KeepOptions {
  /**
   * Also raise the kept capabilities in the ambient set, so a program exec'd under a non-root
   * uid keeps them (default false: the ambient set is cleared).
   */
  readonly ambient?: boolean;
  /**
   * Apply the keep right before the next `Process.exec` (`Kernel.exec`) of this process, where it
   * becomes the container's command, instead of now (default false). Everything is checked now
   * all the same; until the exec the process keeps its capabilities, so the steps a hacorb script
   * takes after choosing them (sethostname, mount, `system("hostname …")`) still work. Commands run
   * by `system`/`Process.spawn` meanwhile are not limited by it. A later `keep` replaces it; a
   * child forked after it inherits it, as it inherits the sets.
   */
  readonly atExec?: boolean;
}

/** Options for `new Capability()`. */
export interface CapabilityOptions {
  /** Apply each change at once with capset, as hacorb does (default true); false: call `apply()`. */
  readonly apply?: boolean;
  /** Set `PR_SET_KEEPCAPS` so the permitted set survives a later setuid to non-root, as hacorb does (default true). */
  readonly keepCaps?: boolean;
}

const SECBIT_NOROOT = 1;
const CAP_SETPCAP = 8;
const FLAG_NAMES = ["effective", "permitted", "inheritable"] as const;

/** A value shown unquoted in a {@link SyscallError} message. */
const sym = (text: string) => Object.freeze({ toString: () => text });

/** prctl(2) with the unsigned long arguments given as numbers. */
function prctl(option: number, a2 = 0, a3 = 0, a4 = 0, a5 = 0): number {
  return libc().prctl(option, BigInt(a2), BigInt(a3), BigInt(a4), BigInt(a5));
}

let lastCapCache: number | undefined;

/**
 * The highest capability number the running kernel knows: `/proc/sys/kernel/cap_last_cap` (as
 * libcap and runc read it), else probed once with PR_CAPBSET_READ (a /proc not mounted).
 */
function lastCap(): number {
  if (lastCapCache !== undefined) return lastCapCache;
  try {
    const text = readFileSync("/proc/sys/kernel/cap_last_cap", "latin1").trim();
    if (/^\d{1,2}$/.test(text) && Number(text) <= 63) return (lastCapCache = Number(text));
  } catch { /* probed below */ }
  let n = 63;
  while (n > 0 && prctl(PR_CAPBSET_READ, n, 0, 0, 0) === -1) n--;
  return (lastCapCache = n);
}

/** The highest number hako accepts: every capability it names, and any the kernel knows beyond. */
function maxCap(): number {
  return Math.max(Capability.NAMES.length - 1, lastCap());
}

function capNumber(c: CapabilityLike, path: string): number {
  if (typeof c === "number") {
    if (Number.isInteger(c) && c >= 0 && c <= maxCap()) return c;
    throw new ConfigError(path, `capability number must be an integer in 0..${maxCap()}, got ${c}`);
  }
  if (typeof c !== "string") throw new ConfigError(path, `must be a capability name or number, got ${typeof c}`);
  const upper = c.trim().toUpperCase();
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  const n = (Capability.NAMES as readonly string[]).indexOf(full);
  if (n >= 0) return n;
  const numeric = /^CAP_(\d+)$/.exec(full);
  if (numeric && Number(numeric[1]) <= maxCap()) return Number(numeric[1]);
  throw new ConfigError(path, `unknown capability ${JSON.stringify(c)} (one of CAP_CHOWN … CAP_CHECKPOINT_RESTORE)`);
}

function capName(n: number): string {
  return Capability.NAMES[n] ?? `CAP_${n}`;
}

function toMask(list: CapabilityLike | readonly CapabilityLike[], path: string): bigint {
  const items = Array.isArray(list) ? list as readonly CapabilityLike[] : [list as CapabilityLike];
  let mask = 0n;
  items.forEach((c, i) => (mask |= 1n << BigInt(capNumber(c, Array.isArray(list) ? `${path}[${i}]` : path))));
  return mask;
}

function fromMask(mask: bigint): string[] {
  const out: string[] = [];
  for (let n = 0; n < 64; n++) if ((mask >> BigInt(n)) & 1n) out.push(capName(n));
  return out;
}

function bits(mask: bigint): number[] {
  const out: number[] = [];
  for (let n = 0; n < 64; n++) if ((mask >> BigInt(n)) & 1n) out.push(n);
  return out;
}

function capget(pid = 0): CapSets {
  const data = capDataBuffer();
  check(libc().capget(capHeader(pid), data), "capget", [pid]);
  return decodeCapData(data);
}

function capset(sets: CapSets, context: string): void {
  const shown = sym(`e=${fmtMask(sets.effective)} p=${fmtMask(sets.permitted)} i=${fmtMask(sets.inheritable)}`);
  check(libc().capset(capHeader(0), encodeCapData(sets)), "capset", [shown], context);
}

function fmtMask(mask: bigint): string {
  return `0x${mask.toString(16)}`;
}

function boundRead(n: number): boolean {
  return check(prctl(PR_CAPBSET_READ, n, 0, 0, 0), "prctl", [sym("PR_CAPBSET_READ"), sym(capName(n))]) === 1;
}

/** Every capability the running kernel knows, as a mask. */
function fullSet(): bigint {
  return (1n << BigInt(lastCap() + 1)) - 1n;
}

/**
 * The calling process's bounding set, read once (one prctl per capability) and kept: the set only
 * ever shrinks, and hako's own drops forget it, so a kept copy can only hold capabilities dropped
 * since — and dropping one of those again is harmless.
 */
let boundingCache: bigint | undefined;
function boundingSet(): bigint {
  if (boundingCache !== undefined) return boundingCache;
  let mask = 0n;
  for (let n = 0; n <= lastCap(); n++) if (boundRead(n)) mask |= 1n << BigInt(n);
  return boundingCache = mask;
}

function boundDrop(n: number, context: string): void {
  boundingCache = undefined;
  check(prctl(PR_CAPBSET_DROP, n, 0, 0, 0), "prctl", [sym("PR_CAPBSET_DROP"), sym(capName(n))], context);
}

function ambientIsSet(n: number): boolean {
  const r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, n, 0, 0);
  if (r === -1 && errno() === EINVAL) return false; // a kernel without ambient capabilities (< 4.3)
  return check(r, "prctl", [sym("PR_CAP_AMBIENT_IS_SET"), sym(capName(n))]) === 1;
}

function ambientClear(context: string): void {
  const r = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (r === -1 && errno() === EINVAL) return; // no ambient set to clear
  check(r, "prctl", [sym("PR_CAP_AMBIENT_CLEAR_ALL")], context);
}

function ambientChange(op: number, opName: string, mask: bigint, context: string): void {
  for (const n of bits(mask)) {
    check(prctl(PR_CAP_AMBIENT, op, n, 0, 0), "prctl", [sym(opName), sym(capName(n))], context);
  }
}

/** Throws before anything changes when bounding-set drops are needed but CAP_SETPCAP is not effective. */
function assertCanDropBound(current: CapSets, drops: number[], context: string): void {
  if (drops.length > 0 && !((current.effective >> BigInt(CAP_SETPCAP)) & 1n)) {
    throw new SyscallError(
      "prctl",
      EPERM,
      [sym("PR_CAPBSET_DROP"), sym(capName(drops[0]!))],
      `${context}: dropping from the bounding set needs CAP_SETPCAP in the effective set`,
    );
  }
}

function parseStatusMask(status: string, key: string): bigint {
  const m = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, "m").exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

function readAll(pid: number): CapabilityState {
  const self = pid === 0 || pid === libc().getpid();
  const sets = capget(self ? 0 : pid);
  let bounding = 0n, ambient = 0n;
  if (self) {
    for (let n = 0; n <= lastCap(); n++) {
      if (boundRead(n)) bounding |= 1n << BigInt(n);
      if (ambientIsSet(n)) ambient |= 1n << BigInt(n);
    }
  } else {
    const path = `/proc/${pid}/status`;
    let status: string;
    try {
      status = readFileSync(path, "utf8");
    } catch (e) {
      throw fsError(e, "open", path, `Capability.get(${pid})`);
    }
    bounding = parseStatusMask(status, "CapBnd");
    ambient = parseStatusMask(status, "CapAmb");
  }
  return {
    effective: fromMask(sets.effective),
    permitted: fromMask(sets.permitted),
    inheritable: fromMask(sets.inheritable),
    bounding: fromMask(bounding),
    ambient: fromMask(ambient),
  };
}

function flagIndex(flag: number, path: string): 0 | 1 | 2 {
  if (flag === 0 || flag === 1 || flag === 2) return flag;
  throw new ConfigError(path, `must be CAP_EFFECTIVE (0), CAP_PERMITTED (1) or CAP_INHERITABLE (2), got ${flag}`);
}

/** What {@link Capability.keep} will do, worked out (and checked) before anything changes. */
export interface KeepPlan {
  /** The capabilities kept, as a mask. */
  readonly mask: bigint;
  /** The bounding-set capabilities to drop, in order. */
  readonly drops: readonly number[];
  /** Whether the kept ones are raised in the ambient set. */
  readonly ambient: boolean;
  /**
   * The sets {@link keepSets} sets instead of `mask` in each (and `ambient` raised), when they
   * differ: a container spec's five sets, or the ambient set of a non-root user.
   */
  readonly sets?: {
    readonly effective: bigint;
    readonly permitted: bigint;
    readonly inheritable: bigint;
    readonly ambient: bigint;
  };
}

/**
 * Plans {@link Capability.keep} for the calling thread's current sets, checking everything keep
 * checks; a process forked or cloned from this thread (without a new user namespace) has the
 * same sets, so the plan holds there too — hako's native container child runs it as system calls.
 * With `inUserNamespace`, the plan is for root of a new or joined user namespace instead, whose
 * sets (the bounding set too) are all full.
 * @param list The capabilities to keep.
 * @param options `ambient`: raise them in the ambient set too.
 * @param inUserNamespace Plan for root of a user namespace (default false: for this thread).
 * @returns The plan.
 * @throws {ConfigError} For an unknown capability.
 * @throws {SyscallError} EPERM when a capability is not permitted or CAP_SETPCAP is missing.
 */
export function keepPlan(
  list: readonly CapabilityLike[],
  options: KeepOptions = {},
  inUserNamespace = false,
): KeepPlan {
  const context = "Capability.keep";
  const mask = toMask(list, "Capability.keep");
  // Root of a new (or joined) user namespace holds every capability in every set, the bounding
  // set included, whatever the process it came from held (the kernel's set_cred_user_ns).
  const full = fullSet();
  const current = inUserNamespace ? { effective: full, permitted: full, inheritable: 0n } : capget(0);
  const missing = mask & ~current.permitted;
  if (missing !== 0n) {
    throw new SyscallError(
      "capset",
      EPERM,
      [sym(fromMask(missing).join("|"))],
      `${context}: ${fromMask(missing).join(", ")} not in the permitted set, so it cannot be kept`,
    );
  }
  const bounding = inUserNamespace ? full : boundingSet();
  const drops: number[] = [];
  for (let n = 0; n <= lastCap(); n++) if (!((mask >> BigInt(n)) & 1n) && ((bounding >> BigInt(n)) & 1n)) drops.push(n);
  assertCanDropBound(current, drops, context);
  return { mask, drops, ambient: options.ambient ?? false };
}

/**
 * The first half of {@link Capability.keep}: drops the plan's bounding-set capabilities (this
 * needs CAP_SETPCAP, so it comes before any setuid). A container that then changes to another
 * user sets `PR_SET_KEEPCAPS` too (`keepCaps`), so its permitted set survives the setresuid and
 * {@link keepSets} can still set it.
 * @throws {SyscallError} When a drop fails.
 */
export function keepBounding(plan: KeepPlan, options: { readonly keepCaps?: boolean } = {}): void {
  const context = "Capability.keep";
  for (const n of plan.drops) boundDrop(n, context);
  if (options.keepCaps) {
    check(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl", [sym("PR_SET_KEEPCAPS"), 1], context);
  }
}

/**
 * The second half of {@link Capability.keep}: effective = permitted = inheritable = the plan's
 * capabilities, the ambient set cleared (or raised to them); or the plan's `sets`, when it has them.
 * @throws {SyscallError} When capset or prctl fails.
 */
export function keepSets(plan: KeepPlan): void {
  const context = "Capability.keep";
  const m = plan.mask;
  const s = plan.sets ?? { effective: m, permitted: m, inheritable: m, ambient: plan.ambient ? m : 0n };
  capset({ effective: s.effective, permitted: s.permitted, inheritable: s.inheritable }, context);
  ambientClear(context);
  if (s.ambient !== 0n) ambientChange(PR_CAP_AMBIENT_RAISE, "PR_CAP_AMBIENT_RAISE", s.ambient, context);
}

// ---------------------------------------------------------------------------------------------
// exec: the deferred keep, and the warning for hacorb-style calls that exec undoes

/** A `keep(list, { atExec: true })` waiting for the next exec (inherited by a forked child, as the sets are). */
let keepAtExec: { readonly list: readonly CapabilityLike[]; readonly options: KeepOptions } | undefined;
/** Whether a hacorb-style instance (`set`, `set_flag`, `clear`, `apply`) has changed this thread's sets. */
let hacorbChanged = false;
/** Whether the exec warning has been printed (once per process). */
let execWarned = false;

/** True when `HAKO_QUIET` asks hako not to print warnings (any value but empty and `0`). */
function quiet(): boolean {
  const q = process.env.HAKO_QUIET;
  return q !== undefined && q !== "" && q !== "0";
}

/**
 * The capabilities execve will give this thread back that it does not hold now: for a process
 * whose real or effective uid is 0 (and without SECBIT_NOROOT), the kernel treats every program
 * as if its file capabilities were all set, so the new permitted set is the whole bounding set,
 * and with effective uid 0 the new effective set too (capabilities(7), "Capabilities and
 * execution of programs by root").
 */
function regainedAtExec(): bigint {
  const securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
  if (securebits !== -1 && (securebits & SECBIT_NOROOT) !== 0) return 0n;
  const { getuid, geteuid } = libc();
  const euid = geteuid();
  if (getuid() !== 0 && euid !== 0) return 0n;
  const now = capget(0);
  return boundingSet() & ~(euid === 0 ? now.effective : now.permitted);
}

/**
 * Called by `Process.exec` right before execve, where the process becomes the program: applies a
 * pending `Capability.keep(list, { atExec: true })`, then warns (once per process, on stderr,
 * unless `HAKO_QUIET=1`) when hacorb-style instance calls shrank the sets but execve will give the
 * capabilities back from the bounding set.
 * @throws {ConfigError} @throws {SyscallError} When the pending keep cannot be applied (nothing
 * changed: it is checked first); the exec does not happen.
 */
export function capabilitiesBeforeExec(): void {
  if (keepAtExec) {
    const { list, options } = keepAtExec;
    const plan = keepPlan(list, options);
    keepAtExec = undefined;
    keepBounding(plan);
    keepSets(plan);
  }
  if (!hacorbChanged || execWarned || quiet()) return;
  let regained: bigint;
  try {
    regained = regainedAtExec();
  } catch {
    return; // a warning must never stop the exec
  }
  if (regained === 0n) return;
  execWarned = true;
  const names = fromMask(regained);
  const shown = names.length > 4 ? `${names.slice(0, 4).join(", ")} and ${names.length - 4} more` : names.join(", ");
  const text = `hako: warning: this exec gives the process back ${shown}: Capability#set/set_flag ` +
    `changed only the effective, permitted and inheritable sets, and execve as root grants every ` +
    `capability left in the bounding set. Use Capability.keep(list) (or ` +
    `Capability.keep(list, { atExec: true }) to apply it at exec) to keep only those. ` +
    `(HAKO_QUIET=1 silences this.)\n`;
  try {
    writeSync(2, text);
  } catch { /* stderr closed */ }
}

/**
 * Linux capabilities. The statics are the primitives (`Capability.keep`, `Capability.get`, …);
 * an instance is hacorb's `Capability.new`: a state of the effective, permitted and inheritable
 * sets that starts empty and, by default, is applied to the calling thread with capset on every
 * change (`set`, `setFlag`, `clear`), exactly as hacorb does. The `CAP_*` numbers and the
 * `CAP_EFFECTIVE`/`CAP_PERMITTED`/`CAP_INHERITABLE` and `CAP_SET`/`CAP_CLEAR` flags are statics.
 *
 * As in hacorb, an instance changes only those three sets: a root process's execve gives back
 * every capability still in the bounding set. So the first `Process.exec` after such calls prints
 * a `hako: warning:` (once, on stderr; `HAKO_QUIET=1` silences it) naming what the exec gives back
 * and {@link Capability.keep}, which trims the bounding set too (`{ atExec: true }`: at the exec).
 *
 * @example hacorb's spelling, in a forked child
 * ```ts ignore
 * const caps = [Capability.CAP_SETUID, Capability.CAP_SETGID];
 * const c = new Capability();
 * c.set(Capability.CAP_PERMITTED, caps);          // permitted = caps (applied now)
 * c.setFlag(Capability.CAP_EFFECTIVE, caps, Capability.CAP_SET);
 * c.clear(Capability.CAP_EFFECTIVE, [Capability.CAP_SETGID]);
 * ```
 */
export class Capability {
  /** The effective set (hacorb flag 0). */
  static readonly CAP_EFFECTIVE = 0;
  /** The permitted set (hacorb flag 1). */
  static readonly CAP_PERMITTED = 1;
  /** The inheritable set (hacorb flag 2). */
  static readonly CAP_INHERITABLE = 2;
  /** `setFlag` value: remove. */
  static readonly CAP_CLEAR = 0;
  /** `setFlag` value: add. */
  static readonly CAP_SET = 1;

  /** Change file ownership. */
  static readonly CAP_CHOWN = 0;
  /** Bypass file permission checks. */
  static readonly CAP_DAC_OVERRIDE = 1;
  /** Bypass read and directory search permission checks. */
  static readonly CAP_DAC_READ_SEARCH = 2;
  /** Bypass checks that the caller owns the file. */
  static readonly CAP_FOWNER = 3;
  /** Keep set-user-ID/set-group-ID bits when modifying a file. */
  static readonly CAP_FSETID = 4;
  /** Send signals to any process. */
  static readonly CAP_KILL = 5;
  /** Change gids and supplementary groups. */
  static readonly CAP_SETGID = 6;
  /** Change uids. */
  static readonly CAP_SETUID = 7;
  /** Change capability sets; drop from the bounding set. */
  static readonly CAP_SETPCAP = 8;
  /** Set the immutable and append-only file attributes. */
  static readonly CAP_LINUX_IMMUTABLE = 9;
  /** Bind ports below 1024. */
  static readonly CAP_NET_BIND_SERVICE = 10;
  /** Broadcast and listen to multicast (unused). */
  static readonly CAP_NET_BROADCAST = 11;
  /** Network administration. */
  static readonly CAP_NET_ADMIN = 12;
  /** Raw and packet sockets. */
  static readonly CAP_NET_RAW = 13;
  /** Lock memory. */
  static readonly CAP_IPC_LOCK = 14;
  /** Bypass System V IPC permission checks. */
  static readonly CAP_IPC_OWNER = 15;
  /** Load and unload kernel modules. */
  static readonly CAP_SYS_MODULE = 16;
  /** Raw I/O (iopl, ioperm, /dev/mem). */
  static readonly CAP_SYS_RAWIO = 17;
  /** chroot and changing mount namespaces. */
  static readonly CAP_SYS_CHROOT = 18;
  /** Trace any process. */
  static readonly CAP_SYS_PTRACE = 19;
  /** Process accounting. */
  static readonly CAP_SYS_PACCT = 20;
  /** System administration (mount, sethostname, …). */
  static readonly CAP_SYS_ADMIN = 21;
  /** Reboot and kexec. */
  static readonly CAP_SYS_BOOT = 22;
  /** Raise priorities and scheduling classes. */
  static readonly CAP_SYS_NICE = 23;
  /** Override resource limits. */
  static readonly CAP_SYS_RESOURCE = 24;
  /** Set the system clock. */
  static readonly CAP_SYS_TIME = 25;
  /** Configure terminals (vhangup). */
  static readonly CAP_SYS_TTY_CONFIG = 26;
  /** Create device nodes. */
  static readonly CAP_MKNOD = 27;
  /** Take file leases. */
  static readonly CAP_LEASE = 28;
  /** Write the audit log. */
  static readonly CAP_AUDIT_WRITE = 29;
  /** Configure auditing. */
  static readonly CAP_AUDIT_CONTROL = 30;
  /** Set file capabilities. */
  static readonly CAP_SETFCAP = 31;
  /** Override mandatory access control. */
  static readonly CAP_MAC_OVERRIDE = 32;
  /** Configure mandatory access control. */
  static readonly CAP_MAC_ADMIN = 33;
  /** Privileged syslog operations. */
  static readonly CAP_SYSLOG = 34;
  /** Wake the system with alarms. */
  static readonly CAP_WAKE_ALARM = 35;
  /** Block system suspend. */
  static readonly CAP_BLOCK_SUSPEND = 36;
  /** Read the audit log. */
  static readonly CAP_AUDIT_READ = 37;
  /** Performance monitoring. */
  static readonly CAP_PERFMON = 38;
  /** BPF operations. */
  static readonly CAP_BPF = 39;
  /** Checkpoint/restore operations. */
  static readonly CAP_CHECKPOINT_RESTORE = 40;

  /** Every capability the kernel defines, by number (0 = `CAP_CHOWN` … 40 = `CAP_CHECKPOINT_RESTORE`). */
  static readonly NAMES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
  ] as const;

  // -------------------------------------------------------------------------------------------
  // names and numbers

  /**
   * A capability's number.
   * @param c A name (`"CAP_CHOWN"`, `"chown"`) or number.
   * @returns The number, e.g. 0.
   * @throws {ConfigError} For an unknown name or a number out of range.
   */
  static numberOf(c: CapabilityLike): number {
    return capNumber(c, "capability");
  }

  /** hacorb's `Capability.from_name`: a capability's number. @throws {ConfigError} For an unknown name. */
  static from_name(name: CapabilityLike): number {
    return capNumber(name, "capability");
  }

  /** Alias of {@link Capability.from_name}. @throws {ConfigError} For an unknown name. */
  static fromName(name: CapabilityLike): number {
    return capNumber(name, "capability");
  }

  /**
   * A capability's canonical name.
   * @param c A name or number.
   * @returns `"CAP_CHOWN"`, or `"CAP_<n>"` for a number newer than hako knows.
   * @throws {ConfigError} For an unknown name or a number out of range.
   */
  static nameOf(c: CapabilityLike): string {
    return capName(capNumber(c, "capability"));
  }

  /**
   * The 64-bit mask of a list (bit n = capability n), as /proc/PID/status shows it in hex.
   * @param list Names or numbers.
   * @returns The mask.
   * @throws {ConfigError} For an unknown capability, naming its index.
   */
  static toMask(list: CapabilityLike | readonly CapabilityLike[]): bigint {
    return toMask(list, "capabilities");
  }

  /**
   * The names in a mask, in number order.
   * @param mask A mask such as `0x20n`, or the hex text of /proc/PID/status (`"0000000000000020"`).
   * @returns The canonical names.
   */
  static fromMask(mask: bigint | string): string[] {
    return fromMask(typeof mask === "string" ? BigInt(`0x${mask.replace(/^0x/i, "")}`) : mask);
  }

  /**
   * The highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
   * @returns E.g. 40.
   */
  static lastCap(): number {
    return lastCap();
  }

  /** True when the running kernel knows the capability (hacorb's `supported?`). @throws {ConfigError} For an unknown name. */
  static supported(c: CapabilityLike): boolean {
    return capNumber(c, "capability") <= lastCap();
  }

  // -------------------------------------------------------------------------------------------
  // reading

  /**
   * All five sets of a process: effective, permitted and inheritable with capget (version 3),
   * bounding and ambient with prctl for the caller, from /proc/PID/status for another process.
   * @param pid The process (default: the calling thread).
   * @returns The sets as canonical names.
   * @throws {SyscallError} ESRCH when there is no such process.
   */
  static get(pid = 0): CapabilityState {
    if (!Number.isInteger(pid) || pid < 0) throw new ConfigError("pid", `must be a pid (0: the caller), got ${pid}`);
    return readAll(pid);
  }

  /** hacorb's class-level `get_proc`: a {@link Capability} loaded with the calling thread's sets. */
  static get_proc(): Capability {
    return new Capability({ keepCaps: false }).get();
  }

  // -------------------------------------------------------------------------------------------
  // the container way

  /**
   * Keeps exactly `list` and drops every other capability: first from the bounding set (while
   * CAP_SETPCAP is still held), then effective = permitted = inheritable = `list` with capset,
   * then the ambient set is cleared (or, with `ambient`, raised to `list`). A program exec'd as
   * root afterwards shows exactly `list` in CapEff, CapPrm and CapBnd.
   *
   * Everything is checked before anything changes: each name, that each is in the permitted set,
   * and that CAP_SETPCAP is effective when the bounding set must shrink.
   *
   * With `atExec: true` the same keep (checked now) is applied right before the next
   * `Process.exec`/`Kernel.exec` instead: hacorb scripts choose capabilities first and then set the
   * hostname and mount /proc (seed 000's order), which need CAP_SYS_ADMIN until the exec. This is
   * an option of `keep`, not a second method, because it is the same keep with the same checks and
   * the same result in the exec'd program; only the moment differs (as runc applies a container's
   * capabilities as the last step before execve). A later `keep` replaces a pending one.
   *
   * @param list The capabilities to keep (names or numbers; may be empty).
   * @param options `ambient`: raise them in the ambient set too; `atExec`: apply at the next exec.
   * @throws {ConfigError} For an unknown capability (nothing changed).
   * @throws {SyscallError} EPERM when a capability is not permitted or CAP_SETPCAP is missing (nothing changed), or when a step fails.
   *
   * @example
   * ```ts ignore
   * Capability.keep(["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]);
   * ```
   *
   * @example Seed 000's order: keep at exec, set up with CAP_SYS_ADMIN meanwhile
   * ```ts ignore
   * Capability.keep(["CAP_CHOWN", "CAP_KILL"], { atExec: true });
   * system("hostname debian");
   * system("mount -t proc proc /proc");
   * Kernel.exec("/bin/sh"); // runs with CAP_CHOWN and CAP_KILL only
   * ```
   */
  static keep(list: readonly CapabilityLike[], options: KeepOptions = {}): void {
    const plan = keepPlan(list, options);
    if (options.atExec) {
      keepAtExec = { list: [...list], options: { ambient: options.ambient ?? false } };
      return;
    }
    keepAtExec = undefined;
    keepBounding(plan);
    keepSets(plan);
  }

  /**
   * Drops `list` from every set: the bounding set first (while CAP_SETPCAP is still held), then
   * effective, permitted and inheritable (the kernel lowers the ambient set with them). The
   * inverse of {@link Capability.keep}.
   * @param list The capabilities to drop.
   * @throws {ConfigError} For an unknown capability (nothing changed).
   * @throws {SyscallError} EPERM when CAP_SETPCAP is missing (nothing changed), or when a step fails.
   */
  static drop(list: readonly CapabilityLike[]): void {
    const context = "Capability.drop";
    const mask = toMask(list, "Capability.drop");
    const current = capget(0);
    const drops = bits(mask).filter((n) => n <= lastCap() && boundRead(n));
    assertCanDropBound(current, drops, context);
    for (const n of drops) boundDrop(n, context);
    capset({
      effective: current.effective & ~mask,
      permitted: current.permitted & ~mask,
      inheritable: current.inheritable & ~mask,
    }, context);
  }

  /**
   * Drops one capability from the bounding set (hacorb's `drop_bound`). Needs CAP_SETPCAP.
   * @param c The capability.
   * @throws {ConfigError} For an unknown capability.
   * @throws {SyscallError} EPERM without CAP_SETPCAP.
   */
  static dropBound(c: CapabilityLike): void {
    boundDrop(capNumber(c, "capability"), "Capability.dropBound");
  }

  /** hacorb's spelling of {@link Capability.dropBound}. @throws {ConfigError} @throws {SyscallError} */
  static drop_bound(c: CapabilityLike): void {
    Capability.dropBound(c);
  }

  /**
   * True when the capability is in the calling thread's bounding set (hacorb's `get_bound`).
   * @param c The capability.
   * @throws {ConfigError} For an unknown capability.
   * @throws {SyscallError} EINVAL when the kernel does not know it.
   */
  static getBound(c: CapabilityLike): boolean {
    return boundRead(capNumber(c, "capability"));
  }

  /** hacorb's spelling of {@link Capability.getBound}. @throws {ConfigError} @throws {SyscallError} */
  static get_bound(c: CapabilityLike): boolean {
    return Capability.getBound(c);
  }

  /**
   * Raises capabilities in the ambient set (each must be permitted and inheritable).
   * @throws {ConfigError} For an unknown capability. @throws {SyscallError} EPERM when not permitted and inheritable.
   */
  static raiseAmbient(list: readonly CapabilityLike[]): void {
    ambientChange(
      PR_CAP_AMBIENT_RAISE,
      "PR_CAP_AMBIENT_RAISE",
      toMask(list, "Capability.raiseAmbient"),
      "Capability.raiseAmbient",
    );
  }

  /** Lowers capabilities in the ambient set. @throws {ConfigError} @throws {SyscallError} */
  static lowerAmbient(list: readonly CapabilityLike[]): void {
    ambientChange(
      PR_CAP_AMBIENT_LOWER,
      "PR_CAP_AMBIENT_LOWER",
      toMask(list, "Capability.lowerAmbient"),
      "Capability.lowerAmbient",
    );
  }

  /** Empties the ambient set. @throws {SyscallError} When prctl fails. */
  static clearAmbient(): void {
    ambientClear("Capability.clearAmbient");
  }

  /**
   * Sets `no_new_privs`: from now on execve never grants privileges (setuid bits and file
   * capabilities are ignored). It cannot be unset and is inherited by children.
   * @throws {SyscallError} When prctl fails.
   */
  static noNewPrivs(): void {
    check(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl", [sym("PR_SET_NO_NEW_PRIVS"), 1]);
  }

  /** True when `no_new_privs` is set for the calling thread. @throws {SyscallError} When prctl fails. */
  static getNoNewPrivs(): boolean {
    return check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), "prctl", [sym("PR_GET_NO_NEW_PRIVS")]) === 1;
  }

  /**
   * Sets or clears `PR_SET_KEEPCAPS`: whether the permitted set survives a switch of every uid to
   * non-root (reset by execve).
   * @throws {SyscallError} When prctl fails.
   */
  static keepCaps(on = true): void {
    check(prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0), "prctl", [sym("PR_SET_KEEPCAPS"), on ? 1 : 0]);
  }

  /** True when `PR_SET_KEEPCAPS` is set. @throws {SyscallError} When prctl fails. */
  static getKeepCaps(): boolean {
    return check(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), "prctl", [sym("PR_GET_KEEPCAPS")]) === 1;
  }

  // -------------------------------------------------------------------------------------------
  // hacorb's instance API

  #sets: [bigint, bigint, bigint] = [0n, 0n, 0n];
  readonly #apply: boolean;

  /**
   * hacorb's `Capability.new`: an empty state (no capability in any set). Unless
   * `keepCaps: false`, sets `PR_SET_KEEPCAPS` like hacorb, so a later setuid to non-root keeps
   * the permitted set.
   * @param options `apply: false` to change only this object until {@link Capability.apply}.
   * @throws {SyscallError} When prctl fails.
   */
  constructor(options: CapabilityOptions = {}) {
    this.#apply = options.apply ?? true;
    if (options.keepCaps ?? true) Capability.keepCaps(true);
  }

  /**
   * Adds `caps` to one set (hacorb's `set`), and applies the state when applying is on.
   * @param flag `CAP_EFFECTIVE`, `CAP_PERMITTED` or `CAP_INHERITABLE`.
   * @param caps The capabilities.
   * @returns this.
   * @throws {ConfigError} For a bad flag or capability. @throws {SyscallError} When capset refuses the state.
   */
  set(flag: number, caps: CapabilityLike | readonly CapabilityLike[]): this {
    return this.setFlag(flag, caps, Capability.CAP_SET);
  }

  /**
   * Adds (`CAP_SET`) or removes (`CAP_CLEAR`) `caps` in one set (hacorb's `set_flag`), and
   * applies the state when applying is on.
   * @param flag `CAP_EFFECTIVE`, `CAP_PERMITTED` or `CAP_INHERITABLE`.
   * @param caps The capabilities.
   * @param value `CAP_SET` (default) or `CAP_CLEAR`.
   * @returns this.
   * @throws {ConfigError} For a bad flag, value or capability. @throws {SyscallError} When capset refuses the state.
   */
  setFlag(flag: number, caps: CapabilityLike | readonly CapabilityLike[], value: number = Capability.CAP_SET): this {
    const i = flagIndex(flag, "flag");
    if (value !== Capability.CAP_SET && value !== Capability.CAP_CLEAR) {
      throw new ConfigError("value", `must be CAP_SET (1) or CAP_CLEAR (0), got ${value}`);
    }
    const mask = toMask(caps, "caps");
    const next: [bigint, bigint, bigint] = [...this.#sets];
    next[i] = value === Capability.CAP_SET ? next[i] | mask : next[i] & ~mask;
    if (this.#apply) {
      capset(setsOf(next), `Capability#${value ? "set" : "clear"}(${FLAG_NAMES[i]})`);
      hacorbChanged = true;
    }
    this.#sets = next;
    return this;
  }

  /** hacorb's spelling of {@link Capability.setFlag}. @throws {ConfigError} @throws {SyscallError} */
  set_flag(flag: number, caps: CapabilityLike | readonly CapabilityLike[], value: number = Capability.CAP_SET): this {
    return this.setFlag(flag, caps, value);
  }

  /**
   * Removes `caps` from one set (hacorb's `clear`); with no arguments empties all three sets.
   * Applies the state when applying is on.
   * @param flag `CAP_EFFECTIVE`, `CAP_PERMITTED` or `CAP_INHERITABLE`.
   * @param caps The capabilities.
   * @returns this.
   * @throws {ConfigError} For a bad flag or capability. @throws {SyscallError} When capset refuses the state.
   */
  clear(flag?: number, caps?: CapabilityLike | readonly CapabilityLike[]): this {
    if (flag === undefined) {
      if (this.#apply) {
        capset(setsOf([0n, 0n, 0n]), "Capability#clear()");
        hacorbChanged = true;
      }
      this.#sets = [0n, 0n, 0n];
      return this;
    }
    return this.setFlag(flag, caps ?? [], Capability.CAP_CLEAR);
  }

  /** hacorb's `unset`: {@link Capability.prototype.clear}. @throws {ConfigError} @throws {SyscallError} */
  unset(flag: number, caps: CapabilityLike | readonly CapabilityLike[]): this {
    return this.clear(flag, caps);
  }

  /**
   * Loads the calling thread's effective, permitted and inheritable sets into this object
   * (hacorb's `get` / `get_proc`).
   * @returns this.
   * @throws {SyscallError} When capget fails.
   */
  get(): this {
    const s = capget(0);
    this.#sets = [s.effective, s.permitted, s.inheritable];
    return this;
  }

  /** hacorb's spelling of {@link Capability.prototype.get}. @throws {SyscallError} */
  get_proc(): this {
    return this.get();
  }

  /**
   * Applies this state to the calling thread with capset (needed only with `apply: false`).
   * @returns this.
   * @throws {SyscallError} EPERM when the state asks for more than is permitted.
   */
  apply(): this {
    capset(setsOf(this.#sets), "Capability#apply");
    hacorbChanged = true;
    return this;
  }

  /** hacorb's `set_proc`: {@link Capability.prototype.apply}. @throws {SyscallError} */
  set_proc(): this {
    return this.apply();
  }

  /**
   * True when `cap` is in the set `flag` of this state.
   * @throws {ConfigError} For a bad flag or capability.
   */
  has(flag: number, cap: CapabilityLike): boolean {
    return ((this.#sets[flagIndex(flag, "flag")] >> BigInt(capNumber(cap, "cap"))) & 1n) === 1n;
  }

  /** This state's effective set, as names. */
  get effective(): string[] {
    return fromMask(this.#sets[0]);
  }

  /** This state's permitted set, as names. */
  get permitted(): string[] {
    return fromMask(this.#sets[1]);
  }

  /** This state's inheritable set, as names. */
  get inheritable(): string[] {
    return fromMask(this.#sets[2]);
  }

  /**
   * The state in libcap's text form, e.g. `"cap_chown,cap_kill=eip cap_setuid=p"` (`"="` when empty).
   * @returns The text.
   */
  toText(): string {
    const groups = new Map<string, string[]>();
    for (let n = 0; n < 64; n++) {
      const b = BigInt(n);
      const flags = (["e", "i", "p"] as const)
        .filter((_, k) => (this.#sets[[0, 2, 1][k]!]! >> b) & 1n).join("");
      if (flags) groups.set(flags, [...(groups.get(flags) ?? []), capName(n).toLowerCase()]);
    }
    return groups.size === 0 ? "=" : [...groups].map(([f, names]) => `${names.join(",")}=${f}`).join(" ");
  }

  /** hacorb's spelling of {@link Capability.prototype.toText}. */
  to_text(): string {
    return this.toText();
  }

  /** The libcap text form. */
  toString(): string {
    return this.toText();
  }
}

function setsOf(s: readonly [bigint, bigint, bigint]): CapSets {
  return { effective: s[0], permitted: s[1], inheritable: s[2] };
}
