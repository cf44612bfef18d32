/**
 * config.json's `hooks` (OCI runtime spec, config.md "POSIX-platform Hooks"), run in the runtime's
 * namespaces with the container's state JSON on stdin:
 *
 * | hook | when (hako) | a failure |
 * | --- | --- | --- |
 * | `prestart`, `createRuntime` | in `create`, once the container's namespaces and setup exist, its process waiting on the exec FIFO (state `creating`) | fails `create`, which undoes the container |
 * | `poststart` | in `start`, once the FIFO was read (the command runs; state `running`) | logged (a warning), as runc's |
 * | `poststop` | in `delete`, once the container is gone (state `stopped`) | logged |
 *
 * runc runs `prestart` and `createRuntime` before pivot_root; hako's setup has no pause there (its
 * child does every step then waits on the FIFO), so they run after it: a hook that acts on the
 * container through `/proc/PID/…` (its namespaces, `/proc/PID/root`) sees it as runc's would,
 * but a mount made under the bundle's rootfs on the host is not seen inside (hako's mounts are
 * private). `createContainer` and `startContainer` run inside the container's namespaces and are
 * refused (see config.ts).
 *
 * Each hook: `path` (absolute) run with `args` as its argv (argv[0] included, as execv's), `env`
 * as its whole environment (none when absent, as runc), killed after `timeout` seconds when given.
 * @module
 */
import { spawn } from "node:child_process";

/** One hook, as config.json gives it (checked by config.ts). */
export interface OciHook {
  readonly path: string;
  readonly args?: readonly string[];
  readonly env?: readonly string[];
  readonly timeout?: number;
}

/** The hooks hako runs, by the point they run at. */
export interface OciHooks {
  readonly prestart?: readonly OciHook[];
  readonly createRuntime?: readonly OciHook[];
  readonly poststart?: readonly OciHook[];
  readonly poststop?: readonly OciHook[];
}

/** The hook kinds hako runs, in config.json's names. */
export const RUN_HOOKS = ["prestart", "createRuntime", "poststart", "poststop"] as const;

/**
 * Runs `hooks` in order, each with `state` (the OCI state JSON) on stdin; the first failure throws.
 * @param kind The hook kind (for messages: `hooks.prestart[0]`).
 * @throws {Error} `KIND[i] (PATH): …` when a hook cannot run, exits non-zero or times out.
 */
export async function runHooks(kind: string, hooks: readonly OciHook[] | undefined, state: unknown): Promise<void> {
  const input = JSON.stringify(state);
  for (const [i, h] of (hooks ?? []).entries()) await runHook(kind, i, h, input);
}

/**
 * Runs one hook (see runHooks). Asynchronous, with the state written to a pipe: a hook that exits
 * without reading it is no error (its EPIPE is ignored; spawnSync's `input` loses the exit status
 * then under Deno).
 */
function runHook(kind: string, i: number, h: OciHook, input: string): Promise<void> {
  const env: Record<string, string> = {};
  for (const e of h.env ?? []) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const args = h.args?.length ? h.args : [h.path];
  const at = `hooks.${kind}[${i}] (${h.path})`;
  return new Promise<void>((resolve, reject) => {
    let timedOut = false;
    let stderr = "";
    const child = spawn(h.path, args.slice(1), { argv0: args[0]!, env, stdio: ["pipe", "ignore", "pipe"] });
    const timer = h.timeout
      ? setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, h.timeout * 1000)
      : undefined;
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`${at}: ${e.message}`));
    });
    child.stderr!.on("data", (d) => {
      if (stderr.length < 4096) stderr += String(d);
    });
    child.stdin!.on("error", () => {/* (the hook did not read its stdin) */});
    child.stdin!.end(input);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${at}: timed out after ${h.timeout} s`));
      else if (signal) reject(new Error(`${at}: killed by ${signal}`));
      else if (code !== 0) reject(new Error(`${at}: exit status ${code}${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
      else resolve();
    });
  });
}
