/**
 * rtnetlink over a `NETLINK_ROUTE` socket: enough to make a veth pair (one end moved straight into
 * another network namespace), give an interface an address, set it up and delete it — the work
 * haconiwa did by running `ip` — and read-only dumps of the links, addresses and routes (to check a
 * veth's subnet against the host's before making it). Every request asks for an ACK; a negative
 * errno in the ACK is thrown as a {@link SyscallError} naming the request
 * (`netlink RTM_NEWLINK veth hk-a/hk-b: EEXIST (file exists)`).
 *
 * Layouts (all little-endian on x86_64 and aarch64, 4-byte aligned): `struct nlmsghdr` (16 bytes),
 * `struct ifinfomsg` (16), `struct ifaddrmsg` (8), `struct rtattr` (4) followed by its payload.
 * @module
 */
import { check, checkRetry, errno, libc } from "./libc.ts";
import { cstr } from "./cstring.ts";
import { SyscallError } from "./errno.ts";
import { AF_NETLINK, AF_UNSPEC, IFF_UP, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW } from "./constants.ts";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_NEWADDR = 20;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_PID = 19;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

/** `struct nlmsghdr { u32 nlmsg_len; u16 nlmsg_type; u16 nlmsg_flags; u32 nlmsg_seq; u32 nlmsg_pid; }` */
const NLMSGHDR = { size: 16, len: 0, type: 4, flags: 6, seq: 8, pid: 12 } as const;
/** `struct nlmsgerr { int error; struct nlmsghdr msg; }`, after the header. */
const NLMSGERR_ERROR = 0;
/** `struct ifinfomsg { u8 family; u8 pad; u16 type; i32 index; u32 flags; u32 change; }` */
const IFINFOMSG = { size: 16, family: 0, type: 2, index: 4, flags: 8, change: 12 } as const;
/** `struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }` */
const IFADDRMSG = { size: 8, family: 0, prefixlen: 1, flags: 2, scope: 3, index: 4 } as const;
/** `struct rtattr { u16 rta_len; u16 rta_type; }` */
const RTATTR = { size: 4, len: 0, type: 2 } as const;
/** `struct sockaddr_nl { u16 nl_family; u16 pad; u32 nl_pid; u32 nl_groups; }` */
const SOCKADDR_NL = { size: 12, family: 0, pid: 4, groups: 8 } as const;

const align4 = (n: number) => (n + 3) & ~3;

function dv(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + align4(p.length), 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += align4(p.length);
  }
  return out;
}

/** An rtattr: header, then the payload (or nested attributes), padded to 4 bytes. */
function rtattr(type: number, ...payload: Uint8Array[]): Uint8Array {
  const body = concat(payload);
  const out = new Uint8Array(RTATTR.size + body.length);
  const v = dv(out);
  v.setUint16(RTATTR.len, out.length, true);
  v.setUint16(RTATTR.type, type, true);
  out.set(body, RTATTR.size);
  return out;
}

/** A NUL-terminated string attribute (the kernel wants the NUL counted). */
const strAttr = (type: number, s: string) => rtattr(type, cstr(s));

function u32Attr(type: number, n: number): Uint8Array {
  const b = new Uint8Array(4);
  dv(b).setUint32(0, n, true);
  return rtattr(type, b);
}

function ifinfomsg(index = 0, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(IFINFOMSG.size);
  const v = dv(b);
  v.setUint8(IFINFOMSG.family, AF_UNSPEC);
  v.setInt32(IFINFOMSG.index, index, true);
  v.setUint32(IFINFOMSG.flags, flags, true);
  v.setUint32(IFINFOMSG.change, change, true);
  return b;
}

function ifaddrmsg(family: number, prefixlen: number, index: number): Uint8Array {
  const b = new Uint8Array(IFADDRMSG.size);
  const v = dv(b);
  v.setUint8(IFADDRMSG.family, family);
  v.setUint8(IFADDRMSG.prefixlen, prefixlen);
  v.setUint32(IFADDRMSG.index, index, true);
  return b;
}

let seqCounter = 0;

/**
 * Sends one request with NLM_F_REQUEST|NLM_F_ACK (plus `flags`) on a fresh NETLINK_ROUTE socket
 * and reads the ACK.
 * @param what The request as messages name it (`RTM_NEWLINK veth a/b`).
 * @throws {SyscallError} When the socket calls fail, or with the ACK's errno.
 */
