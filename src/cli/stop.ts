/**
 * `hako stop NAME… [--timeout S]`.
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";
import type { StopResult } from "../container/lifecycle.ts";
import { signalName } from "../signals.ts";

/** The help text. */
export const usage = `Usage: hako stop [--timeout S] <name>...

Stops each container: SIGTERM (or its stopSignal: run --stop-signal, an image's StopSignal) to its init, then SIGKILL if it is still there after the timeout
(default 10 s). Several containers are stopped at once. A container that is not running is left as
it is. Prints each name with what ended it, from the exit status its supervisor recorded:

  NAME terminated by hako's SIGTERM (exit 143)
  NAME exited with 0 on hako's SIGTERM           (it handles TERM)
  NAME killed by hako's SIGKILL, 10 s after its SIGTERM (exit 137)
  NAME killed by SIGKILL, not by hako: ...       (something else killed it meanwhile)
  NAME oom-killed: its memory limit killed it ...
  NAME ended after hako's SIGKILL; its exit status is unknown (...)
  NAME not running

A container whose record is damaged is stopped from its cgroup (hako/NAME unless the record still
names another): SIGTERM to its first process, then SIGKILL to every process left in it.

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

/**
 * The line `hako stop` prints for a container (pure): its name and what ended it — hako's TERM,
 * hako's KILL, its own exit, the OOM killer, or a signal from something other than hako.
 * @param name The container.
 * @param r What {@link stopContainer} found.
 */
export function stopLine(name: string, r: StopResult): string {
  const damaged = r.damaged ? ` (its record is damaged: ${r.damaged})` : "";
  if (r.outcome === "not-running") return `${name} not running${damaged}`;
  const status = r.exit ? ` (exit ${r.exit.shellCode})` : "";
  const oom = r.oomKilled ? `; the OOM killer killed ${r.oomKilled} process(es) in it (its memory limit)` : "";
  // (the stop signal: SIGTERM, or the spec's stopSignal)
  const stop = signalName(r.stopSignal ?? 15);
  const sig = (s: "TERM" | "KILL") => s === "TERM" ? stop : "SIGKILL";
  const after = `${Math.round(r.timeoutMs / 100) / 10} s after its ${stop}`;
  const sent = r.sent.length ? `hako had sent ${r.sent.map(sig).join(" and ")}` : "before hako signalled it";
  switch (r.endedBy) {
    case "term":
      return `${name} terminated by hako's ${stop}${status}${oom}`;
    case "kill":
      return `${name} killed by hako's SIGKILL${r.sent.includes("TERM") ? `, ${after}` : ""}${status}${oom}`;
    case "exit":
      return `${name} exited with ${r.exit!.code}${
        r.sent.includes("TERM") ? ` on hako's ${stop}` : r.sent.length ? "" : " before hako signalled it"
      }${oom}`;
    case "oom":
      return `${name} oom-killed: its memory limit killed it (${r.oomKilled} OOM kill(s)), not hako's signal (${sent})${status}`;
    case "other":
      return `${name} killed by ${signalName(r.signal ?? 0)}, not by hako (${sent})${status}${oom}`;
    default: {
      const last = r.sent.at(-1);
      const why = r.damaged
        ? `its record is damaged: ${r.damaged}`
        : r.exit === undefined
        ? "its supervisor has not recorded it yet: see 'hako ps'"
        : "no supervisor saw it end";
      return `${name} ${last ? `ended after hako's ${sig(last)}` : "ended before hako signalled it"}; ` +
        `its exit status is unknown (${why})${oom}`;
    }
  }
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
      h.stdout(`${stopLine(name, await stopContainer(name, { timeoutMs: a.timeoutMs }))}\n`);
    } catch (e) {
      code = 1;
      h.stderr(`hako stop: ${(e as Error).message}\n`);
    }
  }));
  return code;
}
