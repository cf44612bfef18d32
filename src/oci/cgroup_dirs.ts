/**
 * A container's cgroup deleted from the directories `create` recorded (`OciRecord.cgroupDirs`),
 * as runc's delete removes the cgroup paths its state.json holds: without the cgroup library (the
 * `Group` and its controllers parsed, the cgroup layout detected from mountinfo), which was most of
 * a cold `hako oci delete` after the runtime's own start (see bench/oci.ts). The steps are
 * `Controller.delete({ kill: true })`'s (src/cgroup/controller.ts), for every directory at once:
 * SIGKILL whatever is in it (v2: `cgroup.kill`) until it is empty or 5 s have passed, then rmdir
 * deepest first; then hako's default parent (`hako`) where it is left empty, as
 * `removeEmptyDefaultParent` does. Through ffi/_hot.ts, with no `node:` module: `delete` is one of
 * hako-runc's hot commands (see src/oci/hot.ts); the walks are the cgroup library's (`_walk.ts`).
 * @module
 */
import { hotFs } from "../../ffi/_hot.ts";
import { pidsIn, postOrder, sleepSync } from "../cgroup/_walk.ts";
// (the leaf, not container/_cgroup.ts: that one detects the cgroup layout, which delete does not need)
import { DEFAULT_CGROUP_PARENT } from "../container/_cgroup_parent.ts";
import { SyscallError } from "../errors.ts";

/** The child cgroups of `dir`, or none when it cannot be read (as `_fs.ts`'s childCgroups). */
function childCgroups(dir: string): string[] {
  try {
    return hotFs.readDir(dir).filter((e) => e.dir).map((e) => `${dir}/${e.name}`);
  } catch {
    return [];
  }
}

function subtreePostOrder(dir: string): string[] {
  return postOrder(dir, childCgroups);
}

function readPids(dir: string): number[] {
  return pidsIn(hotFs.readText(`${dir}/cgroup.procs`));
}

/** rmdir; false when it is gone already (as `_fs.ts`'s rmdirOne). @throws {SyscallError} */
function rmdirOne(dir: string, context?: string): boolean {
  try {
    hotFs.rmdir(dir, context);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return false;
    throw e;
  }
}

/**
 * Deletes the cgroup `name` from its recorded directories `dirs` (one per hierarchy; those gone
 * already are skipped), killing its processes first.
 * @param kill Sends SIGKILL to a pid (ESRCH ignored).
 * @param timeoutMs How long processes may take to die.
 * @throws {SyscallError} The first directory that could not be removed, naming why (processes left,
 *   child cgroups), as `Group.delete` throws it.
 */
export function deleteCgroupDirs(
  name: string,
  dirs: readonly string[],
  kill: (pid: number) => void,
  timeoutMs = 5000,
): void {
  // One walk of every directory (one gone already walks as itself, empty): a stopped container's,
  // the common case, has nothing to kill and is removed as walked — no second walk, no cgroup.kill
  let walked = dirs.map(subtreePostOrder);
  let members = walked.flat().flatMap(readPids);
  if (members.length > 0) {
    for (const dir of dirs) {
      // (v2's cgroup.kill: the kernel kills the whole subtree, forks included)
      if (hotFs.exists(`${dir}/cgroup.kill`)) {
        try {
          hotFs.writeText(`${dir}/cgroup.kill`, "1");
        } catch { /* the loop below kills them one by one */ }
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const pid of new Set(members)) kill(pid);
      sleepSync(5);
      walked = dirs.map(subtreePostOrder);
      members = walked.flat().flatMap(readPids);
      if (members.length === 0 || Date.now() >= deadline) break;
    }
  }
  let first: unknown;
  for (const subtree of walked) {
    for (const d of subtree) {
      try {
        rmdirBusy(d, `delete cgroup ${name}`);
      } catch (e) {
        first ??= explained(e, d, name);
      }
    }
  }
  if (first !== undefined) throw first;
  if (name.startsWith(`${DEFAULT_CGROUP_PARENT}/`)) {
    for (const dir of dirs) {
      try {
        rmdirOne(dir.slice(0, dir.length - name.length) + DEFAULT_CGROUP_PARENT);
      } catch { /* in use (another container's cgroup is in it): kept */ }
    }
  }
}

/**
 * rmdir, waiting a moment while it is busy: killed processes leave a v1 cgroup a moment after
 * they are reaped (as `removeFreezer` waited for the freezer's).
 */
function rmdirBusy(dir: string, context: string): void {
  for (let i = 0;; i++) {
    try {
      rmdirOne(dir, context);
      return;
    } catch (e) {
      if (i >= 100 || !(e instanceof SyscallError) || e.code !== "EBUSY" || readPids(dir).length > 0) throw e;
    }
    sleepSync(10);
  }
}

/** The rmdir error with what keeps the cgroup (`Controller.delete`'s hint). */
function explained(e: unknown, dir: string, name: string): unknown {
  if (!(e instanceof SyscallError)) return e;
  const left = subtreePostOrder(dir).flatMap(readPids);
  const hint = left.length > 0
    ? `${left.length} process(es) still in it (${left.slice(0, 8).join(", ")}${
      left.length > 8 ? ", …" : ""
    }); they did not die in time`
    : childCgroups(dir).length > 0
    ? "it has child cgroups"
    : "";
  return hint ? new SyscallError(e.syscall, e.errno, e.args, `delete cgroup ${name} (${hint})`) : e;
}