function request(type: number, flags: number, parts: readonly Uint8Array[], what: string): void {
  const { socket, sendto, recv, close } = libc();
  const body = concat(parts);
  const msg = new Uint8Array(NLMSGHDR.size + body.length);
  const seq = ++seqCounter;
  const hv = dv(msg);
  hv.setUint32(NLMSGHDR.len, msg.length, true);
  hv.setUint16(NLMSGHDR.type, type, true);
  hv.setUint16(NLMSGHDR.flags, NLM_F_REQUEST | NLM_F_ACK | flags, true);
  hv.setUint32(NLMSGHDR.seq, seq, true);
  msg.set(body, NLMSGHDR.size);
  const context = `netlink ${what}`;
  const fd = check(
    socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE),
    "socket",
    ["AF_NETLINK", "SOCK_RAW", "NETLINK_ROUTE"],
    context,
  );
  try {
    const sa = new Uint8Array(SOCKADDR_NL.size);
    dv(sa).setUint16(SOCKADDR_NL.family, AF_NETLINK, true); // pid 0: the kernel
    checkRetry(() => sendto(fd, msg, BigInt(msg.length), 0, sa, SOCKADDR_NL.size), "sendto", [fd], context);
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = checkRetry(() => recv(fd, buf, BigInt(buf.length), 0), "recv", [fd], context);
      if (n === 0) throw new Error(`${context}: the kernel closed the socket without an answer`);
      const v = dv(buf);
      for (let off = 0; off + NLMSGHDR.size <= n;) {
        const len = v.getUint32(off + NLMSGHDR.len, true);
        if (len < NLMSGHDR.size) break;
        const t = v.getUint16(off + NLMSGHDR.type, true);
        const s = v.getUint32(off + NLMSGHDR.seq, true);
        if (s === seq && t === NLMSG_ERROR) {
          const err = -v.getInt32(off + NLMSGHDR.size + NLMSGERR_ERROR, true);
          if (err === 0) return;
          const e = new SyscallError("netlink", err, [what]);
          Object.defineProperty(e, "message", { value: e.message.replace(/^netlink\([^)]*\)/, context) });
          throw e;
        }
        if (s === seq && t === NLMSG_DONE) return;
        off += align4(len);
      }
    }
  } finally {
    close(fd);
  }
}

/**
 * The index of an interface in the caller's network namespace (`if_nametoindex`).
 * @throws {SyscallError} ENODEV when there is none.
 */
export function interfaceIndex(name: string): number {
  const i = libc().if_nametoindex(cstr(name));
  if (i === 0) throw new SyscallError("if_nametoindex", errno() || 19, [name]);
  return i;
}

/**
 * RTM_NEWLINK (create, exclusive) of a veth pair `host`/`peer`; with `peerNetnsPid` the peer is
 * made straight in that process's network namespace.
 * @throws {SyscallError} With the ACK's errno (EEXIST when a name is taken).
 */
export function newVethPair(host: string, peer: string, peerNetnsPid?: number): void {
  const peerInfo = [ifinfomsg(), strAttr(IFLA_IFNAME, peer)];
  if (peerNetnsPid !== undefined) peerInfo.push(u32Attr(IFLA_NET_NS_PID, peerNetnsPid));
  request(
    RTM_NEWLINK,
    NLM_F_CREATE | NLM_F_EXCL,
    [
      ifinfomsg(),
      strAttr(IFLA_IFNAME, host),
      rtattr(
        IFLA_LINKINFO,
        strAttr(IFLA_INFO_KIND, "veth"),
        rtattr(IFLA_INFO_DATA, rtattr(VETH_INFO_PEER, ...peerInfo)),
      ),
    ],
    `RTM_NEWLINK veth ${host}/${peer}`,
  );
}

/**
 * RTM_DELLINK by name (deleting one end of a veth deletes both).
 * @throws {SyscallError} ENODEV when there is no such link.
 */
export function delLink(name: string): void {
  request(RTM_DELLINK, 0, [ifinfomsg(), strAttr(IFLA_IFNAME, name)], `RTM_DELLINK ${name}`);
}

/**
 * RTM_NEWLINK (change) setting IFF_UP or clearing it, by name.
 * @throws {SyscallError} ENODEV when there is no such link.
 */
export function setLinkFlagsUp(name: string, up: boolean): void {
  request(
    RTM_NEWLINK,
    0,
    [ifinfomsg(0, up ? IFF_UP : 0, IFF_UP), strAttr(IFLA_IFNAME, name)],
    `RTM_NEWLINK ${name} ${up ? "up" : "down"}`,
  );
}

