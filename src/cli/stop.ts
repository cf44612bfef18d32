/**
 * `hako stop NAME… [--timeout S]`.
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako stop [--timeout S] <name>...

Stops each container: SIGTERM to its init, then SIGKILL if it is still there after the timeout
(default 10 s). Several containers are stopped at once. A container that is not running is left as
it is. Prints each name with how it ended ("terminated", "killed" or "not running").

Options:
  -t, --timeout <S>   Seconds to wait after SIGTERM (default 10; 0: SIGKILL at once)
  -h, --help          Show this help

Exit status: 0, or 1 when a name is unknown.
`;

/** Parses `hako stop`'s arguments (pure). @throws {UsageError} For a bad timeout or no name. */
export function parseStopArgs(argv: readonly string[]): { help: boolean; names: string[]; timeoutMs: number } {
  const { values, positionals } = parseArgs(argv, {
    timeout: { type: "string", short: "t" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, names: [], timeoutMs: 0 };
  const t = stringOption(values, "timeout") ?? "10";
  // (at most what a timer takes: 2^31-1 ms, some 24 days; a longer one would fire at once)
  if (!/^\d{1,7}(\.\d+)?$/.test(t) || Number(t) * 1000 > 2 ** 31 - 1) {
    throw new UsageError(`--timeout wants seconds (at most 2147483), not ${quoted(t)}`);
  }
  if (positionals.length === 0) throw new UsageError("a container name is required");
  for (const n of positionals) nonEmpty(n, "a container name");
  return { help: false, names: [...positionals], timeoutMs: Math.round(Number(t) * 1000) };
}

/** Runs `hako stop`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseStopArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { stopContainer } = await import("../container/lifecycle.ts");
  let code = 0;
  await Promise.all(a.names.map(async (name) => {
    try {
      const r = await stopContainer(name, { timeoutMs: a.timeoutMs });
      h.stdout(`${name} ${r === "not-running" ? "not running" : r}\n`);
    } catch (e) {
      code = 1;
      h.stderr(`hako stop: ${(e as Error).message}\n`);
    }
  }));
  return code;
}
