/**
 * Terminals, as `-t` needs them: a pty opened from a devpts instance's `ptmx` (its slave from the
 * master with `TIOCGPTPEER`, no path), the controlling terminal (`TIOCSCTTY`), window sizes
 * (`TIOCGWINSZ`/`TIOCSWINSZ`), the caller's terminal in raw mode and back (`tcgetattr`,
 * `cfmakeraw`, `tcsetattr`), and a file descriptor handed over a unix socket (`SCM_RIGHTS`):
 * how a container's child gives the pty's master to hako (runc's "console socket").
 *
 * The ioctl numbers are asm-generic's, the same on x86-64 and aarch64; the struct layouts are
 * LP64's and checked at load time (see `structs.ts`).
 *
 * @example Put the caller's terminal in raw mode, and back
 * ```ts ignore
 * import { makeRaw, restoreTerminal } from "./ffi/tty.ts";
 * const saved = makeRaw(0); // undefined when fd 0 is not a terminal
 * try { ... } finally { if (saved) restoreTerminal(0, saved); }
 * ```
 * @module
 */
import { addressOf, errno, libc, retryEintr } from "./libc.ts";
import { SyscallError } from "./errno.ts";
import { defineStruct } from "./structs.ts";
import {
  AF_UNIX,
  EAGAIN,
  EMSGSIZE,
  FIONBIO,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  O_CLOEXEC,
  O_NOCTTY,
  O_RDWR,
  SCM_RIGHTS,
  SOCK_CLOEXEC,
  SOCK_SEQPACKET,
  SOL_SOCKET,
  TIOCGPTPEER,
  TIOCGWINSZ,
  TIOCSCTTY,
  TIOCSPTLCK,
  TIOCSWINSZ,
} from "./constants.ts";

// The terminal ioctls and socket options, re-exported from their one place (ffi/constants.ts).
export {
  FIONBIO,
  MSG_NOSIGNAL,
  SCM_RIGHTS,
  SOL_SOCKET,
  TIOCGPTPEER,
  TIOCGWINSZ,
  TIOCSCTTY,
  TIOCSPTLCK,
  TIOCSTI,
  TIOCSWINSZ,
} from "./constants.ts";

/** What the master and slave of a container's pty are opened with. */
export const PTY_OPEN_FLAGS: number = O_RDWR | O_NOCTTY | O_CLOEXEC;

/** A value shown unquoted in a SyscallError message. */
const unquoted = (text: string) => Object.freeze({ toString: () => text });

/** `struct winsize { unsigned short ws_row, ws_col, ws_xpixel, ws_ypixel; }`. */
export const WINSIZE = defineStruct(
  "struct winsize",
  { rows: "u16", columns: "u16", xpixel: "u16", ypixel: "u16" },
  8,
);
/** `struct iovec { void *iov_base; size_t iov_len; }`. */
export const IOVEC = defineStruct("struct iovec", { base: "u64", len: "u64" }, 16);
/**
 * `struct msghdr { void *msg_name; socklen_t msg_namelen; struct iovec *msg_iov; size_t
 * msg_iovlen; void *msg_control; size_t msg_controllen; int msg_flags; }`.
 */
export const MSGHDR = defineStruct("struct msghdr", {
  name: "u64",
  namelen: "u32",
  iov: "u64",
  iovlen: "u64",
  control: "u64",
  controllen: "u64",
  flags: "i32",
}, 56);
/** `struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }`, data after it. */
export const CMSGHDR = defineStruct("struct cmsghdr", { len: "u64", level: "i32", type: "i32" }, 16);
/** `CMSG_SPACE(sizeof(int))`: a control message with one fd, padded. */
export const CMSG_ONE_FD_SPACE = 24;
/** `CMSG_LEN(sizeof(int))`. */
const CMSG_ONE_FD_LEN = 20;

/** A terminal's size in character cells. */
export interface WindowSize {
  /** Lines. */
  readonly rows: number;
  /** Character columns. */
  readonly columns: number;
}

