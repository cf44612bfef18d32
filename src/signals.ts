/**
 * Signal names and numbers (Linux, x86_64 and aarch64 agree).
 * @module
 */
import { ConfigError } from "./errors.ts";

/** Signal name (without SIG) → number. */
export const SIGNALS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  TRAP: 5,
  ABRT: 6,
  BUS: 7,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  STKFLT: 16,
  CHLD: 17,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  XCPU: 24,
  XFSZ: 25,
  VTALRM: 26,
  PROF: 27,
  WINCH: 28,
  IO: 29,
  PWR: 30,
  SYS: 31,
};

/** A signal given by number, `"TERM"` or `"SIGTERM"`. */
export type Signal = number | string;

/**
 * The number of a signal given as a number or a name (`"TERM"`, `"SIGTERM"`, case-insensitive).
 * @throws {ConfigError} For an unknown name or a number outside 0..64.
 */
export function signalNumber(sig: Signal): number {
  if (typeof sig === "number") {
    if (!Number.isInteger(sig) || sig < 0 || sig > 64) throw new ConfigError("signal", `${sig} is not a signal number`);
    return sig;
  }
  const name = sig.toUpperCase().replace(/^SIG/, "");
  const n = SIGNALS[name];
  if (n === undefined) throw new ConfigError("signal", `unknown signal ${JSON.stringify(sig)}`);
  return n;
}

/** The name of a signal number (`"SIGKILL"`), or `"SIG<n>"`. */
export function signalName(n: number): string {
  for (const [name, num] of Object.entries(SIGNALS)) if (num === n) return `SIG${name}`;
  return `SIG${n}`;
}
