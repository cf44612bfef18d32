/**
 * Resource limits (prlimit(2)): read and set them for the calling process or another one.
 * Resources go by name (`"NOFILE"`, `"RLIMIT_NOFILE"`, `"nofile"`) or number; values are numbers,
 * bigints, `"unlimited"` or `Infinity`, and limits read back are numbers with `Infinity` for
 * "unlimited". hacorb's `Resource.getrlimit`/`setrlimit` are on {@link Resource}.
 *
 * @example Limit open files in a child, then exec
 * ```ts ignore
 * import { Process, setrlimit } from "./mod.ts";
 * const pid = Process.fork(() => {
 *   setrlimit("NOFILE", 1024);
 *   Process.exec("sh", "-c", "ulimit -n");
 * });
 * Process.waitpid2(pid);
 * ```
 * @module
 */
import { check, libc } from "../ffi/libc.ts";
import { decodeRlimit, encodeRlimit, RLIM_INFINITY, rlimitBuffer } from "../ffi/structs.ts";
import { ConfigError, shownValue } from "./errors.ts";

/** The resources, by their name without `RLIMIT_` (the numbers are the same on x86_64 and aarch64). */
export const RLIMITS = {
  CPU: 0,
  FSIZE: 1,
  DATA: 2,
  STACK: 3,
  CORE: 4,
  RSS: 5,
  NPROC: 6,
  NOFILE: 7,
  MEMLOCK: 8,
  AS: 9,
  LOCKS: 10,
  SIGPENDING: 11,
  MSGQUEUE: 12,
  NICE: 13,
  RTPRIO: 14,
  RTTIME: 15,
} as const;

/** A resource name without the prefix, e.g. `"NOFILE"`. */
export type RlimitName = keyof typeof RLIMITS;

/** A resource: `"NOFILE"`, `"RLIMIT_NOFILE"`, `"nofile"`, or its number. */
export type RlimitResource = RlimitName | `RLIMIT_${RlimitName}` | Lowercase<RlimitName> | string | number;

/** A limit to set: a non-negative integer, a bigint, `"unlimited"` or `Infinity`. */
export type RlimitValue = number | bigint | "unlimited";

/** A resource's limits; `Infinity` means unlimited. */
export interface Rlimit {
  /** The soft limit, which the kernel enforces. */
  readonly soft: number;
  /** The hard limit, the ceiling for the soft one (raising it needs CAP_SYS_RESOURCE). */
  readonly hard: number;
}

/** Limits to set with {@link prlimit}; a missing one is left as it is. */
export interface RlimitChange {
  /** The new soft limit. */
  readonly soft?: RlimitValue;
  /** The new hard limit. */
  readonly hard?: RlimitValue;
}

const NAME_OF: Readonly<Record<number, RlimitName>> = Object.fromEntries(
  Object.entries(RLIMITS).map(([k, v]) => [v, k as RlimitName]),
);

/** A value shown unquoted in a SyscallError message. */
const sym = (text: string) => Object.freeze({ toString: () => text });

/**
 * A resource's number.
 * @param resource A name (`"NOFILE"`, `"RLIMIT_NOFILE"`, `"nofile"`) or number.
 * @param path The field path for errors.
 * @returns The number, e.g. 7.
 * @throws {ConfigError} For an unknown resource.
 */
export function rlimitNumber(resource: RlimitResource, path = "resource"): number {
  if (typeof resource === "number") {
    if (NAME_OF[resource] !== undefined) return resource;
    throw new ConfigError(path, `unknown resource number ${resource} (0..15)`);
  }
  if (typeof resource === "string") {
    const name = resource.trim().toUpperCase().replace(/^RLIMIT_/, "");
    const n = (RLIMITS as Record<string, number>)[name];
    if (n !== undefined) return n;
  }
  throw new ConfigError(
    path,
    `unknown resource ${JSON.stringify(resource)} (one of ${Object.keys(RLIMITS).join(", ")})`,
  );
}

