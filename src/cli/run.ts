/**
 * `hako run SCRIPT [ARGS…]`, `hako run -e CODE [ARGS…]`, and a quick container with docker's run
 * flags: `hako run [-d] [--rm] [-e K=V]… (--rootfs DIR | --image TAR) -- CMD…`.
 * @module
 */
import { EXIT_HAKO_FAILED, MESSAGE_ERRORS, replyExitCode, withProgramExitCodes } from "./_exit_codes.ts";
import { parseRestartFlag, type RestartPolicy } from "../container/restart_policy.ts";
import { nonEmpty, parseArgs, type ParsedArgs, quoted, stringOption, stringsOption, UsageError } from "./_args.ts";
import {
  checkEnvFlag,
  type DeviceFlag,
  type DockerFlags,
  dockerSpecFields,
  flagOfField,
  parseCpus,
  parseDeviceFlag,
  parseEnvFile,
  parseLabels,
  parseMemory,
  parseMountFlag,
  parsePidsLimit,
  parseSysctlFlags,
  parseUserFlag,
  parseVolume,
  resolveEnv,
} from "./_docker.ts";
import { host } from "../runner/_host.ts";
import { SetupError } from "../errors.ts";
import { parsePublish, PUBLISH_CONFLICT, publishAllPorts } from "./_publish.ts";
import { type LoaderKind, runScript } from "../runner/run_script.ts";

