/**
 * `hako supervisor`: the host's one supervisor of daemonized containers (see
 * `src/supervisor/supervisor.ts`). `hako start` starts it when none runs; run it by hand to keep
 * it in the foreground (e.g. under systemd).
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako supervisor [--log FILE] [--idle SECONDS]

Runs the supervisor of daemonized containers: it listens on <state dir>/supervisor.sock, creates
the containers 'hako start' asks for, reaps them, records their exit status, keeps their log
relays running, and exits when it has had no container and no client for a while. 'hako start'
starts it on demand; only one runs per state directory (a second one exits at once). Killing it
does not stop the containers (nor their logs): 'hako ps', 'kill', 'stop' and 'delete' work from
the state on disk, and the next supervisor adopts the containers still running.

Options:
      --log <file>      Append messages to <file> (and leave the terminal); cut to <file>.1 past
                        HAKO_LOG_MAX bytes
      --idle <seconds>  Exit after this long idle (default 60, or HAKO_SUPERVISOR_IDLE_S; 0: never)
  -h, --help            Show this help

Environment: HAKO_STATE_DIR (default /run/hako), HAKO_LOG_MAX (a container's log is cut to log.1
past this many bytes, whatever the rate it writes at; default 1048576, at least 4096),
HAKO_LOG_RELAY=0 (no log relay: containers append to their log themselves, capped only every
second, without timestamps; the default where hako has no relay, i.e. not x86-64).
`;

/** Parses `hako supervisor`'s arguments (pure). @throws {UsageError} For a bad option or operand. */
export function parseSupervisorArgs(argv: readonly string[]): { help: boolean; log?: string; idleMs?: number } {
  const { values, positionals } = parseArgs(argv, {
    log: { type: "string" },
    idle: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true };
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${quoted(positionals[0]!)}`);
  const idle = stringOption(values, "idle");
  // (at most what a timer takes: 2^31-1 ms, some 24 days; a longer one would fire at once)
  if (idle !== undefined && (!/^\d{1,7}(\.\d+)?$/.test(idle) || Number(idle) * 1000 > 2 ** 31 - 1)) {
    throw new UsageError(`--idle wants seconds (at most 2147483), not ${quoted(idle)}`);
  }
  const log = stringOption(values, "log");
  return {
    help: false,
    ...(log !== undefined ? { log: nonEmpty(log, "--log") } : {}),
    ...(idle !== undefined ? { idleMs: Math.round(Number(idle) * 1000) } : {}),
  };
}

/** Runs `hako supervisor`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseSupervisorArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  const { detachInto } = await import("../supervisor/daemon.ts");
  if (a.log) detachInto(a.log);
  // Nothing a client sends should throw where no one catches it; if something does, it is logged
  // and the supervisor goes on serving (its containers would outlive it, but not their reaping).
  const h2 = host();
  h2.normalJit(); // (it runs long: the binary's raised JIT thresholds are for one-off commands)
  h2.onUncaught((e) => h2.stderr(`${new Date().toISOString()} uncaught (going on): ${(e as Error)?.stack ?? e}\n`));
  const { runSupervisor } = await import("../supervisor/supervisor.ts");
  return await runSupervisor({
    ...(a.idleMs !== undefined ? { idleMs: a.idleMs } : {}),
    ...(a.log ? { logFile: a.log } : {}),
  });
}
