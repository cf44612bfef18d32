/**
 * Network interfaces without `ip`: loopback up in a new network namespace, and a veth pair
 * between the host and a container (rtnetlink, see `ffi/netlink.ts`), its addresses and links;
 * the checks that keep a veth off the host's own networks (point-to-point prefixes, no overlap
 * with a host route or address) and the sysctls that harden its host end.
 * @module
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { setLinkUp as ioctlLinkUp } from "../ffi/net.ts";
import {
  delLink,
  dumpAddresses,
  dumpLinks,
  dumpRoutes,
  interfaceIndex,
  newAddress,
  newVethPair,
  setLinkFlagsUp,
} from "../ffi/netlink.ts";

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

/** The prefix lengths of a point-to-point link: /30 and /31 for IPv4, /126 and /127 for IPv6. */
export const POINT_TO_POINT_PREFIXES: Readonly<Record<4 | 6, readonly number[]>> = { 4: [30, 31], 6: [126, 127] };

/** True when `c`'s prefix is a point-to-point one ({@link POINT_TO_POINT_PREFIXES}). */
export function isPointToPoint(c: Cidr): boolean {
  return POINT_TO_POINT_PREFIXES[c.version].includes(c.prefixLength);
}

/** An address as text: dotted quad, or IPv6 with the longest run of zero groups as `::`. */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) (best = i, bestLen = j - i);
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  return best < 0 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** `c`'s network as CIDR text: `"10.200.7.1/30"` → `"10.200.7.0/30"`. */
export function networkOf(c: Cidr): string {
  const bytes = c.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, c.prefixLength - 8 * i));
    return b & (0xff << (8 - bits)) & 0xff;
  });
  return `${formatAddress(bytes)}/${c.prefixLength}`;
}

/** True when the networks of `a` and `b` share an address (one contains the other); false across families. */
export function networksOverlap(
  a: Pick<Cidr, "version" | "bytes" | "prefixLength">,
  b: Pick<Cidr, "version" | "bytes" | "prefixLength">,
): boolean {
  if (a.version !== b.version) return false;
  const bits = Math.min(a.prefixLength, b.prefixLength);
  for (let bit = 0; bit < bits; bit++) {
    const byte = bit >> 3, mask = 0x80 >> (bit & 7);
    if ((a.bytes[byte]! & mask) !== (b.bytes[byte]! & mask)) return false;
  }
  return true;
}

/** A network the host uses: a route of its main table, or an address on one of its interfaces. */
export interface HostNetwork {
  /** A route (main table) or an interface address. */
  readonly kind: "route" | "address";
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** The route's destination, or the address. */
  readonly bytes: Uint8Array;
  /** The prefix length. */
  readonly prefixLength: number;
  /** The route's output interface, or the address's interface (undefined for a multipath route). */
  readonly device: string | undefined;
}

/** How a host network reads in a message: `route 10.0.0.0/8 dev eth1`, `address 127.0.0.1/8 on lo`. */
export function describeHostNetwork(n: HostNetwork): string {
  const text = `${formatAddress(n.bytes)}/${n.prefixLength}`;
  if (n.kind === "address") return `address ${text} on ${n.device ?? "an interface"}`;
  return `route ${text}${n.device ? ` dev ${n.device}` : ""}`;
}

const RT_TABLE_MAIN = 254;

/**
 * The networks the host (the caller's network namespace) uses: every route of the main table
 * except the default routes, and every address on every interface — from rtnetlink dumps.
 * Default routes are left out: every subnet is inside 0.0.0.0/0, and a more specific route is how
 * a subnet is carved out of it (docker's overlap check skips them too).
 * @returns The networks, routes first.
 * @throws {SyscallError} When a dump fails.
 *
 * @example
 * ```ts ignore
 * hostNetworks().map(describeHostNetwork); // ["route 192.0.2.0/24 dev eth0", "address 127.0.0.1/8 on lo", …]
 * ```
 */
