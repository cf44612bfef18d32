/**
 * Signals that reach only the process meant: through a pidfd, once its identity (or its cgroup
 * membership) is checked. A module of its own, loaded by hako-runc's `kill` and `delete` without the
 * container state library, the full libc table nor any `node:` module (its calls are ffi/_hot.ts's:
 * see src/oci/hot.ts); `container/state.ts` re-exports it.
 * @module
 */
import { hotFs } from "../../ffi/_hot.ts";
import { type Signal, signalNumber } from "../signals.ts";
import { isRunning, type ProcessIdentity } from "./_identity.ts";

/**
 * Signals a process only if it is still the one recorded: a pidfd is opened first, then the start
 * time is checked, so the signal cannot reach a process that reused the pid.
 * @returns False when the process is gone (or is another one now); true when signalled.
 * @throws {SyscallError} For any other failure (EPERM…).
 */
export function signalIdentified(id: ProcessIdentity, sig: Signal, context?: string): boolean {
  const number = signalNumber(sig);
  const fd = hotFs.pidfdOpen(id.pid, context);
  if (fd === undefined) return false;
  try {
    if (!isRunning(id)) return false;
    return hotFs.pidfdSendSignal(fd, number, [id.pid, sig], context);
  } finally {
    hotFs.close(fd);
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
  const number = signalNumber(sig);
  const fd = hotFs.pidfdOpen(pid, context);
  if (fd === undefined) return false;
  try {
    const listed = procsFiles.some((f) => (hotFs.readText(f) ?? "").split("\n").includes(String(pid)));
    if (!listed) return false;
    return hotFs.pidfdSendSignal(fd, number, [pid, sig], context);
  } finally {
    hotFs.close(fd);
  }
}
