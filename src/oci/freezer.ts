/**
 * `pause` / `resume`: the container's processes frozen by the cgroup freezer, as runc does it.
 *
 * - cgroup v1 (and a hybrid host, whose controllers are v1): the `freezer` hierarchy. hako's
 *   containers have no cgroup there of their own, so `create` makes one of the container's cgroup
 *   name (`prepare`) and puts the init in it before its command runs; every process it forks, and
 *   every `exec`'d one (which joins each hierarchy the init is in), is then in it too. Freezing
 *   writes `FROZEN` to `freezer.state` and waits until it reads `FROZEN` (it reads `FREEZING`
 *   while tasks are still on their way; runc writes again then, as here).
 * - cgroup v2 only: the container's own cgroup's `cgroup.freeze` (`1`), waiting until
 *   `cgroup.events` says `frozen 1`.
 *
 * A frozen process takes no signal, SIGKILL included, until thawed: `kill … KILL` and `delete
 * --force` thaw after signalling (runc's `Signal` does it for SIGKILL only).
 * @module
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { detect } from "../cgroup/layout.ts";
import { removeEmptyDefaultParent } from "../container/_cgroup.ts";
import { isFrozenAt } from "./state.ts";

/** Where a container's freezer is: its directory and which interface. */
export interface Freezer {
  readonly dir: string;
  readonly version: 1 | 2;
}

/** The container's freezer (the directory may not exist yet on v1), or undefined without one. */
export function freezerOf(name: string): Freezer | undefined {
  let l;
  try {
    l = detect();
  } catch {
    return undefined;
  }
  if (l.v1.freezer) return { dir: join(l.v1.freezer, name), version: 1 };
  if (l.version === 2 && l.unified) return { dir: join(l.unified, name), version: 2 };
  return undefined;
}

/**
 * Puts `pid` (the init, before its command runs) in a freezer cgroup of the container's name (v1:
 * made here, parents included; v2: its own cgroup already is one). Nothing is written where it is
 * there already (`create` joined it, OCI's every hierarchy): a `cgroup.procs` write takes the
 * kernel's global threadgroup lock even for a process it leaves where it is, and the first writer
 * after a quiet moment waits for an RCU grace period (src/cgroup/_prime.ts).
 */
export function prepareFreezer(name: string, pid: number): void {
  const f = freezerOf(name);
  if (!f || f.version !== 1) return;
  mkdirSync(f.dir, { recursive: true });
  const procs = join(f.dir, "cgroup.procs");
  if (readFileSync(procs, "utf8").split("\n").includes(String(pid))) return;
  writeFileSync(procs, String(pid));
}

/**
 * True when the container's cgroup is frozen (or freezing).
 * @param known The freezer `create` recorded (see `OciRecord.freezer`): read as it is, without
 *   detecting the cgroup layout again (mountinfo parsed, libc bound: most of a cold `state`/`kill`).
 */
export function isFrozen(name: string, known?: Freezer): boolean {
  const f = known ?? freezerOf(name);
  return !!f && isFrozenAt(f);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Freezes the container's processes and waits until they are.
 * @throws {Error} When the host has no freezer, or it did not freeze in `timeoutMs` (then thawed).
 */
export async function freeze(name: string, timeoutMs = 10_000): Promise<void> {
  const f = freezerOf(name);
  if (!f || !existsSync(f.dir)) throw new Error("the container has no freezer cgroup (cgroups v1 without freezer?)");
  const until = Date.now() + timeoutMs;
  if (f.version === 1) {
    const state = join(f.dir, "freezer.state");
    for (;;) {
      writeFileSync(state, "FROZEN");
      if (readFileSync(state, "utf8").trim() === "FROZEN") return;
      if (Date.now() > until) break;
      await sleep(1);
    }
    writeFileSync(state, "THAWED");
    throw new Error(`the container did not freeze in ${timeoutMs} ms`);
  }
  writeFileSync(join(f.dir, "cgroup.freeze"), "1");
  const events = join(f.dir, "cgroup.events");
  while (!/^frozen 1$/m.test(readFileSync(events, "utf8"))) {
    if (Date.now() > until) {
      writeFileSync(join(f.dir, "cgroup.freeze"), "0");
      throw new Error(`the container did not freeze in ${timeoutMs} ms`);
    }
    await sleep(1);
  }
}

/**
 * Thaws the container's processes (nothing when there is no freezer).
 * @param known The freezer `create` recorded (see {@link isFrozen}).
 */
export function thaw(name: string, known?: Freezer): void {
  const f = known ?? freezerOf(name);
  if (!f || !existsSync(f.dir)) return;
  if (f.version === 1) writeFileSync(join(f.dir, "freezer.state"), "THAWED");
  else writeFileSync(join(f.dir, "cgroup.freeze"), "0");
}

/**
 * Removes the v1 freezer cgroup `prepareFreezer` made (once its processes are gone), and hako's
 * default parent (`hako`) wherever it is left empty, as hako's own delete does.
 */
export function removeFreezer(name: string): void {
  const f = freezerOf(name);
  if (!f || f.version !== 1) return removeEmptyDefaultParent(name);
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(f.dir);
      return removeEmptyDefaultParent(name);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return removeEmptyDefaultParent(name);
      if (code !== "EBUSY") throw e;
    }
    // (the killed processes leave the cgroup a moment after they die)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
}
