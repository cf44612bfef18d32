/**
 * The test harness: one `test()` for every runtime (`Deno.test` under Deno, `bun:test` under
 * Bun), skips that say why, and helpers shared by the tests (root check, temp dirs, gc, running
 * hako's CLI).
 * @module
 */
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

type TestFn = () => void | Promise<void>;

/** The part of `bun:test` the harness uses (Deno has no types for it). */
interface BunTest {
  (name: string, fn: TestFn, options?: { timeout?: number }): void;
  skip(name: string, fn: TestFn): void;
}

/** The runtime running the tests. */
export const runtime: "deno" | "bun" = "Bun" in globalThis ? "bun" : "deno";

// Loaded with import.meta.require under Bun only, so Deno (and `deno check`) never resolve it.
const bunTest: BunTest | undefined = runtime === "bun"
  ? ((import.meta as ImportMeta & { require(id: string): unknown }).require("bun:test") as { test: BunTest }).test
  : undefined;

/**
 * Bun stops a test after 5 s by default; Deno never does. Kernel tests (1000 forks) take longer,
 * so under Bun a test gets this long before it counts as hung.
 */
const BUN_TIMEOUT_MS = 300_000;

/** Options for {@link test}. */
export interface TestOptions {
  /** A reason to skip, or false/undefined to run. */
  readonly skip?: string | false | undefined;
}

/** True when running as root (most of hako's tests need it). */
export const isRoot: boolean = process.getuid?.() === 0;

/** The skip reason for tests that need root. */
export const needsRoot: string | false = isRoot ? false : "needs root (run the suite with sudo)";

/**
 * Declares a test. A skipped test prints its reason, so a skip is never silent.
 */
export function test(name: string, fn: TestFn, options: TestOptions = {}): void {
  const skip = options.skip;
  if (skip) {
    console.error(`SKIP ${name}: ${skip}`);
    if (bunTest) bunTest.skip(`${name} (skipped: ${skip})`, fn);
    else Deno.test({ name: `${name} (skipped: ${skip})`, ignore: true, fn });
    return;
  }
  if (bunTest) bunTest(name, fn, { timeout: BUN_TIMEOUT_MS });
  else Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/**
 * Runs `fn` once the test file is done (Bun's `afterAll`; Deno's "unload": neither test runner
 * fires the process's "exit"). Call it when the file loads, not inside a test.
 */
export function atEnd(fn: () => void): void {
  if (runtime === "bun") {
    ((import.meta as ImportMeta & { require(id: string): unknown }).require("bun:test") as {
      afterAll(fn: () => void): void;
    }).afterAll(fn);
  } else globalThis.addEventListener("unload", fn);
}

/**
 * Runs a full garbage collection when the runtime allows it: `Bun.gc(true)` under Bun,
 * `globalThis.gc()` under Deno when started with `--v8-flags=--expose-gc` (else nothing).
 */
export function gc(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) bun.gc(true);
  else (globalThis as { gc?: () => void }).gc?.();
}

/** Waits until `cond` holds, polling every 20 ms; throws after `ms`. */
export async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A fresh temp dir removed by `[Symbol.dispose]`. */
export function tempDir(prefix = "hako-test-"): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** Throws when `cond` is false. */
export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new Error(message);
}

/** Deep equality via JSON, with both values in the message. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message ? message + ": " : ""}expected ${e}, got ${a}`);
}

/** Asserts that `fn` throws an error of `type` whose message matches `pattern`. Returns it. */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  type: new (...args: never[]) => E,
  pattern?: RegExp,
): E {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof type)) {
      throw new Error(`expected ${type.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    if (pattern && !pattern.test(e.message)) {
      throw new Error(`message ${JSON.stringify(e.message)} does not match ${pattern}`);
    }
    return e;
  }
  throw new Error(`expected ${type.name} to be thrown`);
}

/**
 * Runs `fn` with HAKO_NATIVE_SPAWN set to `value` (undefined: unset; "0": the forked child), and
 * restores it after.
 */
export async function withSpawn<T>(value: string | undefined, fn: () => Promise<T>): Promise<T> {
  const before = process.env.HAKO_NATIVE_SPAWN;
  if (value === undefined) delete process.env.HAKO_NATIVE_SPAWN;
  else process.env.HAKO_NATIVE_SPAWN = value;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.HAKO_NATIVE_SPAWN;
    else process.env.HAKO_NATIVE_SPAWN = before;
  }
}