/** The help text. */
export const usage = `Usage: hako run [options] <script.ts> [args...]
       hako run [options] -e <code> [args...]       (also: hako eval <code>)
       hako run [docker options] (--rootfs <dir> | --image <tar>) [--] <command> [args...]
       hako run [docker options] --image <name[:tag]> [[--] <command> [args...]]

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
and seccomp), and docker's run flags:

  hako run --image alpine.tar.gz -- sh -c 'cat /etc/os-release'
  hako run -it --image alpine.tar.gz -- sh      # an interactive shell on a terminal of its own
  hako run -d --rm --name web -e PORT=80 -v ./site:/srv:ro -m 256m --cpus 0.5 --image alpine.tar.gz -- httpd -f

--image NAME[:TAG] (a path that exists is a file; anything else names an image of 'hako images',
imported with 'hako image import FILE' or 'hako load'): the image's config gives the defaults, as
docker's — Entrypoint and Cmd (a command given replaces Cmd), Env (under --env-file and -e),
WorkingDir (-w), User (-u) — and the container writes to a layer of its own (overlayfs on the
image, or a copy where overlay cannot mount), removed with the container: the next one, and the
image, never see its writes.

-e: with --rootfs or --image, -e NAME=VALUE sets a variable, as docker's (NAME alone: the caller's
value). Without them -e is still the code to run (as deno's), now also 'hako eval CODE' — unless
it reads as a variable (NAME=VALUE, NAME), which is refused: the container's flags are missing.

A foreground quick container is removed when it ends, as with docker's --rm (its exit code is
hako's); -d keeps it after it ends, as docker does ('hako ps -a', 'hako rm'), unless --rm.

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
  -e, --eval <code>     (no --rootfs/--image) Run <code> instead of a file; also: hako eval <code>
      --loader <kind>   native: the runtime imports the file (default under deno run, and
                          under Bun for a script that imports nothing)
                        data: strip types and import data: URLs (default in a compiled binary)
                        (also: HAKO_LOADER=native|data)
  -t, --tty             Give the container's command a terminal of its own (a container: a
                          spec module, --rootfs or --image)
  -i, --interactive     With -t, relay stdin to that terminal (without -t, stdin is the
                          command's own anyway); with -d, keep a stdin open for 'hako attach'
      --stop-timeout <S>  After the first SIGTERM or SIGINT, seconds until the container is sent
                          SIGKILL (default 10, as hako stop)
      --init            Run a static init (tini) as the container's PID 1, the command as its child:
                          it gets every signal and reaps zombies (docker's --init)
  -h, --help            Show this help (docker's -h, --hostname, is --hostname here)

A quick container's options (docker run's):
      --rootfs <dir>    Run <command> in a container on this root filesystem
      --image <tar>     Run <command> in a container on this image (extracted once)
      --name <name>     The container's name (default run-<random>)
  -d, --detach          Start it in the background, as 'hako start' (the supervisor is its
                          parent; its output goes to 'hako logs'); print its name. With -t its
                          command gets a terminal, with -i a stdin kept open, that the supervisor
                          holds for 'hako attach NAME' (as docker run -dit)
      --rm              Remove it when it ends (always so in the foreground; with -d: by the
                          supervisor, once it has recorded the exit)
      --restart <policy> With -d: no (the default), always, unless-stopped, on-failure[:N] —
                          the supervisor starts it again when it ends (not after 'hako stop')
  -e, --env <K=V>       Set a variable (again for more); K alone: the caller's value, if any
      --env-file <file> Variables from a file, a K=V (or K) a line, # comments (again for more;
                          before the -e's, which win)
  -v, --volume <SRC:DST[:ro|rw]>  Bind a host path (absolute, or ./relative) at DST inside
      --mount <type=bind,source=S,target=T[,readonly]|type=tmpfs,target=T[,tmpfs-size=64m]>
  -w, --workdir <dir>   The command's working directory inside
  -u, --user <UID[:GID]>  Who the command runs as inside (numbers: names are not looked up)
  -m, --memory <size>   Memory limit (512m, 1g): the cgroup's
      --cpus <n>        CPU limit in CPUs (1.5: a 150000 µs quota per 100000 µs period)
      --pids-limit <n>  At most n processes and threads (0 or -1: no limit)
      --hostname <name> Its hostname (default: its name)
      --domainname <name>  Its NIS domain name (default: the host's)
      --stop-signal <SIG>  What 'hako stop' sends first (default SIGTERM, or the image's StopSignal)
      --read-only       Mount its root filesystem read-only
      --cap-add <CAP>   Keep a capability beyond docker's default set (again for more; ALL)
      --cap-drop <CAP>  Drop one from it (again for more; ALL)
      --device <HOST[:CONTAINER[:PERMS]]>  A host device node in its /dev, allowed by its cgroup
      --sysctl <KEY=VALUE>  A namespaced sysctl of its own (net.*, IPC limits), repeatable
                        (PERMS of r, w, m; default rwm)
      --network <none|host|veth>  none (the default): a network namespace of its own with
                          loopback only; host: the host's network, its resolv.conf and hosts
                          read-only; veth: a veth pair to the host, a /30 of 10.213.0.0/16
                          (HAKO_VETH_RANGE) hako picks, free again when the container goes
  -p, --publish <[IP:][HOSTPORT:]PORT[/tcp]>  Forward the host's port (0 or none: a free one) to
                          the container's PORT (again for more; implies --network veth; proxied
                          as docker-proxy does, by the supervisor with -d, else by this hako run
                          until the container ends; 'hako port NAME' lists them)
  -P, --publish-all     Publish every port the image exposes, each to a free host port
  -l, --label <k=v>     Recorded with a -d container ('hako inspect' shows them)
      --userns          A user namespace mapping the caller to root (also --rootless; implied for a
                          caller without root)

Editor types for the globals: add to the script
  /// <reference path="<hako>/globals.d.ts" />

An uncaught error ends the run with exit code 1 and "error: <message>" and the script's frames
(HAKO_DEBUG=1 shows every frame). Run as root for namespaces, cgroups and mounts. A quick container
exits with its command's code, or docker's 125 (hako failed: a bad flag value, a setup step),
126 (the command cannot be executed) or 127 (not found).
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
    /** `-d`: daemonized through the supervisor, as `hako start` (prints the name). */
    readonly detach?: boolean;
    /** `--rm`: removed when it ends (a foreground quick run always is; a `-d` one only with it). */
    readonly rm?: boolean;
    /** `--restart`: the spec's restart policy (with `-d`). */
    readonly restart?: RestartPolicy;
    /** docker's container flags (`-e`, `-v`, `-m`…). */
    readonly docker?: DockerFlags;
    readonly command: readonly string[];
  };
}

/** `hako run`'s options. */
const RUN_OPTIONS = {
  // -e is a variable with --rootfs/--image (docker's), else the code to run (deno's, kept).
  env: { type: "string", short: "e", multiple: true },
  eval: { type: "string" },
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
  detach: { type: "boolean", short: "d" },
  rm: { type: "boolean" },
  restart: { type: "string" },
  "env-file": { type: "string", multiple: true },
  volume: { type: "string", short: "v", multiple: true },
  mount: { type: "string", multiple: true },
  workdir: { type: "string", short: "w" },
  user: { type: "string", short: "u" },
  memory: { type: "string", short: "m" },
  cpus: { type: "string" },
  "pids-limit": { type: "string" },
  hostname: { type: "string" },
  domainname: { type: "string" },
  "stop-signal": { type: "string" },
  "read-only": { type: "boolean" },
  "cap-add": { type: "string", multiple: true },
  "cap-drop": { type: "string", multiple: true },
  device: { type: "string", multiple: true },
  sysctl: { type: "string", multiple: true },
  network: { type: "string" },
  net: { type: "string" },
  publish: { type: "string", short: "p", multiple: true },
  "publish-all": { type: "boolean", short: "P" },
  label: { type: "string", short: "l", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;

/** The options that make a quick container (docker's run flags), by long name. */
const QUICK_ONLY = [
  "detach",
  "rm",
  "restart",
  "env-file",
  "volume",
  "mount",
  "workdir",
  "user",
  "memory",
  "cpus",
  "pids-limit",
  "hostname",
  "domainname",
  "stop-signal",
  "read-only",
  "cap-add",
  "cap-drop",
  "device",
  "sysctl",
  "network",
  "net",
  "publish",
  "publish-all",
  "label",
] as const;

/**
 * Parses `hako run`'s arguments (pure).
 * @param argv The arguments after `run`.
 * @throws {UsageError} When neither or both of a script and `-e` are given, or for a bad option.
 */
export function parseRunArgs(argv: readonly string[]): RunArgs {
  const { values, positionals } = parseArgs(argv, RUN_OPTIONS, true);
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
  const envs = stringsOption(values, "env");
  const evalCode = stringOption(values, "eval");
  if (name !== undefined) nonEmpty(name, "--name");
  const userns = values.userns === true || values.rootless === true;
  if (rootfs !== undefined || image !== undefined) {
    if (rootfs !== undefined && image !== undefined) throw new UsageError("give --rootfs or --image, not both");
    if (rootfs !== undefined) nonEmpty(rootfs, "--rootfs");
    if (image !== undefined) nonEmpty(image, "--image");
    if (evalCode !== undefined) throw new UsageError("--eval runs a script, --rootfs/--image a container: pick one");
    // (an image's config may give the command: checked once --image is known to name one)
    if (positionals.length === 0 && image === undefined) {
      throw new UsageError("a command to run in the container is required");
    }
    if (positionals.length) nonEmpty(positionals[0]!, "the command (its program)");
    const detach = values.detach === true;
    if (detach && timeout !== undefined) {
      throw new UsageError("--stop-timeout is a foreground run's: stop a -d container with 'hako stop -t S NAME'");
    }
    const restart = restartFlag(stringOption(values, "restart"), detach, values.rm === true);
    const docker = dockerFlags(values, envs);
    return {
      help: false,
      args: [],
      ...terminal,
      quick: {
        ...(rootfs ? { rootfs } : {}),
        ...(image ? { image } : {}),
        ...(name ? { name } : {}),
        ...(userns ? { userns: true } : {}),
        ...(detach ? { detach: true } : {}),
        ...(values.rm ? { rm: true } : {}),
        ...(restart !== undefined ? { restart } : {}),
        ...(Object.keys(docker).length ? { docker } : {}),
        command: positionals,
      },
    };
  }
  const quickOnly = QUICK_ONLY.filter((o) => Object.hasOwn(values, o));
  if (quickOnly.length) {
    throw new UsageError(
      `${quickOnly.map((o) => `--${o}`).join(", ")} ${
        quickOnly.length > 1 ? "go" : "goes"
      } with --rootfs or --image (a quick container; a spec module says it in its spec)`,
    );
  }
  if (name !== undefined) throw new UsageError("--name goes with --rootfs or --image");
  if (userns) throw new UsageError("--userns goes with --rootfs or --image (a spec module says namespaces itself)");
  // Without --rootfs/--image, -e is the code to run, as it always was (and as deno's -e); --env
  // is a variable, which only a quick container takes.
  const own = argv.slice(0, argv.length - positionals.length);
  if (own.some((t) => t === "--env" || t.startsWith("--env="))) {
    throw new UsageError("--env goes with --rootfs or --image (to run code: hako eval CODE, or -e CODE)");
  }
  if (envs.length > 1) {
    throw new UsageError(
      "-e is given twice: without --rootfs/--image, -e is the code to run (one); " +
        "to set variables of a quick container, give --rootfs or --image",
    );
  }
  if (envs.length === 1 && evalCode !== undefined) throw new UsageError("give -e or --eval, not both");
  // -e NAME=VALUE (or -e NAME) reads as docker's variable: the container's flags are missing, it
  // is not code to run (that would be an assignment to an undeclared name, or a bare name).
  if (envs.length === 1 && /^[A-Za-z_][A-Za-z0-9_]*(=\S*)?$/.test(envs[0]!)) {
    throw new UsageError(
      `-e ${quoted(envs[0]!)} reads as a variable (docker's -e), which goes with --rootfs or --image; ` +
        "to run it as code: hako eval CODE",
    );
  }
  const code = evalCode ?? envs[0];
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

