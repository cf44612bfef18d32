/**
 * errno names and messages for Linux (the numbers are the same on x86_64 and aarch64).
 * @module
 */
import {
  E2BIG,
  EACCES,
  EADDRINUSE,
  EAGAIN,
  EBADF,
  EBUSY,
  ECHILD,
  EDQUOT,
  EEXIST,
  EFAULT,
  EFBIG,
  EINTR,
  EINVAL,
  EIO,
  EISDIR,
  ELOOP,
  EMFILE,
  EMLINK,
  EMSGSIZE,
  ENAMETOOLONG,
  ENFILE,
  ENODATA,
  ENODEV,
  ENOENT,
  ENOEXEC,
  ENOMEM,
  ENOSPC,
  ENOSYS,
  ENOTBLK,
  ENOTDIR,
  ENOTEMPTY,
  ENOTTY,
  ENXIO,
  EOPNOTSUPP,
  EOVERFLOW,
  EPERM,
  EPIPE,
  ERANGE,
  EROFS,
  ESPIPE,
  ESRCH,
  ETIMEDOUT,
  ETXTBSY,
  EXDEV,
} from "./constants.ts";

/** errno number → [name, message] (the numbers are named in ffi/constants.ts). */
export const ERRNO: Readonly<Record<number, readonly [string, string]>> = {
  [EPERM]: ["EPERM", "operation not permitted"],
  [ENOENT]: ["ENOENT", "no such file or directory"],
  [ESRCH]: ["ESRCH", "no such process"],
  [EINTR]: ["EINTR", "interrupted system call"],
  [EIO]: ["EIO", "input/output error"],
  [ENXIO]: ["ENXIO", "no such device or address"],
  [E2BIG]: ["E2BIG", "argument list too long"],
  [ENOEXEC]: ["ENOEXEC", "exec format error"],
  [EBADF]: ["EBADF", "bad file descriptor"],
  [ECHILD]: ["ECHILD", "no child processes"],
  [EAGAIN]: ["EAGAIN", "resource temporarily unavailable"],
  [ENOMEM]: ["ENOMEM", "cannot allocate memory"],
  [EACCES]: ["EACCES", "permission denied"],
  [EFAULT]: ["EFAULT", "bad address"],
  [ENOTBLK]: ["ENOTBLK", "block device required"],
  [EBUSY]: ["EBUSY", "device or resource busy"],
  [EEXIST]: ["EEXIST", "file exists"],
  [EXDEV]: ["EXDEV", "invalid cross-device link"],
  [ENODEV]: ["ENODEV", "no such device"],
  [ENOTDIR]: ["ENOTDIR", "not a directory"],
  [EISDIR]: ["EISDIR", "is a directory"],
  [EINVAL]: ["EINVAL", "invalid argument"],
  [ENFILE]: ["ENFILE", "too many open files in system"],
  [EMFILE]: ["EMFILE", "too many open files"],
  [ENOTTY]: ["ENOTTY", "inappropriate ioctl for device"],
  [ETXTBSY]: ["ETXTBSY", "text file busy"],
  [EFBIG]: ["EFBIG", "file too large"],
  [ENOSPC]: ["ENOSPC", "no space left on device"],
  [ESPIPE]: ["ESPIPE", "illegal seek"],
  [EROFS]: ["EROFS", "read-only file system"],
  [EMLINK]: ["EMLINK", "too many links"],
  [EPIPE]: ["EPIPE", "broken pipe"],
  [ERANGE]: ["ERANGE", "numerical result out of range"],
  [ENAMETOOLONG]: ["ENAMETOOLONG", "file name too long"],
  [ENOSYS]: ["ENOSYS", "function not implemented"],
  [ENOTEMPTY]: ["ENOTEMPTY", "directory not empty"],
  [ELOOP]: ["ELOOP", "too many levels of symbolic links"],
  [ENODATA]: ["ENODATA", "no data available"],
  [EOVERFLOW]: ["EOVERFLOW", "value too large for defined data type"],
  [EMSGSIZE]: ["EMSGSIZE", "message too long"],
  [EOPNOTSUPP]: ["EOPNOTSUPP", "operation not supported"],
  [EADDRINUSE]: ["EADDRINUSE", "address already in use"],
  [ETIMEDOUT]: ["ETIMEDOUT", "connection timed out"],
  [EDQUOT]: ["EDQUOT", "disk quota exceeded"],
};

/** The symbolic name of an errno number ("EPERM"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO[errno]?.[0] ?? `E${errno}`;
}

/** The human message of an errno number ("operation not permitted"). */
export function errnoMessage(errno: number): string {
  return ERRNO[errno]?.[1] ?? `unknown error ${errno}`;
}

/** Hints for the likely cause of common errnos, keyed by errno name. */
const HINTS: Readonly<Record<string, string>> = {
  EPERM: "needs root (CAP_SYS_ADMIN) or a user namespace",
  EACCES: "needs root, or check the path's permissions",
};

/**
 * Whether this process runs as root. Asked only for an EPERM's hint, and under Deno through
 * `Deno.uid()`: the global `process` would start Deno's Node layer (tens of ms) in a command that
 * never loads it otherwise — hako-runc's `delete` makes EBUSY errors as it waits on cgroups.
 */
function isRoot(): boolean {
  if (typeof Deno !== "undefined") {
    try {
      return Deno.uid() === 0;
    } catch { /* no --allow-sys: as process would say */ }
  }
  return typeof process !== "undefined" && process.getuid?.() === 0;
}

/**
 * A failed system call: which call, its errno, and what it was doing.
 *
 * The message reads like `mount("proc", "/x/proc"): EPERM (operation not permitted)`,
 * followed by a hint for the usual cause when one is known.
 */
export class SyscallError extends Error {
  /** The system call or libc function that failed, e.g. `"mount"`. */
  readonly syscall: string;
  /** The errno number, e.g. `1`. */
  readonly errno: number;
  /** The errno name, e.g. `"EPERM"`. */
  readonly code: string;
  /** The arguments that matter, as shown in the message. */
  readonly args: readonly unknown[];

  /**
   * Makes the error.
   * @param syscall The call that failed. @param errno Its errno. @param args The arguments to show.
   * @param context What hako was doing, prefixed to the message.
   */
  constructor(syscall: string, errno: number, args: readonly unknown[] = [], context?: string) {
    const code = errnoName(errno);
    const shown = args.map((a) => typeof a === "string" ? JSON.stringify(a) : String(a)).join(", ");
    let message = `${syscall}(${shown}): ${code} (${errnoMessage(errno)})`;
    if (context) message = `${context}: ${message}`;
    const hint = HINTS[code];
    if (hint && !(code === "EPERM" && isRoot())) message += ` — ${hint}`;
    super(message);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.args = args;
  }
}
