/**
 * What the OCI runtime tests share: the runtime under test as a command, and a way to run a
 * command whose output a container left behind cannot hold open.
 * @module
 */
import { chmodSync, closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtime, tempDir } from "./_harness.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The OCI runtime (hako-runc) as a command, for this test run's JavaScript runtime (a script in `dir` for Bun). */
export function launcher(dir: string): string {
  if (runtime === "deno") return join(ROOT, "bin/hako-runc");
  const path = join(dir, "hako-runc-bun");
  writeFileSync(
    path,
    `#!/bin/sh\nexec "${join(ROOT, "node_modules/.bin/bun")}" "${join(ROOT, "src/cli/main.ts")}" oci "$@"\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

/** One OCI runtime a comparison runs: its name (for messages and state directories), command and environment. */
export interface RuntimeUnderTest {
  readonly who: string;
  readonly bin: string;
  readonly env: Record<string, string>;
}

/**
 * The runtimes a side-by-side test runs one bundle with: hako-runc on the native child and on the
 * forked one (`HAKO_NATIVE_SPAWN=0`), then runc where it is installed.
 * @param dir Where the Bun launcher is written (see {@link launcher}).
 */
export function runtimesToCompare(dir: string, runc = "/usr/sbin/runc"): RuntimeUnderTest[] {
  const hako = launcher(dir);
  return [
    { who: "hako-native", bin: hako, env: {} },
    { who: "hako-forked", bin: hako, env: { HAKO_NATIVE_SPAWN: "0" } },
    ...(has(runc) ? [{ who: "runc", bin: runc, env: {} }] : []),
  ];
}

/** How a command ended, and what it printed. */
export interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command and waits for it. Its stdout and stderr are files, not pipes: a container that
 * `create` leaves behind inherits them (as runc's does), and a pipe would stay open until it ends.
 */
export function runIt(cmd: string, args: string[], env: Record<string, string> = {}): Run {
  using io = tempDir("hako-test-oci-io-");
  const out = openSync(join(io.path, "out"), "w+"), err = openSync(join(io.path, "err"), "w+");
  try {
    const r = spawnSync(cmd, args, { stdio: ["ignore", out, err], env: { ...process.env, ...env }, timeout: 120_000 });
    return {
      status: r.status ?? -1,
      stdout: readFileSync(join(io.path, "out"), "utf8"),
      stderr: readFileSync(join(io.path, "err"), "utf8"),
    };
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/** True when `cmd args` runs and exits 0 (a tool is installed and works). */
export function has(cmd: string, args: string[] = ["--version"]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
