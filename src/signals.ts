/**
 * Signal names and numbers (Linux, x86_64 and aarch64 agree).
 * @module
 */
import { ConfigError } from "./errors.ts";
import {
  SIGABRT,
  SIGALRM,
  SIGBUS,
  SIGCHLD,
  SIGCONT,
  SIGFPE,
  SIGHUP,
  SIGILL,
  SIGINT,
  SIGIO,
  SIGKILL,
  SIGPIPE,
  SIGPROF,
  SIGPWR,
  SIGQUIT,
  SIGSEGV,
  SIGSTKFLT,
  SIGSTOP,
  SIGSYS,
  SIGTERM,
  SIGTRAP,
  SIGTSTP,
  SIGTTIN,
  SIGTTOU,
  SIGURG,
  SIGUSR1,
  SIGUSR2,
  SIGVTALRM,
  SIGWINCH,
  SIGXCPU,
  SIGXFSZ,
} from "../ffi/constants.ts";

/** Signal name (without SIG) → number (the numbers are in ffi/constants.ts). */
export const SIGNALS: Readonly<Record<string, number>> = {
  HUP: SIGHUP,
  INT: SIGINT,
  QUIT: SIGQUIT,
  ILL: SIGILL,
  TRAP: SIGTRAP,
  ABRT: SIGABRT,
  BUS: SIGBUS,
  FPE: SIGFPE,
  KILL: SIGKILL,
  USR1: SIGUSR1,
  SEGV: SIGSEGV,
  USR2: SIGUSR2,
  PIPE: SIGPIPE,
  ALRM: SIGALRM,
  TERM: SIGTERM,
  STKFLT: SIGSTKFLT,
  CHLD: SIGCHLD,
  CONT: SIGCONT,
  STOP: SIGSTOP,
  TSTP: SIGTSTP,
  TTIN: SIGTTIN,
  TTOU: SIGTTOU,
  URG: SIGURG,
  XCPU: SIGXCPU,
  XFSZ: SIGXFSZ,
  VTALRM: SIGVTALRM,
  PROF: SIGPROF,
  WINCH: SIGWINCH,
  IO: SIGIO,
  PWR: SIGPWR,
  SYS: SIGSYS,
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
