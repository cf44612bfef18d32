/**
 * `hako restart [-t N] NAME…`: stops a daemonized container and starts it again with the spec it
 * was started with, under the same name, through the supervisor — as docker restart (stop with
 * the timeout, then start). What `hako run -d` recorded beside the spec (labels, --rm) and the log
 * so far are kept, as docker keeps a restarted container's config and logs.
 * @module
 */
import { nonEmpty, parseArgs, quoted, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";

/** The help text. */
export const usage = `Usage: hako restart [-t SECONDS] <name>...

Restarts containers that run in the background (hako start, hako run -d): stops each (SIGTERM,
then SIGKILL after the timeout, as hako stop) when it runs, then starts it again with the spec it
was started with, under the same name, and prints its name. Its labels, --rm and its log so far
are kept. An exited container is started again the same way. A container that runs in the
foreground of a 'hako run' is refused: that process is its parent.

Options:
  -t, --timeout <S>   Seconds to wait after SIGTERM before SIGKILL (default 10; docker's -t)
  -h, --help          Show this help

Exit status: 0 when every container was restarted, 1 otherwise (each failure is printed).
`;

/** Parses `hako restart`'s arguments (pure). @throws {UsageError} For no name or a bad timeout. */
export function parseRestartArgs(argv: readonly string[]): { help: boolean; names: string[]; timeoutMs: number } {
  const { values, positionals } = parseArgs(argv, {
    timeout: { type: "string", short: "t" },
    time: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, names: [], timeoutMs: 10_000 };
  const t = stringOption(values, "timeout") ?? stringOption(values, "time");
  if (t !== undefined && (!/^\d+(\.\d+)?$/.test(t) || Number(t) > 86_400)) {
    throw new UsageError(`--timeout wants seconds (0 to 86400), not ${quoted(t)}`);
  }
  if (positionals.length === 0) throw new UsageError("a container name is required");
  for (const n of positionals) nonEmpty(n, "a container name");
  return { help: false, names: [...positionals], timeoutMs: t === undefined ? 10_000 : Number(t) * 1000 };
}

/** Runs `hako restart`. */
export async function main(argv: readonly string[]): Promise<number> {
  const a = parseRestartArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  let code = 0;
  for (const name of a.names) {
    try {
      if (await restartOne(name, a.timeoutMs) !== 0) code = 1;
    } catch (e) {
      code = 1;
      h.stderr(`hako restart: ${(e as Error).message}\n`);
    }
  }
  return code;
}

/** Stops `name` (when it runs), removes its record, starts it again from its spec. */
async function restartOne(name: string, timeoutMs: number): Promise<number> {
  const { readFileSync, writeFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { StateStore, ContainerStateError, isRunning, sameProcess } = await import("../container/state.ts");
  const { stopContainer, deleteContainer } = await import("../container/lifecycle.ts");
  const { DOCKER_FILE } = await import("../supervisor/protocol.ts");
  const { startSpecs } = await import("./start.ts");
  const store = new StateStore();
  const found = store.inspect(name);
  if (found.kind === "none") throw new ContainerStateError(`no such container: ${name}`);
  if (found.kind === "damaged") {
    throw new ContainerStateError(`${name}'s record is damaged (${found.problem}): its spec cannot be read back`);
  }
  const r = found.record;
  if (r.state === "creating") throw new ContainerStateError(`container ${name} is being created: try again`);
  // Its spec's host commands go to the supervisor again only as the supervisor that wrote the
  // record sealed them: a record is hostile input (see supervisor/_seal.ts).
  const { sealKey, untrustedCommands } = await import("../supervisor/_seal.ts");
  const hostile = untrustedCommands(store, sealKey(store), r);
  if (hostile) {
    throw new ContainerStateError(
      `${name} is not restarted, its hooks are not run: ${hostile}; start it from its spec file`,
    );
  }
  const supervisor = (() => {
    try {
      const [pid, startTime] = readFileSync(store.file("supervisor.pid"), "utf8").trim().split(" ").map(Number);
      return { pid: pid!, startTime: startTime! };
    } catch {
      return undefined;
    }
  })();
  if (isRunning(r.init) && isRunning(r.owner) && !sameProcess(r.owner, supervisor)) {
    throw new ContainerStateError(
      `container ${name} runs in the foreground of process ${r.owner.pid} (hako run), which is its parent: ` +
        "only containers started with hako start or hako run -d can be restarted",
    );
  }
  // What goes with it: run -d's labels and --rm, and its log (the relay appends to it again).
  const keep = (file: string) => {
    try {
      return readFileSync(join(store.dir(name), file));
    } catch {
      return undefined;
    }
  };
  const docker = keep(DOCKER_FILE);
  const autoRemove = docker !== undefined && JSON.parse(docker.toString("utf8"))?.autoRemove === true;
  const logs = ["log.1", "log"].map((f) => [f, keep(f)] as const);
  await stopContainer(name, { timeoutMs, store });
  if (autoRemove) {
    // --rm: its supervisor deletes it once it has recorded its end.
    for (let i = 0; i < 200 && store.inspect(name).kind !== "none"; i++) {
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  if (store.inspect(name).kind !== "none") await deleteContainer(name, { store });
  return await startSpecs([{ spec: r.spec, ...(r.specFile ? { file: r.specFile } : {}) }], {
    quiet: true,
    onReserved: (dir) => {
      if (docker !== undefined) writeFileSync(join(dir, DOCKER_FILE), docker, { mode: 0o600 });
      for (const [file, bytes] of logs) if (bytes !== undefined) writeFileSync(join(dir, file), bytes, { mode: 0o600 });
    },
  });
}
