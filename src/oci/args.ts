/**
 * The runc command line, parsed (pure): the global options before the command (`--root`, `--log`,
 * `--log-format`, `--debug`, `--systemd-cgroup`…), then the command, its options and operands.
 * As runc's parser (urfave/cli) does: `-name` and `--name` are the same, `--name=value` and
 * `--name value` both work, and options may come after the operands (`kill ID SIG --all` is not
 * runc's habit, but `create --bundle B ID` and `create ID --bundle B` both are).
 * @module
 */

/** A runc command line that cannot be accepted; the runtime exits 1 with it (as runc does). */
export class OciUsageError extends Error {
  /** @param message What is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "OciUsageError";
  }
}

/** An option's type: a flag, or one that takes a value (`multiple`: kept in order). */
type Kind = "boolean" | "string" | "multiple";

/** The global options, as runc names them. */
const GLOBAL: Readonly<Record<string, Kind>> = {
  root: "string",
  log: "string",
  "log-format": "string",
  debug: "boolean",
  "systemd-cgroup": "boolean",
  criu: "string",
  rootless: "string",
  help: "boolean",
  h: "boolean",
  version: "boolean",
  v: "boolean",
};

/** Each command's options (runc's names; those hako refuses are parsed, then refused by name). */
export const COMMAND_OPTIONS: Readonly<Record<string, Readonly<Record<string, Kind>>>> = {
  create: {
    bundle: "string",
    b: "string",
    "console-socket": "string",
    "pid-file": "string",
    "no-pivot": "boolean",
    "no-new-keyring": "boolean",
    "preserve-fds": "string",
    "pidfd-socket": "string",
  },
  run: {
    bundle: "string",
    b: "string",
    "console-socket": "string",
    "pid-file": "string",
    detach: "boolean",
    d: "boolean",
    "no-pivot": "boolean",
    "no-new-keyring": "boolean",
    "preserve-fds": "string",
    "pidfd-socket": "string",
    "keep": "boolean",
  },
  start: {},
  state: {},
  kill: { all: "boolean", a: "boolean" },
  pause: {},
  resume: {},
  update: {
    resources: "string",
    r: "string",
    memory: "string",
    "memory-swap": "string",
    "memory-reservation": "string",
    "kernel-memory": "string",
    "kernel-memory-tcp": "string",
    "cpu-quota": "string",
    "cpu-period": "string",
    "cpu-burst": "string",
    "cpu-idle": "string",
    "cpu-share": "string",
    "cpu-rt-period": "string",
    "cpu-rt-runtime": "string",
    "cpuset-cpus": "string",
    "cpuset-mems": "string",
    "pids-limit": "string",
    "blkio-weight": "string",
    "l3-cache-schema": "string",
    "mem-bw-schema": "string",
  },
  delete: { force: "boolean", f: "boolean" },
  list: { format: "string", f: "string", quiet: "boolean", q: "boolean" },
  ps: { format: "string", f: "string" },
  spec: { bundle: "string", b: "string", rootless: "boolean" },
  features: {},
  exec: {
    "console-socket": "string",
    cwd: "string",
    env: "multiple",
    e: "multiple",
    tty: "boolean",
    t: "boolean",
    user: "string",
    u: "string",
    "additional-gids": "multiple",
    g: "multiple",
    process: "string",
    p: "string",
    detach: "boolean",
    d: "boolean",
    "pid-file": "string",
    "process-label": "string",
    apparmor: "string",
    "no-new-privs": "boolean",
    cap: "multiple",
    c: "multiple",
    "preserve-fds": "string",
    "pidfd-socket": "string",
    cgroup: "multiple",
    "ignore-paused": "boolean",
    "no-new-keyring": "boolean",
  },
};

/** The parsed command line. */
export interface OciArgs {
  /** Global options by name (`--root` → `root`). */
  readonly global: Readonly<Record<string, string | boolean>>;
  /** The command (`create`, `state`…), or undefined for none. */
  readonly command: string | undefined;
  /** The command's options. */
  readonly options: Readonly<Record<string, string | boolean | readonly string[]>>;
  /** The command's operands. */
  readonly operands: readonly string[];
}

/** Parses options from `argv` at `i` per `table` until the first operand (or all, with `all`). */
function parseOptions(
  argv: readonly string[],
  table: Readonly<Record<string, Kind>>,
  stopAtOperand: boolean,
  where: string,
): { values: Record<string, string | boolean | string[]>; rest: string[]; operands: string[] } {
  const values: Record<string, string | boolean | string[]> = Object.create(null);
  const operands: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      operands.push(...argv.slice(i + 1));
      i = argv.length;
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      if (stopAtOperand) break;
      operands.push(a);
      // (exec's command and its own options: everything after the container id's operand… kept)
      if (where === "exec" && operands.length >= 1) {
        operands.push(...argv.slice(i + 1));
        i = argv.length;
        break;
      }
      continue;
    }
    const body = a.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const kind = Object.hasOwn(table, name) ? table[name] : undefined;
    if (!kind) {
      throw new OciUsageError(
        `unknown option --${name}${where ? ` of ${where}` : ""} (runc: flag provided but not defined: -${name})`,
      );
    }
    if (kind === "boolean") {
      values[name] = eq === -1 ? true : body.slice(eq + 1) !== "false";
      continue;
    }
    let value: string;
    if (eq !== -1) value = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new OciUsageError(`flag needs an argument: -${name}`);
      value = argv[++i]!;
    }
    if (kind === "multiple") ((values[name] ??= []) as string[]).push(value);
    else values[name] = value;
  }
  return { values, rest: argv.slice(i), operands };
}

