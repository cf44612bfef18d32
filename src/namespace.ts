/**
 * Linux namespaces: unshare, setns, id maps, and reading a process's namespace ids.
 *
 * **unshare in a multithreaded runtime.** Deno and Bun run helper threads, and the kernel refuses
 * `unshare(CLONE_NEWUSER)` in a multithreaded process, while after `unshare(CLONE_NEWPID)` (or
 * `CLONE_NEWTIME`) the process can no longer create threads — timers, async I/O, `Deno.Command` and
 * workers would break. So in the runtime's own process these three are *deferred*: they are
 * recorded and added to the clone flags of the next `Process.fork`, whose child becomes PID 1 of
 * the new PID namespace — exactly what the seed scripts expect of `unshare(CLONE_NEWPID)`. The
 * other kinds (mount, uts, ipc, net, cgroup) are unshared at once, for the calling thread only
 * (the runtime's helper threads stay where they were). In a forked child, which is
 * single-threaded, every kind is unshared at once.
 *
 * @module
 */
import { closeSync, openSync, readlinkSync, writeFileSync } from "node:fs";
import { check, libc } from "../ffi/libc.ts";
import { inForkedChild } from "../ffi/fork.ts";
import { ConfigError, fsError } from "./errors.ts";
import {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWTIME,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
} from "../ffi/constants.ts";

/** The `CLONE_NEW*` flags (documented with their values in ffi/constants.ts). */
export {
  CLONE_NEWCGROUP,
  CLONE_NEWIPC,
  CLONE_NEWNET,
  CLONE_NEWNS,
  CLONE_NEWPID,
  CLONE_NEWTIME,
  CLONE_NEWUSER,
  CLONE_NEWUTS,
} from "../ffi/constants.ts";

/** The namespace kinds, by their /proc/PID/ns names. */
export type NamespaceName = "mount" | "uts" | "ipc" | "user" | "pid" | "net" | "cgroup" | "time";

/** Namespace name → clone flag. */
export const NAMESPACE_FLAGS: Readonly<Record<NamespaceName, number>> = {
  mount: CLONE_NEWNS,
  uts: CLONE_NEWUTS,
  ipc: CLONE_NEWIPC,
  user: CLONE_NEWUSER,
  pid: CLONE_NEWPID,
  net: CLONE_NEWNET,
  cgroup: CLONE_NEWCGROUP,
  time: CLONE_NEWTIME,
};

/** Kinds that only affect children, or that need a single-threaded caller. */
const DEFERRED = CLONE_NEWPID | CLONE_NEWUSER | CLONE_NEWTIME;
const ALL = Object.values(NAMESPACE_FLAGS).reduce((a, b) => a | b, 0);

let pending = 0;

/**
 * Clone flags from names or flags.
 * @throws {ConfigError} For an unknown name or flag bits that are not namespaces.
 */
export function namespaceFlags(namespaces: readonly NamespaceName[] | number): number {
  if (typeof namespaces === "number") {
    if ((namespaces & ~ALL) !== 0) {
      throw new ConfigError("namespaces", `0x${namespaces.toString(16)} has bits that are not CLONE_NEW* flags`);
    }
    return namespaces;
  }
  let flags = 0;
  namespaces.forEach((n, i) => {
    const f = NAMESPACE_FLAGS[n];
    if (f === undefined) {
      throw new ConfigError(
        `namespaces[${i}]`,
        `unknown namespace ${JSON.stringify(n)} (one of ${Object.keys(NAMESPACE_FLAGS).join(", ")})`,
      );
    }
    flags |= f;
  });
  return flags;
}

/** The names of the namespaces in `flags`. */
export function namespaceNames(flags: number): NamespaceName[] {
  return (Object.entries(NAMESPACE_FLAGS) as Array<[NamespaceName, number]>)
    .filter(([, f]) => (flags & f) !== 0).map(([n]) => n);
}

/**
 * Moves the caller into new namespaces (see the module doc for what is deferred in the runtime's
 * own process).
 * @param flags `CLONE_NEW*` flags or names.
 * @throws {SyscallError} When unshare fails (EPERM: needs root or a user namespace).
 */
