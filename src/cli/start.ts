/**
 * `hako start SPEC.ts… [--each VAR=A..B] [-- args]`: daemonized containers, through the host's
 * one supervisor (started on demand).
 * @module
 */
import { parseRestartFlag, type RestartPolicy } from "../container/restart_policy.ts";
import { nonEmpty, parseArgs, stringOption, UsageError } from "./_args.ts";
import { parseEach, progressLine } from "./_format.ts";
import { host } from "../runner/_host.ts";
import type { ContainerSpec } from "../container/spec.ts";
import type {
  identify as Identify,
  ProcessIdentity,
  recordImage as RecordImage,
  StateRecord,
  StateStore,
} from "../container/state.ts";
import type { resolveSpec as ResolveSpec } from "../container/validate.ts";

/** The help text. */
export const usage = `Usage: hako start [options] <spec.ts>... [--] [args...]

Starts the container of each spec module (or spec.json) in the background (haconiwa's "daemonize!"), and prints
each started container's name. The containers are children of one shared hako supervisor per host
(started on demand; see 'hako help supervisor'), which reaps them, records their exit status and
writes their stdout and stderr to a log ('hako logs NAME'). Then: hako ps, exec, attach, kill,
stop, delete.

A spec module's default export is a container spec, or a function (env, args) returning one. With
--each, the function is called once per value with VAR set in env, and every container is started
by this one process (much faster than one 'hako start' per container):

  hako start examples/fleet/web.ts --each PORT=10001..10100

The operands after the first spec file are more spec files while they end in .ts, .js (.mts,
.tsx…); from the first that does not (or after --) they are the specs' args, as 'hako run'
passes a spec module's: 'hako start web.ts sleep 30' is 'hako start web.ts -- sleep 30'.

Options:
      --each <VAR=A..B|VAR=a,b,c>  One container per value (an inclusive range, or a list)
      --name <name>                Override the name (one spec, no --each)
      --init                       Run a static init (tini) as each container's PID 1, the
                                   command as its child: it gets hako stop's SIGTERM and reaps
                                   zombies (docker's --init; spec: init: true)
      --restart <policy>           no, always, unless-stopped, on-failure[:N]: each spec's
                                   restart policy (spec: restart), as docker's --restart
  -q, --quiet                      No progress bar
  -h, --help                       Show this help

Exit status: 0 when every container started, 1 otherwise (each failure is printed).
`;

/** What `hako start` was asked to do. */
export interface StartArgs {
  readonly help: boolean;
  readonly files: readonly string[];
  readonly args: readonly string[];
  readonly each?: { readonly name: string; readonly values: readonly string[] };
  readonly name?: string;
  readonly quiet: boolean;
  /** `--init`: every spec gets `init: true`. */
  readonly init?: boolean;
  /** `--restart`: every spec gets this restart policy. */
  readonly restart?: RestartPolicy;
}

/**
 * Parses `hako start`'s arguments (pure).
 * @throws {UsageError} For a bad option, no file, or --name with several containers.
 */
