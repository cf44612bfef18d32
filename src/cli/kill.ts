/**
 * `hako kill NAME [SIGNAL]`.
 * @module
 */
import { nonEmpty, parseArgs, quoted, UsageError } from "./_args.ts";
import { signalNumber } from "../signals.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako kill <name> [SIGNAL]

Sends SIGNAL (default KILL; a name like TERM, SIGHUP, or a number) to the container's init. The
process is identified by its pid and start time, so a pid reused since is never signalled. Note:
PID 1 of a PID namespace gets only the signals it handles (and KILL); 'hako stop' sends TERM and
then KILL.

Options:
  -h, --help   Show this help

Exit status: 0 when signalled; 1 when there is no such container or it is not running.
`;

/** Parses `hako kill`'s arguments (pure). @throws {UsageError} For a missing name or extra operands. */
export function parseKillArgs(argv: readonly string[]): { help: boolean; name?: string; signal: string } {
  const { values, positionals } = parseArgs(argv, { help: { type: "boolean", short: "h" } });
  if (values.help) return { help: true, signal: "KILL" };
  const [name, signal = "KILL", ...rest] = positionals;
  if (name === undefined) throw new UsageError("a container name is required");
  nonEmpty(name, "the container name");
  if (rest.length > 0) throw new UsageError(`unexpected argument ${quoted(rest[0]!)}`);
  // A signal by name (KILL, SIGTERM, term) or number (9), checked here: a bad one is a usage error.
  if (!/^(\d{1,2}|[A-Za-z0-9+-]{1,16})$/.test(signal)) throw new UsageError(`unknown signal ${quoted(signal)}`);
  try {
    signalNumber(/^\d+$/.test(signal) ? Number(signal) : signal);
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^signal: /, ""));
  }
  return { help: false, name, signal: /^\d+$/.test(signal) ? signal : signal.toUpperCase() };
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
  killContainer(a.name!, sig);
  return 0;
}