/** `struct winsize` bytes for a size. */
export function encodeWindowSize(size: WindowSize): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(WINSIZE.size);
  const v = new DataView(buf.buffer);
  v.setUint16(WINSIZE.fields.rows.offset, size.rows, true);
  v.setUint16(WINSIZE.fields.columns.offset, size.columns, true);
  return buf;
}

/** `ioctl(fd, request, buf)` with a buffer argument; the buffer stays referenced through the call. */
function ioctlBuffer(fd: number, request: number, buf: Uint8Array): number {
  return libc().ioctl(fd, BigInt(request), addressOf(buf));
}

/**
 * The size of the terminal on `fd` (`TIOCGWINSZ`).
 * @returns The size, or undefined when `fd` is not a terminal (or reports 0×0).
 */
export function windowSize(fd: number): WindowSize | undefined {
  const buf = new Uint8Array(WINSIZE.size);
  if (ioctlBuffer(fd, TIOCGWINSZ, buf) === -1) return undefined;
  const v = new DataView(buf.buffer);
  const size = {
    rows: v.getUint16(WINSIZE.fields.rows.offset, true),
    columns: v.getUint16(WINSIZE.fields.columns.offset, true),
  };
  return size.rows && size.columns ? size : undefined;
}

/**
 * Sets the size of the terminal on `fd` (`TIOCSWINSZ`; on a pty's master, the slave's size, and
 * the slave's foreground process group gets SIGWINCH).
 * @throws {SyscallError} When the ioctl fails (ENOTTY: not a terminal).
 */
export function setWindowSize(fd: number, size: WindowSize, shown: unknown = fd): void {
  if (ioctlBuffer(fd, TIOCSWINSZ, encodeWindowSize(size)) === -1) {
    throw new SyscallError("ioctl", errno(), [shown, unquoted("TIOCSWINSZ"), `${size.rows}x${size.columns}`]);
  }
}

/** glibc's `struct termios` is 60 bytes on x86-64 and aarch64; 64 leaves room. */
const TERMIOS_BYTES = 64;
/** `offsetof(struct termios, c_cc)` (four tcflag_t, then c_line). */
const TERMIOS_CC = 17;
const VEOF = 4;
const TCSANOW = 0;

/** True when `fd` is a terminal (`tcgetattr` succeeds, as `isatty` does it). */
export function isTerminal(fd: number): boolean {
  return libc().tcgetattr(fd, new Uint8Array(TERMIOS_BYTES)) === 0;
}

/**
 * Puts the terminal on `fd` in raw mode (`cfmakeraw`: no echo, no line editing, no signals from
 * keys, no output processing but what the other end sends), as `docker run -it` does to the
 * caller's terminal.
 * @returns The settings before, for {@link restoreTerminal}; undefined when `fd` is not a terminal.
 * @throws {SyscallError} When tcsetattr fails.
 */
export function makeRaw(fd: number): Uint8Array | undefined {
  const { tcgetattr, tcsetattr, cfmakeraw } = libc();
  const saved = new Uint8Array(TERMIOS_BYTES);
  if (tcgetattr(fd, saved) !== 0) return undefined;
  const raw = saved.slice();
  cfmakeraw(raw);
  if (tcsetattr(fd, TCSANOW, raw) !== 0) {
    throw new SyscallError("tcsetattr", errno(), [fd, unquoted("TCSANOW"), unquoted("raw")]);
  }
  return saved;
}

/**
 * Gives the terminal on `fd` back the settings {@link makeRaw} returned (retrying on EINTR).
 * @returns False when it could not (the terminal is gone).
 */
export function restoreTerminal(fd: number, saved: Uint8Array): boolean {
  return retryEintr(() => libc().tcsetattr(fd, TCSANOW, saved)) === 0;
}

/** The terminal's end-of-file character (`c_cc[VEOF]`, ^D by default); 4 when `fd` is not a terminal. */
export function eofCharacter(fd: number): number {
  const t = new Uint8Array(TERMIOS_BYTES);
  if (libc().tcgetattr(fd, t) !== 0) return 4;
  return t[TERMIOS_CC + VEOF] || 4;
}

/**
 * Sets or clears `O_NONBLOCK` on `fd`'s open file description (`FIONBIO`). Never on a descriptor
 * shared with another process (the caller's terminal): the flag is theirs too.
 * @throws {SyscallError} When the ioctl fails.
 */
