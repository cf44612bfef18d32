/**
 * `hako ps`: the containers on this host, from their state on disk, with live figures.
 * @module
 */
import { parseArgs, quoted, stringOption, stringsOption, UsageError } from "./_args.ts";
import { bytes, duration, formatRows, type OutputFormat, parseFormat, table } from "./_format.ts";
import { type Host, host } from "../runner/_host.ts";
// (from its own leaf module, not container/state.ts: that one imports node:fs, node:path and
// node:process, and under Deno the first node: import starts the Node compatibility layer)
import { resolveStateDir } from "../container/state_dir.ts";
import type { ContainerInfo } from "../container/lifecycle.ts";

/** The help text. */
export const usage = `Usage: hako ps [-a] [-q] [--filter KEY=VALUE]... [--format table|json|TEMPLATE | --json]

Lists the containers hako knows on this host (daemonized ones, and foreground ones while they
run): name, state, init pid, uptime, average CPU use, memory, process count and image. It reads the
state under HAKO_STATE_DIR (default /run/hako), so it works without the supervisor.

As docker's ps, it leaves out containers that have exited unless -a (or a status filter) asks for
them; containers being created, dead or unknown (below) are always listed: they need a look.

States: creating, running, exited (with its exit status; "?" when nobody could see it end), dead
(recorded as running or creating, but the process is gone: 'hako gc' cleans up), and unknown
(its record is damaged: what is wrong with it is shown, with what the kernel still says — its
cgroup, hako/NAME unless the record still names another, and the processes in it; 'hako stop',
'kill', 'logs' and 'delete' work on it). The state also says "oom-killed: N" when the OOM killer
killed N processes in the container (its memory limit), and "pids limit reached: N" when its pids
limit refused N forks. PIDS counts what the pids limit counts (threads and zombies included).

Filters (docker's; the same key again: any of them, different keys: all of them):
  name=PART        Its name contains PART
  status=STATE     creating (also docker's created), running, exited, dead or unknown
  label=KEY[=V]    It has the label (hako run -d -l KEY=V)

Options:
  -a, --all               Also the containers that have exited
  -f, --filter <K=V>      Only those that match (again for more)
  -q, --quiet             Print only the names
      --format <F>        json: one JSON object a line (as docker's --format json), all
                          fields; sizes in bytes, times in seconds. Or a template printed per
                          container: '{{.Names}} {{.Status}}' (docker's Names, ID, Image,
                          State, Status, RunningFor, Pid, CPUPerc, MemUsage, PIDs, Labels,
                          and hako's fields: name, state, pid, cpuPercent, memoryBytes…);
                          'table {{.Names}}\\t{{.Status}}' adds headers
      --json              Print one JSON array of them
  -h, --help              Show this help
`;

/** One `--filter`. */
export interface PsFilter {
  readonly key: "name" | "status" | "label";
  readonly value: string;
}

/** What `hako ps` was asked to do. */
export interface PsArgs {
  readonly help: boolean;
  readonly json: boolean;
  readonly quiet: boolean;
  /** `-a`: exited containers too. */
  readonly all?: boolean;
  /** `--filter`s. */
  readonly filters?: readonly PsFilter[];
  /** `--format json`: JSON lines. */
  readonly jsonLines?: boolean;
  /** `--format TEMPLATE`. */
  readonly template?: OutputFormat;
}

const STATES = ["creating", "running", "exited", "dead", "unknown"];

