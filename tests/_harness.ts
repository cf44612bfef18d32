/**
 * The test harness: one `test()` for every runtime, skips that say why, and helpers shared by
 * the tests (root check, temp dirs, running hako's CLI).
 * @module
 */
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
export function test(name: string, fn: () => void | Promise<void>, options: TestOptions = {}): void {
  const skip = options.skip;
  if (skip) {
    console.error(`SKIP ${name}: ${skip}`);
    Deno.test({ name: `${name} (skipped: ${skip})`, ignore: true, fn });
    return;
  }
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
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
    if (!(e instanceof type)) throw new Error(`expected ${type.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    if (pattern && !pattern.test(e.message)) throw new Error(`message ${JSON.stringify(e.message)} does not match ${pattern}`);
    return e;
  }
  throw new Error(`expected ${type.name} to be thrown`);
}
