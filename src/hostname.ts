/**
 * The host and domain (NIS) names of the caller's UTS namespace. Set them in a child with its
 * own UTS namespace (`Process.fork({ namespaces: ["uts"] }, …)`), or the whole host is renamed.
 *
 * @example
 * ```ts ignore
 * import { gethostname, Process, sethostname } from "./mod.ts";
 * const pid = Process.fork({ namespaces: ["uts"] }, () => {
 *   sethostname("box");
 *   console.log(gethostname()); // box
 * });
 * Process.waitpid2(pid);
 * ```
 * @module
 */
import { check, libc } from "../ffi/libc.ts";
import { fromCstr } from "../ffi/cstring.ts";
import { ConfigError } from "./errors.ts";

/** The longest host or domain name Linux takes, in bytes (`__NEW_UTS_LEN`). */
export const HOST_NAME_MAX = 64;

const encoder = new TextEncoder();

function encodeName(name: unknown, field: string): Uint8Array<ArrayBuffer> {
  if (typeof name !== "string") throw new ConfigError(field, `must be a string, got ${typeof name}`);
  if (name === "") throw new ConfigError(field, "must not be empty");
  if (name.includes("\0")) throw new ConfigError(field, "must not contain a NUL byte");
  const bytes = encoder.encode(name);
  if (bytes.length > HOST_NAME_MAX) {
    throw new ConfigError(field, `is ${bytes.length} bytes of UTF-8; Linux takes at most ${HOST_NAME_MAX}`);
  }
  return bytes;
}

/**
 * Validates a host name the way {@link sethostname} does, without setting it.
 * @param name The name.
 * @throws {ConfigError} When it is empty, has a NUL byte, or is over 64 bytes of UTF-8.
 */
export function assertValidHostname(name: string): void {
  encodeName(name, "hostname");
}

/**
 * Sets the host name of the caller's UTS namespace (sethostname(2)). The name is checked first:
 * at most 64 bytes of UTF-8, not empty, no NUL.
 * @param name The new host name.
 * @throws {ConfigError} For a bad name (nothing changed). @throws {SyscallError} EPERM without CAP_SYS_ADMIN.
 */
export function sethostname(name: string): void {
  const bytes = encodeName(name, "hostname");
  check(libc().sethostname(bytes, BigInt(bytes.length)), "sethostname", [name]);
}

/**
 * The host name of the caller's UTS namespace (gethostname(2)).
 * @returns The name.
 * @throws {SyscallError} When gethostname fails.
 */
export function gethostname(): string {
  const buf = new Uint8Array(HOST_NAME_MAX + 1);
  check(libc().gethostname(buf, BigInt(buf.length)), "gethostname");
  return fromCstr(buf);
}

/**
 * Sets the NIS domain name of the caller's UTS namespace (setdomainname(2)); same rules as
 * {@link sethostname}.
 * @param name The new domain name.
 * @throws {ConfigError} For a bad name (nothing changed). @throws {SyscallError} EPERM without CAP_SYS_ADMIN.
 */
export function setdomainname(name: string): void {
  const bytes = encodeName(name, "domainname");
  check(libc().setdomainname(bytes, BigInt(bytes.length)), "setdomainname", [name]);
}

/**
 * The NIS domain name of the caller's UTS namespace (`"(none)"` when unset).
 * @returns The name.
 * @throws {SyscallError} When getdomainname fails.
 */
export function getdomainname(): string {
  const buf = new Uint8Array(HOST_NAME_MAX + 1);
  check(libc().getdomainname(buf, BigInt(buf.length)), "getdomainname");
  return fromCstr(buf);
}
