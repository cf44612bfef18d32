/**
 * `hako start SPEC.ts… [--each VAR=A..B] [-- args]`: daemonized containers, through the host's
 * one supervisor (started on demand).
 * @module
 */
import { nonEmpty, parseArgs, stringOption, UsageError } from "./_args.ts";
import { parseEach, progressLine } from "./_format.ts";
import { host } from "../runner/_host.ts";
import type { ContainerSpec } from "../container/spec.ts";

/** The help text. */
export const usage = `Usage: hako start [options] <spec.ts>... [-- args...]

Starts the container of each spec module in the background (haconiwa's "daemonize!"), and prints
each started container's name. The containers are children of one shared hako supervisor per host
(started on demand; see 'hako help supervisor'), which reaps them, records their exit status and
writes their stdout and stderr to a log ('hako logs NAME'). Then: hako ps, exec, attach, kill,
stop, delete.

A spec module's default export is a container spec, or a function (env, args) returning one. With
--each, the function is called once per value with VAR set in env, and every container is started
by this one process (much faster than one 'hako start' per container):

  hako start examples/fleet/web.ts --each PORT=10001..10100

Options:
      --each <VAR=A..B|VAR=a,b,c>  One container per value (an inclusive range, or a list)
      --name <name>                Override the name (one spec, no --each)
      --init                       Run a static init (tini) as each container's PID 1, the
                                   command as its child: it gets hako stop's SIGTERM and reaps
                                   zombies (docker's --init; spec: init: true)
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
}

/**
 * Parses `hako start`'s arguments (pure).
 * @throws {UsageError} For a bad option, no file, or --name with several containers.
 */
export function parseStartArgs(argv: readonly string[]): StartArgs {
  const dd = argv.indexOf("--");
  const own = dd < 0 ? argv : argv.slice(0, dd);
  const args = dd < 0 ? [] : argv.slice(dd + 1);
  const { values, positionals } = parseArgs(own, {
    each: { type: "string" },
    name: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    init: { type: "boolean" },
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
  return {
    help: false,
    files: positionals,
    args,
    quiet: values.quiet === true,
    ...(each ? { each } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(values.init ? { init: true } : {}),
  };
}

/**
 * Makes the spec's host paths absolute against `cwd` (pure): the supervisor runs elsewhere.
 */
export function absolutizeSpec(spec: ContainerSpec, cwd: string): ContainerSpec {
  const abs = (p: string) => (p.startsWith("/") ? p : `${cwd.replace(/\/$/, "")}/${p.replace(/^\.\//, "")}`);
  const r = spec.rootfs;
  const rootfs: ContainerSpec["rootfs"] = typeof r === "string"
    ? abs(r)
    : "tarball" in r
    ? { ...r, tarball: abs(r.tarball), path: abs(r.path) }
    : { ...r, path: abs(r.path) };
  const mounts = spec.mounts?.map((m) => m.type === "bind" && m.source ? { ...m, source: abs(m.source) } : m);
  return { ...spec, rootfs, ...(mounts ? { mounts } : {}) };
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
  let failed = false;
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
          const given = { ...spec, ...(a.name ? { name: a.name } : {}), ...(a.init ? { init: true } : {}) };
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

  const tty = !a.quiet && specs.length > 1 && process.stderr.isTTY === true;
  let done = 0;
  const draw = (label: string) => tty && h.stderr(`\r\x1b[K${progressLine(done, specs.length, label)}`);

  // Tarballs are extracted here, not in the supervisor: unpacking (node-tar, zlib) grows a
  // process by megabytes it never gives back, which the long-lived supervisor must not keep.
  // The supervisor then finds each rootfs marked as extracted and goes straight on. Two workers
  // extract and hand each container over as soon as its rootfs is there.
  const { extractRootfs } = await import("../container/tarball.ts");
  const { StateStore } = await import("../container/state.ts");
  const store = new StateStore();
  const { SupervisorClient } = await import("../supervisor/client.ts");
  const client = await SupervisorClient.connect();
  const report = (name: string, error?: string) => {
    done++;
    if (tty) h.stderr("\r\x1b[K");
    if (error === undefined) h.stdout(`${name}\n`);
    else {
      failed = true;
      h.stderr(`hako start: ${name}: ${error}\n`);
    }
    draw(name);
  };
  const queue = [...specs];
  const starts: Promise<void>[] = [];
  const worker = async (): Promise<void> => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      const { spec, file } = s;
      const r = spec.rootfs;
      if (typeof r === "object" && "tarball" in r) {
        try {
          // Noted first: should the container never run (a crash, a failed start), gc removes it.
          store.notePendingRootfs(r.path, r.tarball);
          await extractRootfs(r.tarball, r.path, r.owner ? { owner: r.owner } : {});
        } catch (e) {
          report(spec.name, (e as Error).message);
          continue;
        }
      }
      starts.push(
        client.request({ op: "start", spec, specFile: file }).then((res) => {
          report(spec.name, res.ok ? undefined : res.error!.message);
        }),
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