/**
 * A limit as the kernel takes it: `{ cur, max }` in bigints, checked (hako's native container
 * child passes it to prlimit64 itself).
 * @param soft The soft limit. @param hard The hard limit (default: the soft one).
 * @param path The field path for errors.
 * @throws {ConfigError} For a bad value.
 */
export function rlimitPair(soft: RlimitValue, hard: RlimitValue = soft, path = "rlimit"): { cur: bigint; max: bigint } {
  return { cur: rlimitValue(soft, `${path}.soft`), max: rlimitValue(hard, `${path}.hard`) };
}

function rlimitValue(value: RlimitValue, path: string): bigint {
  if (value === "unlimited" || value === Infinity) return RLIM_INFINITY;
  if (typeof value === "bigint") {
    if (value >= 0n && value <= RLIM_INFINITY) return value;
  } else if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
    return BigInt(value);
  }
  throw new ConfigError(
    path,
    `must be a non-negative integer, a bigint, "unlimited" or Infinity, got ${shownValue(value)}`,
  );
}

function toNumber(v: bigint): number {
  return v === RLIM_INFINITY ? Infinity : Number(v);
}

function show(v: bigint): string {
  return v === RLIM_INFINITY ? "unlimited" : String(v);
}

function call(pid: number, resource: number, next: { cur: bigint; max: bigint } | null): Rlimit {
  const old = rlimitBuffer();
  const shown: unknown[] = [pid, sym(`RLIMIT_${NAME_OF[resource]}`)];
  if (next) shown.push(sym(`{${show(next.cur)}, ${show(next.max)}}`));
  check(libc().prlimit(pid, resource, next ? encodeRlimit(next.cur, next.max) : null, old), "prlimit", shown);
  const { cur, max } = decodeRlimit(old);
  return { soft: toNumber(cur), hard: toNumber(max) };
}

function assertPid(pid: number): void {
  if (!Number.isInteger(pid) || pid < 0) throw new ConfigError("pid", `must be a pid (0: the caller), got ${pid}`);
}

/**
 * Reads a limit of the calling process.
 * @param resource `"NOFILE"`, `"RLIMIT_NOFILE"`, `"nofile"` or a number.
 * @returns `{ soft, hard }`, `Infinity` for unlimited.
 * @throws {ConfigError} For an unknown resource.
 *
 * @example
 * ```ts ignore
 * const { soft, hard } = getrlimit("NOFILE");
 * ```
 */
export function getrlimit(resource: RlimitResource): Rlimit {
  return call(0, rlimitNumber(resource), null);
}

/**
 * Sets a limit of the calling process. As in Ruby and hacorb, `hard` defaults to `soft`
 * (lowering a hard limit cannot be undone without CAP_SYS_RESOURCE): pass the current hard
 * limit, or use {@link prlimit} with `{ soft }`, to change only the soft one.
 * @param resource The resource.
 * @param soft The soft limit.
 * @param hard The hard limit (default: `soft`).
 * @throws {ConfigError} For an unknown resource, a bad value, or soft > hard (before any call).
 * @throws {SyscallError} EPERM when raising the hard limit without CAP_SYS_RESOURCE.
 */
export function setrlimit(resource: RlimitResource, soft: RlimitValue, hard?: RlimitValue): void {
  const n = rlimitNumber(resource);
  const cur = rlimitValue(soft, "soft");
  const max = hard === undefined ? cur : rlimitValue(hard, "hard");
  if (cur > max) throw new ConfigError("soft", `${show(cur)} is above the hard limit ${show(max)}`);
  call(0, n, { cur, max });
}

/**
 * Reads and optionally changes a limit of any process (prlimit(2)); changing another process's
 * limits needs the same uids and gids as it, or CAP_SYS_RESOURCE.
 * @param pid The process (0: the caller).
 * @param resource The resource.
 * @param change `{ soft?, hard? }` to set; a missing one keeps its current value.
 * @returns The limits before the change.
 * @throws {ConfigError} For a bad pid, resource or value, or soft > hard (before any change).
 * @throws {SyscallError} ESRCH for no such process, EPERM when not allowed.
 */
