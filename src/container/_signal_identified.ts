/**
 * Signals that reach only the process meant: through a pidfd, once its identity (or its cgroup
 * membership) is checked. A module of its own, loaded by hako-runc's `kill` and `delete` without the
 * container state library (see src/oci/runtime.ts); `container/state.ts` re-exports it.
 * @module
 */
import { readFileSync } from "node:fs";
import { check, errno, libc } from "../../ffi/libc.ts";
import { SYS } from "../../ffi/syscalls.ts";
import { ESRCH } from "../../ffi/constants.ts";
import { SyscallError } from "../errors.ts";
import { type Signal, signalNumber } from "../signals.ts";
import { isRunning, type ProcessIdentity } from "./_identity.ts";

/**
 * Signals a process only if it is still the one recorded: a pidfd is opened first, then the start
 * time is checked, so the signal cannot reach a process that reused the pid.
 * @returns False when the process is gone (or is another one now); true when signalled.
 * @throws {SyscallError} For any other failure (EPERM…).
 */
export function signalIdentified(id: ProcessIdentity, sig: Signal, context?: string): boolean {
  const { syscall, close } = libc();
  const fd = Number(syscall(BigInt(SYS.pidfd_open), BigInt(id.pid), 0n, 0n, 0n, 0n));
  if (fd === -1) {
    if (errno() === ESRCH) return false;
    throw new SyscallError("pidfd_open", errno(), [id.pid], context);
  }
  try {
    if (!isRunning(id)) return false;
    const r = Number(syscall(BigInt(SYS.pidfd_send_signal), BigInt(fd), BigInt(signalNumber(sig)), 0n, 0n, 0n));
    if (r === -1) {
      if (errno() === ESRCH) return false;
      check(-1, "pidfd_send_signal", [id.pid, sig], context);
    }
    return true;
  } finally {
    close(fd);
  }
}

/**
 * Signals process `pid` only while it is a member of a cgroup: a pidfd is opened first, then the
 * cgroup's member list (`cgroup.procs` of each of `procsFiles`) must still name it — a pid cannot
 * be reused while it is listed there, so the signal cannot reach a process that reused the pid.
 * @returns False when it is gone or no longer a member; true when signalled.
 * @throws {SyscallError} For any other failure (EPERM…).
 */
export function signalCgroupMember(pid: number, procsFiles: readonly string[], sig: Signal, context?: string): boolean {
  const { syscall, close } = libc();
  const fd = Number(syscall(BigInt(SYS.pidfd_open), BigInt(pid), 0n, 0n, 0n, 0n));
  if (fd === -1) {
    if (errno() === ESRCH) return false;
    throw new SyscallError("pidfd_open", errno(), [pid], context);
  }
  try {
    const listed = procsFiles.some((f) => {
      try {
        return readFileSync(f, "utf8").split("\n").includes(String(pid));
      } catch {
        return false;
      }
    });
    if (!listed) return false;
    const r = Number(syscall(BigInt(SYS.pidfd_send_signal), BigInt(fd), BigInt(signalNumber(sig)), 0n, 0n, 0n));
    if (r === -1) {
      if (errno() === ESRCH) return false;
      check(-1, "pidfd_send_signal", [pid, sig], context);
    }
    return true;
  } finally {
    close(fd);
  }
}