/**
 * RTM_NEWADDR (create, exclusive): IFA_LOCAL and IFA_ADDRESS set to `address` (4 bytes for
 * AF_INET = 2, 16 for AF_INET6 = 10) with `prefixLength`, on interface `name`.
 * @throws {SyscallError} ENODEV for no such interface, EEXIST when it has the address already.
 */
export function newAddress(
  name: string,
  family: 2 | 10,
  address: Uint8Array,
  prefixLength: number,
  shown: string,
): void {
  const index = interfaceIndex(name);
  request(
    RTM_NEWADDR,
    NLM_F_CREATE | NLM_F_EXCL,
    [ifaddrmsg(family, prefixLength, index), rtattr(IFA_LOCAL, address), rtattr(IFA_ADDRESS, address)],
    `RTM_NEWADDR ${shown} dev ${name}`,
  );
}

// ---- dumps: the host's links, addresses and routes (read-only requests) ----

const RTM_GETLINK = 18;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;
const NLM_F_DUMP = 0x300; // NLM_F_ROOT | NLM_F_MATCH
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_TABLE = 15;
/** `struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }` */
const RTMSG = { size: 12, family: 0, dstLen: 1, table: 4, type: 7 } as const;

/** One link of an RTM_GETLINK dump. */
export interface LinkEntry {
  /** The ifindex. */
  readonly index: number;
  /** IFLA_IFNAME. */
  readonly name: string;
}

/** One address of an RTM_GETADDR dump. */
export interface AddressEntry {
  /** AF_INET (2) or AF_INET6 (10). */
  readonly family: number;
  /** The interface's ifindex. */
  readonly index: number;
  /** IFA_LOCAL when present (IFA_ADDRESS is the peer on point-to-point links), else IFA_ADDRESS. */
  readonly address: Uint8Array;
  /** ifa_prefixlen. */
  readonly prefixLength: number;
}

/** One route of an RTM_GETROUTE dump. */
export interface RouteEntry {
  /** AF_INET (2) or AF_INET6 (10). */
  readonly family: number;
  /** RTA_DST (empty for a default route). */
  readonly destination: Uint8Array;
  /** rtm_dst_len (0 for a default route). */
  readonly prefixLength: number;
  /** RTA_TABLE when present, else rtm_table (254 is the main table, 255 local). */
  readonly table: number;
  /** rtm_type: 1 unicast, 2 local, 3 broadcast, 6 blackhole, 7 unreachable, 8 prohibit… */
  readonly type: number;
  /** RTA_OIF, the output interface's ifindex, when the route has one. */
  readonly outputIndex: number | undefined;
}

/** The attributes (type → payload) of a message, from `off` (after the family header) to `end`. */
function attributes(buf: Uint8Array, off: number, end: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = dv(buf);
  while (off + RTATTR.size <= end) {
    const len = v.getUint16(off + RTATTR.len, true);
    if (len < RTATTR.size || off + len > end) break;
    out.set(v.getUint16(off + RTATTR.type, true) & 0x3fff, buf.slice(off + RTATTR.size, off + len));
    off += align4(len);
  }
  return out;
}

/**
 * Sends one NLM_F_DUMP request and calls `each(type, message, start, end)` for every message of the
 * answer (`start` is where the family header begins) until NLMSG_DONE.
 * @throws {SyscallError} When a socket call fails, or with the errno of an NLMSG_ERROR.
 */
