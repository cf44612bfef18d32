/**
 * Network interfaces: enough to bring loopback up in a new network namespace, without `ip`.
 * @module
 */
import { setLinkUp } from "../ffi/net.ts";

/**
 * Sets an interface up (IFF_UP) in the caller's network namespace, e.g. `linkUp("lo")`.
 * @param name The interface, at most 15 bytes.
 * @throws {RangeError} For a name too long. @throws {SyscallError} ENODEV for no such interface.
 *
 * @example
 * ```ts ignore
 * Process.fork({ namespaces: ["net"] }, () => { linkUp("lo"); Process.exec("ip", "link"); });
 * ```
 */
export function linkUp(name: string): void {
  setLinkUp(name);
}
