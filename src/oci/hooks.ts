/**
 * config.json's `hooks` (OCI runtime spec, config.md "POSIX-platform Hooks", runtime.md
 * "Lifecycle"), each with the container's state JSON on stdin, at the points runc runs them:
 *
 * | hook | when (hako, as runc) | where | a failure |
 * | --- | --- | --- | --- |
 * | `prestart`, `createRuntime` | in `create`, while the child waits at its hooks-sync step: every mount made (the rootfs at its host path in the container's mount namespace), before pivot_root; state `creating`, pid the child's | the runtime's namespaces | fails `create`, which undoes the container |
 * | `createContainer` | right after them, the child still waiting there | the container's namespaces (its mount namespace before pivot_root: the path resolves among the runtime's files), its cgroups, root inside with every capability (as runc's init is there), cwd the rootfs | fails `create` |
 * | `startContainer` | in `start` (and `run`), once the command is released (the exec FIFO read), before its execve: the child waits for a second byte through the FIFO | the container, as its command: its root, namespaces, cgroups, user, capabilities, no_new_privs, seccomp filter; the path resolved inside | kills the container and fails `start`: the command never runs (runc's init returns the error instead of exec'ing) |
 * | `poststart` | in `start`, once the command runs (state `running`) | the runtime's namespaces | logged (a warning), as runc's |
 * | `poststop` | in `delete`, once the container is gone (state `stopped`) | the runtime's namespaces | logged |
 *
 * A container without prestart, createRuntime or createContainer hooks has no sync point (the
 * same child program as before); one without startContainer hooks waits for nothing after the FIFO.
 *
 * How the container's hooks get inside: runc runs them from its init process; hako's native child
 * runs no JavaScript, so the runtime runs them with `execIn` (what `hako exec` uses: a child that
 * joins the waiting child's cgroups and namespaces — opened by `/proc/PID/ns/*` — and clones the
 * hook's process into its PID namespace, native or forked as for any exec). That needs no new op
 * in the child's program and no second interpreter: the hooks-sync step is one write and one read
 * (setup.ts), and the namespaces joined, the profile applied and the errors named are exec's own,
 * already tested on both paths. As runc's, the program execve runs is the hook's `path` and `args`
 * is its whole argv (execIn's `path` option), and the state's `pid` is the container's process as
 * it sees itself (runc's init puts its own getpid() there: 1 in a PID namespace of its own).
 *
 * Each hook: `path` (absolute) run with `args` as its argv (argv[0] included, as execv's; `[path]`
 * when absent, as Go's exec.Cmd), `env` as its whole environment (none when absent, as runc),
 * killed after `timeout` seconds when given.
 * @module
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { AT_FDCWD, openat } from "../../ffi/at.ts";
import { libc } from "../../ffi/libc.ts";
import { O_CLOEXEC, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY } from "../../ffi/constants.ts";
import { Capability } from "../capability.ts";
import type { ExecProfile } from "../container/exec.ts";
import type { ResolvedSpec } from "../container/validate.ts";

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
  readonly createContainer?: readonly OciHook[];
  readonly startContainer?: readonly OciHook[];
  readonly poststart?: readonly OciHook[];
  readonly poststop?: readonly OciHook[];
}

/** The hook kinds hako runs, in config.json's names. */
export const RUN_HOOKS = [
  "prestart",
  "createRuntime",
  "createContainer",
  "startContainer",
  "poststart",
  "poststop",
] as const;

/**
 * A hook's `timeout` in milliseconds for setTimeout, which fires at once past 2^31-1 ms (24.8
 * days): a longer timeout (config.ts bounds it only below, as runc does) waits as long as a timer can.
 */
function timeoutMs(seconds: number): number {
  return Math.min(seconds * 1000, 2 ** 31 - 1);
}

/** The profile a hook inside the container runs with (see {@link runHooksIn}). */
export type HookProfile = Omit<ExecProfile, "argv" | "env">;

/**
 * The profile of `createContainer` hooks: root inside with every capability the runtime holds
 * (runc's init, where it runs them, has dropped none yet), no no_new_privs, no seccomp filter (not
 * loaded yet), the working directory the rootfs at its host path (runc chdirs there before them).
 */
export function createContainerProfile(rootfs: string): HookProfile {
  return {
    workdir: rootfs,
    user: { uid: 0, gid: 0, groups: [] },
    capabilities: Capability.get(0).permitted as unknown as ExecProfile["capabilities"],
    rlimits: {},
    noNewPrivs: false,
    seccomp: false,
    seccompProgram: undefined,
    rootless: false,
  } as HookProfile;
}

/**
 * Runs `hooks` in order inside the container whose process is `pid` (its cgroups and namespaces
 * joined, `profile` applied: see the module's table), each with `state` on stdin; the first failure
 * throws. stdin and the output are files in `scratch` (a directory of the runtime's), unlinked
 * once opened: nothing of the container's blocks on a pipe the runtime is not reading.
 * @throws {Error} `KIND[i] (PATH): …` when a hook cannot run, exits non-zero or times out.
 */