export function hostNetworks(): HostNetwork[] {
  const names = new Map(dumpLinks().map((l) => [l.index, l.name]));
  const version = (family: number) => (family === 2 ? 4 : family === 10 ? 6 : undefined);
  const out: HostNetwork[] = [];
  for (const r of dumpRoutes()) {
    const v = version(r.family);
    if (!v || r.table !== RT_TABLE_MAIN || r.prefixLength === 0) continue;
    const bytes = new Uint8Array(v === 4 ? 4 : 16);
    bytes.set(r.destination.subarray(0, bytes.length));
    out.push({
      kind: "route",
      version: v,
      bytes,
      prefixLength: r.prefixLength,
      device: r.outputIndex === undefined ? undefined : names.get(r.outputIndex) ?? `if${r.outputIndex}`,
    });
  }
  for (const a of dumpAddresses()) {
    const v = version(a.family);
    if (!v || a.address.length !== (v === 4 ? 4 : 16)) continue;
    out.push({
      kind: "address",
      version: v,
      bytes: a.address,
      prefixLength: a.prefixLength,
      device: names.get(a.index) ?? `if${a.index}`,
    });
  }
  return out;
}

/**
 * The first host network that overlaps `cidr`'s network, or undefined when it is free.
 * @param cidr The subnet wanted.
 * @param networks The host's networks ({@link hostNetworks}).
 * @param exceptDevice A link whose routes and addresses do not count: the veth's own host end
 *   (once a container runs, its own subnet is on the host, e.g. when its spec is resolved again
 *   for `hako exec`; a leftover link of that name fails the creation with EEXIST anyway).
 *
 * @example
 * ```ts
 * import { findHostClash, parseCidr } from "./network.ts";
 * const lo = { kind: "address", version: 4, bytes: new Uint8Array([127, 0, 0, 1]), prefixLength: 8, device: "lo" } as const;
 * findHostClash(parseCidr("127.0.0.5/30"), [lo]); // lo's address
 * ```
 */
export function findHostClash(
  cidr: Cidr,
  networks: readonly HostNetwork[],
  exceptDevice?: string,
): HostNetwork | undefined {
  return networks.find((n) => (exceptDevice === undefined || n.device !== exceptDevice) && networksOverlap(cidr, n));
}

/**
 * Why a veth may not have `cidr`'s subnet on this host, or undefined when it may.
 * @param cidr The veth's address (its network is what counts).
 * @param networks The host's networks ({@link hostNetworks}).
 * @param exceptDevice The veth's own host end (see {@link findHostClash}).
 * @returns `"10.200.7.0/30 overlaps the host's route 10.200.7.0/30 dev hk-1a2b3c4d-h: …"`, or undefined.
 */
export function hostClashProblem(
  cidr: Cidr,
  networks: readonly HostNetwork[],
  exceptDevice?: string,
): string | undefined {
  const n = findHostClash(cidr, networks, exceptDevice);
  if (!n) return undefined;
  return `${networkOf(cidr)} overlaps the host's ${describeHostNetwork(n)}: pick a subnet the host does not use`;
}

/** One sysctl of a veth's host end: its file under `/proc/sys/net/ipv{4,6}/conf/<name>/`, and the value. */
interface LinkSysctl {
  readonly family: "ipv4" | "ipv6";
  readonly key: string;
  readonly value: string;
}

/**
 * What {@link hardenHostLink} writes for the host end of a veth, before it has an address or is up.
 *
 * What the others set on theirs: netavark (podman) sets, on its bridge, `rp_filter=2` (loose),
 * `accept_ra=0` and `accept_dad=0`, and on the container end `rp_filter=2`, `arp_notify=1` and
 * `autoconf=0`; docker's bridge driver sets `route_localnet=1` on the bridge when it hairpins
 * without its userland proxy; the CNI bridge and ptp plugins leave the per-interface defaults.
 * hako's host end is a point-to-point link with no asymmetric routing, so it goes further:
 * - `rp_filter=1` strict reverse-path filtering: a packet from the container whose source is not
 *   routed back through this link (a spoofed source) is dropped; the kernel uses the larger of
 *   this and `net.ipv4.conf.all.rp_filter`, so `all` at 2 makes it loose (warned about);
 * - `accept_local=0`, `route_localnet=0`: no packet with one of the host's own addresses or a
 *   127/8 address as its source or destination (the kernel ORs these with `all`);
 * - `accept_redirects=0`, `secure_redirects=0`, `send_redirects=0`, `accept_source_route=0`: no
 *   ICMP redirect taken or sent, no source routing (the kernel ORs redirects with `all` while
 *   forwarding is off, and honours a redirect only from the gateway a route already uses, which
 *   this link never is);
 * - `proxy_arp=0`, `arp_ignore=1`, `arp_announce=2`: the host answers ARP on this link only for the
 *   address it has here, and does not announce its other addresses into the container;
 * - IPv6: `accept_ra=0`, `autoconf=0`, `accept_redirects=0`, `accept_source_route=-1` (no routing
 *   header at all), and `disable_ipv6=1` when the pair is IPv4-only, so the container cannot
 *   reach the host over link-local addresses it was never given.
 */
