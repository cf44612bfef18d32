/**
 * `hako top NAME [ps OPTIONS]`: a running container's processes, as the host's `ps` shows them
 * (host pids), docker's way: `ps` runs with the options given (default `-ef`) and only the lines
 * whose PID is one of the container's are kept (moby's daemon/top_unix.go does the same).
 * @module
 */
import { nonEmpty, shownArg, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako top <name> [ps options]

Shows the processes of a running container with the host's ps (default options: -ef), as docker
top: ps's header, then its lines for the container's processes (those in its cgroup, or its init
and its descendants when it has none). The pids are the host's.

Options:
  -h, --help   Show this help (only as the first argument: after the name, options are ps's)

Exit status: 0; 1 when the container is unknown or not running, or ps fails or prints no PID column.
`;

/** Parses `hako top`'s arguments (pure). @throws {UsageError} For no name. */
export function parseTopArgs(argv: readonly string[]): { help: boolean; name?: string; psArgs: readonly string[] } {
  const [first, ...rest] = argv;
  if (first === "-h" || first === "--help") return { help: true, psArgs: [] };
  if (first === undefined) throw new UsageError("a container name is required");
  if (first.startsWith("-")) {
    throw new UsageError(`unknown option ${shownArg(first)} (the container's name comes first, then ps's options)`);
  }
  return { help: false, name: nonEmpty(first, "the container name"), psArgs: rest.length ? rest : ["-ef"] };
}

/**
 * Keeps the header and the lines of `ps` output whose PID column is one of `pids` (pure).
 * @returns The lines, or undefined when the header has no PID column.
 */
export function filterPs(output: string, pids: ReadonlySet<number>): string | undefined {
  const lines = output.split("\n").filter((l) => l !== "");
  const header = lines[0];
  if (header === undefined) return undefined;
  const column = header.trim().split(/\s+/).indexOf("PID");
  if (column < 0) return undefined;
  const kept = lines.slice(1).filter((l) => pids.has(Number(l.trim().split(/\s+/)[column])));
  return [header, ...kept].join("\n") + "\n";
}

/** Runs `hako top`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseTopArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore, isRunning, ContainerStateError } = await import("../container/state.ts");
  const { containerCgroupDirs, containerPids } = await import("./_cgroup_stats.ts");
  const { spawnSync } = await import("node:child_process");
  const store = new StateStore();
  const name = a.name!;
  const r = store.tryRead(name);
  if (!r) {
    throw new ContainerStateError(
      store.inspect(name).kind === "none" ? `no such container: ${name}` : `${name}'s record is damaged: see 'hako ps'`,
    );
  }
  if (r.state !== "running" || !isRunning(r.init)) throw new ContainerStateError(`container ${name} is not running`);
  const pids = new Set(containerPids(r.init!.pid, containerCgroupDirs(r.init!.pid, r.cgroup)));
  const ps = spawnSync("ps", [...a.psArgs], { encoding: "utf8" });
  if (ps.error || ps.status !== 0) {
    h.stderr(`hako top: ps ${a.psArgs.join(" ")} failed: ${ps.error?.message ?? ps.stderr.trim()}\n`);
    return 1;
  }
  const out = filterPs(ps.stdout, pids);
  if (out === undefined) {
    h.stderr(`hako top: ps ${a.psArgs.join(" ")} printed no PID column (hako finds the container's lines by it)\n`);
    return 1;
  }
  h.stdout(out);
  return 0;
}
