/**
 * Users and groups: change the process's uids, gids and supplementary groups, read them, and
 * look names up in a root filesystem's `/etc/passwd` and `/etc/group` (hacorb's `Process::Sys`
 * and `Process::Pwgrp`).
 *
 * Order matters when dropping root: `setgroups`, then `setgid`, then `setuid` (after setuid the
 * process may no longer change its groups).
 *
 * @example Become www-data of a root filesystem in a child, then exec
 * ```ts ignore
 * import { lookupUser, Process, setgid, setgroups, setuid, supplementaryGroups } from "./mod.ts";
 * const pid = Process.fork(() => {
 *   const user = lookupUser("www-data", "/var/lib/hako/debian")!;
 *   setgroups(supplementaryGroups(user.name, "/var/lib/hako/debian"));
 *   setgid(user.gid);
 *   setuid(user.uid);
 *   Process.exec("id");
 * });
 * Process.waitpid2(pid);
 * ```
 * @module
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { check, libc } from "../ffi/libc.ts";
import { ConfigError, fsError, shownValue } from "./errors.ts";

/** The most supplementary groups Linux allows (NGROUPS_MAX). */
export const NGROUPS_MAX = 65536;

/**
 * The largest valid uid or gid. 4294967295 is `(uid_t)-1`, which the set*id calls read as "leave
 * unchanged" (so a process asked to become it stays root), and anything above wraps in a 32-bit id.
 */
export const MAX_ID = 4294967294;

/**
 * What is wrong with `id` as a uid or gid, or undefined when it is one (an integer in 0..{@link MAX_ID}).
 * @param id The value to check.
 * @returns The problem ("must be an integer id in 0..4294967294, got …"), or undefined.
 */
export function idProblem(id: unknown): string | undefined {
  if (typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= MAX_ID) return undefined;
  return `must be an integer id in 0..${MAX_ID}, got ${shownValue(id)}`;
}

function assertId(id: unknown, path: string): asserts id is number {
  const problem = idProblem(id);
  if (problem) throw new ConfigError(path, problem);
}

/**
 * Sets the user id (setuid(2), applied to every thread). As root this sets the real, effective
 * and saved uids, and dropping to non-root clears the capabilities unless keep-caps is set.
 * @param uid The uid.
 * @throws {ConfigError} For a bad id. @throws {SyscallError} EPERM when not allowed; EINVAL when unmapped in a user namespace.
 */
export function setuid(uid: number): void {
  assertId(uid, "uid");
  check(libc().setuid(uid), "setuid", [uid]);
}

/**
 * Sets the group id (setgid(2)). Call it before {@link setuid}.
 * @param gid The gid.
 * @throws {ConfigError} For a bad id. @throws {SyscallError} EPERM when not allowed.
 */
export function setgid(gid: number): void {
  assertId(gid, "gid");
  check(libc().setgid(gid), "setgid", [gid]);
}

/**
 * Sets the real, effective and saved uids (setresuid(2)); `-1` leaves one unchanged.
 * @throws {ConfigError} For a bad id. @throws {SyscallError} EPERM when not allowed.
 */
export function setresuid(ruid: number, euid: number, suid: number): void {
  const ids = [ruid, euid, suid].map((
    id,
    i,
  ) => (id === -1 ? 0xffffffff : (assertId(id, ["ruid", "euid", "suid"][i]!), id)));
  check(libc().setresuid(ids[0]!, ids[1]!, ids[2]!), "setresuid", [ruid, euid, suid]);
}

/**
 * Sets the real, effective and saved gids (setresgid(2)); `-1` leaves one unchanged.
 * @throws {ConfigError} For a bad id. @throws {SyscallError} EPERM when not allowed.
 */
export function setresgid(rgid: number, egid: number, sgid: number): void {
  const ids = [rgid, egid, sgid].map((
    id,
    i,
  ) => (id === -1 ? 0xffffffff : (assertId(id, ["rgid", "egid", "sgid"][i]!), id)));
  check(libc().setresgid(ids[0]!, ids[1]!, ids[2]!), "setresgid", [rgid, egid, sgid]);
}

/**
 * Sets the supplementary groups (setgroups(2)); `[]` drops them all.
 * @param gids The gids.
 * @throws {ConfigError} For a bad id or too many groups.
 * @throws {SyscallError} EPERM without CAP_SETGID, or in a user namespace whose `setgroups` is `deny`.
 */
export function setgroups(gids: readonly number[]): void {
  if (!Array.isArray(gids)) throw new ConfigError("groups", "must be an array of gids");
  if (gids.length > NGROUPS_MAX) throw new ConfigError("groups", `at most ${NGROUPS_MAX} groups, got ${gids.length}`);
  gids.forEach((g, i) => assertId(g, `groups[${i}]`));
  const list = new Uint32Array(gids.length ? gids : [0]);
  check(libc().setgroups(BigInt(gids.length), list), "setgroups", [gids.join(",")]);
}

