/**
 * The line a foreground container's end gets on stderr when its exit code alone would hide what
 * ended it: 137 is any SIGKILL, the memory limit's too.
 * @module
 */
import process from "node:process";
import type { ContainerStatus } from "../container/container.ts";

/**
 * What the cgroup counted about a container's end, as a line (pure): `oom-killed` when the OOM
 * killer killed processes in it (its memory limit), `pids limit reached` when its pids limit
 * refused forks; undefined when neither happened.
 * @param name The container.
 * @param status How it ended.
 */
export function exitNote(name: string, status: ContainerStatus): string | undefined {
  const counted = [
    ...(status.oomKilled
      ? [`oom-killed: the OOM killer killed ${status.oomKilled} process(es) in it (its memory limit)`]
      : []),
    ...(status.failedForks ? [`pids limit reached: ${status.failedForks} fork(s) refused`] : []),
  ];
  return counted.length ? `hako: container ${name} exited (${status.shellCode}): ${counted.join("; ")}` : undefined;
}

/** Writes {@link exitNote}'s line to stderr, when there is one. */
export function reportExit(name: string, status: ContainerStatus): void {
  const note = exitNote(name, status);
  if (note) process.stderr.write(`${note}\n`);
}
