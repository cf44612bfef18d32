/**
 * Device nodes: `mknod` of character devices with the glibc `makedev` encoding.
 * @module
 */
import { check, libc } from "../../ffi/libc.ts";
import { cstr } from "../../ffi/cstring.ts";
import { AT_FDCWD, S_IFBLK, S_IFCHR } from "../../ffi/constants.ts";

/** glibc's makedev(major, minor). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/**
 * Creates a device node.
 * @param kind "c" (character) or "b" (block).
 * @throws {SyscallError} EPERM without CAP_MKNOD (or in a user namespace), EEXIST when the path exists.
 */
export function mknod(path: string, kind: "c" | "b", mode: number, major: number, minor: number): void {
  const type = kind === "c" ? S_IFCHR : S_IFBLK;
  const p = cstr(path);
  check(libc().mknod(p, type | (mode & 0o7777), makedev(major, minor)), "mknod", [path, `${kind} ${major}:${minor}`]);
  // The mode asked for, whatever the caller's umask took away at mknod (/dev/null must be 0666
  // for a container's non-root users).
  check(libc().fchmodat(AT_FDCWD, p, mode & 0o7777, 0), "fchmodat", [path, `0${(mode & 0o7777).toString(8)}`]);
}
