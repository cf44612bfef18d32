/**
 * Directories, the way hacorb's `Dir` has them: chroot, chdir, mkdir, entries, exists.
 * Everything is synchronous, so it works in a forked child.
 *
 * @example Enter a root filesystem in a child, then exec
 * ```ts ignore
 * import { Dir, Process } from "./mod.ts";
 * const pid = Process.fork(() => {
 *   Dir.chroot("/var/lib/hako/debian");
 *   Dir.chdir("/");
 *   Process.exec("/bin/bash");
 * });
 * Process.waitpid2(pid);
 * ```
 * @module
 */
import { mkdirSync, readdirSync, statSync } from "node:fs";
import process from "node:process";
import { check, libc } from "../ffi/libc.ts";
import { cstr } from "../ffi/cstring.ts";
import { ConfigError, fsError } from "./errors.ts";

function assertPath(path: unknown, field: string): asserts path is string {
  if (typeof path !== "string" || path === "") throw new ConfigError(field, "must be a non-empty path");
  if (path.includes("\0")) throw new ConfigError(field, "must not contain a NUL byte");
}

/**
 * Changes the root directory of the calling process (chroot(2)). The working directory is not
 * changed: call `chdir("/")` next, or the process can still reach the old root through it.
 * With its own mount namespace, a container should use `Mount.pivotRootInto` instead.
 * @param path The new root.
 * @throws {ConfigError} For a bad path. @throws {SyscallError} EPERM without CAP_SYS_CHROOT, ENOENT/ENOTDIR for a bad path.
 */
export function chroot(path: string): void {
  assertPath(path, "chroot.path");
  check(libc().chroot(cstr(path)), "chroot", [path]);
}

/**
 * Changes the working directory (chdir(2) on the calling process, so `process.cwd()` and the
 * runtime see it too).
 * @param path The new working directory.
 * @throws {ConfigError} For a bad path. @throws {SyscallError} ENOENT/ENOTDIR/EACCES.
 */
export function chdir(path: string): void {
  assertPath(path, "chdir.path");
  check(libc().chdir(cstr(path)), "chdir", [path]);
}

/**
 * The working directory.
 * @returns An absolute path.
 */
export function pwd(): string {
  return process.cwd();
}

/** Options for {@link mkdir}. */
export interface MkdirOptions {
  /** Create missing parents too, and accept an existing directory (`mkdir -p`). */
  readonly recursive?: boolean;
  /** Permission bits (default 0o777, less the umask). */
  readonly mode?: number;
}

/**
 * Creates a directory.
 * @param path The directory.
 * @param options `recursive`, `mode`.
 * @throws {ConfigError} For a bad path or mode. @throws {SyscallError} EEXIST (without `recursive`), ENOENT, EACCES…
 */
export function mkdir(path: string, options: MkdirOptions = {}): void {
  assertPath(path, "mkdir.path");
  const mode = options.mode ?? 0o777;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new ConfigError("mkdir.mode", `must be permission bits in 0..0o7777, got ${mode}`);
  }
  try {
    mkdirSync(path, { recursive: options.recursive ?? false, mode });
  } catch (e) {
    throw fsError(e, "mkdir", path);
  }
}

/**
 * The names in a directory, Ruby's way: `"."` and `".."` first, then the rest sorted.
 * @param path The directory.
 * @returns The names.
 * @throws {ConfigError} For a bad path. @throws {SyscallError} ENOENT/ENOTDIR/EACCES.
 */
export function entries(path: string): string[] {
  return [".", "..", ...children(path)];
}

/**
 * The names in a directory without `"."` and `".."`, sorted (Ruby's `Dir.children`).
 * @param path The directory.
 * @returns The names.
 * @throws {ConfigError} For a bad path. @throws {SyscallError} ENOENT/ENOTDIR/EACCES.
 */
export function children(path: string): string[] {
  assertPath(path, "entries.path");
  try {
    return readdirSync(path).sort();
  } catch (e) {
    throw fsError(e, "opendir", path);
  }
}

/**
 * True when `path` is a directory (following symlinks), like Ruby's `Dir.exist?`.
 * @param path The path.
 * @returns Whether a directory is there.
 */
export function exists(path: string): boolean {
  if (typeof path !== "string" || path === "" || path.includes("\0")) return false;
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