export function prlimit(pid: number, resource: RlimitResource, change?: RlimitChange): Rlimit {
  assertPid(pid);
  const n = rlimitNumber(resource);
  if (!change || (change.soft === undefined && change.hard === undefined)) return call(pid, n, null);
  const cur0 = change.soft === undefined ? undefined : rlimitValue(change.soft, "soft");
  const max0 = change.hard === undefined ? undefined : rlimitValue(change.hard, "hard");
  let current: { cur: bigint; max: bigint } | undefined;
  if (cur0 === undefined || max0 === undefined) {
    const buf = rlimitBuffer();
    check(libc().prlimit(pid, n, null, buf), "prlimit", [pid, sym(`RLIMIT_${NAME_OF[n]}`)]);
    current = decodeRlimit(buf);
  }
  const cur = cur0 ?? current!.cur, max = max0 ?? current!.max;
  if (cur > max) throw new ConfigError("soft", `${show(cur)} is above the hard limit ${show(max)}`);
  return call(pid, n, { cur, max });
}

/** The shape of {@link Resource}. */
export type ResourceModule =
  & {
    getrlimit(resource: RlimitResource): [number, number];
    setrlimit: typeof setrlimit;
    getprlimit(pid: number, resource: RlimitResource): [number, number];
    setprlimit(pid: number, resource: RlimitResource, soft: RlimitValue, hard?: RlimitValue): void;
    readonly RLIM_INFINITY: number;
  }
  & { readonly [K in keyof typeof RLIMITS as `RLIMIT_${K}`]: (typeof RLIMITS)[K] };

/**
 * hacorb's `Resource` module: `getrlimit` returns `[soft, hard]` as hacorb does, `setrlimit`
 * takes the hard limit as an optional third argument (default: the soft one), the `prlimit`
 * pair works on another process, and the `RLIMIT_*` numbers and `RLIM_INFINITY` are here.
 */
export const Resource: ResourceModule = {
  /** Reads a limit as `[soft, hard]` (`Infinity` for unlimited). @throws {ConfigError} */
  getrlimit(resource: RlimitResource): [number, number] {
    const { soft, hard } = getrlimit(resource);
    return [soft, hard];
  },
  /** Sets a limit; `hard` defaults to `soft`. @throws {ConfigError} @throws {SyscallError} */
  setrlimit,
  /** Reads another process's limit as `[soft, hard]`. @throws {ConfigError} @throws {SyscallError} */
  getprlimit(pid: number, resource: RlimitResource): [number, number] {
    const { soft, hard } = prlimit(pid, resource);
    return [soft, hard];
  },
  /** Sets another process's limit; `hard` defaults to `soft`. @throws {ConfigError} @throws {SyscallError} */
  setprlimit(pid: number, resource: RlimitResource, soft: RlimitValue, hard?: RlimitValue): void {
    prlimit(pid, resource, { soft, hard: hard ?? soft });
  },
  /** "No limit", as limits read back show it. */
  RLIM_INFINITY: Infinity,
  RLIMIT_CPU: RLIMITS.CPU,
  RLIMIT_FSIZE: RLIMITS.FSIZE,
  RLIMIT_DATA: RLIMITS.DATA,
  RLIMIT_STACK: RLIMITS.STACK,
  RLIMIT_CORE: RLIMITS.CORE,
  RLIMIT_RSS: RLIMITS.RSS,
  RLIMIT_NPROC: RLIMITS.NPROC,
  RLIMIT_NOFILE: RLIMITS.NOFILE,
  RLIMIT_MEMLOCK: RLIMITS.MEMLOCK,
  RLIMIT_AS: RLIMITS.AS,
  RLIMIT_LOCKS: RLIMITS.LOCKS,
  RLIMIT_SIGPENDING: RLIMITS.SIGPENDING,
  RLIMIT_MSGQUEUE: RLIMITS.MSGQUEUE,
  RLIMIT_NICE: RLIMITS.NICE,
  RLIMIT_RTPRIO: RLIMITS.RTPRIO,
  RLIMIT_RTTIME: RLIMITS.RTTIME,
} as const;
