/**
 * errno names and messages for Linux (the numbers are the same on x86_64 and aarch64).
 * @module
 */

/** errno number → [name, message]. */
export const ERRNO: Readonly<Record<number, readonly [string, string]>> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "no such file or directory"],
  3: ["ESRCH", "no such process"],
  4: ["EINTR", "interrupted system call"],
  5: ["EIO", "input/output error"],
  6: ["ENXIO", "no such device or address"],
  7: ["E2BIG", "argument list too long"],
  8: ["ENOEXEC", "exec format error"],
  9: ["EBADF", "bad file descriptor"],
  10: ["ECHILD", "no child processes"],
  11: ["EAGAIN", "resource temporarily unavailable"],
  12: ["ENOMEM", "cannot allocate memory"],
  13: ["EACCES", "permission denied"],
  14: ["EFAULT", "bad address"],
  15: ["ENOTBLK", "block device required"],
  16: ["EBUSY", "device or resource busy"],
  17: ["EEXIST", "file exists"],
  18: ["EXDEV", "invalid cross-device link"],
  19: ["ENODEV", "no such device"],
  20: ["ENOTDIR", "not a directory"],
  21: ["EISDIR", "is a directory"],
  22: ["EINVAL", "invalid argument"],
  23: ["ENFILE", "too many open files in system"],
  24: ["EMFILE", "too many open files"],
  25: ["ENOTTY", "inappropriate ioctl for device"],
  26: ["ETXTBSY", "text file busy"],
  27: ["EFBIG", "file too large"],
  28: ["ENOSPC", "no space left on device"],
  29: ["ESPIPE", "illegal seek"],
  30: ["EROFS", "read-only file system"],
  31: ["EMLINK", "too many links"],
  32: ["EPIPE", "broken pipe"],
  34: ["ERANGE", "numerical result out of range"],
  36: ["ENAMETOOLONG", "file name too long"],
  38: ["ENOSYS", "function not implemented"],
  39: ["ENOTEMPTY", "directory not empty"],
  40: ["ELOOP", "too many levels of symbolic links"],
  61: ["ENODATA", "no data available"],
  75: ["EOVERFLOW", "value too large for defined data type"],
  95: ["EOPNOTSUPP", "operation not supported"],
  98: ["EADDRINUSE", "address already in use"],
  110: ["ETIMEDOUT", "connection timed out"],
  122: ["EDQUOT", "disk quota exceeded"],
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
    const isRoot = typeof process !== "undefined" && process.getuid?.() === 0;
    if (hint && !(code === "EPERM" && isRoot)) message += ` — ${hint}`;
    super(message);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.args = args;
  }
}
