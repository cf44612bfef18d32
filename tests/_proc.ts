/**
 * Helpers for tests that check a child from outside, through /proc: wait until it has exec'd
 * (or reached some state), read its status fields, and kill and reap it in `finally`.
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { Process } from "../mod.ts";

/** A field of /proc/PID/status, e.g. `statusField(text, "CapEff")` → `"0000000000000421"`. */
export function statusField(status: string, key: string): string | undefined {
  return new RegExp(`^${key}:[ \\t]*(.*)$`, "m").exec(status)?.[1]?.trim();
}

/** A hex capability mask field of /proc/PID/status as a bigint. */
export function capField(status: string, key: "CapInh" | "CapPrm" | "CapEff" | "CapBnd" | "CapAmb"): bigint {
  const v = statusField(status, key);
  if (v === undefined) throw new Error(`no ${key} in status`);
  return BigInt(`0x${v}`);
}

/** Reads /proc/PID/<file>, or "" when the process is gone. */
export function procFile(pid: number, file: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return "";
  }
}

/** The entries of the child's root directory, seen through /proc/PID/root. */
export function rootEntries(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/root`).sort();
  } catch {
    return [];
  }
}

/**
 * Polls until `ready()` is true (checked every 5 ms, up to `ms`); fails early, with the exit
 * status, when the child ends first.
 */
export async function waitUntil(pid: number, ready: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (ready()) return;
    const r = Process.waitpid2(pid, Process.WNOHANG);
    if (r.pid !== 0) throw new Error(`child ${pid} ended (${r.status}) before ${what}`);
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (child ${pid})`);
    await new Promise((res) => setTimeout(res, 5));
  }
}

/** Waits until the child runs the program named `comm` (its exec happened); returns its status text. */
export async function afterExec(pid: number, comm: string): Promise<string> {
  await waitUntil(pid, () => procFile(pid, "comm").trim() === comm, `exec of ${comm}`);
  return procFile(pid, "status");
}

/** Kills the child (if still there) and reaps it; for `finally`. */
export function killAndReap(pid: number): void {
  try {
    Process.kill(pid, "KILL");
  } catch { /* already gone */ }
  try {
    Process.waitpid(pid);
  } catch { /* already reaped */ }
}
