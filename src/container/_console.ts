/**
 * The `console` setup step (`-t`): a pty of the container's own, as runc, crun and docker give one.
 *
 * In the container's process, after `pivot_root` (so `/dev/pts/ptmx` is the container's devpts,
 * mounted `newinstance` by the mount-devpts step) and after `setsid` (the new-session step):
 *
 * 1. the master: `open("/dev/pts/ptmx", O_RDWR|O_NOCTTY|O_CLOEXEC)`, its slave unlocked
 *    (`TIOCSPTLCK` 0) and opened from it with `TIOCGPTPEER` (Linux 4.13: no path to resolve);
 * 2. the slave becomes the session's controlling terminal (`TIOCSCTTY`), takes the window size
 *    when one is given (exec: the command starts right after this process execs), and is chowned
 *    to the command's user (runc's `fixStdioPermissions`: the uid only; EINVAL/EPERM — an id not
 *    mapped — leave it as it is);
 * 3. the master goes to hako over the console socket, a unix socket pair made by the parent
 *    (`sendmsg` with `SCM_RIGHTS`, runc's `--console-socket`), and is closed here: hako holds the
 *    only copy;
 * 4. the slave becomes stdin, stdout and stderr.
 *
 * Nothing of the caller's terminal stays: the command's stdio is the container's own pty, so
 * `TIOCSTI` from inside only ever reaches that pty's input (CVE-2017-5226).
 *
 * The native child (`native.ts`) runs the same calls from {@link compileConsole}: the master's fd
 * is stored straight into the control message's data (`store` into program data), since a
 * program's constant bytes cannot know the number the kernel will give it.
 *
 * @module
 */
import { errno, libc } from "../../ffi/libc.ts";
import {
  CMSG_ONE_FD_SPACE,
  CMSGHDR,
  encodeMsghdr,
  encodeRightsMessage,
  encodeWindowSize,
  IOVEC,
  MSG_NOSIGNAL,
  MSGHDR,
  openPty,
  PTY_OPEN_FLAGS,
  sendFd,
  setControllingTerminal,
  setWindowSize,
  TIOCGPTPEER,
  TIOCSCTTY,
  TIOCSPTLCK,
  TIOCSWINSZ,
  type WindowSize,
} from "../../ffi/tty.ts";
import type { ProgramArg, ProgramSyscall, SyscallProgram } from "../../ffi/spawn.ts";
import { ConfigError, shownValue, SyscallError } from "../errors.ts";
import type { ResolvedSpec } from "./validate.ts";
import { AT_FDCWD, EINVAL, EPERM } from "../../ffi/constants.ts";

/** What the console step needs: given (in `SetupContext.console`) only with `-t`. */
export interface ConsoleRequest {
  /** The child's end of the console socket (the parent keeps the other and receives the master). */
  readonly socket: number;
  /** The window size to give the pty before the command starts (else the parent sets it). */
  readonly size?: WindowSize;
}

/** The container's own devpts's ptmx (inside, after pivot_root). */
export const CONSOLE_PTMX = "/dev/pts/ptmx";

const NO_GID = 0xffffffff; // (gid_t)-1: fchown leaves the group

/** A value shown unquoted in a SyscallError message. */
const unquoted = (text: string) => Object.freeze({ toString: () => text });

/**
 * Checks a `tty` option (a window size's cells are 1–65535), and that the container has a devpts
 * of its own for it.
 * @throws {ConfigError} Naming `tty`, `tty.rows` or `tty.columns`.
 */
export function assertValidTty(tty: unknown, spec?: Pick<ResolvedSpec, "newNamespaces" | "standardMounts">): void {
  if (tty === undefined || tty === false || tty === true) {
    if (tty && spec && !(spec.newNamespaces.includes("mount") && spec.standardMounts)) {
      throw new ConfigError(
        "tty",
        "a terminal of the container's own needs its own devpts: a mount namespace and the standard mounts",
      );
    }
    return;
  }
  if (typeof tty !== "object" || tty === null) throw new ConfigError("tty", "must be true, false or { rows, columns }");
  for (const k of ["rows", "columns"] as const) {
    const v = (tty as Record<string, unknown>)[k];
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) {
      throw new ConfigError(`tty.${k}`, `must be an integer from 1 to 65535, got ${shownValue(v)}`);
    }
  }
  assertValidTty(true, spec);
}

/** What `hako plan` shows for the step. */
export function consolePlan(req: ConsoleRequest, uid: number): string[] {
  return [
    `open("${CONSOLE_PTMX}", O_RDWR|O_NOCTTY|O_CLOEXEC) → master; ioctl(master, TIOCSPTLCK, 0)`,
    "ioctl(master, TIOCGPTPEER, O_RDWR|O_NOCTTY|O_CLOEXEC) → slave; ioctl(slave, TIOCSCTTY, 0)",
    ...(req.size ? [`ioctl(slave, TIOCSWINSZ, ${req.size.rows}x${req.size.columns})`] : []),
    ...(uid !== 0 ? [`fchown(slave, ${uid}, -1)`] : []),
    "sendmsg(console socket, SCM_RIGHTS master); close(master)",
    "dup2(slave, 0), dup2(slave, 1), dup2(slave, 2)",
  ];
}

