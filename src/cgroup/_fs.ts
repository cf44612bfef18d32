/**
 * Synchronous cgroupfs access (it must work in a forked child), with every failure turned into a
 * {@link SyscallError} naming the call, the path and what hako was doing.
 * @module
 */
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeSync,
} from "node:fs";
import { fsError, SyscallError } from "../errors.ts";
import { pidsIn, postOrder } from "./_walk.ts";
export { sleepSync } from "./_walk.ts";

/**
 * Like `fsError`, and also reads the errno out of a bare "… (os error 3)" message (Deno's
 * node:fs throws those, without `code`, for errnos such as ESRCH and ERANGE).
 */
function sysError(e: unknown, syscall: string, path: string, context?: string): Error {
  const converted = fsError(e, syscall, path, context);
  if (converted instanceof SyscallError) return converted;
  const n = /\(os error (\d+)\)/.exec((e as Error)?.message ?? "")?.[1];
  return n ? new SyscallError(syscall, Number(n), [path], context) : converted;
}

/**
 * Writes `value` to a cgroup control file in a single write(2), without O_CREAT or O_TRUNC (a
 * missing file must fail as ENOENT, not as EACCES from trying to create it).
 *
 * @param path The control file.
 * @param value The text to write.
 * @param context What hako was doing, for the error.
 * @throws {SyscallError} `open(path)` or `write(path)` with the errno.
 */
export function writeKnob(path: string, value: string, context?: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY);
  } catch (e) {
    throw sysError(e, "open", path, context);
  }
  try {
    writeSync(fd, value);
  } catch (e) {
    throw sysError(e, "write", path, context);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a control file.
 *
 * @param path The control file.
 * @param context What hako was doing, for the error.
 * @returns Its text.
 * @throws {SyscallError} `read(path)` with the errno.
 */
export function readKnob(path: string, context?: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw sysError(e, "read", path, context);
  }
}

/** Reads a control file, or returns null when it cannot be read. */
export function tryReadKnob(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** True when `path` exists. */
export function exists(path: string): boolean {
  return existsSync(path);
}

/**
 * Creates one directory level.
 *
 * @returns true when it was created, false when it already existed.
 * @throws {SyscallError} `mkdir(path)` with the errno.
 */
export function mkdirOne(path: string, context?: string): boolean {
  try {
    mkdirSync(path);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "EEXIST") return false;
    throw sysError(e, "mkdir", path, context);
  }
}

/**
 * Removes one cgroup directory.
 *
 * @returns true when removed, false when it was already gone.
 * @throws {SyscallError} `rmdir(path)` with the errno (EBUSY: it still has members or children).
 */
export function rmdirOne(path: string, context?: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return false;
    throw sysError(e, "rmdir", path, context);
  }
}

/** The child cgroups of `dir` (subdirectories), or none when it cannot be read. */
export function childCgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `${dir}/${d.name}`);
  } catch {
    return [];
  }
}

/** `dir` and every cgroup below it, deepest first (the order rmdir needs). */
export function subtreePostOrder(dir: string): string[] {
  return postOrder(dir, childCgroups);
}

/** The pids in a `cgroup.procs` file (none when it cannot be read, e.g. already removed). */
export function readPids(dir: string): number[] {
  return pidsIn(tryReadKnob(`${dir}/cgroup.procs`));
}
