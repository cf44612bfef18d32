/**
 * `hako run SCRIPT [ARGS…]` and `hako run -e CODE [ARGS…]`.
 * @module
 */
import { withProgramExitCodes } from "./_exit_codes.ts";
import { nonEmpty, parseArgs, stringOption, UsageError } from "./_args.ts";
import { host } from "../runner/_host.ts";
import { type LoaderKind, runScript } from "../runner/run_script.ts";

/** The help text. */
export const usage = `Usage: hako run [options] <script.ts> [args...]
       hako run [options] -e <code> [args...]
       hako run (--rootfs <dir> | --image <tar>) [--name <name>] [--userns] [--] <command> [args...]

Runs a TypeScript script with hako's API as globals — Process, Namespace, Cgroup, Capability,
Mount, Dir, Kernel, system and the rest of mod.ts — and its arguments in ARGV (also args,
Deno.args and process.argv). Top-level await works; 'import ... from "hako"' gives the same API.
Options end at the script: everything after it goes to the script.

A spec module — whose default export is a container spec, or a function (env, args) returning
one — runs that container in the foreground instead, with stdio attached; hako exits with the
container's exit code (128+signal when a signal ended it).

A quick container without a file: --rootfs (a directory) or --image (a .tar, .tar.gz, .tar.zst or .tar.xz,
extracted once under /var/lib/hako/images/, or a user's ~/.local/share/hako/images/) and the command, with the
default spec (new mount, uts, ipc, pid and net namespaces, pivot_root, the standard mounts, docker's capabilities
and seccomp):

  hako run --image alpine.tar.gz -- sh -c 'cat /etc/os-release'
  hako run -it --image alpine.tar.gz -- sh      # an interactive shell on a terminal of its own

--userns (or --rootless) adds a user namespace that maps the caller's uid and gid to root inside
(as unshare -r, or podman rootless); a caller without root gets one whether or not it asks, since
it can make the other namespaces only inside one. A rootfs the caller cannot write needs its mount
points (/proc, /sys, /dev, /etc/hosts…) made beforehand by its owner: hako says which.

With -t the container's command gets a terminal of its own (a pty of the container's devpts, its
controlling terminal and its stdin, stdout and stderr), which hako relays to its own stdout; with
-i also from its stdin, the caller's terminal in raw mode meanwhile (restored at the end). -t
alone gives no input (as docker's -t without -i). Without -t the command gets hako's stdio itself,
in a session of its own: it never has the caller's terminal as its controlling terminal.

Signals: SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 and SIGWINCH sent to hako go to the
container (with -t, SIGWINCH resizes its terminal instead). Its command is PID 1 of its own PID
namespace, which gets only the signals it handles: after the first SIGTERM or SIGINT the container
has --stop-timeout seconds to end before SIGKILL, and a second Ctrl-C (SIGINT) sends SIGKILL at
once. A signal that comes before the command runs undoes the container and hako exits 128+N. With
--init the command is not PID 1, so it gets every signal as it would outside a container.

Options:
  -e, --eval <code>     Run <code> instead of a file
      --rootfs <dir>    Run <command> in a container on this root filesystem
      --image <tar>     Run <command> in a container on this image (extracted once)
      --name <name>     The quick container's name (default run-<random>)
      --userns          The quick container gets a user namespace mapping the caller to root
                          (also --rootless; implied for a caller without root)
  -t, --tty             Give the container's command a terminal of its own (a container: a
                          spec module, --rootfs or --image)
  -i, --interactive     With -t, relay stdin to that terminal (without -t, stdin is the
                          command's own anyway)
      --stop-timeout <S>  After the first SIGTERM or SIGINT, seconds until the container is sent
                          SIGKILL (default 10, as hako stop)
      --init            Run a static init (tini) as the container's PID 1, the command as its child:
                          it gets every signal and reaps zombies (docker's --init)
      --loader <kind>   native: the runtime imports the file (default under deno run, and
                          under Bun for a script that imports nothing)
                        data: strip types and import data: URLs (default in a compiled binary)
                        (also: HAKO_LOADER=native|data)
  -h, --help            Show this help

Editor types for the globals: add to the script
  /// <reference path="<hako>/globals.d.ts" />

An uncaught error ends the run with exit code 1 and "error: <message>" and the script's frames
(HAKO_DEBUG=1 shows every frame). Run as root for namespaces, cgroups and mounts.
`;