export function parseStartArgs(argv: readonly string[]): StartArgs {
  const { own, args } = splitStartArgs(argv);
  const { values, positionals } = parseArgs(own, {
    each: { type: "string" },
    name: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    init: { type: "boolean" },
    restart: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return { help: true, files: [], args: [], quiet: false };
  if (positionals.length === 0) throw new UsageError("no spec file given");
  for (const f of positionals) nonEmpty(f, "a spec file's path");
  const eachText = stringOption(values, "each");
  const each = eachText !== undefined ? parseEach(eachText) : undefined;
  const name = stringOption(values, "name");
  if (name !== undefined) nonEmpty(name, "--name");
  if (name !== undefined && (each || positionals.length > 1)) {
    throw new UsageError("--name names one container: give one spec file and no --each");
  }
  const restartText = stringOption(values, "restart");
  let restart: RestartPolicy | undefined;
  try {
    restart = restartText === undefined ? undefined : parseRestartFlag(restartText);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return {
    help: false,
    files: positionals,
    args,
    quiet: values.quiet === true,
    ...(each ? { each } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(values.init ? { init: true } : {}),
    ...(restart !== undefined ? { restart } : {}),
  };
}

/** A spec module's file name (what start takes for one more spec file after the first). */
const MODULE_FILE = /\.[mc]?[jt]sx?$/;
/** start's options that take a value as the next argument. */
const VALUE_OPTIONS = new Set(["--each", "--name"]);

/**
 * Splits start's command line where its own part ends (pure): at `--` (dropped), or at the first
 * operand after the first spec file that is not a module file (kept: the first of the args), as
 * `hako run SPEC ARGS…` passes everything after the spec to it.
 */
export function splitStartArgs(argv: readonly string[]): { own: readonly string[]; args: readonly string[] } {
  let files = 0;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === "--") return { own: argv.slice(0, i), args: argv.slice(i + 1) };
    if (t.startsWith("-") && t !== "-") {
      if (VALUE_OPTIONS.has(t)) i++;
      continue;
    }
    if (files > 0 && !MODULE_FILE.test(t)) return { own: argv.slice(0, i), args: argv.slice(i) };
    files++;
  }
  return { own: argv, args: [] };
}

/**
 * Makes the spec's host paths absolute against `cwd` (pure): the supervisor runs elsewhere. Only
 * paths that are non-empty strings are touched: anything else (a number, null, a missing path) is
 * left as it is, for the spec's validation to name the field (this runs before it).
 */
export function absolutizeSpec(spec: ContainerSpec, cwd: string): ContainerSpec {
  const abs = (p: unknown) =>
    typeof p !== "string" || p === "" || p.startsWith("/") ? p : `${cwd.replace(/\/$/, "")}/${p.replace(/^\.\//, "")}`;
  const r = spec.rootfs as unknown;
  let rootfs = r;
  if (typeof r === "string") rootfs = abs(r);
  else if (r !== null && typeof r === "object" && !Array.isArray(r)) {
    const o = r as Record<string, unknown>;
    rootfs = {
      ...o,
      ...(o.tarball !== undefined ? { tarball: abs(o.tarball) } : {}),
      ...(o.path !== undefined ? { path: abs(o.path) } : {}),
    };
  }
  const m = spec.mounts as unknown;
  const mounts = Array.isArray(m)
    ? m.map((x) => x !== null && typeof x === "object" && x.type === "bind" ? { ...x, source: abs(x.source) } : x)
    : m;
  return { ...spec, rootfs, ...(mounts !== undefined ? { mounts } : {}) } as ContainerSpec;
}

/** Runs `hako start`. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const a = parseStartArgs(argv);
  const h = host();
  if (a.help) {
    h.stdout(usage);
    return 0;
  }
  const { default: process } = await import("node:process");
  const { resolve } = await import("node:path");
  const { runScript } = await import("../runner/run_script.ts");
  const { specFromExports } = await import("../runner/spec_module.ts");
  const { functionPaths } = await import("../supervisor/protocol.ts");

  // Evaluate every spec (per --each value) here, where the user's environment and cwd are.
  const specs: { spec: ContainerSpec; file: string }[] = [];
  for (const file of a.files) {
    const variants = a.each ? a.each.values.map((v) => ({ [a.each!.name]: v })) : [{}];
    const code = await runScript({
      script: file,
      args: a.args,
      onExports: async (exports) => {
        for (const extra of variants) {
          const spec = await specFromExports(exports, { ...process.env, ...extra }, a.args);
          if (!spec) {
            h.stderr(`hako start: ${file} is not a spec module (its default export is not a container spec)\n`);
            return 1;
          }
          const fns = functionPaths(spec);
          if (fns.length > 0) {
            h.stderr(
              `hako start: ${file}: ${fns.join(", ")} ${fns.length > 1 ? "are functions" : "is a function"}; ` +
                `a daemonized container's spec goes to the supervisor as JSON, so give hooks as commands ` +
                `(or run it in the foreground with 'hako run')\n`,
            );
            return 1;
          }
          const given = {
            ...spec,
            ...(a.name ? { name: a.name } : {}),
            ...(a.init ? { init: true } : {}),
            ...(a.restart !== undefined ? { restart: a.restart } : {}),
          };
          specs.push({ spec: absolutizeSpec(given, h.cwd()), file: resolve(file) });
        }
        return 0;
      },
    });
    if (code !== 0) return code ?? 1;
  }
  const names = specs.map((s) => s.spec.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) {
    h.stderr(
      `hako start: two containers would be named ${dup}` +
        (a.each
          ? ` (does the spec use ${a.each.name}? export a function (env) => spec that reads env.${a.each.name})`
          : "") +
        "\n",
    );
    return 2;
  }
  return await startSpecs(specs, { quiet: a.quiet });
}

/** What {@link startSpecs} may do beside starting. */
export interface StartSpecsOptions {
  /** No progress bar. */
  readonly quiet: boolean;
  /**
   * Called once a container's name is reserved (its state directory made), before its rootfs is
   * extracted and the supervisor starts it: `hako run -d` writes its labels and `--rm` there.
   */
  readonly onReserved?: (dir: string, spec: ContainerSpec) => void;
  /**
   * Called with each container that failed to start and why: what was thrown, or the
   * supervisor's error reply (`hako run -d` turns it into docker's exit code).
   */
  readonly onFailed?: (name: string, error: { name?: string; step?: string; code?: string; message: string }) => void;
  /** The command its messages are from (`hako run: NAME: …` for `hako run -d`); "start" when not given. */
  readonly command?: string;
}

/**
 * Starts containers through the supervisor (`hako start`, `hako run -d`): each name reserved, its
 * tarball extracted here, then handed over; prints each started name.
 * @param specs The specs, their host paths absolute, each with its spec file (for `ps`).
 * @returns 0 when every container started, 1 otherwise (each failure printed).
 */
export async function startSpecs(
  specs: readonly { readonly spec: ContainerSpec; readonly file?: string }[],
  opts: StartSpecsOptions,
): Promise<number> {
  const h = host();
  const { default: process } = await import("node:process");
  let failed = false;
  const tty = !opts.quiet && specs.length > 1 && process.stderr.isTTY === true;
  let done = 0;
  const draw = (label: string) => tty && h.stderr(`\r\x1b[K${progressLine(done, specs.length, label)}`);

  // Tarballs are extracted here, not in the supervisor: unpacking (node-tar, zlib) grows a
  // process by megabytes it never gives back, which the long-lived supervisor must not keep.
  // The supervisor then finds each rootfs marked as extracted and goes straight on. Two workers
  // extract and hand each container over as soon as its rootfs is there. Each name is reserved
  // first — the spec validated, then the record made by an atomic mkdir — so that of two starts
  // of one name the loser gets the name error before extracting anything (the winner's
  // extraction is not raced); the supervisor takes the reservation over.
  const { extractRootfs } = await import("../container/tarball.ts");
  const { resolveSpec } = await import("../container/validate.ts");
  const state = await import("../container/state.ts");
  const store = new state.StateStore();
  const self = state.selfIdentity();
  const { SupervisorClient } = await import("../supervisor/client.ts");
  const client = await SupervisorClient.connect();
  // Who the supervisor is (its records' owner, its binary), to judge its records should it die.
  const supervisor = await whoServes(client, state.identify);
  const report = (
    name: string,
    error?: string | { name?: string; step?: string; code?: string; message: string },
    warning?: string,
  ) => {
    done++;
    if (typeof error === "object") opts.onFailed?.(name, error);
    else if (error !== undefined) opts.onFailed?.(name, { message: error });
    if (typeof error === "object") error = error.message;
    if (tty) h.stderr("\r\x1b[K");
    if (error === undefined) {
      h.stdout(`${name}\n`);
      if (warning) h.stderr(`hako ${opts.command ?? "start"}: ${name}: ${warning}\n`);
    } else {
      failed = true;
      h.stderr(`hako ${opts.command ?? "start"}: ${name}: ${error}\n`);
    }
    draw(name);
  };
  const queue = [...specs];
  const starts: Promise<void>[] = [];
  const worker = async (): Promise<void> => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const { spec, file } = s;
      try {
        store.reserve(reservation(spec, file, self, resolveSpec, state.recordImage));
      } catch (e) {
        report(spec.name, e as Error);
        continue;
      }
      try {
        opts.onReserved?.(store.dir(spec.name), spec);
      } catch (e) {
        dropReservation(store, spec.name, self);
        report(spec.name, e as Error);
        continue;
      }
      const r = spec.rootfs;
      if (typeof r === "object" && "tarball" in r) {
        try {
          // The reservation noted it as pending: should the container never run, gc removes it.
          await extractRootfs(r.tarball, r.path, r.owner ? { owner: r.owner } : {});
        } catch (e) {
          dropReservation(store, spec.name, self);
          report(spec.name, e as Error);
          continue;
        }
      }
      starts.push(
        client.request({ op: "start", spec, ...(file ? { specFile: file } : {}), reservedBy: self }).then(
          async (res) => {
            if (res.ok) return report(spec.name);
            if (res.error?.name !== "SupervisorError") {
              dropReservation(store, spec.name, self); // (the supervisor never took it over)
              return report(spec.name, res.error!);
            }
            // The connection failed, not the container: its record says what became of it.
            const v = await afterLostSupervisor(store, spec.name, self, supervisor, res.error.message);
            report(spec.name, v.error, v.warning);
          },
        ),
      );
    }
  };
  draw("starting…");
  try {
    await Promise.all([worker(), worker()]);
    await Promise.all(starts);
  } finally {
    if (tty) h.stderr("\r\x1b[K");
    client.close();
  }
  return failed ? 1 : 0;
}

