/**
 * `hako kill [-s SIGNAL] NAME…` (docker's), and hako's older `hako kill NAME SIGNAL`.
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { signalNumber } from "../signals.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako kill [-s SIGNAL] <name>...
       hako kill <name> <SIGNAL>

Sends SIGNAL (default KILL; a name like TERM, SIGHUP, or a number) to each container's init, as
docker kill. The process is identified by its pid and start time, so a pid reused since is never
signalled. Note: PID 1 of a PID namespace gets only the signals it handles (and KILL); 'hako stop'
sends TERM and then KILL. Without -s, a second operand that is a signal is the signal (hako's
older form), not a container.

Options:
  -s, --signal <SIGNAL>   The signal (default KILL)
  -h, --help              Show this help

Exit status: 0 when every container was signalled; 1 when one is unknown or not running.
`;

/** What `hako kill` was asked to do. */
export interface KillArgs {
  readonly help: boolean;
  /** The first container (as `names[0]`). */
  readonly name?: string;
  /** Every container. */
  readonly names: readonly string[];
  /** The signal: a number, or a name in upper case. */
  readonly signal: string;
}

/** A signal as given, checked (pure). @throws {UsageError} For an unknown one. */
function checkSignal(signal: string): string {
  if (!/^(\d{1,2}|[A-Za-z0-9+-]{1,16})$/.test(signal)) throw new UsageError(`unknown signal ${quoted(signal)}`);
  try {
    signalNumber(/^\d+$/.test(signal) ? Number(signal) : signal);
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^signal: /, ""));
  }
  return /^\d+$/.test(signal) ? signal : signal.toUpperCase();
}

/** True when `s` names a signal. */
function isSignal(s: string): boolean {
  try {
    checkSignal(s);
    return true;
  } catch {
    return false;
  }
}

/** Parses `hako kill`'s arguments (pure). @throws {UsageError} For a missing name or a bad signal. */
export function parseKillArgs(argv: readonly string[]): KillArgs {
  const { values, positionals } = parseArgs(argv, {
    signal: { type: "string", short: "s" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, names: [], signal: "KILL" };
  const given = stringOption(values, "signal");
  let names = [...positionals], signal = given ?? "KILL";
  // hako's older form, NAME SIGNAL: a second (and last) operand that is a signal, or reads as one
  // (upper case or a number: "NOPE" is a mistyped signal, not a container).
  if (given === undefined && names.length === 2 && (isSignal(names[1]!) || /^(SIG)?[A-Z]+\d*$|^\d+$/.test(names[1]!))) {
    signal = names.pop()!;
  }
  if (names.length === 0) throw new UsageError("a container name is required");
  for (const n of names) nonEmpty(n, "the container name");
  names = names.filter((n, i) => names.indexOf(n) === i);
  return { help: false, name: names[0]!, names, signal: checkSignal(signal) };
}

/** Runs `hako kill`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseKillArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  const { signalNumber } = await import("../signals.ts");
  const sig = /^\d+$/.test(a.signal) ? Number(a.signal) : a.signal;
  try {
    signalNumber(sig);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { killContainer } = await import("../container/lifecycle.ts");
  if (a.names.length === 1) {
    killContainer(a.name!, sig);
    return 0;
  }
  let code = 0;
  for (const name of a.names) {
    try {
      killContainer(name, sig);
      host().stdout(`${name}\n`); // (docker kill prints each name it signalled)
    } catch (e) {
      code = 1;
      host().stderr(`hako kill: ${(e as Error).message}\n`);
    }
  }
  return code;
}
