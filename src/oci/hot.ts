/**
 * hako-runc's hot commands — `state`, `start`, `kill`, `delete`, which a shim (conmon,
 * containerd-shim) calls several times per container — and the front of every OCI command line
 * (`runOci`: the log, the parse, runc's errors and exit status). Nothing here, nor in what it
 * imports statically, loads a `node:` module: under Deno the first one starts the Node layer (tens
 * of ms), under Bun `node:fs` and `process.stdout` cost milliseconds — more than runc takes for the
 * whole command (see bench/oci.ts, tests/cold_imports_test.ts). Files, pidfds and the exec FIFO go
 * through ffi/_hot.ts; the other commands are runtime.ts's, loaded only for them (`runCommand`), and
 * so is whatever a hot command needs only in a rare case (a startContainer hook, a record of an
 * older hako, a paused container to thaw): each rule has one implementation, here or there.
 * `src/cli/main.ts` sends these four commands here before it loads anything else.
 * @module
 */
import { hotFfiReady, hotFs } from "../../ffi/_hot.ts";
import type { ProcessIdentity } from "../container/_identity.ts";
import type { Signal } from "../signals.ts";
import { type OciArgs, OciUsageError, parseOciArgs, parseOciGlobals } from "./args.ts";
import { DEFAULT_OCI_ROOT, defaultOciRoot, type OciRecord, OciStore, stateJson, withFreezer } from "./state.ts";
import type { OciHook } from "./hooks.ts";

/** A failure runc would report: its message, exit status 1. */
export class OciError extends Error {
  /** @param message The message (runc's words where a shim looks for them). */
  constructor(message: string) {
    super(message);
    this.name = "OciError";
  }
}

/** Where output goes (the CLI's stdout and stderr; a test's buffers). */
export interface OciIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /**
   * Makes the engine single-threaded before JavaScript is forked (the CLI: under Bun, re-executes
   * the process with the `BUN_JSC_*` settings and does not return; see `Host.ensureSingleThreaded`).
   * `create` and `run` call it once the bundle's config shows the container's child must be
   * forked (see `needsJsChild` in runtime.ts), before they touch anything. Without it (a library
   * caller) nothing is re-executed. `execve` replaces the process (see `Host.ensureSingleThreaded`:
   * `--preserve-fds` needs one that keeps fds open).
   */
  singleThreaded?(execve?: (file: string, argv: string[], env: Record<string, string>) => void): void;
}

/** The process's own stdout and stderr, written through ffi/_hot.ts (no `node:` stream). */
export const STDIO: OciIo = {
  stdout: (text) => hotFs.writeFd(1, text),
  stderr: (text) => hotFs.writeFd(2, text),
};

/** runc's `--log` / `--log-format`. */
export class Log {
  constructor(readonly file: string | undefined, readonly format: "json" | "text", readonly debugOn: boolean) {}
  #write(level: string, msg: string): void {
    if (!this.file) return;
    const time = new Date().toISOString();
    const line = this.format === "json"
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      hotFs.appendText(this.file, line + "\n", 0o600);
    } catch { /* a log that cannot be written must not hide the error itself */ }
  }
  error(msg: string): void {
    this.#write("error", msg);
  }
  warn(msg: string): void {
    this.#write("warning", msg);
  }
  debug(msg: string): void {
    if (this.debugOn) this.#write("debug", msg);
  }
}

/** Per-invocation context. */
export interface Ctx {
  readonly store: OciStore;
  readonly log: Log;
  readonly io: OciIo;
  /** `--rootless true|false` (runc's): cgroups as its rootless manager or not; undefined: auto. */
  readonly rootless?: boolean;
  /** `--systemd-cgroup`: the container's cgroup is a systemd scope (`linux.cgroupsPath` is `slice:prefix:name`). */
  readonly systemdCgroup?: boolean;
}

const VERSION = "hako-runc version 0.1.0 (hako)\nspec: 1.0.2\n";