/** The supervisor that answers on `client`: its identity and its binary (device and inode). */
interface Supervisor {
  readonly id: ProcessIdentity;
  readonly exe?: { readonly dev: number; readonly ino: number };
}

/** Asks the supervisor who it is (a ping); undefined when it does not say. */
async function whoServes(
  client: { request(b: { op: "ping" }): Promise<{ ok: boolean; supervisor?: number }> },
  identify: typeof Identify,
): Promise<Supervisor | undefined> {
  const res = await client.request({ op: "ping" });
  const id = res.ok && res.supervisor ? identify(res.supervisor) : undefined;
  if (!id) return undefined;
  const { statSync } = await import("node:fs");
  try {
    const st = statSync(`/proc/${id.pid}/exe`);
    return { id, exe: { dev: st.dev, ino: st.ino } };
  } catch {
    return { id };
  }
}

/**
 * The record that reserves a container's name for this process until the supervisor takes it
 * over: the spec validated first (the same validation the supervisor makes).
 * @throws {SpecError} For a bad spec.
 */
function reservation(
  spec: ContainerSpec,
  file: string | undefined,
  self: ProcessIdentity,
  resolveSpec: typeof ResolveSpec,
  recordImage: typeof RecordImage,
): StateRecord {
  const resolved = resolveSpec(spec);
  return {
    version: 1,
    name: resolved.name,
    state: "creating",
    owner: self,
    createdAt: new Date().toISOString(),
    spec,
    ...(file ? { specFile: file } : {}),
    ...recordImage(spec.rootfs, resolved.rootfsPath),
    rootfs: resolved.rootfsPath,
    ...(resolved.cgroupName ? { cgroup: resolved.cgroupName } : {}),
    ...(resolved.veth ? { veth: resolved.veth.host } : {}),
  };
}

