/**
 * Network interfaces without `ip`: loopback up in a new network namespace, and a veth pair
 * between the host and a container (rtnetlink, see `ffi/netlink.ts`), its addresses and links.
 * @module
 */
import { setLinkUp as ioctlLinkUp } from "../ffi/net.ts";
import { delLink, interfaceIndex, newAddress, newVethPair, setLinkFlagsUp } from "../ffi/netlink.ts";

/** Interface names are at most 15 bytes (IFNAMSIZ - 1). */
const IFNAME_MAX = 15;

/**
 * Checks an interface name: 1-15 bytes, no `/`, whitespace, `:` or NUL, not `.` or `..`.
 * @param name The interface name.
 * @param what What the name is for, for the message.
 * @throws {RangeError} Saying what is wrong.
 *
 * @example
 * ```ts
 * import { assertValidLinkName } from "./network.ts";
 * assertValidLinkName("hk-web-h"); // fine
 * ```
 */
export function assertValidLinkName(name: string, what = "interface name"): void {
  const problem = linkNameProblem(name);
  if (problem) throw new RangeError(`Invalid ${what} ${JSON.stringify(name)}: ${problem}`);
}

/** What is wrong with an interface name, or undefined when it is fine. */
export function linkNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name === "") return "must be a non-empty string";
  if (new TextEncoder().encode(name).length > IFNAME_MAX) return `must be at most ${IFNAME_MAX} bytes`;
  if (/[/\s:\0]/.test(name)) return "must not contain '/', ':', whitespace or NUL";
  if (name === "." || name === "..") return "must not be '.' or '..'";
  return undefined;
}

/** An address with its prefix length, parsed from CIDR notation. */
export interface Cidr {
  /** 4 for IPv4, 6 for IPv6. */
  readonly version: 4 | 6;
  /** The address bytes (4 or 16). */
  readonly bytes: Uint8Array;
  /** The prefix length. */
  readonly prefixLength: number;
  /** The text as given. */
  readonly text: string;
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return new Uint8Array(parts.map(Number));
}

function parseIpv6(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(s) || s.split("::").length > 2) return undefined;
  const [head, tail] = s.includes("::") ? s.split("::") as [string, string] : [s, undefined];
  const groups = (x: string) => (x === "" ? [] : x.split(":"));
  const h = groups(head), t = tail === undefined ? [] : groups(tail);
  if (![...h, ...t].every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return undefined;
  const all = [...h, ...Array(missing).fill("0"), ...t].map((g) => parseInt(g, 16));
  const out = new Uint8Array(16);
  all.forEach((g, i) => (out[2 * i] = g >> 8, out[2 * i + 1] = g & 0xff));
  return out;
}

/**
 * Parses `"10.200.0.1/30"` (or an IPv6 `"fd00::1/64"`).
 * @param text The address and prefix length.
 * @returns The parsed CIDR.
 * @throws {RangeError} When it is not an address with a prefix length in range.
 *
 * @example
 * ```ts
 * import { parseCidr } from "./network.ts";
 * parseCidr("10.200.0.1/30").prefixLength; // 30
 * ```
 */
export function parseCidr(text: string): Cidr {
  const bad = (why: string) => new RangeError(`Invalid CIDR ${JSON.stringify(text)}: ${why}`);
  if (typeof text !== "string") throw bad('must be a string like "10.200.0.1/30"');
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) throw bad('expected an address and a prefix length, like "10.200.0.1/30"');
  const v4 = parseIpv4(m[1]!);
  const bytes = v4 ?? parseIpv6(m[1]!);
  if (!bytes) throw bad("not an IPv4 or IPv6 address");
  const prefixLength = Number(m[2]);
  const max = bytes.length * 8;
  if (prefixLength < 1 || prefixLength > max) throw bad(`the prefix length must be 1-${max}`);
  return { version: v4 ? 4 : 6, bytes, prefixLength, text };
}

/** True when both CIDRs are the same family and prefix, in the same subnet, with different addresses. */
export function sameSubnet(a: Cidr, b: Cidr): boolean {
  if (a.version !== b.version || a.prefixLength !== b.prefixLength) return false;
  for (let bit = 0; bit < a.prefixLength; bit++) {
    const byte = bit >> 3, mask = 0x80 >> (bit & 7);
    if ((a.bytes[byte]! & mask) !== (b.bytes[byte]! & mask)) return false;
  }
  return true;
}

