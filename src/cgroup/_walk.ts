/**
 * The cgroup tree walks both file-system back ends share: `_fs.ts` (node:fs, usable in a forked
 * child) and hako-runc's `delete` (src/oci/cgroup_dirs.ts, through ffi/_hot.ts with no `node:`
 * module). Pure, over the listing each back end gives.
 * @module
 */

/**
 * `dir` and every cgroup below it, deepest first (the order rmdir needs).
 * @param children The child cgroups of a directory (none when it cannot be read).
 */
export function postOrder(dir: string, children: (dir: string) => string[]): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const c of children(d)) walk(c);
    out.push(d);
  };
  walk(dir);
  return out;
}

/** The pids of a `cgroup.procs` file's text (none for a file that could not be read). */
export function pidsIn(text: string | null | undefined): number[] {
  if (text === null || text === undefined) return [];
  return text.split("\n").filter(Boolean).map(Number);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Sleeps the calling thread (usable in a forked child and in `[Symbol.dispose]`). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