/** Removes this process's reservation of `name`, if it is still that (never another's record). */
function dropReservation(store: StateStore, name: string, self: ProcessIdentity): void {
  try {
    store.withLock(name, () => {
      const r = store.tryRead(name);
      const mine = r && r.state === "creating" && !r.init && r.owner.pid === self.pid &&
        r.owner.startTime === self.startTime;
      if (mine) store.remove(name);
    });
  } catch { /* gone already */ }
}

/**
 * What became of container `name` when the supervisor's connection failed before it answered (it
 * crashed, or was killed), from its record: a container that runs (or ran) is not "failed". One
 * still recorded as being set up whose init outlives the supervisor and runs another binary than
 * the supervisor's has exec'd its command (a child still in its setup exits when its supervisor's
 * pipes close): its record is brought up to date. Only records of that supervisor are judged.
 */
async function afterLostSupervisor(
  store: StateStore,
  name: string,
  self: ProcessIdentity,
  supervisor: Supervisor | undefined,
  why: string,
): Promise<{ error?: string; warning?: string }> {
  const { isRunning, sameProcess } = await import("../container/state.ts");
  const lost = `the supervisor's connection failed (${why})`;
  const got = store.inspect(name);
  if (got.kind === "none") return { error: `${lost}; there is no record of it` };
  if (got.kind === "damaged") return { error: `${lost}; its record is damaged (${got.problem}): see 'hako ps'` };
  let r = got.record;
  if (sameProcess(r.owner, self)) {
    dropReservation(store, name, self);
    return { error: `${lost} before the supervisor took the container over` };
  }
  if (!supervisor || !sameProcess(r.owner, supervisor.id)) return { error: lost };
  if (r.state === "creating" && r.init) {
    const init = r.init;
    for (let i = 0; i < 30 && isRunning(init); i++) await new Promise((res) => setTimeout(res, 10));
    if (isRunning(init) && await execd(init.pid, supervisor)) {
      store.update(name, (x) =>
        x.state === "creating" && sameProcess(x.init, init)
          ? {
            ...x,
            state: "running",
            startedAt: new Date().toISOString(),
            note: "its supervisor died before recording its start",
          }
          : x);
      r = store.tryRead(name) ?? r;
    }
  }
  if (r.state === "running" || r.state === "exited") {
    return {
      warning: `started, but ${lost} before it answered; the container ${
        r.state === "running" ? "runs on" : "has ended"
      } (the next supervisor adopts it; its exit status will be unknown): see 'hako ps'`,
    };
  }
  return { error: `${lost} while it set the container up; 'hako gc' removes what it left` };
}

/** Whether process `pid` runs another binary than the supervisor's: it has exec'd its command. */
async function execd(pid: number, supervisor: Supervisor): Promise<boolean> {
  const { statSync } = await import("node:fs");
  try {
    const st = statSync(`/proc/${pid}/exe`);
    const same = (x: { dev: number; ino: number } | undefined) => x && x.dev === st.dev && x.ino === st.ino;
    return !same(supervisor.exe) && !same(statSync("/proc/self/exe"));
  } catch {
    return false;
  }
}