export function unshare(flags: number | readonly NamespaceName[]): void {
  const f = namespaceFlags(flags);
  const now = inForkedChild() ? f : f & ~DEFERRED;
  if (!inForkedChild()) pending |= f & DEFERRED;
  if (now !== 0) check(libc().unshare(now), "unshare", [namespaceNames(now).join("|")]);
}

/** The namespace flags deferred to the next fork (see {@link unshare}). */
export function pendingFlags(): number {
  return pending;
}

/** Returns and clears the deferred flags; `Process.fork` calls this. */
export function takePendingFlags(): number {
  const f = pending;
  pending = 0;
  return f;
}

/**
 * Joins a namespace: a file descriptor, or a path such as `/proc/1234/ns/net`.
 * @param target An fd or a path.
 * @param type The expected kind (name or flag), or 0 for any.
 * @throws {SyscallError} When open or setns fails.
 */
export function setns(target: number | string, type: NamespaceName | number = 0): void {
  const nstype = typeof type === "number" ? type : namespaceFlags([type]);
  if (typeof target === "number") {
    check(libc().setns(target, nstype), "setns", [target]);
    return;
  }
  const fd = openSync(target, "r");
  try {
    check(libc().setns(fd, nstype), "setns", [target]);
  } finally {
    closeSync(fd);
  }
}

/** One range of an id map: ids `inside..inside+size-1` in the namespace are `outside..` on the host. */
export interface IdMapEntry {
  /** First id inside the namespace. */
  readonly inside: number;
  /** First id outside (in the parent namespace). */
  readonly outside: number;
  /** How many ids. */
  readonly size: number;
}

/**
 * Checks an id map: integers, positive sizes, no overlap inside or outside.
 * @throws {ConfigError} With the offending entry's index.
 */
export function assertValidIdMap(map: readonly IdMapEntry[], path = "idMap"): void {
  map.forEach((e, i) => {
    for (const k of ["inside", "outside", "size"] as const) {
      const v = e[k];
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new ConfigError(`${path}[${i}].${k}`, `must be an integer in 0..4294967295, got ${v}`);
      }
    }
    if (e.size < 1) throw new ConfigError(`${path}[${i}].size`, "must be at least 1");
    map.slice(0, i).forEach((o, j) => {
      for (const k of ["inside", "outside"] as const) {
        if (e[k] < o[k] + o.size && o[k] < e[k] + e.size) {
          throw new ConfigError(
            `${path}[${i}]`,
            `${k} range ${e[k]}..${e[k] + e.size - 1} overlaps ${path}[${j}] (${o[k]}..${o[k] + o.size - 1})`,
          );
        }
      }
    });
  });
}

/**
 * Writes a process's uid or gid map. For a gid map, `setgroups` is set to `deny` first unless
 * `allowSetgroups`: the kernel requires `deny` when an unprivileged writer maps gids; a privileged
 * writer may leave it allowed, so that processes inside can call setgroups (containers do).
 * @throws {ConfigError} For a bad map. @throws {SyscallError} When the kernel refuses it.
 */
export function writeIdMap(
  pid: number,
  kind: "uid" | "gid",
  map: readonly IdMapEntry[],
  options: { allowSetgroups?: boolean } = {},
): void {
  assertValidIdMap(map, `${kind}Map`);
  if (kind === "gid" && !options.allowSetgroups) writeProc(`/proc/${pid}/setgroups`, "deny");
  writeProc(`/proc/${pid}/${kind}_map`, map.map((e) => `${e.inside} ${e.outside} ${e.size}\n`).join(""));
}

function writeProc(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw fsError(e, "write", path, `write ${JSON.stringify(text.trim())} to ${path}`);
  }
}

/**
 * The namespace ids (inode numbers) of a process, by kind.
 * @param pid A pid, or "self".
 */
export function ids(pid: number | "self" = "self"): Partial<Record<NamespaceName, number>> {
  const out: Partial<Record<NamespaceName, number>> = {};
  for (const name of Object.keys(NAMESPACE_FLAGS) as NamespaceName[]) {
    const file = name === "mount" ? "mnt" : name;
    try {
      const link = readlinkSync(`/proc/${pid}/ns/${file}`);
      const m = /\[(\d+)\]/.exec(link);
      if (m) out[name] = Number(m[1]);
    } catch { /* kind not supported by this kernel */ }
  }
  return out;
}