/** One-letter aliases → long names, per command (`-f` is `--format` in list, `--force` in delete). */
const ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  create: { b: "bundle" },
  run: { b: "bundle", d: "detach" },
  kill: { a: "all" },
  delete: { f: "force" },
  update: { r: "resources" },
  list: { f: "format", q: "quiet" },
  ps: { f: "format" },
  spec: { b: "bundle" },
  exec: { e: "env", t: "tty", u: "user", g: "additional-gids", p: "process", d: "detach", c: "cap" },
};

/**
 * The global options alone (pure), for `--log` to hold even the errors of a command line that
 * cannot be parsed past them (an unknown command: the shim reads the log for its message).
 * @throws {OciUsageError} For an unknown global option or a missing value.
 */
export function parseOciGlobals(argv: readonly string[]): Readonly<Record<string, string | boolean>> {
  return parseOptions(argv, GLOBAL, true, "").values as Record<string, string | boolean>;
}

/**
 * The commands a shim calls several times per container, which src/oci/hot.ts runs with no `node:`
 * module (src/cli/main.ts sends them there before it loads anything else).
 */
export const HOT_COMMANDS: readonly string[] = ["state", "start", "kill", "delete"];

/**
 * The command of a runc command line: its first word after the global options (pure), or
 * undefined when there is none or the global options cannot be parsed.
 */
export function ociCommandOf(argv: readonly string[]): string | undefined {
  try {
    return parseOptions(argv, GLOBAL, true, "").rest[0];
  } catch {
    return undefined;
  }
}

/**
 * Parses a runc command line (pure).
 * @param argv The arguments after the program's name (`hako-runc …` or `hako oci …`).
 * @throws {OciUsageError} For an unknown option or a missing value.
 */
export function parseOciArgs(argv: readonly string[]): OciArgs {
  const g = parseOptions(argv, GLOBAL, true, "");
  const global: Record<string, string | boolean> = Object.create(null);
  for (const [k, v] of Object.entries(g.values)) global[k === "h" ? "help" : k === "v" ? "version" : k] = v as string;
  const [command, ...rest] = g.rest;
  if (command === undefined) return { global, command: undefined, options: {}, operands: [] };
  const table = COMMAND_OPTIONS[command];
  if (!table) throw new OciUsageError(`No help topic for '${command}'`);
  const c = parseOptions(rest, table, false, command);
  const options: Record<string, string | boolean | readonly string[]> = Object.create(null);
  for (const [k, v] of Object.entries(c.values)) {
    const long = ALIASES[command]?.[k] ?? k;
    const was = options[long];
    options[long] = Array.isArray(was) && Array.isArray(v) ? [...was, ...v] : v;
  }
  return { global, command, options, operands: c.operands };
}