export const usage = `Usage: hako oci [GLOBAL OPTIONS] COMMAND [OPTIONS] ID …   (also: bin/hako-runc …)

hako as an OCI runtime, with runc's command line: point podman, containerd or CRI-O at bin/hako-runc
(podman --runtime /abs/path/bin/hako-runc run …).

Commands:
  create ID [--bundle DIR] [--pid-file F] [--console-socket S]   set the container up, waiting before exec
  start ID                        let a created container run its process
  state ID                        the OCI state JSON (creating, created, running, stopped)
  kill [--all] ID [SIGNAL]        signal the init (or every process: --all); default SIGTERM
  pause ID / resume ID            freeze / thaw every process of the container (the cgroup freezer)
  update [--resources F|-] [--memory M --memory-swap M --cpu-quota N --cpu-period N --cpu-share N
         --cpuset-cpus L --cpuset-mems L --pids-limit N] ID    new limits for the live cgroup
  delete [--force] ID             remove a stopped (or created; --force: any) container
  run ID [--bundle DIR] [--detach] [--pid-file F] [--console-socket S]   create and start
  list [--format table|json] [-q] the containers under --root
  ps [--format table|json] ID     the container's processes
  exec [--process F | -e K=V --cwd D --user U:G --cap C] [--tty --console-socket S] [--detach --pid-file F] ID [CMD…]
  spec [--bundle DIR] [--rootless] write a default config.json
  features                        what this runtime supports, as JSON

Global options:
  --root DIR          state directory (default ${DEFAULT_OCI_ROOT}; rootless: $XDG_RUNTIME_DIR/hako-runc)
  --log FILE          write errors (and warnings) there too; --log-format json|text (default text)
  --debug             debug messages in the log
  --systemd-cgroup    the cgroup is a systemd scope: cgroupsPath "slice:prefix:name" (runc's), root only
  --rootless true|false|auto  cgroups as runc's rootless manager: none made without limits unless
                      delegated, device rules left to the user namespace (auto, the default: when
                      not root, or root of a user namespace such as rootless podman's)
`;

/**
 * Runs a runc command line.
 * @param argv The arguments after `hako-runc` (or `hako oci`).
 * @param io Where output goes (default: the process's stdout and stderr).
 * @returns The exit status (0, or 1 on failure as runc's).
 */