/**
 * `--restart`, checked (pure): a policy needs `-d` (a foreground container ends with its command)
 * and does not go with `--rm` (docker: "Conflicting options: --restart and --rm").
 */
function restartFlag(text: string | undefined, detach: boolean, rm: boolean): RestartPolicy | undefined {
  if (text === undefined) return undefined;
  let policy: RestartPolicy;
  try {
    policy = parseRestartFlag(text);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (policy === "no") return undefined;
  if (!detach) throw new UsageError("--restart goes with -d: the supervisor restarts a daemonized container");
  if (rm) throw new UsageError("--restart and --rm conflict: a container removed when it ends is not restarted");
  return policy;
}

/** The docker flags of a quick container, each checked for its form (pure). */
function dockerFlags(values: ParsedArgs["values"], envs: readonly string[]): DockerFlags {
  const str = (n: string) => stringOption(values, n);
  const network = str("network") ?? str("net");
  if (str("network") !== undefined && str("net") !== undefined) {
    throw new UsageError("give --network or --net, not both");
  }
  if (network !== undefined && network !== "none" && network !== "host" && network !== "veth") {
    throw new UsageError(
      `--network takes none (the default here: a network namespace of its own with loopback only), veth (a /30 to the host of its own: hako has no bridge) or host, not ${
        quoted(network)
      }`,
    );
  }
  const publish = stringsOption(values, "publish").map(parsePublish);
  const publishAll = values["publish-all"] === true;
  if ((publish.length || publishAll) && network === "none") throw new UsageError(PUBLISH_CONFLICT);
  if ((publish.length || publishAll) && network === "host") {
    throw new UsageError(
      "port publishing and --network host conflict: the container uses the host's ports themselves",
    );
  }
  // (docker's default network for -p is its bridge; hako's is a veth pair of the container's own)
  const net = network ?? (publish.length || publishAll ? "veth" : undefined);
  const workdir = str("workdir"), user = str("user"), memory = str("memory"), cpus = str("cpus");
  const pids = str("pids-limit"), hostname = str("hostname"), stopSignal = str("stop-signal");
  const domainname = str("domainname");
  if (stopSignal !== undefined) nonEmpty(stopSignal, "--stop-signal");
  const mounts = [
    ...stringsOption(values, "volume").map((v) => parseVolume(v)),
    ...stringsOption(values, "mount").map((v) => parseMountFlag(v)),
  ];
  const envFiles = stringsOption(values, "env-file");
  for (const f of envFiles) nonEmpty(f, "--env-file");
  const labels = stringsOption(values, "label");
  const capAdd = stringsOption(values, "cap-add"), capDrop = stringsOption(values, "cap-drop");
  const devices = stringsOption(values, "device").map(parseDeviceFlag);
  const sysctl = parseSysctlFlags(stringsOption(values, "sysctl"));
  return {
    ...(envs.length ? { env: envs.map(checkEnvFlag) } : {}),
    ...(envFiles.length ? { envFiles } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(workdir !== undefined ? { workdir } : {}),
    ...(user !== undefined ? { user: parseUserFlag(user) } : {}),
    ...(memory !== undefined ? { memory: parseMemory(memory) } : {}),
    ...(cpus !== undefined ? { cpus: parseCpus(cpus) } : {}),
    ...(pids !== undefined ? { pidsLimit: parsePidsLimit(pids) } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(domainname !== undefined ? { domainname } : {}),
    ...(Object.keys(sysctl).length ? { sysctl } : {}),
    ...(stopSignal !== undefined ? { stopSignal } : {}),
    ...(values["read-only"] ? { readOnly: true } : {}),
    ...(capAdd.length ? { capAdd } : {}),
    ...(capDrop.length ? { capDrop } : {}),
    ...(devices.length ? { devices } : {}),
    ...(net !== undefined ? { network: net } : {}),
    ...(publish.length ? { publish } : {}),
    ...(publishAll ? { publishAll: true } : {}),
    ...(labels.length ? { labels: parseLabels(labels) } : {}),
  } as DockerFlags;
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
 *   has cgroup namespaces (the spec's defaults have one only then); for `-e NAME` its environment,
 *   and the lines of the `--env-file`s (read by the caller).
 */
export function quickSpec(
  q: NonNullable<RunArgs["quick"]>,
  cwd: string,
  varDir = "/var/lib/hako",
  caller: {
    readonly euid: number;
    readonly egid?: number;
    readonly cgroupNs: boolean;
    readonly env?: (name: string) => string | undefined;
    readonly envFileLines?: readonly string[];
  } = { euid: 0, cgroupNs: true },
): import("../container/spec.ts").ContainerSpec {
  // (an empty path is left empty, for the validator to refuse: never the cwd itself)
  const abs = (p: string) =>
    p === "" || p.startsWith("/") ? p : `${cwd.replace(/\/+$/, "")}/${p.replace(/^(\.\/+)+/, "")}`;
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
  const withUserns = q.userns === true || caller.euid !== 0;
  const namespaces = USERNS_NAMESPACES.filter((n) =>
    (n !== "cgroup" || caller.cgroupNs) && (n !== "user" || withUserns)
  );
  // docker's flags: the --env-file lines first, then each -e (a later name wins), as docker.
  const d = q.docker ?? {};
  const envEntries = [...(caller.envFileLines ?? []), ...(d.env ?? [])];
  const env = envEntries.length ? resolveEnv(envEntries, caller.env ?? (() => undefined)) : undefined;
  const fields = dockerSpecFields(d, env, namespaces);
  const mounts = fields.mounts?.map((
    m,
  ) => (m.type === "bind" && m.source !== undefined ? { ...m, source: abs(m.source) } : m));
  const docker = { ...fields, ...(mounts ? { mounts } : {}) };
  if (!withUserns) return { name, rootfs, command: [...q.command], ...docker };
  // The caller's own ids become root inside, and nothing else is mapped (unshare -r): without root
  // that is what the validator assumes anyway; root says so (its uid 0 is a host user's id).
  const idMap = caller.euid === 0
    ? {
      uid: { inside: 0, outside: 0, size: 1 },
      gid: { inside: 0, outside: caller.egid ?? 0, size: 1 },
      allowHostIds: true,
    }
    : undefined;
  return { name, rootfs, command: [...q.command], namespaces, ...(idMap ? { idMap } : {}), ...docker };
}

/**
 * A quick container's flags with an image's config as their defaults (pure), as docker's run:
 * Entrypoint + (the command given, else Cmd); WorkingDir under -w; User under -u (a name is
 * looked up by `lookupUser` in the image's /etc/passwd); StopSignal under --stop-signal.
 * @throws {SetupError} When neither the command line nor the image gives a command (docker's 125).
 */
export function withImageDefaults(
  q: NonNullable<RunArgs["quick"]>,
  config: import("../image/store.ts").ImageRunConfig,
  lookupUser: (user: string) => { uid: number; gid?: number } | undefined = () => undefined,
): NonNullable<RunArgs["quick"]> {
  const command = [...(config.Entrypoint ?? []), ...(q.command.length ? q.command : config.Cmd ?? [])];
  if (command.length === 0) {
    // (not a bad command line but an image without a command: docker's "No command specified", 125)
    throw new SetupError(
      "image",
      "no command to run: the image's config gives none (no Entrypoint, no Cmd); give one after the image",
    );
  }
  const d = q.docker ?? {};
  let user = d.user;
  if (user === undefined && config.User !== undefined) {
    user = /^\d+(:\d+)?$/.test(config.User) ? parseUserFlag(config.User) : lookupUser(config.User);
    if (user === undefined) {
      throw new UsageError(
        `the image's User ${quoted(config.User)} is not in its /etc/passwd (give -u UID[:GID])`,
      );
    }
  }
  const docker: DockerFlags = {
    ...d,
    ...(d.workdir === undefined && config.WorkingDir !== undefined ? { workdir: config.WorkingDir } : {}),
    ...(user !== undefined ? { user } : {}),
    // (docker: --stop-signal, else the image's StopSignal)
    ...(d.stopSignal === undefined && config.StopSignal ? { stopSignal: config.StopSignal } : {}),
    // -P: every ExposedPort to a free host port, beside the -p ones
    ...(d.publishAll
      ? { publish: [...(d.publish ?? []), ...publishAllPorts(config.ExposedPorts, d.publish ?? [])] }
      : {}),
  };
  return { ...q, command, ...(Object.keys(docker).length ? { docker } : {}) };
}

async function runQuick(
  q: NonNullable<RunArgs["quick"]>,
  options: import("../runner/spec_module.ts").ForegroundOptions,
): Promise<number> {
  const { existsSync } = await import("node:fs");
  // --image NAME: an image of the store (a path that exists is a tarball, as before).
  if (q.image !== undefined && !existsSync(q.image)) {
    const { imageVarDir } = await import("./image.ts");
    const { findImage, imageRootfs, imageUser } = await import("../image/store.ts");
    const varDir = await imageVarDir();
    const img = findImage(varDir, q.image);
    if (!img) {
      // (not a bad command line but an image hako cannot find: docker's "Unable to find image", 125)
      const { SetupError } = await import("../errors.ts");
      throw new SetupError(
        "image",
        `--image ${quoted(q.image)}: no such file, nor an image of that name ('hako images' lists them; ` +
          "'hako image import FILE' or 'hako load' adds one)",
      );
    }
    const users = new Map<string, { uid: number; gid?: number } | undefined>();
    if (img.config.User !== undefined && q.docker?.user === undefined) {
      users.set(img.config.User, imageUser(imageRootfs(varDir, img), img.config.User));
    }
    const named = withImageDefaults(q, img.config, (u) => users.get(u));
    const name = named.name ?? `run-${Math.random().toString(16).slice(2, 10)}`;
    const { makeWritable, releaseWritable } = await import("../image/rw.ts");
    const { stateDir } = await import("../container/state.ts");
    const layer = makeWritable(varDir, img, name, { stateDir: stateDir() });
    const { image: _, ...rest } = named;
    let started = false;
    try {
      const code = await runQuickOn(
        { ...rest, name, rootfs: layer.rootfs },
        options,
        img.config.Env ?? [],
        named.image,
        img.config.ExposedPorts,
      );
      started = q.detach === true && code === 0;
      return code;
    } finally {
      // A foreground container is gone by now; a -d one's layer goes with it (hako rm, hako gc).
      if (!started) releaseWritable(layer.dir);
    }
  }
  return await runQuickOn(q, options, []);
}

/**
 * `--network veth` (and `-p`): the veth's addresses, a /30 no host route or address uses
 * (network.ts's allocateVethSubnet); the spec's other fields as they are.
 */
async function withVethAddresses(
  spec: import("../container/spec.ts").ContainerSpec,
): Promise<import("../container/spec.ts").ContainerSpec> {
  const veth = spec.network?.veth;
  if (!veth || veth.hostAddress !== undefined || veth.containerAddress !== undefined) return spec;
  const { allocateVethSubnet } = await import("../network.ts");
  let pair: { hostAddress: string; containerAddress: string };
  try {
    pair = allocateVethSubnet();
  } catch (e) {
    throw new UsageError(`--network veth: ${(e as Error).message}`);
  }
  return { ...spec, network: { ...spec.network, veth: { ...veth, ...pair } } };
}

/**
 * `--device`s: each host node read (its type and numbers: a character or block device, docker's
 * check), made at its container path and allowed with its PERMS in the cgroup's device rules.
 * @throws {UsageError} Naming `--device` and the host path that is not a device node.
 */
function withDevices(
  spec: import("../container/spec.ts").ContainerSpec,
  flags: readonly DeviceFlag[],
  statSync: typeof import("node:fs").statSync,
): import("../container/spec.ts").ContainerSpec {
  if (!flags.length) return spec;
  const nodes: import("../container/spec.ts").DeviceNode[] = [];
  const rules: import("../cgroup/devices.ts").DeviceRule[] = [];
  for (const f of flags) {
    let st;
    try {
      st = statSync(f.host);
    } catch (e) {
      throw new UsageError(`--device ${quoted(f.host)}: ${(e as Error).message}`);
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) {
      throw new UsageError(`--device ${quoted(f.host)} is not a device node`);
    }
    const type = st.isBlockDevice() ? "b" : "c";
    // (glibc's major() and minor() of st_rdev)
    const rdev = BigInt(st.rdev);
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    nodes.push({ path: f.container, type, major, minor, fileMode: st.mode & 0o777 });
    rules.push({ allow: true, type, major, minor, access: f.perms });
  }
  return {
    ...spec,
    devices: [...(spec.devices ?? []), ...nodes],
    cgroup: { ...spec.cgroup, devices: [...(spec.cgroup?.devices ?? []), ...rules] },
  };
}

async function runQuickOn(
  q: NonNullable<RunArgs["quick"]>,
  options: import("../runner/spec_module.ts").ForegroundOptions,
  imageEnv: readonly string[],
  imageName?: string,
  exposedPorts?: Readonly<Record<string, unknown>>,
): Promise<number> {
  if (q.command.length === 0) throw new UsageError("a command to run in the container is required");
  const { default: process } = await import("node:process");
  const { existsSync, readFileSync, statSync, writeFileSync } = await import("node:fs");
  // (the image's Env first: --env-file and -e override it, as docker's)
  const envFileLines: string[] = [...imageEnv];
  for (const file of q.docker?.envFiles ?? []) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new UsageError(`--env-file ${quoted(file)}: ${(e as Error).message}`);
    }
    envFileLines.push(...parseEnvFile(text, file));
  }
  const caller = {
    euid: process.geteuid?.() ?? 0,
    egid: process.getegid?.() ?? 0,
    cgroupNs: existsSync("/proc/self/ns/cgroup"),
    env: (name: string) => process.env[name],
    envFileLines,
  };
  const made = withDevices(
    await withVethAddresses(quickSpec(q, host().cwd(), quickVarDir(caller.euid, host().env), caller)),
    q.docker?.devices ?? [],
    statSync,
  );
  const spec = q.restart !== undefined ? { ...made, restart: q.restart } : made;
  // The spec's validator checks every value; its messages say which flag set the field.
  const { resolveSpec, SpecError } = await import("../container/validate.ts");
  try {
    resolveSpec(options.init ? { ...spec, init: true } : spec);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    throw new SpecError(e.problems.map((p) => {
      const flag = flagOfField(p.path);
      return flag ? { path: p.path, message: `${p.message} (set by ${flag})` } : p;
    }));
  }
  if (q.detach) {
    // hako start of this spec: the supervisor is its parent, it prints the name.
    const { startSpecs } = await import("./start.ts");
    const { DOCKER_FILE } = await import("../supervisor/protocol.ts");
    // (-t: its terminal starts at the caller's size, as docker's CLI sends HostConfig.ConsoleSize)
    const size = options.tty ? (await import("../container/terminal.ts")).callerWindowSize() : undefined;
    const record: import("../supervisor/protocol.ts").DockerRecord = {
      ...(q.docker?.labels ? { labels: q.docker.labels } : {}),
      ...(q.rm ? { autoRemove: true } : {}),
      ...(imageName !== undefined ? { image: imageName } : {}),
      ...(exposedPorts && Object.keys(exposedPorts).length ? { exposedPorts } : {}),
      // -t, -i: the supervisor holds its pty master or stdin pipe for 'hako attach' (docker's
      // Config.Tty and OpenStdin).
      ...(options.tty ? { tty: true } : {}),
      ...(options.interactive ? { openStdin: true } : {}),
      ...(size ? { consoleSize: { rows: size.rows, columns: size.columns } } : {}),
    };
    // docker's codes when the container never ran (docker run -d exits 125 for a port that is
    // taken, an image it cannot use, a name in use…; 126/127 when its command cannot run): the
    // supervisor's reply names the step and errno (replyExitCode); anything else is hako's, 125.
    let failure: { name?: string; step?: string; code?: string } | undefined;
    try {
      const code = await startSpecs([{ spec: options.init ? { ...spec, init: true } : spec }], {
        quiet: true,
        command: "run",
        onFailed: (_, e) => void (failure ??= e),
        ...(Object.keys(record).length
          ? {
            onReserved: (dir: string) =>
              writeFileSync(`${dir}/${DOCKER_FILE}`, JSON.stringify(record), { mode: 0o600 }),
          }
          : {}),
      });
      return code === 0 ? 0 : replyExitCode(failure);
    } catch (e) {
      // (the supervisor could not be reached or started: a message error keeps its own code)
      if (e instanceof UsageError || MESSAGE_ERRORS.includes((e as Error)?.name)) throw e;
      host().stderr(`hako run: ${(e as Error)?.message ?? String(e)}\n`);
      return EXIT_HAKO_FAILED;
    }
  }
  const { runForeground } = await import("../runner/spec_module.ts");
  return await runForeground(spec, undefined, options);
}