export const HOST_LINK_SYSCTLS: readonly LinkSysctl[] = [
  { family: "ipv4", key: "rp_filter", value: "1" },
  { family: "ipv4", key: "accept_local", value: "0" },
  { family: "ipv4", key: "route_localnet", value: "0" },
  { family: "ipv4", key: "accept_redirects", value: "0" },
  { family: "ipv4", key: "secure_redirects", value: "0" },
  { family: "ipv4", key: "send_redirects", value: "0" },
  { family: "ipv4", key: "accept_source_route", value: "0" },
  { family: "ipv4", key: "proxy_arp", value: "0" },
  { family: "ipv4", key: "arp_ignore", value: "1" },
  { family: "ipv4", key: "arp_announce", value: "2" },
  { family: "ipv6", key: "accept_ra", value: "0" },
  { family: "ipv6", key: "autoconf", value: "0" },
  { family: "ipv6", key: "accept_redirects", value: "0" },
  { family: "ipv6", key: "accept_source_route", value: "-1" },
];

/**
 * What {@link hardenHostLink} writes, as `hako plan` shows it.
 * @param name The host end.
 * @param disableIpv6 As in {@link HardenOptions}.
 * @returns One line per family: `write /proc/sys/net/ipv4/conf/NAME/{rp_filter=1, …}`.
 */
export function hostLinkSysctlPlan(name: string, disableIpv6 = false): string[] {
  return (["ipv4", "ipv6"] as const).map((f) => {
    const sets = HOST_LINK_SYSCTLS.filter((s) => s.family === f).map((s) => `${s.key}=${s.value}`);
    if (f === "ipv6" && disableIpv6) sets.push("disable_ipv6=1");
    return `write /proc/sys/net/${f}/conf/${name}/{${sets.join(", ")}}${f === "ipv6" ? " (when IPv6 is on)" : ""}`;
  });
}

/** `all` values that override a host end's own (the kernel takes the max, or ORs them). */
const GLOBAL_OVERRIDES: readonly { key: string; bad: (v: number) => boolean; why: string }[] = [
  { key: "rp_filter", bad: (v) => v > 1, why: "reverse-path filtering on the host end is loose, not strict" },
  { key: "accept_local", bad: (v) => v !== 0, why: "the host end accepts packets with a host address as source" },
  { key: "route_localnet", bad: (v) => v !== 0, why: "the container can reach the host's 127.0.0.0/8 services" },
  { key: "proxy_arp", bad: (v) => v !== 0, why: "the host answers ARP on the host end for other addresses" },
];

/** Options for {@link hardenHostLink}. */
export interface HardenOptions {
  /** Turn IPv6 off on the link (the pair has IPv4 addresses only). Default false. */
  readonly disableIpv6?: boolean;
  /** Where `net` sysctls live (default `/proc/sys/net`; a temp dir in unit tests). */
  readonly root?: string;
}

/**
 * Hardens the host end of a veth ({@link HOST_LINK_SYSCTLS}) through `/proc/sys/net/…/conf/<name>/`
 * (the caller's network namespace). The IPv6 ones are skipped when the kernel has no IPv6 for the
 * link (no `ipv6/conf/<name>` directory).
 * @param name The link, checked like every interface name (so it cannot walk out of `conf/`).
 * @param options IPv6 off, or another root.
 * @returns Warnings: global settings (`net.ipv4.conf.all.*`) that weaken what was set.
 * @throws {RangeError} For an invalid name. @throws {Error} When a write fails (naming the file).
 *
 * @example
 * ```ts ignore
 * for (const w of hardenHostLink("hk-web-h", { disableIpv6: true })) console.warn(w);
 * ```
 */
