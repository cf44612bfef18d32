/**
 * `Kernel`: hacorb's names for process control (`Kernel.exec`, `Kernel.system`, `Kernel.fork`…).
 * @module
 */
import { _exit, exec, fork, type ForkOptions, system } from "./process.ts";

/** The shape of {@link Kernel}. */
export interface KernelModule {
  /** See `Process.exec`. */
  readonly exec: (command: string | readonly string[], ...args: string[]) => never;
  /** See `Process.system`. */
  readonly system: typeof system;
  /** See `Process.fork`. */
  readonly fork: (optionsOrFn: ForkOptions | (() => unknown), fn?: () => unknown) => number;
  /** Ends the process now. */
  readonly exit: (code?: number) => never;
  /** Sleeps synchronously. */
  readonly sleep: (seconds: number) => void;
}

/** Ruby's Kernel functions, for scripts ported from hacorb. */
export const Kernel: KernelModule = {
  /** Replaces the process with a program. See `Process.exec`. */
  exec,
  /** Runs a command and waits. See `Process.system`. */
  system,
  /** Forks a child. See `Process.fork`. */
  fork: (optionsOrFn: ForkOptions | (() => unknown), fn?: () => unknown): number =>
    typeof optionsOrFn === "function" ? fork(optionsOrFn) : fork(optionsOrFn, fn!),
  /** Ends the process now, with `code`. */
  exit: (code = 0): never => _exit(code),
  /** Sleeps synchronously for `seconds` (works in a forked child too). */
  sleep(seconds: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
  },
} as const;