/** Parses `hako ps`'s arguments (pure). @throws {UsageError} For a bad option or operand. */
export function parsePsArgs(argv: readonly string[]): PsArgs {
  const { values, positionals } = parseArgs(argv, {
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    all: { type: "boolean", short: "a" },
    filter: { type: "string", short: "f", multiple: true },
    format: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (positionals.length > 0 && !values.help) throw new UsageError(`unexpected argument ${quoted(positionals[0]!)}`);
  const filters = stringsOption(values, "filter").map((f): PsFilter => {
    const i = f.indexOf("=");
    const key = f.slice(0, i), value = f.slice(i + 1);
    if (i <= 0 || (key !== "name" && key !== "status" && key !== "label")) {
      throw new UsageError(`--filter wants name=…, status=… or label=…, not ${quoted(f)}`);
    }
    if (key === "status") {
      const v = value === "created" ? "creating" : value;
      if (!STATES.includes(v)) {
        throw new UsageError(`--filter status= takes ${STATES.join(", ")}, not ${quoted(value)}`);
      }
      return { key, value: v };
    }
    if (value === "") throw new UsageError(`--filter ${key}= wants a value`);
    return { key, value };
  });
  const format = stringOption(values, "format");
  const parsed = parseFormat(format);
  if (format !== undefined && values.json) throw new UsageError("give --json or --format, not both");
  return {
    help: values.help === true,
    json: values.json === true,
    quiet: values.quiet === true,
    ...(values.all ? { all: true } : {}),
    ...(filters.length ? { filters } : {}),
    ...(format === "json" ? { jsonLines: true } : {}),
    ...(parsed.kind === "template" ? { template: parsed } : {}),
  };
}

/**
 * The containers `hako ps` lists (pure): without `all` or a status filter, not those that have
 * exited (docker's default); then those every filter key matches (any of a key's values).
 * @param list Every container.
 * @param a The command line.
 * @param labelsOf A container's labels.
 */
export function selectContainers(
  list: readonly ContainerInfo[],
  a: Pick<PsArgs, "all" | "filters">,
  labelsOf: (name: string) => Readonly<Record<string, string>> = () => ({}),
): ContainerInfo[] {
  const filters = a.filters ?? [];
  const byKey = (key: PsFilter["key"]) => filters.filter((f) => f.key === key).map((f) => f.value);
  const names = byKey("name"), states = byKey("status"), labels = byKey("label");
  return list.filter((c) => {
    if (!a.all && states.length === 0 && c.state === "exited") return false;
    if (names.length && !names.some((n) => c.name.includes(n))) return false;
    if (states.length && !states.includes(c.state)) return false;
    if (labels.length) {
      const own = labelsOf(c.name);
      const has = (l: string) => {
        const i = l.indexOf("=");
        const k = i < 0 ? l : l.slice(0, i);
        return Object.hasOwn(own, k) && (i < 0 || own[k] === l.slice(i + 1));
      };
      if (!labels.some(has)) return false;
    }
    return true;
  });
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
  if (c.restartAt) notes.push("restarting");
  if (c.restartCount) notes.push(`restarts: ${c.restartCount}`);
  return notes.length ? `${c.state} (${notes.join(", ")})` : c.state;
}

/** The table `hako ps` prints (pure). */
export function psTable(list: readonly ContainerInfo[], ports: (name: string) => string = () => ""): string {
  // PORTS (docker's 0.0.0.0:32768->80/tcp) only when a container listed publishes some.
  const cells = list.map((c) => ports(c.name));
  const withPorts = cells.some((p) => p !== "");
  return table(
    ["NAME", "STATE", "PID", "UPTIME", "CPU%", "MEM", "PIDS", "IMAGE", ...(withPorts ? ["PORTS"] : [])],
    list.map((c, i) => [
      c.name,
      stateText(c),
      c.pid === null ? "-" : String(c.pid),
      duration(c.uptimeSeconds),
      c.cpuPercent === null ? "-" : c.cpuPercent.toFixed(1),
      bytes(c.memoryBytes),
      c.pids === null ? "-" : String(c.pids),
      c.image,
      ...(withPorts ? [cells[i]!] : []),
    ]),
  );
}

/** docker ps's headers, by field. */
const PS_HEADERS: Readonly<Record<string, string>> = {
  Names: "NAMES",
  ID: "CONTAINER ID",
  RunningFor: "CREATED",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE",
};

/** A container as `--format TEMPLATE` sees it (pure): docker ps's fields, then hako's own. */
export function psRow(
  c: ContainerInfo,
  labels: Readonly<Record<string, string>> = {},
  ports = "",
): Record<string, unknown> {
  return {
    ...c,
    Names: c.name,
    ID: c.name,
    Image: c.image,
    State: c.state === "creating" ? "created" : c.state,
    Status: stateText(c),
    RunningFor: duration(c.uptimeSeconds),
    CreatedAt: c.createdAt ?? "",
    Pid: c.pid ?? 0,
    CPUPerc: c.cpuPercent === null ? "--" : `${c.cpuPercent.toFixed(2)}%`,
    MemUsage: bytes(c.memoryBytes),
    PIDs: c.pids === null ? "--" : String(c.pids),
    Labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","),
    Ports: ports,
  };
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
  const listed = hasContainers(h) ? (await import("../container/lifecycle.ts")).listContainers() : [];
  // (a container on an image of the store: the image's name, not its writable layer's directory)
  const images = listed.length ? await dockerReader() : undefined;
  const all = listed.map((c) => {
    const image = images?.(c.name).image;
    return typeof image === "string" ? { ...c, image } : c;
  });
  const list = selectContainers(all, a, a.filters?.some((f) => f.key === "label") ? await labelReader() : undefined);
  if (a.json) h.stdout(JSON.stringify(list, null, 2) + "\n");
  else if (a.jsonLines) h.stdout(list.map((c) => `${JSON.stringify(c)}\n`).join(""));
  else if (a.template) {
    const labels = await labelReader();
    const ports = await portsReader(list);
    h.stdout(formatRows(a.template, list.map((c) => psRow(c, labels(c.name), ports(c.name))), PS_HEADERS));
  } else if (a.quiet) h.stdout(list.map((c) => `${c.name}\n`).join(""));
  else h.stdout(psTable(list, await portsReader(list)));
  return 0;
}

/** Reads what `hako run -d` recorded of docker's flags (labels, image) from a container's state directory. */
async function dockerReader(): Promise<(name: string) => Readonly<Record<string, unknown>>> {
  const { StateStore } = await import("../container/state.ts");
  const { DOCKER_FILE } = await import("../supervisor/protocol.ts");
  const { readFileSync } = await import("node:fs");
  const store = new StateStore();
  return (name) => {
    try {
      const r = JSON.parse(readFileSync(`${store.dir(name)}/${DOCKER_FILE}`, "utf8"));
      return r !== null && typeof r === "object" && !Array.isArray(r) ? r : {};
    } catch {
      return {};
    }
  };
}

/** A running container's published ports as docker ps's PORTS shows them (none read when none runs). */
async function portsReader(list: readonly ContainerInfo[]): Promise<(name: string) => string> {
  if (!list.some((c) => c.state === "running")) return () => "";
  const { StateStore } = await import("../container/state.ts");
  const { readPublishedPorts } = await import("../container/ports.ts");
  const { portsCell } = await import("./_publish.ts");
  const store = new StateStore();
  const running = new Set(list.filter((c) => c.state === "running").map((c) => c.name));
  return (name) => (running.has(name) ? portsCell(readPublishedPorts(store.dir(name))) : "");
}

/** Reads a container's labels (`hako run -d -l`) from its state directory. */
async function labelReader(): Promise<(name: string) => Readonly<Record<string, string>>> {
  const read = await dockerReader();
  return (name) => {
    const labels = read(name).labels;
    return labels !== null && typeof labels === "object" ? labels as Record<string, string> : {};
  };
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
