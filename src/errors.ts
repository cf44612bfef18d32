/**
 * hako's error classes: a failed system call, a bad configuration, a failed setup step.
 * @module
 */
import { ERRNO, SyscallError } from "../ffi/errno.ts";
export { SyscallError };

/**
 * Turns an error thrown by `node:fs` into a {@link SyscallError} naming the call and what hako
 * was doing; other errors pass through.
 */
export function fsError(e: unknown, syscall: string, path: string, context?: string): Error {
  const err = e as { code?: string; errno?: number; message?: string };
  let n = typeof err?.errno === "number" ? Math.abs(err.errno) : 0;
  // Deno's node:fs sometimes throws a bare Error("No such process (os error 3)").
  const os = /\(os error (\d+)\)/.exec(err?.message ?? "");
  if (!n && os) n = Number(os[1]);
  if (err?.code) {
    const found = Object.entries(ERRNO).find(([, [name]]) => name === err.code);
    if (found) n = Number(found[0]);
  }
  return n ? new SyscallError(syscall, n, [path], context) : (e as Error);
}

/**
 * A bad value as a {@link ConfigError}'s message shows it, never throwing: `String()` of an object
 * whose `toString` is not a function (a hostile spec's) throws a TypeError of its own.
 */
export function shownValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null || (typeof v !== "object" && typeof v !== "function")) return String(v);
  return typeof v === "function" ? "a function" : Array.isArray(v) ? "an array" : "an object";
}

/** Bad input, found before anything was touched. `path` names the field (`mounts[2].target`). */
export class ConfigError extends TypeError {
  /** The field path, e.g. `"cgroup.name"`. */
  readonly path: string;
  /** Makes the error. @param path The field path. @param message What is wrong with it. */
  constructor(path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.name = "ConfigError";
    this.path = path;
  }
}

/** A named setup step that failed; `cause` holds the underlying error. */
export class SetupError extends Error {
  /** The step's name, e.g. `"pivot_root"`. */
  readonly step: string;
  /** Makes the error. @param step The step's name. @param message What went wrong. @param options The underlying `cause`. */
  constructor(step: string, message: string, options?: { cause?: unknown }) {
    super(`${step}: ${message}`, options);
    this.name = "SetupError";
    this.step = step;
  }
}
