/**
 * Container hooks: `bootstrap` (host, once per rootfs), `provision` (inside the container, before
 * the command), `beforeStart` and `afterStop` (host). Each is a TypeScript callback or a command
 * (an argv array, or a shell string run under `/bin/sh -c`).
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import process from "node:process";

/** A hook's command form: an argv array, or a string run under `/bin/sh -c`. */
export type HookCommand = string | readonly string[];

/** A hook: a TypeScript callback receiving `A`, or a command. */
export type Hook<A> = HookCommand | ((arg: A) => void | Promise<void>);

/** The names of the hooks, in the order they run. */
export const HOOK_NAMES = ["bootstrap", "provision", "beforeStart", "afterStop"] as const;

/** The file in a rootfs that records a successful `bootstrap` hook. */
export const BOOTSTRAP_MARKER = ".hako-bootstrapped";

/** The argv of a command hook. */
export function hookArgv(cmd: HookCommand): string[] {
  return typeof cmd === "string" ? ["/bin/sh", "-c", cmd] : [...cmd];
}

/** A short description of a hook, for `hako plan`. */
export function describeHook(hook: Hook<never>, args: string): string {
  return typeof hook === "function"
    ? `call the TypeScript callback ${hook.name ? `${hook.name}(` : "("}${args})`
    : `run ${JSON.stringify(hookArgv(hook))}`;
}

/** Why a hook's problem, if any: undefined when `hook` is a valid hook. */
export function hookProblem(hook: unknown): string | undefined {
  if (typeof hook === "function") return undefined;
  if (typeof hook === "string") return hook.trim() === "" ? "is an empty command string" : undefined;
  if (Array.isArray(hook)) {
    if (hook.length === 0) return "is an empty argv array";
    const i = hook.findIndex((a) => typeof a !== "string" || a === "");
    return i >= 0 ? `argument ${i} must be a non-empty string` : undefined;
  }
  return `must be a function, a non-empty argv array or a non-empty command string, got ${
    hook === null ? "null" : typeof hook
  }`;
}

/**
 * Runs a command hook on the host, synchronously, with `extraEnv` added to the environment.
 * @throws {Error} When it cannot be run or exits non-zero.
 */
export function runHostCommand(cmd: HookCommand, extraEnv: Record<string, string>, cwd?: string): void {
  const [file, ...args] = hookArgv(cmd);
  const r = spawnSync(file!, args, { cwd, env: { ...process.env, ...extraEnv }, stdio: "inherit" });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(
      `${JSON.stringify(hookArgv(cmd))} ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.status}`}`,
    );
  }
}

/** Runs a host hook: awaits a callback, or runs a command with `env`. */
export async function runHostHook<A>(hook: Hook<A>, arg: A, env: Record<string, string>, cwd?: string): Promise<void> {
  if (typeof hook === "function") await hook(arg);
  else runHostCommand(hook, env, cwd);
}

/**
 * Runs `bootstrap` once per rootfs: skipped when the marker file is there; the marker is written
 * only after the hook succeeded (so a failed one runs again next time).
 * @returns true when it ran.
 */
export async function runBootstrap<S>(
  hook: Hook<{ rootfs: string; spec: S }>,
  rootfs: string,
  spec: S,
): Promise<boolean> {
  const marker = `${rootfs}/${BOOTSTRAP_MARKER}`;
  if (existsSync(marker)) return false;
  await runHostHook(hook, { rootfs, spec }, { HAKO_ROOTFS: rootfs }, rootfs);
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  return true;
}