/** What `hako run` was asked to do. */
export interface RunArgs {
  /** `-h`/`--help`: show the usage instead. */
  readonly help: boolean;
  /** The script's path. */
  readonly script?: string;
  /** `-e` code. */
  readonly code?: string;
  /** The script's arguments. */
  readonly args: readonly string[];
  /** `--loader`. */
  readonly loader?: LoaderKind;
  /** `-t`: the container gets a terminal of its own. */
  readonly tty?: boolean;
  /** `-i`: with `-t`, stdin is relayed to it. */
  readonly interactive?: boolean;
  /** `--stop-timeout`: milliseconds from the first SIGTERM/SIGINT to SIGKILL. */
  readonly stopTimeoutMs?: number;
  /** `--init`: a static init as the container's PID 1. */
  readonly init?: boolean;
  /** A quick container: its rootfs directory or image, name and command. */
  readonly quick?: {
    readonly rootfs?: string;
    readonly image?: string;
    readonly name?: string;
    /** `--userns`/`--rootless`: a user namespace mapping the caller to root inside. */
    readonly userns?: boolean;
    readonly command: readonly string[];
  };
}

/**
 * Parses `hako run`'s arguments (pure).
 * @param argv The arguments after `run`.
 * @throws {UsageError} When neither or both of a script and `-e` are given, or for a bad option.
 */
