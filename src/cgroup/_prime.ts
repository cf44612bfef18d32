/**
 * The first write to a `cgroup.procs` file after a quiet moment waits for an RCU grace period: the
 * kernel takes its global threadgroup lock (`cgroup_threadgroup_rwsem`, a per-cpu rwsem) for
 * writing, and the first writer switches it to its slow mode — 5–20 ms here, on every host but
 * those mounted with `favordynmods`. The writes right after it (within a grace period) are fast.
 * runc and crun pay it when they put the container's init in its cgroup, as hako did.
 *
 * {@link primeAttach} pays it ahead of time, off the main thread, while the runtime still has work
 * to do before the clone (compiling the child, the pipes, the rootfs): it moves the runtime's own
 * process into the cgroup it is already in, a migration the kernel skips but which takes the lock
 * all the same. The write goes through the engine's thread pool (an async write), so the wait
 * overlaps that work; the caller awaits it before the clone (no write in flight at a fork). A call
 * while one is in flight gets that one; one made after it — within a grace period or two of it,
 * when the lock is still in its fast mode — is fast and keeps the fast mode on. `hako oci exec`,
 * whose own work before the clone is short, starts it as soon as it has read the container's
 * state; execIn's call before its clone then finds it done or waits for the rest of it. (`create`
 * gains nothing from an earlier start: its work before the clone, ~10 ms, already covers the
 * wait, and an earlier start ends the fast mode earlier.)
 *
 * Where the write is not needed at all: a native child joins its v1 directories by itself, writing
 * `0` to their `tasks` files (a thread that moves itself takes no global lock), and is born in its
 * cgroup2 directory (clone3's `CLONE_INTO_CGROUP`, a read of the lock): hako's create and exec prime
 * only where a `cgroup.procs` write is left to the parent (no clone3 entry for the architecture, a
 * forked child's fallback; see container.ts and exec.ts).
 *
 * Safe by construction: the target is the runtime's own cgroup, found from /proc/self/cgroup (never
 * a path outside this cgroup namespace's root), and checked to list the runtime's pid before the
 * write — a hierarchy mounted from elsewhere than its root names another directory, which does not
 * list it, and nothing is written; any failure is ignored (the attach then pays the wait, as
 * before). The one race — someone moving the runtime between that check and the write, which would
 * move it back — is microseconds wide, and concerns the runtime's process, never the container's.
 * @module
 */
import { closeSync, constants, openSync, readFileSync, write } from "node:fs";
import process from "node:process";
import type { CgroupMount } from "./layout.ts";

/**
 * The runtime's own `cgroup.procs` in the first of `mounts` where it can be found safely: a v2
 * mount from the `0::` line, a v1 one from the line naming exactly its controllers (or its
 * name=); a path with `..` (a cgroup outside this namespace's root) is never used. Pure.
 * @param selfCgroup /proc/self/cgroup's text.
 * @param mounts The cgroup mounts (the layout's), in order.
 */
export function ownProcsFile(selfCgroup: string, mounts: readonly CgroupMount[]): string | undefined {
  const lines = selfCgroup.split("\n").map((l) => {
    const a = l.indexOf(":");
    const b = l.indexOf(":", a + 1);
    return a < 0 || b < 0 ? undefined : { id: l.slice(0, a), controllers: l.slice(a + 1, b), path: l.slice(b + 1) };
  }).filter((l) => l !== undefined);
  for (const m of mounts) {
    const want = m.version === 2
      ? undefined
      : [...m.subsystems, ...(m.name ? [`name=${m.name}`] : [])].sort().join(",");
    const line = lines.find((l) =>
      m.version === 2 ? l.id === "0" && l.controllers === "" : l.controllers.split(",").sort().join(",") === want
    );
    if (!line || !line.path.startsWith("/") || line.path.split("/").includes("..")) continue;
    if (m.version === 1 && want === "") continue;
    return `${m.mountPoint}${line.path === "/" ? "" : line.path}/cgroup.procs`;
  }
  return undefined;
}

/**
 * Starts the grace period of the next `cgroup.procs` write now, on the engine's thread pool (see
 * the module's doc); resolves when it has passed, never rejects.
 * @param mounts The host's cgroup mounts.
 */
export function primeAttach(mounts: readonly CgroupMount[]): Promise<void> {
  // (one in flight is the next write's as well; one done a moment ago left the lock's fast mode on
  // for a grace period or two, and a write now — fast then — keeps it on for as long again)
  return inFlight ??= start(mounts).finally(() => inFlight = undefined);
}

let inFlight: Promise<void> | undefined;

/**
 * Resolves when no {@link primeAttach} write is in flight on the thread pool (at once when none
 * is): a fork of this engine, or the re-exec that makes it single-threaded, waits for it first —
 * a forked child must not start while another thread of its parent is in the middle of a call.
 */
export function primeSettled(): Promise<void> {
  return inFlight ?? Promise.resolve();
}

function start(mounts: readonly CgroupMount[]): Promise<void> {
  const pid = String(process.pid);
  let file: string | undefined;
  try {
    file = ownProcsFile(readFileSync("/proc/self/cgroup", "utf8"), mounts);
    // (its own cgroup, where it is: else nothing is written)
    if (!file || !readFileSync(file, "utf8").split("\n").includes(pid)) return Promise.resolve();
  } catch {
    return Promise.resolve(); // (the attach pays it)
  }
  // The write alone is asynchronous: one task of the thread pool, started now (a chain of
  // asynchronous steps would wait for the main thread's next turn of the event loop). Deno's
  // node:fs makes it on the main thread, blocking: Deno's own file write does not.
  const deno = (globalThis as { Deno?: DenoFiles }).Deno;
  try {
    if (deno) {
      const f = deno.openSync(file, { write: true });
      return f.write(new TextEncoder().encode(pid)).then(() => f.close(), () => f.close()).catch(() => {});
    }
    const fd = openSync(file, constants.O_WRONLY);
    return new Promise<void>((resolve) => {
      write(fd, pid, () => {
        try {
          closeSync(fd);
        } catch { /* closed */ }
        resolve();
      });
    });
  } catch {
    return Promise.resolve();
  }
}

/** The part of Deno's file API {@link primeAttach} uses. */
interface DenoFiles {
  openSync(path: string, options: { write: boolean }): { write(p: Uint8Array): Promise<number>; close(): void };
}