export function setNonBlocking(fd: number, on: boolean): void {
  if (ioctlBuffer(fd, FIONBIO, new Uint8Array(new Int32Array([on ? 1 : 0]).buffer)) === -1) {
    throw new SyscallError("ioctl", errno(), [fd, unquoted("FIONBIO"), on ? 1 : 0]);
  }
}

/**
 * Opens a new pty of the devpts instance whose `ptmx` is `ptmx`: the master (`open`), unlocked
 * (`TIOCSPTLCK` 0), and its slave (`TIOCGPTPEER`), both close-on-exec and neither made the
 * controlling terminal.
 * @returns Both ends.
 * @throws {SyscallError} Naming the call that failed (nothing is left open).
 */
export function openPty(ptmx: string): { master: number; slave: number } {
  const c = libc();
  const path = new TextEncoder().encode(`${ptmx}\0`);
  const master = c.open(path, PTY_OPEN_FLAGS, 0);
  if (master === -1) throw new SyscallError("open", errno(), [ptmx, unquoted("O_RDWR|O_NOCTTY|O_CLOEXEC")]);
  const m = unquoted("master");
  try {
    if (ioctlBuffer(master, TIOCSPTLCK, new Uint8Array(4)) === -1) {
      throw new SyscallError("ioctl", errno(), [m, unquoted("TIOCSPTLCK"), 0], "unlock the pty's slave");
    }
    const slave = c.ioctl(master, BigInt(TIOCGPTPEER), BigInt(PTY_OPEN_FLAGS));
    if (slave === -1) throw new SyscallError("ioctl", errno(), [m, unquoted("TIOCGPTPEER")], "open the pty's slave");
    return { master, slave };
  } catch (e) {
    c.close(master);
    throw e;
  }
}

/**
 * Makes the terminal on `fd` the calling session's controlling terminal (`TIOCSCTTY`): the caller
 * must lead a session that has none (after `setsid`).
 * @throws {SyscallError} When the ioctl fails.
 */
export function setControllingTerminal(fd: number, shown: unknown = fd): void {
  if (libc().ioctl(fd, BigInt(TIOCSCTTY), 0n) === -1) {
    throw new SyscallError("ioctl", errno(), [shown, unquoted("TIOCSCTTY"), 0]);
  }
}

/**
 * A connected pair of unix sockets (`SOCK_SEQPACKET`, close-on-exec) for handing a descriptor over.
 * @throws {SyscallError} When socketpair fails.
 */
export function socketPair(): [number, number] {
  const sv = new Int32Array(2);
  if (libc().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, new Uint8Array(sv.buffer)) === -1) {
    throw new SyscallError("socketpair", errno(), [unquoted("AF_UNIX"), unquoted("SOCK_SEQPACKET|SOCK_CLOEXEC")]);
  }
  return [sv[0]!, sv[1]!];
}

/** A control message carrying one fd: `{ CMSG_LEN(4), SOL_SOCKET, SCM_RIGHTS, fd }`, padded. */
export function encodeRightsMessage(fd: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(CMSG_ONE_FD_SPACE);
  const v = new DataView(buf.buffer);
  v.setBigUint64(CMSGHDR.fields.len.offset, BigInt(CMSG_ONE_FD_LEN), true);
  v.setInt32(CMSGHDR.fields.level.offset, SOL_SOCKET, true);
  v.setInt32(CMSGHDR.fields.type.offset, SCM_RIGHTS, true);
  v.setInt32(CMSGHDR.size, fd, true);
  return buf;
}

/**
 * A `struct msghdr` of one iovec and a control buffer of `controllen` bytes, with its pointers
 * left 0: the caller patches in the iovec's and the control buffer's addresses (at
 * `MSGHDR.fields.iov.offset` and `.control.offset`).
 */
export function encodeMsghdr(controllen: number): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(MSGHDR.size);
  const v = new DataView(buf.buffer);
  v.setBigUint64(MSGHDR.fields.iovlen.offset, 1n, true);
  v.setBigUint64(MSGHDR.fields.controllen.offset, BigInt(controllen), true);
  return buf;
}