function dump(
  type: number,
  header: Uint8Array,
  what: string,
  each: (type: number, buf: Uint8Array, start: number, end: number) => void,
): void {
  const { socket, sendto, recv, close } = libc();
  const msg = new Uint8Array(NLMSGHDR.size + align4(header.length));
  const seq = ++seqCounter;
  const hv = dv(msg);
  hv.setUint32(NLMSGHDR.len, msg.length, true);
  hv.setUint16(NLMSGHDR.type, type, true);
  hv.setUint16(NLMSGHDR.flags, NLM_F_REQUEST | NLM_F_DUMP, true);
  hv.setUint32(NLMSGHDR.seq, seq, true);
  msg.set(header, NLMSGHDR.size);
  const context = `netlink ${what}`;
  const fd = check(
    socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE),
    "socket",
    ["AF_NETLINK", "SOCK_RAW", "NETLINK_ROUTE"],
    context,
  );
  try {
    const sa = new Uint8Array(SOCKADDR_NL.size);
    dv(sa).setUint16(SOCKADDR_NL.family, AF_NETLINK, true);
    checkRetry(() => sendto(fd, msg, BigInt(msg.length), 0, sa, SOCKADDR_NL.size), "sendto", [fd], context);
    // A dump comes in several reads, each holding whole messages (at most a few pages).
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = checkRetry(() => recv(fd, buf, BigInt(buf.length), 0), "recv", [fd], context);
      if (n === 0) throw new Error(`${context}: the kernel closed the socket before NLMSG_DONE`);
      const v = dv(buf);
      for (let off = 0; off + NLMSGHDR.size <= n;) {
        const len = v.getUint32(off + NLMSGHDR.len, true);
        if (len < NLMSGHDR.size || off + len > n) break;
        const t = v.getUint16(off + NLMSGHDR.type, true);
        if (v.getUint32(off + NLMSGHDR.seq, true) === seq) {
          if (t === NLMSG_DONE) return;
          if (t === NLMSG_ERROR) {
            const err = -v.getInt32(off + NLMSGHDR.size + NLMSGERR_ERROR, true);
            if (err === 0) return;
            const e = new SyscallError("netlink", err, [what]);
            Object.defineProperty(e, "message", { value: e.message.replace(/^netlink\([^)]*\)/, context) });
            throw e;
          }
          each(t, buf, off + NLMSGHDR.size, off + len);
        }
        off += align4(len);
      }
    }
  } finally {
    close(fd);
  }
}

/**
 * Every link in the caller's network namespace (RTM_GETLINK dump).
 * @throws {SyscallError} When the dump fails.
 */
export function dumpLinks(): LinkEntry[] {
  const out: LinkEntry[] = [];
  dump(RTM_GETLINK, ifinfomsg(), "RTM_GETLINK dump", (t, buf, start, end) => {
    if (t !== RTM_NEWLINK || start + IFINFOMSG.size > end) return;
    const name = attributes(buf, start + IFINFOMSG.size, end).get(IFLA_IFNAME);
    const index = dv(buf).getInt32(start + IFINFOMSG.index, true);
    const bytes = name ? name.subarray(0, name.indexOf(0) === -1 ? name.length : name.indexOf(0)) : undefined;
    out.push({ index, name: bytes ? new TextDecoder().decode(bytes) : `if${index}` });
  });
  return out;
}

/**
 * Every IPv4 and IPv6 address in the caller's network namespace (RTM_GETADDR dump).
 * @throws {SyscallError} When the dump fails.
 */
export function dumpAddresses(): AddressEntry[] {
  const out: AddressEntry[] = [];
  dump(RTM_GETADDR, ifaddrmsg(AF_UNSPEC, 0, 0), "RTM_GETADDR dump", (t, buf, start, end) => {
    if (t !== RTM_NEWADDR || start + IFADDRMSG.size > end) return;
    const v = dv(buf);
    const attrs = attributes(buf, start + IFADDRMSG.size, end);
    const address = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
    if (!address) return;
    out.push({
      family: v.getUint8(start + IFADDRMSG.family),
      index: v.getUint32(start + IFADDRMSG.index, true),
      address,
      prefixLength: v.getUint8(start + IFADDRMSG.prefixlen),
    });
  });
  return out;
}

/**
 * Every IPv4 and IPv6 route of every table in the caller's network namespace (RTM_GETROUTE dump);
 * filter on {@link RouteEntry.table} for one table.
 * @throws {SyscallError} When the dump fails.
 */
export function dumpRoutes(): RouteEntry[] {
  const out: RouteEntry[] = [];
  dump(RTM_GETROUTE, new Uint8Array(RTMSG.size), "RTM_GETROUTE dump", (t, buf, start, end) => {
    if (t !== RTM_NEWROUTE || start + RTMSG.size > end) return;
    const v = dv(buf);
    const attrs = attributes(buf, start + RTMSG.size, end);
    const table = attrs.get(RTA_TABLE);
    const oif = attrs.get(RTA_OIF);
    out.push({
      family: v.getUint8(start + RTMSG.family),
      destination: attrs.get(RTA_DST) ?? new Uint8Array(0),
      prefixLength: v.getUint8(start + RTMSG.dstLen),
      table: table && table.length >= 4 ? dv(table).getUint32(0, true) : v.getUint8(start + RTMSG.table),
      type: v.getUint8(start + RTMSG.type),
      outputIndex: oif && oif.length >= 4 ? dv(oif).getUint32(0, true) : undefined,
    });
  });
  return out;
}