/**
 * Sets an interface up (IFF_UP) in the caller's network namespace, e.g. `linkUp("lo")` (ioctl).
 * @param name The interface, at most 15 bytes.
 * @throws {RangeError} For a name too long. @throws {SyscallError} ENODEV for no such interface.
 *
 * @example
 * ```ts ignore
 * Process.fork({ namespaces: ["net"] }, () => { linkUp("lo"); Process.exec("ip", "link"); });
 * ```
 */
export function linkUp(name: string): void {
  ioctlLinkUp(name);
}

/**
 * Sets an interface up or down through rtnetlink (RTM_NEWLINK with IFF_UP in ifi_change).
 * @param name The interface.
 * @param up True for up (the default), false for down.
 * @throws {RangeError} For an invalid name. @throws {SyscallError} ENODEV for no such interface.
 *
 * @example
 * ```ts ignore
 * setLinkUp("hk-web-h");
 * ```
 */
export function setLinkUp(name: string, up = true): void {
  assertValidLinkName(name);
  setLinkFlagsUp(name, up);
}

/**
 * The index of an interface in the caller's network namespace.
 * @param name The interface.
 * @returns Its ifindex.
 * @throws {RangeError} For an invalid name. @throws {SyscallError} ENODEV for no such interface.
 *
 * @example
 * ```ts ignore
 * linkIndex("lo"); // 1
 * ```
 */
export function linkIndex(name: string): number {
  assertValidLinkName(name);
  return interfaceIndex(name);
}

/** Options for {@link createVethPair}. */
export interface VethOptions {
  /** Make the peer straight in the network namespace of this process (IFLA_NET_NS_PID). */
  readonly peerNetnsPid?: number;
}

/**
 * Creates a veth pair: `host` in the caller's network namespace, `peer` there too or, with
 * `peerNetnsPid`, in that process's network namespace. Both ends start down.
 * @param host The name of the end that stays here.
 * @param peer The name of the other end (in its namespace).
 * @param options Where the peer goes.
 * @throws {RangeError} For an invalid name or pid, before any call.
 * @throws {SyscallError} `netlink RTM_NEWLINK veth a/b: EEXIST (file exists)` when a name is taken.
 *
 * @example
 * ```ts ignore
 * createVethPair("hk-web-h", "eth0", { peerNetnsPid: container.pid });
 * ```
 */
export function createVethPair(host: string, peer: string, options: VethOptions = {}): void {
  assertValidLinkName(host, "host interface name");
  assertValidLinkName(peer, "peer interface name");
  const pid = options.peerNetnsPid;
  if (pid !== undefined && (!Number.isInteger(pid) || pid <= 0)) {
    throw new RangeError(`Invalid peerNetnsPid ${pid}: must be a positive integer`);
  }
  newVethPair(host, peer, pid);
}

/**
 * Deletes a link (RTM_DELLINK); deleting one end of a veth pair deletes both.
 * @param name The interface.
 * @throws {RangeError} For an invalid name. @throws {SyscallError} ENODEV for no such interface.
 *
 * @example
 * ```ts ignore
 * deleteLink("hk-web-h");
 * ```
 */
export function deleteLink(name: string): void {
  assertValidLinkName(name);
  delLink(name);
}

/**
 * Adds an address to an interface (RTM_NEWADDR with IFA_LOCAL and IFA_ADDRESS).
 * @param name The interface.
 * @param cidr The address and prefix length, `"10.200.0.1/30"` (IPv6 works too).
 * @throws {RangeError} For an invalid name or CIDR, before any call.
 * @throws {SyscallError} ENODEV for no such interface, EEXIST when it has the address already.
 *
 * @example
 * ```ts ignore
 * addAddress("hk-web-h", "10.200.0.1/30");
 * ```
 */
export function addAddress(name: string, cidr: string): void {
  assertValidLinkName(name);
  const c = parseCidr(cidr);
  newAddress(name, c.version === 4 ? 2 : 10, c.bytes, c.prefixLength, cidr);
}