/**
 * The console step in the forked child (see the module's comment).
 * @throws {SyscallError} Naming the call that failed.
 */
export function runConsole(req: ConsoleRequest, uid: number): void {
  const c = libc();
  const { master, slave } = openPty(CONSOLE_PTMX);
  try {
    setControllingTerminal(slave, unquoted("slave"));
    if (req.size) setWindowSize(slave, req.size, unquoted("slave"));
    if (uid !== 0 && c.fchown(slave, uid, NO_GID) === -1) {
      const e = errno();
      if (e !== EINVAL && e !== EPERM) throw new SyscallError("fchown", e, [unquoted("slave"), uid, -1]);
    }
    sendFd(req.socket, master);
  } catch (e) {
    c.close(slave);
    throw e;
  } finally {
    c.close(master);
  }
  c.close(req.socket);
  for (const fd of [0, 1, 2]) {
    if (c.dup2(slave, fd) === -1) throw new SyscallError("dup2", errno(), [unquoted("slave"), fd]);
  }
  if (slave > 2) c.close(slave);
}

/** Appends one call (native.ts's recorder); @returns its op index. */
export type ConsoleCall = (
  name: ProgramSyscall,
  args: readonly ProgramArg[],
  shown: readonly unknown[],
  options?: Parameters<SyscallProgram["call"]>[2],
  context?: string,
) => number;

/**
 * The console step as calls of a native program: the same calls as {@link runConsole}.
 * @param socket The child's end of the console socket: a number, or a slot's value (a template
 *   filled in per container).
 */
export function compileConsole(
  p: SyscallProgram,
  call: ConsoleCall,
  socket: ProgramArg,
  uid: number,
  size?: WindowSize,
): void {
  // The master is stored where sendmsg reads the fd it passes: the control message's data.
  const cmsg = p.bytes(encodeRightsMessage(-1));
  const master = p.at(cmsg, CMSGHDR.size);
  const m = p.value(master);
  call("openat", [AT_FDCWD, p.cstring(CONSOLE_PTMX), PTY_OPEN_FLAGS, 0], [
    CONSOLE_PTMX,
    unquoted("O_RDWR|O_NOCTTY|O_CLOEXEC"),
  ], {
    store: master,
  });
  call(
    "ioctl",
    [m, TIOCSPTLCK, p.bytes(new Uint8Array(4))],
    [unquoted("master"), unquoted("TIOCSPTLCK"), 0],
    {},
    "unlock the pty's slave",
  );
  const slave = p.slot();
  const s = p.value(slave);
  call(
    "ioctl",
    [m, TIOCGPTPEER, PTY_OPEN_FLAGS],
    [unquoted("master"), unquoted("TIOCGPTPEER")],
    { store: slave },
    "open the pty's slave",
  );
  call("ioctl", [s, TIOCSCTTY, 0], [unquoted("slave"), unquoted("TIOCSCTTY"), 0]);
  if (size) {
    call("ioctl", [s, TIOCSWINSZ, p.bytes(encodeWindowSize(size))], [
      unquoted("slave"),
      unquoted("TIOCSWINSZ"),
      `${size.rows}x${size.columns}`,
    ]);
  }
  if (uid !== 0) {
    const next = p.label();
    call("fchown", [s, uid, NO_GID], [unquoted("slave"), uid, -1], { onErrno: [[EINVAL, next], [EPERM, next]] });
    p.place(next);
  }
  const byte = p.bytes(new Uint8Array([0x54]));
  const iovBytes = new Uint8Array(IOVEC.size);
  new DataView(iovBytes.buffer).setBigUint64(IOVEC.fields.len.offset, 1n, true);
  const iov = p.bytes(iovBytes, [[IOVEC.fields.base.offset, byte]]);
  const msg = p.bytes(encodeMsghdr(CMSG_ONE_FD_SPACE), [
    [MSGHDR.fields.iov.offset, iov],
    [MSGHDR.fields.control.offset, cmsg],
  ]);
  call("sendmsg", [socket, msg, MSG_NOSIGNAL], [unquoted("console socket"), unquoted("SCM_RIGHTS master")], {
    expect: 1,
  }, "hand the pty's master to hako");
  call("close", [m], [unquoted("master")]);
  call("close", [socket], [unquoted("console socket")]);
  for (const fd of [0, 1, 2]) {
    // dup3 fails (EINVAL) only where dup2, the forked path's call, does nothing: the slave already is fd.
    const next = p.label();
    call("dup3", [s, fd, 0], [unquoted("slave"), fd], { onErrno: [[EINVAL, next]] });
    p.place(next);
  }
  // (the slave itself is close-on-exec)
}
