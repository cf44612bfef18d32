/**
 * `hako stats [NAME…]`: docker's live table of containers' resource use, read from their cgroups
 * (v1 or v2) and /proc.
 * @module
 */
import { nonEmpty, parseArgs, stringOption } from "./_args.ts";
import { binarySize, decimalSize, formatRows, type OutputFormat, parseFormat, table } from "./_format.ts";
import { host } from "../runner/_host.ts";
import type { StatsSample } from "./_cgroup_stats.ts";

/** The help text. */
export const usage = `Usage: hako stats [-a] [--no-stream] [--format table|json|TEMPLATE] [name...]

Shows containers' resource use as docker stats does, refreshed every second until Ctrl-C (on a
terminal the screen is redrawn; through a pipe each table follows the last): CPU % (of one CPU:
up to N×100% on N CPUs, over the last second), MEM USAGE / LIMIT (its memory less the inactive page
cache, as docker counts it; the limit is the host's memory when it has none), MEM %, NET I/O
(received / sent on its own interfaces, "--" when it shares the host's network), BLOCK I/O (read /
written) and PIDS (what its pids limit counts). Read from each container's cgroup, v1 or v2.
Without names: the running containers (with -a: all of them), the list renewed at each refresh.

Options:
  -a, --all            Every container, not only the running ones
      --no-stream      Print one table (taken over one second) and end
      --format <F>     table, json (one JSON object a line, docker's fields: Name, CPUPerc,
                       MemUsage, MemPerc, NetIO, BlockIO, PIDs), or a template: '{{.Name}} {{.CPUPerc}}'
                       ('table {{.Name}}\\t{{.MemUsage}}' adds headers)
      --no-trunc       Accepted for docker's sake (hako never cuts a name)
  -h, --help           Show this help
`;

/** What `hako stats` was asked to do. */
export interface StatsArgs {
  readonly help: boolean;
  readonly names: readonly string[];
  readonly all: boolean;
  readonly stream: boolean;
  readonly format: OutputFormat;
}

/** Parses `hako stats`'s arguments (pure). @throws {UsageError} For a bad option or format. */
export function parseStatsArgs(argv: readonly string[]): StatsArgs {
  const { values, positionals } = parseArgs(argv, {
    all: { type: "boolean", short: "a" },
    "no-stream": { type: "boolean" },
    "no-trunc": { type: "boolean" },
    format: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  for (const n of positionals) nonEmpty(n, "a container name");
  return {
    help: values.help === true,
    names: [...positionals],
    all: values.all === true,
    stream: values["no-stream"] !== true,
    format: parseFormat(stringOption(values, "format")),
  };
}

/** One row of `docker stats`, with docker's field names (its `--format json` keys). */
export interface StatsRow {
  readonly Name: string;
  readonly Container: string;
  readonly ID: string;
  readonly CPUPerc: string;
  readonly MemUsage: string;
  readonly MemPerc: string;
  readonly NetIO: string;
  readonly BlockIO: string;
  readonly PIDs: string;
}

/** The headers of docker's stats table, by field. */
export const STATS_HEADERS: Readonly<Record<string, string>> = {
  Name: "NAME",
  Container: "CONTAINER",
  ID: "CONTAINER ID",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

/**
 * A row from a container's last two samples (pure); a container that does not run (no sample)
 * gets docker's zeros and "--".
 */
export function statsRow(
  name: string,
  prev: StatsSample | undefined,
  cur: StatsSample | undefined,
  cpu: (p: StatsSample | undefined, c: StatsSample) => number | null,
): StatsRow {
  const pct = (n: number | null) => (n === null ? "--" : `${n.toFixed(2)}%`);
  const pair = (a: number | null | undefined, b: number | null | undefined, f: (n: number) => string) =>
    a === null || a === undefined || b === null || b === undefined ? "--" : `${f(a)} / ${f(b)}`;
  if (!cur) {
    return {
      Name: name,
      Container: name,
      ID: name,
      CPUPerc: "0.00%",
      MemUsage: "0B / 0B",
      MemPerc: "0.00%",
      NetIO: "0B / 0B",
      BlockIO: "0B / 0B",
      PIDs: "0",
    };
  }
  const memPerc = cur.memory !== null && cur.memoryLimit ? (cur.memory / cur.memoryLimit) * 100 : null;
  return {
    Name: name,
    Container: name,
    ID: name,
    CPUPerc: pct(cpu(prev, cur)),
    MemUsage: pair(cur.memory, cur.memoryLimit, binarySize),
    MemPerc: pct(memPerc),
    NetIO: pair(cur.netRx, cur.netTx, decimalSize),
    BlockIO: pair(cur.blockRead, cur.blockWrite, decimalSize),
    PIDs: cur.pids === null ? "--" : String(cur.pids),
  };
}

/** docker's stats table (pure). */
export function statsTable(rows: readonly StatsRow[]): string {
  const fields = ["Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs"] as const;
  return table(fields.map((f) => STATS_HEADERS[f]!), rows.map((r) => fields.map((f) => r[f])));
}

/** Runs `hako stats`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseStatsArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { StateStore, isRunning, ContainerStateError } = await import("../container/state.ts");
  const { containerCgroupDirs, sampleContainer, cpuPercent } = await import("./_cgroup_stats.ts");
  const { isatty } = await import("node:tty");
  const store = new StateStore();
  for (const n of a.names) {
    if (store.inspect(n).kind === "none") throw new ContainerStateError(`no such container: ${n}`);
  }
  /** The containers to show now, each with its init's pid and cgroup while it runs. */
  const targets = () => {
    const names = a.names.length ? a.names : store.names();
    return names.flatMap((name) => {
      const r = store.tryRead(name);
      const running = r?.state === "running" && isRunning(r.init);
      if (!running && !a.all && a.names.length === 0) return [];
      return [{ name, init: running ? r!.init!.pid : undefined, cgroup: r?.cgroup }];
    });
  };
  let prev = new Map<string, StatsSample>();
  const sampleAll = () => {
    const now = new Map<string, StatsSample>();
    const list = targets();
    for (const t of list) {
      if (t.init === undefined) continue;
      try {
        now.set(t.name, sampleContainer(t.init, containerCgroupDirs(t.init, t.cgroup)));
      } catch { /* it ended meanwhile */ }
    }
    return { list, now };
  };
  const print = (list: ReturnType<typeof targets>, now: Map<string, StatsSample>, clear: boolean) => {
    const rows = list.map((t) => statsRow(t.name, prev.get(t.name), now.get(t.name), cpuPercent));
    const out = a.format.kind === "table" ? statsTable(rows) : formatRows(a.format, rows, STATS_HEADERS);
    // docker redraws the screen; through a pipe hako appends each table instead.
    h.stdout((clear ? "\x1b[2J\x1b[H" : "") + out);
  };
  const tick = () => new Promise((res) => setTimeout(res, 1000));
  prev = sampleAll().now;
  const terminal = isatty(1);
  for (;;) {
    await tick();
    const { list, now } = sampleAll();
    print(list, now, a.stream && terminal);
    if (!a.stream) return 0;
    prev = now;
  }
}