export function parseRunArgs(argv: readonly string[]): RunArgs {
  const { values, positionals } = parseArgs(argv, {
    eval: { type: "string", short: "e" },
    loader: { type: "string" },
    rootfs: { type: "string" },
    image: { type: "string" },
    name: { type: "string" },
    tty: { type: "boolean", short: "t" },
    interactive: { type: "boolean", short: "i" },
    "stop-timeout": { type: "string" },
    init: { type: "boolean" },
    userns: { type: "boolean" },
    rootless: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, true);
  if (values.help) return { help: true, args: [] };
  const timeout = stringOption(values, "stop-timeout");
  if (timeout !== undefined && !/^\d+(\.\d+)?$/.test(timeout)) {
    throw new UsageError(`--stop-timeout wants seconds, not "${timeout}"`);
  }
  // (options of the container: they go with the terminal's wherever a container runs)
  const terminal = {
    ...(values.tty ? { tty: true } : {}),
    ...(values.interactive ? { interactive: true } : {}),
    ...(timeout !== undefined ? { stopTimeoutMs: Number(timeout) * 1000 } : {}),
    ...(values.init ? { init: true } : {}),
  };
  const rootfs = stringOption(values, "rootfs"), image = stringOption(values, "image");
  const name = stringOption(values, "name");
  const code = stringOption(values, "eval");
  if (name !== undefined) nonEmpty(name, "--name");
  const userns = values.userns === true || values.rootless === true;
  if (rootfs !== undefined || image !== undefined) {
    if (rootfs !== undefined && image !== undefined) throw new UsageError("give --rootfs or --image, not both");
    if (rootfs !== undefined) nonEmpty(rootfs, "--rootfs");
    if (image !== undefined) nonEmpty(image, "--image");
    if (code !== undefined) throw new UsageError("-e runs a script, --rootfs/--image a container: pick one");
    if (positionals.length === 0) throw new UsageError("a command to run in the container is required");
    nonEmpty(positionals[0]!, "the command (its program)");
    return {
      help: false,
      args: [],
      ...terminal,
      quick: {
        ...(rootfs ? { rootfs } : {}),
        ...(image ? { image } : {}),
        ...(name ? { name } : {}),
        ...(userns ? { userns: true } : {}),
        command: positionals,
      },
    };
  }
  if (name !== undefined) throw new UsageError("--name goes with --rootfs or --image");
  if (userns) throw new UsageError("--userns goes with --rootfs or --image (a spec module says namespaces itself)");
  const loader = stringOption(values, "loader");
  if (loader !== undefined && loader !== "native" && loader !== "data") {
    throw new UsageError(`--loader must be "native" or "data", not "${loader}"`);
  }
  const base = { help: false, ...(loader ? { loader: loader as LoaderKind } : {}), ...terminal };
  if (code !== undefined) {
    if (values.tty) throw new UsageError("-t gives a container a terminal: a spec module, --rootfs or --image, not -e");
    if (timeout !== undefined || values.init) {
      throw new UsageError("--stop-timeout and --init are a container's: a spec module, --rootfs or --image, not -e");
    }
    return { ...base, code, args: positionals };
  }
  const [script, ...args] = positionals;
  if (script === undefined) throw new UsageError("no script given");
  nonEmpty(script, "the script's path");
  return { ...base, script, args };
}

/** Runs `hako run`. */
export async function main(argv: readonly string[]): Promise<number | undefined> {
  const a = parseRunArgs(argv);
  if (a.help) {
    host().stdout(usage);
    return 0;
  }
  const options: import("../runner/spec_module.ts").ForegroundOptions = {
    ...(a.tty ? { tty: true } : {}),
    ...(a.interactive ? { interactive: true } : {}),
    ...(a.stopTimeoutMs !== undefined ? { stopTimeoutMs: a.stopTimeoutMs } : {}),
    ...(a.init ? { init: true } : {}),
  };
  // A container's program: docker's exit codes when hako fails (a plain script keeps 1).
  const stderr = (t: string) => host().stderr(t);
  if (a.quick) return await withProgramExitCodes("run", stderr, () => runQuick(a.quick!, options));
  return await runScript({
    args: a.args,
    ...(a.script !== undefined ? { script: a.script } : {}),
    ...(a.code !== undefined ? { code: a.code } : {}),
    ...(a.loader ? { loader: a.loader } : {}),
    // A spec module (default export: a container spec, or a function returning one) runs that
    // container in the foreground; a plain script's running was the job.
    onExports: async (exports) => {
      if (exports.default === undefined) {
        const given = [a.tty && "-t", a.stopTimeoutMs !== undefined && "--stop-timeout", a.init && "--init"]
          .filter(Boolean);
        if (given.length) {
          host().stderr(
            `hako run: ${given.join(", ")} ignored: the script is not a spec module (no container to run)\n`,
          );
        }
        return undefined;
      }
      const { runSpecExports } = await import("../runner/spec_module.ts");
      const { default: process } = await import("node:process");
      return await withProgramExitCodes(
        "run",
        stderr,
        () => runSpecExports(exports, process.env, a.args, a.script, options),
      );
    },
  });
}

/**
 * Where quick containers' images are extracted (pure): root's `/var/lib/hako`; a caller without
 * root its own, as podman's rootless storage: `$XDG_DATA_HOME/hako`, else `~/.local/share/hako`
 * (beside the state directory `resolveStateDir` gives it there).
 */
export function quickVarDir(euid: number, env: (name: string) => string | undefined): string {
  if (euid === 0) return "/var/lib/hako";
  const data = env("XDG_DATA_HOME");
  if (data?.startsWith("/")) return `${data.replace(/\/+$/, "")}/hako`;
  const home = env("HOME");
  return home?.startsWith("/") ? `${home.replace(/\/+$/, "")}/.local/share/hako` : `/tmp/hako-${euid}`;
}

/** The namespaces of a quick container with a user namespace: spec.ts's defaults and "user". */
export const USERNS_NAMESPACES = ["user", "mount", "uts", "ipc", "pid", "net", "cgroup"] as const;

/**
 * The spec of a quick container (pure but for the random name).
 * @param caller The caller's effective uid — one without root gets a user namespace (as `--userns`),
 *   the only way it can make the others (podman rootless does the same) — and whether the kernel
 *   has cgroup namespaces (the spec's defaults have one only then).
 */
export function quickSpec(
  q: NonNullable<RunArgs["quick"]>,
  cwd: string,
  varDir = "/var/lib/hako",
  caller: { readonly euid: number; readonly egid?: number; readonly cgroupNs: boolean } = { euid: 0, cgroupNs: true },
): import("../container/spec.ts").ContainerSpec {
  // (an empty path is left empty, for the validator to refuse: never the cwd itself)
  const abs = (p: string) => (p === "" || p.startsWith("/") ? p : `${cwd.replace(/\/+$/, "")}/${p}`);
  const name = q.name ?? `run-${Math.random().toString(16).slice(2, 10)}`;
  let rootfs: import("../container/spec.ts").RootfsSpec;
  if (q.rootfs !== undefined) rootfs = abs(q.rootfs);
  else {
    const image = q.image ?? "";
    // The extraction's directory is named after the image's file: one path segment of safe
    // characters (never "", "." or "..", which would name images/ or its parent).
    const stem = (image.split("/").pop() ?? "").replace(/\.(tar(\.(gz|zst|xz))?|tgz|tzst|txz)$/, "").replace(
      /[^A-Za-z0-9_.-]/g,
      "_",
    )
      .slice(0, 200);
    const base = /^\.*$/.test(stem) ? "image" : stem;
    rootfs = { tarball: abs(image), path: `${varDir}/images/${base}` };
  }
  if (!q.userns && caller.euid === 0) return { name, rootfs, command: [...q.command] };
  const namespaces = USERNS_NAMESPACES.filter((n) => n !== "cgroup" || caller.cgroupNs);
  // The caller's own ids become root inside, and nothing else is mapped (unshare -r): without root
  // that is what the validator assumes anyway; root says so (its uid 0 is a host user's id).
  const idMap = caller.euid === 0
    ? {
      uid: { inside: 0, outside: 0, size: 1 },
      gid: { inside: 0, outside: caller.egid ?? 0, size: 1 },
      allowHostIds: true,
    }
    : undefined;
  return { name, rootfs, command: [...q.command], namespaces, ...(idMap ? { idMap } : {}) };
}

async function runQuick(
  q: NonNullable<RunArgs["quick"]>,
  options: import("../runner/spec_module.ts").ForegroundOptions,
): Promise<number> {
  const { runForeground } = await import("../runner/spec_module.ts");
  const { default: process } = await import("node:process");
  const { existsSync } = await import("node:fs");
  const caller = {
    euid: process.geteuid?.() ?? 0,
    egid: process.getegid?.() ?? 0,
    cgroupNs: existsSync("/proc/self/ns/cgroup"),
  };
  return await runForeground(
    quickSpec(q, host().cwd(), quickVarDir(caller.euid, host().env), caller),
    undefined,
    options,
  );
}