export async function runOci(argv: readonly string[], io: OciIo = STDIO): Promise<number> {
  await hotFfiReady();
  let log = new Log(undefined, "text", false);
  try {
    // (first the log, so that a command line failing past the global options is logged too)
    const g = parseOciGlobals(argv);
    if (typeof g.log === "string" && g.log) log = new Log(g.log, g["log-format"] === "json" ? "json" : "text", false);
  } catch { /* reported below */ }
  try {
    const a = parseOciArgs(argv);
    const format = a.global["log-format"] ?? "text";
    if (format !== "json" && format !== "text") throw new OciUsageError(`invalid log-format: ${format}`);
    log = new Log(
      typeof a.global.log === "string" && a.global.log ? a.global.log : undefined,
      format,
      a.global.debug === true,
    );
    if (a.global.version) {
      io.stdout(VERSION);
      return 0;
    }
    if (a.global.help || a.command === undefined) {
      io.stdout(usage);
      return a.command === undefined && !a.global.help ? 1 : 0;
    }
    const rootless = a.global.rootless;
    if (rootless !== undefined && !["true", "false", "auto"].includes(String(rootless))) {
      throw new OciUsageError(`invalid --rootless value ${JSON.stringify(rootless)}: true, false or auto`);
    }
    const ctx: Ctx = {
      store: new OciStore(String(a.global.root ?? defaultOciRoot())),
      log,
      io,
      ...(rootless === "true" || rootless === "false" ? { rootless: rootless === "true" } : {}),
      ...(a.global["systemd-cgroup"] ? { systemdCgroup: true } : {}),
    };
    log.debug(`hako-runc ${argv.join(" ")}`);
    const o = a.options;
    switch (a.command) {
      case "start":
        await start(ctx, needId(a));
        return 0;
      case "state":
        io.stdout(JSON.stringify(stateJson(ctx.store, await mustRead(ctx, needId(a))), null, 2) + "\n");
        return 0;
      case "kill":
        await kill(ctx, needId(a), a.operands[1] ?? "SIGTERM", o.all === true);
        return 0;
      case "delete":
        await deleteContainer(ctx, needId(a), o.force === true);
        return 0;
      default:
        return await (await import("./runtime.ts")).runCommand(ctx, a);
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    log.error(msg);
    io.stderr(`${msg}\n`);
    return 1;
  }
}

/** The container id operand. @throws {OciUsageError} When there is none. */
export function needId(a: OciArgs): string {
  const id = a.operands[0];
  if (id === undefined || id === "") throw new OciUsageError(`"${a.command}" requires a container id`);
  return id;
}

/** The record of `id` (with its freezer). @throws {OciError} runc's "container does not exist". */
export async function mustRead(ctx: Ctx, id: string): Promise<OciRecord> {
  const r = ctx.store.read(id);
  if (!r) throw new OciError("container does not exist");
  return await withFreezer(r);
}

/**
 * Signals the process recorded as `id` only if it still is that process (through a pidfd, its
 * start time checked: container/_signal_identified.ts, loaded here).
 */
export async function signalIdentified(id: ProcessIdentity, sig: Signal, context: string): Promise<boolean> {
  return (await import("../container/_signal_identified.ts")).signalIdentified(id, sig, context);
}

/** A pause of `ms` for the polling loops (the event loop keeps running). */
function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** `start`: opens the exec FIFO for reading, which lets the container's process exec. */
export async function start(ctx: Ctx, id: string): Promise<void> {
  const r = await mustRead(ctx, id);
  const status = ctx.store.status(r);
  if (status === "stopped") throw new OciError("cannot start a container that has stopped");
  if (status === "running") throw new OciError("cannot start an already running container");
  if (status === "creating") throw new OciError("cannot start a container in the creating state");
  if (status === "paused") throw new OciError("cannot start a container in the paused state");
  const fifo = ctx.store.fifo(id);
  // Non-blocking: a process that died before opening its end must not hang `start` (runc's
  // awaitFifoOpen watches the process too).
  let fd: number;
  try {
    fd = hotFs.openFifoReader(fifo);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") throw new OciError("cannot start an already running container");
    throw e;
  }
  try {
    const until = Date.now() + 30_000;
    while (!hotFs.readByte(fd)) {
      if (ctx.store.status(r) === "stopped") {
        // (its byte may have come since the read above, and the command it exec'd ended since: a
        // short one, `sh -c "exit 7"`, does — it was started)
        if (hotFs.readByte(fd)) break;
        throw new OciError("the container's process ended before start");
      }
      if (Date.now() > until) throw new OciError("the container's process did not open its exec fifo in 30 s");
      // (woken as soon as the byte is written, as runc's blocking read is; the status is looked at
      // again every 50 ms. A writer that came and went without a byte: polled every 2 ms, as before.)
      if (hotFs.waitReadable(fd, 50) === "hup") await sleep(2);
    }
  } finally {
    hotFs.close(fd);
  }
  if (r.hooks?.startContainer?.length) await (await import("./runtime.ts")).startContainerHooks(ctx, r);
  hotFs.unlink(fifo);
  await postStart(ctx, r);
}

/** hooks.ts's runHooks, loaded only when there is a hook to run (node:child_process costs every start). */
export async function runHooks(
  kind: string,
  hooks: readonly OciHook[] | undefined,
  state: unknown,
  cwd?: string,
): Promise<void> {
  if (!hooks?.length) return;
  await (await import("./hooks.ts")).runHooks(kind, hooks, state, cwd);
}

/** The poststart hooks, once the command runs: a failure is logged, as runc does. */
export async function postStart(ctx: Ctx, r: OciRecord): Promise<void> {
  // (no state made without a hook: it reads /proc/PID/stat, which waits while the command execs)
  if (!r.hooks?.poststart?.length) return;
  try {
    await runHooks("poststart", r.hooks?.poststart, stateJson(ctx.store, r));
  } catch (e) {
    ctx.log.warn((e as Error).message);
    ctx.io.stderr(`warning: ${(e as Error).message}\n`);
  }
}

/** The poststop hooks, once the container is deleted (`state`: its state before): logged on failure. */
export async function postStop(ctx: Ctx, r: OciRecord, state: Record<string, unknown>): Promise<void> {
  try {
    await runHooks("poststop", r.hooks?.poststop, { ...state, status: "stopped", pid: 0 });
  } catch (e) {
    ctx.log.warn((e as Error).message);
    ctx.io.stderr(`warning: ${(e as Error).message}\n`);
  }
}

/** A signal operand: a name (`KILL`, `SIGKILL`) or a number, as runc takes it. */
async function parseSignal(sig: string): Promise<number> {
  const { signalNumber } = await import("../signals.ts");
  try {
    return signalNumber(/^\d+$/.test(sig) ? Number(sig) : sig);
  } catch {
    throw new OciError(`unknown signal "${sig}"`);
  }
}

/** The `cgroup.procs` files of the container's cgroup (one per hierarchy). */
export async function procsFiles(r: OciRecord): Promise<string[]> {
  if (!r.cgroupName) return [];
  // (as create recorded them: no layout to detect)
  if (r.cgroupDirs) return r.cgroupDirs.filter((d) => hotFs.exists(d)).map((d) => `${d}/cgroup.procs`);
  const { existingCgroupDirs } = await import("../container/_cgroup.ts");
  return existingCgroupDirs(r.cgroupName).map((d) => `${d}/cgroup.procs`);
}

/** Every process of the container's cgroup, sorted. */
export async function cgroupPids(r: OciRecord): Promise<number[]> {
  const pids = new Set<number>();
  for (const f of await procsFiles(r)) {
    for (const l of (hotFs.readText(f) ?? "").split("\n")) if (l.trim()) pids.add(Number(l));
  }
  return [...pids].sort((a, b) => a - b);
}

/** `kill`: the init (or, with --all, every process of its cgroup), identified by pid and start time. */
export async function kill(ctx: Ctx, id: string, sigText: string, all: boolean): Promise<void> {
  const r = await mustRead(ctx, id);
  const sig = await parseSignal(sigText);
  const status = ctx.store.status(r);
  if (status !== "created" && status !== "running" && status !== "paused") throw new OciError("container not running");
  // A frozen process dies of SIGKILL only once thawed: runc thaws after signalling, for SIGKILL
  // only (other signals wait, pending, for `resume`).
  const thawIfKilled = async () => {
    if (status === "paused" && sig === 9 && r.cgroupName) (await import("./freezer.ts")).thaw(r.cgroupName, r.freezer);
  };
  if (all) {
    const files = await procsFiles(r);
    const { signalCgroupMember } = await import("../container/_signal_identified.ts");
    for (const pid of await cgroupPids(r)) signalCgroupMember(pid, files, sig, `kill --all ${id}`);
    await thawIfKilled();
    return;
  }
  if (!await signalIdentified({ pid: r.pid!, startTime: r.startTime! }, sig, `kill ${id}`)) {
    throw new OciError("container not running");
  }
  await thawIfKilled();
}

/**
 * Stops a container's systemd scope after its processes are gone (runc's `stopUnit`: a unit gone
 * already is fine, a failure is a warning). The recorded name must be a scope's: a state file
 * never makes hako stop a service.
 */
async function stopScope(ctx: Ctx, unit: string): Promise<void> {
  const [{ scopeNameProblem }, { SystemdManager }] = await Promise.all([
    import("../cgroup/systemd.ts"),
    import("../cgroup/systemd_manager.ts"),
  ]);
  const problem = scopeNameProblem(unit);
  if (problem) throw new OciError(`the state's systemd unit ${problem}`);
  try {
    const m = SystemdManager.connect();
    try {
      m.stopUnit(unit);
    } finally {
      m.close();
    }
  } catch (e) {
    ctx.log.warn(`stopping systemd unit ${unit}: ${(e as Error).message}`);
  }
}

/** `delete`: the cgroup (its processes killed) and the state directory. */
export async function deleteContainer(ctx: Ctx, id: string, force: boolean): Promise<void> {
  const read = ctx.store.read(id);
  if (!read) {
    if (force) {
      ctx.store.remove(id); // (a half-made one's directory, if any)
      return;
    }
    throw new OciError("container does not exist");
  }
  const r = await withFreezer(read);
  const status = ctx.store.status(r);
  if ((status === "running" || status === "paused") && !force) {
    throw new OciError(`cannot delete container ${id} that is not stopped: ${status}`);
  }
  if ((status === "running" || status === "created" || status === "paused") && r.pid && r.startTime !== undefined) {
    await signalIdentified({ pid: r.pid, startTime: r.startTime }, "KILL", `delete ${id}`);
  }
  if (r.cgroupName && r.cgroupDirs) {
    // (killed, a frozen process still waits for the thaw to die: runc thaws too)
    if (status === "paused") (await import("./freezer.ts")).thaw(r.cgroupName, r.freezer);
    const { deleteCgroupDirs } = await import("./cgroup_dirs.ts");
    deleteCgroupDirs(r.cgroupName, r.cgroupDirs, (pid) => hotFs.kill(pid, 9));
    if (r.cgroup?.systemd) await stopScope(ctx, r.cgroup.systemd.unit);
  } else if (r.cgroupName) {
    // (a record of an older hako: its directories detected)
    const [{ Group }, { containerGroupSpec }, { thaw, removeFreezer }] = await Promise.all([
      import("../cgroup/group.ts"),
      import("../container/_cgroup.ts"),
      import("./freezer.ts"),
    ]);
    if (status === "paused") thaw(r.cgroupName, r.freezer);
    new Group(r.cgroupName, containerGroupSpec(r.cgroup)).delete({ kill: true });
    removeFreezer(r.cgroupName);
    if (r.cgroup?.systemd) await stopScope(ctx, r.cgroup.systemd.unit);
  }
  const state = r.hooks?.poststop?.length ? stateJson(ctx.store, r) : {};
  ctx.store.remove(id);
  await postStop(ctx, r, state);
}
