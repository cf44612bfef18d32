/**
 * Who is at the other end of a unix socket, and which socket an fd is: `SO_PEERCRED` (struct
 * ucred) and `getsockname` (struct sockaddr_un), plus the process umask for making a socket file
 * with no window in which others may connect. The supervisor uses these to refuse clients of
 * another uid (see `src/supervisor/_peer.ts`).
 *
 * @example
 * ```ts ignore
 * import { peerCredentials } from "./ffi/unix_socket.ts";
 * const { pid, uid, gid } = peerCredentials(fd); // the process that called connect()
 * ```
 * @module
 */
import { errno, libc } from "./libc.ts";
import { SyscallError } from "./errno.ts";
import { defineStruct } from "./structs.ts";
import { AF_UNIX, SOL_SOCKET } from "./constants.ts";

const SO_PEERCRED = 17;

/** `struct ucred` (linux/socket.h): what SO_PEERCRED returns, fixed when the peer called connect(). */
export const UCRED = defineStruct("struct ucred", { pid: "i32", uid: "u32", gid: "u32" }, 12);

/** `struct sockaddr_un`: `sa_family_t sun_family` (u16) then `char sun_path[108]`. */
const SOCKADDR_UN = { size: 110, family: 0, path: 2, pathSize: 108 } as const;

/** A unix socket peer's credentials, as the kernel recorded them at connect(). */
export interface PeerCredentials {
  /** The peer's pid (in this process's pid namespace; 0 when it is not visible here). */
  readonly pid: number;
  /** Its effective uid. */
  readonly uid: number;
  /** Its effective gid. */
  readonly gid: number;
}

/**
 * The credentials of the process at the other end of a connected unix socket
 * (`getsockopt(fd, SOL_SOCKET, SO_PEERCRED)`).
 * @param fd A connected `AF_UNIX` socket.
 * @returns Its peer's pid, uid and gid.
 * @throws {SyscallError} When `fd` is not a connected unix socket (ENOTSOCK, EBADF…), or the
 *   kernel returned fewer bytes than a `struct ucred`.
 */
export function peerCredentials(fd: number): PeerCredentials {
  const buf = new Uint8Array(UCRED.size);
  const len = new Uint32Array([UCRED.size]);
  if (libc().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, buf, new Uint8Array(len.buffer)) !== 0) {
    throw new SyscallError("getsockopt", errno(), [fd, "SOL_SOCKET", "SO_PEERCRED"]);
  }
  if (len[0] !== UCRED.size) {
    throw new SyscallError("getsockopt", 22, [fd, "SOL_SOCKET", "SO_PEERCRED", `${len[0]} bytes`]);
  }
  const view = new DataView(buf.buffer);
  const f = UCRED.fields;
  return {
    pid: view.getInt32(f.pid.offset, true),
    uid: view.getUint32(f.uid.offset, true),
    gid: view.getUint32(f.gid.offset, true),
  };
}

/**
 * The path a unix socket is bound to (`getsockname`): for a socket accepted by a listener, the
 * listener's path.
 * @returns The path, or undefined when `fd` is not an `AF_UNIX` socket or is unnamed (or abstract).
 * @throws {SyscallError} When getsockname fails (EBADF, ENOTSOCK…).
 */
export function socketPath(fd: number): string | undefined {
  const buf = new Uint8Array(SOCKADDR_UN.size);
  const len = new Uint32Array([SOCKADDR_UN.size]);
  if (libc().getsockname(fd, buf, new Uint8Array(len.buffer)) !== 0) {
    throw new SyscallError("getsockname", errno(), [fd]);
  }
  const family = buf[SOCKADDR_UN.family]! | (buf[SOCKADDR_UN.family + 1]! << 8);
  if (family !== AF_UNIX) return undefined;
  const end = Math.min(len[0]!, SOCKADDR_UN.size);
  const bytes = buf.subarray(SOCKADDR_UN.path, end);
  if (bytes.length === 0 || bytes[0] === 0) return undefined; // unnamed, or abstract
  const nul = bytes.indexOf(0);
  return new TextDecoder().decode(nul === -1 ? bytes : bytes.subarray(0, nul));
}

/**
 * Sets the process's file mode creation mask (`umask(2)`, which cannot fail).
 * @param mask The new mask (e.g. `0o177`: files made from now on get at most 0600).
 * @returns The previous mask, to restore.
 */
export function setUmask(mask: number): number {
  return libc().umask(mask);
}

const SOCK_STREAM_CLOEXEC = 1 | 0o2000000;
const EINTR_ = 4;

/**
 * Connects a new `SOCK_STREAM` unix socket (close-on-exec) to `path`, as runc connects to a
 * `--console-socket`.
 * @returns The connected socket's fd (the caller closes it).
 * @throws {SyscallError} When the socket cannot be made or connected; {@link RangeError} for a path
 *   longer than `sun_path` (107 bytes).
 */
export function connectUnix(path: string): number {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length >= SOCKADDR_UN.pathSize || bytes.includes(0)) {
    throw new RangeError(`a unix socket path must be under ${SOCKADDR_UN.pathSize} bytes with no NUL: ${path}`);
  }
  const addr = new Uint8Array(SOCKADDR_UN.size);
  addr[SOCKADDR_UN.family] = AF_UNIX;
  addr.set(bytes, SOCKADDR_UN.path);
  const c = libc();
  const fd = c.socket(AF_UNIX, SOCK_STREAM_CLOEXEC, 0);
  if (fd === -1) throw new SyscallError("socket", errno(), ["AF_UNIX", "SOCK_STREAM"]);
  for (;;) {
    if (c.connect(fd, addr, SOCKADDR_UN.path + bytes.length + 1) === 0) return fd;
    const e = errno();
    if (e === EINTR_) continue;
    c.close(fd);
    throw new SyscallError("connect", e, [path]);
  }
}
