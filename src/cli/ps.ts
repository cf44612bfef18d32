/**
 * `hako ps`: the containers on this host, from their state on disk, with live figures.
 * @module
 */
import { parseArgs, quoted, UsageError } from "./_args.ts";
import { bytes, duration, table } from "./_format.ts";
import { type Host, host } from "../runner/_host.ts";
import { resolveStateDir } from "../container/_state_dir.ts";
import type { ContainerInfo } from "../container/lifecycle.ts";

/** The help text. */
export const usage = `Usage: hako ps [--json] [-q]

Lists the containers hako knows on this host (daemonized ones, and foreground ones while they
run): name, state, init pid, uptime, average CPU use, memory, process count and image. It reads the
state under HAKO_STATE_DIR (default /run/hako), so it works without the supervisor.

States: creating, running, exited (with its exit status; "?" when nobody could see it end), dead
(recorded as running or creating, but the process is gone: 'hako gc' cleans up), and unknown
(its record is damaged: what is wrong with it is shown, with what the kernel still says — its
cgroup, hako/NAME unless the record still names another, and the processes in it; 'hako stop',
'kill', 'logs' and 'delete' work on it). The state also says "oom-killed: N" when the OOM killer
killed N processes in the container (its memory limit), and "pids limit reached: N" when its pids
limit refused N forks. PIDS counts what the pids limit counts (threads and zombies included).

Options:
      --json    Print a JSON array (all fields; sizes in bytes, times in seconds)
  -q, --quiet   Print only the names
  -h, --help    Show this help
`;

/** Parses `hako ps`'s arguments (pure). @throws {UsageError} For a bad option or operand. */
export function parsePsArgs(argv: readonly string[]): { help: boolean; json: boolean; quiet: boolean } {
  const { values, positionals } = parseArgs(argv, {
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
  });
  if (positionals.length > 0 && !values.help) throw new UsageError(`unexpected argument ${quoted(positionals[0]!)}`);
  return { help: values.help === true, json: values.json === true, quiet: values.quiet === true };
}

/**
 * The state column (pure): `running`, `exited (0)`, `exited (?)`, `exited (137, oom-killed: 1)`,
 * `running (pids limit reached: 12)`, `unknown (damaged record: state.json is empty)`…
 */
export function stateText(c: ContainerInfo): string {
  const notes: string[] = [];
  if (c.state === "exited") notes.push(c.exit ? String(c.exit.shellCode) : "?");
  if (c.state === "unknown" && c.damaged) notes.push(`damaged record: ${c.damaged}`);
  if (c.oomKilled) notes.push(`oom-killed: ${c.oomKilled}`);
  if (c.failedForks) notes.push(`pids limit reached: ${c.failedForks}`);
  return notes.length ? `${c.state} (${notes.join(", ")})` : c.state;
}

/** The table `hako ps` prints (pure). */
export function psTable(list: readonly ContainerInfo[]): string {
  return table(
    ["NAME", "STATE", "PID", "UPTIME", "CPU%", "MEM", "PIDS", "IMAGE"],
    list.map((c) => [
      c.name,
      stateText(c),
      c.pid === null ? "-" : String(c.pid),
      duration(c.uptimeSeconds),
      c.cpuPercent === null ? "-" : c.cpuPercent.toFixed(1),
      bytes(c.memoryBytes),
      c.pids === null ? "-" : String(c.pids),
      c.image,
    ]),
  );
}

/** Runs `hako ps`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parsePsArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  // No container directory: nothing to list, and no need to load lifecycle.ts (cgroups, FFI, node:).
  const list = hasContainers(h) ? (await import("../container/lifecycle.ts")).listContainers() : [];
  if (a.json) h.stdout(JSON.stringify(list, null, 2) + "\n");
  else if (a.quiet) h.stdout(list.map((c) => `${c.name}\n`).join(""));
  else h.stdout(psTable(list));
  return 0;
}

/**
 * False when the state directory has no container directory (as `StateStore.names()` sees it: a
 * missing or unreadable directory holds none, dot-names are not containers).
 */
function hasContainers(h: Host): boolean {
  try {
    const dir = resolveStateDir(h.env("HAKO_STATE_DIR"), { euid: h.uid(), env: h.env, lstat: (p) => h.lstat(p) });
    return h.readDir(`${dir}/containers`)
      .some((n) => !n.startsWith("."));
  } catch {
    return false;
  }
}
