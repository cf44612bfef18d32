/**
 * The table of hako's commands and the pure part of dispatching to them.
 *
 * Each command is one file in `src/cli/` that exports `usage` (its help text) and
 * `main(argv)`, with a pure, unit-tested parser beside them. The table names each file in a
 * string-literal `import()`: a command's code (and what it imports) loads only when it runs, and
 * `deno compile` and `bun build --compile` still see and embed every command. (Deno would also
 * fetch and parse every literal `import()` before running anything — every command's modules and
 * their npm packages — unless run with `--unstable-lazy-dynamic-imports`, as `bin/hako` does; Bun's
 * build puts each command in its own chunk with `--splitting`, see `tools/build.sh`.) To add a
 * command, add its file and one line here.
 *
 * @module
 */
import { parseOciArgs } from "../oci/args.ts";

/** What a command file exports. */
export interface CommandModule {
  /** The command's help text (`hako help NAME`, `hako NAME --help`). */
  readonly usage: string;
  /**
   * Runs the command.
   * @param argv The arguments after the command's name.
   * @returns The exit code, or undefined to let the process end when its work is done.
   * @throws {UsageError} For a bad command line (exit 2).
   */
  main(argv: readonly string[]): Promise<number | undefined>;
}

/** A command in the table. */
export interface CommandEntry {
  /** One line for `hako help`. */
  readonly summary: string;
  /** Loads the command's file. */
  readonly load: () => Promise<CommandModule>;
  /**
   * True when the command may fork this process with JavaScript still to run in the child (a
   * script, a container's setup, the supervisor): only these need the engine single-threaded, which
   * under Bun costs a re-exec at start (see `Host.ensureSingleThreaded`). The others start faster.
   * A function decides from the command's arguments (pure): `oci state` forks nothing, `oci create`
   * may.
   */
  readonly forks?: boolean | ((argv: readonly string[]) => boolean);
}

/** hako's commands, in the order `hako help` lists them. */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  run: {
    summary: "Run a TypeScript script with hako's API as globals, or a container (docker's run flags)",
    load: () => import("./run.ts"),
    // (decided later, before anything runs or is made: a script that uses hako's API when it is
    // loaded, a container whose child is forked when it starts — see run_script.ts's loadHako and
    // spec_module.ts's runForeground; a spec of plain data with a native child never re-executes)
    forks: false,
  },
  eval: {
    summary: "Run TypeScript code given on the command line (was run -e)",
    load: () => import("./eval.ts"),
    forks: true,
  },
  start: {
    summary: "Start containers in the background (one shared supervisor per host)",
    load: () => import("./start.ts"),
    // (the supervisor, a process of its own, forks the containers; a spec script that uses hako's
    // API re-executes before it runs: run_script.ts's loadHako)
    forks: false,
  },
  ps: { summary: "List containers: state, pid, uptime, CPU, memory, processes", load: () => import("./ps.ts") },
  logs: { summary: "Print a daemonized container's output", load: () => import("./logs.ts") },
  exec: {
    summary: "Run a command inside a running container",
    load: () => import("./exec.ts"),
    forks: false, // (decided once the container is known: see execByName)
  },
  attach: {
    summary: "Join a running daemonized container's stdio (docker attach; ctrl-p ctrl-q detaches)",
    load: () => import("./attach.ts"),
  },
  shell: { summary: "Open a new shell inside a running container", load: () => import("./shell.ts"), forks: true },
  kill: { summary: "Send a signal to a container", load: () => import("./kill.ts") },
  stop: { summary: "Stop containers: SIGTERM, then SIGKILL after a timeout", load: () => import("./stop.ts") },
  delete: {
    summary: "Delete containers: cgroup, veth, state, logs (and their extracted rootfs)",
    load: () => import("./delete.ts"),
  },
  rm: { summary: "Delete containers, as docker rm (-f: kill a running one first)", load: () => import("./rm.ts") },
  inspect: { summary: "Print containers' records as JSON, docker-like fields", load: () => import("./inspect.ts") },
  wait: { summary: "Wait until containers end; print their exit codes", load: () => import("./wait.ts") },
  update: {
    summary: "Change running containers' memory, CPU and pids limits, live",
    load: () => import("./update.ts"),
  },
  gc: { summary: "Remove what dead or half-made containers left behind", load: () => import("./gc.ts") },
  demo: {
    summary: "Build a tiny rootfs and run a container in it, showing each step",
    load: () => import("./demo.ts"),
    forks: true,
  },
  plan: {
    summary: "Print the steps and kernel calls a spec's container would make, touching nothing",
    load: () => import("./plan.ts"),
    forks: true,
  },
  supervisor: {
    summary: "Run the supervisor of daemonized containers (started on demand)",
    load: () => import("./supervisor.ts"),
    forks: true,
  },
  oci: {
    summary: "Run an OCI bundle with runc's command line (podman --runtime bin/hako-runc)",
    load: () => import("./oci.ts"),
    forks: ociForks,
  },
  image: {
    summary: "Images from docker save / OCI archives: import, load, ls, rm, inspect",
    load: () => import("./image.ts"),
  },
  images: { summary: "List images (as docker images)", load: () => import("./images.ts") },
  load: { summary: "Import an image archive from stdin (as docker load)", load: () => import("./load.ts") },
  rmi: { summary: "Remove images (as docker rmi)", load: () => import("./rmi.ts") },
  version: { summary: "Print hako's version and its runtime's", load: () => import("./version.ts") },
  stats: {
    summary: "Show containers' CPU, memory, network, block I/O and processes, live (docker stats)",
    load: () => import("./stats.ts"),
  },
  top: { summary: "Show a container's processes with the host's ps (docker top)", load: () => import("./top.ts") },
  new: {
    summary: "Write NAME.ts, a commented container spec that 'hako run NAME.ts' runs as written",
    load: () => import("./new.ts"),
  },
  archive: {
    summary: "Write a container's rootfs as a tarball, owners shifted back from its user namespace",
    load: () => import("./archive.ts"),
  },
  completion: {
    summary: "Print a bash, zsh or fish completion script for hako",
    load: () => import("./completion.ts"),
  },
  restart: {
    summary: "Stop daemonized containers and start them again with the same spec",
    load: () => import("./restart.ts"),
  },
  port: {
    summary: "List a container's published ports (hako run -d -p/-P), as docker port",
    load: () => import("./port.ts"),
  },
  help: { summary: "Show help for hako or one of its commands", load: () => import("./help.ts") },
};

