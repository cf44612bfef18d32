/**
 * A process told apart from a later one with the same pid (its start time), read from
 * `/proc/PID/stat`. A leaf module with no `node:` import (it reads through ffi/_hot.ts), so that
 * hako-runc's `state` and `start` read a container's status without loading the container state
 * library nor the Node layer (see src/oci/hot.ts); `container/state.ts` re-exports it.
 * @module
 */
import { hotFs } from "../../ffi/_hot.ts";

/** A process, as the kernel tells it apart from a later one with the same pid. */
export interface ProcessIdentity {
  /** Its pid on the host. */
  readonly pid: number;
  /** Its start time in clock ticks since boot (field 22 of `/proc/PID/stat`). */
  readonly startTime: number;
}

/** The fields of `/proc/PID/stat` after the command name (index 0 is field 3, the state). */
function statFields(pid: number): string[] | undefined {
  const text = hotFs.readText(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** A process's identity now, or undefined when there is no such process. */
export function identify(pid: number): ProcessIdentity | undefined {
  const f = statFields(pid);
  return f ? { pid, startTime: Number(f[19]) } : undefined;
}

/**
 * Whether the process still runs: the same pid and start time, and not a zombie.
 * @param id The recorded identity.
 */
export function isRunning(id: ProcessIdentity | undefined): boolean {
  if (!id) return false;
  const f = statFields(id.pid);
  return !!f && Number(f[19]) === id.startTime && f[0] !== "Z" && f[0] !== "X";
}