/**
 * The supplementary groups of the calling process (getgroups(2)).
 * @returns The gids.
 * @throws {SyscallError} When getgroups fails.
 */
export function getgroups(): number[] {
  const { getgroups: gg } = libc();
  const n = check(gg(0, null), "getgroups", [0]);
  const list = new Uint32Array(Math.max(n, 1));
  const got = check(gg(n, list), "getgroups", [n]);
  return [...list.subarray(0, got)];
}

/** The real uid. */
export function getuid(): number {
  return libc().getuid();
}

/** The effective uid. */
export function geteuid(): number {
  return libc().geteuid();
}

/** The real gid. */
export function getgid(): number {
  return libc().getgid();
}

/** The effective gid. */
export function getegid(): number {
  return libc().getegid();
}

/** A line of `/etc/passwd`. */
export interface UserEntry {
  /** The login name. */
  readonly name: string;
  /** The uid. */
  readonly uid: number;
  /** The primary gid. */
  readonly gid: number;
  /** The comment (full name) field. */
  readonly gecos: string;
  /** The home directory. */
  readonly home: string;
  /** The login shell. */
  readonly shell: string;
}

/** A line of `/etc/group`. */
export interface GroupEntry {
  /** The group name. */
  readonly name: string;
  /** The gid. */
  readonly gid: number;
  /** The names of its members (besides users whose primary group it is). */
  readonly members: string[];
}

function readDb(root: string, file: string): string[][] {
  if (typeof root !== "string" || root === "") throw new ConfigError("root", "must be a non-empty path");
  const path = join(root, "etc", file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw fsError(e, "open", path, `look up a name in ${path}`);
  }
  return text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#") && !/^[+-]/.test(l))
    .map((l) => l.split(":"));
}

function matches(fields: string[], key: string | number, idField: number): boolean {
  return typeof key === "number" ? Number(fields[idField]) === key && fields[idField] !== "" : fields[0] === key;
}

function assertKey(key: unknown, path: string): asserts key is string | number {
  if (typeof key === "number" ? !(Number.isInteger(key) && key >= 0) : typeof key !== "string" || key === "") {
    throw new ConfigError(path, `must be a name or a non-negative id, got ${shownValue(key)}`);
  }
}

/**
 * Looks a user up in `<root>/etc/passwd` (not NSS: a container's root filesystem is plain files).
 * @param nameOrUid The login name or uid.
 * @param root The root filesystem (default `/`).
 * @returns The entry, or undefined when there is none.
 * @throws {ConfigError} For a bad name or root. @throws {SyscallError} When the file cannot be read.
 */
export function lookupUser(nameOrUid: string | number, root = "/"): UserEntry | undefined {
  assertKey(nameOrUid, "user");
  const f = readDb(root, "passwd").find((f) => f.length >= 7 && matches(f, nameOrUid, 2));
  if (!f) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), gecos: f[4]!, home: f[5]!, shell: f[6]! };
}

/**
 * Looks a group up in `<root>/etc/group`.
 * @param nameOrGid The group name or gid.
 * @param root The root filesystem (default `/`).
 * @returns The entry, or undefined when there is none.
 * @throws {ConfigError} For a bad name or root. @throws {SyscallError} When the file cannot be read.
 */
export function lookupGroup(nameOrGid: string | number, root = "/"): GroupEntry | undefined {
  assertKey(nameOrGid, "group");
  const f = readDb(root, "group").find((f) => f.length >= 4 && matches(f, nameOrGid, 2));
  if (!f) return undefined;
  return { name: f[0]!, gid: Number(f[2]), members: f[3]!.split(",").map((s) => s.trim()).filter(Boolean) };
}

/**
 * The gids a user belongs to, as initgroups(3) would set them: the primary group from
 * `<root>/etc/passwd` first, then every group in `<root>/etc/group` listing the user.
 * @param user The login name.
 * @param root The root filesystem (default `/`).
 * @returns The gids, without duplicates.
 * @throws {ConfigError} For an unknown user. @throws {SyscallError} When a file cannot be read.
 */
export function supplementaryGroups(user: string, root = "/"): number[] {
  const entry = lookupUser(user, root);
  if (!entry) throw new ConfigError("user", `no user ${JSON.stringify(user)} in ${join(root, "etc/passwd")}`);
  const gids = [entry.gid];
  for (const f of readDb(root, "group")) {
    if (f.length >= 4 && f[3]!.split(",").map((s) => s.trim()).includes(entry.name)) gids.push(Number(f[2]));
  }
  return [...new Set(gids)];
}