/** A msghdr for one byte in `byte` and the control buffer `control`, built with their addresses. */
function message(byte: Uint8Array, control: Uint8Array): Uint8Array {
  const iov = new Uint8Array(IOVEC.size);
  const iv = new DataView(iov.buffer);
  iv.setBigUint64(IOVEC.fields.base.offset, addressOf(byte), true);
  iv.setBigUint64(IOVEC.fields.len.offset, BigInt(byte.length), true);
  const hdr = encodeMsghdr(control.length);
  const hv = new DataView(hdr.buffer);
  hv.setBigUint64(MSGHDR.fields.iov.offset, addressOf(iov), true);
  hv.setBigUint64(MSGHDR.fields.control.offset, addressOf(control), true);
  keep.set(hdr, [iov, byte, control]);
  return hdr;
}
/** The buffers a msghdr points at, referenced as long as it is. */
const keep = new WeakMap<Uint8Array, Uint8Array[]>();

/**
 * Sends `fd` over the unix socket `sock` (`SCM_RIGHTS`, `MSG_NOSIGNAL`) with `data` as the
 * message's bytes: one byte by default, a name where the receiver reads one (runc's
 * `--pidfd-socket` sends "standard" or "setns").
 * @throws {SyscallError} When sendmsg fails (EPIPE: no one at the other end).
 */
export function sendFd(sock: number, fd: number, data: string = "T"): void {
  const bytes = new TextEncoder().encode(data);
  if (bytes.length === 0) throw new RangeError("sendFd: the message needs at least one byte");
  const hdr = message(bytes, encodeRightsMessage(fd));
  const n = retryEintr(() => libc().sendmsg(sock, hdr, MSG_NOSIGNAL));
  if (n === bytes.length) return;
  throw new SyscallError("sendmsg", n === -1 ? errno() : 0, [sock, unquoted("SCM_RIGHTS"), fd]);
}

/**
 * Takes a descriptor sent with {@link sendFd} (or the native child's sendmsg) off `sock`, without
 * waiting: `recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC)`. Any other descriptor in the message is
 * closed.
 * @returns The descriptor (close-on-exec), or undefined when none is there (nothing sent, or the
 *   other end closed without sending one).
 * @throws {SyscallError} When recvmsg fails otherwise, or the control data was cut short.
 */
export function receiveFd(sock: number): number | undefined {
  const byte = new Uint8Array(1);
  const control = new Uint8Array(64);
  const hdr = message(byte, control);
  const n = retryEintr(() => libc().recvmsg(sock, hdr, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n === -1) {
    const e = errno();
    if (e === EAGAIN) return undefined;
    throw new SyscallError("recvmsg", e, [sock]);
  }
  const hv = new DataView(hdr.buffer, hdr.byteOffset);
  const cv = new DataView(control.buffer);
  const controllen = Number(hv.getBigUint64(MSGHDR.fields.controllen.offset, true));
  const fds: number[] = [];
  // Every SCM_RIGHTS message in the control data (there should be one, with one fd).
  for (let at = 0; at + CMSGHDR.size <= controllen;) {
    const len = Number(cv.getBigUint64(at + CMSGHDR.fields.len.offset, true));
    if (len < CMSGHDR.size || at + len > controllen) break;
    if (
      cv.getInt32(at + CMSGHDR.fields.level.offset, true) === SOL_SOCKET &&
      cv.getInt32(at + CMSGHDR.fields.type.offset, true) === SCM_RIGHTS
    ) {
      for (let d = at + CMSGHDR.size; d + 4 <= at + len; d += 4) fds.push(cv.getInt32(d, true));
    }
    at += (len + 7) & ~7;
  }
  const [first, ...extra] = fds;
  for (const fd of extra) libc().close(fd);
  if (hv.getInt32(MSGHDR.fields.flags.offset, true) & MSG_CTRUNC) {
    if (first !== undefined) libc().close(first);
    throw new SyscallError("recvmsg", EMSGSIZE, [sock, "MSG_CTRUNC"], "the descriptor's message was cut short");
  }
  if (n === 0 && first === undefined) return undefined;
  return first;
}
