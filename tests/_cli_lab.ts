/**
 * A lab for end-to-end tests of hako's docker-style commands: a state directory of its own, a
 * busybox rootfs at `rootfs` inside it (the cwd of every command), hako's CLI as a user runs it
 * under the tests' runtime (`bin/hako` under Deno, `bun src/cli/main.ts` under Bun) on the native
 * path or the forked one (HAKO_NATIVE_SPAWN=0), unique container names, and a clean-up — every
 * container removed, the supervisor killed, the directory gone — also when the test failed.
 * (tests/_supervisor_lab.ts is the supervisor's own lab: the CLI run through `deno run`.)
 * @module
 */
import { spawnSync } from "node:child_process";
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { equal } from "node:assert/strict";
import { runtime, tempDir, until } from "./_harness.ts";
import { buildRootfs } from "../src/container/rootfs.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PTY = join(ROOT, "tests/_pty.py");

/** hako's CLI under the tests' runtime, as a user starts it. */
export const CLI: readonly string[] = runtime === "bun"
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli/main.ts")]
  : [join(ROOT, "bin/hako")];

/** The two ways a container's child is made. */
export const PATHS = ["native", "forked"] as const;
export type SpawnPath = (typeof PATHS)[number];

/** What a command printed and how it ended. */
export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** (re-exported for the tests that import it from here) */
export { until };

/**
 * A lab (see the module doc). `tag` begins every name it makes (`TAG-NAME-n|f-RANDOM`), `prefix`
 * the temp directory's; `env` is added to every command's environment.
 */
export function cliLab(path: SpawnPath, options: { tag: string; prefix: string; env?: Record<string, string> }) {
  const dir = tempDir(options.prefix);
  chmodSync(dir.path, 0o755); // a user-namespaced root (an unmapped uid outside) must reach the rootfs
  const state = join(dir.path, "state");
  const rootfs = join(dir.path, "rootfs");
  buildRootfs(rootfs, { builder: "busybox" });
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    NO_COLOR: "1",
    ...(path === "forked" ? { HAKO_NATIVE_SPAWN: "0" } : {}),
    ...options.env,
  };
  delete env.HAKO_LOADER;
  if (path === "native") delete env.HAKO_NATIVE_SPAWN;
  const suffix = Math.random().toString(36).slice(2, 8);
  const hako = (...args: string[]): Result => {
    const r = spawnSync(CLI[0]!, [...CLI.slice(1), ...args], { env, cwd: dir.path, encoding: "utf8", timeout: 60_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** `hako ARGS` on a 30×90 terminal, playing `steps` (see tests/_pty.py; needs python3). */
  const onTerminal = (steps: unknown[], ...args: string[]) => {
    const r = spawnSync("python3", [PTY, "30", "90", JSON.stringify(steps), "60", "--", ...CLI, ...args], {
      env,
      cwd: dir.path,
      encoding: "utf8",
      timeout: 90_000,
    });
    equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { output: string; status: number | null; timedOut: string | null };
  };
  return {
    dir: dir.path,
    env,
    rootfs,
    state,
    hako,
    onTerminal,
    /** A unique container name. */
    name: (n: string) => `${options.tag}-${n}-${path[0]}-${suffix}`,
    [Symbol.dispose]() {
      try {
        for (const n of hako("ps", "-a", "-q").stdout.split("\n").filter(Boolean)) hako("rm", "-f", n);
      } catch { /* the directory goes anyway */ }
      try {
        const pid = Number(readFileSync(join(state, "supervisor.pid"), "utf8").split(" ")[0]);
        if (pid) process.kill(pid, "SIGKILL");
      } catch { /* none */ }
      dir[Symbol.dispose]();
    },
  };
}