export async function runHooksIn(
  kind: string,
  hooks: readonly OciHook[] | undefined,
  state: unknown,
  pid: number,
  profile: HookProfile,
  scratch: string,
): Promise<void> {
  if (!hooks?.length) return;
  // (runc's init runs these hooks itself, with s.Pid = unix.Getpid(): its pid in its own namespace)
  const input = JSON.stringify({ ...(state as Record<string, unknown>), pid: pidInside(pid) });
  for (const [i, h] of hooks.entries()) await runHookIn(kind, i, h, input, pid, profile, scratch);
}

/** Process `pid` (the host's number) as it sees itself: the last of /proc/PID/status's NSpid. */
export function pidInside(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("NSpid:"));
  const last = Number(line?.trim().split(/\s+/).at(-1));
  return Number.isInteger(last) && last > 0 ? last : pid;
}

async function runHookIn(
  kind: string,
  i: number,
  h: OciHook,
  input: string,
  pid: number,
  profile: HookProfile,
  scratch: string,
): Promise<void> {
  const { execIn } = await import("../container/exec.ts");
  const at = `hooks.${kind}[${i}] (${h.path})`;
  const env: Record<string, string> = {};
  for (const e of h.env ?? []) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  const tag = `${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  const inPath = join(scratch, `.hook-in.${tag}`), outPath = join(scratch, `.hook-out.${tag}`);
  let stdin = -1, out = -1;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    writeFileSync(inPath, input, { mode: 0o600 });
    stdin = openat(AT_FDCWD, inPath, O_RDONLY | O_CLOEXEC);
    out = openat(AT_FDCWD, outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600);
    unlinkSync(inPath), unlinkSync(outPath);
    let status;
    try {
      status = await execIn(pid, {
        // execve(path, args): args is the whole argv (runc's exec.Cmd{Path, Args})
        argv: h.args?.length ? h.args : [h.path],
        path: h.path,
        // (the hook's env is its whole environment, as runc's exec.Cmd gets it)
        spec: { ...profile, argv: [], env } as unknown as ResolvedSpec,
        stdin,
        stdout: out,
        stderr: out,
        onStart: (hookPid) => {
          if (h.timeout) {
            timer = setTimeout(() => {
              timedOut = true;
              try {
                process.kill(hookPid, "SIGKILL");
              } catch { /* gone */ }
            }, timeoutMs(h.timeout));
          }
        },
      });
    } catch (e) {
      throw new Error(`${at}: ${(e as Error).message}`);
    }
    if (timedOut) throw new Error(`${at}: timed out after ${h.timeout} s`);
    if (status.signal !== null) throw new Error(`${at}: killed by signal ${status.signal}`);
    if (status.code !== 0) {
      let said = "";
      try {
        said = readFileSync(`/proc/self/fd/${out}`, "utf8").slice(0, 4096).trim();
      } catch { /* no output */ }
      throw new Error(`${at}: exit status ${status.code}${said ? `: ${said}` : ""}`);
    }
  } finally {
    clearTimeout(timer);
    for (const fd of [stdin, out]) if (fd >= 0) libc().close(fd);
    for (const f of [inPath, outPath]) rmSync(f, { force: true });
  }
}

/**
 * Runs `hooks` in order, each with `state` (the OCI state JSON) on stdin; the first failure throws.
 * @param kind The hook kind (for messages: `hooks.prestart[0]`).
 * @param cwd Their working directory (`create` gives the bundle, where runc's create runs them).
 * @throws {Error} `KIND[i] (PATH): …` when a hook cannot run, exits non-zero or times out.
 */
export async function runHooks(
  kind: string,
  hooks: readonly OciHook[] | undefined,
  state: unknown,
  cwd?: string,
): Promise<void> {
  const input = JSON.stringify(state);
  for (const [i, h] of (hooks ?? []).entries()) await runHook(kind, i, h, input, cwd);
}

/**
 * Runs one hook (see runHooks). Asynchronous, with the state written to a pipe: a hook that exits
 * without reading it is no error (its EPIPE is ignored; spawnSync's `input` loses the exit status
 * then under Deno).
 */
function runHook(kind: string, i: number, h: OciHook, input: string, cwd?: string): Promise<void> {
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
    const child = spawn(h.path, args.slice(1), {
      argv0: args[0]!,
      env,
      stdio: ["pipe", "ignore", "pipe"],
      ...(cwd ? { cwd } : {}),
    });
    const timer = h.timeout
      ? setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, timeoutMs(h.timeout))
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
    // Settled by the hook's exit, not by its stderr's close: a daemon it forked may hold the pipe
    // for as long as it lives (runc's hooks run under a Go exec.Cmd whose Wait would wait for it
    // too; hako does not). What the hook said in the next moment is kept, then the pipe is let go.
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      let settled = false;
      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(grace);
        child.stderr?.destroy();
        if (timedOut) reject(new Error(`${at}: timed out after ${h.timeout} s`));
        else if (signal) reject(new Error(`${at}: killed by ${signal}`));
        else if (code !== 0) {
          reject(new Error(`${at}: exit status ${code}${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
        } else resolve();
      };
      const grace = setTimeout(settle, 100);
      child.once("close", settle);
    });
  });
}