export function hardenHostLink(name: string, options: HardenOptions = {}): string[] {
  assertValidLinkName(name);
  const root = options.root ?? "/proc/sys/net";
  const write = (family: "ipv4" | "ipv6", key: string, value: string) => {
    const path = join(root, family, "conf", name, key);
    try {
      writeFileSync(path, value);
    } catch (e) {
      throw new Error(`cannot harden ${name}: write ${value} to ${path}: ${(e as Error).message}`, { cause: e });
    }
  };
  let ipv6 = true;
  try {
    readFileSync(join(root, "ipv6", "conf", name, "disable_ipv6"));
  } catch {
    ipv6 = false; // no IPv6 in this kernel, or off for every link
  }
  for (const s of HOST_LINK_SYSCTLS) if (s.family === "ipv4" || ipv6) write(s.family, s.key, s.value);
  if (ipv6 && options.disableIpv6) write("ipv6", "disable_ipv6", "1");
  const warnings: string[] = [];
  for (const o of GLOBAL_OVERRIDES) {
    let v: number;
    try {
      v = Number(readFileSync(join(root, "ipv4", "conf", "all", o.key), "utf8").trim());
    } catch {
      continue;
    }
    if (o.bad(v)) {
      warnings.push(`net.ipv4.conf.all.${o.key} is ${v}, which the kernel combines with ${name}'s: ${o.why}`);
    }
  }
  return warnings;
}

/**
 * The range {@link allocateVethSubnet} takes /30s from: `HAKO_VETH_RANGE` (an IPv4 CIDR, /16 to
 * /29), else 10.213.0.0/16 — a private range docker does not use by default (its bridge takes
 * 172.17.0.0/16 and its pools 172.18–31 and 192.168), so the two rarely meet on one host.
 */
export const DEFAULT_VETH_RANGE = "10.213.0.0/16";

/**
 * A free point-to-point subnet for a container's veth (`hako run --network veth`, `-p`): the
 * first /30 of the range, from a random place in it, that overlaps no host route or address —
 * the host end of every running container's veth is one, so a subnet in use is never handed out
 * again; it is free once the container's veth is gone (deleted with the container). Two runs that
 * pick the same /30 at the same moment: the second's veth is refused by the check made again
 * right before the pair is made (Container.create).
 * @param networks The host's networks (default {@link hostNetworks}).
 * @param range The range (default `HAKO_VETH_RANGE`, else {@link DEFAULT_VETH_RANGE}).
 * @returns The host end's and the container end's address in CIDR notation (`.1/30`, `.2/30`).
 * @throws {RangeError} When the range is not an IPv4 CIDR of /16–/29, or none of it is free.
 */
export function allocateVethSubnet(
  networks: readonly HostNetwork[] = hostNetworks(),
  range: string = process.env.HAKO_VETH_RANGE?.trim() ||
    DEFAULT_VETH_RANGE,
): { hostAddress: string; containerAddress: string } {
  const r = parseCidr(range);
  if (r.version !== 4 || r.prefixLength < 16 || r.prefixLength > 29) {
    throw new RangeError(`the veth range ${JSON.stringify(range)} must be an IPv4 CIDR of /16 to /29`);
  }
  const base = ((r.bytes[0]! << 24) | (r.bytes[1]! << 16) | (r.bytes[2]! << 8) | r.bytes[3]!) >>> 0;
  const start = (base & ((0xffffffff << (32 - r.prefixLength)) >>> 0)) >>> 0;
  const blocks = 2 ** (30 - r.prefixLength);
  const first = Math.floor(Math.random() * blocks);
  const quad = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
  for (let i = 0; i < blocks; i++) {
    const net = start + ((first + i) % blocks) * 4;
    const host = parseCidr(`${quad(net + 1)}/30`);
    if (!findHostClash(host, networks)) {
      return { hostAddress: `${quad(net + 1)}/30`, containerAddress: `${quad(net + 2)}/30` };
    }
  }
  throw new RangeError(`no free /30 is left in the veth range ${range} (HAKO_VETH_RANGE)`);
}
