/**
 * A lab for tests of the supervisor and its logs: a state directory of its own, a busybox rootfs,
 * spec modules, hako's CLI run under the tests' runtime (so the supervisor it starts on demand runs
 * under Deno in the Deno run and under Bun in the Bun run), and a clean-up that deletes every
 * container, stops the supervisor and the log relays, and removes the directory — also when the
 * test failed.
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { runtime, tempDir, until } from "./_harness.ts";
import { buildRootfs } from "../src/container/rootfs.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const MAIN = join(ROOT, "src/cli/main.ts");

/** The command line that runs hako's CLI under the tests' runtime. */
export function cliArgv(args: readonly string[]): [string, string[]] {
  return runtime === "bun" ? [process.execPath, [MAIN, ...args]] : [process.execPath, [
    "run",
    "-A",
    "--v8-flags=--single-threaded",
    "--config",
    join(ROOT, "deno.json"),
    MAIN,
    ...args,
  ]];
}

/** What a command printed and how it ended. */
export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A short random tag for names. */
export const unique = (): string => `${process.pid % 10000}${Math.random().toString(36).slice(2, 6)}`;

/** `{ pid, startTime }` from a "PID START" file, or undefined. */
export function identityIn(path: string): { pid: number; startTime: number } | undefined {
  try {
    const [pid, startTime] = readFileSync(path, "utf8").trim().split(" ").map(Number);
    return pid ? { pid, startTime: startTime ?? 0 } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process runs (not a zombie). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** (re-exported for the tests that import it from here) */
export { until };

/** Connects to a unix socket. */
export function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once("connect", () => {
      s.removeAllListeners("error");
      resolve(s);
    });
    s.once("error", reject);
  });
}

/** A lab (see the module doc); `env` is added to every command's environment. */
export function supervisorLab(prefix: string, options: { env?: Record<string, string> } = {}) {
  const dir = tempDir(prefix);
  chmodSync(dir.path, 0o755); // a user-namespaced root (an unmapped uid outside) must reach the rootfs
  const state = join(dir.path, "state");
  const rootfs = join(dir.path, "rootfs");
  const env: Record<string, string> = {
    ...process.env as Record<string, string>,
    HAKO_STATE_DIR: state,
    NO_COLOR: "1",
    ...options.env,
  };
  delete env.HAKO_LOADER;
  let built = false;
  const hako = (args: readonly string[], extraEnv: Record<string, string> = {}): Result => {
    const [cmd, argv] = cliArgv(args);
    const r = spawnSync(cmd, argv, { env: { ...env, ...extraEnv }, encoding: "utf8", timeout: 120_000 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** Runs the CLI without blocking the event loop; stdout as bytes. */
  /** `onStart` gets the pid of the command, which leads a process group of its own then. */
  const hakoAsync = (
    args: readonly string[],
    onStart?: (pid: number) => void,
  ): Promise<{ code: number | null; stdout: Buffer; stderr: string }> => {
    const [cmd, argv] = cliArgv(args);
    return new Promise((resolve, reject) => {
      const p = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"], detached: onStart !== undefined });
      if (onStart && p.pid !== undefined) onStart(p.pid);
      const out: Buffer[] = [];
      let err = "";
      p.stdout!.on("data", (b: Buffer) => out.push(b));
      p.stderr!.on("data", (b: Buffer) => err += b.toString());
      p.on("error", reject);
      p.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    });
  };
  /**
   * Writes a spec module for a busybox container running `sh -c command`; returns its path. Name
   * containers `hako-test-…`: their log relays show the name, so tests/run.sh's leak check sees any
   * relay left behind.
   */
  const spec = (name: string, command: string, extra = ""): string => {
    if (!built) {
      buildRootfs(rootfs, { builder: "busybox" });
      built = true;
    }
    const path = join(dir.path, `${name}.ts`);
    writeFileSync(
      path,
      `export default {
  name: ${JSON.stringify(name)},
  rootfs: { builder: "busybox", path: ${JSON.stringify(rootfs)} },
  command: ["sh", "-c", ${JSON.stringify(command)}],
  cgroup: { name: ${JSON.stringify(name.startsWith("hako-test-") ? name : `hako-test-${name}`)}, pids: { max: 64 } },
  ${extra}
};\n`,
    );
    return path;
  };
  const supervisorPid = (): number | undefined => identityIn(join(state, "supervisor.pid"))?.pid;
  const containerDir = (name: string) => join(state, "containers", name);
  const relayOf = (name: string) => identityIn(join(containerDir(name), "log.relay"));
  return {
    dir: dir.path,
    state,
    rootfs,
    env,
    hako,
    hakoAsync,
    spec,
    supervisorPid,
    containerDir,
    relayOf,
    [Symbol.dispose]() {
      const relays: number[] = [];
      try {
        const names = existsSync(join(state, "containers")) ? readdirSync(join(state, "containers")) : [];
        for (const n of names) {
          const r = relayOf(n);
          if (r) relays.push(r.pid);
          const err = identityIn(join(containerDir(n), "log.err.relay")); // stderr's relay
          if (err) relays.push(err.pid);
          hako(["delete", "--force", n]);
        }
        hako(["gc"]);
      } catch { /* the directory goes anyway */ }
      const pid = supervisorPid();
      if (alive(pid)) {
        try {
          process.kill(pid!, "SIGKILL");
        } catch { /* gone */ }
      }
      // A relay ends when its container's last writer is gone; one that did not is killed.
      const end = Date.now() + 3000;
      while (relays.some(alive) && Date.now() < end) spawnSync("sleep", ["0.05"]);
      const isRelay = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "hako-log";
        } catch {
          return false;
        }
      };
      for (const r of relays.filter((p) => alive(p) && isRelay(p))) {
        try {
          process.kill(r, "SIGKILL");
        } catch { /* gone */ }
      }
      dir[Symbol.dispose]();
    },
  };
}