/**
 * The `hako oci` commands that never fork JavaScript. `create`, `run` and `exec` set a container up,
 * which forks the runtime where the native child cannot do a step; these, which a shim calls several
 * times per container, only read and signal, so they start without the re-exec (see bench/oci.ts).
 * A command not listed (a new one) is taken to fork.
 */
const OCI_NO_FORK: ReadonlySet<string | undefined> = new Set([
  undefined, // (--version, --help, or nothing)
  "state",
  "start",
  "kill",
  "delete",
  "list",
  "ps",
  "spec",
  "features",
  // (the freezer and the cgroup's files: written, nothing forked; start's and delete's OCI hooks
  // are programs spawned, not forks of the runtime)
  "pause",
  "resume",
  "update",
  // (create and run fork JavaScript only for a bundle the native child cannot set up, or with
  // HAKO_NATIVE_SPAWN=0: they read the bundle's config.json first and re-execute themselves then,
  // before touching anything — see `needsJsChild` in src/oci/runtime.ts; a plain bundle, the
  // common case, starts without the re-exec)
  "create",
  "run",
  // (exec likewise, once it has the container's spec: src/oci/runtime.ts's exec, execForksJs)
  "exec",
]);

/**
 * True when `hako oci ARGV` may fork JavaScript (pure): see {@link OCI_NO_FORK}. A command line
 * that does not parse forks nothing: it fails before doing anything.
 * @param argv The arguments after `oci` (or `hako-runc`).
 */
export function ociForks(argv: readonly string[]): boolean {
  let command: string | undefined;
  try {
    command = parseOciArgs(argv).command;
  } catch {
    return false;
  }
  return !OCI_NO_FORK.has(command);
}

/** What the command line asks for. */
export type Dispatch =
  | { readonly kind: "command"; readonly name: string; readonly argv: readonly string[] }
  | {
    readonly kind: "error";
    readonly message: string;
    /** The command a mistyped one most likely meant (then the message says so, and the usage is left out). */
    readonly suggestion?: string;
  };

/**
 * Picks the command (pure). `--help`/`-h` and `--version`/`-V` before any command stand for
 * `help` and `version`.
 * @param argv The arguments after `hako`.
 */
export function dispatch(argv: readonly string[]): Dispatch {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: "error", message: "no command given" };
  if (first === "--help" || first === "-h") return { kind: "command", name: "help", argv: rest };
  if (first === "--version" || first === "-V") return { kind: "command", name: "version", argv: rest };
  if (first.startsWith("-")) return { kind: "error", message: `unknown option ${first}` };
  if (!Object.hasOwn(COMMANDS, first)) {
    const near = suggestCommand(first);
    if (near === undefined) return { kind: "error", message: `unknown command "${first}"` };
    return { kind: "error", message: `unknown command "${first}" (did you mean "${near}"?)`, suggestion: near };
  }
  return { kind: "command", name: first, argv: rest };
}

/** docker's and podman's commands that hako spells another way. */
const OTHER_NAMES: Readonly<Record<string, string>> = {
  remove: "rm",
};

/**
 * The command a mistyped one most likely meant (pure): another tool's name for it (`remove` →
 * `rm`), or the nearest by edit distance (at most 1 for a short name, 2 for a longer one).
 * @param typed What was typed.
 */
export function suggestCommand(typed: string): string | undefined {
  if (typed.length > 64) return undefined;
  const lower = typed.toLowerCase();
  if (Object.hasOwn(COMMANDS, lower)) return lower;
  if (Object.hasOwn(OTHER_NAMES, lower)) return OTHER_NAMES[lower];
  let best: string | undefined, bestDistance = Infinity;
  for (const name of Object.keys(COMMANDS)) {
    const d = editDistance(lower, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return bestDistance <= (lower.length <= 4 ? 1 : 2) ? best : undefined;
}

/** Levenshtein distance (pure). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The overall usage text, listing the commands. */
export function globalUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    "hako — a scripting runtime for Linux containers",
    "",
    "Usage: hako <command> [options] [arguments]",
    "",
    "Commands:",
    ...lines,
    "",
    "Run 'hako help <command>' for a command's options.",
    "",
  ].join("\n");
}
